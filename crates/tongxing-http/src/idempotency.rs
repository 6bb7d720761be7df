//! `Idempotency-Key` on every POST a token may send: a client that did not get an answer (a
//! dropped connection, a timeout, a server killed) sends the same request again with the same
//! key, and it has one effect. The first request with a key (per token) runs and its answer is
//! kept 24 hours in the database — so it holds across the servers of a deployment: the key's row
//! is inserted first and the primary key lets one request win. A repeat with the same method,
//! path and body gets that answer again (status, content type and body, with
//! `Idempotent-Replayed: true`); one with another body or endpoint is refused (422, field
//! `Idempotency-Key`); one that arrives while the first still runs waits for its answer (up to
//! 10 s, then 409 with `Retry-After`). A first request answered with a server error (5xx) or a
//! 429 keeps nothing: its retry runs again. A first request whose server died before it
//! answered is taken over after 60 s.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use ring::digest;
use tongxing_store::{IdempotencyStart, IdempotentRecord};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::BodyLimit;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Its name in refusals.
const FIELD: &str = "Idempotency-Key";
/// The longest key accepted.
pub const MAX_KEY: usize = 255;
/// How long a repeat waits for the first request's answer.
const WAIT: Duration = Duration::from_secs(10);
/// The largest answer kept (a batch's answer lists its rows).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key, checked: 1 to 255 visible ASCII characters (a UUID is usual).
fn parse_key(v: &HeaderValue) -> Result<String, ApiError> {
    let refuse = || {
        ApiError::invalid(FIELD, format!("must be 1 to {MAX_KEY} visible ASCII characters (a random UUID is usual)"))
    };
    let text = v.to_str().map_err(|_| refuse())?.trim();
    if text.is_empty() || text.len() > MAX_KEY || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse());
    }
    Ok(text.to_string())
}

/// The layer on every POST route a token may call (`routes()`).
pub async fn layer(req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return next.run(req).await;
    };
    match keyed(state, value, req, next).await {
        Ok(r) | Err(r) => r,
    }
}

async fn keyed(state: AppState, value: HeaderValue, req: Request, next: Next) -> Result<Response, Response> {
    let key = parse_key(&value).map_err(IntoResponse::into_response)?;
    let (mut parts, body) = req.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &state).await.map_err(IntoResponse::into_response)?;
    let limit = parts.extensions.get::<BodyLimit>().map(|l| l.0).unwrap_or(crate::BODY_LIMIT);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::TooLarge { limit }.into_response())?;
    let sha = hex(digest::digest(&digest::SHA256, &bytes).as_ref());
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let store = &state.app.store;
    let stored = |e: tongxing_store::StoreError| ApiError::from(e).into_response();
    for _ in 0..2 {
        match store.idempotency_begin(&caller.token_id, &key, &method, &path, &sha, Utc::now()).await.map_err(stored)? {
            IdempotencyStart::Run => {
                let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
                return Ok(keep(&state, &caller.token_id, &key, resp).await);
            }
            IdempotencyStart::Known(rec) => {
                if rec.method != method || rec.path != path || rec.body_sha256 != sha {
                    return Err(ApiError::invalid(
                        FIELD,
                        format!(
                            "was used by this token for another request ({} {}, another body or endpoint) in the \
                             last 24 hours: a new request needs a new key",
                            rec.method,
                            tongxing_domain::text::shorten(&rec.path)
                        ),
                    )
                    .into_response());
                }
                match wait_for_answer(&state, &caller.token_id, &key, rec).await.map_err(stored)? {
                    Some(done) => return Ok(replay(done)),
                    // The first request failed and kept nothing: this one runs.
                    None => continue,
                }
            }
        }
    }
    let mut resp =
        ApiError::Conflict(format!("a request with this {FIELD} is still being processed; send it again in a moment"))
            .into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Err(resp)
}

/// The answer of the key's first request, waiting while it runs; `None` when it left nothing.
async fn wait_for_answer(
    state: &AppState,
    token_id: &str,
    key: &str,
    mut rec: IdempotentRecord,
) -> Result<Option<IdempotentRecord>, tongxing_store::StoreError> {
    let start = std::time::Instant::now();
    while rec.status.is_none() {
        if start.elapsed() > WAIT {
            return Ok(Some(rec));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        match state.app.store.idempotency_known(token_id, key).await? {
            Some(r) => rec = r,
            None => return Ok(None),
        }
    }
    Ok(Some(rec))
}

/// Keeps the first request's answer (a 5xx or 429 is not kept: its retry runs again).
async fn keep(state: &AppState, token_id: &str, key: &str, resp: Response) -> Response {
    let store = &state.app.store;
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ANSWER).await {
        Ok(b) => b,
        Err(e) => {
            let _ = store.idempotency_abandon(token_id, key).await;
            return ApiError::Internal(format!("reading an answer to keep for its Idempotency-Key: {e}"))
                .into_response();
        }
    };
    let status = parts.status;
    let text = std::str::from_utf8(&bytes).ok();
    let result = match text {
        Some(text) if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) => {
            let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            store.idempotency_finish(token_id, key, i32::from(status.as_u16()), content_type, text).await
        }
        _ => store.idempotency_abandon(token_id, key).await,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "the answer to a request with an Idempotency-Key was not kept");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The kept answer, again.
fn replay(rec: IdempotentRecord) -> Response {
    let Some(status) = rec.status.and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok()) else {
        let mut resp = ApiError::Conflict(format!(
            "a request with this {FIELD} is still being processed; send it again in a moment"
        ))
        .into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let mut resp = (status, rec.response.unwrap_or_default()).into_response();
    if let Some(ct) = rec.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(parse_key(&HeaderValue::from_static("0b8f0c7e-2f6d-4c1e-9a53-1d2e3f4a5b6c")).is_ok());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("a b")).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
    }
}
