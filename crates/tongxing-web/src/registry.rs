//! The registry officer's page: the queue of commuter applications with their evidence, and
//! approve / reject / suspend / reinstate / revoke with a reason; links to minors awaiting
//! approval; a bulk import of the commuter list (pasted or picked), every bad row shown before
//! anything is written, and then exactly the file previewed imported.
//!
//! The same use cases as `GET /api/v1/commuters/queue`, `POST /api/v1/commuters/decision`,
//! `GET /api/v1/family-links/pending`, `POST /api/v1/family-links/{link}/decision` and
//! `tongxing import commuters`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use ring::digest;
use serde::Deserialize;
use tongxing_app::citizen::PendingLink;
use tongxing_app::commuter::{ImportOutcome, ImportPreview, QueuedApplication};
use tongxing_domain::auth::Action;
use tongxing_domain::facts::CommuterStatus;
use tongxing_http::AppState;

use crate::i18n::msg;
use crate::page::{Chrome, PageError, PageResult, local, render};
use crate::session::{PageQuery, Posted, Web};

type M = &'static msg::Registry;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registry", get(queue))
        .route("/registry/decision", post(decide))
        .route("/registry/family", post(decide_link))
        .route("/registry/import", get(import_page).post(import))
        .route("/registry/import/preview", post(preview))
}

/// The states the queue shows, in tab order.
const TABS: &[&str] = &["pending", "approved", "suspended", "rejected", "revoked", "expired"];

#[derive(Template)]
#[template(path = "registry/queue.html")]
struct Queue {
    c: Chrome,
    m: M,
    cm: &'static msg::Citizen,
    status: &'static str,
    rows: Vec<QueuedApplication>,
    links: Vec<PendingLink>,
    done: Option<&'static str>,
}

impl Queue {
    fn tabs(&self) -> &'static [&'static str] {
        TABS
    }
    fn status_word(&self, s: &str) -> &'static str {
        crate::citizen::status_word(self.cm, s)
    }
    fn kind_word(&self, k: &str) -> &'static str {
        crate::citizen::kind_word(self.cm, k)
    }
    fn proof_word(&self, p: &str) -> &'static str {
        match p {
            "household_register" => self.cm.proof_household_register,
            "property_deed" => self.cm.proof_property_deed,
            "lease" => self.cm.proof_lease,
            _ => self.cm.proof_residents_committee_letter,
        }
    }
    /// The decisions open to a certification in `status`: (action, label, needs a reason).
    fn actions(&self, status: &str) -> Vec<(&'static str, &'static str, bool)> {
        let m = self.m;
        match status {
            "pending" => vec![("approve", m.approve, false), ("reject", m.reject, true)],
            "approved" => vec![("suspend", m.suspend, true), ("revoke", m.revoke, true)],
            "suspended" => vec![("reinstate", m.reinstate, false), ("revoke", m.revoke, true)],
            _ => Vec::new(),
        }
    }
    fn time(&self, t: &DateTime<Utc>) -> String {
        local(*t)
    }
    fn is_current(&self, tab: &str) -> bool {
        tab == self.status
    }
    /// A decision that lets the person in (shown as the primary button).
    fn positive(&self, action: &str) -> bool {
        matches!(action, "approve" | "reinstate")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    status: Option<String>,
    done: Option<String>,
}

/// `GET /registry[?status=]`: the applications in a state (pending first), with their evidence.
async fn queue(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<QueueQuery>) -> PageResult {
    web.require(Action::DecideCommuter, "registry")?;
    let m = msg::registry(web.lang);
    let status = q.status.as_deref().unwrap_or("pending");
    let status = *TABS.iter().find(|t| **t == status).ok_or_else(|| PageError::Invalid {
        field: "status".into(),
        reason: format!("{} is not one of: {}", tongxing_domain::text::quote(status), TABS.join(", ")),
    })?;
    let parsed = CommuterStatus::parse(status).map_err(|e| PageError::Invalid { field: "status".into(), reason: e })?;
    let rows = s.app.commuter_queue(parsed, 200).await?;
    let links = s.app.pending_links(Utc::now()).await?;
    let done = match q.done.as_deref() {
        Some("approve" | "reinstate") => Some(m.done_approved),
        Some("reject") => Some(m.done_rejected),
        Some("suspend") => Some(m.done_suspended),
        Some("revoke") => Some(m.done_revoked),
        Some("link") => Some(m.done_link),
        _ => None,
    };
    Ok(render(&Queue { c: web.chrome(), m, cm: msg::citizen(web.lang), status, rows, links, done }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionForm {
    person_id: i64,
    action: String,
    #[serde(default)]
    reason: String,
    /// The tab to return to.
    #[serde(default)]
    status: String,
}

/// `POST /registry/decision`: a decision on one application of the queue.
async fn decide(State(s): State<AppState>, Posted { web, form }: Posted<DecisionForm>) -> PageResult {
    let caller = web.require(Action::DecideCommuter, "registry")?;
    let reason = Some(form.reason.as_str()).filter(|r| !r.trim().is_empty());
    s.app.decide_commuter_of(form.person_id, &form.action, reason, &caller.token_id, Utc::now()).await?;
    let back = TABS.iter().find(|t| **t == form.status).copied().unwrap_or("pending");
    Ok(Redirect::to(&format!("/registry?status={back}&done={}", form.action.trim())).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkForm {
    link: i64,
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /registry/family`: approves or refuses a link to a minor.
async fn decide_link(State(s): State<AppState>, Posted { web, form }: Posted<LinkForm>) -> PageResult {
    let caller = web.require(Action::ReviewFamilyLinks, "registry")?;
    let approve = match form.action.as_str() {
        "approve" => true,
        "refuse" => false,
        other => {
            return Err(PageError::Invalid {
                field: "action".into(),
                reason: format!("{} is not one of: approve, refuse", tongxing_domain::text::quote(other)),
            });
        }
    };
    let reason = tongxing_app::input::optional("reason", Some(&form.reason), tongxing_domain::text::Reason::parse)?;
    if !approve && reason.is_none() {
        return Err(PageError::Invalid { field: "reason".into(), reason: "a refusal needs a reason".into() });
    }
    let reason = reason.as_ref().map(|r| r.as_str());
    s.app.decide_link(form.link, approve, &caller.token_id, reason, Utc::now()).await?;
    Ok(Redirect::to("/registry?done=link").into_response())
}

// ---- the bulk import ----

#[derive(Template)]
#[template(path = "registry/import.html")]
struct ImportPage {
    c: Chrome,
    m: M,
    csv: String,
    /// After a preview: what it found, and the fingerprint of the text previewed.
    preview: Option<(ImportPreview, String)>,
    outcome: Option<ImportOutcome>,
}

fn fingerprint(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /registry/import`: paste or pick the commuter list.
async fn import_page(web: Web) -> PageResult {
    web.require(Action::ImportCommuters, "registry")?;
    Ok(render(&ImportPage {
        c: web.chrome(),
        m: msg::registry(web.lang),
        csv: String::new(),
        preview: None,
        outcome: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewForm {
    csv: String,
}

/// `POST /registry/import/preview`: every row checked, every bad row shown; nothing written.
async fn preview(State(s): State<AppState>, Posted { web, form }: Posted<PreviewForm>) -> PageResult {
    web.require(Action::ImportCommuters, "registry")?;
    let preview = s.app.preview_commuters(&form.csv, Utc::now())?;
    let print = fingerprint(&form.csv);
    Ok(render(&ImportPage {
        c: web.chrome(),
        m: msg::registry(web.lang),
        csv: form.csv,
        preview: Some((preview, print)),
        outcome: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportForm {
    csv: String,
    /// The fingerprint of the text previewed: what is imported is exactly that.
    previewed: String,
}

/// `POST /registry/import`: imports the good rows of the file previewed.
async fn import(State(s): State<AppState>, Posted { web, form }: Posted<ImportForm>) -> PageResult {
    let caller = web.require(Action::ImportCommuters, "registry")?;
    let m = msg::registry(web.lang);
    if !crate::page::same(&fingerprint(&form.csv), form.previewed.trim()) {
        return Err(PageError::Invalid { field: "csv".into(), reason: m.not_previewed.into() });
    }
    let outcome = s.app.import_commuters(&form.csv, &caller.token_id, Utc::now()).await?;
    Ok(render(&ImportPage { c: web.chrome(), m, csv: String::new(), preview: None, outcome: Some(outcome) }))
}
