//! Rules as data: the policy in force by date, publishing (validated, audited), activation,
//! the dry run, and the `tongxing rules` commands.

use std::process::Command;

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

fn commuter(app: &App, doc: &str) {
    let r = app.post(
        "registry",
        "/api/v1/commuters",
        json!({
        "document_number": doc, "kind": "worker", "residence_region": "131082", "residence_proof": "lease",
        "employer_name": "北京星河", "employer_uscc": "91350100M000100Y43", "work_region": "110105"}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "approve"}));
    assert_eq!(r.status, 200, "{r:?}");
}

fn builtin(i: usize) -> Value {
    serde_json::from_str(tongxing_rules::BUILTIN_FILES[i].1).unwrap()
}

both!(fn the_latest_policy_is_in_force_by_date(b) {
    // Today the 22 November 2022 rules apply: a 48-hour test at every entry, commuters included.
    let app = App::spawn_builtin(b);
    let list = app.get("analyst", "/api/v1/policies");
    let in_force: Vec<_> = list.body.as_array().unwrap().iter().filter(|p| p["in_force"] == true).collect();
    assert_eq!(in_force.len(), 1, "{list:?}");
    assert_eq!(in_force[0]["id"], "beijing-2022-11-22");
    app.checkpoint("CP1", "京哈高速");
    let c = nth_id("131082", 1);
    commuter(&app, &c);
    app.negative(&c, Duration::days(3));
    let (v, code) = app.verdict("CP1", &c);
    assert_eq!((v.as_str(), code.as_str()), ("deny", "TEST_TOO_OLD"));
    app.negative(&c, Duration::hours(30));
    let r = app.check("CP1", &c);
    assert_eq!(r.body["verdict"], "pass");
    assert_eq!(r.body["policy_id"], "beijing-2022-11-22");
});

both!(fn publishing_is_validated_and_audited(b) {
    let app = App::spawn_builtin(b);
    // An invalid rule is refused with the rule and the reason; nothing is stored.
    let mut bad = builtin(0);
    bad["version"] = json!("bad-1");
    bad["rules"][2]["Logic"] = json!({"plusTime": [{"var": "payload.latestDefinitive.sampledAt"}, 48, "fortnight"]});
    let r = app.post("health", "/api/v1/policies", bad);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["field"], "rules[BJ-NAT-0001]", "{r:?}");
    let r = app.post("health", "/api/v1/policies", json!({"id": "x"}));
    assert_eq!(r.status, 422, "{r:?}");
    // Only the health authority publishes; a built-in version cannot be replaced.
    assert_eq!(app.post("registry", "/api/v1/policies", builtin(1)).status, 403);
    assert_eq!(app.post("health", "/api/v1/policies", builtin(1)).status, 409);
    // Publish, publish again (nothing changes), change the body under the same version (conflict).
    let mut p = builtin(1);
    p["version"] = json!("2022-05-05-b");
    let r = app.post("health", "/api/v1/policies", p.clone());
    assert_eq!((r.status, r.body["new"].clone()), (201, json!(true)), "{r:?}");
    let r = app.post("health", "/api/v1/policies", p.clone());
    assert_eq!(r.body["new"], false);
    p["name_en"] = json!("changed");
    assert_eq!(app.post("health", "/api/v1/policies", p).status, 409);
    // Published but not active: it does not decide.
    let list = app.get("health", "/api/v1/policies");
    let published: Vec<_> = list.body.as_array().unwrap().iter().filter(|p| p["source"] == "published").collect();
    assert_eq!(published.len(), 1);
    assert_eq!(app.post("health", "/api/v1/policies/activate", json!({"id": "nope", "version": "1"})).status, 404);
    app.use_2021_rules();
    let audit = app.get("health", "/api/v1/policies/audit");
    let actions: Vec<String> = audit.body.as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, vec![
        "publish beijing-2022-05-05 2022-05-05-b",
        "publish beijing-2021-11-17 2021-11-17-test",
        "activate beijing-2021-11-17 2021-11-17-test",
    ]);
    let list = app.get("health", "/api/v1/policies");
    let in_force: Vec<_> = list.body.as_array().unwrap().iter().filter(|p| p["in_force"] == true).collect();
    assert_eq!(in_force[0]["version"], "2021-11-17-test");
});

both!(fn dry_run_reports_what_would_change(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    app.checkpoint("CP2", "京沪高速");
    // A commuter with a 10-day-old test passes under 2021-11-17 (14 days) ...
    let c = nth_id("131082", 1);
    commuter(&app, &c);
    app.negative(&c, Duration::hours(20));
    assert_eq!(app.verdict("CP1", &c).0, "pass"); // first check
    let lookup = app.post("registry", "/api/v1/people/lookup", json!({"document_number": c, "purpose": "test"}));
    let s = &lookup.body["samples"][0];
    app.result(s["lab"].as_str().unwrap(), s["sample_id"].as_str().unwrap(), &c, Utc::now() - Duration::days(10), "H1", "hospital", "negative");
    assert_eq!(app.verdict("CP1", &c).0, "pass");
    // ... a visitor with a fresh test passes under any of them, one without a test is denied.
    let v = nth_id("110105", 2);
    app.negative(&v, Duration::hours(3));
    assert_eq!(app.verdict("CP2", &v).0, "pass");
    assert_eq!(app.verdict("CP2", &nth_id("110105", 3)).0, "deny");
    // Under 2022-05-05 (7 days) only the commuter's second check changes: pass → deny.
    let candidate: Value = serde_json::from_str(
        &tongxing_rules::reissue(tongxing_rules::BUILTIN_FILES[1].1, "candidate", Utc::now() - Duration::hours(2)).unwrap(),
    )
    .unwrap();
    let r = app.post("health", "/api/v1/policies/dry-run", json!({"policy": candidate, "since": (Utc::now() - Duration::hours(1)).to_rfc3339()}));
    assert_eq!(r.status, 200, "{r:?}");
    let rep = &r.body;
    assert_eq!(rep["events"], 4, "{rep}");
    assert_eq!(rep["changed"], 1, "{rep}");
    assert_eq!(rep["stricter"], 1);
    assert_eq!(rep["directions"]["pass→deny"], 1);
    assert_eq!(rep["by_checkpoint"]["CP1"]["changed"], 1);
    assert_eq!(rep["by_checkpoint"]["CP2"]["changed"], 0);
    assert_eq!(rep["by_reason"]["COMMUTER_NEGATIVE_WITHIN_WINDOW→COMMUTER_TEST_TOO_OLD"], 1, "{rep}");
    let sample = &rep["sample"][0];
    assert_eq!(sample["candidate"]["verdict"], "deny");
    // Pseudonymised: no document number anywhere in the report.
    assert!(!rep.to_string().contains(&c[..17]), "{rep}");
    assert_eq!(sample["person"].as_str().unwrap().len(), 12);
    // An invalid candidate is refused naming the rule; the dry run is audited; analysts cannot run it.
    let mut bad = builtin(1);
    bad["rules"][0]["Logic"] = json!({"nope": []});
    let r = app.post("health", "/api/v1/policies/dry-run", json!({"policy": bad}));
    assert_eq!(r.status, 422);
    assert!(r.body["field"].as_str().unwrap().starts_with("policy.rules["), "{r:?}");
    assert_eq!(app.post("analyst", "/api/v1/policies/dry-run", json!({"policy": candidate})).status, 403);
    let audit = app.get("health", "/api/v1/policies/audit");
    assert!(audit.body.as_array().unwrap().iter().any(|e| e["state"].as_str().unwrap().starts_with("dry-run beijing-2022-05-05")));
});

fn tongxing(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("RUST_LOG", "error").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn rules_cli() {
    let dir = std::env::temp_dir().join(format!("tongxing-rules-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str, v: Value| {
        let f = dir.join(name);
        std::fs::write(&f, v.to_string()).unwrap();
        f.to_str().unwrap().to_string()
    };
    // eval: an expression, or a rule file's Logic.
    let rule = p(
        "rule.json",
        json!({"Identifier": "X", "Logic": {"not-before": [{"plusTime": [{"var": "payload.t"}, 48, "hour"]}, {"plusTime": [{"var": "external.now"}, 0, "day"]}]}}),
    );
    let data = p(
        "data.json",
        json!({"payload": {"t": "2021-11-17T08:00:00+08:00"}, "external": {"now": "2021-11-19T07:59:00+08:00"}}),
    );
    assert_eq!(tongxing(&["rules", "eval", &rule, &data]), (0, "true\n".into(), String::new()));
    let bad = p("bad.json", json!({"plusTime": [{"var": "x"}, 1, "fortnight"]}));
    let (code, _, err) = tongxing(&["rules", "eval", &bad, &data]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid CertLogic expression"), "{err}");
    let throws = p("throws.json", json!({"in": [1, {"var": "payload.t"}]}));
    let (code, _, err) = tongxing(&["rules", "eval", &throws, &data]);
    assert_eq!(code, 2, "{err}");
    // check: the built-in policies are valid; a broken one names the rule.
    let policy = p("p.json", builtin(2));
    let (code, out, _) = tongxing(&["rules", "check", &policy]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: beijing-2022-11-22"), "{out}");
    let mut broken = builtin(2);
    broken["rules"][0]["Logic"] = json!({"var": 5});
    let (code, _, err) = tongxing(&["rules", "check", &p("broken.json", broken)]);
    assert_eq!(code, 2);
    assert!(err.contains("BJ-CODE-0001"), "{err}");
    // test: our own policies' rule folders all pass; a wrong expectation fails.
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../tongxing-rules/policies/tests/beijing-2021-11-17");
    let (code, out, _) = tongxing(&["rules", "test", folder]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{out}");
    let n: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 50, "{out}");
    let rdir = dir.join("R/BJ-T-1/tests");
    std::fs::create_dir_all(&rdir).unwrap();
    std::fs::write(
        dir.join("R/BJ-T-1/rule.json"),
        json!({"Identifier": "BJ-T-1", "Logic": {"var": "payload.ok"}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        rdir.join("a.json"),
        json!({"name": "ok", "payload": {"ok": true}, "external": {}, "expected": true}).to_string(),
    )
    .unwrap();
    std::fs::write(
        rdir.join("b.json"),
        json!({"name": "wrong", "payload": {"ok": true}, "external": {}, "expected": false}).to_string(),
    )
    .unwrap();
    let (code, out, _) = tongxing(&["rules", "test", dir.join("R").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.contains("FAILED BJ-T-1 / ") && out.contains("wrong"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
