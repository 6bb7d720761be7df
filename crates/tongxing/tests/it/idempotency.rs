//! `Idempotency-Key`: a repeated POST with the same key and body gets the first answer again
//! (and has no second effect), the same key with another body is a 422 naming the header, and a
//! refusal is kept like any answer.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

/// POST with an Idempotency-Key: (status, headers, body).
pub fn post_keyed(base: &str, token: &str, path: &str, key: &str, body: &Value) -> (u16, Vec<(String, String)>, Value) {
    let r = ureq::post(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Idempotency-Key", key)
        .send_json(body.clone());
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    let status = r.status();
    let headers = r.headers_names().iter().map(|n| (n.clone(), r.header(n).unwrap_or("").to_string())).collect();
    let body = r.into_json().unwrap_or(Value::Null);
    (status, headers, body)
}

fn replayed(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(n, v)| n == "idempotent-replayed" && v == "true")
}

both!(fn a_repeated_key_replays_the_first_answer(b) {
    let app = App::spawn(b);
    let base = app.server.base.clone();
    let lab = app.tokens["lab"].clone();
    let doc = nth_id("110105", 41);
    let sample = json!({"lab": "LAB1", "sample_id": "IDEM-1", "document_number": doc,
        "sampled_at": (Utc::now() - Duration::hours(1)).to_rfc3339(), "site": "H1", "site_kind": "hospital", "result": "negative"});
    let first = post_keyed(&base, &lab, "/api/v1/results", "key-1", &sample);
    assert_eq!((first.0, &first.2["outcome"]), (200, &json!("accepted")));
    assert!(!replayed(&first.1));
    // Sent again with the key: the first answer ("accepted"), not a second effect ("unchanged").
    let again = post_keyed(&base, &lab, "/api/v1/results", "key-1", &sample);
    assert_eq!((again.0, &again.2), (first.0, &first.2));
    assert!(replayed(&again.1), "{:?}", again.1);
    let content_type = again.1.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.as_str());
    assert_eq!(content_type, Some("application/json"));
    // Without a key it is an ordinary resend.
    assert_eq!(app.post("lab", "/api/v1/results", sample.clone()).body["outcome"], "unchanged");
    // The same key with another body, or on another endpoint: refused, naming the header.
    let mut other = sample.clone();
    other["result"] = json!("positive");
    let r = post_keyed(&base, &lab, "/api/v1/results", "key-1", &other);
    assert_eq!((r.0, r.2["field"].as_str()), (422, Some("Idempotency-Key")), "{:?}", r.2);
    let r = post_keyed(&base, &lab, "/api/v1/results/batch", "key-1", &json!({"results": [sample]}));
    assert_eq!(r.0, 422);
    assert_eq!(app.get("lab", "/api/v1/results/LAB1/IDEM-1/history").body.as_array().unwrap().len(), 1);
    // Keys belong to a token: another token's same key is another request.
    let other_lab = app.db.scoped_token("lab", &[]);
    let r = post_keyed(&base, &other_lab, "/api/v1/results", "key-1", &other);
    assert_eq!((r.0, &r.2["outcome"]), (200, &json!("corrected")));

    // A refusal is an answer too: kept and replayed.
    let checkpoint = json!({"id": "CP-IDEM", "name": "幂等检查站", "kind": "nowhere"});
    let admin = app.tokens["admin"].clone();
    let r1 = post_keyed(&base, &admin, "/api/v1/checkpoints", "cp-1", &checkpoint);
    let r2 = post_keyed(&base, &admin, "/api/v1/checkpoints", "cp-1", &checkpoint);
    assert_eq!((r1.0, r2.0), (422, 422));
    assert_eq!(r1.2, r2.2);
    assert!(replayed(&r2.1));
    // A key that is not one: refused before anything runs.
    let r = post_keyed(&base, &admin, "/api/v1/checkpoints", &"k".repeat(300), &checkpoint);
    assert_eq!((r.0, r.2["field"].as_str()), (422, Some("Idempotency-Key")));
    let r = post_keyed(&base, &admin, "/api/v1/checkpoints", "bad key", &checkpoint);
    assert_eq!(r.0, 422);
    // Created once under a key; the replay is the same 201.
    let good = json!({"id": "CP-IDEM", "name": "幂等检查站", "kind": "police"});
    let c1 = post_keyed(&base, &admin, "/api/v1/checkpoints", "cp-2", &good);
    let c2 = post_keyed(&base, &admin, "/api/v1/checkpoints", "cp-2", &good);
    assert_eq!((c1.0, c2.0), (201, 201));
    assert_eq!(c1.2, c2.2);
    // Without a token the key changes nothing: the request is refused as ever.
    let r = ureq::post(&format!("{base}/api/v1/checkpoints")).set("Idempotency-Key", "cp-3").send_json(good);
    assert!(matches!(r, Err(ureq::Error::Status(401, _))));
});
