//! The one error type of the API. Every error is an RFC 9457 problem+json document that says
//! what was wrong and, for bad input, which field and what is accepted. Internal causes are
//! logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tongxing_store::StoreError;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (relative to the API's documentation).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For invalid input: the field (JSON pointer-like path, e.g. `occupants[1].document_number`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
    #[error("the database is unavailable")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        ApiError::Invalid { field: field.into(), reason: reason.to_string() }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, detail, field) = match self {
            ApiError::Invalid { field, reason } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-input",
                "Invalid input",
                format!("{field}: {reason}"),
                Some(field),
            ),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "send 'Authorization: Bearer <token>' with a token created by `tongxing token create`".to_string(),
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed for this role", m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not-found", "Not found", m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", "Conflict with the current state", m, None),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the server failed; the operators have the details in the log".to_string(),
                    None,
                )
            }
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the database is not answering; retry shortly".to_string(),
                    None,
                )
            }
        };
        let body =
            Problem { kind: format!("/problems/{kind}"), title: title.into(), status: status.as_u16(), detail, field };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
