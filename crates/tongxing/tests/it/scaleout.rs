//! Several servers, one PostgreSQL database: what a city running 2–N `tongxing serve` behind a
//! load balancer relies on. PostgreSQL only (SQLite is the single-server store), so these are
//! plain tests, not `both!`: three servers on loopback ports share one database.
//!
//! - An alert raised through server B (a positive result under a commitment letter), one raised
//!   in the store by no server, and an acknowledgement through B reach an SSE client of server A
//!   within a second.
//! - The webhook relay (and the overdue scan) runs on one server at a time; kill -9 its holder
//!   and another takes the lease within the lease time (plus the standby's retry interval),
//!   and delivers.
//! - One POST with one Idempotency-Key sent to two servers at once has one effect, and both
//!   answers are the same.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use crate::delivery_helpers::*;
use crate::helpers::*;
use crate::idempotency::post_keyed;

/// The lease time the servers run with here.
const TTL: u64 = 2;

fn cluster() -> (TestDb, std::collections::HashMap<String, String>, Vec<Server>) {
    let db = TestDb::new(Backend::Postgres);
    let tokens = db.tokens();
    let ttl = TTL.to_string();
    let servers = (0..3).map(|_| Server::start_with(&db, &["--lease-ttl", &ttl])).collect();
    (db, tokens, servers)
}

fn get(base: &str, token: &str, path: &str) -> Value {
    ureq::get(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

/// A lease: (holder, token), while some server holds it.
fn lease(base: &str, admin: &str, name: &str) -> Option<(String, i64)> {
    let leases = get(base, admin, "/api/v1/ops/leases");
    leases.as_array()?.iter().find(|l| l["name"] == name).and_then(|l| {
        let expires = chrono::DateTime::parse_from_rfc3339(l["expires_at"].as_str()?).ok()?;
        if expires <= Utc::now() {
            return None;
        }
        Some((l["holder"].as_str()?.to_string(), l["token"].as_i64()?))
    })
}

#[test]
fn an_event_through_one_server_reaches_a_stream_of_another() {
    let (db, tokens, servers) = cluster();
    let (a, b) = (&servers[0], &servers[1]);
    let health = &tokens["health"];
    let client = SseClient::connect(&a.base, health, None, "");
    // Raised in the store (as a result submitted anywhere raises it): on A's stream.
    let t0 = Instant::now();
    let id = raise(&db, "positive", &["scale:1"])[0].unwrap();
    let e = client.next(Duration::from_secs(5)).expect("the alert reached A's stream");
    assert_eq!((e.event.as_str(), &e.data["data"]["alert"]), ("alert.raised", &json!(id)));
    assert!(e.at - t0 < Duration::from_secs(1), "took {:?}", e.at - t0);
    // A positive result submitted through B (its alert raised in B's transaction): on A's
    // stream, within a second.
    let t0 = Instant::now();
    positive_via(&b.base, &tokens, &nth_id("120104", 81), "SCALE-P1");
    let e = client.next(Duration::from_secs(5)).expect("B's alert reached A's stream");
    assert_eq!((e.event.as_str(), e.data["data"]["kind"].as_str()), ("alert.raised", Some("positive")));
    assert_eq!(e.data["data"]["detail"]["sample"]["sample_id"], "SCALE-P1");
    assert!(e.at - t0 < Duration::from_secs(1), "took {:?} (three requests and the delivery)", e.at - t0);
    // Acknowledged through B: on A's stream, within a second.
    let t0 = Instant::now();
    let r = ureq::post(&format!("{}/api/v1/alerts/{id}/acknowledge", b.base))
        .set("Authorization", &format!("Bearer {health}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let e = client.next(Duration::from_secs(5)).expect("B's acknowledgement reached A's stream");
    assert_eq!(e.event, "alert.acknowledged");
    assert!(e.at - t0 < Duration::from_secs(1), "took {:?}", e.at - t0);
    // A stream on C resumed before the last event gets it, and only it.
    let resumed = SseClient::connect(&servers[2].base, health, Some(e.id - 1), "");
    assert_eq!(resumed.next(Duration::from_secs(5)).unwrap().id, e.id);
    assert!(resumed.next(Duration::from_millis(500)).is_none());
}

#[test]
fn the_relay_moves_to_another_server_when_its_holder_is_killed() {
    let (db, tokens, mut servers) = cluster();
    let admin = tokens["admin"].clone();
    let start = Instant::now();
    let (holder, token) = loop {
        if let Some(l) = lease(&servers[0].base, &admin, "webhook-relay") {
            break l;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no server took the relay's lease");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The holder names its server's address: that one is killed.
    let victim = servers.iter().position(|s| holder.starts_with(s.base.trim_start_matches("http://"))).unwrap();
    // Exactly one holder: the others see the same lease.
    for s in &servers {
        assert_eq!(lease(&s.base, &admin, "webhook-relay").map(|l| l.1), Some(token));
    }
    // The overdue scan is held too (by whichever server took it first).
    let scan_before = lease(&servers[0].base, &admin, "overdue-scan").expect("the overdue scan's lease is held");
    servers[victim].kill9();
    let killed = Instant::now();
    let other = &servers[(victim + 1) % 3];
    let (new_holder, new_token) = loop {
        if let Some((h, t)) = lease(&other.base, &admin, "webhook-relay")
            && h != holder
        {
            break (h, t);
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "no server took the lease over");
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = killed.elapsed();
    // Within the lease time, plus the standby's retry interval (a fifth of it) and this loop's.
    assert!(took <= Duration::from_millis(TTL * 1000 * 6 / 5 + 300), "took {took:?}");
    assert!(new_token > token, "the fencing token did not grow: {token} → {new_token}");
    assert!(!new_holder.starts_with(servers[victim].base.trim_start_matches("http://")));
    // The overdue scan, if the killed server held it, moved within the same time.
    // Its lease expires on its own schedule (taken at another moment): wait for it as long.
    let victim_addr = servers[victim].base.trim_start_matches("http://").to_string();
    let scan_after = loop {
        if let Some(l) = lease(&other.base, &admin, "overdue-scan")
            && !l.0.starts_with(&victim_addr)
        {
            break l;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "the overdue scan stayed with the killed server");
        std::thread::sleep(Duration::from_millis(50));
    };
    let scan_took = killed.elapsed();
    assert!(scan_took <= Duration::from_millis(TTL * 1000 * 6 / 5 + 300), "the scan took {scan_took:?}");
    if scan_before.0.starts_with(&victim_addr) {
        assert!(scan_after.1 > scan_before.1);
    }
    // The new holder relays.
    let receiver = Receiver::start(0);
    let r = ureq::post(&format!("{}/api/v1/webhooks", other.base))
        .set("Authorization", &format!("Bearer {admin}"))
        .send_json(json!({"url": receiver.url}))
        .unwrap();
    let secret = r.into_json::<Value>().unwrap()["secret"].as_str().unwrap().to_string();
    receiver.secrets.lock().unwrap().push(secret);
    raise(&db, "overdue", &["lease:1"]);
    let got = receiver.wait(Duration::from_secs(10), |g| !g.is_empty());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.received().len(), 1, "{got:?}");
    assert!(got[0].verified);
    eprintln!("lease taken over {took:?} after the kill (lease time {TTL} s)");
}

#[test]
fn one_idempotency_key_sent_to_two_servers_has_one_effect() {
    let (_db, tokens, servers) = cluster();
    let lab = tokens["lab"].clone();
    let sample = json!({"lab": "LAB1", "sample_id": "SCALE-1", "document_number": nth_id("110105", 51),
        "sampled_at": (Utc::now() - chrono::Duration::hours(1)).to_rfc3339(), "site": "H1",
        "site_kind": "hospital", "result": "negative"});
    // The same request, at once, to A and to B.
    let sends: Vec<_> = servers[..2]
        .iter()
        .map(|s| {
            let (base, lab, sample) = (s.base.clone(), lab.clone(), sample.clone());
            std::thread::spawn(move || post_keyed(&base, &lab, "/api/v1/results", "scale-key-1", &sample))
        })
        .collect();
    let answers: Vec<_> = sends.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!((answers[0].0, answers[1].0), (200, 200), "{answers:?}");
    assert_eq!(answers[0].2, answers[1].2);
    assert_eq!(answers[0].2["outcome"], "accepted");
    // And to C later: the same answer; one sample, stored once.
    let c = post_keyed(&servers[2].base, &lab, "/api/v1/results", "scale-key-1", &sample);
    assert_eq!((c.0, &c.2), (200, &answers[0].2));
    let history = get(&servers[2].base, &lab, "/api/v1/results/LAB1/SCALE-1/history");
    assert_eq!(history.as_array().unwrap().len(), 1);
    // The same key with another body, on yet another server: refused.
    let mut other = sample.clone();
    other["result"] = json!("positive");
    let r = post_keyed(&servers[1].base, &lab, "/api/v1/results", "scale-key-1", &other);
    assert_eq!((r.0, r.2["field"].as_str()), (422, Some("Idempotency-Key")));
}
