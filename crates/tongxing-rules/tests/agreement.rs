//! The rule set `beijing-2021-11-17` against the native decision, on random facts and check times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tongxing_domain::facts::*;
use tongxing_domain::{Policy, decide};
use tongxing_rules::RuleSet;

const SITES: &[&str] = &["SA-JINGHA-XIANGHE", "SA-JINGQIN-SANHE", "SA-JINGCHENG-JINSHANLING", "SOMEWHERE", "H1"];

/// An offset from the check time, in seconds: anywhere from 2 hours in the future to 20 days in
/// the past, often exactly at (or a second beside) a window's edge, or on a few shared values so
/// that samples tie.
fn age() -> impl Strategy<Value = i64> {
    let edges: Vec<i64> =
        [24 * 3600, 48 * 3600, 7 * 86_400, 14 * 86_400, 0].iter().flat_map(|&e| [e - 1, e, e + 1]).collect();
    prop_oneof![
        4 => -2 * 3600i64..20 * 86_400,
        2 => 0i64..30 * 3600,
        2 => prop::sample::select(edges),
        1 => prop::sample::select(vec![3600i64, 30 * 3600, 3 * 86_400]),
    ]
}

fn arb_sample(at: DateTime<Utc>) -> impl Strategy<Value = SampleFact> {
    (
        age(),
        prop::sample::select(SiteKind::ALL.to_vec()),
        prop_oneof![
            3 => Just(TestResult::Negative),
            3 => Just(TestResult::Pending),
            1 => Just(TestResult::Positive),
            1 => Just(TestResult::Invalid),
        ],
        prop::sample::select(SITES.to_vec()),
        0u32..1000,
    )
        .prop_map(move |(age, site_kind, result, site, n)| SampleFact {
            lab: format!("LAB{}", n % 3),
            sample_id: format!("S{n}"),
            sampled_at: at - Duration::seconds(age),
            site: site.into(),
            site_kind,
            result,
        })
}

fn arb_time_near(at: DateTime<Utc>) -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop::option::of(age().prop_map(move |a| at - Duration::seconds(a - 86_400)))
}

fn arb_facts(at: DateTime<Utc>) -> impl Strategy<Value = Facts> {
    let colour = prop_oneof![4 => Just(CodeColour::Green), 1 => Just(CodeColour::Yellow), 1 => Just(CodeColour::Red)];
    let code = prop::option::of((colour, arb_time_near(at)).prop_map(|(colour, expires_at)| CodeFacts {
        colour,
        reason: None,
        expires_at,
    }));
    let commuter = prop::option::of(
        (prop::sample::select(CommuterStatus::ALL.to_vec()), arb_time_near(at), arb_time_near(at), any::<bool>())
            .prop_map(|(status, valid_until, first_checked_at, approved)| CommuterFacts {
                // Approved half of the time, so that certified commuters are common.
                status: if approved { CommuterStatus::Approved } else { status },
                valid_until,
                first_checked_at,
            }),
    );
    (
        code,
        commuter,
        prop::collection::vec(arb_sample(at), 0..=6),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["京哈高速", "G1"])),
    )
        .prop_map(|(code, commuter, samples, commitment_letter, known, road)| Facts {
            person: PersonFacts { known, code, commuter, samples, commitment_letter },
            checkpoint: CheckpointFacts { id: "CP1".into(), road: road.map(str::to_owned) },
        })
}

fn arb_case() -> impl Strategy<Value = (Facts, DateTime<Utc>)> {
    let base = Utc.with_ymd_and_hms(2021, 11, 17, 0, 0, 0).unwrap();
    (0i64..170 * 86_400).prop_flat_map(move |offset| {
        let at = base + Duration::seconds(offset);
        arb_facts(at).prop_map(move |f| (f, at))
    })
}

#[test]
fn rules_agree_with_the_native_decision_on_20000_random_checks() {
    let native_policy = Policy::beijing_2021_11_17();
    let sets = tongxing_rules::builtin();
    let rules: &RuleSet = sets.iter().find(|s| s.id() == "beijing-2021-11-17").unwrap();
    let mut runner = TestRunner::new(Config { cases: 20_000, failure_persistence: None, ..Config::default() });
    let seen = std::cell::RefCell::new(std::collections::HashMap::new());
    runner
        .run(&arb_case(), |(facts, at)| {
            let native = decide(&facts, &native_policy, at);
            let ours = rules.decide(&facts, at);
            prop_assert!(ours.errors.is_empty(), "rules failed to evaluate: {:?}", ours.errors);
            prop_assert_eq!(ours.verdict, native.verdict, "verdict; facts {:?} at {}", facts, at);
            prop_assert_eq!(ours.reasons[0].code, native.reasons[0].code, "first reason; facts {:?} at {}", facts, at);
            prop_assert_eq!(ours.records_commuter_first_check, native.records_commuter_first_check);
            // Beyond the brief: every reason, with the sample it refers to.
            let a: Vec<_> = ours.reasons.iter().map(|r| (r.code, r.sample.clone())).collect();
            let b: Vec<_> = native.reasons.iter().map(|r| (r.code, r.sample.clone())).collect();
            prop_assert_eq!(a, b, "reasons; facts {:?} at {}", facts, at);
            // The fast path gives the CertLogic engine's decision, and agrees with it on every rule.
            prop_assert_eq!(&ours, &rules.decide_reference(&facts, at));
            let disagreements = rules.fast_path_disagreements(&facts, at);
            prop_assert!(disagreements.is_empty(), "{:?}", disagreements);
            // The deciding rule is the last one evaluated.
            let last = ours.rule_versions.last().map(|(id, _)| id.as_str());
            if let Some(rule) = ours.reasons[0].rule {
                prop_assert_eq!(last, Some(rule));
            }
            *seen.borrow_mut().entry(native.reasons[0].code).or_insert(0u32) += 1;
            Ok(())
        })
        .unwrap();
    // The generator reaches every outcome, so the agreement means something.
    let seen = seen.into_inner();
    let missing: Vec<_> = tongxing_domain::ReasonCode::ALL
        .iter()
        .filter(|c| !seen.contains_key(c) && c.as_str() != "COMMUTER_NOT_ACTIVE")
        .collect();
    assert!(missing.is_empty(), "never reached: {missing:?}; seen {seen:?}");
    eprintln!("first reasons reached: {seen:?}");
}
