//! No rule can take the service down: the three shapes of CertLogic `reduce` that used to
//! exhaust memory, the stack or the processor (an accumulator used twice per step, one nested a
//! level deeper per item, reduces nested over short lists) are refused, naming the rule, by
//! publication and by the dry run, quickly; and the server answers checks afterwards.

use std::time::{Duration as Elapsed, Instant};

use chrono::Duration;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

fn acc() -> Value {
    json!({"var": "accumulator"})
}

fn literal(n: i64) -> Value {
    Value::Array((0..n).map(Value::from).collect())
}

/// (Identifier, Logic, the budget limit it goes past).
fn shapes() -> Vec<(&'static str, Value, &'static str)> {
    let mut lambda = json!({"+": [acc(), 1]});
    for _ in 0..4 {
        lambda = json!({"+": [acc(), {"reduce": [literal(40), lambda, 0]}]});
    }
    vec![
        ("BJ-EVIL-0001", json!({"reduce": [{"var": "payload.samples"}, [acc(), acc()], 0]}), "value size"),
        ("BJ-EVIL-0002", json!({"reduce": [{"var": "payload.samples"}, [acc()], 0]}), "value depth"),
        ("BJ-EVIL-0003", json!({"!": [{"reduce": [literal(40), lambda, 0]}]}), "steps"),
    ]
}

/// The 2021-11-17 built-in rule set, under a new version, with `logic` as a first rule.
fn policy_with(version: &str, id: &str, logic: Value) -> Value {
    let mut policy: Value = serde_json::from_str(tongxing_rules::BUILTIN_FILES[0].1).unwrap();
    policy["version"] = json!(version);
    let rule = json!({
        "Identifier": id, "Type": "Acceptance", "Country": "CN", "Version": "1.0.0",
        "SchemaVersion": "1.0.0", "Engine": "CERTLOGIC", "EngineVersion": "1.3.0",
        "CertificateType": "General",
        "Description": [{"lang": "zh", "desc": "测试"}, {"lang": "en", "desc": "A rule past the budget."}],
        "ValidFrom": "2021-11-17T00:00:00+08:00", "ValidTo": null,
        "AffectedFields": ["payload.samples"], "Logic": logic,
        "OnPass": null, "OnFail": {"Verdict": "deny", "Reason": "CODE_RED"}
    });
    policy["rules"].as_array_mut().unwrap().insert(0, rule);
    policy
}

both!(fn rules_past_the_budget_are_refused_and_the_server_keeps_answering(b) {
    let app = App::spawn(b);
    for (i, (id, logic, limit)) in shapes().into_iter().enumerate() {
        let policy = policy_with(&format!("budget-{i}"), id, logic);

        let started = Instant::now();
        let r = app.post("health", "/api/v1/policies", policy.clone());
        assert!(started.elapsed() < Elapsed::from_secs(10), "publishing took {:?}", started.elapsed());
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(r.body["field"], format!("rules[{id}]"), "{r:?}");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains("evaluation budget") && detail.contains(limit), "{detail}");

        let started = Instant::now();
        let r = app.post("health", "/api/v1/policies/dry-run", json!({"policy": policy}));
        assert!(started.elapsed() < Elapsed::from_secs(10), "the dry run took {:?}", started.elapsed());
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(r.body["field"], format!("policy.rules[{id}]"), "{r:?}");
        assert!(r.body["detail"].as_str().unwrap().contains(limit), "{r:?}");
    }
    // Nothing was stored, and the server still answers a check.
    let list = app.get("health", "/api/v1/policies");
    assert!(list.body.as_array().unwrap().iter().all(|p| !p["version"].as_str().unwrap().starts_with("budget-")));
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 7);
    app.negative(&doc, Duration::hours(3));
    let (verdict, code) = app.verdict("CP1", &doc);
    assert_eq!((verdict.as_str(), code.as_str()), ("pass", "NEGATIVE_WITHIN_WINDOW"));
});
