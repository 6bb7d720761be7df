//! The citizen's pages: sign in with the one-time code; my code — the colour with a shape and a
//! word, masked name and ID, the latest test and its age, the commuter badge and when the next
//! test is due, the QR (refreshed by `citizen.js` before it expires), what to do when it is not
//! green — and my family's codes one swipe away; family links; the commuter application and its
//! status; the commitment letter signed on the phone; who looked at my record.
//!
//! Every page calls the use cases the API's citizen endpoints call (`tongxing_app`).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tongxing_app::citizen::{FamilyMember, Purpose, Reader};
use tongxing_app::commitment::{CitizenSigning, LetterDue};
use tongxing_app::commuter::MyCommuter;
use tongxing_app::pass::PassView;
use tongxing_domain::decision::ReasonCode;
use tongxing_http::AppState;
use tongxing_http::extract::ClientAddr;

use crate::i18n::{Lang, fill, msg};
use crate::page::{Chrome, PageError, PageResult, local, render, render_status, set_cookie};
use crate::session::{PageQuery, Posted, SESSION_COOKIE, Web};

type M = &'static msg::Citizen;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/citizen", get(my_code))
        .route("/citizen/qr", get(qr_fragment))
        .route("/citizen/sign-in", get(sign_in_page).post(sign_in))
        .route("/citizen/code", post(send_code))
        .route("/citizen/letter", get(letter_page).post(sign_letter))
        .route("/citizen/commuter", get(commuter_page).post(apply_commuter))
        .route("/citizen/family", get(family_page))
        .route("/citizen/family/code", post(family_code))
        .route("/citizen/family/link", post(link_member))
        .route("/citizen/family/minor", post(link_minor))
        .route("/citizen/family/remove", post(remove_member))
        .route("/citizen/access-log", get(access_log))
}

// ---- view models ----

/// A pass's QR as the page shows it.
pub struct Qr {
    /// The inline SVG (made here from the signed text: trusted markup).
    pub svg: String,
    /// Epoch milliseconds: `citizen.js` refreshes the code before `expires`.
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub until: String,
    /// Where the fresh code comes from.
    pub refresh: String,
}

/// One person's code on the page.
pub struct Card {
    pub anchor: String,
    pub tab: String,
    pub name: String,
    pub document: String,
    /// green, yellow or red: the CSS class.
    pub colour: String,
    pub colour_word: &'static str,
    /// The icon beside the colour: ok, caution or stop.
    pub shape: &'static str,
    pub colour_reason: Option<String>,
    pub qr: Option<Qr>,
    pub latest: Option<String>,
    pub entry_ok: bool,
    pub entry_word: &'static str,
    pub valid_until: Option<String>,
    /// What to do, from the decision's reason codes (domain texts).
    pub todo: Vec<String>,
    pub commuter: Option<String>,
    pub next_test: Option<String>,
    pub commitments: Vec<String>,
}

fn colour_word(m: M, colour: &str) -> (&'static str, &'static str) {
    match colour {
        "green" => (m.green, "ok"),
        "yellow" => (m.yellow, "caution"),
        _ => (m.red, "stop"),
    }
}

pub(crate) fn kind_word(m: M, kind: &str) -> &'static str {
    match kind {
        "worker" => m.kind_worker,
        "student" => m.kind_student,
        _ => m.kind_escorting_parent,
    }
}

pub(crate) fn status_word(m: M, status: &str) -> &'static str {
    match status {
        "pending" => m.status_pending,
        "approved" => m.status_approved,
        "rejected" => m.status_rejected,
        "suspended" => m.status_suspended,
        "revoked" => m.status_revoked,
        _ => m.status_expired,
    }
}

fn result_word(m: M, result: &str) -> &'static str {
    match result {
        "negative" => m.result_negative,
        "positive" => m.result_positive,
        "pending" => m.result_pending,
        _ => m.result_invalid,
    }
}

fn qr_of(m: M, lang: Lang, view: &PassView, refresh: String) -> Option<Qr> {
    let issued = view.qr.as_ref()?;
    let svg = tongxing_pass::qr_svg_inline(&issued.text).ok()?;
    let until = fill(m.qr_valid_until, &[("time", &local(issued.expires_at))]);
    let label = format!("{} {until}", m.qr_label);
    let svg = svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(&label)), 1);
    let _ = lang;
    Some(Qr {
        svg,
        issued_ms: issued.issued_at.timestamp_millis(),
        expires_ms: issued.expires_at.timestamp_millis(),
        until,
        refresh,
    })
}

/// Escapes text for an attribute of markup built here.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

fn card(m: M, lang: Lang, view: PassView, anchor: String, tab: String, refresh: String) -> Card {
    let (word, shape) = colour_word(m, &view.colour);
    let qr = qr_of(m, lang, &view, refresh);
    let latest = view.latest_test.as_ref().map(|t| {
        fill(
            m.latest_test,
            &[("result", &result_word(m, &t.result)), ("hours", &t.age_hours), ("time", &local(t.sampled_at))],
        )
    });
    let entry_ok = view.entry.verdict == "pass";
    let entry_word = match view.entry.verdict.as_str() {
        "pass" => m.entry_pass,
        "conditional" => m.entry_conditional,
        _ => m.entry_deny,
    };
    // What to do: the advice of each reason code (the domain's text); the colour, the word and
    // the latest test above already say what the decision saw.
    let mut todo: Vec<String> = Vec::new();
    if !(entry_ok && view.colour == "green") {
        for r in &view.entry.reasons {
            let advice = match ReasonCode::parse(&r.code) {
                Some(code) => code.advice(lang.domain(), None, view.colour_reason.as_deref()),
                None => lang.pick(&r.message_zh, &r.message_en).to_string(),
            };
            if !todo.contains(&advice) {
                todo.push(advice);
            }
        }
    }
    let commuter = view
        .commuter
        .as_ref()
        .map(|c| fill(m.commuter_badge, &[("kind", &kind_word(m, &c.kind)), ("status", &status_word(m, &c.status))]));
    let next_test = view
        .commuter
        .as_ref()
        .filter(|c| c.in_force)
        .and_then(|c| c.next_test_due)
        .map(|d| fill(m.next_test_due, &[("date", &d.format("%Y-%m-%d"))]));
    Card {
        anchor,
        tab,
        name: view.name.clone().unwrap_or_else(|| "—".into()),
        document: view.document.clone(),
        colour: view.colour.clone(),
        colour_word: word,
        shape,
        colour_reason: view.colour_reason.clone(),
        qr,
        latest,
        entry_ok,
        entry_word,
        valid_until: view.entry.valid_until.map(|t| fill(m.entry_valid_until, &[("time", &local(t))])),
        todo,
        commuter,
        next_test,
        commitments: view.commitments.iter().map(|c| lang.pick(&c.message_zh, &c.message_en).to_string()).collect(),
    }
}

/// The flash message of a `?done=` after a change.
fn done_message(m: M, done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "signed-in" => m.done_signed_in,
        "letter" => m.done_letter,
        "applied" => m.done_applied,
        "linked" => m.done_linked,
        "minor" => m.done_minor,
        "removed" => m.done_removed,
        "code-sent" => m.done_member_code,
        _ => return None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneQuery {
    done: Option<String>,
}

// ---- my code ----

#[derive(Template)]
#[template(path = "citizen/code.html")]
struct CodePage {
    c: Chrome,
    m: M,
    cards: Vec<Card>,
    due: Vec<LetterDue>,
    done: Option<&'static str>,
}

fn reader(web: &Web) -> Result<Reader<'_>, PageError> {
    let s = web.session.as_ref().ok_or_else(|| PageError::SignIn("/citizen/sign-in".into()))?;
    Ok(Reader { token_id: &s.caller.token_id, role: s.caller.role.as_str() })
}

/// `GET /citizen`: my code and my family's, one swipe apart.
async fn my_code(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<DoneQuery>) -> PageResult {
    let me = web.citizen()?;
    let (m, lang, now) = (msg::citizen(web.lang), web.lang, Utc::now());
    let mine = s.app.pass_view(me, now).await?;
    let mut cards = vec![card(m, lang, mine, "me".into(), m.me.into(), "/citizen/qr".into())];
    for f in s.app.family(me).await?.into_iter().filter(|f| f.status == "linked") {
        let view = s.app.member_pass(me, f.link, reader(&web)?, now).await?;
        let tab = f.name.clone().unwrap_or_else(|| f.document.clone());
        cards.push(card(m, lang, view, format!("m{}", f.link), tab, format!("/citizen/qr?link={}", f.link)));
    }
    let due = s.app.letters_due(me, now).await?;
    Ok(render(&CodePage { done: done_message(m, q.done.as_deref()), c: web.chrome(), m, cards, due }))
}

#[derive(Template)]
#[template(path = "citizen/qr.html")]
struct QrFragment {
    m: M,
    qr: Option<Qr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    link: Option<i64>,
}

/// `GET /citizen/qr[?link=N]`: a freshly signed code, as the fragment `citizen.js` puts in place
/// of the one about to expire.
async fn qr_fragment(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<QrQuery>) -> PageResult {
    let me = web.citizen()?;
    let (m, now) = (msg::citizen(web.lang), Utc::now());
    let (view, refresh) = match q.link {
        None => (s.app.pass_view(me, now).await?, "/citizen/qr".to_string()),
        Some(link) => (s.app.member_pass(me, link, reader(&web)?, now).await?, format!("/citizen/qr?link={link}")),
    };
    Ok(render(&QrFragment { qr: qr_of(m, web.lang, &view, refresh), m }))
}

// ---- signing in ----

#[derive(Template)]
#[template(path = "citizen/sign_in.html")]
struct SignInPage {
    c: Chrome,
    m: M,
    kind: String,
    number: String,
    /// The code was asked for: show the second step.
    sent: bool,
    error: Option<(String, String)>,
}

impl SignInPage {
    fn kinds(&self) -> [(&'static str, &'static str); 4] {
        document_kinds(self.m)
    }
    fn error_on(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|(f, _)| f == field)
    }
}

pub(crate) fn document_kinds(m: M) -> [(&'static str, &'static str); 4] {
    [
        ("resident_id", m.doc_resident_id),
        ("passport", m.doc_passport),
        ("hk_macao_permit", m.doc_hk_macao),
        ("taiwan_permit", m.doc_taiwan),
    ]
}

async fn sign_in_page(web: Web) -> Response {
    let m = msg::citizen(web.lang);
    render(&SignInPage {
        c: web.chrome(),
        m,
        kind: "resident_id".into(),
        number: String::new(),
        sent: false,
        error: None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    #[serde(default)]
    document_kind: String,
    document_number: String,
}

/// The sign-in page again, with what was typed and the refusal.
fn sign_in_again(web: &Web, kind: &str, number: &str, sent: bool, e: PageError) -> PageResult {
    let m = msg::citizen(web.lang);
    let (status, error) = match e {
        PageError::Invalid { field, reason } => (StatusCode::UNPROCESSABLE_ENTITY, (field, reason)),
        PageError::TooMany(message) => (StatusCode::TOO_MANY_REQUESTS, ("document_number".into(), message)),
        other => return Err(other),
    };
    let page =
        SignInPage { c: web.chrome(), m, kind: kind.to_string(), number: number.to_string(), sent, error: Some(error) };
    Ok(render_status(status, &page))
}

/// `POST /citizen/code`: a code to the phone on record (the same words whether or not there is
/// one), then the second step.
async fn send_code(
    State(s): State<AppState>,
    ClientAddr(address): ClientAddr,
    Posted { web, form }: Posted<CodeForm>,
) -> PageResult {
    let now = Utc::now();
    let kind = Some(form.document_kind.as_str()).filter(|k| !k.is_empty());
    let sent = async {
        let doc = tongxing_app::input::document(kind, &form.document_number, "", now)?;
        s.app.send_code(&doc, Purpose::SignIn, &address, now).await
    }
    .await;
    match sent {
        Ok(()) => {
            let m = msg::citizen(web.lang);
            let page = SignInPage {
                c: web.chrome(),
                m,
                kind: form.document_kind.clone(),
                number: form.document_number.trim().to_string(),
                sent: true,
                error: None,
            };
            Ok(render(&page))
        }
        Err(e) => sign_in_again(&web, &form.document_kind, &form.document_number, false, e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInForm {
    #[serde(default)]
    document_kind: String,
    document_number: String,
    code: String,
}

/// `POST /citizen/sign-in`: the code makes a citizen session (as `POST /api/v1/citizen/session`),
/// kept in the session cookie until it ends.
async fn sign_in(State(s): State<AppState>, Posted { web, form }: Posted<SignInForm>) -> PageResult {
    let now = Utc::now();
    let kind = Some(form.document_kind.as_str()).filter(|k| !k.is_empty());
    let session = async {
        let doc = tongxing_app::input::document(kind, &form.document_number, "", now)?;
        s.app.sign_in(&doc, &form.code, now).await
    }
    .await;
    match session {
        Ok(session) => {
            let mut resp = Redirect::to("/citizen?done=signed-in").into_response();
            let age = (session.expires_at - now).num_seconds();
            resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session.token, Some(age)));
            Ok(resp)
        }
        Err(e) => sign_in_again(&web, &form.document_kind, &form.document_number, true, e.into()),
    }
}

// ---- the commitment letter ----

#[derive(Template)]
#[template(path = "citizen/letter.html")]
struct LetterPage {
    c: Chrome,
    m: M,
    due: LetterDue,
    title: String,
    text: String,
    version: String,
    sha256: String,
    sampled: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterQuery {
    test_point: String,
    sample_id: String,
    link: Option<i64>,
}

/// `GET /citizen/letter?test_point=&sample_id=[&link=]`: the letter in the page's language, for
/// one sample awaiting it.
async fn letter_page(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<LetterQuery>) -> PageResult {
    let me = web.citizen()?;
    let m = msg::citizen(web.lang);
    let due = s
        .app
        .letters_due(me, Utc::now())
        .await?
        .into_iter()
        .find(|d| d.test_point == q.test_point && d.sample_id == q.sample_id && d.link == q.link)
        .ok_or_else(|| PageError::NotFound(m.no_letter_due.to_string()))?;
    let letter = s.app.letter();
    Ok(render(&LetterPage {
        sampled: local(due.sampled_at),
        title: web.lang.pick(&letter.title_zh, &letter.title_en).to_string(),
        text: web.lang.pick(&letter.text_zh, &letter.text_en).to_string(),
        version: letter.version,
        sha256: letter.sha256,
        c: web.chrome(),
        m,
        due,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterForm {
    test_point: String,
    sample_id: String,
    #[serde(default)]
    link: String,
    letter_version: String,
    letter_sha256: String,
    /// The box "I have read the letter and agree".
    #[serde(default)]
    agree: String,
}

/// `POST /citizen/letter`: signs the letter shown (its version and SHA-256), on the phone.
async fn sign_letter(State(s): State<AppState>, Posted { web, form }: Posted<LetterForm>) -> PageResult {
    let me = web.citizen()?;
    let m = msg::citizen(web.lang);
    if form.agree != "yes" {
        return Err(PageError::Invalid { field: "agree".into(), reason: m.must_agree.into() });
    }
    let link = match form.link.trim() {
        "" => None,
        l => Some(l.parse::<i64>().map_err(|_| PageError::Invalid {
            field: "link".into(),
            reason: "a family link is a whole number".into(),
        })?),
    };
    let signing = CitizenSigning {
        link,
        test_point: &form.test_point,
        sample_id: &form.sample_id,
        letter_version: &form.letter_version,
        letter_sha256: &form.letter_sha256,
    };
    let token = &web.session.as_ref().expect("a citizen is signed in").caller.token_id;
    s.app.sign_letter_as_citizen(me, &signing, token, Utc::now()).await?;
    Ok(Redirect::to("/citizen?done=letter").into_response())
}

// ---- commuter certification ----

#[derive(Template)]
#[template(path = "citizen/commuter.html")]
struct CommuterPage {
    c: Chrome,
    m: M,
    mine: Option<MyCommuter>,
    form: ApplyForm,
    error: Option<(String, String)>,
    done: Option<&'static str>,
}

impl CommuterPage {
    fn proofs(&self) -> [(&'static str, &'static str); 4] {
        [
            ("household_register", self.m.proof_household_register),
            ("property_deed", self.m.proof_property_deed),
            ("lease", self.m.proof_lease),
            ("residents_committee_letter", self.m.proof_residents_committee_letter),
        ]
    }
    fn kinds(&self) -> [(&'static str, &'static str); 3] {
        [
            ("worker", self.m.kind_worker),
            ("student", self.m.kind_student),
            ("escorting_parent", self.m.kind_escorting_parent),
        ]
    }
    fn error_on(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|(f, _)| f == field)
    }
    fn status_word(&self, status: &str) -> &'static str {
        status_word(self.m, status)
    }
    fn kind_word(&self, kind: &str) -> &'static str {
        kind_word(self.m, kind)
    }
    fn may_apply(&self) -> bool {
        self.mine.as_ref().is_none_or(|c| matches!(c.status.as_str(), "rejected" | "revoked" | "expired"))
    }
    fn time(&self, t: &DateTime<Utc>) -> String {
        local(*t)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    residence_region: String,
    #[serde(default)]
    residence_proof: String,
    #[serde(default)]
    employer_name: String,
    #[serde(default)]
    employer_uscc: String,
    #[serde(default)]
    work_region: String,
}

async fn commuter_page(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<DoneQuery>) -> PageResult {
    let me = web.citizen()?;
    let m = msg::citizen(web.lang);
    let mine = s.app.my_commuter(me).await?;
    Ok(render(&CommuterPage {
        done: done_message(m, q.done.as_deref()),
        c: web.chrome(),
        m,
        mine,
        form: ApplyForm::default(),
        error: None,
    }))
}

/// `POST /citizen/commuter`: applies for myself, as `POST /api/v1/citizen/commuter`.
async fn apply_commuter(State(s): State<AppState>, Posted { web, form }: Posted<ApplyForm>) -> PageResult {
    let me = web.citizen()?;
    let m = msg::citizen(web.lang);
    let raw = tongxing_app::input::RawApplication {
        name: None,
        phone: None,
        kind: &form.kind,
        residence_region: &form.residence_region,
        residence_proof: &form.residence_proof,
        employer_name: &form.employer_name,
        employer_uscc: &form.employer_uscc,
        work_region: &form.work_region,
    };
    let token = web.session.as_ref().expect("a citizen is signed in").caller.token_id.clone();
    let filed = async {
        let record = s
            .app
            .store
            .person_by_id(me)
            .await?
            .ok_or_else(|| tongxing_app::AppError::Internal(format!("the session's person {me} is missing")))?;
        let doc = tongxing_domain::ids::Document::from_key(&record.doc_key)
            .ok_or_else(|| tongxing_app::AppError::Internal("an unreadable document key".into()))?;
        s.app.apply_commuter(doc, &raw, &token, Utc::now()).await
    }
    .await;
    match filed {
        Ok(_) => Ok(Redirect::to("/citizen/commuter?done=applied").into_response()),
        Err(e) => match PageError::from(e) {
            PageError::Invalid { field, reason } => {
                let mine = s.app.my_commuter(me).await?;
                let page = CommuterPage { c: web.chrome(), m, mine, form, error: Some((field, reason)), done: None };
                Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
            }
            other => Err(other),
        },
    }
}

// ---- family ----

#[derive(Template)]
#[template(path = "citizen/family.html")]
struct FamilyPage {
    c: Chrome,
    m: M,
    members: Vec<FamilyMember>,
    done: Option<&'static str>,
    /// The member's number a code was sent to: the form to enter it.
    code_for: Option<(String, String)>,
}

impl FamilyPage {
    fn kinds(&self) -> [(&'static str, &'static str); 4] {
        document_kinds(self.m)
    }
    fn link_status(&self, status: &str) -> &'static str {
        match status {
            "linked" => self.m.link_linked,
            "pending" => self.m.link_pending,
            "refused" => self.m.link_refused,
            _ => self.m.link_removed,
        }
    }
    fn full(&self) -> bool {
        self.members.iter().filter(|f| matches!(f.status.as_str(), "linked" | "pending")).count() as i64
            >= tongxing_app::citizen::MAX_FAMILY
    }
}

async fn family_view(s: &AppState, web: &Web, done: Option<&str>, code_for: Option<(String, String)>) -> PageResult {
    let me = web.citizen()?;
    let m = msg::citizen(web.lang);
    let members = s.app.family(me).await?;
    Ok(render(&FamilyPage { c: web.chrome(), m, members, done: done_message(m, done), code_for }))
}

async fn family_page(State(s): State<AppState>, web: Web, PageQuery(q): PageQuery<DoneQuery>) -> PageResult {
    family_view(&s, &web, q.done.as_deref(), None).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberForm {
    #[serde(default)]
    document_kind: String,
    document_number: String,
}

/// `POST /citizen/family/code`: the member gets a code on their phone (their consent).
async fn family_code(
    State(s): State<AppState>,
    ClientAddr(address): ClientAddr,
    Posted { web, form }: Posted<MemberForm>,
) -> PageResult {
    let me = web.citizen()?;
    let now = Utc::now();
    let kind = Some(form.document_kind.as_str()).filter(|k| !k.is_empty());
    let doc = tongxing_app::input::document(kind, &form.document_number, "", now)?;
    s.app.send_code(&doc, Purpose::Link { citizen_id: me }, &address, now).await?;
    let code_for = Some((form.document_kind.clone(), form.document_number.trim().to_string()));
    family_view(&s, &web, Some("code-sent"), code_for).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkForm {
    #[serde(default)]
    document_kind: String,
    document_number: String,
    code: String,
}

/// `POST /citizen/family/link`: links the member with the code they received.
async fn link_member(State(s): State<AppState>, Posted { web, form }: Posted<LinkForm>) -> PageResult {
    let me = web.citizen()?;
    let now = Utc::now();
    let kind = Some(form.document_kind.as_str()).filter(|k| !k.is_empty());
    let doc = tongxing_app::input::document(kind, &form.document_number, "", now)?;
    s.app.link_member(me, &doc, &form.code, now).await?;
    Ok(Redirect::to("/citizen/family?done=linked").into_response())
}

/// `POST /citizen/family/minor`: asks a registry officer to approve a link to a minor.
async fn link_minor(State(s): State<AppState>, Posted { web, form }: Posted<MemberForm>) -> PageResult {
    let me = web.citizen()?;
    let now = Utc::now();
    let kind = Some(form.document_kind.as_str()).filter(|k| !k.is_empty());
    let doc = tongxing_app::input::document(kind, &form.document_number, "", now)?;
    s.app.ask_for_minor(me, &doc, now).await?;
    Ok(Redirect::to("/citizen/family?done=minor").into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveForm {
    link: i64,
}

async fn remove_member(State(s): State<AppState>, Posted { web, form }: Posted<RemoveForm>) -> PageResult {
    let me = web.citizen()?;
    s.app.remove_link(me, form.link, Utc::now()).await?;
    Ok(Redirect::to("/citizen/family?done=removed").into_response())
}

// ---- who looked at my record ----

#[derive(Template)]
#[template(path = "citizen/access_log.html")]
struct AccessLogPage {
    c: Chrome,
    m: M,
    entries: Vec<tongxing_app::citizen::AccessView>,
}

impl AccessLogPage {
    fn role(&self, role: &str) -> &'static str {
        crate::page::role_name(self.c.lang, role)
    }
    fn action(&self, action: &str) -> &'static str {
        match action {
            "reveal" => self.m.action_reveal,
            "read-access-log" => self.m.action_access_log,
            "pass" => self.m.action_pass,
            _ => self.m.action_read,
        }
    }
}

/// `GET /citizen/access-log`: who read my record, when and why (readers masked).
async fn access_log(State(s): State<AppState>, web: Web) -> PageResult {
    let me = web.citizen()?;
    let entries = s.app.my_access_log(me).await?;
    Ok(render(&AccessLogPage { m: msg::citizen(web.lang), c: web.chrome(), entries }))
}
