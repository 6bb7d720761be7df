//! Checkpoint decisions. The officer sends a document number; the answer is a verdict with
//! every reason as a stable code and a message in Chinese and English. Every check is recorded
//! as an entry event before the answer goes out.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_app::check::Person;
use tongxing_domain::auth::Action;
use tongxing_domain::ids::Document;
use tongxing_domain::text::{CheckpointId, Plate};
use tongxing_domain::{mask, time};
use tongxing_store::EntryRecord;
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
    /// The document number as read from the card; or else `qr`.
    #[schema(value_type = Option<schema::DocumentNumber>)]
    pub document_number: Option<String>,
    /// A scanned signed pass (`TX1:…`), instead of a document number: verified as an offline
    /// checkpoint verifies it, then decided on the facts it carries. A refused pass is a 422
    /// naming the stage that refused it.
    #[schema(value_type = Option<String>, max_length = 4096, pattern = "^TX1:")]
    pub qr: Option<String>,
    /// An EU Digital COVID Certificate (`HC1:…`) shown with the document: its nucleic-acid
    /// test counts like a lab result for this check. A refused certificate is a 422 naming the
    /// stage, as for a pass.
    #[schema(value_type = Option<String>, max_length = 4096, pattern = "^HC1:")]
    pub dcc: Option<String>,
    /// Vehicle plate, if the person is in a vehicle.
    #[schema(value_type = Option<schema::Plate>)]
    pub plate: Option<String>,
}

pub use tongxing_app::check::CheckOutcome;

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
    let plate = optional("plate", req.plate.as_deref(), Plate::parse)?;
    let outcome = match (req.document_number.as_deref(), req.qr.as_deref()) {
        (Some(number), None) => {
            let document = document(req.document_kind.as_deref(), number, "", now)?;
            if let Some(dcc) = &req.dcc
                && dcc.len() > tongxing_pass::MAX_TEXT_BYTES
            {
                return Err(ApiError::PassRefused {
                    stage: "too_large".into(),
                    detail: format!("{} bytes; a certificate is at most {}", dcc.len(), tongxing_pass::MAX_TEXT_BYTES),
                });
            }
            let dcc = req.dcc.as_deref().map(|d| d.trim().to_string());
            let person = Person { document, dcc };
            s.app.check_person(&checkpoint_id, &person, plate.as_ref(), &caller.token_id, now).await?
        }
        (None, Some(qr)) => {
            if req.document_kind.is_some() || req.dcc.is_some() {
                let field = if req.document_kind.is_some() { "document_kind" } else { "dcc" };
                return Err(ApiError::invalid(field, "goes with a document number, not with a scanned pass"));
            }
            if qr.len() > tongxing_pass::MAX_TEXT_BYTES {
                return Err(ApiError::PassRefused {
                    stage: "too_large".into(),
                    detail: format!("{} bytes; a pass is at most {}", qr.len(), tongxing_pass::MAX_TEXT_BYTES),
                });
            }
            s.app.check_pass(&checkpoint_id, qr.trim(), plate.as_ref(), &caller.token_id, now).await?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("qr", "send a document number or a scanned pass, not both"));
        }
        (None, None) => return Err(ApiError::invalid("document_number", "is required (or a scanned pass in `qr`)")),
    };
    s.metrics.verdict(&outcome.verdict, outcome.reasons.first().map_or("", |r| r.code.as_str()));
    Ok(Json(outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameCheck {
    #[schema(value_type = schema::CheckpointId)]
    pub checkpoint_id: String,
    #[schema(value_type = schema::Frame)]
    pub image: String,
    /// Vehicle plate, if the person is in a vehicle.
    #[schema(value_type = Option<schema::Plate>)]
    pub plate: Option<String>,
}

/// Checks one person by a camera frame of their pass, for a browser that cannot read QR codes
/// itself: the server reads the code with the decoder of `tongxing verify --image`, then checks
/// it exactly as a scanned `qr` (a refused pass is a 422 naming its `stage`). Nothing is recorded
/// for a frame in which no code is found.
#[utoipa::path(post, path = "/api/v1/checks/frame", tag = "checks", operation_id = "check_frame", request_body = FrameCheck,
    responses((status = 200, body = CheckOutcome)))]
pub async fn check_frame(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<FrameCheck>,
) -> ApiResult<Json<CheckOutcome>> {
    caller.require(Action::Check)?;
    let checkpoint_id = CheckpointId::parse(&req.checkpoint_id).at("checkpoint_id")?;
    caller.require_scope("checkpoint", checkpoint_id.as_str())?;
    let plate = optional("plate", req.plate.as_deref(), Plate::parse)?;
    let outcome = s.app.check_frame(&checkpoint_id, &req.image, plate.as_ref(), &caller.token_id, Utc::now()).await?;
    s.metrics.verdict(&outcome.verdict, outcome.reasons.first().map_or("", |r| r.code.as_str()));
    Ok(Json(outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Occupant {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
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
    let people = req
        .occupants
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let document = document(o.document_kind.as_deref(), &o.document_number, &format!("occupants[{i}]."), now)?;
            Ok(Person { document, dcc: None })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let occupants = s.app.check_vehicle(&checkpoint_id, &plate, &people, &caller.token_id, now).await?;
    for o in &occupants {
        s.metrics.verdict(&o.verdict, o.reasons.first().map_or("", |r| r.code.as_str()));
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
    /// How the person was identified: document, pass, or offline (a checkpoint's upload).
    pub via: String,
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
    let rows: Vec<EntryRecord> = s.app.store.entries(since, until, 0, limit).await?;
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
                via: e.via,
            })
            .collect(),
    ))
}
