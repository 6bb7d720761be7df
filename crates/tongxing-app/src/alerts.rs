//! Alerts for the health authority: listed and filtered, acknowledged (by whom, when), resolved
//! (with an outcome). An alert moves open → acknowledged → resolved (or open → resolved), each
//! move with its outbox event; a move to a state it has passed is a conflict. The alert's
//! `detail` is what raised it put there (masked personal data): it is listed as it is.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tongxing_domain::text::Reason;
use tongxing_domain::time;
use tongxing_store::{AlertFilter, AlertRecord, OutboxEvent};
use utoipa::ToSchema;

use crate::{App, AppError, AppResult};

/// The states of an alert, in order.
pub const STATUSES: &[&str] = &["open", "acknowledged", "resolved"];
/// The kinds of alert.
pub const KINDS: &[&str] = &[
    "positive",
    "overdue",
    "pool_positive",
    // The early warnings (`crate::analytics::WARNING_KINDS`).
    "cloned_code",
    "shortcut",
    "surge",
    "slow_rise",
    "positive_cluster",
    "lab_late",
    "lab_positivity",
];
/// The event types of the outbox (the SSE stream's `event`, a webhook's `type`).
pub const EVENT_TYPES: &[&str] = &["alert.raised", "alert.acknowledged", "alert.resolved"];
/// The most alerts one listing returns, and the default.
pub const MAX_LIMIT: i64 = 1000;
pub const DEFAULT_LIMIT: i64 = 100;

/// An alert as the health authority sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub id: i64,
    /// positive, overdue, pool_positive, or an early warning (cloned_code, shortcut, surge,
    /// slow_rise, positive_cluster, lab_late, lab_positivity).
    pub kind: String,
    /// The cause: one alert per cause (a re-sent result raises nothing new).
    pub dedup_key: String,
    /// What raised it says (personal data masked).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// open, acknowledged or resolved.
    pub status: String,
    #[serde(serialize_with = "time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub raised_at: DateTime<Utc>,
    /// The token that acknowledged it.
    pub acknowledged_by: Option<String>,
    #[serde(serialize_with = "time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    #[serde(serialize_with = "time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

impl From<AlertRecord> for AlertView {
    fn from(a: AlertRecord) -> Self {
        AlertView {
            id: a.id,
            kind: a.kind,
            dedup_key: a.dedup_key,
            detail: a.payload,
            status: a.status,
            raised_at: a.raised_at,
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at,
            resolved_by: a.resolved_by,
            resolved_at: a.resolved_at,
            outcome: a.outcome,
        }
    }
}

/// An outbox event as it is delivered, on the SSE stream (`data`) and to webhooks (the body):
/// the Standard Webhooks payload shape.
pub fn envelope(e: &OutboxEvent) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "type": e.event,
        "timestamp": time::rfc3339(e.created_at),
        "data": e.payload,
    })
}

/// Which alerts to list, as the edge received it.
#[derive(Debug, Default)]
pub struct AlertQuery<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> AppResult<String> {
    let v = v.trim();
    if allowed.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(AppError::invalid(
            field,
            format!("{} is not one of: {}", tongxing_domain::text::quote(v), allowed.join(", ")),
        ))
    }
}

impl App {
    /// Alerts, newest first.
    pub async fn alerts(&self, q: &AlertQuery<'_>) -> AppResult<Vec<AlertView>> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::invalid("limit", format!("must be from 1 to {MAX_LIMIT}, got {limit}")));
        }
        let filter = AlertFilter {
            status: q.status.map(|s| one_of("status", s, STATUSES)).transpose()?,
            kind: q.kind.map(|k| one_of("kind", k, KINDS)).transpose()?,
            since: q.since,
            limit,
        };
        Ok(self.store.alerts(&filter).await?.into_iter().map(AlertView::from).collect())
    }

    pub async fn alert(&self, id: i64) -> AppResult<AlertView> {
        self.store.alert(id).await?.map(AlertView::from).ok_or_else(|| no_alert(id))
    }

    /// Acknowledges an open alert.
    pub async fn acknowledge_alert(&self, id: i64, by: &str, now: DateTime<Utc>) -> AppResult<AlertView> {
        if !self.store.move_alert(id, "open", "acknowledged", by, None, now).await? {
            let a = self.store.alert(id).await?.ok_or_else(|| no_alert(id))?;
            return Err(passed(&a, "acknowledged"));
        }
        self.alert(id).await
    }

    /// Resolves an open or acknowledged alert with its outcome.
    pub async fn resolve_alert(&self, id: i64, by: &str, outcome: &Reason, now: DateTime<Utc>) -> AppResult<AlertView> {
        for from in ["acknowledged", "open"] {
            if self.store.move_alert(id, from, "resolved", by, Some(outcome.as_str()), now).await? {
                return self.alert(id).await;
            }
        }
        let a = self.store.alert(id).await?.ok_or_else(|| no_alert(id))?;
        Err(passed(&a, "resolved"))
    }
}

fn no_alert(id: i64) -> AppError {
    AppError::NotFound(format!("no alert {id}"))
}

/// The conflict of a move to a state the alert is in or has passed.
fn passed(a: &AlertRecord, to: &str) -> AppError {
    let (by, at) = match a.status.as_str() {
        "acknowledged" => (a.acknowledged_by.as_deref(), a.acknowledged_at),
        _ => (a.resolved_by.as_deref(), a.resolved_at),
    };
    let when = at.map(|t| format!(" at {}", time::rfc3339(t))).unwrap_or_default();
    AppError::Conflict(format!(
        "alert {} cannot be {to}: it was {} by {}{when}",
        a.id,
        a.status,
        by.unwrap_or("someone")
    ))
}
