//! Spawning the real server and talking to it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_tongxing");
/// A token each (the citizen's a session bound to a person of its own).
pub const ROLES: &[&str] = &["admin", "lab", "test_point", "officer", "registry", "health", "analyst", "citizen"];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each test body against both databases.
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* fn $name:ident($b:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($b: $crate::helpers::Backend) $body
            #[test]
            fn sqlite() { body($crate::helpers::Backend::Sqlite) }
            #[test]
            fn postgres() { body($crate::helpers::Backend::Postgres) }
        }
    };
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn pg_admin_url() -> String {
    std::env::var("TONGXING_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "\n\n*** PostgreSQL tests need TONGXING_TEST_PG=postgres://USER:PASS@HOST:PORT/postgres ***\n\
             *** `bash .ci/run` starts PostgreSQL and sets it; these tests do not pass without it. ***\n\n"
        )
    })
}

/// A fresh database: a SQLite file in a temporary folder, or a new PostgreSQL database.
pub struct TestDb {
    pub url: String,
    pub dir: PathBuf,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tongxing-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        match backend {
            Backend::Sqlite => TestDb { url: format!("sqlite://{}", dir.join("tx.db").display()), dir, pg_name: None },
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("tx_it_{}_{n}", std::process::id());
                runtime().block_on(async {
                    let pool = sqlx::PgPool::connect(&admin).await.expect("connect to PostgreSQL (TONGXING_TEST_PG)");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                        .execute(&pool)
                        .await
                        .unwrap();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
                    pool.close().await;
                });
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
                TestDb { url: format!("{base}/{name}"), dir, pg_name: Some(name) }
            }
        }
    }

    /// Creates one token per role directly in the store.
    pub fn tokens(&self) -> HashMap<String, String> {
        let url = self.url.clone();
        runtime().block_on(async move {
            let store = tongxing_store::Store::connect(&url).await.unwrap();
            let mut tokens = HashMap::new();
            for role in ROLES {
                let t = tongxing_http::auth::new_token();
                if *role == "citizen" {
                    // A session bound to a person of its own, as signing in makes one.
                    let doc = tongxing_domain::ids::Document::parse(
                        tongxing_domain::ids::DocumentKind::Passport,
                        "TESTCITIZEN1",
                        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                    )
                    .unwrap();
                    let input =
                        tongxing_store::PersonInput { document: doc, name: None, phone: None, residence_region: None };
                    let person = store.upsert_person(&input, Utc::now()).await.unwrap();
                    store
                        .create_session(&t.id, &t.hash, person, Utc::now(), Utc::now() + Duration::days(1))
                        .await
                        .unwrap();
                } else {
                    store.create_token(&t.id, &t.hash, role, &[], Some("test"), Utc::now()).await.unwrap();
                }
                tokens.insert(role.to_string(), t.secret);
            }
            store.close().await;
            tokens
        })
    }

    /// A token with a scope.
    pub fn scoped_token(&self, role: &str, scope: &[&str]) -> String {
        let url = self.url.clone();
        let scope: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
        let role = role.to_string();
        runtime().block_on(async move {
            let store = tongxing_store::Store::connect(&url).await.unwrap();
            let t = tongxing_http::auth::new_token();
            store.create_token(&t.id, &t.hash, &role, &scope, None, Utc::now()).await.unwrap();
            store.close().await;
            t.secret
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = &self.pg_name {
            let admin = pg_admin_url();
            let name = name.clone();
            let _ = std::thread::spawn(move || {
                runtime().block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                        let _ =
                            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                                .execute(&pool)
                                .await;
                        pool.close().await;
                    }
                })
            })
            .join();
        }
    }
}

/// Waits for the server's "listening" line on stdout; returns its address, and keeps draining
/// stdout so the server never blocks on a full pipe.
pub fn listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.strip_prefix("tongxing listening on ") {
                    break addr.trim().to_string();
                }
            }
            _ => panic!("the server exited before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    base
}

/// The one-time codes a server has logged, oldest first.
#[derive(Clone, Default)]
pub struct Codes(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Codes {
    /// The latest code, waiting up to 5 s for one more than `seen`.
    pub fn next(&self, seen: usize) -> String {
        for _ in 0..100 {
            if let Some(c) = self.0.lock().unwrap().get(seen) {
                return c.clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no one-time code was logged");
    }
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The server process.
pub struct Server {
    pub base: String,
    pub child: Child,
}

impl Server {
    pub fn start(db: &TestDb) -> Server {
        Server::start_with(db, &[])
    }

    /// With extra arguments to `serve`.
    pub fn start_with(db: &TestDb, extra: &[&str]) -> Server {
        Server::start_at(db, "127.0.0.1:0", extra)
    }

    /// On a given address (a server started again where its clients expect it).
    pub fn start_at(db: &TestDb, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen, "--database", &db.url])
            .args(extra)
            .env("RUST_LOG", std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(Stdio::piped())
            .stderr(if std::env::var("TEST_LOG").is_ok() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("start tongxing serve");
        let base = listening(&mut child);
        Server { base, child }
    }

    /// With extra arguments, keeping the one-time codes the log sender writes to stderr.
    pub fn start_with_codes(db: &TestDb, extra: &[&str]) -> (Server, Codes) {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &db.url, "--otp-sender", "log"])
            .args(extra)
            .env("RUST_LOG", "error,tongxing::otp=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tongxing serve");
        let codes = Codes::default();
        let stderr = child.stderr.take().unwrap();
        let sink = codes.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("code=") {
                    let code: String =
                        line[i + 5..].chars().skip_while(|c| *c == '"').take_while(char::is_ascii_digit).collect();
                    sink.lock().unwrap().push(code);
                }
            }
        });
        let base = listening(&mut child);
        (Server { base, child }, codes)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running server with a fresh database and one token per role.
pub struct App {
    pub server: Server,
    pub tokens: HashMap<String, String>,
    pub db: TestDb,
}

/// An HTTP answer: status and JSON body (or the text as a JSON string).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

/// An HTTP answer with its headers and text.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub text: String,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

impl App {
    /// A server deciding by the rules of 17 November 2021 (the foundation issue's table),
    /// re-issued from now over the API as an operator would; most tests use it.
    pub fn spawn(backend: Backend) -> App {
        let app = App::spawn_builtin(backend);
        app.use_2021_rules();
        app
    }

    /// A server with only the built-in policies: at today's date the latest (2022-11-22) rules.
    pub fn spawn_builtin(backend: Backend) -> App {
        let db = TestDb::new(backend);
        let tokens = db.tokens();
        let server = Server::start(&db);
        App { server, tokens, db }
    }

    /// Publishes and activates the 2021-11-17 policy re-issued from a minute ago.
    pub fn use_2021_rules(&self) {
        let (_, text) = tongxing_rules::BUILTIN_FILES[0];
        let reissued = tongxing_rules::reissue(text, "2021-11-17-test", Utc::now() - Duration::minutes(1)).unwrap();
        let body: Value = serde_json::from_str(&reissued).unwrap();
        let r = self.post("health", "/api/v1/policies", body);
        assert_eq!(r.status, 201, "{r:?}");
        let r = self.post(
            "health",
            "/api/v1/policies/activate",
            json!({"id": "beijing-2021-11-17", "version": "2021-11-17-test"}),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = ureq::request(method, &self.url(path));
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
        let content_type = resp.header("content-type").unwrap_or("").to_string();
        let text = resp.into_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, body, content_type }
    }

    /// Any request: raw body bytes with the given content type (or none), over a plain
    /// connection. The body is written from a second thread while this one reads the answer,
    /// as a real client does: the server may answer (413, a refused query) before reading it.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> RawResp {
        use std::io::{Read, Write};
        let addr = self.server.base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let body = body.to_vec();
        let mut writer = stream.try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            let _ = writer.write_all(head.as_bytes());
            for chunk in body.chunks(64 * 1024) {
                if writer.write_all(chunk).is_err() {
                    break;
                }
            }
        });
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        // Read until the answer is complete (its Content-Length), whatever the writer does.
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + len {
                    break;
                }
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = sending.join();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body_text) =
            text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{method} {path}: no answer: {text:?}"));
        let mut lines = head.lines();
        let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        let body = serde_json::from_str(body_text).unwrap_or(Value::String(body_text.to_string()));
        RawResp { status, headers, body, text: body_text.to_string() }
    }

    /// As `role`.
    pub fn post(&self, role: &str, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(&self.tokens[role]), Some(body))
    }
    pub fn put(&self, role: &str, path: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(&self.tokens[role]), Some(body))
    }
    pub fn get(&self, role: &str, path: &str) -> Resp {
        self.call("GET", path, Some(&self.tokens[role]), None)
    }

    pub fn checkpoint(&self, id: &str, road: &str) {
        let r = self.post(
            "admin",
            "/api/v1/checkpoints",
            json!({"id": id, "name": format!("{id} checkpoint"), "road": road, "kind": "police"}),
        );
        assert_eq!(r.status, 201, "{r:?}");
    }

    #[allow(clippy::too_many_arguments)]
    pub fn result(
        &self,
        lab: &str,
        sample: &str,
        doc: &str,
        sampled_at: DateTime<Utc>,
        site: &str,
        kind: &str,
        result: &str,
    ) -> Resp {
        self.post(
            "lab",
            "/api/v1/results",
            json!({"lab": lab, "sample_id": sample, "document_number": doc, "sampled_at": sampled_at.to_rfc3339(),
                   "site": site, "site_kind": kind, "result": result}),
        )
    }

    /// A negative hospital test sampled `age` ago.
    pub fn negative(&self, doc: &str, age: Duration) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let r = self.result("LAB1", &format!("N{n}"), doc, Utc::now() - age, "H1", "hospital", "negative");
        assert_eq!(r.status, 200, "{r:?}");
    }

    /// A sample taken `age` ago at a designated test point (result pending), maybe pooled.
    pub fn test_point_sample(&self, test_point: &str, sample: &str, doc: &str, age: Duration, pool: Option<&str>) {
        let mut body =
            json!({"document_number": doc, "sample_id": sample, "sampled_at": (Utc::now() - age).to_rfc3339()});
        if let Some(p) = pool {
            body["pool_id"] = json!(p);
        }
        let r = self.post("test_point", &format!("/api/v1/test-points/{test_point}/samples"), body);
        assert_eq!(r.status, 201, "{r:?}");
    }

    /// The commitment letter signed on the test point's device for that sample.
    pub fn sign_letter(&self, test_point: &str, sample: &str, doc: &str) -> Resp {
        let letter = self.call("GET", "/api/v1/letter", None, None).body;
        let r = self.post(
            "test_point",
            "/api/v1/commitments",
            json!({"document_number": doc, "test_point": test_point, "sample_id": sample,
                   "letter_version": letter["version"], "letter_sha256": letter["sha256"]}),
        );
        assert_eq!(r.status, 201, "{r:?}");
        r
    }

    pub fn check(&self, checkpoint: &str, doc: &str) -> Resp {
        self.post("officer", "/api/v1/checks", json!({"checkpoint_id": checkpoint, "document_number": doc}))
    }

    /// (verdict, first reason code) of a check that must succeed.
    pub fn verdict(&self, checkpoint: &str, doc: &str) -> (String, String) {
        let r = self.check(checkpoint, doc);
        assert_eq!(r.status, 200, "{r:?}");
        (r.body["verdict"].as_str().unwrap().to_string(), r.body["reasons"][0]["code"].as_str().unwrap().to_string())
    }
}

/// A valid ID number from 17 digits.
pub fn id(first17: &str) -> String {
    format!("{first17}{}", tongxing_domain::ids::id_check_char(first17.as_bytes()))
}

/// The n-th distinct valid ID number born in `region`.
pub fn nth_id(region: &str, n: u32) -> String {
    id(&format!("{region}19850101{:03}", n % 1000))
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `secs` seconds.
pub fn wait<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > end {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
