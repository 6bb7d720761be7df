//! `tongxing checkpoint serve`: the checkpoint's own node, on the officer's laptop or tablet.
//! It serves the officer's page and the few endpoints the page calls, answering them from the
//! state file that `tongxing checkpoint sync` made — with no network:
//!
//! - a scanned code (or a camera frame of one) is decided by `decide_and_record`, the path of
//!   `tongxing verify` (`tongxing_app::verify::decide_on_pass`, the function the central check
//!   calls), and committed to the state file before the answer (a kill -9 loses nothing);
//! - a typed ID number is passed on to the central server, which alone knows the person's tests:
//!   when it cannot be reached, the answer says so and asks for the pass;
//! - a background task uploads the queue as soon as a check is made and every `--sync-every`
//!   seconds, with each check's idempotency key (an upload repeated after a lost answer records
//!   nothing twice), and refreshes the lists and the rules;
//! - `GET /api/v1/node/status` says whether the node is online, offline or working from stale
//!   data, and since when.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use clap::Args;
use ring::rand::SystemRandom;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tongxing_app::check::CheckOutcome;
use tongxing_app::verify::Decided;
use tongxing_domain::facts::CheckpointFacts;
use tongxing_domain::text::{CheckpointId, Plate};
use tongxing_domain::time::rfc3339;
use tongxing_http::JsonBody;
use tongxing_http::error::{ApiError, ApiResult};
use tongxing_http::requests::{CheckRequest, FrameCheck};
use tongxing_pass::{Decoder, PublicKey};
use tongxing_store::checkpoint::LocalState;

use crate::checkpoint::{
    Client, DEFAULT_STATE, Fail, HttpError, Input, Loaded, bad_input, decide_and_record, download, failure,
    upload_queue,
};

/// The default address: this device only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

#[derive(Args)]
pub struct ServeArgs {
    /// The address to serve the officer's page on. The default serves this device only; a
    /// checkpoint's own network (a tablet serving the officers' phones) needs 0.0.0.0:PORT.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The checkpoint's state file (`tongxing checkpoint sync` makes it).
    #[arg(long, default_value = DEFAULT_STATE, env = "TONGXING_CHECKPOINT_STATE")]
    state: PathBuf,
    /// An officer's API token, for the uploads and the refreshes; kept in memory, never stored.
    /// The page and the node's endpoints ask for it too.
    #[arg(long, env = "TONGXING_TOKEN", hide_env_values = true)]
    token: String,
    /// The checkpoint the checks are made at (default: the one synced).
    #[arg(long)]
    checkpoint: Option<String>,
    /// Seconds between two attempts to reach the central server (upload the queue, refresh the
    /// lists and the rules). A check is also uploaded as soon as it is made, when the server
    /// can be reached.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    sync_every: u64,
}

/// Exit codes of `checkpoint serve`.
pub const SERVE_EXIT_CODES: &str = "Exit codes:
  0  stopped by Ctrl-C or SIGTERM
  1  another failure (the address is taken, the state file cannot be written)
  2  bad input: arguments, no synced state (run `tongxing checkpoint sync` first), an unknown checkpoint";

/// Whether the central server answered the last time it was tried.
#[derive(Debug, Clone)]
enum Reach {
    /// Not tried yet since the node started.
    Unknown {
        since: DateTime<Utc>,
    },
    Online {
        since: DateTime<Utc>,
    },
    /// `why`: unreachable, or what the server answered.
    Offline {
        since: DateTime<Utc>,
        why: String,
    },
}

/// The link to the central server: the state and the last time it answered.
#[derive(Debug)]
struct Link {
    reach: Reach,
    last_contact: Option<DateTime<Utc>>,
}

impl Link {
    fn reached(&mut self, now: DateTime<Utc>) {
        self.last_contact = Some(now);
        if !matches!(self.reach, Reach::Online { .. }) {
            tracing::warn!("the central server is reachable: uploading");
            self.reach = Reach::Online { since: now };
        }
    }

    fn lost(&mut self, now: DateTime<Utc>, why: String) {
        match &mut self.reach {
            Reach::Offline { why: w, .. } => *w = why,
            _ => {
                tracing::warn!(%why, "the central server cannot be reached: deciding offline");
                let since = match self.reach {
                    Reach::Unknown { since } => since,
                    _ => now,
                };
                self.reach = Reach::Offline { since, why };
            }
        }
    }
}

/// The node: what every request and the background task share.
pub struct Node {
    state: LocalState,
    /// The synced data, replaced whole after each refresh; a check holds the `Arc` it began with.
    loaded: RwLock<Arc<Loaded>>,
    facts: CheckpointFacts,
    checkpoint_name: String,
    server: String,
    anchor: PublicKey,
    token: String,
    link: Mutex<Link>,
    /// Wakes the background task to upload a check just made.
    wake: Notify,
    rng: SystemRandom,
}

/// How the data stands at `now`: stale (older than the policy allows) since when.
fn staleness(loaded: &Loaded, now: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>, DateTime<Utc>) {
    let max = chrono::Duration::hours(loaded.policy.offline_data_max_age_hours);
    let oldest = loaded.parts().iter().map(|(_, _, at)| *at).min().unwrap_or(now);
    let stale_since = oldest + max;
    (now >= stale_since, (now >= stale_since).then_some(stale_since), oldest)
}

impl Node {
    fn loaded(&self) -> Arc<Loaded> {
        self.loaded.read().expect("loaded lock").clone()
    }

    /// The node's state for the page: online, offline or stale, since when, and the queue.
    pub async fn status(&self, now: DateTime<Utc>) -> Result<Value, Fail> {
        let loaded = self.loaded();
        let (stale, stale_since, oldest) = staleness(&loaded, now);
        let (reach, last_contact) = {
            let link = self.link.lock().expect("link lock");
            (link.reach.clone(), link.last_contact)
        };
        let (online, since, why) = match &reach {
            Reach::Online { since } => (true, *since, None),
            Reach::Offline { since, why } => (false, *since, Some(why.clone())),
            Reach::Unknown { since } => (false, *since, Some("not reached yet since this node started".to_string())),
        };
        let (mode, mode_since) = match (stale, online) {
            (true, _) => ("stale", stale_since.unwrap_or(now)),
            (false, true) => ("online", since),
            (false, false) => ("offline", since),
        };
        let q = self.state.queue_counts().await.map_err(failure)?;
        let (data, _) = loaded.data(now);
        Ok(json!({
            "mode": mode,
            "since": rfc3339(mode_since),
            "checkpoint_id": self.facts.id,
            "checkpoint_name": self.checkpoint_name,
            "server": self.server,
            "connection": {
                "online": online,
                "since": rfc3339(since),
                "last_contact": last_contact.map(rfc3339),
                "last_error": why,
            },
            "data": {
                "stale": stale,
                "stale_since": stale_since.map(rfc3339),
                "synced_at": rfc3339(oldest),
                "max_age_hours": loaded.policy.offline_data_max_age_hours,
                "parts": data,
            },
            "queue": {
                "pending": q.pending, "recorded": q.recorded, "duplicate": q.duplicate,
                "rejected": q.rejected, "refused_codes": q.local,
            },
        }))
    }

    /// Decides on a code and records it (queued for upload when decided); wakes the uploader.
    async fn decide(&self, input: Input, plate: Option<&str>) -> ApiResult<CheckOutcome> {
        let loaded = self.loaded();
        let mut decoder = Decoder::new().with_clock_tolerance(loaded.policy.clock_tolerance_seconds);
        let d = decide_and_record(&self.state, &loaded, &mut decoder, &self.facts, input, plate, None, &self.rng)
            .await
            .map_err(|Fail(_, e)| ApiError::Internal(format!("{e:#}")))?;
        match d.outcome {
            Ok(decided) => {
                self.wake.notify_one();
                Ok(outcome(decided, d.checked_at))
            }
            Err(r) => Err(ApiError::PassRefused { stage: r.stage, detail: r.detail }),
        }
    }

    /// Runs until the process ends: uploads the queue when woken or every `every`, and
    /// refreshes the lists and the rules every `every`.
    async fn keep_in_touch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let refresh = tokio::select! {
                _ = tick.tick() => true,
                () = self.wake.notified() => false,
            };
            // Uploads and refreshes may wait on the network for a minute; checks go on meanwhile.
            let client = Client::new(&self.server, &self.token, Duration::from_secs(60));
            let result = self.touch(&client, refresh).await;
            let now = Utc::now();
            let mut link = self.link.lock().expect("link lock");
            match result {
                Ok(()) => link.reached(now),
                Err(f) => {
                    let why = format!("{:#}", f.1);
                    if f.unreachable() {
                        link.lost(now, why);
                    } else {
                        // The server answered, but refused or failed: the checks wait all the same.
                        tracing::error!(%why, "the central server refused the upload or the refresh");
                        link.last_contact = Some(now);
                        link.lost(now, why);
                    }
                }
            }
        }
    }

    async fn touch(&self, client: &Client, refresh: bool) -> Result<(), Fail> {
        let up = upload_queue(&self.state, client).await?;
        for (key, why) in &up.rejected {
            tracing::error!(check = %key, %why, "the central server rejected a check");
        }
        if up.recorded + up.duplicates > 0 {
            tracing::info!(recorded = up.recorded, duplicates = up.duplicates, "uploaded");
        }
        if refresh {
            let prev = self.state.synced().await.map_err(failure)?;
            download(&self.state, client, &self.anchor, prev.as_ref(), &self.server, None).await?;
            let synced =
                self.state.synced().await.map_err(failure)?.context("the synced data vanished").map_err(failure)?;
            let loaded = Loaded::from(synced).map_err(failure)?;
            *self.loaded.write().expect("loaded lock") = Arc::new(loaded);
        }
        Ok(())
    }

    /// A typed document number, passed on to the central server (which alone knows the
    /// person's tests) with the node's token.
    async fn forward(&self, req: &CheckRequest) -> ApiResult<Response> {
        let body = json!({
            "checkpoint_id": self.facts.id,
            "document_kind": req.document_kind,
            "document_number": req.document_number,
            "plate": req.plate,
        });
        let client = Client::new(&self.server, &self.token, Duration::from_secs(10));
        match client.post_json("/api/v1/checks", &body) {
            Ok(bytes) => {
                self.link.lock().expect("link lock").reached(Utc::now());
                Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
            }
            Err(HttpError::Status(code, problem)) => {
                self.link.lock().expect("link lock").reached(Utc::now());
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut r = (status, problem.into_bytes()).into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, "application/problem+json".parse().expect("a media type"));
                Ok(r)
            }
            Err(HttpError::Transport(e)) => {
                let now = Utc::now();
                let since = {
                    let mut link = self.link.lock().expect("link lock");
                    link.lost(now, e);
                    match link.reach {
                        Reach::Offline { since, .. } => since,
                        _ => now,
                    }
                };
                Err(ApiError::invalid(
                    "document_number",
                    format!(
                        "an ID number can only be checked by the central server, which this checkpoint cannot reach \
                         (offline since {}): scan the person's pass instead",
                        rfc3339(since)
                    ),
                ))
            }
        }
    }
}

/// The answer to a check decided here, in the shape of the central server's.
fn outcome(d: Decided, checked_at: DateTime<Utc>) -> CheckOutcome {
    let p = d.decision;
    CheckOutcome {
        verdict: p.verdict,
        reasons: p.reasons,
        // The pass names the person by a reference only: there is no document to show here.
        document: "(pass)".into(),
        name: None,
        code_colour: p.code_colour,
        commuter: p.commuter,
        policy_id: p.policy_id,
        policy_version: p.policy_version,
        checked_at,
        evidence: None,
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

type Shared = Arc<Node>;

/// The node's token, as `Authorization: Bearer`.
async fn require_token(State(node): State<Shared>, req: Request, next: Next) -> Response {
    if token_of(req.headers()).is_some_and(|t| same_secret(t, &node.token)) {
        next.run(req).await
    } else {
        ApiError::Unauthenticated.into_response()
    }
}

fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// Compares two secrets by their SHA-256, so that the time taken says nothing of the secret.
fn same_secret(a: &str, b: &str) -> bool {
    use ring::digest::{SHA256, digest};
    digest(&SHA256, a.as_bytes()).as_ref() == digest(&SHA256, b.as_bytes()).as_ref()
}

async fn check(State(node): State<Shared>, JsonBody(req): JsonBody<CheckRequest>) -> ApiResult<Response> {
    let cp = CheckpointId::parse(&req.checkpoint_id).map_err(|e| ApiError::invalid("checkpoint_id", e))?;
    if cp.as_str() != node.facts.id {
        return Err(ApiError::invalid(
            "checkpoint_id",
            format!("this node checks at {}, not at {}", node.facts.id, cp.as_str()),
        ));
    }
    let plate = tongxing_app::input::optional("plate", req.plate.as_deref(), Plate::parse)?;
    if req.dcc.is_some() {
        return Err(ApiError::invalid("dcc", "EU certificates are checked by the central server, not offline"));
    }
    match (&req.document_number, &req.qr) {
        (Some(_), None) => node.forward(&req).await,
        (None, Some(qr)) => {
            if req.document_kind.is_some() {
                return Err(ApiError::invalid("document_kind", "goes with a document number, not with a scanned pass"));
            }
            let text = tongxing_app::offline::qr_text("qr", qr.trim()).map_err(|e| match e {
                tongxing_app::AppError::Invalid { reason, .. } if reason.starts_with("too_large") => {
                    ApiError::PassRefused { stage: "too_large".into(), detail: reason }
                }
                other => other.into(),
            })?;
            let out = node.decide(Input::Text(text), plate.as_ref().map(Plate::as_str)).await?;
            Ok(Json(out).into_response())
        }
        (Some(_), Some(_)) => Err(ApiError::invalid("qr", "send a document number or a scanned pass, not both")),
        (None, None) => Err(ApiError::invalid("document_number", "is required (or a scanned pass in `qr`)")),
    }
}

async fn check_frame(State(node): State<Shared>, JsonBody(req): JsonBody<FrameCheck>) -> ApiResult<Json<CheckOutcome>> {
    let cp = CheckpointId::parse(&req.checkpoint_id).map_err(|e| ApiError::invalid("checkpoint_id", e))?;
    if cp.as_str() != node.facts.id {
        return Err(ApiError::invalid(
            "checkpoint_id",
            format!("this node checks at {}, not at {}", node.facts.id, cp.as_str()),
        ));
    }
    let plate = tongxing_app::input::optional("plate", req.plate.as_deref(), Plate::parse)?;
    let bytes = tongxing_app::frame::frame_bytes("image", &req.image)?;
    let text = tongxing_app::frame::read_frame_blocking("image", bytes).await?;
    let text = text.trim_end_matches(['\r', '\n']).to_string();
    Ok(Json(node.decide(Input::Text(text), plate.as_ref().map(Plate::as_str)).await?))
}

async fn status(State(node): State<Shared>) -> ApiResult<Json<Value>> {
    node.status(Utc::now()).await.map(Json).map_err(|Fail(_, e)| ApiError::Internal(format!("{e:#}")))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint on this checkpoint node".into())
}

/// The node's routes.
pub fn router(node: Shared) -> Router {
    let api = Router::new()
        .route("/api/v1/checks", post(check))
        .route("/api/v1/checks/frame", post(check_frame))
        .route("/api/v1/node/status", get(status))
        .layer(middleware::from_fn_with_state(node.clone(), require_token))
        .layer(axum::extract::DefaultBodyLimit::max(tongxing_http::FRAME_BODY_LIMIT))
        .layer(axum::Extension(tongxing_http::extract::BodyLimit(tongxing_http::FRAME_BODY_LIMIT)));
    Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::from_fn(tongxing_http::error::problem_layer))
        .with_state(node)
}

// ---------------------------------------------------------------------------------------------
// The command

pub async fn run(args: ServeArgs) -> std::process::ExitCode {
    match serve(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Fail(code, e)) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::from(code)
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), Fail> {
    if args.token.trim().is_empty() {
        return Err(bad_input(anyhow::anyhow!("--token: an officer's API token is required")));
    }
    let state = LocalState::open(&args.state, false).await.map_err(bad_input)?;
    let synced = state.synced().await.map_err(failure)?.ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "{} holds no synced data: run `tongxing checkpoint sync` first",
            args.state.display()
        ))
    })?;
    let loaded = Loaded::from(synced).map_err(failure)?;
    let known = || loaded.checkpoints.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ");
    let cp_id = args.checkpoint.clone().or_else(|| loaded.synced.checkpoint_id.clone()).ok_or_else(|| {
        bad_input(anyhow::anyhow!("name the checkpoint with --checkpoint (this token may check at: {})", known()))
    })?;
    let cp = loaded.checkpoints.iter().find(|c| c.id == cp_id).cloned().ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "--checkpoint: {cp_id:?} is not a checkpoint this device synced (it may check at: {})",
            known()
        ))
    })?;
    let anchor = PublicKey::from_pem(&loaded.synced.anchor_pem)
        .map_err(|e| failure(anyhow::anyhow!("the stored trust anchor: {e}")))?;
    let started = Utc::now();
    let node = Arc::new(Node {
        facts: CheckpointFacts { id: cp.id.clone(), road: cp.road.clone() },
        checkpoint_name: cp.name.clone(),
        server: loaded.synced.server.clone(),
        anchor,
        token: args.token.trim().to_string(),
        loaded: RwLock::new(Arc::new(loaded)),
        state,
        link: Mutex::new(Link { reach: Reach::Unknown { since: started }, last_contact: None }),
        wake: Notify::new(),
        rng: SystemRandom::new(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| failure(anyhow::anyhow!("listening on {}: {e}", args.listen)))?;
    let addr = listener.local_addr().map_err(failure)?;
    tokio::spawn(node.clone().keep_in_touch(Duration::from_secs(args.sync_every)));
    // Tests and scripts read this line to find the port.
    println!("tongxing listening on http://{addr}");
    tracing::info!(%addr, checkpoint = %node.facts.id, server = %node.server, "checkpoint node serving");
    axum::serve(listener, router(node.clone()))
        .with_graceful_shutdown(crate::serve::shutdown())
        .await
        .map_err(failure)?;
    node.state.close().await;
    Ok(())
}
