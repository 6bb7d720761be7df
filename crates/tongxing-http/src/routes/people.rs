//! People: registration, look-up (masked by default, always audited), health-code colour.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::facts::CodeColour;
use tongxing_domain::ids::RegionCode;
use tongxing_domain::mask;
use tongxing_store::{AccessLogEntry, CodeRecord, CommuterRecord, PersonInput, PersonRecord, SampleRecord};

/// How far back a person's record shows their samples, in days.
const RECENT_DAYS: i64 = 90;
use utoipa::ToSchema;

use super::{DocumentRef, parse_document, required, text};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, JsonBody};

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterPerson {
    #[serde(flatten)]
    pub document: DocumentRef,
    pub name: Option<String>,
    /// Mobile number, 11 digits starting with 1.
    pub phone: Option<String>,
    /// County-level GB/T 2260 code of the residence, in use today.
    pub residence_region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub person_id: i64,
}

pub(crate) fn parse_phone(field: &str, v: Option<&str>) -> Result<Option<String>, ApiError> {
    match text(field, v, 20)? {
        None => Ok(None),
        Some(p) if p.len() == 11 && p.starts_with('1') && p.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(p)),
        Some(_) => Err(ApiError::invalid(field, "a mainland mobile number: 11 digits starting with 1")),
    }
}

pub(crate) fn parse_region(field: &str, v: Option<&str>) -> Result<Option<RegionCode>, ApiError> {
    match text(field, v, 6)? {
        None => Ok(None),
        Some(r) => RegionCode::parse(&r).map(Some).map_err(|e| ApiError::invalid(field, e)),
    }
}

/// Registers a person (or updates the fields given).
#[utoipa::path(post, path = "/api/v1/people", tag = "people", request_body = RegisterPerson,
    responses((status = 201, body = Registered), (status = 422, body = crate::error::Problem)))]
pub async fn register(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<RegisterPerson>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    caller.require(Action::RegisterPerson)?;
    let now = Utc::now();
    let input = PersonInput {
        document: parse_document(&req.document, "", now)?,
        name: text("name", req.name.as_deref(), 64)?,
        phone: parse_phone("phone", req.phone.as_deref())?,
        residence_region: parse_region("residence_region", req.residence_region.as_deref())?,
    };
    let person_id = s.store.upsert_person(&input, now).await?;
    Ok((StatusCode::CREATED, Json(Registered { person_id })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LookupRequest {
    #[serde(flatten)]
    pub document: DocumentRef,
    /// Why the record is read (kept in the access log), e.g. "commuter review 2021-11-20".
    pub purpose: Option<String>,
    /// Show unmasked personal data (registry and health roles only; logged as such).
    #[serde(default)]
    pub reveal: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonView {
    pub document_kind: String,
    /// Masked unless revealed: first and last two characters.
    pub document_number: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub residence_region: Option<String>,
    pub revealed: bool,
    /// Current health-code colour; green when never set.
    pub code_colour: String,
    #[schema(value_type = Vec<Object>)]
    pub code_history: Vec<CodeRecord>,
    #[schema(value_type = Option<Object>)]
    pub commuter: Option<CommuterRecord>,
    /// The person's latest samples (at most 20, taken in the last 90 days), newest first.
    #[schema(value_type = Vec<Object>)]
    pub samples: Vec<SampleRecord>,
}

async fn find(
    s: &AppState,
    caller: &Caller,
    doc: &DocumentRef,
    purpose: Option<&str>,
    action: &str,
) -> ApiResult<(PersonRecord, String)> {
    let now = Utc::now();
    let document = parse_document(doc, "", now)?;
    let purpose = required("purpose", purpose, 200)?;
    let person = s
        .store
        .person(&document.key())
        .await?
        .ok_or_else(|| ApiError::NotFound("no person is registered with this document".into()))?;
    s.store
        .log_access(&AccessLogEntry {
            at: now,
            token_id: caller.token_id.clone(),
            role: caller.role.to_string(),
            person_id: person.id,
            action: action.into(),
            purpose: purpose.clone(),
        })
        .await?;
    Ok((person, purpose))
}

/// Reads a person's record: masked by default; every read is written to the access log.
#[utoipa::path(post, path = "/api/v1/people/lookup", tag = "people", request_body = LookupRequest,
    responses((status = 200, body = PersonView), (status = 404, body = crate::error::Problem)))]
pub async fn lookup(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<LookupRequest>,
) -> ApiResult<Json<PersonView>> {
    caller.require(Action::ReadPerson)?;
    if req.reveal {
        caller.require(Action::RevealPerson)?;
    }
    let (p, _) =
        find(&s, &caller, &req.document, req.purpose.as_deref(), if req.reveal { "reveal" } else { "read" }).await?;
    let code_history = s.store.code_history(p.id).await?;
    let code_colour = code_history.last().map(|c| c.colour).unwrap_or(CodeColour::Green).to_string();
    let commuter = s.store.commuter(p.id).await?;
    let now = Utc::now();
    let samples = s.store.samples_of(p.id, now - chrono::Duration::days(RECENT_DAYS), now, 20).await?;
    let r = req.reveal;
    Ok(Json(PersonView {
        document_kind: p.doc_kind,
        document_number: if r { p.doc_number } else { mask::document_number(&p.doc_number) },
        name: p.name.map(|n| if r { n } else { mask::name(&n) }),
        phone: p.phone.map(|n| if r { n } else { mask::phone(&n) }),
        residence_region: p.residence_region,
        revealed: r,
        code_colour,
        code_history,
        commuter,
        samples,
    }))
}

/// Who read a person's record, when and why (itself logged as a read).
#[utoipa::path(post, path = "/api/v1/people/access-log", tag = "people", request_body = LookupRequest,
    responses((status = 200, body = Vec<Object>)))]
pub async fn access_log(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<LookupRequest>,
) -> ApiResult<Json<Vec<AccessLogEntry>>> {
    caller.require(Action::RevealPerson)?;
    let (p, _) = find(&s, &caller, &req.document, req.purpose.as_deref(), "read-access-log").await?;
    Ok(Json(s.store.access_log(p.id).await?))
}

/// The yellow "pop-up" (弹窗) reasons of the Beijing Health Kit.
const POPUPS: &[(&str, &str)] = &[
    ("risk_county_stay", "14天内到过有本土病例的县（市、区、旗）"),
    ("inbound_quarantine", "入境隔离未满"),
    ("spatiotemporal_link", "与病例或风险区域时空关联"),
    ("test_overdue", "未按要求完成核酸检测"),
    ("border_county", "来自陆地边境县"),
];

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetCode {
    #[serde(flatten)]
    pub document: DocumentRef,
    /// green, yellow or red.
    pub colour: String,
    /// Required for yellow and red unless `popup` is given.
    pub reason: Option<String>,
    /// One of the pop-up reasons: risk_county_stay, inbound_quarantine, spatiotemporal_link,
    /// test_overdue, border_county.
    pub popup: Option<String>,
    /// When the colour lapses back to green (RFC 3339), if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSet {
    pub colour: String,
    pub reason: Option<String>,
}

/// Sets a person's health-code colour (health authority only). History is kept.
#[utoipa::path(put, path = "/api/v1/people/code", tag = "people", request_body = SetCode,
    responses((status = 200, body = CodeSet), (status = 422, body = crate::error::Problem)))]
pub async fn set_code(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<SetCode>,
) -> ApiResult<Json<CodeSet>> {
    caller.require(Action::SetCode)?;
    let now = Utc::now();
    let document = parse_document(&req.document, "", now)?;
    let colour = CodeColour::parse(&req.colour).map_err(|e| ApiError::invalid("colour", e))?;
    let popup = match req.popup.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(POPUPS.iter().find(|(k, _)| *k == p).ok_or_else(|| {
            let keys: Vec<_> = POPUPS.iter().map(|(k, _)| *k).collect();
            ApiError::invalid("popup", format!("'{p}' is not one of: {}", keys.join(", ")))
        })?),
    };
    let reason = match (text("reason", req.reason.as_deref(), 200)?, popup) {
        (Some(r), _) => Some(r),
        (None, Some((_, text))) => Some((*text).to_string()),
        (None, None) if colour != CodeColour::Green => {
            return Err(ApiError::invalid("reason", "a yellow or red code needs a reason (or a popup code)"));
        }
        (None, None) => None,
    };
    if let Some(e) = req.expires_at
        && e <= now
    {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let person_id =
        s.store.upsert_person(&PersonInput { document, name: None, phone: None, residence_region: None }, now).await?;
    s.store.set_code(person_id, colour, reason.as_deref(), req.expires_at, &caller.token_id, now).await?;
    Ok(Json(CodeSet { colour: colour.to_string(), reason }))
}
