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

both!(fn a_commuter_list_is_previewed_then_imported_over_the_api(b) {
    let app = App::spawn(b);
    let (a, c) = (nth_id("131082", 71), nth_id("131082", 72));
    let csv = format!(
        "document_number,kind,residence_region,residence_proof,employer_name,employer_uscc,work_region\n\
         {a},worker,131082,lease,北京某某科技有限公司,91350100M000100Y43,110105\n\
         {c},worker,110105,lease,北京某某科技有限公司,91350100M000100Y43,110105\n\
         oops\n"
    );
    let approved = |app: &App| app.get("registry", "/api/v1/commuters/queue?status=approved").body.as_array().unwrap().len();
    let r = app.post("registry", "/api/v1/commuters/import/preview", json!({"csv": csv}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["good"], 1);
    let lines: Vec<u64> = r.body["bad"].as_array().unwrap().iter().map(|b| b["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [3, 4]);
    assert!(r.body["bad"][0]["reason"].as_str().unwrap().contains("residence_region"), "{:?}", r.body);
    assert_eq!(r.body["bad"][0]["document"], format!("13**************{}", &c[16..]));
    assert_eq!(approved(&app), 0, "a preview writes nothing");
    let r = app.post("registry", "/api/v1/commuters/import/preview", json!({"csv": "name\nx\n"}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("csv")), "{r:?}");
    assert_eq!(app.post("health", "/api/v1/commuters/import", json!({"csv": csv})).status, 403);
    let r = app.post("registry", "/api/v1/commuters/import", json!({"csv": csv}));
    assert_eq!((r.status, &r.body["accepted"], r.body["rejected"].as_array().unwrap().len()), (200, &json!(1), 2), "{r:?}");
    assert_eq!(approved(&app), 1);
    let r = app.post("registry", "/api/v1/commuters/import", json!({"csv": csv}));
    assert_eq!((&r.body["accepted"], &r.body["unchanged"]), (&json!(0), &json!(1)), "imported twice: nothing new");
});

both!(fn colours_from_a_file_over_the_api_all_or_nothing(b) {
    let app = App::spawn(b);
    let (a, c) = (nth_id("110105", 73), nth_id("110105", 74));
    let colour = |app: &App, doc: &str| {
        let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "test"}));
        r.body["code_colour"].as_str().unwrap_or("not registered").to_string()
    };
    let bad = format!("document_number,colour,reason\n{a},yellow,contact\n{c},red,\n");
    let r = app.post("health", "/api/v1/people/codes/preview", json!({"csv": bad}));
    assert_eq!((r.status, &r.body["yellow"], r.body["bad"][0]["line"].as_u64()), (200, &json!(1), Some(3)), "{r:?}");
    let r = app.post("health", "/api/v1/people/codes", json!({"csv": bad}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("csv line 3")), "{r:?}");
    assert_eq!(colour(&app, &a), "not registered", "nothing was set, nobody registered");
    let r = app.post("health", "/api/v1/people/codes", json!({"csv": "document_number,colour\n\u{7}\n"}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("csv")));
    let good = format!("document_number,colour,reason\n{a},yellow,contact\n{c},red,case\n");
    assert_eq!(app.post("registry", "/api/v1/people/codes", json!({"csv": good})).status, 403);
    let r = app.post("health", "/api/v1/people/codes", json!({"csv": good}));
    assert_eq!((r.status, &r.body["set"]), (200, &json!(2)), "{r:?}");
    assert_eq!((colour(&app, &a), colour(&app, &c)), ("yellow".into(), "red".into()));
});
