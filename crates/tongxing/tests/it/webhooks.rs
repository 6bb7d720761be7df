//! Webhooks: registered with a secret shown once, never listed; every delivery signed as the
//! Standard Webhooks specification says (verified here by its reference implementation, the
//! `standardwebhooks` crate), retried with back-off until the receiver answers 2xx and then
//! never sent again; a kill -9 of the server between storing a positive result (and its alert)
//! and delivering the alert loses nothing, and delivers it once; a rotated secret
//! signs beside the old one during its grace period; a disabled webhook gets nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both;
use crate::delivery_helpers::*;
use crate::helpers::*;

fn create(app: &App, role: &str, url: &str, events: Value) -> Value {
    let r = app.post(role, "/api/v1/webhooks", json!({"url": url, "events": events}));
    assert_eq!(r.status, 201, "{r:?}");
    r.body
}

both!(fn a_failing_receiver_gets_the_alert_once_it_answers(b) {
    let app = App::spawn_builtin(b);
    let receiver = Receiver::start(2);
    let hook = create(&app, "health", &receiver.url, json!(["alert.raised"]));
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 32, "{secret}");
    receiver.secrets.lock().unwrap().push(secret.clone());
    // Listed without its secret; refused to roles that do not manage webhooks.
    let list = app.get("admin", "/api/v1/webhooks");
    assert_eq!(list.body[0]["url"], receiver.url.as_str());
    assert!(!list.body.to_string().contains(&secret[6..]), "a secret was listed: {}", list.body);
    assert_eq!(app.get("officer", "/api/v1/webhooks").status, 403);
    let r = app.post("admin", "/api/v1/webhooks", json!({"url": "ftp://x"}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("url")));
    let r = app.post("admin", "/api/v1/webhooks", json!({"url": receiver.url, "events": ["alert.nope"]}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("events[0]")));

    let id = raise(&app.db, "positive", &["wh:1"])[0].unwrap();
    // Two 500s, then a 200: three signed attempts with the same id, the back-off between them.
    receiver.wait(Duration::from_secs(20), |g| g.iter().any(|r| r.answered == 200));
    std::thread::sleep(Duration::from_secs(3));
    let got = receiver.received();
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 200], "{got:?}");
    assert!(got.iter().all(|r| r.verified), "a signature did not verify: {got:?}");
    assert!(got.iter().all(|r| r.id == got[0].id), "the webhook-id changed between attempts");
    let body: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(body["type"], "alert.raised");
    assert_eq!(body["data"]["alert"], id);
    assert_eq!(body["id"].to_string(), got[0].id);
    assert!(body["timestamp"].as_str().unwrap().ends_with("+08:00"));
    assert!(got[2].signature.starts_with("v1,") && !got[2].signature.contains(' '));
    let ts: i64 = got[2].timestamp.parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 60);
    let list = app.get("health", "/api/v1/webhooks");
    assert_eq!((list.body[0]["delivered"].as_i64(), list.body[0]["pending"].as_i64()), (Some(1), Some(0)), "{:?}", list.body);
    // An acknowledgement is not an event this webhook takes.
    let r = app.call("POST", &format!("/api/v1/alerts/{id}/acknowledge"), Some(&app.tokens["health"]), None);
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 3);
});

both!(fn a_kill_before_delivery_loses_nothing(b) {
    let mut app = App::spawn(b);
    // The receiver is down: the alert is stored, the delivery fails and waits.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let secret = create(&app, "admin", &url, json!([]))["secret"].as_str().unwrap().to_string();
    // A positive result for a sample under a commitment letter: stored with its alert.
    let doc = nth_id("120104", 71);
    positive_via(&app.server.base, &app.tokens, &doc, "KILL-1");
    let start = Instant::now();
    loop {
        let w = app.get("admin", "/api/v1/webhooks").body[0].clone();
        if w["pending"] == 1 && w["last_status"] == 0 {
            assert!(w["last_error"].as_str().unwrap().len() > 3);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no failed attempt: {w}");
        std::thread::sleep(Duration::from_millis(50));
    }
    app.server.kill9();
    // The receiver comes up; the server starts again: the alert arrives, once.
    let receiver = Receiver::start_on(port, 0);
    receiver.secrets.lock().unwrap().push(secret);
    app.server = Server::start(&app.db);
    let got = receiver.wait(Duration::from_secs(20), |g| !g.is_empty());
    assert_eq!(got.len(), 1, "{got:?}");
    std::thread::sleep(Duration::from_secs(2));
    let got = receiver.received();
    assert_eq!(got.len(), 1, "delivered more than once: {got:?}");
    assert!(got[0].verified);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["kind"].as_str()), (Some("alert.raised"), Some("positive")));
    assert_eq!(body["data"]["detail"]["sample"]["sample_id"], "KILL-1");
    assert_eq!(app.get("admin", "/api/v1/webhooks").body[0]["delivered"], 1);
});

both!(fn a_rotated_secret_signs_beside_the_old_one(b) {
    let app = App::spawn_builtin(b);
    let receiver = Receiver::start(0);
    let old = create(&app, "admin", &receiver.url, json!([]));
    let id = old["id"].as_i64().unwrap();
    let r = app.call("POST", &format!("/api/v1/webhooks/{id}/rotate"), Some(&app.tokens["admin"]), None);
    assert_eq!(r.status, 200, "{r:?}");
    let new = r.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old["secret"].as_str().unwrap());
    assert!(r.body["previous_secret_until"].as_str().is_some());
    // The receiver checks both: each verifies on its own (two signatures in the header).
    *receiver.secrets.lock().unwrap() = vec![old["secret"].as_str().unwrap().to_string(), new.clone()];
    raise(&app.db, "positive", &["rot:1"]);
    let got = receiver.wait(Duration::from_secs(10), |g| !g.is_empty());
    assert_eq!(got.len(), 1);
    assert!(got[0].verified, "{got:?}");
    assert_eq!(got[0].signature.split(' ').count(), 2);
    // Disabled: nothing more is sent; it cannot be rotated or disabled again.
    let r = app.call("POST", &format!("/api/v1/webhooks/{id}/disable"), Some(&app.tokens["health"]), None);
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("disabled")));
    raise(&app.db, "positive", &["rot:2"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 1);
    for action in ["rotate", "disable"] {
        let r = app.call("POST", &format!("/api/v1/webhooks/{id}/{action}"), Some(&app.tokens["admin"]), None);
        assert_eq!(r.status, 409, "{action}: {r:?}");
    }
    let r = app.call("POST", "/api/v1/webhooks/999/rotate", Some(&app.tokens["admin"]), None);
    assert_eq!(r.status, 404);
});
