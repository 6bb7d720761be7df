//! One module per resource. Shared here: the document every request names and its parsing at
//! the edge, and how optional text fields are read.

pub mod alerts;
pub mod analytics;
pub mod checkpoints;
pub mod checks;
pub mod citizen;
pub mod commitments;
pub mod commuters;
pub mod offline;
pub mod ops;
pub mod passes;
pub mod people;
pub mod policies;
pub mod results;
pub mod stats;
pub mod webhooks;

use chrono::{DateTime, Utc};
pub use tongxing_app::input::{document, optional};

use crate::error::ApiError;

/// Parses an RFC 3339 time with an offset. A `+` that a query string turned into a space is
/// read as the `+` it was.
pub fn parse_time(field: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    Ok(tongxing_app::input::time(field, v)?)
}

/// [`parse_time`] for an optional field.
pub fn parse_time_opt(field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|v| parse_time(field, v)).transpose()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_with_a_space_for_plus() {
        let a = super::parse_time("t", "2021-11-17T08:30:00+08:00").unwrap();
        let b = super::parse_time("t", "2021-11-17T08:30:00 08:00").unwrap();
        assert_eq!(a, b);
        assert!(super::parse_time("t", "2021-11-17 08:30:00").is_err());
        assert!(super::parse_time("t", "yesterday").is_err());
    }
}
