//! The decision table of the foundation issue, over HTTP, with entry events recorded.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::both;
use crate::helpers::*;

fn pair(v: &str, c: &str) -> (String, String) {
    (v.to_string(), c.to_string())
}

both!(fn visitor_rows(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let a = nth_id("110105", 1);
    app.negative(&a, Duration::hours(47));
    assert_eq!(app.verdict("CP1", &a), pair("pass", "NEGATIVE_WITHIN_WINDOW"));

    let old = nth_id("110105", 2);
    app.negative(&old, Duration::hours(49));
    assert_eq!(app.verdict("CP1", &old), pair("deny", "TEST_TOO_OLD"));

    // Never seen: deny, not an error.
    assert_eq!(app.verdict("CP1", &nth_id("110105", 3)), pair("deny", "NO_VALID_TEST"));

    // Only a pending result from an ordinary site.
    let p = nth_id("110105", 4);
    let r = app.result("LAB1", "P4", &p, Utc::now() - Duration::hours(2), "C1", "community", "pending");
    assert_eq!(r.status, 200);
    assert_eq!(app.verdict("CP1", &p), pair("deny", "NO_VALID_TEST"));

    // Yellow / red codes whatever the tests.
    for (i, colour) in ["yellow", "red"].iter().enumerate() {
        let d = nth_id("110105", 10 + i as u32);
        app.negative(&d, Duration::hours(2));
        let r = app.put("health", "/api/v1/people/code", json!({"document_number": d, "colour": colour, "popup": "risk_county_stay"}));
        assert_eq!(r.status, 200, "{r:?}");
        let (v, code) = app.verdict("CP1", &d);
        assert_eq!(v, "deny");
        assert_eq!(code, format!("CODE_{}", colour.to_uppercase()));
        let r = app.check("CP1", &d);
        assert!(r.body["reasons"][0]["message_zh"].as_str().unwrap().contains("14天内到过"), "{r:?}");
    }

    // Latest positive beats an older negative.
    let pos = nth_id("110105", 20);
    app.negative(&pos, Duration::hours(30));
    app.result("LAB1", "POS20", &pos, Utc::now() - Duration::hours(5), "H1", "hospital", "positive");
    assert_eq!(app.verdict("CP1", &pos), pair("deny", "POSITIVE_RESULT"));

    // Pending at a designated service-area test point: conditional with the letter.
    let sa = nth_id("110105", 30);
    app.test_point_sample("SA-JINGHA-XIANGHE", "SA30", &sa, Duration::hours(3), None);
    assert_eq!(app.verdict("CP1", &sa), pair("deny", "COMMITMENT_LETTER_REQUIRED"));
    // A bare flag is not evidence: the request refuses it.
    let r = app.post("officer", "/api/v1/checks", json!({"checkpoint_id": "CP1", "document_number": sa, "commitment_letter": true}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("commitment_letter")), "{r:?}");
    app.sign_letter("SA-JINGHA-XIANGHE", "SA30", &sa);
    let r = app.check("CP1", &sa);
    assert_eq!(r.body["verdict"], "conditional", "{r:?}");
    assert_eq!(r.body["reasons"][0]["code"], "PENDING_WITH_COMMITMENT");

    // The deny message names the nearest test point on the checkpoint's road.
    let r = app.check("CP1", &nth_id("110105", 3));
    assert!(r.body["reasons"][0]["message_zh"].as_str().unwrap().contains("香河"), "{r:?}");
    assert!(r.body["reasons"][0]["message_en"].as_str().unwrap().contains("Xianghe"), "{r:?}");
});

both!(fn invalid_document_is_a_problem_and_records_nothing(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let before = app.get("admin", "/api/v1/stats/overview").body["entry_events"].as_i64().unwrap();
    for (bad, needle) in [
        ("110105194912310021", "check character"),
        ("110105491231002", "15-digit"),
        ("11010519490231002", "18 characters"),
    ] {
        let r = app.check("CP1", bad);
        assert_eq!(r.status, 422, "{bad}: {r:?}");
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(r.body["field"], "document_number");
        assert!(r.body["detail"].as_str().unwrap().contains(needle), "{r:?}");
    }
    // An unknown checkpoint is named too.
    let r = app.check("NOPE", &nth_id("110105", 1));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "checkpoint_id");
    let after = app.get("admin", "/api/v1/stats/overview").body["entry_events"].as_i64().unwrap();
    assert_eq!(before, after);
});

both!(fn commuter_sequence(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let c = nth_id("131082", 1);
    let r = app.post("registry", "/api/v1/commuters", json!({
        "document_number": c, "name": "王伟", "phone": "13800000000", "kind": "worker",
        "residence_region": "131082", "residence_proof": "lease", "employer_name": "北京星河科技有限公司",
        "employer_uscc": "91350100M000100Y43", "work_region": "110105"}));
    assert_eq!(r.status, 201, "{r:?}");
    // Pending is a visitor: a 3-day test is too old.
    app.negative(&c, Duration::days(3));
    assert_eq!(app.verdict("CP1", &c), pair("deny", "TEST_TOO_OLD"));
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": c, "action": "approve"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "approved");
    // Approved, never checked: the first check needs 48 h.
    assert_eq!(app.verdict("CP1", &c), pair("deny", "FIRST_CHECK_NEEDS_48H"));
    app.negative(&c, Duration::hours(20));
    let r = app.check("CP1", &c);
    assert_eq!(r.body["verdict"], "pass");
    assert_eq!(r.body["reasons"][0]["code"], "COMMUTER_FIRST_CHECK");
    assert_eq!(r.body["commuter"], true);
    // The first check is recorded on the certification.
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": c, "purpose": "test"}));
    assert!(r.body["commuter"]["first_checked_at"].is_string(), "{r:?}");
});

both!(fn commuter_later_days(b) {
    // A commuter whose first check is done: 13-day test passes, 15-day does not.
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let c = nth_id("120104", 1);
    let r = app.post("registry", "/api/v1/commuters", json!({
        "document_number": c, "kind": "student", "residence_region": "120104", "residence_proof": "household_register",
        "employer_name": "北京某中学", "employer_uscc": "91350100M000100Y43", "work_region": "110108"}));
    assert_eq!(r.status, 201, "{r:?}");
    app.post("registry", "/api/v1/commuters/decision", json!({"document_number": c, "action": "approve"}));
    app.negative(&c, Duration::hours(20));
    assert_eq!(app.verdict("CP1", &c).0, "pass");
    // A later check with only an old test: deny beyond 14 days.
    let d = nth_id("120104", 2);
    app.post("registry", "/api/v1/commuters", json!({
        "document_number": d, "kind": "worker", "residence_region": "120104", "residence_proof": "lease",
        "employer_name": "x", "employer_uscc": "91350100M000100Y43", "work_region": "110108"}));
    app.post("registry", "/api/v1/commuters/decision", json!({"document_number": d, "action": "approve"}));
    app.negative(&d, Duration::hours(30));
    assert_eq!(app.verdict("CP1", &d), pair("pass", "COMMUTER_FIRST_CHECK"));
    // A third commuter shows the 13/15-day edges after the first check.
    let e = nth_id("120104", 3);
    app.post("registry", "/api/v1/commuters", json!({
        "document_number": e, "kind": "worker", "residence_region": "120104", "residence_proof": "lease",
        "employer_name": "x", "employer_uscc": "91350100M000100Y43", "work_region": "110108"}));
    app.post("registry", "/api/v1/commuters/decision", json!({"document_number": e, "action": "approve"}));
    app.negative(&e, Duration::hours(40));
    assert_eq!(app.verdict("CP1", &e).0, "pass"); // first check done now
    // Correct the 40-hour sample's time to 13 days ago (a correction, latest wins).
    let lookup = app.post("registry", "/api/v1/people/lookup", json!({"document_number": e, "purpose": "test"}));
    let s = &lookup.body["samples"][0];
    let (lab, sid) = (s["lab"].as_str().unwrap(), s["sample_id"].as_str().unwrap());
    let r = app.result(lab, sid, &e, Utc::now() - Duration::days(13), "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "corrected");
    assert_eq!(app.verdict("CP1", &e), pair("pass", "COMMUTER_NEGATIVE_WITHIN_WINDOW"));
    let r = app.result(lab, sid, &e, Utc::now() - Duration::days(15), "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "corrected");
    assert_eq!(app.verdict("CP1", &e), pair("deny", "COMMUTER_TEST_TOO_OLD"));
    // Suspended: a visitor again.
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": e, "action": "suspend", "reason": "employer letter expired"}));
    assert_eq!(r.status, 200, "{r:?}");
    let r = app.check("CP1", &e);
    assert_eq!(r.body["reasons"][0]["code"], "TEST_TOO_OLD");
    assert!(r.body["reasons"].as_array().unwrap().iter().any(|x| x["code"] == "COMMUTER_NOT_ACTIVE"));
});

both!(fn vehicle_and_entry_events(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let (a, c) = (nth_id("110105", 1), nth_id("110105", 2));
    app.negative(&a, Duration::hours(5));
    let r = app.post("officer", "/api/v1/checks/vehicle", json!({"checkpoint_id": "CP1", "plate": "冀R12345",
        "occupants": [{"document_number": a}, {"document_number": c}]}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["occupants"][0]["verdict"], "pass");
    assert_eq!(r.body["occupants"][1]["verdict"], "deny");
    // One bad number: nothing recorded, the occupant is named.
    let r = app.post("officer", "/api/v1/checks/vehicle", json!({"checkpoint_id": "CP1", "plate": "冀R12345",
        "occupants": [{"document_number": a}, {"document_number": "110105194912310021"}]}));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "occupants[1].document_number");
    let events = app.get("admin", "/api/v1/entries");
    let events = events.body.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["plate"], "冀R12345");
    assert_eq!(events[0]["policy_version"], "2021-11-17-test");
    assert!(events[0]["rule_versions"].as_array().unwrap().iter().any(|r| r[0] == "BJ-NAT-0002"), "{:?}", events[0]);
    assert_eq!(events[0]["verdict"], "pass");
    assert_eq!(events[0]["reasons"][0]["code"], "NEGATIVE_WITHIN_WINDOW");
    assert!(events[0]["document"].as_str().unwrap().contains('*'));
    // Analysts see counts, not people.
    assert_eq!(app.get("analyst", "/api/v1/entries").status, 403);
    let v = app.get("analyst", "/api/v1/stats/verdicts");
    assert_eq!(v.status, 200);
    let total: i64 = v.body.as_array().unwrap().iter().map(|x| x["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 2);
});
