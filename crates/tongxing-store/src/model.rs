//! The records the store reads and writes. Inputs are already validated domain values.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tongxing_domain::decision::{Reason, Verdict};
use tongxing_domain::facts::{CodeColour, CommuterKind, CommuterStatus, Facts, SiteKind, TestResult};
use tongxing_domain::ids::{Document, RegionCode};

pub type PersonId = i64;

/// A person to register or update. `None` fields leave what is stored unchanged.
#[derive(Debug, Clone)]
pub struct PersonInput {
    pub document: Document,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub residence_region: Option<RegionCode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonRecord {
    pub id: PersonId,
    pub doc_key: String,
    pub doc_kind: String,
    pub doc_number: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub residence_region: Option<String>,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// One sample with its (latest) result, as a lab or test point sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleInput {
    pub lab: String,
    pub sample_id: String,
    pub document: Document,
    pub sampled_at: DateTime<Utc>,
    pub site: String,
    pub site_kind: SiteKind,
    pub result: TestResult,
}

/// What happened to one submitted sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleOutcome {
    /// A sample the system did not have.
    Accepted,
    /// Exactly what the system already had: nothing changed.
    Unchanged,
    /// A changed record for a known sample: kept in the history; the latest wins.
    Corrected,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampleRecord {
    pub lab: String,
    pub sample_id: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub sampled_at: DateTime<Utc>,
    pub site: String,
    pub site_kind: String,
    pub result: String,
    pub revision: i64,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// A health-code colour to set for a person (registered if new).
#[derive(Debug, Clone)]
pub struct ColourRow {
    pub person: PersonInput,
    pub colour: CodeColour,
    pub reason: Option<String>,
    /// When it lapses back to green, if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeRecord {
    pub colour: CodeColour,
    pub reason: Option<String>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub set_at: DateTime<Utc>,
    pub set_by: String,
}

/// A commuter's application, validated against the policy by the caller.
#[derive(Debug, Clone)]
pub struct CommuterApplication {
    pub kind: CommuterKind,
    pub residence_region: RegionCode,
    pub residence_proof: String,
    pub employer_name: String,
    pub employer_uscc: String,
    pub work_region: RegionCode,
}

/// A `CommuterRecord` from the 13 columns of `commuters` (status, kind, residence_region, …,
/// first_checked_at, in the table's order) starting at column `$at` of row `$r`.
macro_rules! commuter_record {
    ($r:expr, $at:expr) => {{
        let (r, at) = (&$r, $at);
        let status: String = r.get(at);
        crate::model::CommuterRecord {
            status: tongxing_domain::facts::CommuterStatus::parse(&status).map_err(StoreError::Corrupt)?,
            kind: r.get(at + 1),
            residence_region: r.get(at + 2),
            residence_proof: r.get(at + 3),
            employer_name: r.get(at + 4),
            employer_uscc: r.get(at + 5),
            work_region: r.get(at + 6),
            applied_at: from_ms(r.get(at + 7)),
            decided_at: r.get::<Option<i64>, _>(at + 8).map(from_ms),
            decided_by: r.get(at + 9),
            decision_reason: r.get(at + 10),
            valid_until: r.get::<Option<i64>, _>(at + 11).map(from_ms),
            first_checked_at: r.get::<Option<i64>, _>(at + 12).map(from_ms),
        }
    }};
}
pub(crate) use commuter_record;

#[derive(Debug, Clone, Serialize)]
pub struct CommuterRecord {
    pub status: CommuterStatus,
    pub kind: String,
    pub residence_region: String,
    pub residence_proof: String,
    pub employer_name: String,
    pub employer_uscc: String,
    pub work_region: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub applied_at: DateTime<Utc>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub first_checked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub at: DateTime<Utc>,
    pub by: String,
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Checkpoint {
    pub id: String,
    pub name: String,
    pub road: Option<String>,
    pub kind: String,
}

/// One check at a checkpoint, with everything needed to explain and replay it.
#[derive(Debug, Clone)]
pub struct EntryEvent {
    pub checkpoint_id: String,
    pub checked_at: DateTime<Utc>,
    pub doc_key: String,
    pub person_id: Option<PersonId>,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    pub policy_id: String,
    pub policy_version: String,
    /// (rule id, rule version) of every rule evaluated.
    pub rule_versions: Vec<(String, String)>,
    pub facts: Facts,
    pub plate: Option<String>,
    pub officer: String,
    /// Record the commuter's first check on the person.
    pub commuter_first_check: bool,
    /// How the person was identified: "document" or "pass"; "offline" for a pass checked at an
    /// offline checkpoint and uploaded later, "offline_at" when that decision was made as of a
    /// time the officer gave (`verify --at`).
    pub via: &'static str,
}

/// A check made at an offline checkpoint and uploaded later: its entry event and the
/// checkpoint's idempotency key for it.
#[derive(Debug, Clone)]
pub struct OfflineEntry {
    pub event: EntryEvent,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryRecord {
    pub id: i64,
    pub checkpoint_id: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub checked_at: DateTime<Utc>,
    pub doc_key: String,
    pub verdict: String,
    pub reasons: serde_json::Value,
    pub policy_id: String,
    pub policy_version: String,
    pub rule_versions: serde_json::Value,
    pub facts: serde_json::Value,
    pub plate: Option<String>,
    pub officer: String,
    /// How the person was identified: document or pass (or offline, uploaded later).
    pub via: String,
}

/// The facts of one person for a decision, with what the officer sees of them.
#[derive(Debug, Clone)]
pub struct LoadedFacts {
    pub person_id: Option<PersonId>,
    pub name: Option<String>,
    pub facts: tongxing_domain::facts::PersonFacts,
}

/// What a citizen's pass is made from, read in one statement.
#[derive(Debug, Clone)]
pub struct PassFacts {
    pub person_id: PersonId,
    pub name: Option<String>,
    pub doc_key: String,
    pub doc_number: String,
    /// The commuter certification's kind, if the person applied.
    pub commuter_kind: Option<String>,
    /// The pass reference stored for the person, once a pass was issued.
    pub pass_ref: Option<String>,
    pub facts: tongxing_domain::facts::PersonFacts,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub role: String,
    pub scope: Vec<String>,
    pub label: Option<String>,
    /// For a citizen's session: the person it is bound to.
    pub person_id: Option<PersonId>,
    /// When the token stops working (citizen sessions end; operators' tokens do not).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Counts for the operator's overview and the analyst.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Counts {
    pub people: i64,
    pub samples: i64,
    pub commuters: i64,
    pub checkpoints: i64,
    pub entry_events: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictCount {
    pub checkpoint_id: String,
    pub verdict: String,
    pub count: i64,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}
/// Milliseconds in a week.
pub(crate) const WEEK_MS: i64 = 7 * 86_400_000;
/// The week (counted from 1970-01-01, UTC) of a time in milliseconds, as stored in
/// `samples.sampled_week` (migration 3 computes the same: `sampled_at / 604800000`).
pub(crate) fn week(ms: i64) -> i64 {
    ms / WEEK_MS
}
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// A published rule set.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRecord {
    pub id: String,
    pub version: String,
    #[serde(skip)]
    pub body: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub published_at: DateTime<Utc>,
    pub published_by: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub activated_at: Option<DateTime<Utc>>,
    pub activated_by: Option<String>,
}

/// An entry event as a replay needs it: the facts snapshot still as JSON text.
#[derive(Debug, Clone)]
pub struct ReplayRow {
    pub id: i64,
    pub checkpoint_id: String,
    pub checked_at: DateTime<Utc>,
    pub doc_key: String,
    pub verdict: String,
    /// JSON array of the recorded reasons.
    pub reasons: String,
    pub facts: String,
}
