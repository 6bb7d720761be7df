//! Commuter applications: refused at once outside the policy; the registry's decisions.

use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

fn application(doc: &str) -> Value {
    json!({"document_number": doc, "name": "李娜", "phone": "13900000000", "kind": "worker",
        "residence_region": "131028", "residence_proof": "property_deed", "employer_name": "北京远航科技有限公司",
        "employer_uscc": "91350100M000100Y43", "work_region": "110105"})
}

both!(fn applications_are_checked_against_the_policy(b) {
    let app = App::spawn(b);
    let doc = nth_id("131028", 1);
    for (field, value, needle) in [
        ("residence_region", "130102", "surrounding regions"),
        ("residence_region", "999999", "not a GB/T 2260"),
        ("work_region", "131082", "not in the city"),
        ("employer_uscc", "91350100M000100Y44", "check character"),
        ("kind", "tourist", "worker, student, escorting_parent"),
        ("residence_proof", "selfie", "household_register"),
    ] {
        let mut a = application(&doc);
        a[field] = json!(value);
        let r = app.post("registry", "/api/v1/commuters", a);
        assert_eq!(r.status, 422, "{field}: {r:?}");
        assert_eq!(r.body["field"], field);
        assert!(r.body["detail"].as_str().unwrap().contains(needle), "{r:?}");
    }
    assert_eq!(app.get("admin", "/api/v1/stats/overview").body["commuters"], 0);
    let r = app.post("registry", "/api/v1/commuters", application(&doc));
    assert_eq!(r.status, 201, "{r:?}");
    // A second application while pending is a conflict, and changes nothing (not even the name).
    let mut again = application(&doc);
    again["name"] = json!("王五");
    assert_eq!(app.post("registry", "/api/v1/commuters", again).status, 409);
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "review", "reveal": true}));
    assert_eq!(r.body["name"], "李娜");
    // Reject needs a reason; approve sets the validity; revoke is final until a new application.
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "reject"}));
    assert_eq!(r.body["field"], "reason");
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "approve"}));
    assert_eq!(r.status, 200);
    assert!(r.body["valid_until"].is_string());
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "revoke", "reason": "moved to Beijing"}));
    assert_eq!(r.body["status"], "revoked");
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "approve"}));
    assert_eq!(r.status, 409, "{r:?}");
    // The officer of a checkpoint cannot decide.
    assert_eq!(app.post("officer", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "approve"})).status, 403);
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "review"}));
    assert_eq!(r.body["commuter"]["status"], "revoked");
    assert_eq!(r.body["commuter"]["decision_reason"], "moved to Beijing");
});
