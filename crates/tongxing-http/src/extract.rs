//! The request extractors every handler uses. Each refuses with a problem document naming
//! what was wrong: the field of a JSON body (a path such as `occupants[1].document_number`),
//! the query parameter or the path parameter. A body's unknown fields are refused (the request
//! types deny them), a body must be `application/json`, and a body over the route's limit is a
//! 413. Messages quote at most 64 characters of a bad value.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use tongxing_domain::text;

use crate::error::ApiError;

/// A JSON body.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON, sent with 'Content-Type: application/json' (got {})",
                if content_type.is_empty() { "none".to_string() } else { tongxing_domain::text::quote(content_type) }
            )));
        }
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0).unwrap_or(crate::BODY_LIMIT);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit }
            } else {
                ApiError::malformed("body", "the body could not be read")
            }
        })?;
        from_json(&bytes).map(JsonBody)
    }
}

/// A route's body limit, set beside axum's `DefaultBodyLimit` so that a 413 can state it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.len() > 5 && essence[..essence.len() - 5].contains('/') && essence.ends_with("+json")
}

/// Deserialises a JSON document, naming the field of the first problem.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::malformed(
                "body",
                format!("not valid JSON: {}", text::shorten_quoted(&inner.to_string())),
            );
        }
        data_error(&path, &inner.to_string())
    })?;
    de.end().map_err(|e| ApiError::malformed("body", format!("not valid JSON: {e}")))?;
    Ok(value)
}

/// A serde data error as a refusal naming the field ([`text::serde_refusal`]).
fn data_error(path: &str, message: &str) -> ApiError {
    let (field, reason) = text::serde_refusal(path, message);
    ApiError::invalid(field, reason)
}

/// A query string, parsed into a type that denies unknown parameters. A repeated parameter,
/// a value of the wrong type or an unknown name is refused naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(QueryParams).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            match data_error(&path, &message) {
                ApiError::Invalid { field, reason } if field == "body" => ApiError::invalid("query", reason),
                // A value of the wrong type: say what was sent.
                ApiError::Invalid { field, reason } if path == field => {
                    let sent = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| *k == field).map(|(_, v)| v);
                    let sent = sent.map(|v| format!(" (got {})", tongxing_domain::text::quote(&v))).unwrap_or_default();
                    let reason = match reason.as_str() {
                        "invalid digit found in string" | "cannot parse integer from empty string" => {
                            "must be a whole number".to_string()
                        }
                        "number too large to fit in target type" | "number too small to fit in target type" => {
                            "is out of range".to_string()
                        }
                        _ => reason,
                    };
                    ApiError::invalid(field, format!("{reason}{sent}"))
                }
                other => other,
            }
        })
    }
}

/// The client's address, for rate limits: the connection's peer (a proxy's own address when
/// one is in front; its forwarded-for header is not trusted).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(ClientAddr(peer.map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())))
    }
}

/// Refuses a query string on a route that takes none, naming its first parameter.
pub async fn no_query(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let query = req.uri().query().unwrap_or("");
    if let Some((name, _)) = form_urlencoded::parse(query.as_bytes()).next() {
        return ApiError::invalid(
            tongxing_domain::text::shorten(&name),
            "is not a parameter of this endpoint, which takes no query parameters",
        )
        .into_response();
    }
    next.run(req).await
}

/// Path parameters, by name. A parameter that is not valid UTF-8 once decoded is refused
/// naming it.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        // A route with one parameter names it in a refusal that names none.
        let only_param = parts.extensions.get::<axum::extract::MatchedPath>().and_then(|m| {
            let names: Vec<&str> =
                m.as_str().split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect();
            (names.len() == 1).then(|| names[0].to_string())
        });
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let kind = e.into_kind();
                let reason = text::shorten_quoted(&kind.to_string());
                let field = match &kind {
                    ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    ErrorKind::ParseErrorAtKey { key, .. } => key.clone(),
                    ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => only_param.unwrap_or_else(|| "path".to_string()),
                };
                Err(ApiError::malformed(field, reason))
            }
            Err(other) => Err(ApiError::malformed(only_param.unwrap_or_else(|| "path".into()), other.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        document_number: String,
        #[serde(default)]
        commitment_letter: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        plate: String,
        occupants: Vec<Inner>,
        limit: Option<i64>,
    }

    fn refusal(json: &str) -> (String, String) {
        match from_json::<Outer>(json.as_bytes()).unwrap_err() {
            ApiError::Invalid { field, reason } | ApiError::Malformed { field, reason } => (field, reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(refusal(r#"{"occupants": []}"#), ("plate".into(), "is required".into()));
        let (field, reason) = refusal(r#"{"plate": "x", "occupants": [{"document_number": "1"}, {}]}"#);
        assert_eq!((field.as_str(), reason.as_str()), ("occupants[1].document_number", "is required"));
        let (field, reason) =
            refusal(r#"{"plate": "x", "occupants": [{"document_number": "1", "comitment_letter": true}]}"#);
        assert_eq!(field, "occupants[0].comitment_letter");
        assert!(reason.ends_with("accepted: document_number or commitment_letter"), "{reason}");
        let (field, reason) = refusal(r#"{"plate": 5, "occupants": []}"#);
        assert_eq!(field, "plate");
        assert!(reason.contains("expected a string"), "{reason}");
        let (field, _) = refusal(r#"{"plate": "x", "plate": "y", "occupants": []}"#);
        assert_eq!(field, "plate");
        let (field, reason) = refusal("not json");
        assert_eq!(field, "body");
        assert!(reason.starts_with("not valid JSON"));
        let (field, _) = refusal(r#"{"plate": "x", "occupants": []} trailing"#);
        assert_eq!(field, "body");
    }

    #[test]
    fn huge_values_are_not_echoed() {
        let big = "9".repeat(1 << 20);
        let (field, reason) = refusal(&format!(r#"{{"plate": "x", "occupants": [], "limit": "{big}"}}"#));
        assert_eq!(field, "limit");
        assert!(reason.len() < 200, "{}", reason.len());
        let (field, reason) = refusal(&format!(r#"{{"plate": "x", "occupants": [], "{big}": 1}}"#));
        assert!(field.len() < 200 && reason.len() < 400, "{} {}", field.len(), reason.len());
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
        assert!(!is_json("+json"));
    }
}
