//! Checkpoint decisions. The officer sends a document number; the answer is a verdict with
//! every reason as a stable code and a message in Chinese and English. Every check is recorded
//! as an entry event before the answer goes out.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::decision::{Lang, Reason};
use tongxing_domain::facts::{CheckpointFacts, CodeColour, CommuterStatus, Facts};
use tongxing_domain::ids::Document;
use tongxing_domain::mask;
use tongxing_store::{Checkpoint, EntryEvent, EntryRecord};
use utoipa::{IntoParams, ToSchema};

use super::{DocumentRef, parse_document, text};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, JsonBody};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckRequest {
    pub checkpoint_id: String,
    #[serde(flatten)]
    pub document: DocumentRef,
    /// Vehicle plate, if the person is in a vehicle.
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
    pub checked_at: DateTime<Utc>,
}

/// Decides for one person and records the entry event. The rule set in force at `now`
/// decides; the pure evaluation sits between loading the facts and recording the event.
pub async fn decide_and_record(
    s: &AppState,
    document: &Document,
    checkpoint: &Checkpoint,
    plate: Option<String>,
    commitment_letter: bool,
    officer: &str,
    now: DateTime<Utc>,
) -> ApiResult<CheckOutcome> {
    let policy = s.policy_at(now)?;
    let rules = s.rules();
    let rule_set = tongxing_rules::select(&rules, now)
        .ok_or_else(|| ApiError::Unavailable(format!("no entry rule set is in force at {now}")))?;
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
        plate,
        officer: officer.to_string(),
        commuter_first_check: decision.records_commuter_first_check,
    };
    s.store.record_entry(event).await?;
    Ok(outcome)
}

fn parse_plate(v: Option<&str>, field: &str) -> Result<Option<String>, ApiError> {
    let plate = text(field, v, 16)?;
    if let Some(p) = &plate
        && p.chars().count() < 5
    {
        return Err(ApiError::invalid(field, "a plate has at least 5 characters, e.g. 冀R12345"));
    }
    Ok(plate)
}

/// Checks one person at a checkpoint.
#[utoipa::path(post, path = "/api/v1/checks", tag = "checks", request_body = CheckRequest,
    responses((status = 200, body = CheckOutcome), (status = 422, body = crate::error::Problem)))]
pub async fn check(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CheckRequest>,
) -> ApiResult<Json<CheckOutcome>> {
    caller.require(Action::Check)?;
    caller.require_scope("checkpoint", &req.checkpoint_id)?;
    let now = Utc::now();
    let document = parse_document(&req.document, "", now)?;
    let plate = parse_plate(req.plate.as_deref(), "plate")?;
    let cp = super::checkpoints::find(&s, &req.checkpoint_id, "checkpoint_id").await?;
    Ok(Json(decide_and_record(&s, &document, &cp, plate, req.commitment_letter, &caller.token_id, now).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Occupant {
    #[serde(flatten)]
    pub document: DocumentRef,
    #[serde(default)]
    pub commitment_letter: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VehicleCheck {
    pub checkpoint_id: String,
    pub plate: String,
    /// Up to 80 occupants (a coach).
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
#[utoipa::path(post, path = "/api/v1/checks/vehicle", tag = "checks", request_body = VehicleCheck,
    responses((status = 200, body = VehicleOutcome), (status = 422, body = crate::error::Problem)))]
pub async fn check_vehicle(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<VehicleCheck>,
) -> ApiResult<Json<VehicleOutcome>> {
    caller.require(Action::Check)?;
    caller.require_scope("checkpoint", &req.checkpoint_id)?;
    let now = Utc::now();
    let plate = parse_plate(Some(&req.plate), "plate")?.ok_or_else(|| ApiError::invalid("plate", "is required"))?;
    if req.occupants.is_empty() || req.occupants.len() > 80 {
        return Err(ApiError::invalid("occupants", "1 to 80 occupants"));
    }
    let docs = req
        .occupants
        .iter()
        .enumerate()
        .map(|(i, o)| parse_document(&o.document, &format!("occupants[{i}]."), now))
        .collect::<Result<Vec<_>, _>>()?;
    let cp = super::checkpoints::find(&s, &req.checkpoint_id, "checkpoint_id").await?;
    let mut occupants = Vec::with_capacity(docs.len());
    for (doc, o) in docs.iter().zip(&req.occupants) {
        occupants.push(
            decide_and_record(&s, doc, &cp, Some(plate.clone()), o.commitment_letter, &caller.token_id, now).await?,
        );
    }
    Ok(Json(VehicleOutcome { plate, occupants }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EntriesQuery {
    /// Start (inclusive), RFC 3339; default 24 hours ago.
    pub since: Option<DateTime<Utc>>,
    /// End (exclusive), RFC 3339; default now.
    pub until: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    pub checkpoint_id: String,
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
#[utoipa::path(get, path = "/api/v1/entries", tag = "checks", params(EntriesQuery),
    responses((status = 200, body = Vec<EntryView>)))]
pub async fn entries(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<EntriesQuery>,
) -> ApiResult<Json<Vec<EntryView>>> {
    caller.require(Action::ReadEntries)?;
    let now = Utc::now();
    let until = q.until.unwrap_or(now);
    let since = q.since.unwrap_or(until - Duration::hours(24));
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "1 to 10000"));
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
