//! "What if": replays the recorded entry events of a period under a candidate rule set, from
//! their fact snapshots, and reports how many verdicts would change, in which direction, where
//! and why. People appear only as per-run pseudonyms.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use tongxing_domain::decision::Verdict;
use tongxing_domain::facts::Facts;
use tongxing_rules::RuleSet;
use tongxing_store::{Store, StoreError};
use utoipa::ToSchema;

/// Rows read per page.
const PAGE: i64 = 5000;

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CheckpointChanges {
    pub events: u64,
    pub changed: u64,
    /// The candidate would let fewer people in (pass → conditional/deny, conditional → deny).
    pub stricter: u64,
    pub looser: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictAndReason {
    pub verdict: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AffectedEntry {
    /// A pseudonym of the person, stable within this run only.
    pub person: String,
    pub entry_id: i64,
    pub checkpoint_id: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub checked_at: DateTime<Utc>,
    pub recorded: VerdictAndReason,
    pub candidate: VerdictAndReason,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunReport {
    pub candidate_id: String,
    pub candidate_version: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub since: DateTime<Utc>,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub until: DateTime<Utc>,
    /// Entry events replayed.
    pub events: u64,
    pub changed: u64,
    pub stricter: u64,
    pub looser: u64,
    /// "pass→deny" and so on: how many.
    pub directions: BTreeMap<String, u64>,
    pub by_checkpoint: BTreeMap<String, CheckpointChanges>,
    /// Among changed entries, "recorded reason→candidate reason": how many.
    pub by_reason: BTreeMap<String, u64>,
    /// Up to the requested number of changed entries, pseudonymised.
    pub sample: Vec<AffectedEntry>,
    /// Entry events whose snapshot could not be read (should be 0).
    pub unreadable: u64,
    pub elapsed_ms: u64,
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Deny => 0,
        Verdict::Conditional => 1,
        Verdict::Pass => 2,
    }
}

/// Replays [since, until) under `candidate`.
pub async fn dry_run(
    store: &Store,
    candidate: &RuleSet,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sample_size: usize,
) -> Result<DryRunReport, StoreError> {
    let start = Instant::now();
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).expect("system randomness");
    let pseudonym = |doc_key: &str| {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&salt);
        ctx.update(doc_key.as_bytes());
        ctx.finish().as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut r = DryRunReport {
        candidate_id: candidate.id().to_string(),
        candidate_version: candidate.version().to_string(),
        since,
        until,
        events: 0,
        changed: 0,
        stricter: 0,
        looser: 0,
        directions: BTreeMap::new(),
        by_checkpoint: BTreeMap::new(),
        by_reason: BTreeMap::new(),
        sample: Vec::new(),
        unreadable: 0,
        elapsed_ms: 0,
    };
    // The next page is read while this one is replayed (two cores: the database's and ours).
    let fetch = |after: i64| {
        let store = store.clone();
        tokio::spawn(async move { store.replay_page(since, until, after, PAGE).await })
    };
    let mut next = fetch(0);
    loop {
        let page = next.await.map_err(|e| StoreError::Corrupt(format!("replay reader: {e}")))??;
        let Some(last) = page.last() else { break };
        next = fetch(last.id);
        for e in page {
            r.events += 1;
            let recorded = Verdict::parse(&e.verdict);
            let facts = serde_json::from_str::<Facts>(&e.facts);
            let (Some(recorded), Ok(facts)) = (recorded, facts) else {
                r.unreadable += 1;
                continue;
            };
            let d = candidate.decide(&facts, e.checked_at);
            let cp = r.by_checkpoint.entry(e.checkpoint_id.clone()).or_default();
            cp.events += 1;
            if d.verdict == recorded {
                continue;
            }
            r.changed += 1;
            cp.changed += 1;
            if rank(d.verdict) < rank(recorded) {
                r.stricter += 1;
                cp.stricter += 1;
            } else {
                r.looser += 1;
                cp.looser += 1;
            }
            *r.directions.entry(format!("{}→{}", recorded.as_str(), d.verdict.as_str())).or_default() += 1;
            let old_reason = first_code(&e.reasons);
            let new_reason = d.reasons.first().map(|x| x.code.as_str()).unwrap_or("").to_string();
            *r.by_reason.entry(format!("{old_reason}→{new_reason}")).or_default() += 1;
            if r.sample.len() < sample_size {
                r.sample.push(AffectedEntry {
                    person: pseudonym(&e.doc_key),
                    entry_id: e.id,
                    checkpoint_id: e.checkpoint_id,
                    checked_at: e.checked_at,
                    recorded: VerdictAndReason { verdict: recorded.as_str().into(), reason: old_reason },
                    candidate: VerdictAndReason { verdict: d.verdict.as_str().into(), reason: new_reason },
                });
            }
        }
    }
    r.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(r)
}

/// The code of the first recorded reason (`[{"code": ...}, ...]`).
fn first_code(reasons: &str) -> String {
    #[derive(serde::Deserialize)]
    struct R {
        code: String,
    }
    serde_json::from_str::<Vec<R>>(reasons).ok().and_then(|v| v.into_iter().next()).map(|r| r.code).unwrap_or_default()
}
