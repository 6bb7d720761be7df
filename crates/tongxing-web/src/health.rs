//! The health authority's page: set a colour for one person, or for many from a CSV file
//! previewed before anything is written (then all or nothing); the open alerts, live from the
//! outbox's stream (`health.js` follows `/health/alerts/stream` and reloads the list), to
//! acknowledge and resolve; a candidate policy's dry run over recent checks, then publishing and
//! activating exactly what was dry-run.
//!
//! The same use cases as `PUT /api/v1/people/code`, `GET /api/v1/alerts`, its stream and its
//! acknowledge and resolve, and `POST /api/v1/policies/dry-run`, `/policies`, `/activate`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use ring::digest;
use serde::Deserialize;
use tongxing_app::alerts::{AlertQuery, AlertView};
use tongxing_app::colours::ColourPreview;
use tongxing_app::dryrun::DryRunReport;
use tongxing_app::input::{POPUPS, RawColour};
use tongxing_domain::auth::Action;
use tongxing_domain::text::{PolicyId, PolicyVersion, Reason};
use tongxing_http::AppState;

use crate::i18n::msg;
use crate::page::{Chrome, PageError, PageResult, local, render};
use crate::session::{PageQuery, Posted, Web};

type M = &'static msg::Health;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(home))
        .route("/health/colour", post(set_colour))
        .route("/health/colours", get(colours_page).post(apply_colours))
        .route("/health/colours/preview", post(preview_colours))
        .route("/health/alerts", get(alerts_fragment))
        .route("/health/alerts/stream", get(stream))
        .route("/health/alerts/acknowledge", post(acknowledge))
        .route("/health/alerts/resolve", post(resolve))
        .route("/health/policy", get(policy_page))
        .route("/health/policy/dry-run", post(dry_run))
        .route("/health/policy/publish", post(publish))
}

fn fingerprint(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// An alert as the page lists it: its detail read for people (masked as stored).
pub struct AlertRow {
    pub a: AlertView,
    pub raised: String,
    pub who: String,
    pub what: String,
}

fn alert_row(m: M, a: AlertView) -> AlertRow {
    let d = &a.detail;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let who = format!("{} {}", s(&d["person"]["name"]), s(&d["person"]["document"])).trim().to_string();
    let mut what = Vec::new();
    if d["sample"].is_object() {
        what.push(format!("{} {}/{}", m.sample, s(&d["sample"]["lab"]), s(&d["sample"]["sample_id"])));
    }
    if let Some(n) = d["entries"].as_array().map(Vec::len).filter(|n| *n > 0) {
        what.push(crate::i18n::fill(m.entries_n, &[("n", &n)]));
    }
    if let Some(n) = d["co_travellers"].as_array().map(Vec::len).filter(|n| *n > 0) {
        what.push(crate::i18n::fill(m.co_travellers_n, &[("n", &n)]));
    }
    if let Some(n) = d["members"].as_array().map(Vec::len) {
        what.push(crate::i18n::fill(m.pool_members_n, &[("n", &n), ("pool", &s(&d["pool_id"]))]));
    }
    AlertRow { raised: local(a.raised_at), who, what: what.join(" · "), a }
}

fn kind_word(m: M, kind: &str) -> &'static str {
    match kind {
        "positive" => m.kind_positive,
        "overdue" => m.kind_overdue,
        "pool_positive" => m.kind_pool_positive,
        _ => m.kind_other,
    }
}

async fn open_alerts(s: &AppState, m: M) -> Result<Vec<AlertRow>, PageError> {
    let mut rows = Vec::new();
    for status in ["open", "acknowledged"] {
        let q = AlertQuery { status: Some(status), kind: None, since: None, limit: Some(200) };
        rows.extend(s.app.alerts(&q).await?.into_iter().map(|a| alert_row(m, a)));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.a.id));
    Ok(rows)
}

#[derive(Template)]
#[template(path = "health/home.html")]
struct Home {
    c: Chrome,
    m: M,
    cm: &'static msg::Citizen,
    alerts: Vec<AlertRow>,
    done: Option<&'static str>,
}

impl Home {
    fn popups(&self) -> &'static [(&'static str, &'static str)] {
        POPUPS
    }
    fn kind(&self, k: &str) -> &'static str {
        kind_word(self.m, k)
    }
    fn kinds(&self) -> [(&'static str, &'static str); 4] {
        crate::citizen::document_kinds(self.cm)
    }
}

#[derive(Template)]
#[template(path = "health/alerts.html")]
struct AlertList {
    c: Chrome,
    m: M,
    alerts: Vec<AlertRow>,
}

impl AlertList {
    fn kind(&self, k: &str) -> &'static str {
        kind_word(self.m, k)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /health`: set a colour, the open alerts (live), links to the file and the policies.
async fn home(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<DoneQuery>) -> PageResult {
    web.require(Action::SetCode, "health")?;
    let m = msg::health(web.lang);
    let alerts = open_alerts(&s, m).await?;
    let done = match q.done.as_deref() {
        Some("colour") => Some(m.done_colour),
        Some("acknowledged") => Some(m.done_acknowledged),
        Some("resolved") => Some(m.done_resolved),
        _ => None,
    };
    Ok(render(&Home { c: web.chrome(), m, cm: msg::citizen(web.lang), alerts, done }))
}

/// A `datetime-local` value (Beijing time, no offset) as RFC 3339; an RFC 3339 value as it is.
fn local_time(v: &str) -> String {
    let v = v.trim();
    match NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M") {
        Ok(t) => format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S")),
        Err(_) => v.to_string(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourForm {
    #[serde(default)]
    document_kind: String,
    document_number: String,
    colour: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    popup: String,
    #[serde(default)]
    expires_at: String,
}

/// `POST /health/colour`: one person's colour (as `PUT /api/v1/people/code`).
async fn set_colour(State(s): State<AppState>, Posted { web, form }: Posted<ColourForm>) -> PageResult {
    let caller = web.require(Action::SetCode, "health")?;
    let now = Utc::now();
    let expires = local_time(&form.expires_at);
    let opt = |v: &str| Some(v.to_string()).filter(|v| !v.trim().is_empty());
    let (kind, reason, popup, expires) = (opt(&form.document_kind), opt(&form.reason), opt(&form.popup), opt(&expires));
    let raw = RawColour {
        document_kind: kind.as_deref(),
        document_number: &form.document_number,
        colour: &form.colour,
        reason: reason.as_deref(),
        popup: popup.as_deref(),
        expires_at: expires.as_deref(),
    };
    let change = tongxing_app::input::colour(&raw, "", now)?;
    s.app.set_colour(&change, &caller.token_id, now).await?;
    Ok(Redirect::to("/health?done=colour").into_response())
}

// ---- colours from a file ----

#[derive(Template)]
#[template(path = "health/colours.html")]
struct ColoursPage {
    c: Chrome,
    m: M,
    rm: &'static msg::Registry,
    csv: String,
    preview: Option<(ColourPreview, String)>,
    set: Option<usize>,
}

async fn colours_page(web: Web) -> PageResult {
    web.require(Action::SetCode, "health")?;
    let (m, rm) = (msg::health(web.lang), msg::registry(web.lang));
    Ok(render(&ColoursPage { c: web.chrome(), m, rm, csv: String::new(), preview: None, set: None }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvForm {
    csv: String,
}

/// `POST /health/colours/preview`: every row checked; nothing written.
async fn preview_colours(State(s): State<AppState>, Posted { web, form }: Posted<CsvForm>) -> PageResult {
    web.require(Action::SetCode, "health")?;
    let preview = s.app.preview_colours(&form.csv, Utc::now())?;
    let print = fingerprint(&form.csv);
    let (m, rm) = (msg::health(web.lang), msg::registry(web.lang));
    Ok(render(&ColoursPage { c: web.chrome(), m, rm, csv: form.csv, preview: Some((preview, print)), set: None }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyForm {
    csv: String,
    previewed: String,
}

/// `POST /health/colours`: the file previewed, all in one transaction.
async fn apply_colours(State(s): State<AppState>, Posted { web, form }: Posted<ApplyForm>) -> PageResult {
    let caller = web.require(Action::SetCode, "health")?;
    let (m, rm) = (msg::health(web.lang), msg::registry(web.lang));
    if !crate::page::same(&fingerprint(&form.csv), form.previewed.trim()) {
        return Err(PageError::Invalid { field: "csv".into(), reason: rm.not_previewed.into() });
    }
    let set = s.app.set_colours(&form.csv, &caller.token_id, Utc::now()).await?;
    Ok(render(&ColoursPage { c: web.chrome(), m, rm, csv: String::new(), preview: None, set: Some(set) }))
}

// ---- alerts ----

/// `GET /health/alerts`: the open and acknowledged alerts alone, for `health.js`.
async fn alerts_fragment(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::HandleAlerts, "health")?;
    let m = msg::health(web.lang);
    let alerts = open_alerts(&s, m).await?;
    Ok(render(&AlertList { c: web.chrome(), m, alerts }))
}

/// `GET /health/alerts/stream`: the outbox's events as the API's stream sends them (resumed
/// from `Last-Event-ID`, which the browser sends after a dropped connection).
async fn stream(State(s): State<AppState>, web: Web, headers: HeaderMap) -> Result<Response, PageError> {
    web.require(Action::HandleAlerts, "health")?;
    let after = crate::session::last_event_id(&headers)?;
    let rx = s.app.alert_feed().subscribe(after).await?;
    Ok(tongxing_http::event_stream(rx))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckForm {
    id: i64,
}

async fn acknowledge(State(s): State<AppState>, Posted { web, form }: Posted<AckForm>) -> PageResult {
    let caller = web.require(Action::HandleAlerts, "health")?;
    s.app.acknowledge_alert(form.id, &caller.token_id, Utc::now()).await?;
    Ok(Redirect::to("/health?done=acknowledged#alerts-h").into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveForm {
    id: i64,
    outcome: String,
}

async fn resolve(State(s): State<AppState>, Posted { web, form }: Posted<ResolveForm>) -> PageResult {
    let caller = web.require(Action::HandleAlerts, "health")?;
    let outcome = Reason::parse(&form.outcome)
        .map_err(|e| PageError::Invalid { field: "outcome".into(), reason: e.to_string() })?;
    s.app.resolve_alert(form.id, &caller.token_id, &outcome, Utc::now()).await?;
    Ok(Redirect::to("/health?done=resolved#alerts-h").into_response())
}

// ---- policies ----

#[derive(Template)]
#[template(path = "health/policy.html")]
struct PolicyPage {
    c: Chrome,
    m: M,
    text: String,
    days: i64,
    report: Option<(DryRunReport, String)>,
    published: Option<String>,
}

impl PolicyPage {
    fn time(&self, t: &DateTime<Utc>) -> String {
        local(*t)
    }
}

async fn policy_page(web: Web) -> PageResult {
    web.require(Action::PublishPolicy, "health")?;
    let m = msg::health(web.lang);
    Ok(render(&PolicyPage { c: web.chrome(), m, text: String::new(), days: 7, report: None, published: None }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunForm {
    policy: String,
    days: i64,
}

/// `POST /health/policy/dry-run`: the candidate replayed over the checks of the last days.
async fn dry_run(State(s): State<AppState>, Posted { web, form }: Posted<DryRunForm>) -> PageResult {
    let caller = web.require(Action::PublishPolicy, "health")?;
    if !(1..=90).contains(&form.days) {
        return Err(PageError::Invalid { field: "days".into(), reason: "from 1 to 90 days".into() });
    }
    let rs = tongxing_app::policies::parse_rule_set(&form.policy)?;
    let now = Utc::now();
    let report = s.app.dry_run_policy(&rs, now - Duration::days(form.days), now, 20, &caller.token_id, now).await?;
    let print = fingerprint(&form.policy);
    Ok(render(&PolicyPage {
        c: web.chrome(),
        m: msg::health(web.lang),
        text: form.policy,
        days: form.days,
        report: Some((report, print)),
        published: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishForm {
    policy: String,
    /// The fingerprint of the text dry-run: what is published is exactly that.
    previewed: String,
}

/// `POST /health/policy/publish`: publishes and activates the candidate that was dry-run.
async fn publish(State(s): State<AppState>, Posted { web, form }: Posted<PublishForm>) -> PageResult {
    let caller = web.require(Action::PublishPolicy, "health")?;
    let m = msg::health(web.lang);
    if !crate::page::same(&fingerprint(&form.policy), form.previewed.trim()) {
        return Err(PageError::Invalid { field: "policy".into(), reason: m.not_dry_run.into() });
    }
    let rs = tongxing_app::policies::parse_rule_set(&form.policy)?;
    let now = Utc::now();
    s.app.publish_policy(&rs, &form.policy, &caller.token_id, now).await?;
    // parse_rule_set checked both already.
    let invalid = |field: &str, e: tongxing_domain::text::TextError| PageError::Invalid {
        field: field.into(),
        reason: e.to_string(),
    };
    let id = PolicyId::parse(rs.id()).map_err(|e| invalid("id", e))?;
    let version = PolicyVersion::parse(rs.version()).map_err(|e| invalid("version", e))?;
    s.app.activate_policy(&id, &version, &caller.token_id, now).await?;
    let published = crate::i18n::fill(
        m.published,
        &[("id", &rs.id()), ("version", &rs.version()), ("from", &local(rs.valid_from()))],
    );
    Ok(render(&PolicyPage {
        c: web.chrome(),
        m,
        text: String::new(),
        days: 7,
        report: None,
        published: Some(published),
    }))
}
