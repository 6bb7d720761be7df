//! The checkpoint officer's page: scan a pass with the camera (the browser's BarcodeDetector, or
//! frames read by the server), a hardware scanner in keyboard mode, or a typed ID number; then a
//! full-screen verdict — colour, shape and word — with the reasons, what to do, and a sound; a
//! vehicle mode with one verdict per occupant; the checks of this shift.
//!
//! The same template serves the central server (`GET /officer`, `POST /officer/check`, here) and
//! the checkpoint's own node (`tongxing checkpoint serve`, which decides offline and adds its
//! state, [`NodeStatus`]). Both answer a check through [`answer`]: a page for a plain form post,
//! or, for the script, JSON holding the verdict and the shift's row as HTML rendered from the
//! templates here, so that every word comes from the catalogue. The central server's checks
//! call the use cases of the API's `POST /api/v1/checks` and `/checks/frame`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongxing_app::AppError;
use tongxing_app::check::{CheckOutcome, Person};
use tongxing_domain::auth::{Action, in_scope};
use tongxing_domain::ids::Document;
use tongxing_domain::text::{CheckpointId, Plate};
use tongxing_http::AppState;

use crate::i18n::{Lang, fill, msg};
use crate::page::{Chrome, PageError, PageResult, local, render_status};
use crate::session::{Posted, Web};

/// The officer's pages on the central server.
pub fn routes() -> Router<AppState> {
    Router::new().route("/officer", get(page)).route("/officer/check", post(check))
}

/// A checkpoint the officer may check at.
#[derive(Debug, Clone)]
pub struct CheckpointChoice {
    pub id: String,
    pub name: String,
}

/// The checkpoint node's state, as its page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// online, offline or stale (the data older than the policy allows, whatever the network).
    pub mode: &'static str,
    /// Since when it has been so.
    pub since: DateTime<Utc>,
    /// When the oldest part of the data was synced.
    pub synced_at: DateTime<Utc>,
    pub max_age_hours: i64,
    /// Checks waiting for upload.
    pub pending: i64,
}

/// What the page shows of the node: words, from the catalogue.
pub struct NodeBanner {
    pub mode: &'static str,
    pub shape: &'static str,
    pub word: &'static str,
    pub since: String,
    pub queue: String,
    pub synced: String,
    pub note: Option<String>,
}

impl NodeBanner {
    pub fn new(lang: Lang, s: &NodeStatus) -> NodeBanner {
        let m = msg::officer(lang);
        let (shape, word, note) = match s.mode {
            "online" => ("ok", m.node_online, None),
            "stale" => ("stop", m.node_stale, Some(fill(m.node_stale_note, &[("hours", &s.max_age_hours)]))),
            _ => ("caution", m.node_offline, Some(m.node_offline_note.to_string())),
        };
        NodeBanner {
            mode: s.mode,
            shape,
            word,
            since: fill(m.node_since, &[("time", &local(s.since))]),
            queue: match s.pending {
                0 => m.node_queue_none.to_string(),
                1 => m.node_queue_one.to_string(),
                n => fill(m.node_queue, &[("n", &n)]),
            },
            synced: fill(m.node_synced, &[("time", &local(s.synced_at))]),
            note,
        }
    }
}

/// A verdict as the page shows it.
pub struct VerdictView {
    /// pass, conditional, deny or refused: the colour.
    pub kind: &'static str,
    /// ok, caution or stop: the shape.
    pub shape: &'static str,
    /// The word, in the page's language and in the other.
    pub word: &'static str,
    pub word_other: &'static str,
    pub other_lang: &'static str,
    pub todo: &'static str,
    /// The masked document and name, or "checked by pass".
    pub who: String,
    /// (class, words) of the health-code colour.
    pub colour: Option<(&'static str, &'static str)>,
    pub commuter: bool,
    pub reasons: Vec<String>,
    /// Why a code was refused (its stage, in words).
    pub refusal: Option<String>,
    pub plate: Option<String>,
    pub time: String,
    pub policy: Option<String>,
    /// The first reason's code (for the shift's row).
    pub code: String,
}

fn word(lang: Lang, kind: &str) -> &'static str {
    let m = msg::officer(lang);
    match kind {
        "pass" => m.verdict_pass,
        "conditional" => m.verdict_conditional,
        "deny" => m.verdict_deny,
        _ => m.verdict_refused,
    }
}

fn shape(kind: &str) -> &'static str {
    match kind {
        "pass" => "ok",
        "conditional" => "caution",
        _ => "stop",
    }
}

fn kind_of(verdict: &str) -> &'static str {
    match verdict {
        "pass" => "pass",
        "conditional" => "conditional",
        _ => "deny",
    }
}

impl VerdictView {
    /// A decided check.
    pub fn decided(lang: Lang, o: &CheckOutcome, plate: Option<&str>) -> VerdictView {
        let m = msg::officer(lang);
        let kind = kind_of(&o.verdict);
        let who = match (&o.name, o.document.contains('*')) {
            (Some(name), true) => format!("{} · {name}", o.document),
            (None, true) => o.document.clone(),
            _ => m.by_pass.to_string(),
        };
        let colour = match o.code_colour.as_str() {
            "green" => Some(("green", m.colour_green)),
            "yellow" => Some(("yellow", m.colour_yellow)),
            "red" => Some(("red", m.colour_red)),
            _ => None,
        };
        VerdictView {
            kind,
            shape: shape(kind),
            word: word(lang, kind),
            word_other: word(lang.other(), kind),
            other_lang: lang.other().tag(),
            todo: match kind {
                "pass" => m.todo_pass,
                "conditional" => m.todo_conditional,
                _ => m.todo_deny,
            },
            who,
            colour,
            commuter: o.commuter,
            reasons: o.reasons.iter().map(|r| lang.pick(&r.message_zh, &r.message_en).to_string()).collect(),
            refusal: None,
            plate: plate.map(str::to_string),
            time: local_seconds(o.checked_at),
            policy: Some(format!("{} {}", o.policy_id, o.policy_version)),
            code: o.reasons.first().map(|r| r.code.clone()).unwrap_or_default(),
        }
    }

    /// A code refused at a stage of its verification.
    pub fn refused(lang: Lang, stage: &str, plate: Option<&str>, now: DateTime<Utc>) -> VerdictView {
        let m = msg::officer(lang);
        VerdictView {
            kind: "refused",
            shape: "stop",
            word: word(lang, "refused"),
            word_other: word(lang.other(), "refused"),
            other_lang: lang.other().tag(),
            todo: m.todo_refused,
            who: String::new(),
            colour: None,
            commuter: false,
            reasons: Vec::new(),
            refusal: Some(stage_words(lang, stage)),
            plate: plate.map(str::to_string),
            time: local_seconds(now),
            policy: None,
            code: stage.to_string(),
        }
    }
}

/// A stage of the pass's verification, in words.
pub fn stage_words(lang: Lang, stage: &str) -> String {
    let m = msg::officer(lang);
    match stage {
        "expired" => m.stage_expired.into(),
        "revoked" => m.stage_revoked.into(),
        "bad_signature" => m.stage_bad_signature.into(),
        "unknown_key" => m.stage_unknown_key.into(),
        "key_not_valid" => m.stage_key_not_valid.into(),
        "clock_behind" => m.stage_clock_behind.into(),
        "not_yet_valid" => m.stage_not_yet_valid.into(),
        "bad_prefix" => m.stage_bad_prefix.into(),
        "bad_base45" | "bad_compression" | "bad_cose" | "bad_claims" => m.stage_damaged.into(),
        "too_large" => m.stage_too_large.into(),
        "no_rules" => m.stage_no_rules.into(),
        other => fill(m.stage_other, &[("stage", &other)]),
    }
}

/// Beijing time with seconds: a shift's checks come seconds apart.
fn local_seconds(t: DateTime<Utc>) -> String {
    t.with_timezone(&tongxing_domain::shanghai()).format("%H:%M:%S").to_string()
}

/// The page.
#[derive(Template)]
#[template(path = "officer.html")]
struct OfficerPage<'a> {
    c: Chrome,
    m: &'static msg::Officer,
    checkpoints: &'a [CheckpointChoice],
    node: Option<NodeBanner>,
    v: Option<VerdictView>,
    notice: Option<String>,
    /// The form as sent (kept when it is sent back with a notice).
    plate: String,
}

/// The verdict alone (the script shows it full-screen).
#[derive(Template)]
#[template(path = "officer_verdict.html")]
struct VerdictFragment<'a> {
    m: &'static msg::Officer,
    v: &'a VerdictView,
}

/// One row of the shift's list.
#[derive(Template)]
#[template(path = "officer_row.html")]
struct RowFragment<'a> {
    v: &'a VerdictView,
}

/// A notice (a typed number refused, a failure), for the script.
#[derive(Template)]
#[template(source = r#"<p class="notice bad" role="alert">{{ text }}</p>"#, ext = "html")]
struct NoticeFragment<'a> {
    text: &'a str,
}

/// The node's banner alone (the script refreshes it).
#[derive(Template)]
#[template(path = "officer_node.html")]
struct NodeFragment<'a> {
    node: &'a NodeBanner,
}

/// What the page needs besides the verdict: the frame, the checkpoints, the node's state.
pub struct Context {
    pub chrome: Chrome,
    pub checkpoints: Vec<CheckpointChoice>,
    pub node: Option<NodeStatus>,
}

impl Context {
    fn render(self, status: StatusCode, v: Option<VerdictView>, notice: Option<String>, plate: &str) -> Response {
        let lang = self.chrome.lang;
        let page = OfficerPage {
            m: msg::officer(lang),
            checkpoints: &self.checkpoints,
            node: self.node.as_ref().map(|n| NodeBanner::new(lang, n)),
            c: self.chrome,
            v,
            notice,
            plate: plate.to_string(),
        };
        render_status(status, &page)
    }

    /// The page, with nothing checked yet.
    pub fn page(self) -> Response {
        self.render(StatusCode::OK, None, None, "")
    }
}

#[derive(Template)]
#[template(path = "officer_sign_in.html")]
struct NodeSignIn {
    c: Chrome,
    m: &'static msg::Officer,
    error: Option<&'static str>,
}

/// The checkpoint node's sign-in page (with the token it was started with); `wrong` after a
/// wrong token (422).
pub fn node_sign_in(chrome: Chrome, wrong: bool) -> Response {
    let m = msg::officer(chrome.lang);
    let status = if wrong { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render_status(status, &NodeSignIn { c: chrome, m, error: wrong.then_some(m.token_wrong) })
}

/// The node's banner as JSON for the script: `{"mode", "html"}`.
pub fn node_json(lang: Lang, s: &NodeStatus) -> Response {
    let banner = NodeBanner::new(lang, s);
    let html = NodeFragment { node: &banner }.render().unwrap_or_default();
    json_response(
        StatusCode::OK,
        serde_json::json!({"mode": s.mode, "since": s.since, "pending": s.pending, "html": html}),
    )
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// Whether the request is the script's (it asks for JSON) rather than a plain form's.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"))
}

/// The officer's check form. The one `code` box takes what a scanner in keyboard mode types (a
/// pass, `TX1:…`) or an ID number typed by hand; `image` is a camera frame (the script's, when
/// the browser cannot read codes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckForm {
    pub checkpoint_id: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub document_kind: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub plate: Option<String>,
}

/// What was scanned or typed.
pub enum Scan {
    /// A pass's text.
    Pass(String),
    /// A document number typed.
    Document(Document),
    /// A camera frame, as sent.
    Frame(String),
}

impl CheckForm {
    /// The checkpoint, the plate and what to check, each refused naming its field.
    pub fn parse(&self, now: DateTime<Utc>) -> Result<(CheckpointId, Option<Plate>, Scan), AppError> {
        let cp = CheckpointId::parse(self.checkpoint_id.trim()).map_err(|e| AppError::invalid("checkpoint_id", e))?;
        let plate = tongxing_app::input::optional("plate", self.plate.as_deref(), Plate::parse)?;
        // A scanner's line end is not part of the code; a space is (Base45), so only the ends go.
        let code = self.code.trim_matches(|c: char| c == '\r' || c == '\n');
        let scan = match (code.trim(), self.image.as_deref().filter(|i| !i.is_empty())) {
            ("", Some(image)) => Scan::Frame(image.to_string()),
            ("", None) => return Err(AppError::invalid("code", "is required: scan a pass or type an ID number")),
            (_, Some(_)) => return Err(AppError::invalid("image", "goes without a code")),
            (c, None) if c.len() >= 4 && c[..4].eq_ignore_ascii_case("TX1:") => Scan::Pass(code.trim().to_string()),
            (c, None) => {
                let kind = self.document_kind.as_deref().filter(|k| !k.is_empty());
                Scan::Document(tongxing_app::input::document(kind, c, "", now).map_err(|e| match e {
                    AppError::Invalid { field, reason } if field == "document_number" => {
                        AppError::Invalid { field: "code".into(), reason }
                    }
                    other => other,
                })?)
            }
        };
        Ok((cp, plate, scan))
    }
}

/// Why a check got no verdict.
#[derive(Debug)]
pub enum Failure {
    /// Refused or failed: a pass refused at a stage, a value refused, the store unavailable.
    App(AppError),
    /// The checkpoint's node cannot reach the central server, which alone checks ID numbers.
    Offline,
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Failure::App(e)
    }
}

/// How a check is answered: JSON for the script, in a language; or the whole page, for a plain
/// form (only then is the page's context read).
pub enum Reply {
    Json(Lang),
    Page(Context),
}

/// Answers a check: JSON for the script (`{"outcome", "sound", "html", "row"}`), or the page
/// with the verdict or a notice for a plain form. A frame in which no code could be read is
/// `retry` (the script sends the next one).
pub fn answer(
    reply: Reply,
    plate: Option<&str>,
    result: Result<CheckOutcome, Failure>,
    now: DateTime<Utc>,
) -> Response {
    let (lang, json) = match &reply {
        Reply::Json(lang) => (*lang, true),
        Reply::Page(ctx) => (ctx.chrome.lang, false),
    };
    let m = msg::officer(lang);
    let refused = StatusCode::UNPROCESSABLE_ENTITY;
    let (status, outcome, view, notice) = match result {
        Ok(o) => (StatusCode::OK, kind_of(&o.verdict), Some(VerdictView::decided(lang, &o, plate)), None),
        Err(Failure::Offline) => (refused, "invalid", None, Some(m.offline_document.to_string())),
        Err(Failure::App(AppError::PassRefused { stage, .. })) => {
            (refused, "refused", Some(VerdictView::refused(lang, &stage, plate, now)), None)
        }
        Err(Failure::App(AppError::Invalid { field, reason })) if field == "image" => {
            if json {
                return json_response(
                    refused,
                    serde_json::json!({"outcome": "retry", "detail": format!("{field}: {reason}")}),
                );
            }
            (refused, "invalid", None, Some(format!("{} {reason}", m.invalid_other)))
        }
        Err(Failure::App(AppError::Invalid { field, reason })) if field == "code" || field == "document_kind" => {
            (refused, "invalid", None, Some(format!("{} ({reason})", m.invalid_document)))
        }
        Err(Failure::App(AppError::Invalid { field, reason })) => {
            (refused, "invalid", None, Some(format!("{} {field}: {reason}", m.invalid_other)))
        }
        Err(Failure::App(AppError::Forbidden(reason))) => {
            (StatusCode::FORBIDDEN, "invalid", None, Some(format!("{} {reason}", m.invalid_other)))
        }
        Err(Failure::App(e)) => {
            let status = match &e {
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AppError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                AppError::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::error!(error = %e, "an officer's check failed");
            (status, "failed", None, Some(m.failed.to_string()))
        }
    };
    if let Reply::Page(ctx) = reply {
        return ctx.render(status, view, notice, plate.unwrap_or(""));
    }
    let (html, row) = match &view {
        Some(v) => (
            VerdictFragment { m, v }.render().unwrap_or_default(),
            Some(RowFragment { v }.render().unwrap_or_default()),
        ),
        None => (NoticeFragment { text: notice.as_deref().unwrap_or("") }.render().unwrap_or_default(), None),
    };
    let sound = view.as_ref().map(|v| match v.kind {
        "pass" => "pass",
        "conditional" => "conditional",
        _ => "deny",
    });
    json_response(status, serde_json::json!({"outcome": outcome, "sound": sound, "html": html, "row": row}))
}

// ---------------------------------------------------------------------------------------------
// The central server's handlers.

async fn context(s: &AppState, web: &Web) -> Result<Context, PageError> {
    let caller = web.require(Action::Check, "officer")?;
    let mut checkpoints: Vec<CheckpointChoice> = s
        .app
        .store
        .checkpoints()
        .await?
        .into_iter()
        .filter(|c| in_scope(&caller.scope, &c.id))
        .map(|c| CheckpointChoice { id: c.id, name: c.name })
        .collect();
    checkpoints.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Context { chrome: web.chrome(), checkpoints, node: None })
}

/// `GET /officer`.
async fn page(State(s): State<AppState>, web: Web) -> PageResult {
    Ok(context(&s, &web).await?.page())
}

/// `POST /officer/check`: the same use cases as `POST /api/v1/checks` (a pass or a document)
/// and `POST /api/v1/checks/frame`.
async fn check(State(s): State<AppState>, headers: HeaderMap, Posted { web, form }: Posted<CheckForm>) -> PageResult {
    let caller = web.require(Action::Check, "officer")?.clone();
    let now = Utc::now();
    let result = async {
        let (cp, plate, scan) = form.parse(now)?;
        if !in_scope(&caller.scope, cp.as_str()) {
            return Err(AppError::Forbidden(format!("this token may not check at {cp}")));
        }
        let o = match scan {
            Scan::Pass(text) => s.app.check_pass(&cp, &text, plate.as_ref(), &caller.token_id, now).await?,
            Scan::Document(document) => {
                s.app.check_person(&cp, &Person { document, dcc: None }, plate.as_ref(), &caller.token_id, now).await?
            }
            Scan::Frame(image) => s.app.check_frame(&cp, &image, plate.as_ref(), &caller.token_id, now).await?,
        };
        s.metrics.verdict(&o.verdict, o.reasons.first().map_or("", |r| r.code.as_str()));
        Ok((o, plate))
    }
    .await;
    let plate = form.plate.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let reply = if wants_json(&headers) { Reply::Json(web.lang) } else { Reply::Page(context(&s, &web).await?) };
    Ok(answer(reply, plate, result.map(|(o, _)| o).map_err(Failure::App), now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(code: &str) -> CheckForm {
        CheckForm { checkpoint_id: "CP1".into(), code: code.into(), document_kind: None, image: None, plate: None }
    }

    #[test]
    fn the_code_box_takes_a_pass_or_an_id_number() {
        let now = Utc::now();
        assert!(matches!(form("TX1:6BF AB\r\n").parse(now).unwrap().2, Scan::Pass(t) if t == "TX1:6BF AB"));
        assert!(matches!(form("11010519491231002X").parse(now).unwrap().2, Scan::Document(_)));
        let e = form("110105194912310021").parse(now).err().unwrap();
        assert!(matches!(&e, AppError::Invalid { field, .. } if field == "code"), "{e}");
        let e = form("").parse(now).err().unwrap();
        assert!(matches!(&e, AppError::Invalid { field, .. } if field == "code"), "{e}");
        let mut f = form("");
        f.image = Some("data:image/png;base64,AAAA".into());
        assert!(matches!(f.parse(now).unwrap().2, Scan::Frame(_)));
        f.code = "TX1:A".into();
        assert!(f.parse(now).is_err());
        let mut f = form("TX1:A");
        f.plate = Some("x".into());
        assert!(matches!(f.parse(now).err().unwrap(), AppError::Invalid { field, .. } if field == "plate"));
    }

    #[test]
    fn every_stage_has_words_in_both_languages() {
        for stage in tongxing_pass::Stage::ALL {
            for lang in Lang::ALL {
                let w = stage_words(lang, stage.as_str());
                let fallback = fill(msg::officer(lang).stage_other, &[("stage", &stage.as_str())]);
                // Every stage a scanned code can stop at has words of its own (an image's stages
                // concern frames, which the page sends again).
                assert!(w != fallback || stage.as_str() == "bad_image", "{stage:?} {lang:?}: {w}");
            }
        }
    }
}
