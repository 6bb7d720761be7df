//! The health authority sets health-code colours: one person (the API's `PUT /people/code`, the
//! health page's form), or a CSV file of many, checked row by row and previewed before anything
//! is written, then stored in one transaction (all or nothing). A change to yellow or red
//! revokes the person's passes that still show the old colour.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tongxing_domain::facts::CodeColour;
use tongxing_domain::mask;
use utoipa::ToSchema;

use crate::commuter::BadRow;
use crate::csvfile::CsvRows;
use crate::input::{ColourChange, RawColour, colour};
use crate::{App, AppError, AppResult};

/// The columns a colours file must have (`document_kind`, `reason`, `popup` and `expires_at`
/// are optional).
pub const COLOUR_COLUMNS: &[&str] = &["document_number", "colour"];

/// A colours file checked before anything is written.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColourPreview {
    /// Rows that would be set, by colour.
    pub green: usize,
    pub yellow: usize,
    pub red: usize,
    /// Every bad row: its line and why. A file with any is not applied.
    pub bad: Vec<BadRow>,
}

/// A row of a colours file: its line, the document (masked) and the change or why not.
type ColourLine = (u64, Option<String>, Result<ColourChange, String>);

impl App {
    /// Sets one person's colour (registering them if new).
    pub async fn set_colour(&self, c: &ColourChange, by: &str, now: DateTime<Utc>) -> AppResult<()> {
        let person_id = self.store.upsert_person(&c.person, now).await?;
        self.set_code(person_id, c.colour, c.reason.as_deref(), c.expires_at, by, now).await
    }

    fn colour_rows(&self, text: &str, now: DateTime<Utc>) -> AppResult<Vec<ColourLine>> {
        crate::csvfile::check_text("csv", text)?;
        let mut csv = CsvRows::new("the file".into(), text.as_bytes(), text.len() as u64, COLOUR_COLUMNS)
            .map_err(|e| AppError::invalid("csv", e.0))?;
        let headers = csv.headers().clone();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let (kind, number, col, reason, popup, expires) = (
            column("document_kind"),
            column("document_number"),
            column("colour"),
            column("reason"),
            column("popup"),
            column("expires_at"),
        );
        let mut record = csv::StringRecord::new();
        let mut out = Vec::new();
        while let Some((line, fields)) = csv.next(&mut record).map_err(|e| AppError::invalid("csv", e.0))? {
            let fields = match fields {
                Ok(f) => f,
                Err(e) => {
                    out.push((line, None, Err(format!("unreadable row: {e}"))));
                    continue;
                }
            };
            let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).filter(|v| !v.is_empty());
            let doc = get(number).unwrap_or("");
            let raw = RawColour {
                document_kind: get(kind),
                document_number: doc,
                colour: get(col).unwrap_or(""),
                reason: get(reason),
                popup: get(popup),
                expires_at: get(expires),
            };
            let masked = (!doc.is_empty()).then(|| mask::document_number(doc));
            out.push((line, masked, colour(&raw, "", now).map_err(|e| e.to_string())));
        }
        Ok(out)
    }

    /// Checks a colours file (its text) row by row; writes nothing.
    pub fn preview_colours(&self, text: &str, now: DateTime<Utc>) -> AppResult<ColourPreview> {
        let mut p = ColourPreview { green: 0, yellow: 0, red: 0, bad: Vec::new() };
        for (line, document, row) in self.colour_rows(text, now)? {
            match row {
                Ok(c) => match c.colour {
                    CodeColour::Green => p.green += 1,
                    CodeColour::Yellow => p.yellow += 1,
                    CodeColour::Red => p.red += 1,
                },
                Err(reason) => p.bad.push(BadRow { line, document, reason }),
            }
        }
        Ok(p)
    }

    /// Sets the colours of a file, all in one transaction: refused whole (naming the first bad
    /// row's line) if any row is bad. Returns how many were set.
    pub async fn set_colours(&self, text: &str, by: &str, now: DateTime<Utc>) -> AppResult<usize> {
        let mut rows = Vec::new();
        for (line, _, row) in self.colour_rows(text, now)? {
            match row {
                Ok(c) => rows.push(c),
                Err(reason) => return Err(AppError::invalid(format!("csv line {line}"), reason)),
            }
        }
        if rows.is_empty() {
            return Err(AppError::invalid("csv", "the file has no rows"));
        }
        // Yellow and red queue their revocations in the same transaction; listed now.
        let ids = self.store.set_codes(&rows, by, now).await?;
        self.drain_revocation_queue().await?;
        Ok(ids.len())
    }
}
