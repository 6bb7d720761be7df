//! The one error type of the API. Every refusal is an RFC 9457 problem+json document that says
//! what was wrong and, for bad input, which field and what is accepted. Internal causes are
//! logged, never sent. `problem_layer` turns whatever else answers with an error status (the
//! framework's own 404/405, anything not made here) into the same shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tongxing_store::StoreError;
use utoipa::ToSchema;

/// The media type of every refusal.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The longest `detail` a problem carries, in bytes. Messages quote at most 64 characters of a
/// bad value ([`tongxing_domain::text::quote`]); this is the last guard behind that rule.
const MAX_DETAIL: usize = 1000;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `/problems/invalid-input`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What was wrong and what is accepted, for the person who sent it.
    pub detail: String,
    /// For invalid input: the field, as a path into the request (`occupants[1].document_number`,
    /// `results[3].sampled_at`, a query or path parameter's name, or `body` for the whole body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a scanned pass that was refused: the stage of its verification that refused it
    /// (bad_prefix, bad_base45, bad_compression, bad_cose, unknown_key, bad_signature,
    /// bad_claims, key_not_valid, clock_behind, not_yet_valid, expired, revoked, too_large; for
    /// an EU certificate also not_a_test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A value that is well-formed but not acceptable (422).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A request that cannot be read at all: not JSON, a broken path or query (400).
    #[error("{field}: {reason}")]
    Malformed { field: String, reason: String },
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{message}")]
    TooMany { message: String, retry_after_secs: u64 },
    #[error("{stage}: {detail}")]
    PassRefused { stage: String, detail: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("internal error")]
    Internal(String),
    #[error("the database is unavailable")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        ApiError::Invalid { field: field.into(), reason: reason.to_string() }
    }
    pub fn malformed(field: impl Into<String>, reason: impl ToString) -> Self {
        ApiError::Malformed { field: field.into(), reason: reason.to_string() }
    }
    /// The field and reason of a refused input, for reports that list rows (batches, imports).
    pub fn field_and_reason(self) -> (Option<String>, String) {
        match self {
            ApiError::Invalid { field, reason } | ApiError::Malformed { field, reason } => (Some(field), reason),
            other => (None, other.to_string()),
        }
    }
}

/// Names the field of a parse result's error: `RegionCode::parse(v).at("residence_region")`.
pub trait At<T> {
    fn at(self, field: &str) -> Result<T, ApiError>;
}

impl<T, E: std::fmt::Display> At<T> for Result<T, E> {
    fn at(self, field: &str) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::invalid(field, e))
    }
}

impl From<tongxing_app::AppError> for ApiError {
    fn from(e: tongxing_app::AppError) -> Self {
        use tongxing_app::AppError;
        match e {
            AppError::Invalid { field, reason } => ApiError::Invalid { field, reason },
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::Conflict(m) => ApiError::Conflict(m),
            AppError::Forbidden(m) => ApiError::Forbidden(m),
            AppError::PassRefused { stage, detail } => ApiError::PassRefused { stage, detail },
            AppError::TooMany { message, retry_after_secs } => ApiError::TooMany { message, retry_after_secs },
            AppError::Unavailable(m) => ApiError::Unavailable(m),
            AppError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            e if e.is_unavailable() => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The problem document of a status: its `type` suffix and title.
fn kind_and_title(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("malformed", "Malformed request"),
        401 => ("unauthenticated", "Authentication required"),
        403 => ("forbidden", "Not allowed for this role"),
        404 => ("not-found", "Not found"),
        405 => ("method-not-allowed", "Method not allowed"),
        409 => ("conflict", "Conflict with the current state"),
        413 => ("too-large", "Request body too large"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        422 => ("invalid-input", "Invalid input"),
        429 => ("too-many-requests", "Too many requests"),
        503 => ("unavailable", "Service unavailable"),
        500..=599 => ("internal", "Internal error"),
        _ => ("refused", "Request refused"),
    }
}

/// Cuts `detail` to [`MAX_DETAIL`] bytes at a character boundary.
fn bounded(mut detail: String) -> String {
    if detail.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL - 3;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    detail
}

/// A problem+json response.
pub fn problem(status: StatusCode, detail: String, field: Option<String>) -> Response {
    let (kind, title) = kind_and_title(status);
    respond(Problem {
        kind: format!("/problems/{kind}"),
        title: title.into(),
        status: status.as_u16(),
        detail,
        field,
        stage: None,
    })
}

/// The response carrying `body`, its detail bounded.
fn respond(mut body: Problem) -> Response {
    body.detail = bounded(body.detail);
    let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::PassRefused { stage, detail } = self {
            return respond(Problem {
                kind: "/problems/pass-refused".into(),
                title: "Pass refused".into(),
                status: 422,
                detail: format!("qr: the pass was refused at {stage}: {detail}"),
                field: Some("qr".into()),
                stage: Some(stage),
            });
        }
        if let ApiError::TooMany { message, retry_after_secs } = self {
            let mut resp = problem(StatusCode::TOO_MANY_REQUESTS, message, None);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return resp;
        }
        let (status, detail, field) = match self {
            ApiError::Invalid { field, reason } => {
                (StatusCode::UNPROCESSABLE_ENTITY, format!("{field}: {reason}"), Some(field))
            }
            ApiError::Malformed { field, reason } => {
                (StatusCode::BAD_REQUEST, format!("{field}: {reason}"), Some(field))
            }
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "send 'Authorization: Bearer <token>' with a token created by `tongxing token create`".to_string(),
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m, None),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than this endpoint's limit of {limit} bytes; send less per request"),
                Some("body".into()),
            ),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m, Some("content-type".into())),
            ApiError::TooMany { message, .. } => (StatusCode::TOO_MANY_REQUESTS, message, None),
            ApiError::PassRefused { stage, detail } => {
                (StatusCode::UNPROCESSABLE_ENTITY, format!("{stage}: {detail}"), None)
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server failed; the operators have the details in the log".to_string(),
                    None,
                )
            }
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "the database is not answering; retry shortly".to_string(), None)
            }
        };
        problem(status, detail, field)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The one rejection layer: any error status not already a problem document (the router's
/// 404 and 405, a rejection of the framework's own) is answered as one, keeping its headers
/// (`Allow` on a 405).
pub async fn problem_layer(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&resp) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed: Vec<&str> = parts
                .headers
                .get_all(header::ALLOW)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .collect();
            format!("{method} is not allowed here; this endpoint accepts: {}", allowed.join(", "))
        }
        StatusCode::NOT_FOUND if text.is_empty() => {
            "no such endpoint; the API is described at /api/v1/openapi.json".to_string()
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("refused").to_string(),
        _ => text.chars().take(300).collect(),
    };
    let mut out = problem(status, detail, None);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn is_problem(resp: &Response<Body>) -> bool {
    resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}
