//! People: registration, look-up (masked by default, always audited), health-code colour.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::facts::{CodeColour, CodeFacts};
use tongxing_domain::ids::Document;
use tongxing_domain::mask;
use tongxing_domain::text::{PersonName, Reason};
use tongxing_store::{AccessLogEntry, CodeRecord, CommuterRecord, PersonInput, PersonRecord, SampleRecord};
use utoipa::ToSchema;

use super::{document, optional};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::JsonBody;
use crate::{AppState, schema};

/// How far back a person's record shows their samples, in days.
const RECENT_DAYS: i64 = 90;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPerson {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    #[schema(value_type = Option<schema::PersonName>)]
    pub name: Option<String>,
    #[schema(value_type = Option<schema::Phone>)]
    pub phone: Option<String>,
    /// Where the person lives.
    #[schema(value_type = Option<schema::RegionCode>)]
    pub residence_region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub person_id: i64,
}

use tongxing_app::input::{phone as parse_phone, region as parse_region};

/// Registers a person (or updates the fields given).
#[utoipa::path(post, path = "/api/v1/people", tag = "people", operation_id = "register_person", request_body = RegisterPerson,
    responses((status = 201, body = Registered)))]
pub async fn register(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<RegisterPerson>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    caller.require(Action::RegisterPerson)?;
    let now = Utc::now();
    let input = PersonInput {
        document: document(req.document_kind.as_deref(), &req.document_number, "", now)?,
        name: optional("name", req.name.as_deref(), PersonName::parse)?.map(PersonName::into_string),
        phone: parse_phone("phone", req.phone.as_deref())?,
        residence_region: parse_region("residence_region", req.residence_region.as_deref())?,
    };
    let person_id = s.app.store.upsert_person(&input, now).await?;
    Ok((StatusCode::CREATED, Json(Registered { person_id })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// Why the record is read (kept in the access log), e.g. "commuter review 2021-11-20".
    #[schema(value_type = schema::Reason)]
    pub purpose: String,
    /// Show unmasked personal data (registry and health roles only; logged as such).
    #[serde(default)]
    pub reveal: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLogRequest {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// Why the access log is read (itself kept in the access log).
    #[schema(value_type = schema::Reason)]
    pub purpose: String,
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
    document: &Document,
    purpose: &str,
    action: &str,
) -> ApiResult<(PersonRecord, String)> {
    let now = Utc::now();
    let purpose = Reason::parse(purpose).at("purpose")?.into_string();
    let person = s
        .app
        .store
        .person(&document.key())
        .await?
        .ok_or_else(|| ApiError::NotFound("no person is registered with this document".into()))?;
    s.app
        .store
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
#[utoipa::path(post, path = "/api/v1/people/lookup", tag = "people", operation_id = "lookup_person", request_body = LookupRequest,
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
    let document = document(req.document_kind.as_deref(), &req.document_number, "", Utc::now())?;
    let (p, _) = find(&s, &caller, &document, &req.purpose, if req.reveal { "reveal" } else { "read" }).await?;
    let code_history = s.app.store.code_history(p.id).await?;
    let now = Utc::now();
    // The colour in force now: the latest set, unless it has lapsed (the domain's rule).
    let code_colour = code_history
        .last()
        .map(|c| CodeFacts { colour: c.colour, reason: c.reason.clone(), expires_at: c.expires_at })
        .filter(|c| c.holds_at(now))
        .map_or(CodeColour::Green, |c| c.colour)
        .to_string();
    let commuter = s.app.store.commuter(p.id).await?;
    let samples = s.app.store.samples_of(p.id, now - chrono::Duration::days(RECENT_DAYS), now, 20).await?;
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
#[utoipa::path(post, path = "/api/v1/people/access-log", tag = "people", operation_id = "read_access_log", request_body = AccessLogRequest,
    responses((status = 200, body = Vec<Object>), (status = 404, body = crate::error::Problem)))]
pub async fn access_log(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<AccessLogRequest>,
) -> ApiResult<Json<Vec<AccessLogEntry>>> {
    caller.require(Action::RevealPerson)?;
    let document = document(req.document_kind.as_deref(), &req.document_number, "", Utc::now())?;
    let (p, _) = find(&s, &caller, &document, &req.purpose, "read-access-log").await?;
    Ok(Json(s.app.store.access_log(p.id).await?))
}

pub use tongxing_app::input::POPUPS;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCode {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    #[schema(value_type = schema::CodeColour)]
    pub colour: String,
    /// Required for yellow and red unless `popup` is given.
    #[schema(value_type = Option<schema::Reason>)]
    pub reason: Option<String>,
    /// One of the pop-up reasons (its text becomes the reason when none is given).
    #[schema(value_type = Option<schema::Popup>)]
    pub popup: Option<String>,
    /// When the colour lapses back to green, if it does.
    #[schema(value_type = Option<schema::Timestamp>)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSet {
    pub colour: String,
    pub reason: Option<String>,
}

/// Sets a person's health-code colour (health authority only). History is kept.
#[utoipa::path(put, path = "/api/v1/people/code", tag = "people", operation_id = "set_code", request_body = SetCode,
    responses((status = 200, body = CodeSet)))]
pub async fn set_code(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<SetCode>,
) -> ApiResult<Json<CodeSet>> {
    caller.require(Action::SetCode)?;
    let raw = tongxing_app::input::RawColour {
        document_kind: req.document_kind.as_deref(),
        document_number: &req.document_number,
        colour: &req.colour,
        reason: req.reason.as_deref(),
        popup: req.popup.as_deref(),
        expires_at: req.expires_at.as_deref(),
    };
    let now = Utc::now();
    let change = tongxing_app::input::colour(&raw, "", now)?;
    s.app.set_colour(&change, &caller.token_id, now).await?;
    let (colour, reason) = (change.colour, change.reason);
    Ok(Json(CodeSet { colour: colour.to_string(), reason }))
}

/// Colours for many people as CSV text: `document_number,colour` and, optionally,
/// `document_kind,reason,popup,expires_at`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColoursBody {
    /// UTF-8 CSV with a header line naming the columns.
    #[schema(max_length = 4194304)]
    pub csv: String,
}

/// Checks a colours file row by row (how many to green, yellow, red; every bad row by its
/// line); writes nothing.
#[utoipa::path(post, path = "/api/v1/people/codes/preview", tag = "people", operation_id = "preview_codes",
    request_body = ColoursBody, responses((status = 200, body = tongxing_app::colours::ColourPreview)))]
pub async fn codes_preview(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<ColoursBody>,
) -> ApiResult<Json<tongxing_app::colours::ColourPreview>> {
    caller.require(Action::SetCode)?;
    Ok(Json(s.app.preview_colours(&b.csv, Utc::now())?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodesSet {
    /// People whose colour was set.
    pub set: usize,
}

/// Sets the colours of a file in one transaction: all or nothing (a bad row is a 422 naming its
/// line, and nothing is set).
#[utoipa::path(post, path = "/api/v1/people/codes", tag = "people", operation_id = "set_codes",
    request_body = ColoursBody, responses((status = 200, body = CodesSet)))]
pub async fn set_codes(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<ColoursBody>,
) -> ApiResult<Json<CodesSet>> {
    caller.require(Action::SetCode)?;
    Ok(Json(CodesSet { set: s.app.set_colours(&b.csv, &caller.token_id, Utc::now()).await? }))
}
