//! `tongxing bench alerts`: delivery under load. Starts `--servers` real `serve` processes on
//! loopback ports over one database, connects an SSE client to the first, and then, for the
//! run's length, sends negative results in batches at `--rate` rows a second (spread over the
//! servers) and positive results under commitment letters at `--alert-rate` a second to the
//! other servers; each positive raises an alert in the transaction that stores it. Measured: the
//! time from sending a positive result to its alert arriving on the first server's stream (and
//! from its answer, i.e. its commit, to the arrival). Then `--checks` checkpoint decisions over
//! HTTP against the first server, which runs the outbox feed (its SSE client still connected)
//! and takes part in the webhook relay — to compare with `bench checks`.
//!
//! The load generator runs in this process, on the same machine as the servers and the
//! database: everything shares its cores.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{Duration, Utc};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::bench::{open_bench_database, person_doc};
use crate::demo::Rng;

#[derive(Args)]
pub struct AlertsArgs {
    #[arg(
        long,
        env = "TONGXING_DATABASE",
        help = "The benchmark's own database (sqlite://PATH or postgres://...); refused unless empty or made by a bench command"
    )]
    database: String,
    /// Server processes: the SSE client is on the first; positives go to the others.
    #[arg(long, default_value_t = 3)]
    servers: usize,
    /// Negative results a second during the run (in batches, spread over the servers).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Rows per batch of negative results.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Positive results (each raising one alert) sent during the run.
    #[arg(long, default_value_t = 300)]
    alerts: u64,
    /// Positive results a second.
    #[arg(long, default_value_t = 10)]
    alert_rate: u64,
    /// People the negative results are spread over.
    #[arg(long, default_value_t = 1_000_000)]
    people: u64,
    /// Checks over HTTP against the first server after the run (0: none).
    #[arg(long, default_value_t = 100_000)]
    checks: u64,
    /// Concurrent connections of the checks.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
}

const TP: &str = "SA-JINGHA-XIANGHE";

/// A `serve` process, killed when dropped.
struct ServerProcess {
    child: Child,
    addr: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(database: &str) -> Result<ServerProcess> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting tongxing serve")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.strip_prefix("tongxing listening on http://") {
                    break a.trim().to_string();
                }
            }
            _ => bail!("the server exited before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(ServerProcess { child, addr })
}

/// POST over a kept-alive connection; the answer's status.
async fn post(stream: &mut tokio::net::TcpStream, buf: &mut [u8], path: &str, token: &str, body: &str) -> Result<u16> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let text = crate::bench::read_response(stream, buf).await?;
    Ok(text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// A blocking POST (the setup and the positives), with its status.
fn post_blocking(addr: &str, path: &str, token: &str, body: &serde_json::Value) -> Result<u16> {
    let r = ureq::post(&format!("http://{addr}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string());
    match r {
        Ok(r) => Ok(r.status()),
        Err(ureq::Error::Status(s, r)) => bail!("{path}: {s} {}", r.into_string().unwrap_or_default()),
        Err(e) => bail!("{path}: {e}"),
    }
}

/// Reads the SSE stream of `addr`: the arrival of each alert.raised, by its sample id.
async fn follow_stream(addr: String, token: String, arrivals: Arc<Mutex<HashMap<String, Instant>>>) -> Result<()> {
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    stream
        .write_all(
            format!("GET /api/v1/alerts/stream HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // The head.
    let body_start = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the stream closed");
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
            if !head.starts_with("http/1.1 200") {
                bail!("the stream was refused: {head}");
            }
            break end + 4;
        }
    };
    raw.drain(..body_start);
    // Chunks, then events.
    let mut text = String::new();
    loop {
        while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
            if raw.len() < eol + 2 + size + 2 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&raw[eol + 2..eol + 2 + size]));
            raw.drain(..eol + 2 + size + 2);
        }
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let raised = frame.lines().any(|l| l == "event: alert.raised");
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: "))
                && raised
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(data)
                && let Some(sample) = v["data"]["detail"]["sample"]["sample_id"].as_str()
            {
                arrivals.lock().await.insert(sample.to_string(), Instant::now());
            }
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn percentiles(mut v: Vec<StdDuration>) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0;
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", pct(0.5), pct(0.99), pct(1.0))
}

pub async fn run(a: AlertsArgs) -> Result<()> {
    if a.servers == 0 || a.batch == 0 || a.alert_rate == 0 || a.rate == 0 {
        bail!("--servers, --batch, --rate and --alert-rate must be at least 1");
    }
    let store = open_bench_database(&a.database).await?;
    let lab = crate::create_token(&store, "lab", "", Some("bench")).await?;
    let test_point = crate::create_token(&store, "test_point", "", Some("bench")).await?;
    let health = crate::create_token(&store, "health", "", Some("bench")).await?;
    let officer = crate::create_token(&store, "officer", "", Some("bench")).await?;
    if !store.checkpoints().await?.iter().any(|c| c.id == "CP-JINGHA") {
        let cp = tongxing_store::Checkpoint {
            id: "CP-JINGHA".into(),
            name: "京哈高速香河检查站".into(),
            road: Some("京哈高速".into()),
            kind: "police".into(),
        };
        store.upsert_checkpoint(&cp, Utc::now()).await?;
    }
    let servers: Vec<ServerProcess> = (0..a.servers).map(|_| start_server(&a.database)).collect::<Result<_>>()?;
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    println!("alerts: {} server processes on {}", addrs.len(), addrs.join(", "));

    // Setup, not timed: a sample at a test point and its commitment letter for each positive.
    let run_id = Utc::now().timestamp() as u64;
    let sampled_at = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let docs: Vec<(String, String)> = (0..a.alerts)
        .map(|k| (format!("AL{run_id}-{k}"), person_doc(100_000_000 + (run_id % 11_000) * 5_000 + k % 5_000)))
        .collect();
    {
        let (addr, tp, docs, sampled_at) = (addrs[0].clone(), test_point.clone(), docs.clone(), sampled_at.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let letter: serde_json::Value =
                serde_json::from_str(&ureq::get(&format!("http://{addr}/api/v1/letter")).call()?.into_string()?)?;
            for (sample, doc) in &docs {
                post_blocking(
                    &addr,
                    &format!("/api/v1/test-points/{TP}/samples"),
                    &tp,
                    &serde_json::json!({"document_number": doc, "sample_id": sample, "sampled_at": sampled_at}),
                )?;
                post_blocking(
                    &addr,
                    "/api/v1/commitments",
                    &tp,
                    &serde_json::json!({"document_number": doc, "test_point": TP, "sample_id": sample,
                        "letter_version": letter["version"], "letter_sha256": letter["sha256"]}),
                )?;
            }
            Ok(())
        })
        .await??;
    }

    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let follower = tokio::spawn(follow_stream(addrs[0].clone(), health.clone(), arrivals.clone()));
    tokio::time::sleep(StdDuration::from_millis(500)).await;

    // The steady stream of negative results.
    let seconds = a.alerts as f64 / a.alert_rate as f64 + 1.0;
    let batches = ((a.rate as f64 * seconds) / a.batch as f64).ceil() as u64;
    let every = StdDuration::from_secs_f64(a.batch as f64 / a.rate as f64);
    let next = Arc::new(AtomicU64::new(0));
    let rows_sent = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut loaders = Vec::new();
    for w in 0..(addrs.len() * 4) {
        let (addr, lab, next, rows_sent) =
            (addrs[w % addrs.len()].clone(), lab.clone(), next.clone(), rows_sent.clone());
        let (batch, people) = (a.batch, a.people);
        loaders.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut rng = Rng::new(run_id ^ (w as u64 + 1));
            let sampled = (Utc::now() - Duration::hours(2)).to_rfc3339();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= batches {
                    return Ok::<_, anyhow::Error>(());
                }
                tokio::time::sleep_until(start + every * i as u32).await;
                let rows: Vec<String> = (0..batch)
                    .map(|j| {
                        format!(
                            r#"{{"lab":"BENCH-LAB","sample_id":"N{run_id}-{i}-{j}","document_number":"{}","sampled_at":"{sampled}","site":"H1","site_kind":"hospital","result":"negative"}}"#,
                            person_doc(rng.below(people.max(1)))
                        )
                    })
                    .collect();
                let body = format!(r#"{{"results":[{}]}}"#, rows.join(","));
                let status = post(&mut stream, &mut buf, "/api/v1/results/batch", &lab, &body).await?;
                if status != 200 {
                    bail!("a batch of results was answered {status}");
                }
                rows_sent.fetch_add(batch, Ordering::Relaxed);
            }
        }));
    }

    // The positives, at their own pace, to the other servers.
    let targets: Vec<String> = if addrs.len() > 1 { addrs[1..].to_vec() } else { addrs.clone() };
    let mut sent: Vec<(String, Instant, Instant)> = Vec::new();
    let pace = StdDuration::from_secs_f64(1.0 / a.alert_rate as f64);
    let mut positives = tokio::task::JoinSet::new();
    for (k, (sample, doc)) in docs.iter().enumerate() {
        tokio::time::sleep_until(start + pace * k as u32).await;
        let addr = targets[k % targets.len()].clone();
        let body = serde_json::json!({"lab": TP, "sample_id": sample, "document_number": doc, "sampled_at": sampled_at,
            "site": TP, "site_kind": "service_area", "result": "positive"});
        let (lab, sample) = (lab.clone(), sample.clone());
        positives.spawn_blocking(move || {
            let t0 = Instant::now();
            post_blocking(&addr, "/api/v1/results", &lab, &body).map(|_| (sample, t0, Instant::now()))
        });
    }
    while let Some(r) = positives.join_next().await {
        sent.push(r??);
    }
    for l in loaders {
        l.await??;
    }
    let load_secs = start.elapsed().as_secs_f64();
    let rows = rows_sent.load(Ordering::Relaxed);
    // The last alerts' way to the stream.
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while arrivals.lock().await.len() < sent.len() && Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let arrived = arrivals.lock().await.clone();
    let (mut from_send, mut from_commit) = (Vec::new(), Vec::new());
    for (sample, t0, answered) in &sent {
        if let Some(at) = arrived.get(sample) {
            from_send.push(at.saturating_duration_since(*t0));
            from_commit.push(at.saturating_duration_since(*answered));
        }
    }
    println!(
        "alerts: {} positive results at {}/s to {} server(s), SSE client on the first; meanwhile {rows} negative results \
         in batches of {} = {:.0} rows/s (target {}/s) over {load_secs:.1} s",
        sent.len(),
        a.alert_rate,
        targets.len(),
        a.batch,
        rows as f64 / load_secs,
        a.rate
    );
    println!("alerts: result sent → alert on the stream: {}", percentiles(from_send));
    println!("alerts: result answered (committed) → alert on the stream: {}", percentiles(from_commit));
    println!("alerts: {} of {} alerts arrived", arrived.len(), sent.len());

    if a.checks > 0 {
        let token = officer.clone();
        let people = a.people;
        let addr: std::net::SocketAddr = addrs[0].parse()?;
        let run = crate::bench::load(addr, a.checks, a.concurrency, move |rng| {
            let doc = person_doc(rng.below(people.max(1)));
            let body = format!(r#"{{"checkpoint_id":"CP-JINGHA","document_number":"{doc}"}}"#);
            format!(
                "POST /api/v1/checks HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        })
        .await?;
        println!(
            "checks against server 1 (outbox feed with an SSE client, webhook relay in the lease race): {} requests, {} \
             connections, {}",
            run.latencies.len(),
            a.concurrency,
            run.summary()
        );
    }
    follower.abort();
    drop(servers);
    store.close().await;
    Ok(())
}
