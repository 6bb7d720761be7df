//! The three built-in policies side by side, their selection by date, their consistency, and
//! the validation of rule-set files.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use tongxing_domain::facts::*;
use tongxing_domain::{Policy, ReasonCode, Verdict};
use tongxing_rules::{RuleSet, RuleSetError};

fn sets() -> Vec<RuleSet> {
    tongxing_rules::builtin()
}

fn by_id<'a>(sets: &'a [RuleSet], id: &str) -> &'a RuleSet {
    sets.iter().find(|s| s.id() == id).unwrap()
}

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 1, 8, 0, 0).unwrap()
}

fn person(samples: Vec<SampleFact>) -> Facts {
    Facts {
        person: PersonFacts { known: true, code: None, commuter: None, samples, commitment_letter: false },
        checkpoint: CheckpointFacts { id: "CP1".into(), road: Some("京哈高速".into()) },
    }
}

fn negative(age: Duration) -> SampleFact {
    SampleFact {
        lab: "LAB1".into(),
        sample_id: "N1".into(),
        sampled_at: t() - age,
        site: "H1".into(),
        site_kind: SiteKind::Hospital,
        result: TestResult::Negative,
    }
}

fn commuter(first_check_done: bool, age: Duration) -> Facts {
    let mut f = person(vec![negative(age)]);
    f.person.commuter = Some(CommuterFacts {
        status: CommuterStatus::Approved,
        valid_until: Some(t() + Duration::days(100)),
        first_checked_at: first_check_done.then(|| t() - Duration::days(20)),
    });
    f
}

/// (verdict, first reason) under each of the three policies, oldest first.
fn under_each(f: &Facts) -> Vec<(Verdict, ReasonCode)> {
    sets()
        .iter()
        .map(|s| {
            let d = s.decide(f, t());
            assert_eq!(d, s.decide_reference(f, t()));
            (d.verdict, d.reasons[0].code)
        })
        .collect()
}

use ReasonCode::*;
use Verdict::*;

#[test]
fn commuter_with_a_10_day_old_test() {
    assert_eq!(
        under_each(&commuter(true, Duration::days(10))),
        [(Pass, CommuterNegativeWithinWindow), (Deny, CommuterTestTooOld), (Deny, TestTooOld)]
    );
}

#[test]
fn commuter_with_a_30_hour_old_test() {
    assert_eq!(
        under_each(&commuter(true, Duration::hours(30))),
        [(Pass, CommuterNegativeWithinWindow), (Pass, CommuterNegativeWithinWindow), (Pass, NegativeWithinWindow)]
    );
}

#[test]
fn commuter_with_a_3_day_old_test() {
    assert_eq!(
        under_each(&commuter(true, Duration::days(3))),
        [(Pass, CommuterNegativeWithinWindow), (Pass, CommuterNegativeWithinWindow), (Deny, TestTooOld)]
    );
}

#[test]
fn seven_day_window_edges_from_5_may_2022() {
    let sets = sets();
    let may = by_id(&sets, "beijing-2022-05-05");
    let edge = may.decide(&commuter(true, Duration::days(7)), t());
    assert_eq!((edge.verdict, edge.reasons[0].code), (Pass, CommuterNegativeWithinWindow));
    let over = may.decide(&commuter(true, Duration::days(7) + Duration::seconds(1)), t());
    assert_eq!((over.verdict, over.reasons[0].code), (Deny, CommuterTestTooOld));
    assert!(over.rule_versions.iter().any(|(id, v)| id == "BJ-COM-0002" && v == "1.1.0"));
}

#[test]
fn commuters_first_check() {
    // Within 48 hours: passes and is recorded, except from 22 Nov 2022, when there is no first
    // check any more.
    let f = commuter(false, Duration::hours(20));
    assert_eq!(under_each(&f), [(Pass, CommuterFirstCheck), (Pass, CommuterFirstCheck), (Pass, NegativeWithinWindow)]);
    let records: Vec<bool> = sets().iter().map(|s| s.decide(&f, t()).records_commuter_first_check).collect();
    assert_eq!(records, [true, true, false]);
    // 3 days: within both commuter windows, but a first check needs 48 hours.
    assert_eq!(
        under_each(&commuter(false, Duration::days(3))),
        [(Deny, FirstCheckNeeds48h), (Deny, FirstCheckNeeds48h), (Deny, TestTooOld)]
    );
    // 10 days: beyond 7 days from May 2022.
    assert_eq!(
        under_each(&commuter(false, Duration::days(10))),
        [(Deny, FirstCheckNeeds48h), (Deny, CommuterTestTooOld), (Deny, TestTooOld)]
    );
}

#[test]
fn what_stays_the_same() {
    assert_eq!(under_each(&person(vec![negative(Duration::hours(47))])), [(Pass, NegativeWithinWindow); 3]);
    assert_eq!(under_each(&person(vec![])), [(Deny, NoValidTest); 3]);
    let mut yellow = person(vec![negative(Duration::hours(1))]);
    yellow.person.code = Some(CodeFacts { colour: CodeColour::Yellow, reason: None, expires_at: None });
    assert_eq!(under_each(&yellow), [(Deny, CodeYellow); 3]);
    let mut sa = person(vec![SampleFact {
        lab: "LAB9".into(),
        sample_id: "SA1".into(),
        sampled_at: t() - Duration::hours(2),
        site: "SA-JINGQIN-SANHE".into(),
        site_kind: SiteKind::ServiceArea,
        result: TestResult::Pending,
    }]);
    assert_eq!(under_each(&sa), [(Deny, CommitmentLetterRequired); 3]);
    sa.person.commitment_letter = true;
    assert_eq!(under_each(&sa), [(Conditional, PendingWithCommitment); 3]);
    for s in sets() {
        assert_eq!(s.decide(&sa, t()).reasons[0].sample.as_deref(), Some("LAB9/SA1"));
    }
}

#[test]
fn the_inactive_certification_note_ends_in_november_2022() {
    let mut f = person(vec![negative(Duration::hours(5))]);
    f.person.commuter =
        Some(CommuterFacts { status: CommuterStatus::Suspended, valid_until: None, first_checked_at: None });
    let codes: Vec<Vec<ReasonCode>> =
        sets().iter().map(|s| s.decide(&f, t()).reasons.iter().map(|r| r.code).collect()).collect();
    assert_eq!(
        codes,
        [
            vec![NegativeWithinWindow, CommuterNotActive],
            vec![NegativeWithinWindow, CommuterNotActive],
            vec![NegativeWithinWindow]
        ]
    );
}

#[test]
fn reasons_carry_the_rules_descriptions() {
    let sets = sets();
    let d = by_id(&sets, "beijing-2021-11-17").decide(&person(vec![negative(Duration::days(3))]), t());
    let r = &d.reasons[0];
    assert_eq!((r.code, r.rule, r.rule_passed), (TestTooOld, Some("BJ-NAT-0003"), false));
    assert!(r.description_zh.contains("48小时"), "{}", r.description_zh);
    assert!(r.description_en.contains("48 hours"), "{}", r.description_en);
    assert_eq!(r.sample.as_deref(), Some("LAB1/N1"));
    assert_eq!(d.rule_versions.last().map(|(id, _)| id.as_str()), Some("BJ-NAT-0003"));
    let none = by_id(&sets, "beijing-2021-11-17").decide(&person(vec![]), t());
    assert_eq!((none.reasons[0].rule, none.rule_versions.len()), (None, 12));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["verdict"], "deny");
    assert_eq!(json["reasons"][0]["code"], "TEST_TOO_OLD");
}

#[test]
fn every_built_in_rule_runs_on_the_fast_path() {
    for s in sets() {
        for r in s.rules() {
            assert!(r.on_fast_path(), "{} {}", s.id(), r.identifier());
        }
    }
    assert!(!with_slow_rule(0).rules().iter().all(|r| r.on_fast_path()));
}

#[test]
fn the_policy_in_force_by_date() {
    let sets = sets();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let id = |s: &str| tongxing_rules::select(&sets, at(s)).map(RuleSet::id);
    assert_eq!(id("2021-11-16T23:59:59+08:00"), None);
    assert_eq!(id("2021-11-17T00:00:00+08:00"), Some("beijing-2021-11-17"));
    assert_eq!(id("2022-05-04T23:59:59+08:00"), Some("beijing-2021-11-17"));
    assert_eq!(id("2022-05-05T00:00:00+08:00"), Some("beijing-2022-05-05"));
    assert_eq!(id("2022-11-21T23:59:59+08:00"), Some("beijing-2022-05-05"));
    assert_eq!(id("2022-11-22T00:00:00+08:00"), Some("beijing-2022-11-22"));
    assert_eq!(id("2030-01-01T00:00:00Z"), Some("beijing-2022-11-22"));
    // One after the other, without gap or overlap.
    for pair in sets.windows(2) {
        assert_eq!(pair[0].valid_to(), Some(pair[1].valid_from()));
    }
    assert_eq!(sets.last().unwrap().valid_to(), None);
}

#[test]
fn a_rule_version_is_the_same_rule_everywhere() {
    let mut seen: std::collections::BTreeMap<(String, String), (String, Value)> = Default::default();
    for s in sets() {
        for r in s.rules() {
            let key = (r.identifier().to_owned(), r.version().to_owned());
            if let Some((other, json)) = seen.get(&key) {
                assert_eq!(json, r.json(), "{key:?} differs between {other} and {}", s.id());
            } else {
                seen.insert(key, (s.id().to_owned(), r.json().clone()));
            }
        }
    }
    // And a changed rule has a new version: no two versions of a rule share a Logic.
    let mut logic: std::collections::BTreeMap<String, Vec<&Value>> = Default::default();
    for ((id, _), (_, json)) in &seen {
        logic.entry(id.clone()).or_default().push(&json["Logic"]);
    }
    for (id, versions) in logic {
        for (i, a) in versions.iter().enumerate() {
            assert!(!versions[i + 1..].contains(a), "{id}: two versions with the same Logic");
        }
    }
}

#[test]
fn value_sets_match_the_native_policy() {
    let native = Policy::beijing_2021_11_17();
    for s in sets() {
        let points = s.value_set("designated-test-points").unwrap();
        assert_eq!(points.len(), 13);
        for tp in &native.designated_test_points {
            let p = &points[&tp.id];
            assert_eq!(
                (p["name_zh"].as_str(), p["name_en"].as_str(), p["road"].as_str()),
                (Some(tp.name_zh.as_str()), Some(tp.name_en.as_str()), Some(tp.road.as_str()))
            );
        }
        let regions: Vec<&str> = s.value_set("surrounding-regions").unwrap().keys().map(String::as_str).collect();
        let mut native_regions: Vec<&str> = native.surrounding_regions.iter().map(|r| r.prefix.as_str()).collect();
        native_regions.sort();
        assert_eq!(regions, native_regions);
        assert_eq!(s.test_point_on_road("京哈高速").map(|(id, _)| id), Some("SA-JINGHA-XIANGHE"));
        assert_eq!(s.external_value_sets()["surrounding-regions"], json!(["12", "1306", "1307", "1308", "1310"]));
    }
}

// ---- Validation ------------------------------------------------------------------------------

fn builtin_json() -> Value {
    serde_json::from_str(tongxing_rules::BUILTIN_FILES[0].1).unwrap()
}

fn rule_mut<'a>(policy: &'a mut Value, id: &str) -> &'a mut Value {
    policy["rules"].as_array_mut().unwrap().iter_mut().find(|r| r["Identifier"] == id).unwrap()
}

fn refuse(edit: impl FnOnce(&mut Value)) -> String {
    let mut p = builtin_json();
    edit(&mut p);
    match RuleSet::from_json(&p.to_string()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

/// A change to a valid rule-set file.
type Edit = Box<dyn FnOnce(&mut Value)>;

#[test]
fn invalid_rule_sets_are_refused_naming_the_rule_and_the_reason() {
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(|p| rule_mut(p, "BJ-NAT-0002")["Logic"] = json!({"and": [{"var": "payload.x."}]})),
            &[
                "rule BJ-NAT-0002",
                "Logic is not valid CertLogic 1.3",
                "at /and/0: data access path doesn't have a valid format",
                "\"and\" operation must have at least 2 operands",
            ],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-NAT-0002")["Logic"] = json!({"var": "payload.colour"})),
            &["rule BJ-NAT-0002", "reads 'payload.colour', which is not a field of the facts document"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-CODE-0001")["Logic"] = json!({"var": "payload.known"})),
            &["rule BJ-CODE-0001", "reads 'payload.known', which AffectedFields does not list"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-CODE-0001")["AffectedFields"] = json!(["external.valueSets.nope"])),
            &["rule BJ-CODE-0001", "AffectedFields names 'external.valueSets.nope'"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-CODE-0001")["OnFail"]["Reason"] = json!("CODE_PURPLE")),
            &["rule BJ-CODE-0001", "OnFail.Reason 'CODE_PURPLE' is not a reason code"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-CODE-0001")["OnFail"]["Verdict"] = json!("maybe")),
            &["rule BJ-CODE-0001", "OnFail.Verdict 'maybe' is not one of pass, conditional, deny"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-CODE-0001")["OnFail"]["RecordsCommuterFirstCheck"] = json!(true)),
            &["rule BJ-CODE-0001", "RecordsCommuterFirstCheck needs Verdict \"pass\""],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-CODE-0001")["OnFail"] = Value::Null),
            &["rule BJ-CODE-0001", "neither OnPass nor OnFail"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-COM-0004")["OnFail"]["Sample"] = json!({"plusTime": ["x", 1, "week"]})),
            &["rule BJ-COM-0004", "OnFail.Sample is not valid CertLogic 1.3"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["Identifier"] = json!("BJ-CODE-0001")),
            &["rule BJ-CODE-0001", "appears more than once"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["Identifier"] = json!("bj-sa-1")),
            &["rule bj-sa-1", "not of the form AA-NAME-0000"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["Engine"] = json!("JSONLOGIC")),
            &["rule BJ-SA-0001", "Engine 'JSONLOGIC'"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["EngineVersion"] = json!("2.0.0")),
            &["rule BJ-SA-0001", "newer than CertLogic 1.3"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["Type"] = json!("Invalidation")),
            &["rule BJ-SA-0001", "only \"Acceptance\""],
        ),
        (Box::new(|p| rule_mut(p, "BJ-SA-0001")["Version"] = json!("1.0")), &["rule BJ-SA-0001", "Version '1.0'"]),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["CertificateType"] = json!("Passport")),
            &["rule BJ-SA-0001", "CertificateType"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["Description"] = json!([{"lang": "en", "desc": "x"}])),
            &["rule BJ-SA-0001", "Description needs a non-empty {\"lang\": \"zh\""],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["ValidFrom"] = json!("2021-12-01T00:00:00+08:00")),
            &["rule BJ-SA-0001", "must cover the rule set's valid_from..valid_to"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["ValidTo"] = json!("someday")),
            &["rule BJ-SA-0001", "ValidTo 'someday' is not an RFC 3339"],
        ),
        (
            Box::new(|p| rule_mut(p, "BJ-SA-0001")["Colour"] = json!("red")),
            &["rule BJ-SA-0001", "unknown field `Colour`"],
        ),
        (
            Box::new(|p| p["value_sets"].as_object_mut().unwrap().remove("designated-test-points").map(drop).unwrap()),
            &["rule BJ-SA-0001", "external.valueSets.designated-test-points"],
        ),
        (
            Box::new(|p| p["valid_to"] = json!("2021-01-01T00:00:00Z")),
            &["rule set field valid_to: must be after valid_from"],
        ),
        (Box::new(|p| p["id"] = json!("Beijing 2021")), &["rule set field id"]),
        (Box::new(|p| p["rules"] = json!([])), &["rule set field rules"]),
        (Box::new(|p| p["otherwise"]["Reason"] = json!("NOPE")), &["rule set field otherwise.Reason"]),
        (Box::new(|p| p["colour"] = json!(1)), &["rule set field colour: is not a known field; accepted: id, version"]),
        (
            Box::new(|p| p["value_sets"]["surrounding-regions"] = json!(["12"])),
            &["value_sets.surrounding-regions", "object of code"],
        ),
    ];
    for (edit, expected) in cases {
        let message = refuse(edit);
        for part in expected {
            assert!(message.contains(part), "'{message}' should contain '{part}'");
        }
    }
    assert!(matches!(RuleSet::from_json("{"), Err(RuleSetError::Json(_))));
}

// ---- The per-thread documents ----------------------------------------------------------------

/// A rule set whose BJ-NAT-0002 the fast path cannot compile (it uses `extractFromUVCI`), so
/// that decisions use the facts document kept per thread.
fn with_slow_rule(n: usize) -> RuleSet {
    let mut p = builtin_json();
    p["id"] = json!(format!("slow-{n}"));
    let rule = rule_mut(&mut p, "BJ-NAT-0002");
    let logic = rule["Logic"].take();
    rule["Logic"] = json!({"if": [{"extractFromUVCI": [{"var": "payload.codeColour"}, 5]}, false, logic]});
    rule["AffectedFields"].as_array_mut().unwrap().push(json!("payload.codeColour"));
    RuleSet::from_json(&p.to_string()).unwrap()
}

#[test]
fn many_rule_sets_on_one_thread_keep_their_documents_apart() {
    let sets: Vec<RuleSet> = (0..11).map(with_slow_rule).chain(tongxing_rules::builtin()).collect();
    let facts = [
        person(vec![negative(Duration::hours(47))]),
        person(vec![negative(Duration::hours(49))]),
        commuter(true, Duration::days(3)),
        person(vec![]),
    ];
    for round in 0..3 {
        for (i, s) in sets.iter().enumerate() {
            let f = &facts[(i + round) % facts.len()];
            assert_eq!(s.decide(f, t()), s.decide_reference(f, t()), "{} round {round}", s.id());
        }
    }
    let slow = &sets[0];
    let d = slow.decide(&facts[0], t());
    assert_eq!((d.verdict, d.reasons[0].code), (Pass, NegativeWithinWindow));
}

#[test]
fn rule_sets_work_from_many_threads() {
    let sets = std::sync::Arc::new(sets());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let sets = sets.clone();
            std::thread::spawn(move || {
                let f = commuter(true, Duration::days(3 + i));
                sets.iter().map(|s| s.decide(&f, t()).verdict).collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), [Pass, Pass, Deny]);
    }
}
