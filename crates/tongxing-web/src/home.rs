//! The landing page (which page is for whom) and the staff's sign-in with their API token.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tongxing_domain::auth::Role;
use tongxing_http::AppState;

use crate::i18n::msg;
use crate::page::{Chrome, PageError, PageResult, render, render_status, set_cookie};
use crate::session::{PageQuery, Posted, SESSION_COOKIE, Web};

#[derive(Template)]
#[template(path = "home.html")]
struct Landing {
    c: Chrome,
    m: &'static msg::Home,
}

/// `GET /`: the pages and whom each is for.
pub async fn landing(web: Web) -> Response {
    render(&Landing { m: msg::home(web.lang), c: web.chrome() })
}

/// The page a role starts on after signing in.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Citizen => "/citizen",
        Role::TestPoint => "/test-point",
        Role::Registry => "/registry",
        Role::Health => "/health",
        Role::Officer => "/officer",
        Role::Analyst => "/dashboard",
        _ => "/",
    }
}

/// A `next` that stays on this site: a path, not `//host` or a URL.
fn local_path(next: Option<&str>) -> Option<String> {
    let n = next?.trim();
    (n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && n.len() <= 200
        && !n.chars().any(char::is_control))
    .then(|| n.to_string())
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    c: Chrome,
    m: &'static msg::Home,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /sign-in`: staff sign in with their API token.
pub async fn sign_in_page(web: Web, PageQuery(q): PageQuery<NextQuery>) -> Response {
    let next = local_path(q.next.as_deref()).unwrap_or_default();
    render(&SignInPage { m: msg::home(web.lang), c: web.chrome(), next, error: None })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in`: the token is looked up as the API looks up a bearer token; citizens sign in
/// with their one-time code instead.
pub async fn sign_in(State(s): State<AppState>, Posted { web, form }: Posted<SignInForm>) -> PageResult {
    let m = msg::home(web.lang);
    let secret = form.token.trim();
    let refuse = |error: &str| {
        let next = local_path(Some(&form.next)).unwrap_or_default();
        let page = SignInPage { m, c: web.chrome(), next, error: Some(error.to_string()) };
        render_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    if secret.is_empty() || secret.len() > 200 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(refuse(m.token_malformed));
    }
    let caller = match tongxing_http::auth::resolve(&s, secret).await {
        Ok(c) => c,
        Err(tongxing_http::error::ApiError::Unauthenticated) => return Ok(refuse(m.token_unknown)),
        Err(e) => return Err(PageError::from(e)),
    };
    if caller.role == Role::Citizen {
        return Ok(refuse(m.token_is_citizen));
    }
    let to = local_path(Some(&form.next)).unwrap_or_else(|| home_of(caller.role).to_string());
    let mut resp = Redirect::to(&to).into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, secret, None));
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `POST /sign-out`: forgets the session cookie; a citizen's session ends there and then (an
/// operator's token stays valid for the API: it is the operator's credential).
pub async fn sign_out(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Posted { web, .. }: Posted<Empty>,
) -> PageResult {
    let citizen = web.role() == Some(Role::Citizen);
    if citizen && let Some(secret) = crate::page::cookie(&headers, SESSION_COOKIE) {
        s.app.sign_out(secret, chrono::Utc::now()).await?;
        s.tokens.forget(secret);
    }
    let mut resp = Redirect::to(if citizen { "/citizen/sign-in" } else { "/" }).into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(super::local_path(Some("/registry")), Some("/registry".into()));
        for bad in ["//evil.example/x", "https://evil.example", "registry", "/\\evil", ""] {
            assert_eq!(super::local_path(Some(bad)), None, "{bad}");
        }
    }
}
