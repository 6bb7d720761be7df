//! Web sessions over the API's own tokens: the `tx_session` cookie (HttpOnly, Secure,
//! SameSite=Strict) carries the same secret a client sends as `Authorization: Bearer`, and is
//! resolved by the same look-up (`tongxing_http::auth::resolve`) into the same role, scope and
//! person. Staff sign in with their API token; citizens with the one-time code, which makes a
//! citizen session as the API's `POST /citizen/session` does.
//!
//! CSRF: every form carries a `csrf` field. Signed in, it is derived from the session's secret
//! (HMAC-SHA256 of a fixed label keyed with it: per session, the same on every server, and it
//! tells nothing about the secret); before signing in, it is the `tx_pre` cookie's random
//! value. [`Posted`] refuses a POST whose token is missing or wrong, or that another origin sent.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use ring::hmac;
use serde::de::DeserializeOwned;
use tongxing_domain::auth::{Action, Role};
use tongxing_http::AppState;
use tongxing_http::auth::Caller;

use crate::i18n::Lang;
use crate::page::{Chrome, PageError, Visit, cookie, role_name};

/// The session cookie.
pub const SESSION_COOKIE: &str = "tx_session";
/// The largest form accepted (a pasted CSV of a few thousand rows).
pub const FORM_LIMIT: usize = 4 * 1024 * 1024;

/// The CSRF token of a session.
pub fn csrf_of(secret: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::sign(&key, b"tongxing web csrf v1").as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed-in visitor.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
}

/// Everything a page handler knows about the visit: language, session, the CSRF token its
/// forms carry, its path.
#[derive(Debug, Clone)]
pub struct Web {
    pub lang: Lang,
    pub session: Option<Session>,
    pub csrf: String,
    pub path: String,
}

impl Web {
    /// The frame of the base layout.
    pub fn chrome(&self) -> Chrome {
        let who = self.session.as_ref().map(|s| role_name(self.lang, s.caller.role.as_str()).to_string());
        Chrome::new(self.lang, &self.path, self.csrf.clone(), who)
    }

    /// The caller, if their role may `action`: not signed in → the sign-in page (the citizen's
    /// for citizen pages); signed in with another role → a page saying whose page this is.
    pub fn require(&self, action: Action, needed: &'static str) -> Result<&Caller, PageError> {
        let Some(s) = &self.session else {
            return Err(PageError::SignIn(if action == Action::ActAsCitizen {
                "/citizen/sign-in".to_string()
            } else {
                format!("/sign-in?next={}", self.path)
            }));
        };
        if s.caller.role.can(action) { Ok(&s.caller) } else { Err(PageError::WrongRole { needed }) }
    }

    /// The caller, if signed in with exactly this role (a page made for one role: the test
    /// point's, whose letters only a test point's device may take).
    pub fn require_role(&self, role: Role, needed: &'static str) -> Result<&Caller, PageError> {
        let Some(s) = &self.session else {
            return Err(PageError::SignIn(format!("/sign-in?next={}", self.path)));
        };
        if s.caller.role == role { Ok(&s.caller) } else { Err(PageError::WrongRole { needed }) }
    }

    /// The signed-in citizen's person.
    pub fn citizen(&self) -> Result<i64, PageError> {
        let caller = self.require(Action::ActAsCitizen, "citizen")?;
        caller.person_id.ok_or_else(|| PageError::Forbidden("this session is not bound to a person".into()))
    }

    pub fn role(&self) -> Option<Role> {
        self.session.as_ref().map(|s| s.caller.role)
    }
}

impl FromRequestParts<AppState> for Web {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let visit = parts.extensions.get::<Visit>().cloned().unwrap_or_else(|| Visit {
            lang: Lang::default(),
            pre: cookie(&parts.headers, crate::page::PRE_COOKIE).unwrap_or("").to_string(),
        });
        let session = match cookie(&parts.headers, SESSION_COOKIE).filter(|s| !s.is_empty()) {
            None => None,
            Some(secret) => match tongxing_http::auth::resolve(state, secret).await {
                Ok(caller) => Some(Session { caller, csrf: csrf_of(secret) }),
                // An ended session is no session: the page offers to sign in again.
                Err(tongxing_http::error::ApiError::Unauthenticated) => None,
                Err(e) => return Err(e.into()),
            },
        };
        let csrf = session.as_ref().map_or(visit.pre.clone(), |s| s.csrf.clone());
        Ok(Web { lang: visit.lang, session, csrf, path: parts.uri.path().to_string() })
    }
}

/// Refuses a state-changing request sent from another origin (defence in depth beside the
/// token and SameSite=Strict): an `Origin` or `Sec-Fetch-Site` that says so.
pub fn cross_site(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "cross-site") {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
        _ => false,
    }
}

/// A posted form (`application/x-www-form-urlencoded`), its CSRF token checked, parsed into
/// `T` (which denies unknown fields); a refusal names the field. Yields the visit too.
pub struct Posted<T> {
    pub web: Web,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let web = Web::from_request_parts(&mut parts, state).await?;
        if cross_site(&parts.headers) {
            return Err(PageError::Csrf);
        }
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        {
            return Err(PageError::Invalid {
                field: "content-type".into(),
                reason: "a form is sent as application/x-www-form-urlencoded".into(),
            });
        }
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, &()).await.map_err(|_| PageError::Invalid {
            field: "body".into(),
            reason: format!("the form could not be read (at most {FORM_LIMIT} bytes)"),
        })?;
        let form = parse_form(&bytes, &web.csrf)?;
        Ok(Posted { web, form })
    }
}

/// Checks the `csrf` pair against `expected` and parses the others into `T`.
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, PageError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
    let tokens: Vec<&String> = pairs.iter().filter(|(k, _)| k == "csrf").map(|(_, v)| v).collect();
    match tokens.as_slice() {
        [t] if !expected.is_empty() && crate::page::same(t, expected) => {}
        _ => return Err(PageError::Csrf),
    }
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "csrf") {
        rest.append_pair(k, v);
    }
    let rest = rest.finish();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(rest.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let (field, reason) = tongxing_domain::text::serde_refusal(&path, &e.into_inner().to_string());
        PageError::Invalid { field, reason }
    })
}

/// A page's query string, parsed into `T` (which denies unknown parameters). `lang` is taken
/// out before, by the layer.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(PageQuery).map_err(|e| {
            let path = e.path().to_string();
            let (field, reason) = tongxing_domain::text::serde_refusal(&path, &e.into_inner().to_string());
            PageError::Invalid { field: if field == "body" { "query".into() } else { field }, reason }
        })
    }
}

/// The `Last-Event-ID` a browser sends when it resumes an event stream: none, or a whole
/// number 0 or more (anything else is refused, naming the header).
pub fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, PageError> {
    let Some(v) = headers.get("last-event-id") else { return Ok(None) };
    v.to_str().ok().and_then(|t| t.trim().parse::<i64>().ok()).filter(|n| *n >= 0).map(Some).ok_or_else(|| {
        PageError::Invalid { field: "Last-Event-ID".into(), reason: "must be a whole number, 0 or more".into() }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct F {
        name: String,
    }

    #[test]
    fn csrf_is_per_session_and_hides_the_secret() {
        let a = csrf_of("txc_aaaa");
        assert_eq!(a, csrf_of("txc_aaaa"));
        assert_ne!(a, csrf_of("txc_aaab"));
        assert_eq!(a.len(), 32);
        assert!(!a.contains("aaaa"));
    }

    #[test]
    fn forms_need_their_token() {
        let f: F = parse_form(b"csrf=tok&name=x", "tok").unwrap();
        assert_eq!(f.name, "x");
        for bad in [&b"name=x"[..], b"csrf=other&name=x", b"csrf=tok&csrf=tok&name=x"] {
            assert!(matches!(parse_form::<F>(bad, "tok"), Err(PageError::Csrf)));
        }
        // No token expected (none was ever issued): nothing passes.
        assert!(matches!(parse_form::<F>(b"csrf=&name=x", ""), Err(PageError::Csrf)));
        match parse_form::<F>(b"csrf=tok&name=x&nmae=y", "tok") {
            Err(PageError::Invalid { field, .. }) => assert_eq!(field, "nmae"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_site(&h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(cross_site(&h));
    }
}
