//! Tongxing's HTTP API. Handlers only translate: JSON in, parse into domain values (errors
//! name the field), call the domain and the store, JSON out.
//!
//! Layout: `routes/*` one file per resource; `error` the problem+json type; `auth` bearer
//! tokens and roles; `metrics` the Prometheus registry; `openapi` the generated document.

pub mod auth;
pub mod dryrun;
pub mod error;
pub mod metrics;
mod openapi;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use tongxing_domain::Policy;
use tongxing_rules::RuleSet;
use tongxing_store::{Checkpoint, Store};

use crate::error::{ApiError, ApiResult};

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
    /// Checkpoints by id, filled on first use and on every registration (checks are hot).
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
        self.policies
            .iter()
            .filter(|p| p.in_force_at(at))
            .max_by_key(|p| p.valid_from)
            .ok_or_else(|| ApiError::Unavailable(format!("no entry policy is in force at {at}")))
    }
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/people", post(routes::people::register))
        .route("/people/lookup", post(routes::people::lookup))
        .route("/people/access-log", post(routes::people::access_log))
        .route("/people/code", put(routes::people::set_code))
        .route("/results", post(routes::results::submit_one))
        .route("/results/batch", post(routes::results::submit_batch).layer(DefaultBodyLimit::max(32 * 1024 * 1024)))
        .route("/results/{lab}/{sample_id}/history", get(routes::results::history))
        .route("/commuters", post(routes::commuters::apply))
        .route("/commuters/decision", post(routes::commuters::decide))
        .route("/checkpoints", post(routes::checkpoints::register).get(routes::checkpoints::list))
        .route("/checks", post(routes::checks::check))
        .route("/checks/vehicle", post(routes::checks::check_vehicle))
        .route("/entries", get(routes::checks::entries))
        .route("/stats/overview", get(routes::stats::overview))
        .route("/stats/verdicts", get(routes::stats::verdicts))
        .route(
            "/policies",
            get(routes::policies::list).post(routes::policies::publish).layer(DefaultBodyLimit::max(4 * 1024 * 1024)),
        )
        .route("/policies/activate", post(routes::policies::activate))
        .route("/policies/dry-run", post(routes::policies::dry_run).layer(DefaultBodyLimit::max(4 * 1024 * 1024)))
        .route("/policies/audit", get(routes::policies::audit))
        .route("/openapi.json", get(openapi::document));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
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

/// JSON body extractor whose rejection is a problem+json naming what was wrong.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(ApiError::invalid("body", rejection.body_text())),
        }
    }
}
