//! Aggregates for analysts and the command centre: counts, never people.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{Duration, Utc};
use tongxing_domain::auth::Action;
use tongxing_store::{Counts, VerdictCount};

use super::checks::EntriesQuery;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

/// How many people, samples, commuters, checkpoints and entry events the system holds.
#[utoipa::path(get, path = "/api/v1/stats/overview", tag = "stats", responses((status = 200, body = Object)))]
pub async fn overview(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Counts>> {
    caller.require(Action::ReadStats)?;
    Ok(Json(s.store.counts().await?))
}

/// Verdicts by checkpoint over a period (default: the last 24 hours).
#[utoipa::path(get, path = "/api/v1/stats/verdicts", tag = "stats", params(EntriesQuery), responses((status = 200, body = Vec<Object>)))]
pub async fn verdicts(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<EntriesQuery>,
) -> ApiResult<Json<Vec<VerdictCount>>> {
    caller.require(Action::ReadStats)?;
    let until = q.until.unwrap_or_else(Utc::now);
    let since = q.since.unwrap_or(until - Duration::hours(24));
    Ok(Json(s.store.verdict_counts(since, until).await?))
}
