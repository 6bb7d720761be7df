//! Alerts over the API: listed and filtered (the health authority; the analyst may list),
//! acknowledged and resolved once each (a move to a state passed is a 409), and their live SSE
//! stream, resumed after a dropped connection from `Last-Event-ID` without a gap or a duplicate.

use std::time::Duration;

use serde_json::json;

use crate::both;
use crate::delivery_helpers::*;
use crate::helpers::*;

both!(fn alerts_are_listed_acknowledged_and_resolved(b) {
    let app = App::spawn_builtin(b);
    let ids = raise(&app.db, "positive", &["positive:LAB1:S1", "positive:LAB1:S2"]);
    let overdue = raise(&app.db, "overdue", &["overdue:7"])[0].unwrap();
    // One alert per cause: the same key again raises nothing.
    assert_eq!(raise(&app.db, "positive", &["positive:LAB1:S1"]), [None]);
    let (a, b2) = (ids[0].unwrap(), ids[1].unwrap());

    let all = app.get("analyst", "/api/v1/alerts");
    assert_eq!(all.status, 200, "{all:?}");
    let listed: Vec<i64> = all.body.as_array().unwrap().iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, [overdue, b2, a], "newest first");
    assert_eq!(all.body[2]["status"], "open");
    assert_eq!(all.body[2]["detail"]["document"], "11**************2X");
    assert!(all.body[2]["raised_at"].as_str().unwrap().ends_with("+08:00"));
    assert_eq!(app.get("health", "/api/v1/alerts?kind=overdue").body.as_array().unwrap().len(), 1);
    assert_eq!(app.get("health", "/api/v1/alerts?limit=1").body.as_array().unwrap().len(), 1);
    assert_eq!(app.get("health", "/api/v1/alerts?since=2999-01-01T00:00:00%2B08:00").body, json!([]));
    let r = app.get("health", "/api/v1/alerts?status=closed");
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("status")), "{r:?}");
    assert_eq!(app.get("lab", "/api/v1/alerts").status, 403);
    assert_eq!(app.get("health", &format!("/api/v1/alerts/{a}")).body["dedup_key"], "positive:LAB1:S1");
    assert_eq!(app.get("health", "/api/v1/alerts/999999").status, 404);

    // Acknowledged once, by the health authority only.
    let ack = |role: &str, id: i64| app.call("POST", &format!("/api/v1/alerts/{id}/acknowledge"), Some(&app.tokens[role]), None);
    assert_eq!(ack("analyst", a).status, 403);
    let r = ack("health", a);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "acknowledged");
    assert!(r.body["acknowledged_by"].as_str().unwrap().starts_with("tok_"));
    assert!(r.body["acknowledged_at"].as_str().unwrap().ends_with("+08:00"));
    let r = ack("health", a);
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.content_type, "application/problem+json");
    assert!(r.body["detail"].as_str().unwrap().contains("it was acknowledged by tok_"), "{r:?}");
    assert_eq!(ack("health", 999_999).status, 404);

    // Resolved once, from acknowledged or straight from open, with its outcome.
    let resolve = |id: i64, outcome: &str| app.post("health", &format!("/api/v1/alerts/{id}/resolve"), json!({"outcome": outcome}));
    let r = resolve(a, "isolated at home; household tested");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["status"].as_str(), r.body["outcome"].as_str()), (Some("resolved"), Some("isolated at home; household tested")));
    assert_eq!(r.body["acknowledged_at"], app.get("health", &format!("/api/v1/alerts/{a}")).body["acknowledged_at"]);
    assert_eq!(resolve(a, "again").status, 409);
    assert_eq!(ack("health", a).status, 409, "a resolved alert cannot be acknowledged");
    assert_eq!(resolve(overdue, "result arrived: negative").status, 200);
    let r = resolve(b2, "");
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("outcome")));
    let resolved = app.get("health", "/api/v1/alerts?status=resolved");
    assert_eq!(resolved.body.as_array().unwrap().len(), 2);
    assert_eq!(app.get("health", "/api/v1/alerts?status=open").body[0]["id"], b2);
});

both!(fn the_stream_resumes_without_gaps_or_duplicates(b) {
    let app = App::spawn_builtin(b);
    let health = app.tokens["health"].clone();
    let wait = Duration::from_secs(5);
    // Only the health authority follows the stream; a bad Last-Event-ID is refused naming it.
    assert!(SseClient::try_connect(&app.server.base, &app.tokens["analyst"], None, "").unwrap_err().contains(" 403 "));
    let err = SseClient::try_connect(&app.server.base, &health, None, "?after=x").unwrap_err();
    assert!(err.contains(" 422 ") && err.contains("\"field\":\"after\""), "{err}");
    let before = raise(&app.db, "positive", &["s:0"])[0].unwrap();

    // Without Last-Event-ID: from the next event on.
    let client = SseClient::connect(&app.server.base, &health, None, "");
    let ids: Vec<i64> = raise(&app.db, "positive", &["s:1", "s:2", "s:3"]).into_iter().map(Option::unwrap).collect();
    let got = client.take(3, wait);
    let first = got[0].id;
    assert!(first > before, "an event from before the connection was sent");
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [first, first + 1, first + 2]);
    assert!(got.iter().all(|e| e.event == "alert.raised"));
    assert_eq!(got.iter().map(|e| e.data["data"]["alert"].as_i64().unwrap()).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].data["type"], "alert.raised");
    assert_eq!(got[0].data["id"], first);
    assert_eq!(got[0].data["data"]["kind"], "positive");
    assert_eq!(got[0].data["data"]["detail"]["cause"], "s:1");

    // The connection drops; events go on meanwhile (an acknowledgement among them).
    client.close();
    raise(&app.db, "overdue", &["s:4", "s:5"]);
    let r = app.call("POST", &format!("/api/v1/alerts/{}/acknowledge", ids[0]), Some(&health), None);
    assert_eq!(r.status, 200);
    raise(&app.db, "positive", &["s:6"]);
    // Resumed from the last id received: exactly the ones after it, in order, then live ones.
    let last = got[2].id;
    let client = SseClient::connect(&app.server.base, &health, Some(last), "");
    let missed = client.take(4, wait);
    assert_eq!(missed.iter().map(|e| e.id).collect::<Vec<_>>(), [last + 1, last + 2, last + 3, last + 4]);
    assert_eq!(missed[2].event, "alert.acknowledged");
    assert_eq!(missed[2].data["data"]["alert"], ids[0]);
    raise(&app.db, "positive", &["s:7"]);
    assert_eq!(client.next(wait).unwrap().id, last + 5);
    assert!(client.next(Duration::from_millis(600)).is_none(), "an event was sent twice");
    client.close();
    // `?after=N` does the same as the header; the header wins when both are sent.
    let all = SseClient::connect(&app.server.base, &health, None, "?after=0");
    let every = all.take(9, wait);
    assert_eq!(every.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=9).collect::<Vec<i64>>());
    all.close();
    let both = SseClient::connect(&app.server.base, &health, Some(8), "?after=0");
    assert_eq!(both.next(wait).unwrap().id, 9);
    both.close();
});

// A stream never ends by itself: stopping the server (SIGTERM) ends it, and the server exits.
both!(fn a_stopping_server_ends_its_streams(b) {
    let mut app = App::spawn_builtin(b);
    let client = SseClient::connect(&app.server.base, &app.tokens["health"], None, "");
    unsafe {
        libc::kill(app.server.child.id() as i32, libc::SIGTERM);
    }
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = app.server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the server did not stop with a stream open");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(client.next(Duration::from_millis(200)).is_none());
});
