//! Entry policies as rule sets: list, publish (validated first), activate, and the "what if"
//! dry run before a change. Publication, activation and dry runs are audited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::text::{PolicyId, PolicyVersion};
use tongxing_domain::time;
use tongxing_rules::RuleSet;
use tongxing_store::HistoryEntry;
use utoipa::ToSchema;

use super::parse_time_opt;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::JsonBody;
use crate::{AppState, schema};
use tongxing_app::dryrun::DryRunReport;

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicySummary {
    pub id: String,
    pub version: String,
    pub name_zh: String,
    pub name_en: String,
    #[serde(serialize_with = "time::serialize")]
    pub valid_from: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize_opt")]
    pub valid_to: Option<DateTime<Utc>>,
    /// The rule set deciding checks now.
    pub in_force: bool,
    /// builtin, published (not yet activated) or activated.
    pub source: String,
    pub rules: usize,
}

fn summary(rs: &RuleSet, in_force: bool, source: &str) -> PolicySummary {
    PolicySummary {
        id: rs.id().into(),
        version: rs.version().into(),
        name_zh: rs.name(tongxing_domain::decision::Lang::Zh).into(),
        name_en: rs.name(tongxing_domain::decision::Lang::En).into(),
        valid_from: rs.valid_from(),
        valid_to: rs.valid_to(),
        in_force,
        source: source.into(),
        rules: rs.rules().len(),
    }
}

/// The rule sets: built-in, published and activated, and which one decides checks now.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", operation_id = "list_policies",
    responses((status = 200, body = Vec<PolicySummary>)))]
pub async fn list(State(s): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<PolicySummary>>> {
    let now = Utc::now();
    let rules = s.app.rules();
    let current = tongxing_rules::select(&rules, now).map(|r| (r.id().to_string(), r.version().to_string()));
    let is_current = |rs: &RuleSet| current.as_ref().is_some_and(|(i, v)| i == rs.id() && v == rs.version());
    let mut out: Vec<PolicySummary> = rules
        .iter()
        .map(|rs| {
            let src = if tongxing_rules::is_builtin(rs.id(), rs.version()) { "builtin" } else { "activated" };
            summary(rs, is_current(rs), src)
        })
        .collect();
    for p in s.app.store.policies().await? {
        if p.activated_at.is_none()
            && let Ok(rs) = RuleSet::from_json(&p.body)
        {
            out.push(summary(&rs, false, "published"));
        }
    }
    Ok(Json(out))
}

fn parse_rule_set(body: &serde_json::Value) -> ApiResult<(RuleSet, String)> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::invalid("body", e))?;
    let rs = tongxing_app::policies::parse_rule_set(&text)?;
    Ok((rs, text))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub id: String,
    pub version: String,
    /// false when exactly this rule set was published before (nothing changed).
    pub new: bool,
    pub activated: bool,
}

/// Publishes a rule set (health authority). It is validated first: an invalid rule is refused
/// naming the rule and the reason. Publishing does not activate it.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", operation_id = "publish_policy", request_body = Object,
    responses((status = 201, body = Published), (status = 409, body = crate::error::Problem)))]
pub async fn publish(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    caller.require(Action::PublishPolicy)?;
    let (rs, text) = parse_rule_set(&body)?;
    let new = s.app.publish_policy(&rs, &text, &caller.token_id, Utc::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Published { id: rs.id().into(), version: rs.version().into(), new, activated: false }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[schema(value_type = schema::PolicyId)]
    pub id: String,
    #[schema(value_type = schema::PolicyVersion)]
    pub version: String,
}

/// Activates a published rule set: it decides checks from its ValidFrom (health authority).
#[utoipa::path(post, path = "/api/v1/policies/activate", tag = "policies", operation_id = "activate_policy", request_body = ActivateRequest,
    responses((status = 200, body = Published), (status = 404, body = crate::error::Problem)))]
pub async fn activate(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ActivateRequest>,
) -> ApiResult<Json<Published>> {
    caller.require(Action::PublishPolicy)?;
    let id = PolicyId::parse(&req.id).at("id")?;
    let version = PolicyVersion::parse(&req.version).at("version")?;
    s.app.activate_policy(&id, &version, &caller.token_id, Utc::now()).await?;
    Ok(Json(Published { id: id.into_string(), version: version.into_string(), new: false, activated: true }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// The candidate rule set (same shape as for publishing).
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
    /// Start of the period replayed; default 7 days before `until`.
    #[schema(value_type = Option<schema::Timestamp>)]
    pub since: Option<String>,
    /// End (exclusive); default now.
    #[schema(value_type = Option<schema::Timestamp>)]
    pub until: Option<String>,
    /// How many changed entries to show (pseudonymised); default 20.
    #[schema(minimum = 0, maximum = 1000)]
    pub sample: Option<u32>,
}

/// Replays the recorded entry events of a period under a candidate rule set and reports how
/// many verdicts would change, in which direction, by checkpoint and by reason.
#[utoipa::path(post, path = "/api/v1/policies/dry-run", tag = "policies", operation_id = "dry_run_policy", request_body = DryRunRequest,
    responses((status = 200, body = DryRunReport)))]
pub async fn dry_run(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<DryRunRequest>,
) -> ApiResult<Json<DryRunReport>> {
    caller.require(Action::PublishPolicy)?;
    let (rs, _) = parse_rule_set(&req.policy).map_err(|e| match e {
        ApiError::Invalid { field, reason } => ApiError::Invalid { field: format!("policy.{field}"), reason },
        other => other,
    })?;
    let now = Utc::now();
    let until = parse_time_opt("until", req.until.as_deref())?.unwrap_or(now);
    let since = parse_time_opt("since", req.since.as_deref())?.unwrap_or(until - Duration::days(7));
    let sample = req.sample.unwrap_or(20);
    if sample > 1000 {
        return Err(ApiError::invalid("sample", format!("at most 1000, got {sample}")));
    }
    let report = s.app.dry_run_policy(&rs, since, until, sample as usize, &caller.token_id, now).await?;
    Ok(Json(report))
}

/// Publications, activations and dry runs, oldest first.
#[utoipa::path(get, path = "/api/v1/policies/audit", tag = "policies", operation_id = "policy_audit",
    responses((status = 200, body = Vec<Object>)))]
pub async fn audit(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<HistoryEntry>>> {
    caller.require(Action::PublishPolicy)?;
    Ok(Json(s.app.store.policy_audit_log().await?))
}
