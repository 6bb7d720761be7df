//! Aggregates for analysts and the command centre: counts, never people.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::Deserialize;
use tongxing_domain::auth::Action;
use tongxing_store::{Counts, VerdictCount};
use utoipa::IntoParams;

use super::checks::period;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::QueryParams;

/// How many people, samples, commuters, checkpoints and entry events the system holds.
#[utoipa::path(get, path = "/api/v1/stats/overview", tag = "stats", operation_id = "stats_overview",
    responses((status = 200, body = Object)))]
pub async fn overview(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Counts>> {
    caller.require(Action::ReadStats)?;
    Ok(Json(s.app.store.counts().await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Start (inclusive), RFC 3339 with an offset; default 24 hours before `until`.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// End (exclusive), RFC 3339 with an offset; default now.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub until: Option<String>,
}

/// Verdicts by checkpoint over a period (default: the last 24 hours).
#[utoipa::path(get, path = "/api/v1/stats/verdicts", tag = "stats", operation_id = "stats_verdicts", params(PeriodQuery),
    responses((status = 200, body = Vec<Object>)))]
pub async fn verdicts(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PeriodQuery>,
) -> ApiResult<Json<Vec<VerdictCount>>> {
    caller.require(Action::ReadStats)?;
    let (since, until) = period(q.since.as_deref(), q.until.as_deref(), Utc::now())?;
    Ok(Json(s.app.store.verdict_counts(since, until).await?))
}
