//! Deciding on a scanned pass: the one function the online check and the offline checkpoint
//! both call, so that they agree on every pass. Pure: the trust list, the revocation list, the
//! rule sets and the time are given. The stages run in order — the pass's own (prefix, Base45,
//! compression, COSE, key, signature, expiry, revocation), then the rule set in force at `now`
//! on the facts the pass carries — and the first that fails is named.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tongxing_domain::decision::Verdict;
use tongxing_domain::facts::{CheckpointFacts, CodeColour, CodeFacts, CommuterFacts, Facts, PersonFacts, SampleFact};
use tongxing_domain::{SiteKind, TestResult};
use tongxing_pass::{Decoder, Pass, RevocationSet, TrustList, VerifiedPass};
use tongxing_rules::RuleSet;
use utoipa::ToSchema;

use crate::check::{ReasonView, explain};

/// The facts a pass carries, as a decision reads them. Tests become samples named after the
/// pass (`pass/t0` …); the commuter's first check, when done, is dated at the pass's issue.
pub fn facts_of_pass(pass: &Pass) -> PersonFacts {
    let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
    PersonFacts {
        known: true,
        code: (pass.colour != CodeColour::Green).then(|| CodeFacts {
            colour: pass.colour,
            reason: pass.colour_reason.clone(),
            expires_at: None,
        }),
        commuter: pass.commuter.as_ref().map(|c| CommuterFacts {
            status: c.status,
            valid_until: c.valid_until.map(at),
            first_checked_at: c.first_check_done.then(|| at(pass.issued_at)),
        }),
        samples: pass
            .tests
            .iter()
            .enumerate()
            .map(|(i, t)| SampleFact {
                lab: "pass".into(),
                sample_id: format!("t{i}"),
                sampled_at: at(t.sampled_at),
                site: match (t.result, t.site_kind, &pass.pending_site) {
                    (TestResult::Pending, SiteKind::ServiceArea, Some(site)) => site.clone(),
                    _ => String::new(),
                },
                site_kind: t.site_kind,
                result: t.result,
            })
            .collect(),
        commitment_letter: pass.commitment_letter,
    }
}

/// The verdict on a pass.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PassDecision {
    /// pass, conditional or deny.
    pub verdict: String,
    pub reasons: Vec<ReasonView>,
    /// The colour the pass shows.
    pub code_colour: String,
    /// A certified commuter (the badge on the pass, in force now).
    pub commuter: bool,
    pub policy_id: String,
    pub policy_version: String,
    /// The key that signed the pass.
    pub key_id: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub pass_issued_at: DateTime<Utc>,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub pass_expires_at: DateTime<Utc>,
}

/// What deciding on a pass gives: the verified pass, the facts and the rules' verdict, or the
/// stage that refused it.
pub struct Decided {
    pub verified: VerifiedPass,
    pub facts: Facts,
    pub decision: PassDecision,
    pub verdict: Verdict,
    pub records_commuter_first_check: bool,
    pub rule_versions: Vec<(String, String)>,
    pub reason_codes: Vec<(tongxing_domain::ReasonCode, Option<String>)>,
}

/// Why a pass was not decided on: the stage (`bad_prefix`, `bad_signature`, `expired`,
/// `revoked`, … or `no_rules` when no rule set is in force) and what was wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PassRefusal {
    pub stage: String,
    pub detail: String,
}

/// Verifies `text` and decides on it with the rule set in force at `now`.
pub fn decide_on_pass(
    decoder: &mut Decoder,
    text: &str,
    trust: &TrustList,
    revocations: &RevocationSet,
    rules: &[RuleSet],
    checkpoint: CheckpointFacts,
    now: DateTime<Utc>,
) -> Result<Decided, PassRefusal> {
    let verified = decoder
        .decode(text, trust, revocations, now.timestamp())
        .map_err(|r| PassRefusal { stage: r.stage.as_str().to_string(), detail: r.detail })?;
    decide_verified(verified, rules, checkpoint, now)
}

/// Decides on a pass already verified (the rules' stage alone).
pub fn decide_verified(
    verified: VerifiedPass,
    rules: &[RuleSet],
    checkpoint: CheckpointFacts,
    now: DateTime<Utc>,
) -> Result<Decided, PassRefusal> {
    let rule_set = tongxing_rules::select(rules, now).ok_or_else(|| PassRefusal {
        stage: "no_rules".into(),
        detail: format!("no entry rule set is in force at {}", tongxing_domain::time::rfc3339(now)),
    })?;
    let facts = Facts { person: facts_of_pass(&verified.pass), checkpoint };
    let d = rule_set.decide(&facts, now);
    let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
    let decision = PassDecision {
        verdict: d.verdict.as_str().into(),
        reasons: explain(&d, rule_set, facts.checkpoint.road.as_deref(), facts.person.colour_reason_at(now)),
        code_colour: facts.person.colour_at(now).to_string(),
        commuter: facts.person.commuter_at(now),
        policy_id: rule_set.id().into(),
        policy_version: rule_set.version().into(),
        key_id: verified.kid.to_hex(),
        pass_issued_at: at(verified.pass.issued_at),
        pass_expires_at: at(verified.pass.expires_at),
    };
    Ok(Decided {
        verdict: d.verdict,
        records_commuter_first_check: d.records_commuter_first_check,
        rule_versions: d.rule_versions.to_vec(),
        reason_codes: d.reasons.iter().map(|r| (r.code, r.sample.clone())).collect(),
        facts,
        decision,
        verified,
    })
}
