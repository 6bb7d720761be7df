//! One module per resource. Shared here: the document every request names and its parsing at
//! the edge, and how optional text fields are read.

pub mod checkpoints;
pub mod checks;
pub mod commuters;
pub mod people;
pub mod policies;
pub mod results;
pub mod stats;

use chrono::{DateTime, NaiveDate, Utc};
use tongxing_domain::ids::{Document, DocumentKind};
use tongxing_domain::text::TextError;

use crate::error::ApiError;

/// Which person: a document kind (default `resident_id`) and its number as printed.
#[derive(Debug, Clone)]
pub struct DocumentRef {
    pub document_kind: Option<String>,
    pub document_number: String,
}

/// Today's date in the display zone (Asia/Shanghai), which bounds birth dates.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tongxing_domain::shanghai()).date_naive()
}

/// Parses a document at the edge; errors name the field, prefixed by `at` (e.g. "occupants[2].").
pub fn parse_document(d: &DocumentRef, at: &str, now: DateTime<Utc>) -> Result<Document, ApiError> {
    document(d.document_kind.as_deref(), &d.document_number, at, now)
}

/// [`parse_document`] from the two fields a request carries.
pub fn document(kind: Option<&str>, number: &str, at: &str, now: DateTime<Utc>) -> Result<Document, ApiError> {
    let kind =
        DocumentKind::parse(kind.unwrap_or("")).map_err(|e| ApiError::invalid(format!("{at}document_kind"), e))?;
    Document::parse(kind, number, today(now)).map_err(|e| ApiError::invalid(format!("{at}document_number"), e))
}

/// An optional text field: absent or blank is `None`; otherwise it must parse.
pub fn optional<T>(
    field: &str,
    v: Option<&str>,
    parse: fn(&str) -> Result<T, TextError>,
) -> Result<Option<T>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some).map_err(|e| ApiError::invalid(field, e)),
    }
}

/// Parses an RFC 3339 time with an offset. A `+` that a query string turned into a space is
/// read as the `+` it was.
pub fn parse_time(field: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    let t = v.trim();
    let fixed;
    let t = match t.rfind(' ') {
        Some(i) if i >= 10 && t.len() - i - 1 == 5 && t.as_bytes()[i + 3] == b':' => {
            fixed = format!("{}+{}", &t[..i], &t[i + 1..]);
            fixed.as_str()
        }
        _ => t,
    };
    DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ApiError::invalid(
            field,
            format!(
                "{} is not RFC 3339 with an offset, e.g. 2021-11-17T08:30:00+08:00",
                tongxing_domain::text::quote(v)
            ),
        )
    })
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
