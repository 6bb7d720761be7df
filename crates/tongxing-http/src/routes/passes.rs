//! Signed passes: the QR of one's own or a family member's pass as SVG or PNG, the trust list
//! and the revocation list offline checkpoints sync, and withdrawing a person's passes.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use tongxing_domain::auth::Action;
use tongxing_domain::text::Reason;
use utoipa::{IntoParams, ToSchema};

use super::document;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::{AppState, schema};

/// The media type of the signed lists (COSE_Sign1, RFC 9052).
const COSE: &str = "application/cose";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// svg (default) or png.
    #[param(value_type = Option<String>, pattern = "^(svg|png)$")]
    pub format: Option<String>,
}

/// The image formats of a QR code.
fn image_format(format: Option<&str>) -> ApiResult<&'static str> {
    match format.unwrap_or("svg") {
        "svg" => Ok("svg"),
        "png" => Ok("png"),
        other => {
            Err(ApiError::invalid("format", format!("{} is not one of: svg, png", tongxing_domain::text::quote(other))))
        }
    }
}

async fn qr(s: &AppState, person_id: i64, format: &str) -> ApiResult<Response> {
    let issued = s.app.issue_pass(person_id, Utc::now()).await?;
    let expires = tongxing_domain::time::rfc3339(issued.expires_at);
    match format {
        "svg" => {
            let svg = tongxing_pass::qr_svg(&issued.text).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::EXPIRES, expires.as_str())], svg).into_response())
        }
        "png" => {
            let png = tongxing_pass::qr_png(&issued.text, 6).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(([(header::CONTENT_TYPE, "image/png"), (header::EXPIRES, expires.as_str())], png).into_response())
        }
        other => {
            Err(ApiError::invalid("format", format!("{} is not one of: svg, png", tongxing_domain::text::quote(other))))
        }
    }
}

/// My pass's QR code (error correction Q), freshly signed; it expires in minutes.
#[utoipa::path(get, path = "/api/v1/citizen/pass/qr", tag = "passes", operation_id = "my_pass_qr", params(QrQuery),
    responses((status = 200, description = "The QR code", content_type = "image/svg+xml", body = String),
              (status = 503, body = crate::error::Problem)))]
pub async fn my_qr(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<QrQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ActAsCitizen)?;
    let format = image_format(q.format.as_deref())?;
    let me = caller.person_id.ok_or_else(|| ApiError::Forbidden("this token is not bound to a person".into()))?;
    qr(&s, me, format).await
}

/// A linked family member's QR code.
#[utoipa::path(get, path = "/api/v1/citizen/family/{link}/pass/qr", tag = "passes", operation_id = "family_member_qr",
    params(("link" = i64, Path, description = "The link's id"), QrQuery),
    responses((status = 200, description = "The QR code", content_type = "image/svg+xml", body = String),
              (status = 404, body = crate::error::Problem)))]
pub async fn member_qr(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(link): PathParams<i64>,
    QueryParams(q): QueryParams<QrQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ActAsCitizen)?;
    let format = image_format(q.format.as_deref())?;
    let me = caller.person_id.ok_or_else(|| ApiError::Forbidden("this token is not bound to a person".into()))?;
    let member = s.app.member_of(me, link).await?;
    qr(&s, member, format).await
}

/// The trust list: the public keys that sign passes, with their validity, signed by the
/// list-signing key (the checkpoints' trust anchor). docs/PASS-FORMAT.md describes it.
#[utoipa::path(get, path = "/api/v1/trust-list", tag = "passes", operation_id = "trust_list", security(()),
    responses((status = 200, description = "COSE_Sign1 over the CBOR trust list", content_type = "application/cose", body = Vec<u8>),
              (status = 503, body = crate::error::Problem)))]
pub async fn trust_list(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(([(header::CONTENT_TYPE, COSE)], s.app.trust_list()?).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevocationQuery {
    /// The version the checkpoint holds: the answer is the changes after it. 0 or absent: the
    /// whole list.
    #[param(minimum = 0)]
    pub since: Option<u64>,
}

/// The revocation list (whole, or the changes since a version), signed like the trust list.
#[utoipa::path(get, path = "/api/v1/revocations", tag = "passes", operation_id = "revocations", security(()),
    params(RevocationQuery),
    responses((status = 200, description = "COSE_Sign1 over the CBOR list or delta", content_type = "application/cose", body = Vec<u8>),
              (status = 503, body = crate::error::Problem)))]
pub async fn revocations(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<RevocationQuery>,
) -> ApiResult<Response> {
    let list = s.app.revocation_list(q.since.unwrap_or(0), Utc::now()).await?;
    Ok(([(header::CONTENT_TYPE, COSE)], list).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// Why (kept with the revocation).
    #[schema(value_type = schema::Reason)]
    pub reason: String,
}

/// Withdraws every pass of a person issued until now (health authority): they go on the
/// revocation list; passes issued afterwards are not affected.
#[utoipa::path(post, path = "/api/v1/passes/withdraw", tag = "passes", operation_id = "withdraw_passes",
    request_body = Withdraw, responses((status = 204, description = "Withdrawn"), (status = 404, body = crate::error::Problem)))]
pub async fn withdraw(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<Withdraw>,
) -> ApiResult<axum::http::StatusCode> {
    caller.require(Action::SetCode)?;
    let now = Utc::now();
    let doc = document(req.document_kind.as_deref(), &req.document_number, "", now)?;
    let reason = Reason::parse(&req.reason).at("reason")?;
    if !s.app.issues_passes() {
        return Err(ApiError::Unavailable("this server has no pass keys (--keys DIR)".into()));
    }
    let person = s
        .app
        .store
        .person(&doc.key())
        .await?
        .ok_or_else(|| ApiError::NotFound("no person is registered with this document".into()))?;
    s.app.revoke_passes_of(person.id, &format!("withdrawn: {reason}"), now).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
