//! What every page shares: the frame of the base layout ([`Chrome`]: language, catalogue,
//! CSRF token, who is signed in), rendering a template into a response, the page's errors
//! ([`PageError`]), and the layer in front of every page ([`layer`]): the language (from
//! `?lang=`, then the cookie, then zh-CN), the pre-session CSRF cookie, the security headers
//! (a Content-Security-Policy with no inline code and no other origin), and error pages
//! rendered in the visitor's language.
//!
//! Nothing here needs the central server's state: the offline checkpoint's own server can use
//! the same frame, catalogues, assets and layer.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};

use crate::i18n::{Lang, msg};

/// The policy of every page: scripts, styles, images, sounds and connections from this origin
/// only; no inline script or style, no plugin, no framing, forms posted here only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    media-src 'self'; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The language cookie (a year).
pub const LANG_COOKIE: &str = "tx_lang";
/// The pre-session CSRF cookie: the token of forms shown before signing in.
pub const PRE_COOKIE: &str = "tx_pre";

/// What the layer found out about a request, for the page.
#[derive(Debug, Clone)]
pub struct Visit {
    pub lang: Lang,
    /// The pre-session CSRF token (the `tx_pre` cookie's value).
    pub pre: String,
}

/// The value of a cookie in the request.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HttpOnly, Secure, SameSite=Strict, whole site; `max_age` in seconds
/// (`None`: until the browser closes; `Some(0)`: delete).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict{age}"))
        .expect("cookie values are ASCII")
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    SystemRandom::new().fill(&mut b).expect("system randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal without telling by its timing where two strings differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The frame every page template gets as `c`: the base layout reads it.
pub struct Chrome {
    pub lang: Lang,
    /// The layout's catalogue (`i18n/*/layout.toml`).
    pub l: &'static msg::Layout,
    /// The token every form of the page carries as `csrf`.
    pub csrf: String,
    /// The page's path, for the language switch.
    pub path: String,
    /// Who is signed in, as the header shows it (a role's name), if anyone.
    pub signed_in: Option<String>,
}

impl Chrome {
    pub fn new(lang: Lang, path: &str, csrf: String, signed_in: Option<String>) -> Chrome {
        Chrome { lang, l: msg::layout(lang), csrf, path: path.to_string(), signed_in }
    }
    /// An asset's URL (with its hash).
    pub fn asset(&self, name: &str) -> String {
        crate::assets::url(name)
    }
    /// The link that switches the language of this page.
    pub fn switch_href(&self) -> String {
        format!("{}?lang={}", self.path, self.lang.other().tag())
    }
    pub fn other_lang_name(&self) -> &'static str {
        msg::layout(self.lang.other()).lang_name
    }
    pub fn other_lang_tag(&self) -> &'static str {
        self.lang.other().tag()
    }
    /// A time as people read it here: Beijing time, to the minute.
    pub fn time(&self, t: &DateTime<Utc>) -> String {
        local(*t)
    }
}

/// A time in Beijing time, `2021-11-17 08:30`.
pub fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&tongxing_domain::shanghai()).format("%Y-%m-%d %H:%M").to_string()
}

/// Renders a template as a page (200).
pub fn render<T: Template>(t: &T) -> Response {
    render_status(StatusCode::OK, t)
}

/// Renders a template with a status (422 for a form sent back with its errors).
pub fn render_status<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            PageError::Internal.into_response()
        }
    }
}

/// Why a page could not be shown or a form not accepted. Rendered in the visitor's language by
/// [`layer`] (the handler does not need to know it).
#[derive(Debug, Clone)]
pub enum PageError {
    /// Not signed in (or the session ended): to this sign-in page.
    SignIn(String),
    /// Signed in, but this page is not for this role.
    WrongRole {
        needed: &'static str,
    },
    /// A value of a form or a query refused; `field` names it.
    Invalid {
        field: String,
        reason: String,
    },
    /// The form's CSRF token is missing or not this session's.
    Csrf,
    NotFound(String),
    Conflict(String),
    Forbidden(String),
    TooMany(String),
    Unavailable,
    Internal,
}

impl From<tongxing_app::AppError> for PageError {
    fn from(e: tongxing_app::AppError) -> Self {
        use tongxing_app::AppError as E;
        match e {
            E::Invalid { field, reason } => PageError::Invalid { field, reason },
            E::NotFound(m) => PageError::NotFound(m),
            E::Conflict(m) => PageError::Conflict(m),
            E::Forbidden(m) => PageError::Forbidden(m),
            E::PassRefused { stage, detail } => {
                PageError::Invalid { field: "qr".into(), reason: format!("{stage}: {detail}") }
            }
            E::TooMany { message, .. } => PageError::TooMany(message),
            E::Unavailable(m) => {
                tracing::error!(cause = %m, "a page's use case is unavailable");
                PageError::Unavailable
            }
            E::Internal(m) => {
                tracing::error!(cause = %m, "a page's use case failed");
                PageError::Internal
            }
        }
    }
}

impl From<tongxing_http::error::ApiError> for PageError {
    fn from(e: tongxing_http::error::ApiError) -> Self {
        use tongxing_http::error::ApiError as E;
        match e {
            E::Invalid { field, reason } | E::Malformed { field, reason } => PageError::Invalid { field, reason },
            E::Unauthenticated => PageError::SignIn("/sign-in".into()),
            E::Forbidden(m) => PageError::Forbidden(m),
            E::NotFound(m) => PageError::NotFound(m),
            E::Conflict(m) => PageError::Conflict(m),
            E::TooMany { message, .. } => PageError::TooMany(message),
            E::PassRefused { stage, detail } => {
                PageError::Invalid { field: "qr".into(), reason: format!("{stage}: {detail}") }
            }
            E::TooLarge { limit } => {
                PageError::Invalid { field: "body".into(), reason: format!("larger than {limit} bytes") }
            }
            E::UnsupportedMediaType(m) => PageError::Invalid { field: "content-type".into(), reason: m },
            E::Unavailable(m) => {
                tracing::error!(cause = %m, "a page's store is unavailable");
                PageError::Unavailable
            }
            E::Internal(m) => {
                tracing::error!(cause = %m, "a page failed");
                PageError::Internal
            }
        }
    }
}

impl From<tongxing_store::StoreError> for PageError {
    fn from(e: tongxing_store::StoreError) -> Self {
        PageError::from(tongxing_app::AppError::from(e))
    }
}

impl PageError {
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::SignIn(_) => StatusCode::SEE_OTHER,
            PageError::WrongRole { .. } | PageError::Csrf | PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let PageError::SignIn(to) = &self {
            return Redirect::to(to).into_response();
        }
        // The layer renders it in the visitor's language.
        let mut resp = self.status().into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

pub type PageResult = Result<Response, PageError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    c: Chrome,
    title: &'a str,
    detail: String,
    field: Option<String>,
    back: String,
}

fn error_page(e: &PageError, lang: Lang, back: String) -> Response {
    let l = msg::layout(lang);
    let (title, detail, field) = match e {
        PageError::SignIn(_) => (l.err_sign_in, String::new(), None),
        PageError::WrongRole { needed } => {
            (l.err_wrong_role, crate::i18n::fill(l.err_wrong_role_detail, &[("role", &role_name(lang, needed))]), None)
        }
        PageError::Invalid { field, reason } => (l.err_invalid, reason.clone(), Some(field.clone())),
        PageError::Csrf => (l.err_csrf, l.err_csrf_detail.to_string(), None),
        PageError::NotFound(m) => (l.err_not_found, m.clone(), None),
        PageError::Conflict(m) => (l.err_conflict, m.clone(), None),
        PageError::Forbidden(m) => (l.err_forbidden, m.clone(), None),
        PageError::TooMany(m) => (l.err_too_many, m.clone(), None),
        PageError::Unavailable => (l.err_unavailable, l.err_retry.to_string(), None),
        PageError::Internal => (l.err_internal, l.err_retry.to_string(), None),
    };
    let page = ErrorPage { c: Chrome::new(lang, &back, String::new(), None), title, detail, field, back };
    match page.render() {
        Ok(html) => (e.status(), Html(html)).into_response(),
        Err(_) => (e.status(), title.to_string()).into_response(),
    }
}

/// A role's name in the visitor's language.
pub fn role_name(lang: Lang, role: &str) -> &'static str {
    let l = msg::layout(lang);
    match role {
        "admin" => l.role_admin,
        "lab" => l.role_lab,
        "test_point" => l.role_test_point,
        "officer" => l.role_officer,
        "registry" => l.role_registry,
        "health" => l.role_health,
        "analyst" => l.role_analyst,
        "citizen" => l.role_citizen,
        _ => l.role_unknown,
    }
}

/// The layer in front of every page (and asset). See the module's documentation.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let mut set_lang = None;
    let mut lang = cookie(headers, LANG_COOKIE).and_then(Lang::parse);
    // `?lang=` wins, is remembered, and is taken out of the query the page sees.
    if let Some(q) = req.uri().query() {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        // The last one wins: a link may add one to a URL that had one.
        if let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == "lang") {
            if let Some(l) = Lang::parse(v) {
                lang = Some(l);
                set_lang = Some(l);
            }
            let rest: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "lang").collect();
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in rest {
                query.append_pair(k, v);
            }
            let query = query.finish();
            let path = req.uri().path().to_string();
            let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
            if let Ok(u) = uri.parse() {
                *req.uri_mut() = u;
            }
        }
    }
    let lang = lang.unwrap_or_default();
    let pre = cookie(req.headers(), PRE_COOKIE).filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let (pre, new_pre) = match pre {
        Some(p) => (p.to_string(), false),
        None => (random_hex(16), true),
    };
    let back = req.uri().path().to_string();
    req.extensions_mut().insert(Visit { lang, pre: pre.clone() });
    let mut resp = next.run(req).await;
    if let Some(e) = resp.extensions_mut().remove::<PageError>() {
        resp = error_page(&e, lang, back);
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // The officer's page reads the camera; no page needs anything else.
    h.insert("permissions-policy", HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"));
    // Pages hold personal data: never cached. (Assets set their own cache.)
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(l) = set_lang {
        h.append(header::SET_COOKIE, set_cookie(LANG_COOKIE, l.tag(), Some(365 * 86_400)));
    }
    if new_pre {
        h.append(header::SET_COOKIE, set_cookie(PRE_COOKIE, &pre, None));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_nothing_inline_and_no_other_origin() {
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
        assert!(!CSP.contains("http") && !CSP.contains('*') && !CSP.contains("data:"));
        for d in CSP.split(';') {
            let mut words = d.split_whitespace();
            let _directive = words.next();
            assert!(words.all(|w| w == "'self'" || w == "'none'"), "{d}");
        }
    }

    #[test]
    fn cookies() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; tx_lang=en; b=2"));
        assert_eq!(cookie(&h, "tx_lang"), Some("en"));
        assert_eq!(cookie(&h, "c"), None);
        let v = set_cookie("tx_session", "abc", None);
        let v = v.to_str().unwrap();
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(v.contains(attr), "{v}");
        }
    }
}
