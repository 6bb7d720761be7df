//! The commuter database (通勤人员数据库): applications, checked against the policy at once,
//! and the registry officer's decisions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::facts::CommuterStatus;
use tongxing_domain::text::Reason;
use tongxing_store::PersonInput;
use utoipa::ToSchema;

use super::{document, optional};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::{AppState, schema};

pub use tongxing_app::input::RESIDENCE_PROOFS;

/// A registry officer's decisions on a certification.
pub const ACTIONS: &[&str] = &["approve", "reject", "suspend", "reinstate", "revoke", "expire"];

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Application {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    #[schema(value_type = Option<schema::PersonName>)]
    pub name: Option<String>,
    #[schema(value_type = Option<schema::Phone>)]
    pub phone: Option<String>,
    #[schema(value_type = schema::CommuterKind)]
    pub kind: String,
    /// County-level code of the residence; must be in the policy's surrounding regions.
    #[schema(value_type = schema::RegionCode)]
    pub residence_region: String,
    #[schema(value_type = schema::ResidenceProof)]
    pub residence_proof: String,
    /// Employer's or school's name.
    #[schema(value_type = schema::EmployerName)]
    pub employer_name: String,
    /// Employer's unified social credit code.
    #[schema(value_type = schema::Uscc)]
    pub employer_uscc: String,
    /// County-level code of the workplace; must be in the city.
    #[schema(value_type = schema::RegionCode)]
    pub work_region: String,
}

impl Application {
    /// The fields as the application layer reads them.
    pub fn raw(&self) -> tongxing_app::input::RawApplication<'_> {
        tongxing_app::input::RawApplication {
            name: self.name.as_deref(),
            phone: self.phone.as_deref(),
            kind: &self.kind,
            residence_region: &self.residence_region,
            residence_proof: &self.residence_proof,
            employer_name: &self.employer_name,
            employer_uscc: &self.employer_uscc,
            work_region: &self.work_region,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommuterState {
    pub status: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub valid_until: Option<chrono::DateTime<Utc>>,
}

/// Applies for commuter certification. Refused at once (422) if the residence is not in the
/// surrounding regions or the workplace not in the city; otherwise pending review.
#[utoipa::path(post, path = "/api/v1/commuters", tag = "commuters", operation_id = "apply_commuter", request_body = Application,
    responses((status = 201, body = CommuterState), (status = 409, body = crate::error::Problem)))]
pub async fn apply(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(a): JsonBody<Application>,
) -> ApiResult<(StatusCode, Json<CommuterState>)> {
    caller.require(Action::ApplyCommuter)?;
    let now = Utc::now();
    let policy = s.app.policy_at(now)?;
    let document = document(a.document_kind.as_deref(), &a.document_number, "", now)?;
    let parsed = tongxing_app::input::application(&a.raw(), policy, "")?;
    let app = parsed.application;
    let person =
        PersonInput { document, name: parsed.name, phone: parsed.phone, residence_region: Some(app.residence_region) };
    s.app.store.apply_commuter(&person, &app, &caller.token_id, now).await?;
    Ok((StatusCode::CREATED, Json(CommuterState { status: "pending".into(), valid_until: None })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    #[schema(value_type = schema::CommuterAction)]
    pub action: String,
    /// Required for reject, suspend and revoke.
    #[schema(value_type = Option<schema::Reason>)]
    pub reason: Option<String>,
}

/// A registry officer's decision on a certification.
#[utoipa::path(post, path = "/api/v1/commuters/decision", tag = "commuters", operation_id = "decide_commuter", request_body = DecisionRequest,
    responses((status = 200, body = CommuterState), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(d): JsonBody<DecisionRequest>,
) -> ApiResult<Json<CommuterState>> {
    caller.require(Action::DecideCommuter)?;
    let now = Utc::now();
    let policy = s.app.policy_at(now)?;
    let document = document(d.document_kind.as_deref(), &d.document_number, "", now)?;
    let (to, needs_reason) = match d.action.trim() {
        "approve" | "reinstate" => (CommuterStatus::Approved, false),
        "reject" => (CommuterStatus::Rejected, true),
        "suspend" => (CommuterStatus::Suspended, true),
        "revoke" => (CommuterStatus::Revoked, true),
        "expire" => (CommuterStatus::Expired, false),
        other => {
            return Err(ApiError::invalid(
                "action",
                format!("{} is not one of: {}", tongxing_domain::text::quote(other), ACTIONS.join(", ")),
            ));
        }
    };
    let reason = optional("reason", d.reason.as_deref(), Reason::parse)?.map(Reason::into_string);
    if needs_reason && reason.is_none() {
        return Err(ApiError::invalid("reason", format!("a reason is required to {}", d.action.trim())));
    }
    let person = s
        .app
        .store
        .person(&document.key())
        .await?
        .ok_or_else(|| ApiError::NotFound("no person is registered with this document".into()))?;
    let valid_until = (d.action.trim() == "approve").then(|| now + Duration::days(policy.commuter_validity_days));
    s.app.change_commuter(person.id, to, reason.as_deref(), valid_until, &caller.token_id, now).await?;
    let rec = s.app.store.commuter(person.id).await?;
    Ok(Json(CommuterState { status: to.to_string(), valid_until: rec.and_then(|r| r.valid_until) }))
}
