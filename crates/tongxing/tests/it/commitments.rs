//! Entry on a commitment letter and every pending result followed to its end: the letter,
//! conditional entry, a negative that fulfils, a positive that alerts (with the entries and the
//! co-travellers) and turns the code red, the overdue scan at the deadline and not before (time
//! injected into the use case), pools, and a re-sent result that raises nothing new.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::both;
use crate::helpers::*;

const TP: &str = "SA-JINGHA-XIANGHE";

/// The alerts in the database, newest first (read directly: what the API lists).
fn alerts(app: &App) -> Vec<tongxing_store::AlertRecord> {
    let url = app.db.url.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            let store = tongxing_store::Store::connect(&url).await.unwrap();
            let a = store.alerts(&tongxing_store::AlertFilter { limit: 100, ..Default::default() }).await.unwrap();
            store.close().await;
            a
        })
    })
    .join()
    .unwrap()
}

fn result(app: &App, sample: &str, doc: &str, age: Duration, result: &str) -> Resp {
    app.post(
        "lab",
        "/api/v1/results",
        json!({"lab": TP, "sample_id": sample, "document_number": doc, "sampled_at": (Utc::now() - age).to_rfc3339(),
               "site": TP, "site_kind": "service_area", "result": result}),
    )
}

fn colour(app: &App, doc: &str) -> String {
    app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "follow-up"})).body["code_colour"]
        .as_str()
        .unwrap()
        .to_string()
}

both!(fn a_letter_lets_in_and_a_negative_fulfils_it(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("120104", 61);
    app.test_point_sample(TP, "T61", &doc, Duration::hours(2), None);
    // Without a letter: deny, saying where to sign.
    let r = app.check("CP1", &doc);
    assert_eq!((r.body["verdict"].as_str(), r.body["reasons"][0]["code"].as_str()), (Some("deny"), Some("COMMITMENT_LETTER_REQUIRED")));
    assert!(r.body["reasons"][0]["message_zh"].as_str().unwrap().contains("服务区检测点签署"), "{r:?}");
    // The letter served, signed on the test point's device: a consent record.
    let letter = app.call("GET", "/api/v1/letter", None, None).body;
    assert!(letter["text_zh"].as_str().unwrap().contains("承诺"));
    assert_eq!(letter["sha256"].as_str().unwrap().len(), 64);
    let bad = app.post("test_point", "/api/v1/commitments", json!({"document_number": doc, "test_point": TP, "sample_id": "T61",
        "letter_version": letter["version"], "letter_sha256": "00".repeat(32)}));
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("letter_sha256")), "{bad:?}");
    let signed = app.sign_letter(TP, "T61", &doc);
    assert_eq!(signed.body["status"], "pending");
    assert_eq!(signed.body["signed_via"], "test_point_device");
    assert!(signed.body["message_en"].as_str().unwrap().starts_with("Commitment pending: result expected by"), "{signed:?}");
    // Signing again is the same record.
    let again = app.post("test_point", "/api/v1/commitments", json!({"document_number": doc, "test_point": TP, "sample_id": "T61",
        "letter_version": letter["version"], "letter_sha256": letter["sha256"]}));
    assert_eq!((again.status, again.body["id"].clone()), (200, signed.body["id"].clone()));
    // Conditional entry, recorded as such.
    let r = app.check("CP1", &doc);
    assert_eq!((r.body["verdict"].as_str(), r.body["reasons"][0]["code"].as_str()), (Some("conditional"), Some("PENDING_WITH_COMMITMENT")));
    let entries = app.get("admin", "/api/v1/entries").body;
    assert_eq!(entries.as_array().unwrap().last().unwrap()["verdict"], "conditional");
    // The negative result fulfils the commitment; no alert.
    assert_eq!(result(&app, "T61", &doc, Duration::hours(2), "negative").status, 200);
    assert!(alerts(&app).is_empty());
    let r = app.check("CP1", &doc);
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    // A sample whose result is known takes no letter.
    let r = app.post("test_point", "/api/v1/commitments", json!({"document_number": doc, "test_point": TP, "sample_id": "T61",
        "letter_version": letter["version"], "letter_sha256": letter["sha256"]}));
    assert_eq!(r.status, 200, "the existing record is returned: {r:?}");
    assert_eq!(r.body["status"], "fulfilled");
});

both!(fn a_positive_alerts_with_the_entries_and_the_co_travellers(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("120104", 62);
    let companion = nth_id("120104", 63);
    app.negative(&companion, Duration::hours(5));
    app.test_point_sample(TP, "T62", &doc, Duration::hours(2), None);
    app.sign_letter(TP, "T62", &doc);
    let r = app.post("officer", "/api/v1/checks/vehicle", json!({"checkpoint_id": "CP1", "plate": "冀R62062",
        "occupants": [{"document_number": doc}, {"document_number": companion}]}));
    assert_eq!(r.body["occupants"][0]["verdict"], "conditional", "{r:?}");
    // The positive result: in the same transaction, the commitment ends, the code turns red and
    // the alert is written with what the people who act need.
    assert_eq!(result(&app, "T62", &doc, Duration::hours(2), "positive").status, 200);
    let a = alerts(&app);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].kind.as_str(), a[0].status.as_str()), ("positive", "open"));
    let p = &a[0].payload;
    assert_eq!(p["sample"]["sample_id"], "T62");
    assert_eq!(p["sample"]["result"], "positive");
    assert_eq!(p["entries"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["entries"][0]["plate"], "冀R62062");
    assert_eq!(p["co_travellers"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["co_travellers"][0]["document"], format!("12**************{}", &companion[16..]));
    assert_eq!(colour(&app, &doc), "red");
    assert_eq!(app.verdict("CP1", &doc), ("deny".to_string(), "CODE_RED".to_string()));
    // The same result sent again raises nothing new.
    assert_eq!(result(&app, "T62", &doc, Duration::hours(2), "positive").status, 200);
    assert_eq!(alerts(&app).len(), 1);
});

both!(fn a_positive_pool_turns_its_members_yellow_with_one_alert(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let members: Vec<String> = (64..67).map(|n| nth_id("120104", n)).collect();
    for (i, m) in members.iter().enumerate() {
        app.test_point_sample(TP, &format!("P{i}"), m, Duration::hours(2), Some("POOL-1"));
    }
    app.test_point_sample(TP, "Q0", &nth_id("120104", 67), Duration::hours(2), Some("POOL-2"));
    let r = app.post("lab", "/api/v1/pools/POOL-1/result", json!({"lab": TP, "result": "positive"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["members"], 3);
    for m in &members {
        assert_eq!(colour(&app, m), "yellow");
    }
    let a = alerts(&app);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, "pool_positive");
    assert_eq!(a[0].payload["members"].as_array().unwrap().len(), 3);
    // The other pool, negative: its member's sample is negative now.
    let r = app.post("lab", "/api/v1/pools/POOL-2/result", json!({"lab": TP, "result": "negative"}));
    assert_eq!(r.status, 200, "{r:?}");
    let person = app.post("health", "/api/v1/people/lookup", json!({"document_number": nth_id("120104", 67), "purpose": "pool"}));
    assert_eq!(person.body["samples"][0]["result"], "negative");
    assert_eq!(app.post("lab", "/api/v1/pools/NOPE/result", json!({"lab": TP, "result": "negative"})).status, 404);
    let r = app.post("lab", "/api/v1/pools/POOL-2/result", json!({"lab": TP, "result": "pending"}));
    assert_eq!(r.status, 422, "{r:?}");
});

// The overdue scan, with the time injected into the use case: nothing before the deadline, an
// alert and a yellow code at it, and the late negative lifts the yellow.
both!(fn no_result_by_the_deadline_is_overdue_and_not_before(b) {
    let db = TestDb::new(b);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = tongxing_store::Store::connect(&db.url).await.unwrap();
        let app = tongxing_app::App::new(store.clone(), vec![tongxing_domain::Policy::beijing_2021_11_17()]);
        let now = Utc::now();
        let (_, text) = tongxing_rules::BUILTIN_FILES[0];
        let rs = tongxing_rules::RuleSet::from_json(&tongxing_rules::reissue(text, "t", now - Duration::days(1)).unwrap()).unwrap();
        store.publish_policy(rs.id(), rs.version(), &tongxing_rules::reissue(text, "t", now - Duration::days(1)).unwrap(), "t", now).await.unwrap();
        store.activate_policy(rs.id(), rs.version(), "t", now).await.unwrap();
        app.reload_rules().await.unwrap();
        let doc = tongxing_app::input::document(None, &nth_id("120104", 68), "", now).unwrap();
        // Stored to the millisecond.
        let sampled = chrono::DateTime::from_timestamp_millis((now - Duration::hours(1)).timestamp_millis()).unwrap();
        let sample = tongxing_app::commitment::TestPointSample { test_point: TP, sample_id: "T68", document: doc.clone(), sampled_at: sampled, pool_id: None };
        app.register_test_point_sample(&sample, "tp", now).await.unwrap();
        let letter = app.letter();
        let signing = tongxing_app::commitment::Signing { document: doc.clone(), lab: TP, sample_id: "T68",
            letter_version: &letter.version, letter_sha256: &letter.sha256, signed_via: "test_point_device" };
        let (c, _) = app.sign_letter(&signing, "tp", now).await.unwrap();
        let deadline = sampled + Duration::hours(24);
        assert_eq!(c.result_expected_by, deadline);
        // A second before the deadline: nothing.
        assert_eq!(app.scan_overdue(deadline - Duration::seconds(1), 1000).await.unwrap(), 0);
        // At it: one overdue alert, the code yellow; scanning again raises nothing new.
        assert_eq!(app.scan_overdue(deadline, 1000).await.unwrap(), 1);
        assert_eq!(app.scan_overdue(deadline + Duration::minutes(5), 1000).await.unwrap(), 0);
        let person = store.person(&doc.key()).await.unwrap().unwrap();
        assert_eq!(store.code_history(person.id).await.unwrap().last().unwrap().colour.as_str(), "yellow");
        let alerts = store.alerts(&tongxing_store::AlertFilter { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, "overdue");
        let view = app.commitments_of(person.id).await.unwrap();
        assert_eq!(view[0].status, "overdue");
        // The result comes late, negative: fulfilled, the yellow the scan set lifted.
        let input = tongxing_store::SampleInput { lab: TP.into(), sample_id: "T68".into(), document: doc.clone(), sampled_at: sampled,
            site: TP.into(), site_kind: tongxing_domain::SiteKind::ServiceArea, result: tongxing_domain::TestResult::Negative };
        app.submit_samples(&[input], "lab", deadline + Duration::hours(1)).await.unwrap();
        assert_eq!(store.code_history(person.id).await.unwrap().last().unwrap().colour.as_str(), "green");
        assert_eq!(app.commitments_of(person.id).await.unwrap()[0].status, "fulfilled");
        store.close().await;
    });
});

// The alert's entries and co-travellers are read hour by hour (migration 0009's indexes lead
// with the hour of the check): entries in several hours since sampling, a companion checked in
// the next hour a minute after the person, and a check of the same plate half an hour later
// (not a co-traveller), all with the time injected into the use cases.
both!(fn the_alert_finds_entries_and_co_travellers_across_hours(b) {
    let db = TestDb::new(b);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = tongxing_store::Store::connect(&db.url).await.unwrap();
        let app = tongxing_app::App::new(store.clone(), vec![tongxing_domain::Policy::beijing_2021_11_17()]);
        let now = Utc::now();
        let (_, text) = tongxing_rules::BUILTIN_FILES[0];
        let doc_text = tongxing_rules::reissue(text, "t", now - Duration::days(2)).unwrap();
        let rs = tongxing_rules::RuleSet::from_json(&doc_text).unwrap();
        store.publish_policy(rs.id(), rs.version(), &doc_text, "t", now).await.unwrap();
        store.activate_policy(rs.id(), rs.version(), "t", now).await.unwrap();
        app.reload_rules().await.unwrap();
        let cp = tongxing_store::Checkpoint { id: "CP1".into(), name: "CP1".into(), road: None, kind: "police".into() };
        app.register_checkpoint(cp, now).await.unwrap();
        let cp = tongxing_domain::text::CheckpointId::parse("CP1").unwrap();
        let plate = tongxing_domain::text::Plate::parse("冀R62071").unwrap();
        let person = |n: u32| tongxing_app::check::Person {
            document: tongxing_app::input::document(None, &nth_id("120104", n), "", now).unwrap(),
            dcc: None,
        };
        // An hour boundary forty hours ago, to the millisecond.
        let hour = chrono::DateTime::from_timestamp_millis(((now - Duration::hours(40)).timestamp_millis() / 3_600_000) * 3_600_000).unwrap();
        let sampled = hour - Duration::minutes(30);
        let sample = tongxing_app::commitment::TestPointSample { test_point: TP, sample_id: "T71", document: person(71).document.clone(), sampled_at: sampled, pool_id: None };
        app.register_test_point_sample(&sample, "tp", sampled).await.unwrap();
        let letter = app.letter();
        let signing = tongxing_app::commitment::Signing { document: person(71).document.clone(), lab: TP, sample_id: "T71",
            letter_version: &letter.version, letter_sha256: &letter.sha256, signed_via: "test_point_device" };
        app.sign_letter(&signing, "tp", sampled + Duration::minutes(5)).await.unwrap();
        // The person at 23 minutes past the hour before, in the vehicle; the companion a minute
        // after the hour; a stranger in the same vehicle half an hour later; the person again
        // 26 hours on, on foot (the read goes 24 hours at a time).
        app.check_vehicle(&cp, &plate, &[person(71)], "o", hour - Duration::minutes(1)).await.unwrap();
        app.check_vehicle(&cp, &plate, &[person(72)], "o", hour + Duration::minutes(1)).await.unwrap();
        app.check_vehicle(&cp, &plate, &[person(73)], "o", hour + Duration::minutes(30)).await.unwrap();
        app.check_person(&cp, &person(71), None, "o", hour + Duration::hours(26)).await.unwrap();
        let input = tongxing_store::SampleInput { lab: TP.into(), sample_id: "T71".into(), document: person(71).document.clone(), sampled_at: sampled,
            site: TP.into(), site_kind: tongxing_domain::SiteKind::ServiceArea, result: tongxing_domain::TestResult::Positive };
        app.submit_samples(&[input], "lab", hour + Duration::hours(28)).await.unwrap();
        let alerts = store.alerts(&tongxing_store::AlertFilter { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(alerts.len(), 1);
        let p = &alerts[0].payload;
        let entries = p["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{p}");
        assert_eq!(entries[0]["plate"], "冀R62071");
        assert_eq!(entries[1]["plate"], serde_json::Value::Null);
        let travellers = p["co_travellers"].as_array().unwrap();
        assert_eq!(travellers.len(), 1, "{p}");
        let companion = nth_id("120104", 72);
        assert_eq!(travellers[0]["document"], format!("12**************{}", &companion[16..]));
        store.close().await;
    });
});

both!(fn a_citizen_signs_on_their_phone(b) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    let (server, codes) = Server::start_with_codes(&db, &[]);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("120104", 69);
    assert_eq!(app.post("registry", "/api/v1/people", json!({"document_number": doc, "phone": "13812345669"})).status, 201);
    app.test_point_sample(TP, "T69", &doc, Duration::hours(1), None);
    let seen = codes.count();
    assert_eq!(app.call("POST", "/api/v1/citizen/code", None, Some(json!({"document_number": doc}))).status, 202);
    let code = codes.next(seen);
    let token = app.call("POST", "/api/v1/citizen/session", None, Some(json!({"document_number": doc, "code": code})))
        .body["token"].as_str().unwrap().to_string();
    let letter = app.call("GET", "/api/v1/letter", None, None).body;
    let body = json!({"document_number": doc, "test_point": TP, "sample_id": "T69",
        "letter_version": letter["version"], "letter_sha256": letter["sha256"]});
    let r = app.call("POST", "/api/v1/commitments", Some(&token), Some(body));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["signed_via"], "citizen_phone");
    // Another person's sample is not the citizen's to sign; an officer signs nothing.
    let other = nth_id("120104", 70);
    app.test_point_sample(TP, "T70", &other, Duration::hours(1), None);
    let body = json!({"document_number": other, "test_point": TP, "sample_id": "T70",
        "letter_version": letter["version"], "letter_sha256": letter["sha256"]});
    assert_eq!(app.call("POST", "/api/v1/commitments", Some(&token), Some(body.clone())).status, 403);
    assert_eq!(app.post("officer", "/api/v1/commitments", body).status, 403);
    // The citizen's pass says where the commitment stands.
    let pass = app.call("GET", "/api/v1/citizen/pass", Some(&token), None);
    assert_eq!(pass.body["commitments"][0]["status"], "pending", "{pass:?}");
    assert!(pass.body["commitments"][0]["message_zh"].as_str().unwrap().contains("预计于"), "{pass:?}");
    assert_eq!(app.check("CP1", &doc).body["verdict"], "conditional");
});
