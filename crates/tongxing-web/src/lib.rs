//! Tongxing's web pages, served by `tongxing serve` beside the API: server-rendered HTML from
//! templates checked when this crate compiles (askama), progressively enhanced by a little plain
//! JavaScript; no framework, no build step, nothing from another origin.
//!
//! Layout:
//! - [`pages`]: every page's route; mounted beside the API by `tongxing_http::router_with`.
//! - [`page`]: the frame of the base layout (`Chrome`), rendering, `PageError`, and the
//!   layer in front of every page (language, security headers, error pages). Needs no server
//!   state: the offline checkpoint's server can use it as is.
//! - [`session`]: cookie sessions over the API's tokens, the CSRF token, `Posted` forms and
//!   `PageQuery` query strings.
//! - [`i18n`]: languages and the message catalogues generated from `i18n/<lang>/<page>.toml`.
//! - [`assets`]: the embedded style sheet, scripts, icons and sounds, served by hashed name.
//! - One module per page: [`home`] (the landing page, staff sign-in), [`citizen`], [`officer`],
//!   [`test_point`], [`registry`], [`health`], [`dashboard`] (the command centre's). Each calls the application layer's use cases
//!   (`tongxing_app`), the same the API's handlers call.

pub mod assets;
pub mod citizen;
pub mod dashboard;
pub mod health;
pub mod home;
pub mod i18n;
pub mod officer;
pub mod page;
pub mod registry;
pub mod session;
pub mod test_point;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tongxing_http::AppState;

/// Every page, with the page layer in front. Mount beside the API with
/// `tongxing_http::router_with(state, tongxing_web::pages())`.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(home::landing))
        .route("/sign-in", get(home::sign_in_page).post(home::sign_in))
        .route("/sign-out", post(home::sign_out))
        .merge(citizen::routes())
        .merge(officer::routes())
        .merge(test_point::routes())
        .merge(registry::routes())
        .merge(health::routes())
        .merge(dashboard::routes())
        .route("/assets/{file}", get(assets::serve))
        .layer(DefaultBodyLimit::max(session::FORM_LIMIT))
        .layer(middleware::from_fn(page::layer))
}
