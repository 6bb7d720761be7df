//! Tongxing's HTTP API. Handlers only translate: JSON in, parse into domain values (errors
//! name the field), call the domain and the store, JSON out.
//!
//! Layout: `routes/*` one file per resource; `error` the problem+json type; `auth` bearer
//! tokens and roles; `metrics` the Prometheus registry; `openapi` the generated document.

pub mod auth;
pub mod dryrun;
pub mod error;
pub mod extract;
pub mod metrics;
mod openapi;
mod routes;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use chrono::{DateTime, Utc};
use tongxing_domain::Policy;
use tongxing_rules::RuleSet;
use tongxing_store::{Checkpoint, Store};

use crate::error::{ApiError, ApiResult};

pub use extract::JsonBody;
pub use routes::checks::{CheckOutcome, decide_and_record};
pub use routes::commuters::{Application, parse_application};
pub use routes::results::{ResultInput, parse_sample};
pub use routes::{DocumentRef, parse_document};

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Every loaded policy version; the one in force at the check time decides.
    pub policies: Arc<Vec<Policy>>,
    pub metrics: Arc<metrics::Metrics>,
    pub tokens: Arc<auth::TokenCache>,
    /// Checkpoints by id (checks are hot): filled on a miss, updated on every registration
    /// here, and reloaded whole with the rule sets, so that a change made through another
    /// server arrives within the reload interval.
    pub checkpoints: Arc<RwLock<HashMap<String, Checkpoint>>>,
    /// The rule sets checks are decided by: the built-in ones and the activated published ones.
    /// Replaced whole on reload; a check holds the `Arc` it started with.
    pub rules: Arc<RwLock<Arc<Vec<RuleSet>>>>,
}

impl AppState {
    pub fn new(store: Store, policies: Vec<Policy>) -> AppState {
        AppState {
            store,
            policies: Arc::new(policies),
            metrics: Default::default(),
            tokens: Default::default(),
            checkpoints: Default::default(),
            rules: Arc::new(RwLock::new(Arc::new(tongxing_rules::builtin()))),
        }
    }

    /// The rule sets in use now.
    pub fn rules(&self) -> Arc<Vec<RuleSet>> {
        self.rules.read().expect("rules lock").clone()
    }

    /// Reloads what other servers may have changed in the shared database: the rule sets and
    /// the checkpoints. Every server runs this periodically (`serve --reload-every`).
    pub async fn reload(&self) -> ApiResult<usize> {
        self.reload_checkpoints().await?;
        self.reload_rules().await
    }

    /// Replaces the checkpoint cache with the stored checkpoints.
    pub async fn reload_checkpoints(&self) -> ApiResult<()> {
        let all: HashMap<String, Checkpoint> =
            self.store.checkpoints().await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        *self.checkpoints.write().expect("checkpoint cache") = all;
        Ok(())
    }

    /// Reloads the rule sets: the built-in ones plus every activated published one. A
    /// published rule set that no longer parses is logged and skipped, never half-loaded.
    pub async fn reload_rules(&self) -> ApiResult<usize> {
        let mut sets = tongxing_rules::builtin();
        for p in self.store.policies().await? {
            if p.activated_at.is_none() {
                continue;
            }
            match RuleSet::from_json(&p.body) {
                Ok(rs) => {
                    sets.retain(|s| !(s.id() == rs.id() && s.version() == rs.version()));
                    sets.push(rs);
                }
                Err(e) => {
                    tracing::error!(id = %p.id, version = %p.version, error = %e, "published policy does not load")
                }
            }
        }
        let n = sets.len();
        *self.rules.write().expect("rules lock") = Arc::new(sets);
        Ok(n)
    }

    /// The policy in force at `at`: the latest `valid_from` not after it.
    pub fn policy_at(&self, at: DateTime<Utc>) -> ApiResult<&Policy> {
        self.policies.iter().filter(|p| p.in_force_at(at)).max_by_key(|p| p.valid_from).ok_or_else(|| {
            ApiError::Unavailable(format!("no entry policy is in force at {}", tongxing_domain::time::rfc3339(at)))
        })
    }
}

/// The largest body most endpoints take; batches and rule sets have their own limits.
pub const BODY_LIMIT: usize = 64 * 1024;

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
        let mut route = on(filter, handler)
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
        .add(Method::POST, &v1("/results"), results::submit_one)
        .add_limited(Method::POST, &v1("/results/batch"), results::submit_batch, 32 * 1024 * 1024)
        .add(Method::GET, &v1("/results/{lab}/{sample_id}/history"), results::history)
        .add(Method::POST, &v1("/commuters"), commuters::apply)
        .add(Method::POST, &v1("/commuters/decision"), commuters::decide)
        .add(Method::POST, &v1("/checkpoints"), checkpoints::register)
        .add(Method::GET, &v1("/checkpoints"), checkpoints::list)
        .add(Method::POST, &v1("/checks"), checks::check)
        .add(Method::POST, &v1("/checks/vehicle"), checks::check_vehicle)
        .add(Method::GET, &v1("/entries"), checks::entries)
        .add(Method::GET, &v1("/stats/overview"), stats::overview)
        .add(Method::GET, &v1("/stats/verdicts"), stats::verdicts)
        .add(Method::GET, &v1("/policies"), policies::list)
        .add_limited(Method::POST, &v1("/policies"), policies::publish, 4 * 1024 * 1024)
        .add(Method::POST, &v1("/policies/activate"), policies::activate)
        .add_limited(Method::POST, &v1("/policies/dry-run"), policies::dry_run, 4 * 1024 * 1024)
        .add(Method::GET, &v1("/policies/audit"), policies::audit)
        .add(Method::GET, &v1("/openapi.json"), openapi::document)
        .add(Method::GET, "/healthz", healthz)
        .add(Method::GET, "/metrics", metrics_text)
}

pub fn router(state: AppState) -> Router {
    routes()
        .router
        .fallback(not_found)
        .layer(middleware::from_fn(error::problem_layer))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
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
    match s.store.ping().await {
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
