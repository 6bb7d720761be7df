//! Results: idempotence, corrections with history, batches with per-row rejections.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::both;
use crate::helpers::*;

both!(fn resend_unchanged_change_corrects(b) {
    let app = App::spawn(b);
    let doc = nth_id("110105", 1);
    let t = Utc::now() - Duration::hours(5);
    let r = app.result("LAB1", "S1", &doc, t, "H1", "hospital", "pending");
    assert_eq!(r.body["outcome"], "accepted", "{r:?}");
    let r = app.result("LAB1", "S1", &doc, t, "H1", "hospital", "pending");
    assert_eq!(r.body["outcome"], "unchanged");
    let r = app.result("LAB1", "S1", &doc, t, "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "corrected");
    let r = app.result("LAB1", "S1", &doc, t, "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "unchanged");
    let h = app.get("lab", "/api/v1/results/LAB1/S1/history");
    let h = h.body.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!((h[0]["result"].as_str(), h[1]["result"].as_str()), (Some("pending"), Some("negative")));
    assert_eq!(h[1]["revision"], 2);
    // The result arrived before the person ever registered: the person now exists.
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "x"}));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["samples"][0]["result"], "negative");
});

both!(fn bad_results_are_refused_clearly(b) {
    let app = App::spawn(b);
    let doc = nth_id("110105", 1);
    let r = app.result("LAB1", "S1", &doc, Utc::now() + Duration::hours(2), "H1", "hospital", "negative");
    assert_eq!(r.status, 422);
    assert_eq!(r.body["field"], "sampled_at");
    assert!(r.body["detail"].as_str().unwrap().contains("future"));
    let r = app.result("LAB1", "S1", "110105194912310021", Utc::now(), "H1", "hospital", "negative");
    assert_eq!(r.body["field"], "document_number");
    let r = app.result("LAB1", "S1", &doc, Utc::now(), "H1", "clinic", "negative");
    assert_eq!(r.body["field"], "site_kind");
    assert!(r.body["detail"].as_str().unwrap().contains("hospital, community, service_area"));
    let r = app.result("LAB1", "S1", &doc, Utc::now(), "H1", "hospital", "maybe");
    assert_eq!(r.body["field"], "result");
    let r = app.post("lab", "/api/v1/results", json!({"lab": "LAB1", "sample_id": "S1", "document_number": doc,
        "sampled_at": "2021-11-17 08:30:00", "site": "H1", "site_kind": "hospital", "result": "negative"}));
    assert_eq!(r.body["field"], "sampled_at");
    assert!(r.body["detail"].as_str().unwrap().contains("RFC 3339"));
    // None of that wrote anything.
    assert_eq!(app.get("admin", "/api/v1/stats/overview").body["samples"], 0);
});

both!(fn batch_rejects_rows_not_the_batch(b) {
    let app = App::spawn(b);
    let t = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let row = |sid: &str, doc: &str, result: &str| json!({"lab": "LAB1", "sample_id": sid, "document_number": doc,
        "sampled_at": t, "site": "H1", "site_kind": "hospital", "result": result});
    let rows = vec![
        row("S1", &nth_id("110105", 1), "negative"),
        row("S2", "123", "negative"),
        row("S3", &nth_id("110105", 3), "negative"),
        row("S4", &nth_id("110105", 4), "nope"),
    ];
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["accepted"], 2);
    let rej = r.body["rejected"].as_array().unwrap();
    assert_eq!(rej.len(), 2);
    assert_eq!((rej[0]["index"].as_u64(), rej[0]["field"].as_str()), (Some(1), Some("results[1].document_number")));
    assert_eq!((rej[1]["index"].as_u64(), rej[1]["field"].as_str()), (Some(3), Some("results[3].result")));
    assert_eq!(r.body["outcomes"], json!(["accepted", "rejected", "accepted", "rejected"]));
    // The same batch again changes nothing; a changed row is a correction.
    let mut rows2 = vec![row("S1", &nth_id("110105", 1), "negative"), row("S3", &nth_id("110105", 3), "positive")];
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows2.clone()}));
    assert_eq!((r.body["unchanged"].as_u64(), r.body["corrected"].as_u64()), (Some(1), Some(1)));
    rows2.truncate(1);
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows2}));
    assert_eq!(r.body["unchanged"], 1);
    assert_eq!(app.get("admin", "/api/v1/stats/overview").body["samples"], 2);
});

both!(fn a_batch_behaves_like_its_rows_sent_one_by_one(b) {
    let app = App::spawn(b);
    let t = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let row = |doc: &str, result: &str| json!({"lab": "LAB1", "sample_id": "S1", "document_number": doc,
        "sampled_at": t, "site": "H1", "site_kind": "hospital", "result": result});
    let (a, c) = (nth_id("110105", 1), nth_id("110105", 2));
    // New, resent, corrected, resent, then moved to another person: all in one batch.
    let rows = vec![row(&a, "pending"), row(&a, "pending"), row(&a, "negative"), row(&a, "negative"), row(&c, "negative")];
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows}));
    assert_eq!(r.body["outcomes"], json!(["accepted", "unchanged", "corrected", "unchanged", "corrected"]), "{r:?}");
    let h = app.get("lab", "/api/v1/results/LAB1/S1/history");
    let h = h.body.as_array().unwrap();
    assert_eq!(h.iter().map(|v| v["revision"].as_i64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(h[2]["result"], "negative");
    // The latest version wins: the sample now belongs to the second person.
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": c, "purpose": "x"}));
    assert_eq!(r.body["samples"][0]["sample_id"], "S1");
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": a, "purpose": "x"}));
    assert_eq!(r.body["samples"].as_array().unwrap().len(), 0);
});

both!(fn new_and_mixed_batches_are_counted_right(b) {
    let app = App::spawn(b);
    let t = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let row = |sid: &str, n: u32, result: &str| json!({"lab": "LAB1", "sample_id": sid,
        "document_number": nth_id("110105", n), "sampled_at": t, "site": "H1", "site_kind": "hospital", "result": result});
    // A batch of new samples (written without looking anything up first).
    let rows: Vec<_> = (0..5).map(|i| row(&format!("M{i}"), 10 + i, "negative")).collect();
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows}));
    assert_eq!(r.body["accepted"], 5, "{r:?}");
    // Known, corrected and new in one batch: the first attempt finds M0 stored and is dropped
    // whole; the rows are then compared one by one.
    let rows = vec![row("M0", 10, "negative"), row("M1", 11, "positive"), row("M5", 15, "negative")];
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows}));
    assert_eq!(r.body["outcomes"], json!(["unchanged", "corrected", "accepted"]), "{r:?}");
    // New again, and a new one repeated inside its batch.
    let rows = vec![row("M6", 16, "negative"), row("M7", 17, "pending"), row("M7", 17, "negative")];
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows}));
    assert_eq!(r.body["outcomes"], json!(["accepted", "accepted", "corrected"]), "{r:?}");
    let rows = vec![row("M8", 18, "negative"), row("M9", 19, "negative")];
    let r = app.post("lab", "/api/v1/results/batch", json!({"results": rows}));
    assert_eq!(r.body["accepted"], 2, "{r:?}");
    assert_eq!(app.get("admin", "/api/v1/stats/overview").body["samples"], 10);
    let h = app.get("lab", "/api/v1/results/LAB1/M1/history");
    let h = h.body.as_array().unwrap();
    assert_eq!((h.len(), h[1]["result"].as_str()), (2, Some("positive")));
    // Each sample belongs to its person.
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": nth_id("110105", 18), "purpose": "x"}));
    assert_eq!(r.body["samples"][0]["sample_id"], "M8", "{r:?}");
});

both!(fn a_corrected_sampling_time_moves_the_sample(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "G1");
    let doc = nth_id("110105", 7);
    // Entered with a wrong date, 40 days ago: outside every window.
    let r = app.result("LAB1", "S7", &doc, Utc::now() - Duration::days(40), "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "accepted", "{r:?}");
    assert_eq!(app.verdict("CP1", &doc).0, "deny");
    // The lab corrects it to 20 hours ago: the check finds it in its new week.
    let r = app.result("LAB1", "S7", &doc, Utc::now() - Duration::hours(20), "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "corrected", "{r:?}");
    assert_eq!(app.verdict("CP1", &doc), ("pass".to_string(), "NEGATIVE_WITHIN_WINDOW".to_string()));
    // The record shows the last 90 days, newest first.
    let r = app.result("LAB1", "S8", &doc, Utc::now() - Duration::days(100), "H1", "hospital", "negative");
    assert_eq!(r.body["outcome"], "accepted", "{r:?}");
    let r = app.result("LAB1", "S9", &doc, Utc::now() - Duration::days(60), "H1", "hospital", "positive");
    assert_eq!(r.body["outcome"], "accepted", "{r:?}");
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "x"}));
    let ids: Vec<_> = r.body["samples"].as_array().unwrap().iter().map(|s| s["sample_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["S7", "S9"], "{r:?}");
});
