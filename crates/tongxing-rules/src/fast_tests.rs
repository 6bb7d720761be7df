//! The fast path against the CertLogic engine: on random expressions over random facts, every
//! value the fast path gives is the engine's.

use chrono::{Duration, TimeZone};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use tongxing_certlogic::Expr;
use tongxing_domain::facts::*;

use super::*;
use crate::document::facts_document;

#[test]
fn values_are_two_words() {
    // Returned in registers, not through memory: evaluation is mostly returning values.
    assert_eq!(std::mem::size_of::<FVal<'_>>(), 16);
    assert_eq!(std::mem::size_of::<Result<FVal<'_>, Bail>>(), 16);
}

#[test]
fn names_are_the_facts_names() {
    for c in CodeColour::ALL {
        assert_eq!(*colour_name(*c), c.as_str());
    }
    for r in TestResult::ALL {
        assert_eq!(*result_name(*r), r.as_str());
    }
    for k in SiteKind::ALL {
        assert_eq!(*site_kind_name(*k), k.as_str());
    }
    for s in CommuterStatus::ALL {
        assert_eq!(*status_name(*s), s.as_str());
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 11, 18, 8, 0, 0).unwrap()
}

fn value_sets() -> Map<String, Value> {
    json!({
        "designated-test-points": {"SA-JINGHA-XIANGHE": {}, "SA-JINGQIN-SANHE": {}},
        "surrounding-regions": {"12": {}, "1310": {}},
    })
    .as_object()
    .unwrap()
    .clone()
}

fn external_value_sets() -> Value {
    let mut out = Map::new();
    for (id, codes) in value_sets() {
        out.insert(id, Value::Array(crate::ruleset::value_set_codes(codes.as_object().unwrap())));
    }
    Value::Object(out)
}

fn arb_facts() -> impl Strategy<Value = Facts> {
    let time = prop::option::of((-3i64..72).prop_map(|h| at() - Duration::hours(h)));
    let sample = (
        -3i64..72,
        prop::sample::select(SiteKind::ALL.to_vec()),
        prop::sample::select(TestResult::ALL.to_vec()),
        prop::sample::select(vec!["SA-JINGHA-XIANGHE", "H1", "12"]),
    )
        .prop_map(|(h, site_kind, result, site)| SampleFact {
            lab: "L".into(),
            sample_id: format!("S{h}"),
            sampled_at: at() - Duration::hours(h),
            site: site.into(),
            site_kind,
            result,
        });
    (
        prop::option::of((prop::sample::select(CodeColour::ALL.to_vec()), time.clone())),
        prop::option::of((prop::sample::select(CommuterStatus::ALL.to_vec()), time.clone(), time)),
        prop::collection::vec(sample, 0..4),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(Just("京哈高速")),
    )
        .prop_map(|(code, commuter, samples, letter, known, road)| Facts {
            person: PersonFacts {
                known,
                code: code.map(|(colour, expires_at)| CodeFacts { colour, reason: None, expires_at }),
                commuter: commuter.map(|(status, valid_until, first_checked_at)| CommuterFacts {
                    status,
                    valid_until,
                    first_checked_at,
                }),
                samples,
                commitment_letter: letter,
            },
            checkpoint: CheckpointFacts { id: "CP1".into(), road: road.map(str::to_owned) },
        })
}

const DATA_PATHS: &[&str] = &[
    "payload.known",
    "payload.code",
    "payload.code.colour",
    "payload.code.expiresAt",
    "payload.codeColour",
    "payload.commitmentLetter",
    "payload.commuter",
    "payload.commuter.status",
    "payload.commuter.validUntil",
    "payload.commuter.firstCheckedAt",
    "payload.commuter.inForce",
    "payload.commuter.firstCheckDone",
    "payload.latestDefinitive",
    "payload.latestDefinitive.result",
    "payload.latestDefinitive.ref",
    "payload.latestNegative.sampledAt",
    "payload.latestNegative.site",
    "payload.latestNegative.nothing",
    "payload.pending",
    "payload.samples",
    "payload.nothing",
    "external.validationClock",
    "external.checkpoint",
    "external.checkpoint.road",
    "external.valueSets",
    "external.valueSets.designated-test-points",
];
const DATE_PATHS: &[&str] = &[
    "payload.code.expiresAt",
    "payload.commuter.validUntil",
    "payload.commuter.firstCheckedAt",
    "payload.latestDefinitive.sampledAt",
    "payload.latestNegative.sampledAt",
    "external.validationClock",
    "payload.codeColour",
];
const LAMBDA_PATHS: &[&str] = &[
    "current",
    "current.site",
    "current.siteKind",
    "current.sampledAt",
    "current.0",
    "accumulator",
    "accumulator.0",
    "accumulator.1",
    "other",
];

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-2i64..3).prop_map(Value::from),
        prop::sample::select(vec![
            "green",
            "red",
            "approved",
            "pending",
            "SA-JINGHA-XIANGHE",
            "",
            "L/S1",
            "service_area"
        ])
        .prop_map(Value::from),
    ]
}

/// Random CertLogic over the facts document (or a `reduce` lambda's context).
fn expr(in_lambda: bool) -> BoxedStrategy<Value> {
    let paths = if in_lambda { LAMBDA_PATHS } else { DATA_PATHS };
    let dates = if in_lambda { &["current.sampledAt", "accumulator.1", "current"][..] } else { DATE_PATHS };
    let var = prop::sample::select(paths.to_vec()).prop_map(|p| json!({"var": p}));
    let date = prop::sample::select(dates.to_vec()).prop_map(|p| json!({"var": p}));
    let time = (date, -50i64..50, prop::sample::select(vec!["hour", "day"]))
        .prop_map(|(d, n, unit)| json!({"plusTime": [d, n, unit]}));
    let leaf = prop_oneof![3 => var, 2 => literal(), 1 => time.clone()];
    leaf.prop_recursive(4, 24, 3, move |inner| {
        let time = time.clone();
        prop_oneof![
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| json!({"if": [a, b, c]})),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| json!({"and": v})),
            inner.clone().prop_map(|a| json!({"!": [a]})),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"===": [a, b]})),
            (inner.clone(), prop::sample::select(vec![0, 1, 2]), inner.clone()).prop_map(|(a, which, b)| {
                let list = match which {
                    0 => json!({"var": "external.valueSets.designated-test-points"}),
                    1 => json!(["SA-JINGHA-XIANGHE", "green", 1, true]),
                    _ => json!([b, "red"]),
                };
                json!({"in": [a, list]})
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"+": [a, b]})),
            (
                prop::sample::select(vec!["before", "after", "not-before", "not-after"]),
                prop::collection::vec(time, 2..4)
            )
                .prop_map(|(op, v)| json!({op: v})),
            (prop::sample::select(vec!["<", ">", "<=", ">="]), prop::collection::vec(inner.clone(), 2..4))
                .prop_map(|(op, v)| json!({op: v})),
            (
                prop::sample::select(vec![
                    "payload.pending",
                    "payload.samples",
                    "external.valueSets.designated-test-points"
                ]),
                expr_lambda(),
                inner.clone(),
            )
                .prop_map(|(list, lambda, init)| json!({"reduce": [{"var": list}, lambda, init]})),
            prop::collection::vec(inner, 1..3).prop_map(|v| {
                let mut v = v;
                v.push(json!({"var": "external.validationClock"}));
                Value::Array(v)
            }),
        ]
    })
    .boxed()
}

fn expr_lambda() -> BoxedStrategy<Value> {
    let var = prop::sample::select(LAMBDA_PATHS.to_vec()).prop_map(|p| json!({"var": p}));
    let leaf = prop_oneof![var, literal()];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| json!({"if": [a, b, c]})),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"===": [a, b]})),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"and": [a, b]})),
            inner.clone().prop_map(|a| json!({"in": [a, {"var": "accumulator.0"}]})),
            inner.prop_map(|a| json!({"!": [a]})),
        ]
    })
    .boxed()
}

#[test]
fn the_fast_path_gives_the_engines_values() {
    let sets = value_sets();
    let external = external_value_sets();
    let mut runner = TestRunner::new(Config { cases: 20_000, failure_persistence: None, ..Config::default() });
    let counts = std::cell::Cell::new((0u32, 0u32));
    runner
        .run(&(expr(false), arb_facts()), |(logic, facts)| {
            let Ok(reference) = Expr::compile(&logic) else {
                return Ok(());
            };
            let doc = facts_document(&facts, at(), &external);
            let expected = reference.evaluate(&doc);
            let Some(fast) = FNode::compile(&logic, &sets) else {
                return Ok(());
            };
            let ctx = Ctx::new(&facts, at());
            let (mut fast_answers, mut all) = counts.get();
            // Count where the engine has a plain JSON answer: there the fast path should have one.
            let countable = expected.as_ref().is_ok_and(|v| !is_date_time(v));
            all += u32::from(countable);
            // Giving up (Bail) is always allowed: the engine answers then.
            if let Ok(v) = fast.evaluate(&ctx) {
                fast_answers += u32::from(countable);
                prop_assert_eq!(Ok(v), expected.clone(), "{}", logic);
            }
            if let Ok(t) = fast.truthy(&ctx) {
                prop_assert_eq!(Ok(t), reference.evaluate_truthy(&doc), "{}", logic);
            }
            if let Ok(s) = fast.string(&ctx) {
                let expected = match &expected {
                    Ok(Value::String(s)) => Some(s.clone()),
                    _ => None,
                };
                // A date-time result is a string to the engine's `evaluate`, not to a sample.
                if !matches!(fast.eval(&ctx, None), Ok(FVal::Time(_))) {
                    prop_assert_eq!(s, expected, "{}", logic);
                }
            }
            counts.set((fast_answers, all));
            Ok(())
        })
        .unwrap();
    let (fast_answers, all) = counts.get();
    eprintln!("fast path answered {fast_answers} of {all} expressions the engine answers with plain JSON");
    assert!(fast_answers * 100 > all * 85, "the fast path gives up too often: {fast_answers} of {all}");
}

/// A date-time result as the engine's `evaluate` writes it (`….000Z`), which the fast path
/// leaves to the engine.
fn is_date_time(v: &Value) -> bool {
    match v {
        Value::String(s) => s.ends_with(".000Z") || s.ends_with('Z') && s.len() == 24,
        Value::Array(items) => items.iter().any(is_date_time),
        _ => false,
    }
}
