//! One module per resource. Shared here: the document reference every request carries and
//! its parsing at the edge.

pub mod checkpoints;
pub mod checks;
pub mod commuters;
pub mod people;
pub mod policies;
pub mod results;
pub mod stats;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tongxing_domain::ids::{Document, DocumentKind};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Which person: a document kind (default `resident_id`) and its number as printed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DocumentRef {
    /// resident_id (default), passport, hk_macao_permit or taiwan_permit.
    #[serde(default)]
    pub document_kind: Option<String>,
    /// The number as read from the document, e.g. 11010519491231002X.
    pub document_number: String,
}

/// Today's date in the display zone (Asia/Shanghai), which bounds birth dates.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tongxing_domain::shanghai()).date_naive()
}

/// Parses a document at the edge; errors name the field, prefixed by `at` (e.g. "occupants[2].").
pub fn parse_document(d: &DocumentRef, at: &str, now: DateTime<Utc>) -> Result<Document, ApiError> {
    let kind = DocumentKind::parse(d.document_kind.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::invalid(format!("{at}document_kind"), e))?;
    Document::parse(kind, &d.document_number, today(now))
        .map_err(|e| ApiError::invalid(format!("{at}document_number"), e))
}

/// Trims and bounds a free-text field; `None` stays `None`.
pub fn text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(field, format!("at most {max} characters"))),
        Some(s) if s.chars().any(char::is_control) => {
            Err(ApiError::invalid(field, "control characters are not allowed"))
        }
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// Like [`text`], but the field must be present.
pub fn required(field: &str, v: Option<&str>, max: usize) -> Result<String, ApiError> {
    text(field, v, max)?.ok_or_else(|| ApiError::invalid(field, "is required"))
}
