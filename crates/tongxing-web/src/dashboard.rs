//! The command centre's dashboard, readable across a room: today's entries per hour beside the
//! same weekday last week (a bar chart drawn here as SVG, and its table), entries per
//! checkpoint by verdict with the denial rate, the testing demand of the next 14 days per test
//! point and the visitor forecast with its back-test (MASE, sMAPE), and the open early
//! warnings with why each fired, live from the outbox's stream (`dashboard.js` follows
//! `/dashboard/warnings/stream` and reloads the list; it reloads the flows every minute).
//!
//! Counts only: the analyst's are suppressed under the threshold exactly as the API suppresses
//! them (the same use cases as `GET /api/v1/analytics/profile`, `/flows`, `/demand` and
//! `/warnings`); nobody is named here. Each view downloads as CSV from `/dashboard/*.csv`
//! (the page's cookie session; the API takes bearer tokens only), written by the same
//! `CountTable::to_csv` as the API's `format=csv`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;
use std::convert::Infallible;
use tongxing_app::AppError;
use tongxing_app::alerts::AlertQuery;
use tongxing_app::analytics::{CountTable, FlowRequest, WARNING_KINDS};
use tongxing_domain::auth::{Action, Role};
use tongxing_http::AppState;
use tongxing_store::FlowDim;

use crate::i18n::msg;
use crate::page::{Chrome, PageError, PageResult, local, render};
use crate::session::{Session, Web};

type M = &'static msg::Dashboard;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(home))
        .route("/dashboard/flows", get(flows_fragment))
        .route("/dashboard/warnings", get(warnings_fragment))
        .route("/dashboard/warnings/stream", get(stream))
        .route("/dashboard/checkpoints.csv", get(checkpoints_csv))
        .route("/dashboard/profile.csv", get(profile_csv))
        .route("/dashboard/demand.csv", get(demand_csv))
        .route("/dashboard/warnings.csv", get(warnings_csv))
}

/// Counts are suppressed for the analyst (as the API's handlers decide).
fn suppressed(web: &Web) -> bool {
    web.session.as_ref().is_some_and(|Session { caller, .. }| caller.role == Role::Analyst)
}

/// A count as shown: hidden when suppressed.
pub struct Shown {
    pub text: String,
    pub hidden: bool,
}

fn shown(v: Option<u64>) -> Shown {
    match v {
        Some(n) => Shown { text: n.to_string(), hidden: false },
        None => Shown { text: String::new(), hidden: true },
    }
}

fn percent(r: Option<f64>) -> String {
    r.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_else(|| "—".into())
}

/// A bar of a chart, in the chart's own units.
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub class: &'static str,
}

/// A bar chart drawn on the server: bars, labels under some of them, the top of the scale.
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub base: f64,
    pub bars: Vec<Bar>,
    pub labels: Vec<(f64, String)>,
    pub max: u64,
}

const PLOT_TOP: f64 = 34.0;
const PLOT_H: f64 = 200.0;

/// Groups of bars (one per series, each with its class); a hidden value draws no bar.
fn chart(groups: &[(String, Vec<Option<u64>>)], classes: &[&'static str], label_every: usize) -> Chart {
    let width = 720.0;
    let n = groups.len().max(1) as f64;
    let slot = width / n;
    let series = classes.len().max(1) as f64;
    let bar_w = ((slot * 0.8) / series * 10.0).round() / 10.0;
    let max = groups.iter().flat_map(|g| g.1.iter().flatten()).copied().max().unwrap_or(0).max(1);
    let base = PLOT_TOP + PLOT_H;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, (label, values)) in groups.iter().enumerate() {
        let left = i as f64 * slot + slot * 0.1;
        for (j, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let h = ((*v as f64 / max as f64) * PLOT_H * 10.0).round() / 10.0;
            let x = ((left + j as f64 * bar_w) * 10.0).round() / 10.0;
            bars.push(Bar { x, y: base - h, w: bar_w, h, class: classes.get(j).copied().unwrap_or("bar") });
        }
        if label_every > 0 && i % label_every == 0 {
            labels.push(((left * 10.0).round() / 10.0, label.clone()));
        }
    }
    Chart { width, height: base + 30.0, base, bars, labels, max }
}

// ---- flows ----

pub struct CheckpointRow {
    pub key: String,
    pub pass: Shown,
    pub conditional: Shown,
    pub deny: Shown,
    pub total: Shown,
    pub rate: String,
}

impl CheckpointRow {
    /// The counts with the words that label them (a narrow screen stacks them).
    pub fn counts(&self, m: M) -> [(&'static str, &Shown); 4] {
        [(m.pass, &self.pass), (m.conditional, &self.conditional), (m.deny, &self.deny), (m.total, &self.total)]
    }
}

pub struct HourRow {
    pub hour: String,
    pub today: Shown,
    pub last_week: Shown,
}

pub struct Flows {
    pub today: String,
    pub last_week: String,
    pub entries: Shown,
    pub denied: Shown,
    pub rate: String,
    pub checkpoints: Vec<CheckpointRow>,
    pub hours: Vec<HourRow>,
    pub chart: Chart,
    pub updated: String,
}

fn beijing_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tongxing_domain::shanghai()).date_naive()
}

fn day_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|d| d.and_local_timezone(tongxing_domain::shanghai()).single())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Today's entries per checkpoint by verdict (the request the page and its CSV make).
fn checkpoint_request(today: NaiveDate) -> FlowRequest {
    let since = day_start(today);
    FlowRequest {
        grain: 60,
        since,
        until: since + Duration::days(1),
        rows: FlowDim::Checkpoint,
        columns: FlowDim::Verdict,
        checkpoint: None,
        verdict: None,
        who: None,
        mode: None,
    }
}

async fn flows(s: &AppState, suppress: bool) -> Result<Flows, PageError> {
    let now = Utc::now();
    let today = beijing_today(now);
    let table = s.app.flows(&checkpoint_request(today), suppress).await?;
    let profile = s.app.profile(today, None, suppress).await?;
    let col = |t: &CountTable, name: &str| t.columns.iter().position(|c| c == name);
    let (p, c, d) = (col(&table, "pass"), col(&table, "conditional"), col(&table, "deny"));
    let cell = |cells: &[Option<u64>], i: Option<usize>| shown(i.and_then(|i| cells.get(i).copied().flatten()));
    let checkpoints = table
        .rows
        .iter()
        .map(|r| CheckpointRow {
            key: r.key.clone(),
            pass: cell(&r.cells, p),
            conditional: cell(&r.cells, c),
            deny: cell(&r.cells, d),
            total: shown(r.total),
            rate: percent(r.denial_rate),
        })
        .collect();
    let denied = d.and_then(|d| table.column_totals.get(d).copied().flatten());
    let rate = match (denied, table.total) {
        (Some(d), Some(t)) if t > 0 => Some(d as f64 / t as f64),
        _ => None,
    };
    let series = |i: usize| profile.rows.get(i).map(|r| r.cells.clone()).unwrap_or_else(|| vec![Some(0); 24]);
    let (now_row, prev_row) = (series(0), series(1));
    let hours: Vec<HourRow> = (0..24)
        .map(|h| HourRow {
            hour: format!("{h:02}:00"),
            today: shown(now_row.get(h).copied().flatten()),
            last_week: shown(prev_row.get(h).copied().flatten()),
        })
        .collect();
    let groups: Vec<(String, Vec<Option<u64>>)> = (0..24)
        .map(|h| (format!("{h:02}"), vec![now_row.get(h).copied().flatten(), prev_row.get(h).copied().flatten()]))
        .collect();
    Ok(Flows {
        today: today.to_string(),
        last_week: (today - Duration::days(7)).to_string(),
        entries: shown(table.total),
        denied: shown(denied),
        rate: percent(rate),
        checkpoints,
        hours,
        chart: chart(&groups, &["bar now", "bar prev"], 3),
        updated: local(now),
    })
}

// ---- testing demand ----

pub struct DemandRow {
    pub day: String,
    pub cells: Vec<Shown>,
    /// Per cell: over the test point's capacity.
    pub over: Vec<bool>,
    pub total: Shown,
}

/// A test point's day over its capacity.
pub struct OverCapacity {
    pub day: String,
    pub point: String,
    pub demand: u64,
    pub capacity: i64,
}

pub struct VisitorRow {
    pub day: String,
    pub value: Shown,
    pub forecast: bool,
}

pub struct Score {
    pub horizon: u64,
    pub mase: String,
    pub smape: String,
}

pub struct Demand {
    pub computed: String,
    pub window_days: i64,
    pub points: Vec<String>,
    /// Per point: its capacity a day ("—": none registered).
    pub capacity: Vec<String>,
    /// Whether any test point has a capacity registered.
    pub has_capacity: bool,
    pub over: Vec<OverCapacity>,
    pub rows: Vec<DemandRow>,
    pub chart: Chart,
    pub visitors: Vec<VisitorRow>,
    pub visitor_chart: Chart,
    pub scores: Vec<Score>,
}

async fn demand(s: &AppState, suppress: bool) -> Result<Option<Demand>, PageError> {
    let body = match s.app.demand(suppress).await {
        Ok(b) => b,
        Err(AppError::Unavailable(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let table: CountTable = serde_json::from_value(body["by_test_point"].clone()).map_err(|e| {
        tracing::error!(error = %e, "the demand's test point table");
        PageError::Internal
    })?;
    // Capacities as the app layer compared them (registered with the test points' places).
    let caps: std::collections::BTreeMap<String, i64> =
        serde_json::from_value(body["capacity"].clone()).unwrap_or_default();
    let over_cell = |r: &tongxing_app::analytics::CountRow, j: usize| matches!((r.cells.get(j).copied().flatten(), caps.get(&r.key)), (Some(n), Some(c)) if n as i64 > *c);
    let rows: Vec<DemandRow> = table
        .columns
        .iter()
        .enumerate()
        .map(|(j, day)| DemandRow {
            day: day.clone(),
            cells: table.rows.iter().map(|r| shown(r.cells.get(j).copied().flatten())).collect(),
            over: table.rows.iter().map(|r| over_cell(r, j)).collect(),
            total: shown(table.column_totals.get(j).copied().flatten()),
        })
        .collect();
    let over: Vec<OverCapacity> = body["over_capacity"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| OverCapacity {
            day: o["day"].as_str().unwrap_or("").into(),
            point: o["test_point"].as_str().unwrap_or("").into(),
            demand: o["demand"].as_u64().unwrap_or(0),
            capacity: o["capacity"].as_i64().unwrap_or(0),
        })
        .collect();
    let groups: Vec<(String, Vec<Option<u64>>)> = table
        .columns
        .iter()
        .zip(&table.column_totals)
        .map(|(day, n)| (day.get(5..).unwrap_or(day).to_string(), vec![*n]))
        .collect();
    // The visitors' daily counts are counts too: the analyst sees none under the threshold.
    let k = s.app.analytics().suppression_threshold;
    let keep = |n: u64| if suppress && n < k { None } else { Some(n) };
    let mut visitors = Vec::new();
    for v in body["visitor_history"].as_array().into_iter().flatten() {
        let n = v[1].as_u64().unwrap_or(0);
        visitors.push(VisitorRow { day: v[0].as_str().unwrap_or("").into(), value: shown(keep(n)), forecast: false });
    }
    for v in body["visitor_forecast"].as_array().into_iter().flatten() {
        let value = match v[1].as_f64() {
            Some(f) => shown(keep(f.max(0.0).round() as u64)),
            None => Shown { text: "—".into(), hidden: false },
        };
        visitors.push(VisitorRow { day: v[0].as_str().unwrap_or("").into(), value, forecast: true });
    }
    let vgroups: Vec<(String, Vec<Option<u64>>)> = visitors
        .iter()
        .map(|r| {
            let n = if r.value.hidden { None } else { r.value.text.parse().ok() };
            (r.day.get(5..).unwrap_or(&r.day).to_string(), if r.forecast { vec![None, n] } else { vec![n, None] })
        })
        .collect();
    let scores = body["visitor_backtest"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| matches!(h["horizon"].as_u64(), Some(1 | 7 | 14)))
        .map(|h| Score {
            horizon: h["horizon"].as_u64().unwrap_or(0),
            mase: h["mase"].as_f64().map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into()),
            smape: h["smape"].as_f64().map(|v| format!("{v:.1} %")).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let computed = body["computed_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| local(t.with_timezone(&Utc)))
        .unwrap_or_default();
    Ok(Some(Demand {
        computed,
        window_days: body["commuter_window_days"].as_i64().unwrap_or(0),
        points: table.rows.iter().map(|r| r.key.clone()).collect(),
        capacity: table
            .rows
            .iter()
            .map(|r| caps.get(&r.key).map(|c| c.to_string()).unwrap_or_else(|| "—".into()))
            .collect(),
        has_capacity: !caps.is_empty(),
        over,
        rows,
        chart: chart(&groups, &["bar now"], 2),
        visitor_chart: chart(&vgroups, &["bar now", "bar fc"], 7),
        visitors,
        scores,
    }))
}

// ---- warnings ----

pub struct WarningRow {
    pub id: i64,
    pub kind: &'static str,
    pub raised: String,
    pub why: String,
    pub acknowledged: bool,
}

fn kind_word(m: M, kind: &str) -> &'static str {
    match kind {
        "cloned_code" => m.kind_cloned_code,
        "shortcut" => m.kind_shortcut,
        "surge" => m.kind_surge,
        "slow_rise" => m.kind_slow_rise,
        "positive_cluster" => m.kind_positive_cluster,
        "lab_late" => m.kind_lab_late,
        "lab_positivity" => m.kind_lab_positivity,
        _ => m.kind_other,
    }
}

/// Why a warning fired, in the page's language: the page's sentence for its kind, filled from
/// the numbers in its evidence; the stored English `why` when the evidence lacks one of them
/// (a warning written by an older version).
fn why_text(m: M, kind: &str, d: &Value) -> String {
    why_from(m, kind, d).unwrap_or_else(|| d["why"].as_str().unwrap_or("").to_string())
}

fn why_from(m: M, kind: &str, d: &Value) -> Option<String> {
    use crate::i18n::fill;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let at = |v: &Value| v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| local(t.to_utc()));
    let num = |v: &Value, places: usize| v.as_f64().map(|x| format!("{x:.places$}"));
    let p = |v: &Value| v.as_f64().map(|x| format!("{x:.1e}"));
    Some(match kind {
        "cloned_code" => fill(
            m.why_cloned_code,
            &[
                ("first", &text(&d["first"]["checkpoint"])?),
                ("first_at", &at(&d["first"]["checked_at"])?),
                ("second", &text(&d["second"]["checkpoint"])?),
                ("second_at", &at(&d["second"]["checked_at"])?),
                ("km", &num(&d["distance_km"], 1)?),
                ("minutes", &num(&d["minutes"], 0)?),
                ("speed", &num(&d["speed_kmh"], 0)?),
                ("max", &num(&d["max_speed_kmh"], 0)?),
            ],
        ),
        "shortcut" => fill(
            m.why_shortcut,
            &[
                ("from", &text(&d["denied"]["checkpoint"])?),
                ("denied_at", &at(&d["denied"]["checked_at"])?),
                ("to", &text(&d["checked"]["checkpoint"])?),
                ("minutes", &num(&d["minutes"], 0)?),
                ("hours", &num(&d["within_hours"], 0)?),
            ],
        ),
        "surge" => {
            let (subject, counted) = match (text(&d["checkpoint"]), text(&d["test_point"])) {
                (Some(cp), _) => (cp, m.counted_entries),
                (None, Some(tp)) => (fill(m.subject_test_point, &[("id", &tp)]), m.counted_samples),
                (None, None) => return None,
            };
            fill(
                m.why_surge,
                &[
                    ("subject", &subject),
                    ("observed", &num(&d["observed"], 0)?),
                    ("counted", &counted),
                    ("until", &at(&d["until"])?),
                    ("mean", &num(&d["baseline_mean"], 1)?),
                    ("sd", &num(&d["baseline_sd"], 1)?),
                    ("days", &d["baseline"].as_array()?.len()),
                    ("guard", &d["guard_band"].as_array()?.len()),
                    ("z", &num(&d["statistic"], 1)?),
                    ("threshold", &num(&d["threshold_sd"], 0)?),
                ],
            )
        }
        "slow_rise" => fill(
            m.why_slow_rise,
            &[
                ("checkpoint", &text(&d["checkpoint"])?),
                ("day", &at(&d["alarm_day"])?.chars().take(10).collect::<String>()),
                ("k", &num(&d["k"], 1)?),
                ("h", &num(&d["h"], 1)?),
                ("mean", &num(&d["reference_mean"], 1)?),
                ("sd", &num(&d["reference_sd"], 1)?),
            ],
        ),
        "positive_cluster" => {
            let dimension = match d["dimension"].as_str()? {
                "county" => m.dim_county,
                "employer" => m.dim_employer,
                "test_point" => m.dim_test_point,
                _ => return None,
            };
            fill(
                m.why_positive_cluster,
                &[
                    ("dimension", &dimension),
                    ("group", &text(&d["group"])?),
                    ("days", &num(&d["window_days"], 0)?),
                    ("observed", &num(&d["observed"], 0)?),
                    ("expected", &num(&d["expected"], 2)?),
                    ("p", &p(&d["p_value"])?),
                ],
            )
        }
        "lab_late" => fill(
            m.why_lab_late,
            &[
                ("lab", &text(&d["lab"])?),
                ("late", &num(&d["late"], 0)?),
                ("due", &num(&d["due"], 0)?),
                ("share", &d["late_share"].as_f64().map(|x| format!("{:.0}", x * 100.0))?),
                ("hours", &num(&d["late_hours"], 0)?),
                ("median", &d["median_hours"].as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into())),
            ],
        ),
        "lab_positivity" => fill(
            m.why_lab_positivity,
            &[
                ("lab", &text(&d["lab"])?),
                ("positives", &num(&d["positives"], 0)?),
                ("tests", &num(&d["tests"], 0)?),
                ("expected", &num(&d["expected"], 2)?),
                ("p", &p(&d["p_value"])?),
            ],
        ),
        _ => return None,
    })
}

/// The open and acknowledged early warnings, newest first: kind, time and why (no person).
async fn open_warnings(s: &AppState, m: M) -> Result<Vec<WarningRow>, PageError> {
    Ok(open_warning_alerts(s)
        .await?
        .into_iter()
        .map(|a| WarningRow {
            id: a.id,
            kind: kind_word(m, &a.kind),
            raised: local(a.raised_at),
            why: why_text(m, &a.kind, &a.detail),
            acknowledged: a.status == "acknowledged",
        })
        .collect())
}

/// The open and acknowledged early warnings, newest first.
async fn open_warning_alerts(s: &AppState) -> Result<Vec<tongxing_app::alerts::AlertView>, PageError> {
    let mut all = Vec::new();
    for kind in WARNING_KINDS {
        for status in ["open", "acknowledged"] {
            let q = AlertQuery { status: Some(status), kind: Some(kind), since: None, limit: Some(100) };
            all.extend(s.app.alerts(&q).await?);
        }
    }
    all.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then(b.id.cmp(&a.id)));
    Ok(all)
}

// ---- pages ----

#[derive(Template)]
#[template(path = "dashboard/home.html")]
struct Home {
    c: Chrome,
    m: M,
    suppressed_under: Option<u64>,
    f: Flows,
    demand: Option<Demand>,
    /// `None`: the role does not read warnings (the administrator).
    warnings: Option<Vec<WarningRow>>,
}

impl Home {
    fn suppression_note(&self, k: impl std::fmt::Display) -> String {
        crate::i18n::fill(self.m.suppressed_note, &[("k", &k)])
    }
    fn window_note(&self, d: &Demand) -> String {
        crate::i18n::fill(self.m.demand_window, &[("days", &d.window_days), ("at", &d.computed)])
    }
    fn over_note(&self, d: &Demand) -> String {
        crate::i18n::fill(self.m.over_capacity, &[("n", &d.over.len())])
    }
    fn over_item(&self, o: &OverCapacity) -> String {
        crate::i18n::fill(
            self.m.over_capacity_item,
            &[("day", &o.day), ("point", &o.point), ("demand", &o.demand), ("capacity", &o.capacity)],
        )
    }
    fn horizon(&self, h: impl std::fmt::Display) -> String {
        crate::i18n::fill(self.m.horizon_days, &[("h", &h)])
    }
}

#[derive(Template)]
#[template(path = "dashboard/flows.html")]
struct FlowsPart {
    m: M,
    f: Flows,
}

#[derive(Template)]
#[template(path = "dashboard/warnings.html")]
struct WarningsPart {
    m: M,
    warnings: Option<Vec<WarningRow>>,
}

fn threshold(s: &AppState, suppress: bool) -> Option<u64> {
    suppress.then_some(s.app.analytics().suppression_threshold)
}

/// `GET /dashboard`: flows, testing demand, open warnings.
async fn home(State(s): State<AppState>, web: Web) -> PageResult {
    let caller = web.require(Action::ReadStats, "analyst")?;
    let reads_alerts = caller.role.can(Action::ReadAlerts);
    let m = msg::dashboard(web.lang);
    let suppress = suppressed(&web);
    let f = flows(&s, suppress).await?;
    let demand = demand(&s, suppress).await?;
    let warnings = if reads_alerts { Some(open_warnings(&s, m).await?) } else { None };
    let suppressed_under = threshold(&s, suppress);
    Ok(render(&Home { c: web.chrome(), m, suppressed_under, f, demand, warnings }))
}

/// `GET /dashboard/flows`: the flows alone, for `dashboard.js`.
async fn flows_fragment(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::ReadStats, "analyst")?;
    let f = flows(&s, suppressed(&web)).await?;
    Ok(render(&FlowsPart { m: msg::dashboard(web.lang), f }))
}

/// `GET /dashboard/warnings`: the open warnings alone, for `dashboard.js`.
async fn warnings_fragment(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::ReadAlerts, "analyst")?;
    let m = msg::dashboard(web.lang);
    let warnings = Some(open_warnings(&s, m).await?);
    Ok(render(&WarningsPart { m, warnings }))
}

/// `GET /dashboard/warnings/stream`: that something changed among the alerts, from the outbox
/// (resumed from `Last-Event-ID`). Each event carries its type and id only, no alert's
/// content: the page reloads the warnings it may read.
async fn stream(State(s): State<AppState>, web: Web, headers: HeaderMap) -> Result<Response, PageError> {
    web.require(Action::ReadAlerts, "analyst")?;
    let after = crate::session::last_event_id(&headers)?;
    let rx = s.app.alert_feed().subscribe(after).await?;
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        let id = e.id.to_string();
        Some((Ok::<_, Infallible>(Event::default().id(&id).event(&e.event).data(id)), rx))
    });
    let keep = KeepAlive::new().interval(std::time::Duration::from_secs(15)).text("heartbeat");
    let mut resp = Sse::new(events).keep_alive(keep).into_response();
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

fn csv(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
        ],
        body,
    )
        .into_response()
}

/// `GET /dashboard/checkpoints.csv`: today's entries per checkpoint by verdict.
async fn checkpoints_csv(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::ReadStats, "analyst")?;
    let today = beijing_today(Utc::now());
    let t = s.app.flows(&checkpoint_request(today), suppressed(&web)).await?;
    Ok(csv(&format!("checkpoints-{today}"), t.to_csv()))
}

/// `GET /dashboard/profile.csv`: today's entries per hour and the same weekday of three weeks.
async fn profile_csv(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::ReadStats, "analyst")?;
    let today = beijing_today(Utc::now());
    let t = s.app.profile(today, None, suppressed(&web)).await?;
    Ok(csv(&format!("profile-{today}"), t.to_csv()))
}

/// `GET /dashboard/demand.csv`: commuters whose test runs out, per test point and day.
async fn demand_csv(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::ReadStats, "analyst")?;
    let body: Value = s.app.demand(suppressed(&web)).await?;
    let t: CountTable = serde_json::from_value(body["by_test_point"].clone()).map_err(|e| {
        tracing::error!(error = %e, "the demand's test point table");
        PageError::Internal
    })?;
    Ok(csv("demand-by-test-point", t.to_csv()))
}

/// `GET /dashboard/warnings.csv`: the open and acknowledged warnings, with why each fired (the
/// writer of the API's `format=csv`).
async fn warnings_csv(State(s): State<AppState>, web: Web) -> PageResult {
    web.require(Action::ReadAlerts, "analyst")?;
    let all = open_warning_alerts(&s).await?;
    Ok(csv("warnings", tongxing_app::analytics::warnings_sheet(&all).to_csv()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chart_scales_to_the_largest_shown_value_and_skips_hidden_ones() {
        let groups = vec![("00".to_string(), vec![Some(10), None]), ("01".to_string(), vec![Some(5), Some(0)])];
        let c = super::chart(&groups, &["bar now", "bar prev"], 1);
        assert_eq!(c.max, 10);
        assert_eq!(c.bars.len(), 3, "a hidden count draws no bar");
        assert_eq!(c.bars[0].h, super::PLOT_H);
        assert_eq!(c.bars[1].h, super::PLOT_H / 2.0);
        assert_eq!(c.labels.len(), 2);
    }

    /// Each kind's evidence, as the job writes it, said in the page's language; a warning whose
    /// evidence lacks a number keeps its stored English `why`.
    #[test]
    fn every_warning_says_why_in_the_pages_language() {
        use super::*;
        use crate::i18n::Lang;
        use serde_json::json;
        let zh = msg::dashboard(Lang::ZhCn);
        let en = msg::dashboard(Lang::En);
        let cases = [
            (
                "cloned_code",
                json!({"why": "x", "first": {"checkpoint": "CP-B", "checked_at": "2026-12-05T00:10:00Z"},
                       "second": {"checkpoint": "CP-A", "checked_at": "2026-12-05T00:12:00Z"},
                       "distance_km": 105.3, "minutes": 2.0, "speed_kmh": 3159.0, "max_speed_kmh": 150.0}),
                vec!["2026-12-05 08:10 在 CP-B", "105.3 公里", "时速 3159 公里", "150 公里"],
            ),
            (
                "shortcut",
                json!({"why": "x", "denied": {"checkpoint": "CP-B", "checked_at": "2026-12-05T00:10:00Z"},
                       "checked": {"checkpoint": "CP-C", "checked_at": "2026-12-05T00:40:00Z", "verdict": "pass"},
                       "minutes": 30.0, "within_hours": 6}),
                vec!["在 CP-B 被劝返", "30 分钟后在 CP-C", "6 小时"],
            ),
            (
                "surge",
                json!({"why": "x", "test_point": "TP-EAST", "until": "2026-12-05T02:00:00Z", "observed": 420,
                       "baseline_mean": 100.0, "baseline_sd": 10.0, "statistic": 32.0, "threshold_sd": 3.0,
                       "baseline": [1, 2, 3, 4, 5, 6, 7], "guard_band": [1, 2]}),
                vec!["检测点 TP-EAST", "420 份样本", "前 7 天", "间隔 2 天", "100.0 ± 10.0", "32.0 个标准差"],
            ),
            (
                "slow_rise",
                json!({"why": "x", "checkpoint": "CP-A", "reference_mean": 1000.0, "reference_sd": 30.0, "k": 0.5,
                       "h": 4.0, "alarm_day": "2026-12-03T16:00:00Z"}),
                vec!["CP-A：每日入城人次缓慢上升", "于 2026-12-04 超过 4.0"],
            ),
            (
                "positive_cluster",
                json!({"why": "x", "dimension": "county", "group": "130102", "observed": 9, "expected": 0.43,
                       "p_value": 0.0000012, "window_days": 3}),
                vec!["居住区县 130102", "近 3 天阳性 9 例", "预期 0.43 例", "P = 1.2e-6"],
            ),
            (
                "lab_late",
                json!({"why": "x", "lab": "HB-LAB-003", "due": 200, "late": 90, "late_share": 0.45, "late_hours": 24,
                       "median_hours": 30.5}),
                vec!["HB-LAB-003", "200 份样本中有 90 份（45%）", "24 小时", "中位 30.5 小时"],
            ),
            (
                "lab_positivity",
                json!({"why": "x", "lab": "TJ-LAB-008", "positives": 12, "tests": 400, "expected": 0.8,
                       "p_value": 0.00001}),
                vec!["TJ-LAB-008", "400 份结果中阳性 12 份", "预期 0.80 份"],
            ),
        ];
        for (kind, detail, words) in cases {
            let said = why_text(zh, kind, &detail);
            for w in words {
                assert!(said.contains(w), "{kind}: {w:?} not in {said:?}");
            }
            assert!(!said.contains('{'), "{kind}: a placeholder left in {said:?}");
            let english = why_text(en, kind, &detail);
            assert!(english != "x" && !english.contains('{'), "{kind}: {english}");
            assert!(!english.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{kind}: {english}");
            // Without one of its numbers: the stored text.
            let mut partial = detail.clone();
            let first_number =
                partial.as_object().unwrap().iter().find(|(k, v)| *k != "why" && !v.is_array()).map(|(k, _)| k.clone());
            partial.as_object_mut().unwrap().remove(&first_number.unwrap());
            assert_eq!(why_text(zh, kind, &partial), "x", "{kind}");
        }
    }

    /// The whole page with testing demand to show (the browser test's server has none yet: it
    /// is computed when the server starts): every test point a column, hidden counts worded.
    #[test]
    fn the_page_renders_demand_per_test_point_and_day() {
        use super::*;
        use crate::i18n::Lang;
        let m = msg::dashboard(Lang::En);
        let groups = vec![("12-05".to_string(), vec![Some(12)])];
        let f = Flows {
            today: "2026-12-05".into(),
            last_week: "2026-11-28".into(),
            entries: shown(Some(14)),
            denied: shown(None),
            rate: percent(None),
            checkpoints: vec![],
            hours: vec![],
            chart: chart(&groups, &["bar now"], 1),
            updated: "2026-12-05 06:47".into(),
        };
        let demand = Demand {
            computed: "2026-12-05 06:47".into(),
            window_days: 14,
            points: vec!["TP-EAST".into(), "TP-WEST".into()],
            capacity: vec!["10".into(), "—".into()],
            has_capacity: true,
            over: vec![OverCapacity { day: "2026-12-05".into(), point: "TP-EAST".into(), demand: 12, capacity: 10 }],
            rows: vec![DemandRow {
                day: "2026-12-05".into(),
                cells: vec![shown(Some(12)), shown(None)],
                over: vec![true, false],
                total: shown(Some(15)),
            }],
            chart: chart(&groups, &["bar now"], 1),
            visitors: vec![VisitorRow { day: "2026-12-06".into(), value: shown(Some(40)), forecast: true }],
            visitor_chart: chart(&groups, &["bar now", "bar fc"], 1),
            scores: vec![Score { horizon: 7, mase: "0.84".into(), smape: "12.0 %".into() }],
        };
        let page = Home {
            c: Chrome::new(Lang::En, "/dashboard", "x".into(), Some("analyst".into())),
            m,
            suppressed_under: Some(5),
            f,
            demand: Some(demand),
            warnings: Some(vec![]),
        };
        let html = page.render().unwrap();
        assert!(html.contains(r#"<th scope="col">TP-EAST</th><th scope="col">TP-WEST</th>"#), "{html}");
        assert!(html.contains(r#"<td data-label="TP-WEST" class="num supp">hidden</td>"#), "{html}");
        assert!(html.contains("Day 7") && html.contains("0.84"), "{html}");
        // The capacity beside the demand: the day over it marked with a shape, not colour alone.
        assert!(html.contains(r#"<td data-label="TP-EAST" class="num over">▲ 12</td>"#), "{html}");
        assert!(html.contains("2026-12-05, TP-EAST: 12 due, capacity 10 a day"), "{html}");
        assert!(!html.contains("style="), "the CSP refuses inline styles");
    }
}
