//! Tongxing's HTTP API. Handlers only translate: JSON in, parse into domain values (errors
//! name the field), call the domain and the store, JSON out.
//!
//! Layout: `routes/*` one file per resource; `error` the problem+json type; `auth` bearer
//! tokens and roles; `metrics` the Prometheus registry; `openapi` the generated document.

pub mod auth;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;
mod openapi;
mod routes;
pub mod schema;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use tongxing_app::App;

use crate::error::ApiError;

pub use extract::JsonBody;
pub use routes::alerts::event_stream;

/// The request bodies other front ends (the checkpoint's node) accept in the same form.
pub mod requests {
    pub use crate::routes::checks::{CheckRequest, FrameCheck};
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The use cases, and what they share (store, rule sets, checkpoints).
    pub app: App,
    pub metrics: Arc<metrics::Metrics>,
    pub tokens: Arc<auth::TokenCache>,
}

impl AppState {
    pub fn new(app: App) -> AppState {
        AppState { app, metrics: Default::default(), tokens: Default::default() }
    }
}

/// The largest body most endpoints take; batches and rule sets have their own limits.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The body of a camera frame: the largest `image` field and room for the others.
pub const FRAME_BODY_LIMIT: usize = tongxing_app::frame::MAX_FRAME_FIELD + 4096;

/// Builds the router and records every (method, path) it serves, so that a test can hold the
/// OpenAPI document to exactly this list.
pub struct Routes {
    router: Router<AppState>,
    served: Vec<(Method, String)>,
}

impl Routes {
    fn new() -> Routes {
        Routes { router: Router::new(), served: Vec::new() }
    }

    fn add<H, T>(self, method: Method, path: &str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add_limited(method, path, handler, BODY_LIMIT)
    }

    fn add_limited<H, T>(mut self, method: Method, path: &str, handler: H, limit: usize) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes");
        let mut route = on(filter, handler);
        // Inside the body limits (it reads the body by the route's limit).
        if openapi::idempotent(&method, path) {
            route = route.layer::<_, std::convert::Infallible>(middleware::from_fn(idempotency::layer));
        }
        let mut route = route
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(limit))
            .layer::<_, std::convert::Infallible>(axum::Extension(extract::BodyLimit(limit)));
        // A route whose document declares no query parameter refuses any: none is ignored.
        if !openapi::takes_query(&method, path) {
            route = route.layer::<_, std::convert::Infallible>(middleware::from_fn(extract::no_query));
        }
        self.router = self.router.route(path, route);
        self.served.push((method, path.to_string()));
        self
    }

    /// Every (method, path) served.
    pub fn served(&self) -> &[(Method, String)] {
        &self.served
    }
}

/// Every route of the service. Routes on the same path are merged by axum.
pub fn routes() -> Routes {
    use routes::*;
    let v1 = |p: &str| format!("/api/v1{p}");
    Routes::new()
        .add(Method::POST, &v1("/people"), people::register)
        .add(Method::POST, &v1("/people/lookup"), people::lookup)
        .add(Method::POST, &v1("/people/access-log"), people::access_log)
        .add(Method::PUT, &v1("/people/code"), people::set_code)
        .add_limited(Method::POST, &v1("/people/codes/preview"), people::codes_preview, 4 * 1024 * 1024)
        .add_limited(Method::POST, &v1("/people/codes"), people::set_codes, 4 * 1024 * 1024)
        .add(Method::POST, &v1("/results"), results::submit_one)
        .add_limited(Method::POST, &v1("/results/batch"), results::submit_batch, 32 * 1024 * 1024)
        .add(Method::GET, &v1("/results/{lab}/{sample_id}/history"), results::history)
        .add(Method::POST, &v1("/commuters"), commuters::apply)
        .add(Method::POST, &v1("/commuters/decision"), commuters::decide)
        .add(Method::GET, &v1("/commuters/queue"), commuters::queue)
        .add_limited(Method::POST, &v1("/commuters/import/preview"), commuters::import_preview, 4 * 1024 * 1024)
        .add_limited(Method::POST, &v1("/commuters/import"), commuters::import, 4 * 1024 * 1024)
        .add(Method::POST, &v1("/checkpoints"), checkpoints::register)
        .add(Method::GET, &v1("/checkpoints"), checkpoints::list)
        .add(Method::POST, &v1("/checks"), checks::check)
        .add(Method::POST, &v1("/checks/vehicle"), checks::check_vehicle)
        .add_limited(Method::POST, &v1("/checks/frame"), checks::check_frame, FRAME_BODY_LIMIT)
        .add_limited(Method::POST, &v1("/checks/offline"), offline::upload, 4 * 1024 * 1024)
        .add(Method::GET, &v1("/checkpoint/bundle"), offline::bundle)
        .add(Method::GET, &v1("/entries"), checks::entries)
        .add(Method::GET, &v1("/stats/overview"), stats::overview)
        .add(Method::GET, &v1("/stats/verdicts"), stats::verdicts)
        .add(Method::GET, &v1("/policies"), policies::list)
        .add_limited(Method::POST, &v1("/policies"), policies::publish, 4 * 1024 * 1024)
        .add(Method::POST, &v1("/policies/activate"), policies::activate)
        .add_limited(Method::POST, &v1("/policies/dry-run"), policies::dry_run, 4 * 1024 * 1024)
        .add(Method::GET, &v1("/policies/audit"), policies::audit)
        .add(Method::POST, &v1("/citizen/code"), citizen::code)
        .add(Method::POST, &v1("/citizen/session"), citizen::sign_in)
        .add(Method::GET, &v1("/citizen/pass"), citizen::my_pass)
        .add(Method::GET, &v1("/citizen/family"), citizen::family)
        .add(Method::POST, &v1("/citizen/family"), citizen::link)
        .add(Method::POST, &v1("/citizen/family/code"), citizen::family_code)
        .add(Method::POST, &v1("/citizen/family/minor"), citizen::minor)
        .add(Method::POST, &v1("/citizen/family/{link}/remove"), citizen::remove)
        .add(Method::GET, &v1("/citizen/family/{link}/pass"), citizen::member_pass)
        .add(Method::GET, &v1("/citizen/access-log"), citizen::my_access_log)
        .add(Method::GET, &v1("/citizen/commuter"), citizen::my_commuter)
        .add(Method::POST, &v1("/citizen/commuter"), citizen::apply_commuter)
        .add(Method::GET, &v1("/citizen/pass/qr"), passes::my_qr)
        .add(Method::GET, &v1("/citizen/family/{link}/pass/qr"), passes::member_qr)
        .add(Method::GET, &v1("/trust-list"), passes::trust_list)
        .add(Method::GET, &v1("/revocations"), passes::revocations)
        .add(Method::POST, &v1("/passes/withdraw"), passes::withdraw)
        .add(Method::GET, &v1("/family-links/pending"), citizen::pending)
        .add(Method::POST, &v1("/family-links/{link}/decision"), citizen::decide)
        .add(Method::POST, &v1("/test-points/{test_point}/samples"), commitments::register_sample)
        .add(Method::GET, &v1("/test-points/{test_point}/samples"), commitments::day)
        .add(Method::GET, &v1("/letter"), commitments::letter)
        .add(Method::POST, &v1("/commitments"), commitments::sign)
        .add(Method::GET, &v1("/citizen/commitments"), commitments::mine)
        .add(Method::GET, &v1("/citizen/letters"), commitments::due)
        .add(Method::POST, &v1("/pools/{pool_id}/result"), commitments::pool)
        // Delivery: alerts, their live stream, webhooks, the servers' leases.
        .add(Method::GET, &v1("/alerts"), alerts::list)
        .add(Method::GET, &v1("/alerts/stream"), alerts::stream)
        .add(Method::GET, &v1("/alerts/{id}"), alerts::get)
        .add(Method::POST, &v1("/alerts/{id}/acknowledge"), alerts::acknowledge)
        .add(Method::POST, &v1("/alerts/{id}/resolve"), alerts::resolve)
        .add(Method::POST, &v1("/webhooks"), webhooks::create)
        .add(Method::GET, &v1("/webhooks"), webhooks::list)
        .add(Method::POST, &v1("/webhooks/{id}/rotate"), webhooks::rotate)
        .add(Method::POST, &v1("/webhooks/{id}/disable"), webhooks::disable)
        .add(Method::GET, &v1("/ops/leases"), ops::leases)
        // Big data: flows, profiles, shortcuts, testing demand, warnings, drill-down, places.
        .add(Method::GET, &v1("/analytics/flows"), analytics::flows)
        .add(Method::GET, &v1("/analytics/profile"), analytics::profile)
        .add(Method::GET, &v1("/analytics/shortcuts"), analytics::shortcuts)
        .add(Method::GET, &v1("/analytics/demand"), analytics::demand)
        .add(Method::GET, &v1("/analytics/warnings"), analytics::warnings)
        .add(Method::POST, &v1("/analytics/entries"), analytics::entries)
        .add(Method::GET, &v1("/analytics/places"), analytics::places)
        .add(Method::POST, &v1("/analytics/places"), analytics::register_places)
        .add(Method::GET, &v1("/openapi.json"), openapi::document)
        .add(Method::GET, "/healthz", healthz)
        .add(Method::GET, "/metrics", metrics_text)
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API with other routes beside it (the web pages of `tongxing-web`): they share the
/// state, the request log and the metrics, but not the API's problem+json layer (a page answers
/// in HTML) nor the OpenAPI document, which covers `routes()` only.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    routes()
        .router
        .fallback(not_found)
        .layer(middleware::from_fn(error::problem_layer))
        .merge(pages)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        // For the layers inside the routes (Idempotency-Key), which are made without the state.
        .layer(axum::Extension(state.clone()))
        .with_state(state)
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::build()
}

/// Answers when the database does.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz", security(()),
    responses((status = 200, description = "The server and its database answer", body = String, content_type = "text/plain"),
              (status = 503, description = "The database does not answer", body = crate::error::Problem)))]
pub(crate) async fn healthz(State(s): State<AppState>) -> Response {
    match s.app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => ApiError::Unavailable(format!("health check: {e}")).into_response(),
    }
}

/// Prometheus text: requests, latencies, verdicts by reason, samples by outcome.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics", security(()),
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics_text(State(s): State<AppState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; the API is described at /api/v1/openapi.json".into())
}

/// Logs and measures every request. Paths are logged as their route pattern, so document
/// numbers never reach the log.
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    s.metrics.request(&method, &route, status, elapsed);
    let micros = elapsed.as_micros() as u64;
    // Refusals are worth an operator's eye; the thousands of good checks a minute are not.
    match status {
        500.. => tracing::error!(%method, %route, status, micros, "request failed"),
        400..=499 => tracing::info!(%method, %route, status, micros, "request refused"),
        _ => tracing::debug!(%method, %route, status, micros, "request"),
    }
    resp
}
