//! The commuter database (通勤人员数据库): applications, checked against the policy at once,
//! and the registry officer's decisions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
pub use tongxing_app::commuter::{ACTIONS, CommuterState, QueuedApplication};
use tongxing_domain::auth::Action;
use tongxing_domain::facts::CommuterStatus;
use utoipa::{IntoParams, ToSchema};

use super::document;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, QueryParams};
use crate::{AppState, schema};

pub use tongxing_app::input::RESIDENCE_PROOFS;

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
    let document = document(a.document_kind.as_deref(), &a.document_number, "", now)?;
    let state = s.app.apply_commuter(document, &a.raw(), &caller.token_id, now).await?;
    Ok((StatusCode::CREATED, Json(state)))
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
    let document = document(d.document_kind.as_deref(), &d.document_number, "", now)?;
    Ok(Json(s.app.decide_commuter(&document, &d.action, d.reason.as_deref(), &caller.token_id, now).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// The state to list (default pending: the applications awaiting review).
    #[param(value_type = Option<String>, max_length = 20, pattern = "^(pending|approved|rejected|suspended|revoked|expired)$")]
    pub status: Option<String>,
    /// At most this many, oldest application first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The registry's queue: certifications in a state (pending by default), oldest application
/// first, with their evidence; personal data masked.
#[utoipa::path(get, path = "/api/v1/commuters/queue", tag = "commuters", operation_id = "commuter_queue", params(QueueQuery),
    responses((status = 200, body = Vec<QueuedApplication>)))]
pub async fn queue(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<QueueQuery>,
) -> ApiResult<Json<Vec<QueuedApplication>>> {
    caller.require(Action::DecideCommuter)?;
    let status = CommuterStatus::parse(q.status.as_deref().unwrap_or("pending")).at("status")?;
    if let Some(l) = q.limit
        && !(1..=1000).contains(&l)
    {
        return Err(ApiError::invalid("limit", "must be from 1 to 1000"));
    }
    Ok(Json(s.app.commuter_queue(status, q.limit.unwrap_or(100)).await?))
}
