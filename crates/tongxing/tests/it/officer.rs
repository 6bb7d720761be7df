//! The checkpoint officer's tools beyond a typed code: a camera frame read on the server
//! (`POST /api/v1/checks/frame`), and `tongxing checkpoint serve`, the checkpoint's own node that
//! decides offline, keeps its queue through a kill -9 and uploads each check once.

use base64::Engine;
use chrono::Duration;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;
use crate::offline::{Offline, claims, tx};

/// A camera frame: the pass's QR code (3 pixels a module) on a light grey background of
/// `w × h` pixels, off centre, as the page's canvas would send it.
pub fn frame_png(text: &str, w: usize, h: usize) -> Vec<u8> {
    let qr = tongxing_pass::qr::read_grey(&tongxing_pass::qr_png(text, 3).unwrap()).unwrap();
    let mut pixels = vec![200u8; w * h];
    let (ox, oy) = (w / 5, h / 6);
    for y in 0..qr.height.min(h - oy) {
        for x in 0..qr.width.min(w - ox) {
            pixels[(oy + y) * w + ox + x] = qr.pixels[y * qr.width + x];
        }
    }
    tongxing_pass::qr::encode_grey_png(w, h, &pixels)
}

pub fn data_url(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

// A frame is read with the decoder of `tongxing verify --image` and checked as the scanned
// code: the same answer as `{"qr": …}`, recorded once. A frame without a code is refused naming
// `image` (the page sends the next frame) and records nothing; a code read but refused names its
// stage, as a scanned one does.
both!(fn a_camera_frame_is_checked_like_a_scanned_code(b) {
    let o = Offline::spawn(b);
    let app = &o.app;
    let doc = nth_id("110105", 61);
    app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    let frame = frame_png(&pass, 640, 480);

    let r = app.post("officer", "/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame), "plate": "冀R12345"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    assert_eq!(r.body["reasons"][0]["code"], "NEGATIVE_WITHIN_WINDOW");
    let scanned = app.post("officer", "/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": pass}));
    assert_eq!(scanned.status, 200);
    for field in ["verdict", "reasons", "code_colour", "commuter", "policy_id", "policy_version", "document"] {
        assert_eq!(r.body[field], scanned.body[field], "{field}");
    }
    assert_eq!(o.entry_events(), 2);
    let entries = app.get("admin", "/api/v1/entries").body;
    // Oldest first: the frame's check, then the scanned one.
    assert_eq!(entries[0]["via"], "pass", "{entries}");
    assert_eq!(entries[0]["plate"], "冀R12345", "{entries}");
    // Raw base64 is accepted as well as a data: URL; the tongxing verify CLI reads the same frame.
    let raw = base64::engine::general_purpose::STANDARD.encode(&frame);
    let r = app.post("officer", "/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": raw}));
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    o.synced();
    let file = app.db.dir.join("frame.png");
    std::fs::write(&file, &frame).unwrap();
    let (code, lines, err) = o.verify(&["--image", file.to_str().unwrap()]);
    assert_eq!((code, lines[0]["verdict"].as_str()), (0, Some("pass")), "{err}");
    let events = o.entry_events();

    // No code in the frame; not an image; too many pixels; not base64: 422 naming `image`.
    let refused = |image: String, starts: &str| {
        let r = app.post("officer", "/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": image}));
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(r.body["field"], "image", "{r:?}");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(starts), "{detail}");
    };
    let blank = tongxing_pass::qr::encode_grey_png(320, 240, &vec![200; 320 * 240]);
    refused(data_url(&blank), "image: bad_image: no QR code was found");
    refused(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(b"GIF89a....")),
        "image: bad_image: the image is neither PNG nor JPEG");
    refused(data_url(&frame_png(&pass, 2000, 1500)), "image: too_large: the image is 2000×1500 pixels");
    refused("data:image/gif;base64,R0lGOD".into(), "image: a data: URL of 'image/gif;base64'");
    refused("not base64!".into(), "image: is not base64");
    // A code read but refused: the stage, as for a scanned code.
    let (other, _) = tongxing_pass::Signer::generate(tongxing_pass::Algorithm::Es256).unwrap();
    let forged = tongxing_pass::issue(&other, &claims(&pass)).unwrap();
    let r = app.post("officer", "/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame_png(&forged, 640, 480))}));
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("unknown_key")), "{r:?}");
    let r = app.post("officer", "/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame_png("HELLO", 640, 480))}));
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("bad_prefix")), "{r:?}");
    // Not an officer; a checkpoint outside the token's scope.
    let r = app.post("lab", "/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": data_url(&frame)}));
    assert_eq!(r.status, 403);
    let elsewhere = app.db.scoped_token("officer", &["CP2"]);
    let r = app.call("POST", "/api/v1/checks/frame", Some(&elsewhere),
        Some(json!({"checkpoint_id": "CP1", "image": data_url(&frame)})));
    assert_eq!(r.status, 403);
    assert_eq!(o.entry_events(), events, "refused frames record nothing");
});

/// `tongxing checkpoint serve` on a synced state file.
pub struct NodeProc {
    pub base: String,
    pub child: std::process::Child,
    pub token: String,
}

impl NodeProc {
    pub fn start(o: &Offline, extra: &[&str]) -> NodeProc {
        let token = o.app.tokens["officer"].clone();
        let mut child = std::process::Command::new(BIN)
            .args(["checkpoint", "serve", "--listen", "127.0.0.1:0", "--state", o.state.to_str().unwrap()])
            .args(["--sync-every", "1"])
            .args(extra)
            .env("TONGXING_TOKEN", &token)
            .env("RUST_LOG", std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(std::process::Stdio::piped())
            .stderr(if std::env::var("TEST_LOG").is_ok() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            })
            .spawn()
            .expect("start tongxing checkpoint serve");
        let base = listening(&mut child);
        NodeProc { base, child, token }
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = ureq::request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(&self.token), Some(body))
    }

    pub fn status(&self) -> Value {
        let (code, v) = self.call("GET", "/api/v1/node/status", Some(&self.token), None);
        assert_eq!(code, 200, "{v}");
        v
    }

    /// Waits (up to 20 s) until the status satisfies `ok`; returns it, or panics with the last one.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.status();
            if ok(&last) {
                return last;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the node never became {what}: {last}");
    }

    pub fn kill9(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the central server; returns its address, to start it again there.
pub fn stop_central(o: &mut Offline) -> String {
    o.app.server.kill9();
    o.app.server.base.trim_start_matches("http://").to_string()
}

pub fn start_central(o: &mut Offline, addr: &str) {
    o.app.server = Server::start_at(&o.app.db, addr, &["--keys", o.keys.to_str().unwrap()]);
}

/// The queued checks in the node's state file: (state, body) each, oldest first.
fn queued(o: &Offline) -> Vec<(String, Value)> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let s = tongxing_store::checkpoint::LocalState::open(&o.state, false).await.unwrap();
        let rows =
            s.checks().await.unwrap().into_iter().map(|c| (c.state, serde_json::from_str(&c.body).unwrap())).collect();
        s.close().await;
        rows
    })
}

// The offline path: the central server stops; the node decides (a scanned code, a camera
// frame) from its state file, says it is offline and since when, refuses a typed ID number
// (only the central server knows the person) and keeps the checks; the central server comes
// back at its address and the node uploads them, once: one entry event each, and a repeated
// upload records nothing.
both!(fn the_node_decides_offline_and_uploads_once(b) {
    let mut o = Offline::spawn(b);
    let doc = nth_id("110105", 71);
    let old = nth_id("110105", 72);
    o.app.negative(&doc, Duration::hours(3));
    o.app.negative(&old, Duration::hours(80));
    let (pass, old_pass) = (o.issue(&doc), o.issue(&old));
    o.synced();
    let node = NodeProc::start(&o, &[]);
    let s = node.wait_for("online", |s| s["mode"] == "online");
    assert_eq!(s["checkpoint_id"], "CP1");
    assert_eq!(s["connection"]["online"], true);
    // Online, a typed ID number goes to the central server, which records it.
    let (code, r) = node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "document_number": doc}));
    assert_eq!((code, r["verdict"].as_str()), (200, Some("pass")), "{r}");
    assert_eq!(r["reasons"][0]["code"], "NEGATIVE_WITHIN_WINDOW");
    assert_eq!(o.entry_events(), 1);

    let addr = stop_central(&mut o);
    let (code, r) = node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": pass, "plate": "冀R12345"}));
    assert_eq!((code, r["verdict"].as_str()), (200, Some("pass")), "{r}");
    assert_eq!(r["reasons"][0]["code"], "NEGATIVE_WITHIN_WINDOW");
    assert!(r["reasons"][0]["message_zh"].as_str().unwrap().len() > 3, "{r}");
    let (code, r) = node.post("/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame_png(&old_pass, 640, 480))}));
    assert_eq!((code, r["verdict"].as_str()), (200, Some("deny")), "{r}");
    assert_eq!(r["reasons"][0]["code"], "TEST_TOO_OLD");
    // A frame without a code: refused naming `image`, nothing queued.
    let blank = tongxing_pass::qr::encode_grey_png(64, 64, &[200; 64 * 64]);
    let (code, r) = node.post("/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": data_url(&blank)}));
    assert_eq!((code, r["field"].as_str()), (422, Some("image")), "{r}");
    // A typed ID number cannot be decided here: it says why and what to do.
    let (code, r) = node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "document_number": doc}));
    assert_eq!((code, r["field"].as_str()), (422, Some("document_number")), "{r}");
    assert!(r["detail"].as_str().unwrap().contains("scan the person's pass"), "{r}");
    let s = node.wait_for("offline", |s| s["mode"] == "offline");
    assert_eq!(s["connection"]["online"], false);
    assert!(s["since"].as_str().unwrap().ends_with("+08:00"), "{s}");
    assert!(s["connection"]["last_error"].is_string(), "{s}");
    assert_eq!(s["queue"]["pending"], 2, "{s}");

    start_central(&mut o, &addr);
    let s = node.wait_for("online with an empty queue", |s| s["mode"] == "online" && s["queue"]["pending"] == 0);
    assert_eq!(s["queue"]["recorded"], 2, "{s}");
    assert_eq!(o.entry_events(), 3);
    let entries = o.app.get("admin", "/api/v1/entries").body;
    let via: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["via"].as_str().unwrap()).collect();
    assert_eq!(via, ["document", "offline", "offline"], "{entries}");
    assert_eq!(entries[1]["plate"], "冀R12345");
    // Uploading the same checks again (an answer lost on the way) records nothing.
    let rows: Vec<Value> = queued(&o).into_iter().map(|(_, body)| body).collect();
    assert_eq!(rows.len(), 2);
    let r = o.app.post("officer", "/api/v1/checks/offline", json!({"checks": rows}));
    assert_eq!(r.body["duplicates"], 2, "{r:?}");
    let (code, out, _) = o.sync();
    assert_eq!(code, 0);
    assert!(out.contains("uploaded: 0 recorded"), "{out}");
    assert_eq!(o.entry_events(), 3);
});

// A check is on disk before its verdict is answered: a kill -9 of the node right after it loses
// nothing, and the node started again uploads it once.
#[test]
fn the_nodes_queue_survives_kill_9() {
    let mut o = Offline::spawn(Backend::Sqlite);
    let doc = nth_id("110105", 73);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    let addr = stop_central(&mut o);
    let mut node = NodeProc::start(&o, &[]);
    let (code, r) = node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": pass}));
    assert_eq!((code, r["verdict"].as_str()), (200, Some("pass")), "{r}");
    node.kill9();
    assert_eq!(queued(&o).iter().filter(|(state, _)| state == "pending").count(), 1);
    start_central(&mut o, &addr);
    assert_eq!(o.entry_events(), 0);
    let node = NodeProc::start(&o, &[]);
    node.wait_for("online with an empty queue", |s| s["mode"] == "online" && s["queue"]["pending"] == 0);
    assert_eq!(o.entry_events(), 1);
}

// Data older than the policy allows (24 hours): the node says it works from stale data, and
// since when (the moment the oldest part turned stale), and still decides.
#[test]
fn the_node_says_when_its_data_is_stale() {
    let mut o = Offline::spawn(Backend::Sqlite);
    let doc = nth_id("110105", 74);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    stop_central(&mut o);
    // The revocation list synced 30 hours ago: stale for 6 hours.
    let synced_at = chrono::Utc::now() - Duration::hours(30);
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let s = tongxing_store::checkpoint::LocalState::open(&o.state, false).await.unwrap();
        let mut synced = s.synced().await.unwrap().unwrap();
        synced.revocations_synced_at = synced_at;
        let rule_sets: Vec<(String, String, String)> = synced
            .rule_sets
            .iter()
            .map(|body| {
                let rs = tongxing_rules::RuleSet::from_json(body).unwrap();
                (rs.id().to_string(), rs.version().to_string(), body.clone())
            })
            .collect();
        s.save_synced(&synced, &rule_sets).await.unwrap();
        s.close().await;
    });
    let node = NodeProc::start(&o, &[]);
    let s = node.wait_for("stale", |s| s["mode"] == "stale");
    assert_eq!(s["data"]["stale"], true);
    let since = chrono::DateTime::parse_from_rfc3339(s["since"].as_str().unwrap()).unwrap();
    assert_eq!(since.timestamp(), (synced_at + Duration::hours(24)).timestamp(), "{s}");
    assert_eq!(s["data"]["parts"]["revocation_list"]["stale"], true, "{s}");
    assert_eq!(s["data"]["parts"]["trust_list"]["stale"], false, "{s}");
    assert_eq!(s["connection"]["online"], false, "{s}");
    let (code, r) = node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": pass}));
    assert_eq!((code, r["verdict"].as_str()), (200, Some("pass")), "{r}");
}

// The node's endpoints: its token only; bad input refused naming the field; a refused code
// names its stage and is kept on the device only; no synced state is exit code 2.
#[test]
fn the_node_refuses_bad_input() {
    let o = Offline::spawn(Backend::Sqlite);
    let (code, _, err) = tx(&["checkpoint", "serve", "--state", o.state.to_str().unwrap(), "--token", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run `tongxing checkpoint sync` first"), "{err}");
    let doc = nth_id("110105", 75);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    let node = NodeProc::start(&o, &[]);
    let body = json!({"checkpoint_id": "CP1", "qr": pass});
    let (code, r) = node.call("POST", "/api/v1/checks", None, Some(body.clone()));
    assert_eq!(code, 401, "{r}");
    let (code, _) = node.call("POST", "/api/v1/checks", Some(&o.app.tokens["lab"]), Some(body.clone()));
    assert_eq!(code, 401);
    let (code, _) = node.call("GET", "/api/v1/node/status", None, None);
    assert_eq!(code, 401);
    let refused = |body: Value, field: &str| {
        let (code, r) = node.post("/api/v1/checks", body);
        assert_eq!((code, r["field"].as_str()), (422, Some(field)), "{r}");
    };
    refused(json!({"checkpoint_id": "CP1", "qr": pass, "zzz": 1}), "zzz");
    refused(json!({"checkpoint_id": "CP2", "qr": pass}), "checkpoint_id");
    refused(json!({"checkpoint_id": "CP1", "qr": pass, "plate": "x"}), "plate");
    refused(json!({"checkpoint_id": "CP1"}), "document_number");
    refused(json!({"checkpoint_id": "CP1", "qr": pass, "document_number": doc}), "qr");
    refused(json!({"checkpoint_id": "CP1", "qr": "tx1:lower"}), "qr");
    let (code, r) =
        node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": pass.replacen("TX1:", "HC1:", 1)}));
    assert_eq!((code, r["stage"].as_str()), (422, Some("bad_prefix")), "{r}");
    let (code, r) =
        node.post("/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": format!("TX1:{}", "A".repeat(5000))}));
    assert_eq!((code, r["stage"].as_str()), (422, Some("too_large")), "{r}");
    let (code, r) = node.call("GET", "/nope", None, None);
    assert_eq!(code, 404, "{r}");
    let s = node.status();
    assert_eq!(s["queue"]["pending"], 0, "{s}");
    assert_eq!(s["queue"]["refused_codes"], 1, "the refused code is kept on the device: {s}");
}
