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

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use clap::Args;
use ring::rand::SystemRandom;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tongxing_app::check::CheckOutcome;
use tongxing_app::verify::Decided;
use tongxing_app::{AppError, AppResult};
use tongxing_domain::facts::CheckpointFacts;
use tongxing_domain::text::{CheckpointId, Plate};
use tongxing_domain::time::rfc3339;
use tongxing_http::JsonBody;
use tongxing_http::error::{ApiError, ApiResult};
use tongxing_http::requests::{CheckRequest, FrameCheck};
use tongxing_pass::{Decoder, PublicKey};
use tongxing_store::checkpoint::LocalState;
use tongxing_web::i18n::Lang;
use tongxing_web::officer::{
    CheckForm, CheckpointChoice, Context, Failure, NodeStatus, Reply, Scan, answer, node_sign_in, wants_json,
};
use tongxing_web::page::{Chrome, PageError, Visit, cookie, role_name, set_cookie};
use tongxing_web::session::{SESSION_COOKIE, cross_site, csrf_of, parse_form};

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
            tracing::info!("the central server is reachable: uploading");
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

/// What the node's state is made of.
struct Snapshot {
    /// What the page shows.
    page: NodeStatus,
    online: bool,
    connection_since: DateTime<Utc>,
    last_contact: Option<DateTime<Utc>>,
    last_error: Option<String>,
    stale_since: Option<DateTime<Utc>>,
    /// Each part of the data: version, synced at, age, stale.
    parts: Value,
    queue: tongxing_store::checkpoint::QueueCounts,
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

    /// The node's state: online, offline or stale, since when, and the queue.
    async fn snapshot(&self, now: DateTime<Utc>) -> Result<Snapshot, Fail> {
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
        let queue = self.state.queue_counts().await.map_err(failure)?;
        Ok(Snapshot {
            page: NodeStatus {
                mode,
                since: mode_since,
                synced_at: oldest,
                max_age_hours: loaded.policy.offline_data_max_age_hours,
                pending: queue.pending,
            },
            online,
            connection_since: since,
            last_contact,
            last_error: why,
            stale_since,
            parts: loaded.data(now).0,
            queue,
        })
    }

    /// The state as `GET /api/v1/node/status` answers it.
    pub async fn status(&self, now: DateTime<Utc>) -> Result<Value, Fail> {
        let s = self.snapshot(now).await?;
        let q = &s.queue;
        Ok(json!({
            "mode": s.page.mode,
            "since": rfc3339(s.page.since),
            "checkpoint_id": self.facts.id,
            "checkpoint_name": self.checkpoint_name,
            "server": self.server,
            "connection": {
                "online": s.online,
                "since": rfc3339(s.connection_since),
                "last_contact": s.last_contact.map(rfc3339),
                "last_error": s.last_error,
            },
            "data": {
                "stale": s.stale_since.is_some(),
                "stale_since": s.stale_since.map(rfc3339),
                "synced_at": rfc3339(s.page.synced_at),
                "max_age_hours": s.page.max_age_hours,
                "parts": s.parts,
            },
            "queue": {
                "pending": q.pending, "recorded": q.recorded, "duplicate": q.duplicate,
                "rejected": q.rejected, "refused_codes": q.local,
            },
        }))
    }

    /// Decides on a code and records it (queued for upload when decided); wakes the uploader.
    async fn decide(&self, input: Input, plate: Option<&str>) -> AppResult<CheckOutcome> {
        let loaded = self.loaded();
        let mut decoder = Decoder::new().with_clock_tolerance(loaded.policy.clock_tolerance_seconds);
        let d = decide_and_record(&self.state, &loaded, &mut decoder, &self.facts, input, plate, None, &self.rng)
            .await
            .map_err(|Fail(_, e)| AppError::Internal(format!("{e:#}")))?;
        match d.outcome {
            Ok(decided) => {
                self.wake.notify_one();
                Ok(outcome(decided, d.checked_at))
            }
            Err(r) => Err(AppError::PassRefused { stage: r.stage, detail: r.detail }),
        }
    }

    /// A camera frame: its code read (the central server's decoder), then decided here. A frame
    /// without a code records nothing.
    async fn decide_frame(&self, image: &str, plate: Option<&str>) -> AppResult<CheckOutcome> {
        let bytes = tongxing_app::frame::frame_bytes("image", image)?;
        let text = tongxing_app::frame::read_frame_blocking("image", bytes).await?;
        self.decide(Input::Text(text.trim_end_matches(['\r', '\n']).to_string()), plate).await
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
                    if !f.unreachable() {
                        // The server answered, but refused or failed (a token withdrawn, an
                        // error): the checks wait all the same, and the operators need to know.
                        tracing::error!(%why, "the central server refused the upload or the refresh");
                        link.last_contact = Some(now);
                    }
                    link.lost(now, why);
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
            let synced = self
                .state
                .synced()
                .await
                .map_err(failure)?
                .ok_or_else(|| failure(anyhow::anyhow!("the synced data vanished")))?;
            let loaded = Loaded::from(synced).map_err(failure)?;
            *self.loaded.write().expect("loaded lock") = Arc::new(loaded);
        }
        Ok(())
    }

    /// A typed document number, passed on to the central server (which alone knows the
    /// person's tests) with the node's token: its answer as sent, or why there is none.
    async fn forward(&self, kind: Option<&str>, number: &str, plate: Option<&str>) -> Result<Vec<u8>, Forwarded> {
        let body = json!({
            "checkpoint_id": self.facts.id,
            "document_kind": kind,
            "document_number": number,
            "plate": plate,
        });
        let client = Client::new(&self.server, &self.token, Duration::from_secs(10));
        let answer = client.post_json("/api/v1/checks", &body);
        let now = Utc::now();
        let mut link = self.link.lock().expect("link lock");
        match answer {
            Ok(bytes) => {
                link.reached(now);
                Ok(bytes)
            }
            Err(HttpError::Status(code, detail)) => {
                link.reached(now);
                Err(Forwarded::Refused(central_refusal(code, detail)))
            }
            Err(HttpError::Transport(e)) => {
                link.lost(now, e);
                let since = match link.reach {
                    Reach::Offline { since, .. } => since,
                    _ => now,
                };
                Err(Forwarded::Offline(since))
            }
        }
    }
}

/// Why a typed document number got no answer from the central server.
enum Forwarded {
    /// It answered with a refusal (the document number invalid, the token refused, …).
    Refused(AppError),
    /// It cannot be reached (since then).
    Offline(DateTime<Utc>),
}

/// A refusal of the central server (status and detail) as the use cases' error, the field
/// named as the server named it (`field: reason`).
fn central_refusal(code: u16, detail: String) -> AppError {
    let (field, reason) = match detail.split_once(": ") {
        Some((f, r)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b)) => {
            (f.to_string(), r.to_string())
        }
        _ => ("body".to_string(), detail.clone()),
    };
    match code {
        400 | 422 => AppError::Invalid { field, reason },
        401 => AppError::Forbidden(
            "the central server does not know this node's token: restart it with a valid one".into(),
        ),
        403 => AppError::Forbidden(detail),
        404 => AppError::NotFound(detail),
        409 => AppError::Conflict(detail),
        429 => AppError::TooMany { message: detail, retry_after_secs: 1 },
        _ => AppError::Unavailable(format!("the central server answered {code}: {detail}")),
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
        (Some(number), None) => {
            match node.forward(req.document_kind.as_deref(), number, plate.as_ref().map(Plate::as_str)).await {
                Ok(bytes) => Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response()),
                Err(Forwarded::Refused(e)) => Err(e.into()),
                Err(Forwarded::Offline(since)) => Err(ApiError::invalid(
                    "document_number",
                    format!(
                        "an ID number can only be checked by the central server, which this checkpoint cannot \
                         reach (offline since {}): scan the person's pass instead",
                        rfc3339(since)
                    ),
                )),
            }
        }
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
    Ok(Json(node.decide_frame(&req.image, plate.as_ref().map(Plate::as_str)).await?))
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

// ---------------------------------------------------------------------------------------------
// The officer's page: the central server's (`tongxing_web::officer`), over this node. The session
// cookie holds the node's own token; forms carry the CSRF token derived from it.

/// What a page request knows of its visitor.
struct Visitor {
    lang: Lang,
    signed_in: bool,
    csrf: String,
}

fn visitor(node: &Node, headers: &HeaderMap, visit: &Visit) -> Visitor {
    let signed_in = cookie(headers, SESSION_COOKIE).is_some_and(|t| same_secret(t, &node.token));
    let csrf = if signed_in { csrf_of(&node.token) } else { visit.pre.clone() };
    Visitor { lang: visit.lang, signed_in, csrf }
}

impl Visitor {
    fn chrome(&self, path: &str) -> Chrome {
        let who = self.signed_in.then(|| role_name(self.lang, "officer").to_string());
        Chrome::new(self.lang, path, self.csrf.clone(), who)
    }
}

async fn context(node: &Node, v: &Visitor) -> Result<Context, Response> {
    let snapshot = node.snapshot(Utc::now()).await.map_err(|Fail(_, e)| {
        tracing::error!(error = %format!("{e:#}"), "reading the node's state");
        PageError::Internal.into_response()
    })?;
    Ok(Context {
        chrome: v.chrome("/officer"),
        checkpoints: vec![CheckpointChoice { id: node.facts.id.clone(), name: node.checkpoint_name.clone() }],
        node: Some(snapshot.page),
    })
}

async fn officer_page(State(node): State<Shared>, Extension(visit): Extension<Visit>, headers: HeaderMap) -> Response {
    let v = visitor(&node, &headers, &visit);
    if !v.signed_in {
        return Redirect::to("/sign-in").into_response();
    }
    match context(&node, &v).await {
        Ok(ctx) => ctx.page(),
        Err(r) => r,
    }
}

async fn officer_status(
    State(node): State<Shared>,
    Extension(visit): Extension<Visit>,
    headers: HeaderMap,
) -> Response {
    let v = visitor(&node, &headers, &visit);
    if !v.signed_in {
        return ApiError::Unauthenticated.into_response();
    }
    match node.snapshot(Utc::now()).await {
        Ok(s) => tongxing_web::officer::node_json(v.lang, &s.page),
        Err(Fail(_, e)) => ApiError::Internal(format!("{e:#}")).into_response(),
    }
}

/// `POST /officer/check`: a scanned code or a frame decided here; a typed ID number passed on to
/// the central server.
async fn officer_check(
    State(node): State<Shared>,
    Extension(visit): Extension<Visit>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = visitor(&node, &headers, &visit);
    if cross_site(&headers) {
        return PageError::Csrf.into_response();
    }
    if !v.signed_in {
        return Redirect::to("/sign-in").into_response();
    }
    let form: CheckForm = match parse_form(&body, &v.csrf) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let now = Utc::now();
    let result = async {
        let (cp, plate, scan) = form.parse(now)?;
        if cp.as_str() != node.facts.id {
            return Err(Failure::App(AppError::invalid(
                "checkpoint_id",
                format!("this node checks at {}, not at {cp}", node.facts.id),
            )));
        }
        let plate = plate.as_ref().map(Plate::as_str);
        match scan {
            Scan::Pass(text) => Ok(node.decide(Input::Text(text), plate).await?),
            Scan::Frame(image) => Ok(node.decide_frame(&image, plate).await?),
            Scan::Document(doc) => match node.forward(Some(doc.kind().as_str()), doc.number(), plate).await {
                Ok(bytes) => serde_json::from_slice::<CheckOutcome>(&bytes).map_err(|e| {
                    Failure::App(AppError::Internal(format!("the central server's answer is not a check: {e}")))
                }),
                Err(Forwarded::Refused(AppError::Invalid { field, reason }))
                    if field == "document_number" || field == "document_kind" =>
                {
                    Err(Failure::App(AppError::Invalid { field: "code".into(), reason }))
                }
                Err(Forwarded::Refused(e)) => Err(Failure::App(e)),
                Err(Forwarded::Offline(_)) => Err(Failure::Offline),
            },
        }
    }
    .await;
    let plate = form.plate.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let reply = if wants_json(&headers) {
        Reply::Json(v.lang)
    } else {
        match context(&node, &v).await {
            Ok(ctx) => Reply::Page(ctx),
            Err(r) => return r,
        }
    };
    answer(reply, plate, result, now)
}

async fn sign_in_page(State(node): State<Shared>, Extension(visit): Extension<Visit>, headers: HeaderMap) -> Response {
    let v = visitor(&node, &headers, &visit);
    node_sign_in(v.chrome("/sign-in"), false)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenForm {
    token: String,
}

/// `POST /sign-in`: the token this node was started with.
async fn sign_in(
    State(node): State<Shared>,
    Extension(visit): Extension<Visit>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = visitor(&node, &headers, &visit);
    if cross_site(&headers) {
        return PageError::Csrf.into_response();
    }
    let form: TokenForm = match parse_form(&body, &v.csrf) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if !same_secret(form.token.trim(), &node.token) {
        return node_sign_in(v.chrome("/sign-in"), true);
    }
    let mut resp = Redirect::to("/officer").into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &node.token, None));
    resp
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn sign_out(
    State(node): State<Shared>,
    Extension(visit): Extension<Visit>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = visitor(&node, &headers, &visit);
    if cross_site(&headers) {
        return PageError::Csrf.into_response();
    }
    if let Err(e) = parse_form::<Empty>(&body, &v.csrf) {
        return e.into_response();
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    resp
}

/// The node's routes: the officer's page (behind the page layer: language, security headers,
/// error pages) and the JSON endpoints (behind the node's token, answering problems).
pub fn router(node: Shared) -> Router {
    let api = Router::new()
        .route("/api/v1/checks", post(check))
        .route("/api/v1/checks/frame", post(check_frame))
        .route("/api/v1/node/status", get(status))
        .layer(middleware::from_fn_with_state(node.clone(), require_token))
        .layer(axum::extract::DefaultBodyLimit::max(tongxing_http::FRAME_BODY_LIMIT))
        .layer(axum::Extension(tongxing_http::extract::BodyLimit(tongxing_http::FRAME_BODY_LIMIT)))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::from_fn(tongxing_http::error::problem_layer));
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/officer") }))
        .route("/officer", get(officer_page))
        .route("/officer/check", post(officer_check))
        .route("/officer/status", get(officer_status))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/assets/{file}", get(tongxing_web::assets::serve))
        .layer(axum::extract::DefaultBodyLimit::max(tongxing_web::session::FORM_LIMIT))
        .layer(middleware::from_fn(tongxing_web::page::layer));
    pages.merge(api).with_state(node)
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
