//! Checkpoint decisions. The officer sends a document number; the answer is a verdict with
//! every reason as a stable code and a message in Chinese and English. Every check is recorded
//! as an entry event before the answer goes out.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::decision::{Lang, Reason};
use tongxing_domain::facts::{CheckpointFacts, CodeColour, CommuterStatus, Facts};
use tongxing_domain::ids::Document;
use tongxing_domain::text::{CheckpointId, Plate};
use tongxing_domain::{mask, time};
use tongxing_store::{Checkpoint, EntryEvent, EntryRecord};
use utoipa::{IntoParams, ToSchema};

use super::{document, optional, parse_time_opt};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, QueryParams};
use crate::{AppState, schema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    #[schema(value_type = schema::CheckpointId)]
    pub checkpoint_id: String,
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// Vehicle plate, if the person is in a vehicle.
    #[schema(value_type = Option<schema::Plate>)]
    pub plate: Option<String>,
    /// The person signed the entry commitment letter for a pending service-area sample.
    #[serde(default)]
    pub commitment_letter: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonView {
    /// Stable code, e.g. NO_VALID_TEST.
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
    /// The sample the reason refers to, "lab/sample_id".
    pub sample: Option<String>,
    /// The rule (Identifier) that gave this reason.
    pub rule: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckOutcome {
    /// pass, conditional or deny.
    pub verdict: String,
    pub reasons: Vec<ReasonView>,
    /// Masked document number, for the officer to compare with the card.
    pub document: String,
    /// Masked name, if known.
    pub name: Option<String>,
    /// The health-code colour in force.
    pub code_colour: String,
    /// A certified commuter (badge on the health code).
    pub commuter: bool,
    pub policy_id: String,
    pub policy_version: String,
    #[serde(serialize_with = "time::serialize")]
    pub checked_at: DateTime<Utc>,
}

/// Decides for one person and records the entry event. The rule set in force at `now`
/// decides; the pure evaluation sits between loading the facts and recording the event.
pub async fn decide_and_record(
    s: &AppState,
    document: &Document,
    checkpoint: &Checkpoint,
    plate: Option<Plate>,
    commitment_letter: bool,
    officer: &str,
    now: DateTime<Utc>,
) -> ApiResult<CheckOutcome> {
    let policy = s.policy_at(now)?;
    let rules = s.rules();
    let rule_set = tongxing_rules::select(&rules, now)
        .ok_or_else(|| ApiError::Unavailable(format!("no entry rule set is in force at {}", time::rfc3339(now))))?;
    let doc_key = document.key();
    let loaded = s.store.load_facts(&doc_key, now - policy.lookback(), now).await?;
    let (person_id, mut person) = (loaded.person_id, loaded.facts);
    person.commitment_letter = commitment_letter;
    let facts =
        Facts { person, checkpoint: CheckpointFacts { id: checkpoint.id.clone(), road: checkpoint.road.clone() } };
    let decision = rule_set.decide(&facts, now);

    let colour_in_force = facts
        .person
        .code
        .as_ref()
        .filter(|c| c.expires_at.is_none_or(|e| now < e))
        .map(|c| c.colour)
        .unwrap_or(CodeColour::Green);
    let colour_reason = facts.person.code.as_ref().and_then(|c| c.reason.as_deref());
    let test_point = checkpoint.road.as_deref().and_then(|r| rule_set.test_point_on_road(r));
    let tp_name = |key: &str| test_point.and_then(|(_, d)| d.get(key)).and_then(|v| v.as_str());
    let reasons = decision
        .reasons
        .iter()
        .map(|r| {
            // A failing rule is what was not met; a passing one is what allowed entry.
            let (not_met_zh, not_met_en) =
                if r.rule_passed || r.rule.is_none() { ("", "") } else { ("未满足：", "Not met: ") };
            ReasonView {
                code: r.code.as_str().into(),
                message_zh: format!(
                    "{not_met_zh}{} {}",
                    r.description_zh,
                    r.code.advice(Lang::Zh, tp_name("name_zh"), colour_reason)
                ),
                message_en: format!(
                    "{not_met_en}{} {}",
                    r.description_en,
                    r.code.advice(Lang::En, tp_name("name_en"), colour_reason)
                ),
                sample: r.sample.clone(),
                rule: r.rule.map(str::to_string),
            }
        })
        .collect();
    let commuter = facts
        .person
        .commuter
        .as_ref()
        .is_some_and(|c| c.status == CommuterStatus::Approved && c.valid_until.is_none_or(|u| now < u));

    let first = decision.reasons.first().map(|r| r.code.as_str()).unwrap_or("");
    s.metrics.verdict(decision.verdict.as_str(), first);
    let outcome = CheckOutcome {
        verdict: decision.verdict.as_str().into(),
        reasons,
        document: mask::document_number(document.number()),
        name: loaded.name.as_deref().map(mask::name),
        code_colour: colour_in_force.to_string(),
        commuter,
        policy_id: rule_set.id().to_string(),
        policy_version: rule_set.version().to_string(),
        checked_at: now,
    };
    let event = EntryEvent {
        checkpoint_id: checkpoint.id.clone(),
        checked_at: now,
        doc_key,
        person_id,
        verdict: decision.verdict,
        reasons: decision.reasons.iter().map(|r| Reason { code: r.code, sample: r.sample.clone() }).collect(),
        policy_id: rule_set.id().to_string(),
        policy_version: rule_set.version().to_string(),
        rule_versions: decision.rule_versions.to_vec(),
        facts,
        plate: plate.map(Plate::into_string),
        officer: officer.to_string(),
        commuter_first_check: decision.records_commuter_first_check,
    };
    s.store.record_entry(event).await?;
    Ok(outcome)
}

/// Checks one person at a checkpoint.
#[utoipa::path(post, path = "/api/v1/checks", tag = "checks", operation_id = "check_person", request_body = CheckRequest,
    responses((status = 200, body = CheckOutcome)))]
pub async fn check(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CheckRequest>,
) -> ApiResult<Json<CheckOutcome>> {
    caller.require(Action::Check)?;
    let checkpoint_id = CheckpointId::parse(&req.checkpoint_id).at("checkpoint_id")?;
    caller.require_scope("checkpoint", checkpoint_id.as_str())?;
    let now = Utc::now();
    let document = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    let plate = optional("plate", req.plate.as_deref(), Plate::parse)?;
    let cp = super::checkpoints::find(&s, &checkpoint_id, "checkpoint_id").await?;
    Ok(Json(decide_and_record(&s, &document, &cp, plate, req.commitment_letter, &caller.token_id, now).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Occupant {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    #[serde(default)]
    pub commitment_letter: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleCheck {
    #[schema(value_type = schema::CheckpointId)]
    pub checkpoint_id: String,
    #[schema(value_type = schema::Plate)]
    pub plate: String,
    /// 1 to 80 occupants (a coach).
    #[schema(min_items = 1, max_items = 80)]
    pub occupants: Vec<Occupant>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VehicleOutcome {
    pub plate: String,
    /// One outcome per occupant, in order.
    pub occupants: Vec<CheckOutcome>,
}

/// Checks every occupant of a vehicle: one verdict each. If any document number is invalid,
/// nothing is recorded and the error names the occupant.
#[utoipa::path(post, path = "/api/v1/checks/vehicle", tag = "checks", operation_id = "check_vehicle", request_body = VehicleCheck,
    responses((status = 200, body = VehicleOutcome)))]
pub async fn check_vehicle(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<VehicleCheck>,
) -> ApiResult<Json<VehicleOutcome>> {
    caller.require(Action::Check)?;
    let checkpoint_id = CheckpointId::parse(&req.checkpoint_id).at("checkpoint_id")?;
    caller.require_scope("checkpoint", checkpoint_id.as_str())?;
    let now = Utc::now();
    let plate = Plate::parse(&req.plate).at("plate")?;
    if req.occupants.is_empty() || req.occupants.len() > 80 {
        return Err(ApiError::invalid("occupants", format!("1 to 80 occupants, got {}", req.occupants.len())));
    }
    let docs = req
        .occupants
        .iter()
        .enumerate()
        .map(|(i, o)| document(o.document_kind.as_deref(), &o.document_number, &format!("occupants[{i}]."), now))
        .collect::<Result<Vec<_>, _>>()?;
    let cp = super::checkpoints::find(&s, &checkpoint_id, "checkpoint_id").await?;
    let mut occupants = Vec::with_capacity(docs.len());
    for (doc, o) in docs.iter().zip(&req.occupants) {
        occupants.push(
            decide_and_record(&s, doc, &cp, Some(plate.clone()), o.commitment_letter, &caller.token_id, now).await?,
        );
    }
    Ok(Json(VehicleOutcome { plate: plate.into_string(), occupants }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Start (inclusive), RFC 3339 with an offset; default 24 hours before `until`.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// End (exclusive), RFC 3339 with an offset; default now.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub until: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// A period `[since, until)` from two optional query times; the default is the last 24 hours.
pub fn period(
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let until = parse_time_opt("until", until)?.unwrap_or(now);
    let since = parse_time_opt("since", since)?.unwrap_or(until - Duration::hours(24));
    if since >= until {
        return Err(ApiError::invalid("since", "must be before until"));
    }
    Ok((since, until))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    pub checkpoint_id: String,
    #[serde(serialize_with = "time::serialize")]
    pub checked_at: DateTime<Utc>,
    /// Masked document.
    pub document: String,
    pub verdict: String,
    #[schema(value_type = Object)]
    pub reasons: serde_json::Value,
    pub policy_id: String,
    pub policy_version: String,
    /// [[rule id, version], ...] evaluated for this decision.
    #[schema(value_type = Object)]
    pub rule_versions: serde_json::Value,
    pub plate: Option<String>,
    pub officer: String,
}

/// Entry events of a period (masked), for explaining decisions.
#[utoipa::path(get, path = "/api/v1/entries", tag = "checks", operation_id = "list_entries", params(EntriesQuery),
    responses((status = 200, body = Vec<EntryView>)))]
pub async fn entries(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<EntriesQuery>,
) -> ApiResult<Json<Vec<EntryView>>> {
    caller.require(Action::ReadEntries)?;
    let (since, until) = period(q.since.as_deref(), q.until.as_deref(), Utc::now())?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("1 to 10000, got {limit}")));
    }
    let rows: Vec<EntryRecord> = s.store.entries(since, until, 0, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| EntryView {
                id: e.id,
                checkpoint_id: e.checkpoint_id,
                checked_at: e.checked_at,
                document: Document::from_key(&e.doc_key).map(|d| mask::document_number(d.number())).unwrap_or_default(),
                verdict: e.verdict,
                reasons: e.reasons,
                policy_id: e.policy_id,
                policy_version: e.policy_version,
                rule_versions: e.rule_versions,
                plate: e.plate,
                officer: e.officer,
            })
            .collect(),
    ))
}
