//! The integration suite: the real `tongxing` binary on port 0, driven over HTTP, against
//! SQLite and against PostgreSQL. Every test runs on both (`both!`). PostgreSQL tests need
//! TONGXING_TEST_PG (an admin URL); without it they fail loudly — CI always has it.

mod browser;
mod delivery_helpers;
mod helpers;

mod alerts;
mod analytics;
mod api;
mod bench;
mod budget;
mod checks;
mod citizens;
mod commitments;
mod commuters;
mod contract;
mod crash;
mod dcc;
mod idempotency;
mod import;
mod officer;
mod offline;
mod passes;
mod policies;
mod readme;
mod results;
mod scaleout;
mod serve;
mod web;
mod web_citizen;
mod web_dashboard;
mod web_health;
mod web_officer;
mod web_registry;
mod web_test_point;
mod webhooks;
