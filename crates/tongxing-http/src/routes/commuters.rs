//! The commuter database (通勤人员数据库): applications, checked against the policy at once,
//! and the registry officer's decisions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::Policy;
use tongxing_domain::auth::Action;
use tongxing_domain::facts::{CommuterKind, CommuterStatus};
use tongxing_domain::ids::RegionCode;
use tongxing_domain::uscc::Uscc;
use tongxing_store::{CommuterApplication, PersonInput};
use utoipa::ToSchema;

use super::people::{parse_phone, parse_region};
use super::{DocumentRef, parse_document, required, text};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, JsonBody};

/// Proofs of residence the police accept.
pub const RESIDENCE_PROOFS: &[&str] = &["household_register", "property_deed", "lease", "residents_committee_letter"];

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Application {
    #[serde(flatten)]
    pub document: DocumentRef,
    pub name: Option<String>,
    pub phone: Option<String>,
    /// worker, student or escorting_parent.
    pub kind: String,
    /// County-level code of the residence; must be in the policy's surrounding regions.
    pub residence_region: String,
    /// household_register, property_deed, lease or residents_committee_letter.
    pub residence_proof: String,
    /// Employer's or school's name.
    pub employer_name: String,
    /// Employer's unified social credit code (GB 32100-2015).
    pub employer_uscc: String,
    /// County-level code of the workplace; must be in the city.
    pub work_region: String,
}

/// Checks an application against the policy; errors name the field.
pub fn parse_application(
    a: &Application,
    policy: &Policy,
    at: &str,
) -> Result<(Option<String>, Option<String>, CommuterApplication), ApiError> {
    let f = |name: &str| format!("{at}{name}");
    let kind = CommuterKind::parse(&a.kind).map_err(|e| ApiError::invalid(f("kind"), e))?;
    let residence_region = parse_region(&f("residence_region"), Some(&a.residence_region))?
        .ok_or_else(|| ApiError::invalid(f("residence_region"), "is required"))?;
    if policy.is_surrounding(residence_region).is_none() {
        let list: Vec<String> =
            policy.surrounding_regions.iter().map(|r| format!("{} ({}xxxx)", r.name, r.prefix)).collect();
        return Err(ApiError::invalid(
            f("residence_region"),
            format!(
                "{residence_region} {} is not in the surrounding regions whose residents may apply: {}",
                residence_region.name(),
                list.join(", ")
            ),
        ));
    }
    let residence_proof = required(&f("residence_proof"), Some(&a.residence_proof), 40)?;
    if !RESIDENCE_PROOFS.contains(&residence_proof.as_str()) {
        return Err(ApiError::invalid(
            f("residence_proof"),
            format!("'{residence_proof}' is not one of: {}", RESIDENCE_PROOFS.join(", ")),
        ));
    }
    let employer_name = required(&f("employer_name"), Some(&a.employer_name), 100)?;
    let employer_uscc =
        Uscc::parse(&a.employer_uscc).map_err(|e| ApiError::invalid(f("employer_uscc"), e))?.to_string();
    let work_region: RegionCode = parse_region(&f("work_region"), Some(&a.work_region))?
        .ok_or_else(|| ApiError::invalid(f("work_region"), "is required"))?;
    if !policy.is_city(work_region) {
        return Err(ApiError::invalid(
            f("work_region"),
            format!("{work_region} {} is not in the city", work_region.name()),
        ));
    }
    let name = text(&f("name"), a.name.as_deref(), 64)?;
    let phone = parse_phone(&f("phone"), a.phone.as_deref())?;
    Ok((
        name,
        phone,
        CommuterApplication { kind, residence_region, residence_proof, employer_name, employer_uscc, work_region },
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommuterState {
    pub status: String,
    pub valid_until: Option<chrono::DateTime<Utc>>,
}

/// Applies for commuter certification. Refused at once (422) if the residence is not in the
/// surrounding regions or the workplace not in the city; otherwise pending review.
#[utoipa::path(post, path = "/api/v1/commuters", tag = "commuters", request_body = Application,
    responses((status = 201, body = CommuterState), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn apply(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(a): JsonBody<Application>,
) -> ApiResult<(StatusCode, Json<CommuterState>)> {
    caller.require(Action::ApplyCommuter)?;
    let now = Utc::now();
    let policy = s.policy_at(now)?;
    let document = parse_document(&a.document, "", now)?;
    let (name, phone, app) = parse_application(&a, policy, "")?;
    let person = PersonInput { document, name, phone, residence_region: Some(app.residence_region) };
    s.store.apply_commuter(&person, &app, &caller.token_id, now).await?;
    Ok((StatusCode::CREATED, Json(CommuterState { status: "pending".into(), valid_until: None })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DecisionRequest {
    #[serde(flatten)]
    pub document: DocumentRef,
    /// approve, reject, suspend, reinstate, revoke or expire.
    pub action: String,
    /// Required for reject, suspend and revoke.
    pub reason: Option<String>,
}

/// A registry officer's decision on a certification.
#[utoipa::path(post, path = "/api/v1/commuters/decision", tag = "commuters", request_body = DecisionRequest,
    responses((status = 200, body = CommuterState), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(d): JsonBody<DecisionRequest>,
) -> ApiResult<Json<CommuterState>> {
    caller.require(Action::DecideCommuter)?;
    let now = Utc::now();
    let policy = s.policy_at(now)?;
    let document = parse_document(&d.document, "", now)?;
    let (to, needs_reason) = match d.action.trim() {
        "approve" | "reinstate" => (CommuterStatus::Approved, false),
        "reject" => (CommuterStatus::Rejected, true),
        "suspend" => (CommuterStatus::Suspended, true),
        "revoke" => (CommuterStatus::Revoked, true),
        "expire" => (CommuterStatus::Expired, false),
        other => {
            return Err(ApiError::invalid(
                "action",
                format!("'{other}' is not one of: approve, reject, suspend, reinstate, revoke, expire"),
            ));
        }
    };
    let reason = text("reason", d.reason.as_deref(), 200)?;
    if needs_reason && reason.is_none() {
        return Err(ApiError::invalid("reason", format!("a reason is required to {}", d.action.trim())));
    }
    let person = s
        .store
        .person(&document.key())
        .await?
        .ok_or_else(|| ApiError::NotFound("no person is registered with this document".into()))?;
    let valid_until = (d.action.trim() == "approve").then(|| now + Duration::days(policy.commuter_validity_days));
    s.store.change_commuter(person.id, to, reason.as_deref(), valid_until, &caller.token_id, now).await?;
    let rec = s.store.commuter(person.id).await?;
    Ok(Json(CommuterState { status: to.to_string(), valid_until: rec.and_then(|r| r.valid_until) }))
}
