//! Citizens: sign in with a one-time code, see one's pass, link family members and see
//! theirs; registry officers approve links to minors. Every read of a family member's pass is in
//! that member's access log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tongxing_app::citizen::{AccessView, FamilyMember, PendingLink, Purpose, Reader, Session};
use tongxing_app::pass::PassView;
use tongxing_domain::auth::Action;
use tongxing_domain::text::Reason;
use utoipa::ToSchema;

use super::{document, optional};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientAddr, JsonBody, PathParams};
use crate::{AppState, schema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// The same words whether or not the number is on record: the answer tells nobody who is.
    pub message: String,
}

fn sent() -> (StatusCode, Json<CodeSent>) {
    (
        StatusCode::ACCEPTED,
        Json(CodeSent {
            message: "if this number is on record with a phone, a code was sent to it; it is valid for 5 minutes"
                .into(),
        }),
    )
}

/// Asks for a sign-in code, sent to the phone on record (no token needed).
#[utoipa::path(post, path = "/api/v1/citizen/code", tag = "citizens", operation_id = "citizen_code", security(()),
    request_body = CodeRequest,
    responses((status = 202, body = CodeSent), (status = 429, body = crate::error::Problem),
              (status = 503, body = crate::error::Problem)))]
pub async fn code(
    State(s): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(req): JsonBody<CodeRequest>,
) -> ApiResult<(StatusCode, Json<CodeSent>)> {
    let now = Utc::now();
    let doc = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    s.app.send_code(&doc, Purpose::SignIn, &address, now).await?;
    Ok(sent())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// The 6-digit code sent to the phone.
    #[schema(pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub code: String,
}

/// Signs in with the code: a citizen session token bound to the person (7 days).
#[utoipa::path(post, path = "/api/v1/citizen/session", tag = "citizens", operation_id = "citizen_sign_in", security(()),
    request_body = SignIn, responses((status = 201, body = Session)))]
pub async fn sign_in(
    State(s): State<AppState>,
    JsonBody(req): JsonBody<SignIn>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let now = Utc::now();
    let doc = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    Ok((StatusCode::CREATED, Json(s.app.sign_in(&doc, &req.code, now).await?)))
}

/// The signed-in citizen's person.
fn citizen(caller: &Caller) -> ApiResult<i64> {
    caller.require(Action::ActAsCitizen)?;
    caller.person_id.ok_or_else(|| ApiError::Forbidden("this token is not bound to a person".into()))
}

/// My pass. (A person reading their own pass is not in the access log, which records who read
/// whose record; a family member's pass is.)
#[utoipa::path(get, path = "/api/v1/citizen/pass", tag = "citizens", operation_id = "my_pass",
    responses((status = 200, body = PassView)))]
pub async fn my_pass(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<PassView>> {
    let me = citizen(&caller)?;
    Ok(Json(s.app.pass_view(me, Utc::now()).await?))
}

/// My family links.
#[utoipa::path(get, path = "/api/v1/citizen/family", tag = "citizens", operation_id = "my_family",
    responses((status = 200, body = Vec<FamilyMember>)))]
pub async fn family(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<FamilyMember>>> {
    let me = citizen(&caller)?;
    Ok(Json(s.app.family(me).await?))
}

/// Sends a family member a code to consent to the link (to their phone on record).
#[utoipa::path(post, path = "/api/v1/citizen/family/code", tag = "citizens", operation_id = "family_code",
    request_body = CodeRequest, responses((status = 202, body = CodeSent), (status = 429, body = crate::error::Problem)))]
pub async fn family_code(
    State(s): State<AppState>,
    caller: Caller,
    ClientAddr(address): ClientAddr,
    JsonBody(req): JsonBody<CodeRequest>,
) -> ApiResult<(StatusCode, Json<CodeSent>)> {
    let me = citizen(&caller)?;
    let now = Utc::now();
    let doc = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    s.app.send_code(&doc, Purpose::Link { citizen_id: me }, &address, now).await?;
    Ok(sent())
}

/// Links a family member with the code they received (their consent). At most 4.
#[utoipa::path(post, path = "/api/v1/citizen/family", tag = "citizens", operation_id = "link_family_member",
    request_body = SignIn, responses((status = 201, body = FamilyMember), (status = 409, body = crate::error::Problem)))]
pub async fn link(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<SignIn>,
) -> ApiResult<(StatusCode, Json<FamilyMember>)> {
    let me = citizen(&caller)?;
    let now = Utc::now();
    let doc = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    Ok((StatusCode::CREATED, Json(s.app.link_member(me, &doc, &req.code, now).await?)))
}

/// Asks a registry officer to approve a link to a minor (under 18, by the ID number).
#[utoipa::path(post, path = "/api/v1/citizen/family/minor", tag = "citizens", operation_id = "link_minor",
    request_body = CodeRequest, responses((status = 202, body = FamilyMember), (status = 409, body = crate::error::Problem)))]
pub async fn minor(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CodeRequest>,
) -> ApiResult<(StatusCode, Json<FamilyMember>)> {
    let me = citizen(&caller)?;
    let now = Utc::now();
    let doc = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    Ok((StatusCode::ACCEPTED, Json(s.app.ask_for_minor(me, &doc, now).await?)))
}

/// Ends a family link.
#[utoipa::path(post, path = "/api/v1/citizen/family/{link}/remove", tag = "citizens", operation_id = "unlink_family_member",
    params(("link" = i64, Path, description = "The link's id")),
    responses((status = 200, body = FamilyMember), (status = 404, body = crate::error::Problem)))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(link): PathParams<i64>,
) -> ApiResult<Json<FamilyMember>> {
    let me = citizen(&caller)?;
    Ok(Json(s.app.remove_link(me, link, Utc::now()).await?))
}

/// A linked family member's pass.
#[utoipa::path(get, path = "/api/v1/citizen/family/{link}/pass", tag = "citizens", operation_id = "family_member_pass",
    params(("link" = i64, Path, description = "The link's id")),
    responses((status = 200, body = PassView), (status = 404, body = crate::error::Problem)))]
pub async fn member_pass(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(link): PathParams<i64>,
) -> ApiResult<Json<PassView>> {
    let me = citizen(&caller)?;
    let reader = Reader { token_id: &caller.token_id, role: caller.role.as_str() };
    Ok(Json(s.app.member_pass(me, link, reader, Utc::now()).await?))
}

/// Who read my record: when, their role, the reader masked, what and why (newest first).
#[utoipa::path(get, path = "/api/v1/citizen/access-log", tag = "citizens", operation_id = "my_access_log",
    responses((status = 200, body = Vec<AccessView>)))]
pub async fn my_access_log(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<AccessView>>> {
    let me = citizen(&caller)?;
    Ok(Json(s.app.my_access_log(me).await?))
}

/// Links to minors awaiting a registry officer, oldest first (masked).
#[utoipa::path(get, path = "/api/v1/family-links/pending", tag = "citizens", operation_id = "pending_family_links",
    responses((status = 200, body = Vec<PendingLink>)))]
pub async fn pending(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<PendingLink>>> {
    caller.require(Action::ReviewFamilyLinks)?;
    Ok(Json(s.app.pending_links(Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkDecision {
    /// approve or refuse.
    #[schema(value_type = String, pattern = "^(approve|refuse)$")]
    pub action: String,
    /// Required to refuse.
    #[schema(value_type = Option<schema::Reason>)]
    pub reason: Option<String>,
}

/// A registry officer approves or refuses a link to a minor.
#[utoipa::path(post, path = "/api/v1/family-links/{link}/decision", tag = "citizens", operation_id = "decide_family_link",
    params(("link" = i64, Path, description = "The link's id")), request_body = LinkDecision,
    responses((status = 200, body = FamilyMember), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(link): PathParams<i64>,
    JsonBody(req): JsonBody<LinkDecision>,
) -> ApiResult<Json<FamilyMember>> {
    caller.require(Action::ReviewFamilyLinks)?;
    let approve = match req.action.trim() {
        "approve" => true,
        "refuse" => false,
        other => {
            return Err(ApiError::invalid(
                "action",
                format!("{} is not one of: approve, refuse", tongxing_domain::text::quote(other)),
            ));
        }
    };
    let reason = optional("reason", req.reason.as_deref(), Reason::parse)?;
    if !approve && reason.is_none() {
        return Err(ApiError::invalid("reason", "a refusal needs a reason"));
    }
    let member =
        s.app.decide_link(link, approve, &caller.token_id, reason.as_ref().map(Reason::as_str), Utc::now()).await?;
    Ok(Json(member))
}

/// A citizen's own application for commuter certification: the person is the session's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MyApplication {
    #[schema(value_type = schema::CommuterKind)]
    pub kind: String,
    /// County-level code of the residence; must be in the policy's surrounding regions.
    #[schema(value_type = schema::RegionCode)]
    pub residence_region: String,
    #[schema(value_type = schema::ResidenceProof)]
    pub residence_proof: String,
    #[schema(value_type = schema::EmployerName)]
    pub employer_name: String,
    #[schema(value_type = schema::Uscc)]
    pub employer_uscc: String,
    /// County-level code of the workplace; must be in the city.
    #[schema(value_type = schema::RegionCode)]
    pub work_region: String,
}

impl MyApplication {
    pub fn raw(&self) -> tongxing_app::input::RawApplication<'_> {
        tongxing_app::input::RawApplication {
            name: None,
            phone: None,
            kind: &self.kind,
            residence_region: &self.residence_region,
            residence_proof: &self.residence_proof,
            employer_name: &self.employer_name,
            employer_uscc: &self.employer_uscc,
            work_region: &self.work_region,
        }
    }
}

/// The document of the session's person.
async fn my_document(s: &AppState, me: i64) -> ApiResult<tongxing_domain::ids::Document> {
    let record = s
        .app
        .store
        .person_by_id(me)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("the session's person {me} is missing")))?;
    tongxing_domain::ids::Document::from_key(&record.doc_key)
        .ok_or_else(|| ApiError::Internal(format!("person {me} has an unreadable document key")))
}

/// Applies for commuter certification for myself: checked against the policy at once (422
/// naming the field), then pending a registry officer's review.
#[utoipa::path(post, path = "/api/v1/citizen/commuter", tag = "citizens", operation_id = "apply_my_commuter",
    request_body = MyApplication,
    responses((status = 201, body = tongxing_app::commuter::CommuterState), (status = 409, body = crate::error::Problem)))]
pub async fn apply_commuter(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(a): JsonBody<MyApplication>,
) -> ApiResult<(StatusCode, Json<tongxing_app::commuter::CommuterState>)> {
    let me = citizen(&caller)?;
    let doc = my_document(&s, me).await?;
    Ok((StatusCode::CREATED, Json(s.app.apply_commuter(doc, &a.raw(), &caller.token_id, Utc::now()).await?)))
}

/// My commuter certification: its state, the last decision's reason and its history.
#[utoipa::path(get, path = "/api/v1/citizen/commuter", tag = "citizens", operation_id = "my_commuter",
    responses((status = 200, body = tongxing_app::commuter::MyCommuter),
              (status = 404, description = "No application was filed", body = crate::error::Problem)))]
pub async fn my_commuter(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<tongxing_app::commuter::MyCommuter>> {
    let me = citizen(&caller)?;
    s.app
        .my_commuter(me)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("you have not applied for commuter certification".into()))
}
