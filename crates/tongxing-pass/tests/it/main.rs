//! The crate's one integration-test binary.

mod common;
mod doc;
mod hcert;
mod images;
mod lists;
mod roundtrip;
mod stages;
