//! Big data for the command centre, as pure functions: the statistics ([`stats`]), the
//! privacy of aggregates ([`suppress`]), testing demand ([`demand`]), the warnings' thresholds
//! ([`config`]) and the detectors' decisions ([`detect`]). The store keeps the rollups and
//! the app runs the job; everything that decides is here, with no I/O and no clock.

pub mod config;
pub mod demand;
pub mod detect;
pub mod stats;
pub mod suppress;

pub use config::AnalyticsConfig;
