//! Citizens: one-time codes (tries, rate limits, single use), sessions bound to a person, the
//! pass, family links (the member's own code, a registry officer for a minor, at most four), and
//! that a citizen sees nobody else.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

/// A server that logs its one-time codes, with the 2021 rules, and its codes.
fn spawn(b: Backend) -> (App, Codes) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    let (server, codes) = Server::start_with_codes(&db, &[]);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    (app, codes)
}

fn person(app: &App, doc: &str, phone: &str, name: &str) {
    let r = app.post("registry", "/api/v1/people", json!({"document_number": doc, "phone": phone, "name": name}));
    assert_eq!(r.status, 201, "{r:?}");
}

fn ask_code(app: &App, doc: &str) -> Resp {
    app.call("POST", "/api/v1/citizen/code", None, Some(json!({"document_number": doc})))
}

fn sign_in(app: &App, codes: &Codes, doc: &str) -> String {
    let seen = codes.count();
    let r = ask_code(app, doc);
    assert_eq!(r.status, 202, "{r:?}");
    let code = codes.next(seen);
    let r = app.call("POST", "/api/v1/citizen/session", None, Some(json!({"document_number": doc, "code": code})));
    assert_eq!(r.status, 201, "{r:?}");
    assert!(r.body["expires_at"].as_str().unwrap().ends_with("+08:00"));
    r.body["token"].as_str().unwrap().to_string()
}

fn as_citizen(app: &App, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    app.call(method, path, Some(token), body)
}

both!(fn sign_in_and_see_my_pass(b) {
    let (app, codes) = spawn(b);
    let doc = nth_id("131082", 1);
    person(&app, &doc, "13812345601", "王小明");
    app.negative(&doc, Duration::hours(5));
    let token = sign_in(&app, &codes, &doc);
    let r = as_citizen(&app, &token, "GET", "/api/v1/citizen/pass", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["colour"], "green");
    assert_eq!(r.body["name"], "王**");
    assert_eq!(r.body["document"], format!("13**************{}", &doc[16..]));
    assert_eq!(r.body["latest_test"]["age_hours"], 5);
    assert_eq!(r.body["entry"]["verdict"], "pass");
    // 48 hours from sampling, to the minute: the rules in force say when the next test is due.
    let until = chrono::DateTime::parse_from_rfc3339(r.body["entry"]["valid_until"].as_str().unwrap()).unwrap();
    let expected = Utc::now() + Duration::hours(43);
    assert!((until.with_timezone(&Utc) - expected).num_minutes().abs() <= 2, "{until} vs {expected}");
    // A citizen's token does nothing else.
    assert_eq!(as_citizen(&app, &token, "GET", "/api/v1/entries", None).status, 403);
    assert_eq!(as_citizen(&app, &token, "GET", "/api/v1/checkpoints", None).status, 403);
});

both!(fn codes_allow_five_tries_and_one_use(b) {
    let (app, codes) = spawn(b);
    let doc = nth_id("131082", 2);
    person(&app, &doc, "13812345602", "李四");
    let seen = codes.count();
    assert_eq!(ask_code(&app, &doc).status, 202);
    let code = codes.next(seen);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let try_code = |c: &str| app.call("POST", "/api/v1/citizen/session", None, Some(json!({"document_number": doc, "code": c})));
    for left in (0..5).rev() {
        let r = try_code(wrong);
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(r.body["field"], "code");
        if left > 0 {
            assert!(r.body["detail"].as_str().unwrap().contains(&format!("{left} tries left")), "{r:?}");
        }
    }
    // Five wrong tries: even the right code is refused now.
    let r = try_code(&code);
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].as_str().unwrap().contains("5 wrong tries"), "{r:?}");
    // Not a code at all.
    assert_eq!(try_code("12ab56").body["field"], "code");
});

both!(fn codes_are_rate_limited_per_phone(b) {
    let (app, codes) = spawn(b);
    let doc = nth_id("131082", 3);
    person(&app, &doc, "13812345603", "赵六");
    let seen = codes.count();
    assert_eq!(ask_code(&app, &doc).status, 202);
    let code = codes.next(seen);
    // A second code within the minute: 429 with Retry-After, and no code sent.
    let r = app.raw("POST", "/api/v1/citizen/code", None, Some("application/json"),
        json!({"document_number": doc}).to_string().as_bytes());
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("content-type"), ["application/problem+json"]);
    let wait: u64 = r.header("retry-after")[0].parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(codes.count(), seen + 1);
    // The first code still works, once.
    let body = json!({"document_number": doc, "code": code});
    assert_eq!(app.call("POST", "/api/v1/citizen/session", None, Some(body.clone())).status, 201);
    let r = app.call("POST", "/api/v1/citizen/session", None, Some(body));
    assert_eq!(r.status, 422, "{r:?}");
    // An unknown number gets the same answer as a known one, and no code.
    let r = ask_code(&app, &nth_id("131082", 999));
    assert_eq!(r.status, 202);
    assert_eq!(r.body["message"], ask_code(&app, &nth_id("131082", 998)).body["message"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(codes.count(), seen + 1);
});

both!(fn family_links_need_consent_and_stop_at_four(b) {
    let (app, codes) = spawn(b);
    let me = nth_id("131082", 10);
    person(&app, &me, "13812345610", "张父");
    let token = sign_in(&app, &codes, &me);
    // Nobody is linked: another person's pass is not mine to see.
    let r = as_citizen(&app, &token, "GET", "/api/v1/citizen/family/1/pass", None);
    assert_eq!(r.status, 404, "{r:?}");
    // An adult consents with their own code.
    let link_adult = |n: u32| {
        let doc = nth_id("131082", n);
        person(&app, &doc, &format!("138123456{n:02}"), "张家人");
        let seen = codes.count();
        let r = as_citizen(&app, &token, "POST", "/api/v1/citizen/family/code", Some(json!({"document_number": doc})));
        assert_eq!(r.status, 202, "{r:?}");
        let code = codes.next(seen);
        as_citizen(&app, &token, "POST", "/api/v1/citizen/family", Some(json!({"document_number": doc, "code": code})))
    };
    let r = link_adult(11);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["status"], "linked");
    let link = r.body["link"].as_i64().unwrap();
    app.negative(&nth_id("131082", 11), Duration::hours(1));
    let r = as_citizen(&app, &token, "GET", &format!("/api/v1/citizen/family/{link}/pass"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["entry"]["verdict"], "pass");
    // The family member's access log shows the read.
    let log = app.post("registry", "/api/v1/people/access-log", json!({"document_number": nth_id("131082", 11), "purpose": "audit"}));
    assert!(log.body.as_array().unwrap().iter().any(|e| e["role"] == "citizen" && e["purpose"] == "family member's pass"), "{log:?}");
    // A minor: a registry officer approves; until then the pass is not shown.
    let child = id("13108220150601001");
    let r = as_citizen(&app, &token, "POST", "/api/v1/citizen/family/minor", Some(json!({"document_number": child})));
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["status"], "pending");
    let minor = r.body["link"].as_i64().unwrap();
    assert_eq!(as_citizen(&app, &token, "GET", &format!("/api/v1/citizen/family/{minor}/pass"), None).status, 403);
    let pending = app.get("registry", "/api/v1/family-links/pending");
    assert_eq!(pending.body[0]["link"], minor);
    assert!(pending.body[0]["member_age"].as_u64().unwrap() < 18);
    assert_eq!(app.post("officer", &format!("/api/v1/family-links/{minor}/decision"), json!({"action": "approve"})).status, 403);
    let r = app.post("registry", &format!("/api/v1/family-links/{minor}/decision"), json!({"action": "approve"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(as_citizen(&app, &token, "GET", &format!("/api/v1/citizen/family/{minor}/pass"), None).status, 200);
    // An adult cannot be linked as a minor.
    let r = as_citizen(&app, &token, "POST", "/api/v1/citizen/family/minor", Some(json!({"document_number": nth_id("131082", 11)})));
    assert_eq!(r.status, 422, "{r:?}");
    // Two more make four; a fifth is refused.
    assert_eq!(link_adult(12).status, 201);
    assert_eq!(link_adult(13).status, 201);
    let r = link_adult(14);
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(as_citizen(&app, &token, "GET", "/api/v1/citizen/family", None).body.as_array().unwrap().len(), 4);
    // After removing one, a fifth person may be linked; the removed one's pass is gone.
    let r = as_citizen(&app, &token, "POST", &format!("/api/v1/citizen/family/{link}/remove"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(as_citizen(&app, &token, "GET", &format!("/api/v1/citizen/family/{link}/pass"), None).status, 403);
    assert_eq!(link_adult(15).status, 201);
    // Another citizen cannot use my links.
    let other = nth_id("131082", 20);
    person(&app, &other, "13812345620", "陌生人");
    let other_token = sign_in(&app, &codes, &other);
    let r = as_citizen(&app, &other_token, "GET", &format!("/api/v1/citizen/family/{minor}/pass"), None);
    assert_eq!(r.status, 404, "{r:?}");
});

/// Keeps the codes it is asked to send.
#[derive(Default)]
struct Keep(std::sync::Mutex<Vec<String>>);

impl tongxing_app::citizen::CodeSender for Keep {
    fn send<'a>(
        &'a self,
        _phone: &'a str,
        code: &'a str,
        _message: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        self.0.lock().unwrap().push(code.to_string());
        Box::pin(async { Ok(()) })
    }
}

// The time is a parameter of the use case: a code is refused five minutes after it was sent,
// and the phone's hourly limit holds; both checked without waiting.
both!(fn codes_expire_after_five_minutes(b) {
    let db = TestDb::new(b);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = tongxing_store::Store::connect(&db.url).await.unwrap();
        let keep = std::sync::Arc::new(Keep::default());
        let app = tongxing_app::App::new(store.clone(), vec![tongxing_domain::Policy::beijing_2021_11_17()])
            .with_code_sender(keep.clone());
        let now = Utc::now();
        let doc = tongxing_app::input::document(None, &nth_id("131082", 60), "", now).unwrap();
        let input = tongxing_store::PersonInput { document: doc.clone(), name: None, phone: Some("13812345660".into()), residence_region: None };
        store.upsert_person(&input, now).await.unwrap();
        use tongxing_app::citizen::Purpose;
        app.send_code(&doc, Purpose::SignIn, "10.0.0.1", now).await.unwrap();
        let code = keep.0.lock().unwrap()[0].clone();
        let late = app.sign_in(&doc, &code, now + Duration::minutes(5) + Duration::seconds(1)).await.unwrap_err();
        assert!(late.to_string().contains("expired"), "{late}");
        // In time, it works.
        app.send_code(&doc, Purpose::SignIn, "10.0.0.1", now + Duration::minutes(6)).await.unwrap();
        let code = keep.0.lock().unwrap()[1].clone();
        assert!(app.sign_in(&doc, &code, now + Duration::minutes(10)).await.is_ok());
        // Five codes an hour to one phone; the sixth is refused even a minute apart.
        for i in 2..5 {
            app.send_code(&doc, Purpose::SignIn, "10.0.0.1", now + Duration::minutes(6 + 2 * i)).await.unwrap();
        }
        let r = app.send_code(&doc, Purpose::SignIn, "10.0.0.1", now + Duration::minutes(20)).await.unwrap_err();
        assert!(matches!(r, tongxing_app::AppError::TooMany { .. }), "{r}");
        assert_eq!(keep.0.lock().unwrap().len(), 5);
        store.close().await;
    });
});

both!(fn a_citizen_applies_for_commuter_certification_and_follows_it(b) {
    let (app, codes) = spawn(b);
    let doc = nth_id("131082", 21);
    person(&app, &doc, "13812345621", "孙小");
    let token = sign_in(&app, &codes, &doc);
    let mine = |app: &App| as_citizen(app, &token, "GET", "/api/v1/citizen/commuter", None);
    assert_eq!(mine(&app).status, 404, "nothing filed yet");
    let application = json!({"kind": "worker", "residence_region": "131082", "residence_proof": "lease",
        "employer_name": "北京某某科技有限公司", "employer_uscc": "91350100M000100Y43", "work_region": "110105"});
    // A residence outside the surrounding regions: refused naming the field; nothing filed.
    let mut outside = application.clone();
    outside["residence_region"] = json!("110105");
    let r = as_citizen(&app, &token, "POST", "/api/v1/citizen/commuter", Some(outside));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("residence_region")), "{r:?}");
    let mut extra = application.clone();
    extra["document_number"] = json!(doc);
    let r = as_citizen(&app, &token, "POST", "/api/v1/citizen/commuter", Some(extra));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("document_number")), "the person is the session's");
    assert_eq!(mine(&app).status, 404);
    // Only for citizens; the registry's own application endpoint is not theirs.
    let r = app.post("registry", "/api/v1/citizen/commuter", application.clone());
    assert_eq!(r.status, 403, "{r:?}");
    let mut for_someone = application.clone();
    for_someone["document_number"] = json!(doc);
    let r = as_citizen(&app, &token, "POST", "/api/v1/commuters", Some(for_someone));
    assert_eq!(r.status, 403, "{r:?}");
    let r = as_citizen(&app, &token, "POST", "/api/v1/citizen/commuter", Some(application.clone()));
    assert_eq!((r.status, &r.body["status"]), (201, &json!("pending")), "{r:?}");
    let r = mine(&app);
    assert_eq!((r.status, &r.body["status"]), (200, &json!("pending")), "{r:?}");
    assert_eq!(r.body["residence_region_name"], "三河市");
    // The registry's queue: the evidence, the person masked; not for citizens.
    assert_eq!(as_citizen(&app, &token, "GET", "/api/v1/commuters/queue", None).status, 403);
    let q = app.get("registry", "/api/v1/commuters/queue");
    assert_eq!(q.status, 200);
    let row = q.body.as_array().unwrap().iter().find(|r| r["document"] == json!(format!("13**************{}", &doc[16..]))).unwrap().clone();
    assert_eq!((row["name"].as_str(), row["residence_proof"].as_str()), (Some("孙*"), Some("lease")));
    assert_eq!(row["employer_uscc"], "91350100M000100Y43");
    assert_eq!(app.get("registry", "/api/v1/commuters/queue?status=maybe").status, 422);
    assert_eq!(app.get("registry", "/api/v1/commuters/queue?limit=0").status, 422);
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "reject", "reason": "lease expired"}));
    assert_eq!(r.status, 200, "{r:?}");
    let r = mine(&app);
    assert_eq!((&r.body["status"], &r.body["decision_reason"]), (&json!("rejected"), &json!("lease expired")));
    let steps: Vec<&str> = r.body["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(steps, ["pending", "rejected"]);
    assert!(app.get("registry", "/api/v1/commuters/queue").body.as_array().unwrap().iter().all(|r| r["document"] != row["document"]));
    assert_eq!(app.get("registry", "/api/v1/commuters/queue?status=rejected").body.as_array().unwrap().len(), 1);
});

both!(fn a_citizen_sees_who_read_their_record(b) {
    let (app, codes) = spawn(b);
    let doc = nth_id("110105", 22);
    let other = nth_id("110105", 23);
    person(&app, &doc, "13812345622", "吴一");
    person(&app, &other, "13812345623", "吴二");
    let token = sign_in(&app, &codes, &doc);
    let log = |app: &App| as_citizen(app, &token, "GET", "/api/v1/citizen/access-log", None);
    assert_eq!(log(&app).body, json!([]));
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "case 17 review", "reveal": true}));
    assert_eq!(r.status, 200);
    // Someone else's record is not in my log.
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": other, "purpose": "other"}));
    assert_eq!(r.status, 200);
    let r = log(&app);
    assert_eq!(r.status, 200);
    let entries = r.body.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0]["role"].as_str(), entries[0]["action"].as_str()), (Some("health"), Some("reveal")));
    assert_eq!(entries[0]["purpose"], "case 17 review");
    let who = entries[0]["who"].as_str().unwrap();
    assert!(who.starts_with("tok_") && who.ends_with("******"), "{who}");
    assert!(entries[0]["at"].as_str().unwrap().ends_with("+08:00"));
    assert_eq!(app.get("registry", "/api/v1/citizen/access-log").status, 403);
    assert_eq!(as_citizen(&app, &token, "GET", "/api/v1/citizen/access-log?x=1", None).status, 422);
});

both!(fn a_citizen_sees_the_letters_waiting_for_them(b) {
    let (app, codes) = spawn(b);
    let doc = nth_id("120104", 24);
    person(&app, &doc, "13812345624", "郑一");
    let token = sign_in(&app, &codes, &doc);
    let due = |app: &App| as_citizen(app, &token, "GET", "/api/v1/citizen/letters", None).body;
    assert_eq!(due(&app), json!([]));
    app.test_point_sample("SA-JINGHA-XIANGHE", "TP-DUE-1", &doc, Duration::hours(2), None);
    // A hospital test needs no letter.
    app.negative(&doc, Duration::hours(30));
    let d = due(&app);
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!((d[0]["test_point"].as_str(), d[0]["sample_id"].as_str()), (Some("SA-JINGHA-XIANGHE"), Some("TP-DUE-1")));
    assert_eq!(d[0]["link"], Value::Null);
    assert_eq!(d[0]["name"], "郑*");
    let letter = app.call("GET", "/api/v1/letter", None, None).body;
    let r = as_citizen(&app, &token, "POST", "/api/v1/commitments", Some(json!({"document_number": doc,
        "test_point": "SA-JINGHA-XIANGHE", "sample_id": "TP-DUE-1",
        "letter_version": letter["version"], "letter_sha256": letter["sha256"]})));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(due(&app), json!([]), "signed: no longer waiting");
});
