//! The service-area test point's page: scan (a hardware scanner types into the field) or type
//! the person, register the sample (bar code, pool), show the letter in the person's language and
//! take their consent on this device, and the day's samples with their results as they arrive
//! (`test_point.js` polls the list).
//!
//! The same use cases as `POST /api/v1/test-points/{tp}/samples`, `POST /api/v1/commitments` and
//! `GET /api/v1/test-points/{tp}/samples`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use tongxing_app::commitment::{DaySample, Signing, TestPointSample, TestPointView};
use tongxing_domain::auth::Role;
use tongxing_domain::text::LabCode;
use tongxing_http::AppState;
use tongxing_http::auth::Caller;

use crate::i18n::{Lang, msg};
use crate::page::{Chrome, PageError, PageResult, local, render};
use crate::session::{PageQuery, Posted, Web};

type M = &'static msg::TestPoint;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/test-point", get(home))
        .route("/test-point/samples", get(day_fragment).post(register))
        .route("/test-point/letter", get(letter).post(sign))
}

/// The test point this visit works for: the token's one test point, or the one chosen (which
/// the token's scope must cover).
fn test_point_of(caller: &Caller, chosen: Option<&str>, all: &[TestPointView]) -> Result<Option<LabCode>, PageError> {
    let pick = match (chosen.map(str::trim).filter(|c| !c.is_empty()), caller.scope.as_slice()) {
        (Some(c), _) => c.to_string(),
        (None, [one]) => one.clone(),
        (None, _) => return Ok(None),
    };
    let tp = LabCode::parse(&pick).map_err(|e| PageError::Invalid { field: "tp".into(), reason: e.to_string() })?;
    if !tongxing_domain::auth::in_scope(&caller.scope, tp.as_str()) {
        return Err(PageError::Forbidden(format!("this token is not scoped for test point {tp}")));
    }
    if !all.iter().any(|t| t.id == tp.as_str()) {
        return Err(PageError::Invalid {
            field: "tp".into(),
            reason: format!("{tp} is not a designated service-area test point of the rules in force"),
        });
    }
    Ok(Some(tp))
}

fn name_of(lang: Lang, all: &[TestPointView], tp: &LabCode) -> String {
    all.iter().find(|t| t.id == tp.as_str()).map(|t| lang.pick(&t.name_zh, &t.name_en).to_string()).unwrap_or_default()
}

/// The day's list, as the page and its refresh show it.
pub struct Row {
    pub sample: DaySample,
    pub time: String,
}

fn rows(samples: Vec<DaySample>) -> Vec<Row> {
    samples.into_iter().map(|s| Row { time: local(s.sampled_at), sample: s }).collect()
}

fn result_word(m: M, r: &str) -> &'static str {
    match r {
        "pending" => m.result_pending,
        "negative" => m.result_negative,
        "positive" => m.result_positive,
        _ => m.result_invalid,
    }
}

fn letter_word(m: M, l: Option<&str>) -> &'static str {
    match l {
        None => m.letter_none,
        Some("pending") => m.letter_pending,
        Some("fulfilled") => m.letter_fulfilled,
        Some("positive") => m.letter_positive,
        Some(_) => m.letter_overdue,
    }
}

#[derive(Template)]
#[template(path = "test_point/home.html")]
struct Home {
    c: Chrome,
    m: M,
    all: Vec<TestPointView>,
    tp: Option<LabCode>,
    tp_name: String,
    rows: Vec<Row>,
    done: Option<&'static str>,
}

impl Home {
    fn result(&self, r: &str) -> &'static str {
        result_word(self.m, r)
    }
    fn letter(&self, l: &Option<String>) -> &'static str {
        letter_word(self.m, l.as_deref())
    }
    fn tp_label(&self, t: &TestPointView) -> String {
        format!("{} {}", t.id, self.c.lang.pick(&t.name_zh, &t.name_en))
    }
    fn kinds(&self) -> [(&'static str, &'static str); 4] {
        crate::citizen::document_kinds(msg::citizen(self.c.lang))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeQuery {
    tp: Option<String>,
    done: Option<String>,
}

/// `GET /test-point[?tp=]`: register a sample, and the day's samples.
async fn home(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<HomeQuery>) -> PageResult {
    let caller = web.require_role(Role::TestPoint, "test_point")?;
    let (m, now) = (msg::test_point(web.lang), Utc::now());
    let all: Vec<TestPointView> =
        s.app.test_points(now)?.into_iter().filter(|t| tongxing_domain::auth::in_scope(&caller.scope, &t.id)).collect();
    let tp = test_point_of(caller, q.tp.as_deref(), &all)?;
    let rows = match &tp {
        Some(tp) => rows(s.app.test_point_day(tp, tongxing_app::input::today(now)).await?),
        None => Vec::new(),
    };
    let done = match q.done.as_deref() {
        Some("signed") => Some(m.done_signed),
        Some("registered") => Some(m.done_registered),
        _ => None,
    };
    let tp_name = tp.as_ref().map(|t| name_of(web.lang, &all, t)).unwrap_or_default();
    Ok(render(&Home { c: web.chrome(), m, all, tp, tp_name, rows, done }))
}

#[derive(Template)]
#[template(path = "test_point/day.html")]
struct Day {
    m: M,
    rows: Vec<Row>,
}

impl Day {
    fn result(&self, r: &str) -> &'static str {
        result_word(self.m, r)
    }
    fn letter(&self, l: &Option<String>) -> &'static str {
        letter_word(self.m, l.as_deref())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    tp: String,
}

/// `GET /test-point/samples?tp=`: the day's list alone, for `test_point.js` to put in place.
async fn day_fragment(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<DayQuery>) -> PageResult {
    let caller = web.require_role(Role::TestPoint, "test_point")?;
    let now = Utc::now();
    let all = s.app.test_points(now)?;
    let tp = test_point_of(caller, Some(&q.tp), &all)?.expect("chosen");
    let rows = rows(s.app.test_point_day(&tp, tongxing_app::input::today(now)).await?);
    Ok(render(&Day { m: msg::test_point(web.lang), rows }))
}

#[derive(Template)]
#[template(path = "test_point/letter.html")]
struct LetterPage {
    c: Chrome,
    m: M,
    tp: String,
    masked: String,
    sample_id: String,
    title_zh: String,
    text_zh: String,
    title_en: String,
    text_en: String,
    version: String,
    sha256: String,
}

impl LetterPage {
    /// The consent line in both languages: the person may read either.
    fn agree(&self, lang: Lang) -> &'static str {
        msg::test_point(lang).agree
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleForm {
    tp: String,
    #[serde(default)]
    document_kind: String,
    document_number: String,
    sample_id: String,
    #[serde(default)]
    pool_id: String,
}

/// `POST /test-point/samples`: registers the sample (result pending), then on to its letter.
async fn register(State(s): State<AppState>, Posted { web, form }: Posted<SampleForm>) -> PageResult {
    let caller = web.require_role(Role::TestPoint, "test_point")?;
    let now = Utc::now();
    let all = s.app.test_points(now)?;
    let tp = test_point_of(caller, Some(&form.tp), &all)?.expect("chosen");
    let kind = Some(form.document_kind.as_str()).filter(|k| !k.is_empty());
    let document = tongxing_app::input::document(kind, &form.document_number, "", now)?;
    let sample = TestPointSample {
        test_point: tp.as_str(),
        sample_id: &form.sample_id,
        document,
        sampled_at: now,
        pool_id: Some(form.pool_id.trim()).filter(|p| !p.is_empty()),
    };
    s.app.register_test_point_sample(&sample, &caller.token_id, now).await?;
    let mut to = form_urlencoded::Serializer::new(String::from("/test-point/letter?"));
    to.append_pair("tp", tp.as_str()).append_pair("sample_id", form.sample_id.trim());
    Ok(Redirect::to(&to.finish()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterQuery {
    tp: String,
    sample_id: String,
}

/// `GET /test-point/letter?tp=&sample_id=`: the letter for a registered sample, in either
/// language, to sign on this device.
async fn letter(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<LetterQuery>) -> PageResult {
    let caller = web.require_role(Role::TestPoint, "test_point")?;
    let all = s.app.test_points(Utc::now())?;
    let tp = test_point_of(caller, Some(&q.tp), &all)?.expect("chosen");
    let document = s.app.sample_document(&tp, &q.sample_id).await?;
    let letter = s.app.letter();
    Ok(render(&LetterPage {
        c: web.chrome(),
        m: msg::test_point(web.lang),
        tp: tp.into_string(),
        masked: tongxing_domain::mask::document_number(document.number()),
        sample_id: q.sample_id.trim().to_string(),
        title_zh: letter.title_zh,
        text_zh: letter.text_zh,
        title_en: letter.title_en,
        text_en: letter.text_en,
        version: letter.version,
        sha256: letter.sha256,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignForm {
    tp: String,
    sample_id: String,
    letter_version: String,
    letter_sha256: String,
    #[serde(default)]
    agree: String,
}

/// `POST /test-point/letter`: the person's consent, taken on this device.
async fn sign(State(s): State<AppState>, Posted { web, form }: Posted<SignForm>) -> Result<Response, PageError> {
    let caller = web.require_role(Role::TestPoint, "test_point")?;
    let (m, now) = (msg::test_point(web.lang), Utc::now());
    if form.agree != "yes" {
        return Err(PageError::Invalid { field: "agree".into(), reason: m.must_agree.into() });
    }
    let all = s.app.test_points(now)?;
    let tp = test_point_of(caller, Some(&form.tp), &all)?.expect("chosen");
    let document = s.app.sample_document(&tp, &form.sample_id).await?;
    let signing = Signing {
        document,
        lab: tp.as_str(),
        sample_id: &form.sample_id,
        letter_version: &form.letter_version,
        letter_sha256: &form.letter_sha256,
        signed_via: "test_point_device",
    };
    s.app.sign_letter(&signing, &caller.token_id, now).await?;
    Ok(Redirect::to(&format!("/test-point?tp={tp}&done=signed")).into_response())
}
