//! For the delivery tests: alerts raised directly in the store (as the flows that raise them
//! do, in their own transaction), an SSE client over a plain connection (so that a test can
//! drop it), and a webhook receiver on a loopback port that verifies every signature with the
//! Standard Webhooks reference implementation (the `standardwebhooks` crate).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use crate::helpers::TestDb;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Raises alerts with these dedup keys in the store (one transaction each); their ids (`None`
/// for a key raised before).
pub fn raise(db: &TestDb, kind: &str, keys: &[&str]) -> Vec<Option<i64>> {
    let url = db.url.clone();
    let (kind, keys): (String, Vec<String>) = (kind.to_string(), keys.iter().map(|k| k.to_string()).collect());
    runtime().block_on(async move {
        let store = tongxing_store::Store::connect(&url).await.unwrap();
        let mut ids = Vec::new();
        for key in keys {
            let alert = tongxing_store::NewAlert {
                kind: kind.clone(),
                dedup_key: key.clone(),
                person_id: None,
                payload: serde_json::json!({"document": "11**************2X", "cause": key}),
                at: Utc::now(),
            };
            ids.push(store.raise_alert(&alert).await.unwrap());
        }
        store.close().await;
        ids
    })
}

/// Through the API of the server at `base`, as it happens on the road: a sample taken at a
/// test point, the commitment letter signed for it, then the lab's positive result, which raises
/// an alert in the transaction that stores it.
pub fn positive_via(base: &str, tokens: &std::collections::HashMap<String, String>, doc: &str, sample: &str) {
    const TP: &str = "SA-JINGHA-XIANGHE";
    let post = |role: &str, path: &str, body: Value| {
        let r = ureq::post(&format!("{base}{path}"))
            .set("Authorization", &format!("Bearer {}", tokens[role]))
            .send_json(body)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(r.status() < 300, "{path}: {}", r.status());
    };
    let sampled_at = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    post(
        "test_point",
        &format!("/api/v1/test-points/{TP}/samples"),
        serde_json::json!({"document_number": doc, "sample_id": sample, "sampled_at": sampled_at}),
    );
    let letter: Value = ureq::get(&format!("{base}/api/v1/letter")).call().unwrap().into_json().unwrap();
    post(
        "test_point",
        "/api/v1/commitments",
        serde_json::json!({"document_number": doc, "test_point": TP, "sample_id": sample,
            "letter_version": letter["version"], "letter_sha256": letter["sha256"]}),
    );
    post(
        "lab",
        "/api/v1/results",
        serde_json::json!({"lab": TP, "sample_id": sample, "document_number": doc, "sampled_at": sampled_at,
            "site": TP, "site_kind": "service_area", "result": "positive"}),
    );
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
    pub at: Instant,
}

/// A stream client: events arrive on a channel; `close` drops the connection.
#[derive(Debug)]
pub struct SseClient {
    stream: TcpStream,
    rx: mpsc::Receiver<SseEvent>,
}

impl SseClient {
    /// Connects to `/api/v1/alerts/stream{query}`; returns once the answer's head is in (the
    /// stream's start is fixed then). Panics unless it is a 200 event stream.
    pub fn connect(base: &str, token: &str, last_event_id: Option<i64>, query: &str) -> SseClient {
        SseClient::try_connect(base, token, last_event_id, query).unwrap_or_else(|head| panic!("not a stream: {head}"))
    }

    /// As `connect`; `Err(the answer)` when it is not a 200 event stream.
    pub fn try_connect(base: &str, token: &str, last_event_id: Option<i64>, query: &str) -> Result<SseClient, String> {
        let addr = base.trim_start_matches("http://").to_string();
        let mut stream = TcpStream::connect(&addr).unwrap();
        let mut head = format!(
            "GET /api/v1/alerts/stream{query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return Err(answer);
            }
            answer.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let lower = answer.to_lowercase();
        if !lower.starts_with("http/1.1 200") || !lower.contains("content-type: text/event-stream") {
            let mut rest = vec![0u8; 4096];
            let n = reader.read(&mut rest).unwrap_or(0);
            return Err(format!("{answer}{}", String::from_utf8_lossy(&rest[..n])));
        }
        let chunked = lower.contains("transfer-encoding: chunked");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut bytes = Vec::new();
            loop {
                // One chunk (or whatever arrives, unchunked).
                let piece = if chunked {
                    let mut size = String::new();
                    if reader.read_line(&mut size).unwrap_or(0) == 0 {
                        return;
                    }
                    let Ok(n) = usize::from_str_radix(size.trim(), 16) else { return };
                    if n == 0 {
                        return;
                    }
                    let mut buf = vec![0u8; n + 2];
                    if reader.read_exact(&mut buf).is_err() {
                        return;
                    }
                    buf.truncate(n);
                    buf
                } else {
                    let mut buf = vec![0u8; 8192];
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf[..n].to_vec(),
                    }
                };
                bytes.extend_from_slice(&piece);
                let Ok(s) = std::str::from_utf8(&bytes) else { continue };
                text.push_str(s);
                bytes.clear();
                while let Some(end) = text.find("\n\n") {
                    let frame: String = text[..end].to_string();
                    text.drain(..end + 2);
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().parse().ok();
                        } else if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                        if tx.send(SseEvent { id, event, data, at: Instant::now() }).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(SseClient { stream, rx })
    }

    /// The next event, waiting up to `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<SseEvent> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// `n` events, each within `timeout`; panics when one does not come.
    pub fn take(&self, n: usize, timeout: Duration) -> Vec<SseEvent> {
        (0..n).map(|i| self.next(timeout).unwrap_or_else(|| panic!("event {} of {n} did not come", i + 1))).collect()
    }

    /// Drops the connection.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// Whether the signature verified with the receiver's secret(s) (all of them).
    pub verified: bool,
    /// The status it answered.
    pub answered: u16,
}

/// A webhook receiver on a loopback port: verifies each request's signature with every secret
/// it is given, answers `fail_first` requests with 500, then 200.
pub struct Receiver {
    pub url: String,
    pub secrets: Arc<Mutex<Vec<String>>>,
    pub got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    pub fn start(fail_first: usize) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), fail_first)
    }

    /// On a given port (a receiver that was down comes back).
    pub fn start_on(port: u16, fail_first: usize) -> Receiver {
        Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), fail_first)
    }

    fn on(listener: TcpListener, fail_first: usize) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let secrets: Arc<Mutex<Vec<String>>> = Default::default();
        let got: Arc<Mutex<Vec<Received>>> = Default::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, g, st) = (secrets.clone(), got.clone(), stop.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !st.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        headers.push((n.trim().to_lowercase(), v.trim().to_string()));
                    }
                }
                let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
                let len: usize = header("content-length").parse().unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let mut map = http::HeaderMap::new();
                for (n, v) in &headers {
                    if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(n.as_bytes()), http::HeaderValue::from_str(v))
                    {
                        map.insert(n, v);
                    }
                }
                let secrets = s.lock().unwrap().clone();
                let verified = !secrets.is_empty()
                    && secrets
                        .iter()
                        .all(|secret| standardwebhooks::Webhook::new(secret).unwrap().verify(&body, &map).is_ok());
                let mut g = g.lock().unwrap();
                let answered = if g.len() < fail_first { 500 } else { 200 };
                g.push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: String::from_utf8_lossy(&body).to_string(),
                    verified,
                    answered,
                });
                drop(g);
                let reason = if answered == 200 { "OK" } else { "Internal Server Error" };
                let mut conn = conn;
                let _ = conn.write_all(
                    format!("HTTP/1.1 {answered} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
                let _ = conn.shutdown(Shutdown::Both);
            }
        });
        Receiver { url: format!("http://127.0.0.1:{port}/hook"), secrets, got, stop }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for what was received (up to `timeout`).
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if pred(&got) || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
