//! A person's pass (通行码) as the citizen sees it: the colour in force and its reason, the
//! latest negative test and its age, whether the rules in force would let them in now and
//! until when, and the commuter badge (通勤认证). Everything is decided by the same rules as a
//! check; "valid until" is found by asking those rules at later times, so it follows the rule
//! set in force, whatever its windows.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use tongxing_domain::decision::Verdict;
use tongxing_domain::facts::{CheckpointFacts, Facts, PersonFacts, TestResult};
use tongxing_domain::{mask, time};
use utoipa::ToSchema;

use crate::check::{ReasonView, explain};
use crate::{App, AppResult};

/// How far ahead "valid until" is looked for.
const HORIZON: Duration = Duration::days(30);

#[derive(Debug, Serialize, ToSchema)]
pub struct TestView {
    #[serde(serialize_with = "time::serialize")]
    pub sampled_at: DateTime<Utc>,
    /// Whole hours since sampling.
    pub age_hours: i64,
    /// hospital, community or service_area.
    pub site_kind: String,
    pub result: String,
}

/// Whether the rules in force would let the person in now, at a checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryNow {
    /// pass, conditional or deny.
    pub verdict: String,
    pub reasons: Vec<ReasonView>,
    /// While `verdict` is pass: the first time it would not be (the next test is due before).
    #[serde(serialize_with = "time::serialize_opt")]
    pub valid_until: Option<DateTime<Utc>>,
    pub policy_id: String,
    pub policy_version: String,
}

/// The commuter certification shown on the code (通勤认证).
#[derive(Debug, Serialize, ToSchema)]
pub struct CommuterBadge {
    /// worker, student or escorting_parent.
    pub kind: String,
    /// pending, approved, rejected, suspended, revoked or expired.
    pub status: String,
    /// The certification is in force now.
    pub in_force: bool,
    #[serde(serialize_with = "time::serialize_opt")]
    pub valid_until: Option<DateTime<Utc>>,
    /// The first check, with a 48-hour test, is done (older tests count after it).
    pub first_check_done: bool,
    /// The Beijing date by which the next test must be taken to keep entering.
    pub next_test_due: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PassView {
    /// green, yellow or red, in force now.
    pub colour: String,
    /// Why the colour is not green, if it is not.
    pub colour_reason: Option<String>,
    /// Masked: the surname only.
    pub name: Option<String>,
    /// Masked: the first and last two characters.
    pub document: String,
    /// The latest negative test, if any in the look-back period.
    pub latest_test: Option<TestView>,
    pub entry: EntryNow,
    pub commuter: Option<CommuterBadge>,
    /// The signed pass to show at a checkpoint, when this server issues them.
    pub qr: Option<crate::signing::IssuedPass>,
    /// Commitment letters signed, newest first: "pending: result expected by …", then the outcome.
    pub commitments: Vec<crate::commitment::CommitmentView>,
    #[serde(serialize_with = "time::serialize")]
    pub as_of: DateTime<Utc>,
}

impl App {
    /// The pass of a person at `now`.
    pub async fn pass_view(&self, person_id: i64, now: DateTime<Utc>) -> AppResult<PassView> {
        let p = self.pass_facts(person_id, now).await?;
        let facts = Facts { person: p.facts.clone(), checkpoint: CheckpointFacts::default() };
        let rules = self.rules();
        let rule_set = tongxing_rules::select(&rules, now).ok_or_else(|| App::no_rule_set(now))?;
        let decision = rule_set.decide(&facts, now);
        let valid_until = (decision.verdict == Verdict::Pass).then(|| self.pass_ends(&facts, now)).flatten();
        let entry = EntryNow {
            verdict: decision.verdict.as_str().into(),
            reasons: explain(&decision, rule_set, None, facts.person.colour_reason_at(now)),
            valid_until,
            policy_id: rule_set.id().into(),
            policy_version: rule_set.version().into(),
        };
        let latest_test = latest_negative(&facts.person, now).map(|s| TestView {
            sampled_at: s.sampled_at,
            age_hours: (now - s.sampled_at).num_hours(),
            site_kind: s.site_kind.to_string(),
            result: s.result.to_string(),
        });
        let qr = if self.issues_passes() { Some(self.sign_pass(&p, now).await?) } else { None };
        let commuter = match (&p.commuter_kind, &facts.person.commuter) {
            (Some(kind), Some(c)) => Some(CommuterBadge {
                kind: kind.clone(),
                status: c.status.to_string(),
                in_force: c.in_force_at(now),
                valid_until: c.valid_until,
                first_check_done: c.first_checked_at.is_some_and(|t| t <= now),
                next_test_due: Some(
                    valid_until.unwrap_or(now).with_timezone(&tongxing_domain::shanghai()).date_naive(),
                ),
            }),
            _ => None,
        };
        // A letter covers a service-area sample: without one in the look-back, there is none to show.
        let commitments = if facts.person.samples.iter().any(|s| s.site_kind == tongxing_domain::SiteKind::ServiceArea)
        {
            self.commitments_of(person_id).await?.into_iter().take(3).collect()
        } else {
            Vec::new()
        };
        Ok(PassView {
            qr,
            commitments,
            colour: facts.person.colour_at(now).to_string(),
            colour_reason: facts.person.colour_reason_at(now).map(str::to_string),
            name: p.name.as_deref().map(mask::name),
            document: mask::document_number(&p.doc_number),
            latest_test,
            entry,
            commuter,
            as_of: now,
        })
    }

    /// The first time after `now` at which the rules in force would no longer pass these
    /// facts, to the minute, within [`HORIZON`]; `None` if they still would then. Tests only
    /// age, so the verdict changes once: a binary search finds the change.
    fn pass_ends(&self, facts: &Facts, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let rules = self.rules();
        let passes = |t: DateTime<Utc>| {
            tongxing_rules::select(&rules, t).is_some_and(|rs| rs.decide(facts, t).verdict == Verdict::Pass)
        };
        let (mut lo, mut hi) = (now, now + HORIZON);
        if passes(hi) {
            return None;
        }
        while hi - lo > Duration::minutes(1) {
            let mid = lo + (hi - lo) / 2;
            if passes(mid) { lo = mid } else { hi = mid }
        }
        Some(hi)
    }
}

fn latest_negative(person: &PersonFacts, now: DateTime<Utc>) -> Option<&tongxing_domain::facts::SampleFact> {
    person
        .samples
        .iter()
        .filter(|s| s.sampled_at <= now && s.result == TestResult::Negative)
        .max_by_key(|s| s.sampled_at)
}
