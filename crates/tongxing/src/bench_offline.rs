//! `tongxing bench offline`: the offline checkpoint's decision on a pass — prefix, Base45, zlib,
//! COSE, key, signature, claims, times, revocation look-up, then the rule set in force on the
//! pass's facts, all through `tongxing_app::verify::decide_on_pass` as `tongxing verify` calls it
//! — against raw ES256 signature verification (ring) of the same passes, in the same run.
//!
//! Method (as the pass crate's bench): one thread; rounds of 300 ms alternating between the two
//! loops; rates are the best round of each, the ratio the median of the paired rounds, so that a
//! neighbour's load slows both sides of a pair alike. The passes are all different people (a mix
//! of tests, colours and commuter badges), so the revocation look-ups are cold, as at a gate.

use std::time::{Duration as StdDuration, Instant};

use anyhow::Result;
use chrono::{Duration, Utc};
use tongxing_domain::facts::{CheckpointFacts, CodeColour, CommuterKind, CommuterStatus, SiteKind, TestResult};
use tongxing_pass::{
    Algorithm, CommuterBadge, Decoder, Entry, Pass, PassTest, RevocationHash, RevocationSet, Signer, TrustList,
};
use tongxing_rules::RuleSet;

use crate::demo::Rng;

/// Distinct passes verified in turn.
const PASSES: usize = 16_384;

pub fn bench_offline(revoked: u64, rounds: u32) -> Result<()> {
    let now = Utc::now();
    let t = now.timestamp();
    let (signer, _) = Signer::generate(Algorithm::Es256).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut trust = TrustList::new(1, t - 86_400);
    trust.add(signer.public_key().clone(), t - 86_400).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The rules of 17 November 2021 re-issued from yesterday, as the demo runs them: the richest
    // set (commuters, service-area tests, commitments).
    let (_, text) = tongxing_rules::BUILTIN_FILES[0];
    let rules = vec![RuleSet::from_json(&tongxing_rules::reissue(text, "bench", now - Duration::days(1))?)?];

    let mut rng = Rng::new(11);
    let random16 = |rng: &mut Rng| {
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(&rng.next().to_be_bytes());
        h[8..].copy_from_slice(&rng.next().to_be_bytes());
        h
    };
    let mut entries: Vec<Entry> =
        (0..revoked).map(|_| Entry { hash: RevocationHash(random16(&mut rng)), cutoff: t - 60 }).collect();
    let mut texts = Vec::with_capacity(PASSES);
    let mut issuer = tongxing_pass::Issuer::new(&signer);
    for i in 0..PASSES {
        let person_ref = random16(&mut rng).to_vec();
        let tests = (0..1 + rng.below(3))
            .map(|_| PassTest {
                sampled_at: t - rng.below(5 * 86_400) as i64,
                site_kind: if rng.chance(20) { SiteKind::ServiceArea } else { SiteKind::Hospital },
                result: if rng.chance(5) { TestResult::Pending } else { TestResult::Negative },
            })
            .collect();
        let commuter = rng.chance(30).then(|| CommuterBadge {
            kind: CommuterKind::Worker,
            status: CommuterStatus::Approved,
            valid_until: Some(t + 100 * 86_400),
            first_check_done: rng.chance(80),
            next_test_due: None,
        });
        let pass = Pass {
            issuer: "tongxing".into(),
            issued_at: t - rng.below(600) as i64,
            expires_at: t + 900,
            person_ref: person_ref.clone(),
            colour: if rng.chance(3) { CodeColour::Yellow } else { CodeColour::Green },
            colour_reason: None,
            tests,
            pending_site: None,
            commitment_letter: false,
            commuter,
        };
        // One pass in a hundred is revoked (its person), as a checkpoint meets them.
        if i % 100 == 0 {
            entries.push(Entry { hash: RevocationHash::of_person(&person_ref), cutoff: t + 60 });
        }
        texts.push(issuer.issue(&pass)?);
    }
    let revocations = RevocationSet::new(1, t, entries);
    // What raw verification verifies: each pass's Sig_structure and signature.
    let raw: Vec<(Vec<u8>, Vec<u8>)> = texts
        .iter()
        .map(|text| {
            let cose = tongxing_pass::codec::Envelope::new().open("TX1:", text, false).expect("own pass").to_vec();
            let s = tongxing_pass::cose::parse(&cose).expect("own pass");
            let mut tbs = Vec::new();
            tongxing_pass::cose::sig_structure(s.protected, s.payload, &mut tbs);
            (tbs, s.signature.to_vec())
        })
        .collect();
    let key = signer.public_key();
    let facts = CheckpointFacts { id: "CP-JINGHA".into(), road: Some("京哈高速".into()) };
    let mut decoder = Decoder::new();

    let round = StdDuration::from_millis(300);
    let mut i = 0usize;
    let (mut best_raw, mut best_full, mut ratios) = (0f64, 0f64, Vec::new());
    let (mut verdicts, mut refused) = ([0u64; 3], 0u64);
    for _ in 0..rounds {
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < round {
            for _ in 0..64 {
                let (tbs, sig) = &raw[i % PASSES];
                assert!(key.verify(tbs, sig));
                i += 1;
            }
            n += 64;
        }
        let raw_rate = n as f64 / start.elapsed().as_secs_f64();
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < round {
            for _ in 0..64 {
                match tongxing_app::verify::decide_on_pass(
                    &mut decoder,
                    &texts[i % PASSES],
                    &trust,
                    &revocations,
                    &rules,
                    facts.clone(),
                    now,
                ) {
                    Ok(d) => {
                        verdicts[match d.verdict.as_str() {
                            "pass" => 0,
                            "conditional" => 1,
                            _ => 2,
                        }] += 1
                    }
                    Err(_) => refused += 1,
                }
                i += 1;
            }
            n += 64;
        }
        let full_rate = n as f64 / start.elapsed().as_secs_f64();
        best_raw = best_raw.max(raw_rate);
        best_full = best_full.max(full_rate);
        ratios.push(full_rate / raw_rate);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "offline: raw ES256 verify {best_raw:.0}/s ({:.1} µs); verify + decide with rules {best_full:.0}/s ({:.1} µs); \
         ratio {median:.3} (median of {rounds} paired rounds; {:.3}–{:.3})",
        1e6 / best_raw,
        1e6 / best_full,
        ratios[0],
        ratios[ratios.len() - 1]
    );
    println!(
        "offline: {PASSES} distinct passes, revocation list of {} entries, rule set {} {}; pass {} conditional {} deny {}, refused {refused} (revoked)",
        revocations.len(),
        rules[0].id(),
        rules[0].version(),
        verdicts[0],
        verdicts[1],
        verdicts[2]
    );
    Ok(())
}
