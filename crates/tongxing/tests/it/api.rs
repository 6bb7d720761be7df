//! Authentication, roles, masking and the access log; the operator's endpoints.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::both;
use crate::helpers::*;

both!(fn roles_and_tokens(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 1);
    // No token, a wrong token.
    let r = app.call("POST", "/api/v1/checks", None, Some(json!({"checkpoint_id": "CP1", "document_number": doc})));
    assert_eq!(r.status, 401);
    assert_eq!(r.content_type, "application/problem+json");
    let r = app.call("POST", "/api/v1/checks", Some("tx_nope"), Some(json!({"checkpoint_id": "CP1", "document_number": doc})));
    assert_eq!(r.status, 401);
    // A lab cannot read a person; an officer cannot set a colour; an analyst sees no person.
    assert_eq!(app.post("lab", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "x"})).status, 403);
    assert_eq!(app.put("officer", "/api/v1/people/code", json!({"document_number": doc, "colour": "red", "reason": "x"})).status, 403);
    assert_eq!(app.post("analyst", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "x"})).status, 403);
    assert_eq!(app.post("lab", "/api/v1/checks", json!({"checkpoint_id": "CP1", "document_number": doc})).status, 403);
    // Scopes: a lab token for LAB1 cannot report for LAB2; an officer for CP1 cannot check at CP2.
    app.checkpoint("CP2", "京沪高速");
    let lab1 = app.db.scoped_token("lab", &["LAB1"]);
    let body = |lab: &str| json!({"lab": lab, "sample_id": "S1", "document_number": doc, "sampled_at": Utc::now().to_rfc3339(),
        "site": "H1", "site_kind": "hospital", "result": "negative"});
    assert_eq!(app.call("POST", "/api/v1/results", Some(&lab1), Some(body("LAB1"))).status, 200);
    let r = app.call("POST", "/api/v1/results", Some(&lab1), Some(body("LAB2")));
    assert_eq!(r.status, 403, "{r:?}");
    let cp1 = app.db.scoped_token("officer", &["CP1"]);
    assert_eq!(app.call("POST", "/api/v1/checks", Some(&cp1), Some(json!({"checkpoint_id": "CP1", "document_number": doc}))).status, 200);
    assert_eq!(app.call("POST", "/api/v1/checks", Some(&cp1), Some(json!({"checkpoint_id": "CP2", "document_number": doc}))).status, 403);
});

both!(fn person_reads_are_masked_and_audited(b) {
    let app = App::spawn(b);
    let doc = nth_id("110105", 7);
    let r = app.post("registry", "/api/v1/people", json!({"document_number": doc, "name": "张三丰", "phone": "13812345678", "residence_region": "110105"}));
    assert_eq!(r.status, 201, "{r:?}");
    app.negative(&doc, Duration::hours(3));
    // A purpose is required.
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc}));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "purpose");
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "case review"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["name"], "张**");
    assert_eq!(r.body["phone"], "138****5678");
    assert_eq!(r.body["document_number"], format!("11**************{}", &doc[16..]));
    assert_eq!(r.body["samples"][0]["result"], "negative");
    // Admin may read but not reveal; registry may reveal.
    assert_eq!(app.post("admin", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "x", "reveal": true})).status, 403);
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "commuter review", "reveal": true}));
    assert_eq!(r.body["name"], "张三丰");
    assert_eq!(r.body["document_number"], doc);
    // Every read is in the access log, with who, why and how.
    let log = app.post("registry", "/api/v1/people/access-log", json!({"document_number": doc, "purpose": "audit"}));
    let log = log.body.as_array().unwrap().clone();
    let actions: Vec<_> = log.iter().map(|e| (e["role"].as_str().unwrap(), e["action"].as_str().unwrap(), e["purpose"].as_str().unwrap())).collect();
    assert_eq!(actions, vec![("health", "read", "case review"), ("registry", "reveal", "commuter review"), ("registry", "read-access-log", "audit")]);
    // Unknown people are 404s.
    assert_eq!(app.post("health", "/api/v1/people/lookup", json!({"document_number": nth_id("110105", 8), "purpose": "x"})).status, 404);
});

both!(fn codes_need_reasons_and_keep_history(b) {
    let app = App::spawn(b);
    let doc = nth_id("110105", 1);
    let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "yellow"}));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "reason");
    let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "purple", "reason": "x"}));
    assert_eq!(r.body["field"], "colour");
    assert!(r.body["detail"].as_str().unwrap().contains("green, yellow, red"));
    let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "yellow", "popup": "nope"}));
    assert_eq!(r.body["field"], "popup");
    let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "yellow", "popup": "test_overdue",
        "expires_at": (Utc::now() + Duration::days(2)).to_rfc3339()}));
    assert_eq!(r.status, 200, "{r:?}");
    app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "green"}));
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "x"}));
    assert_eq!(r.body["code_colour"], "green");
    let h = r.body["code_history"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["colour"], "yellow");
    assert_eq!(h[0]["reason"], "未按要求完成核酸检测");
});

both!(fn operator_endpoints(b) {
    let app = App::spawn(b);
    let r = app.call("GET", "/healthz", None, None);
    assert_eq!(r.status, 200);
    let r = app.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200);
    assert!(r.body["paths"]["/api/v1/checks"]["post"].is_object(), "{:?}", r.body["paths"]);
    assert!(r.body["components"]["schemas"]["CheckOutcome"].is_object());
    app.checkpoint("CP1", "京哈高速");
    app.check("CP1", &nth_id("110105", 1));
    let r = app.call("GET", "/metrics", None, None);
    let text = r.body.as_str().unwrap();
    assert!(text.contains("tongxing_checks_total{verdict=\"deny\",reason=\"NO_VALID_TEST\"} 1"), "{text}");
    assert!(text.contains("tongxing_http_request_duration_seconds_bucket{route=\"/api/v1/checks\""), "{text}");
    // Bad JSON and unknown routes are problems too.
    let r = app.call("POST", "/api/v1/checks", Some(&app.tokens["officer"]), Some(json!({"checkpoint_id": 5})));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "checkpoint_id");
    let r = app.call("GET", "/api/v1/nope", None, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.content_type, "application/problem+json");
});

both!(fn a_lapsed_colour_is_green_everywhere(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 41);
    app.negative(&doc, Duration::hours(2));
    let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "yellow", "popup": "test_overdue",
        "expires_at": (Utc::now() + Duration::seconds(2)).to_rfc3339()}));
    assert_eq!(r.status, 200, "{r:?}");
    let lookup = || app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "lapse"})).body["code_colour"].clone();
    assert_eq!(lookup(), "yellow");
    assert_eq!(app.verdict("CP1", &doc).0, "deny");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // The record and the checkpoint agree: the colour has lapsed.
    assert_eq!(lookup(), "green");
    assert_eq!(app.check("CP1", &doc).body["code_colour"], "green");
    assert_eq!(app.verdict("CP1", &doc).0, "pass");
});
