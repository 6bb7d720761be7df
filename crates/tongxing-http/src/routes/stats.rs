//! Aggregates for analysts and the command centre: counts, never people.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{Duration, Utc};
use serde::Serialize;
use tongxing_domain::auth::Action;
use tongxing_store::{Counts, VerdictCount};
use utoipa::ToSchema;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicySummary {
    pub id: String,
    pub version: String,
    pub name_zh: String,
    pub name_en: String,
    pub valid_from: chrono::DateTime<Utc>,
    pub valid_to: Option<chrono::DateTime<Utc>>,
    pub in_force: bool,
}

/// The loaded entry policies and which one is in force now.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", responses((status = 200, body = Vec<PolicySummary>)))]
pub async fn policies(
    State(s): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<PolicySummary>>> {
    let now = Utc::now();
    let current = s
        .policy_at(now)
        .ok()
        .map(|p| (p.id.clone(), p.version.clone()));
    Ok(Json(
        s.policies
            .iter()
            .map(|p| PolicySummary {
                id: p.id.clone(),
                version: p.version.clone(),
                name_zh: p.name_zh.clone(),
                name_en: p.name_en.clone(),
                valid_from: p.valid_from,
                valid_to: p.valid_to,
                in_force: current
                    .as_ref()
                    .is_some_and(|(i, v)| *i == p.id && *v == p.version),
            })
            .collect(),
    ))
}
