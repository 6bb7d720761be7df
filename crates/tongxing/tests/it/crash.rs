//! Nothing lost: kill -9 the server in the middle of a bulk import; every batch acknowledged
//! before the kill is there after a restart, and re-running the import completes it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const BATCHES: usize = 60;
const ROWS: usize = 500;

fn batch(i: usize, t: &str) -> Value {
    let rows: Vec<Value> = (0..ROWS)
        .map(|j| {
            let n = (i * ROWS + j) as u32;
            json!({"lab": "LAB1", "sample_id": format!("B{i}-{j}"), "document_number": nth_id(["110105", "110106", "110108", "120104", "131082", "131028", "131024", "110101", "110102", "110112", "110113", "110114", "110115", "110111", "110109", "110116", "110117", "110118", "110119", "110228", "110229", "120101", "120102", "120103", "120105", "120106", "120110", "120111", "120112", "120113"][(n / 1000) as usize % 30], n % 1000),
                  "sampled_at": t, "site": "H1", "site_kind": "hospital", "result": "negative"})
        })
        .collect();
    json!({"results": rows})
}

both!(fn kill_during_bulk_import(b) {
    let mut app = App::spawn(b);
    let token = app.tokens["lab"].clone();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let url = app.url("/api/v1/results/batch");
    let t = (Utc::now() - Duration::hours(2)).to_rfc3339();
    let writer = {
        let (acked, stop, sent, t) = (acked.clone(), stop.clone(), sent.clone(), t.clone());
        std::thread::spawn(move || {
            for i in 0..BATCHES {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                sent.store(i + 1, Ordering::SeqCst);
                let r = ureq::post(&url).set("Authorization", &format!("Bearer {token}")).send_json(batch(i, &t));
                match r {
                    Ok(resp) if resp.status() == 200 => {
                        let v: Value = resp.into_json().unwrap();
                        assert_eq!(v["accepted"].as_u64().unwrap() as usize, ROWS);
                        acked.lock().unwrap().push(i);
                    }
                    _ => break, // the server died mid-request: not acknowledged
                }
            }
        })
    };
    // Kill once a few batches are in, while the writer keeps sending.
    while acked.lock().unwrap().len() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    app.server.kill9();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 5 && acked.len() < BATCHES, "killed mid-import: {} acknowledged", acked.len());

    app.server = Server::start(&app.db);
    let stored = app.get("admin", "/api/v1/stats/overview").body["samples"].as_u64().unwrap() as usize;
    // Every acknowledged row is there; a batch is all-or-nothing, so nothing half-written.
    assert!(stored >= acked.len() * ROWS, "stored {stored} < acknowledged {}", acked.len() * ROWS);
    assert_eq!(stored % ROWS, 0, "a batch was half-written: {stored} rows");
    for &i in &acked {
        let h = app.get("lab", &format!("/api/v1/results/LAB1/B{i}-{}/history", ROWS - 1));
        assert_eq!(h.status, 200, "batch {i} acknowledged but missing");
    }
    // Re-running the whole import completes it: the stored batches are unchanged, the rest accepted.
    let (mut accepted, mut unchanged) = (0, 0);
    for i in 0..BATCHES {
        let r = app.post("lab", "/api/v1/results/batch", batch(i, &t));
        accepted += r.body["accepted"].as_u64().unwrap() as usize;
        unchanged += r.body["unchanged"].as_u64().unwrap() as usize;
    }
    assert_eq!(unchanged, stored);
    assert_eq!(accepted + unchanged, BATCHES * ROWS);
    assert_eq!(app.get("admin", "/api/v1/stats/overview").body["samples"].as_u64().unwrap() as usize, BATCHES * ROWS);
});

both!(fn acknowledged_checks_survive_kill(b) {
    let mut app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    // Concurrent checks share group commits; every answered one must be on disk.
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (url, token, answered) = (app.url("/api/v1/checks"), app.tokens["officer"].clone(), answered.clone());
            std::thread::spawn(move || {
                for i in 0..50 {
                    let body = json!({"checkpoint_id": "CP1", "document_number": nth_id("110105", t * 50 + i)});
                    let r = ureq::post(&url).set("Authorization", &format!("Bearer {token}")).send_json(body);
                    assert_eq!(r.unwrap().status(), 200);
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    app.server.kill9();
    app.server = Server::start(&app.db);
    let stored = app.get("admin", "/api/v1/stats/overview").body["entry_events"].as_u64().unwrap() as usize;
    assert_eq!(stored, answered.load(Ordering::SeqCst));
    assert_eq!(stored, 200);
});
