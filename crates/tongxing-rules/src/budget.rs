//! The evaluation budget of rules, checked when a rule set is loaded (published, dry-run,
//! reloaded, or read from a file).
//!
//! Every evaluation of a rule runs within the CertLogic engine's budget
//! ([`tongxing_certlogic::Limits::DEFAULT`]): a rule that goes past it on some facts fails to
//! evaluate for that check (it counts as not passed, and the decision's `errors` name it), and the
//! check still gets its verdict. But a rule that goes past the budget on ordinary facts would
//! fail every check, so [`crate::RuleSet::from_json`] refuses it: it evaluates every Logic and
//! Sample on [`representative_checks`] — the facts of a person the system knows nothing about,
//! and the largest facts it produces (every optional field present, [`SAMPLES`] samples in the
//! look-back window, of every kind and result) — and refuses, naming the rule, one that goes past
//! a limit there, or whose steps together with the rules before it go past [`RULE_SET_STEPS`]
//! (so that a check, which may evaluate every rule, stays bounded too). How much a rule costs
//! depends on the data only through the lengths of the lists it folds (samples, pending samples,
//! value sets, literal arrays), which these checks make as long as they get. The refusal is itself
//! bounded: each evaluation stops at the budget.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use tongxing_domain::facts::{
    CheckpointFacts, CodeColour, CodeFacts, CommuterFacts, CommuterStatus, Facts, PersonFacts, SampleFact, SiteKind,
    TestResult,
};

/// Samples in the largest representative check: eight a day for 32 days (the default look-back
/// is 30 days). The built-in rules fold at most the pending ones.
pub const SAMPLES: usize = 256;

/// The most steps all the rules of a set may take together on one representative check: twice
/// what one rule may take. The built-in rule sets take about 2,000 (see docs/PERFORMANCE.md).
pub const RULE_SET_STEPS: u64 = 2 * tongxing_certlogic::MAX_STEPS;

/// The representative checks of a rule set valid from `from` with these value sets (as the file
/// has them): (what the check is, the facts, the check time).
pub fn representative_checks(
    from: DateTime<Utc>,
    value_sets: &Map<String, Value>,
) -> Vec<(&'static str, Facts, DateTime<Utc>)> {
    let at = from + Duration::hours(25);
    let nobody = Facts {
        person: PersonFacts { known: false, code: None, commuter: None, samples: Vec::new(), commitment_letter: false },
        checkpoint: CheckpointFacts { id: "CP-BUDGET".into(), road: None },
    };
    let codes = |id: &str| -> Vec<String> {
        value_sets.get(id).and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let test_points = codes("designated-test-points");
    let road = value_sets
        .get("designated-test-points")
        .and_then(Value::as_object)
        .and_then(|m| m.values().find_map(|d| d.get("road")?.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "G4".into());
    let kinds = [SiteKind::ServiceArea, SiteKind::Hospital, SiteKind::Community];
    let results = [TestResult::Pending, TestResult::Negative, TestResult::Positive, TestResult::Invalid];
    let samples = (0..SAMPLES)
        .map(|i| {
            let site_kind = kinds[i % kinds.len()];
            let site = match site_kind {
                SiteKind::ServiceArea if !test_points.is_empty() => test_points[i % test_points.len()].clone(),
                _ => format!("SITE-{i:03}"),
            };
            SampleFact {
                lab: format!("LAB{:02}", i % 40),
                sample_id: format!("S{i:06}"),
                // Every three hours back from the check, the first an hour before it.
                sampled_at: at - Duration::hours(1 + 3 * i as i64),
                site,
                site_kind,
                result: results[i % results.len()],
            }
        })
        .collect();
    let largest = Facts {
        person: PersonFacts {
            known: true,
            code: Some(CodeFacts {
                colour: CodeColour::Yellow,
                reason: Some("budget check".into()),
                expires_at: Some(at + Duration::days(7)),
            }),
            commuter: Some(CommuterFacts {
                status: CommuterStatus::Approved,
                valid_until: Some(at + Duration::days(90)),
                first_checked_at: Some(at - Duration::days(20)),
            }),
            samples,
            commitment_letter: true,
        },
        checkpoint: CheckpointFacts { id: "CP-BUDGET".into(), road: Some(road) },
    };
    vec![("a person the system has no record of", nobody, at), ("the largest facts the system produces", largest, at)]
}

#[cfg(test)]
mod tests {
    use std::time::{Duration as Elapsed, Instant};

    use chrono::TimeZone;
    use serde_json::json;
    use tongxing_certlogic::{Limits, MAX_STEPS, MAX_VALUE_DEPTH, MAX_VALUE_SIZE, Usage};
    use tongxing_domain::{ReasonCode, Verdict};

    use super::*;
    use crate::{BUILTIN_FILES, RuleSet, RuleSetError};

    /// Loading a rule set past the budget must itself be quick (debug build included).
    const QUICK: Elapsed = Elapsed::from_secs(10);

    fn builtin_2022_11_22() -> Value {
        serde_json::from_str(BUILTIN_FILES[2].1).unwrap()
    }

    /// A rule for the 2022-11-22 set: deny with CODE_RED when `logic` fails (or fails to evaluate).
    fn rule(id: &str, logic: Value, fields: &[&str]) -> Value {
        json!({
            "Identifier": id, "Type": "Acceptance", "Country": "CN", "Version": "1.0.0",
            "SchemaVersion": "1.0.0", "Engine": "CERTLOGIC", "EngineVersion": "1.3.0",
            "CertificateType": "General",
            "Description": [{"lang": "zh", "desc": "测试"}, {"lang": "en", "desc": "A test rule."}],
            "ValidFrom": "2021-11-17T00:00:00+08:00", "ValidTo": null,
            "AffectedFields": fields, "Logic": logic,
            "OnPass": null, "OnFail": {"Verdict": "deny", "Reason": "CODE_RED"}
        })
    }

    /// The built-in 2022-11-22 set with `extra` rules first.
    fn with_rules(extra: Vec<Value>) -> String {
        let mut policy = builtin_2022_11_22();
        let rules = policy["rules"].as_array_mut().unwrap();
        for (i, r) in extra.into_iter().enumerate() {
            rules.insert(i, r);
        }
        policy["version"] = json!("budget-test");
        policy.to_string()
    }

    fn refused(extra: Vec<Value>) -> (String, String) {
        let text = with_rules(extra);
        let started = Instant::now();
        let err = RuleSet::from_json(&text).expect_err("past the budget");
        assert!(started.elapsed() < QUICK, "refusing took {:?}", started.elapsed());
        match err {
            RuleSetError::Rule { identifier, reason } => (identifier, reason),
            other => panic!("expected a rule error, got {other}"),
        }
    }

    fn literal(n: i64) -> Value {
        Value::Array((0..n).map(Value::from).collect())
    }

    fn acc() -> Value {
        json!({"var": "accumulator"})
    }

    /// The three shapes of `reduce` that used to take the server down are refused, naming the
    /// rule and the limit.
    #[test]
    fn the_three_shapes_are_refused_naming_the_rule() {
        let doubling = json!({"reduce": [{"var": "payload.samples"}, [acc(), acc()], 0]});
        let (id, reason) = refused(vec![rule("BJ-EVIL-0001", doubling, &["payload.samples"])]);
        assert_eq!(id, "BJ-EVIL-0001");
        assert!(reason.contains("Logic goes past the evaluation budget"), "{reason}");
        assert!(reason.contains("value size"), "{reason}");

        let nesting = json!({"reduce": [{"var": "payload.samples"}, [acc()], 0]});
        let (id, reason) = refused(vec![rule("BJ-EVIL-0002", nesting, &["payload.samples"])]);
        assert_eq!(id, "BJ-EVIL-0002");
        assert!(reason.contains("value depth"), "{reason}");

        let mut lambda = json!({"+": [acc(), 1]});
        for _ in 0..4 {
            lambda = json!({"+": [acc(), {"reduce": [literal(40), lambda, 0]}]});
        }
        let nested = json!({"!": [{"reduce": [literal(40), lambda, 0]}]});
        let (id, reason) = refused(vec![rule("BJ-EVIL-0003", nested, &["payload.samples"])]);
        assert_eq!(id, "BJ-EVIL-0003");
        assert!(reason.contains("steps"), "{reason}");
    }

    /// Rules that each stay inside the budget but together would make every check slow.
    #[test]
    fn a_rule_set_past_its_total_is_refused_at_the_rule_that_passes_it() {
        // About 3 × 250 × 1,000 = 750,000 steps each.
        let heavy = || json!({"!": [{"reduce": [literal(1000), {"reduce": [literal(250), acc(), 0]}, 0]}]});
        let rules = (1..=3).map(|i| rule(&format!("BJ-HEAVY-000{i}"), heavy(), &["payload.samples"])).collect();
        let (id, reason) = refused(rules);
        assert_eq!(id, "BJ-HEAVY-0003");
        assert!(reason.contains(&format!("more than the {RULE_SET_STEPS} a rule set may take")), "{reason}");
        // Two of them are accepted.
        let rules = (1..=2).map(|i| rule(&format!("BJ-HEAVY-000{i}"), heavy(), &["payload.samples"])).collect();
        RuleSet::from_json(&with_rules(rules)).unwrap();
    }

    /// A rule that passes the load check but goes past the budget on a larger check fails to
    /// evaluate for that check only: the check gets its verdict, the error names the rule.
    #[test]
    fn a_rule_past_the_budget_at_a_check_fails_cleanly() {
        // Nests the accumulator for samples from a site that the representative checks lack.
        let rare = json!({"reduce": [
            {"var": "payload.samples"},
            {"if": [{"===": [{"var": "current.site"}, "RARE-SITE"]}, [acc()], acc()]},
            [0]
        ]});
        let set = RuleSet::from_json(&with_rules(vec![rule("BJ-RARE-0001", rare, &["payload.samples"])])).unwrap();
        let at = Utc.with_ymd_and_hms(2022, 12, 1, 8, 0, 0).unwrap();
        let sample = |i: i64, site: &str| SampleFact {
            lab: "LAB1".into(),
            sample_id: format!("S{i}"),
            sampled_at: at - Duration::hours(1 + i),
            site: site.into(),
            site_kind: SiteKind::Hospital,
            result: TestResult::Negative,
        };
        let person = |samples| Facts {
            person: PersonFacts { known: true, code: None, commuter: None, samples, commitment_letter: false },
            checkpoint: CheckpointFacts { id: "CP1".into(), road: None },
        };
        let ordinary = person(vec![sample(0, "H1"), sample(1, "RARE-SITE")]);
        let d = set.decide(&ordinary, at);
        assert_eq!(d.verdict, Verdict::Pass);
        assert!(d.errors.is_empty());

        let many = person((0..MAX_VALUE_DEPTH as i64 + 10).map(|i| sample(i, "RARE-SITE")).collect());
        for d in [set.decide(&many, at), set.decide_reference(&many, at)] {
            assert_eq!(d.verdict, Verdict::Deny);
            assert_eq!(d.reasons[0].code, ReasonCode::CodeRed);
            assert_eq!(d.reasons[0].rule, Some("BJ-RARE-0001"));
            assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
            assert_eq!(d.errors[0].rule, "BJ-RARE-0001");
            assert!(d.errors[0].message.contains("value depth"), "{}", d.errors[0].message);
        }
        assert!(set.fast_path_disagreements(&many, at).is_empty());
    }

    /// The built-in rules stay far inside the budget on the representative checks (the figures
    /// are in docs/PERFORMANCE.md: `cargo test -p tongxing-rules --lib budget -- --nocapture`).
    #[test]
    fn built_in_rules_stay_far_inside_the_budget() {
        for (name, text) in BUILTIN_FILES {
            let set = RuleSet::from_json(text).unwrap();
            let mut value_sets = Map::new();
            for (id, _) in set.external_value_sets().as_object().unwrap() {
                value_sets.insert(id.clone(), Value::Object(set.value_set(id).unwrap().clone()));
            }
            for (check, facts, at) in representative_checks(set.valid_from(), &value_sets) {
                let doc = set.facts_document(&facts, at);
                let (mut total, mut most) = (0, Usage::default());
                for rule in set.rules() {
                    let (result, used) = rule.logic().evaluate_with(&doc, &Limits::DEFAULT);
                    result.unwrap_or_else(|e| panic!("{name} {}: {e}", rule.identifier()));
                    total += used.steps;
                    most.steps = most.steps.max(used.steps);
                    most.value_size = most.value_size.max(used.value_size);
                    most.value_depth = most.value_depth.max(used.value_depth);
                }
                println!(
                    "{name}, {check}: {total} steps for all rules; the most for one rule: {} steps, values of {} nodes, {} deep",
                    most.steps, most.value_size, most.value_depth
                );
                assert!(total * 100 < MAX_STEPS, "{name}: {total}");
                assert!(most.value_size * 100 < MAX_VALUE_SIZE && most.value_depth * 4 < MAX_VALUE_DEPTH, "{most:?}");
                assert!(set.decide(&facts, at).errors.is_empty());
            }
        }
    }
}
