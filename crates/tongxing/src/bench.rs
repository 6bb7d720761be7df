//! `tongxing bench`: the measurements behind docs/PERFORMANCE.md, printed as figures.
//!
//! - `decide`: the pure decision function on one core.
//! - `offline`: the offline checkpoint's decision on a pass against raw signature verification
//!   (`bench_offline.rs`).
//! - `populate`: fills a database with people and results (for the other benches).
//! - `import`: writes a lab CSV of N rows and imports it as `tongxing import results` does.
//! - `checks`: the real server on a loopback port and a load generator in the same process,
//!   each check writing its entry event; throughput and latency percentiles.
//! - `alerts`: delivery under load, with real `serve` processes (`bench_alerts.rs`).
//!
//! `populate`, `import` and `checks` write made-up people, results, entry events and a token:
//! they take no default database and refuse one that holds anything not made by a bench
//! command. A database they start with empty gets the checkpoint [`MARK`] (kind `bench`), which
//! lets later bench commands use it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use clap::{Args, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongxing_domain::facts::{
    CheckpointFacts, CodeColour, CodeFacts, CommuterFacts, CommuterStatus, Facts, PersonFacts, SampleFact, SiteKind,
    TestResult,
};
use tongxing_domain::ids::{Document, DocumentKind};
use tongxing_domain::{Policy, decide};
use tongxing_store::{Checkpoint, CommuterApplication, PersonInput, SampleInput, Store};

use crate::demo::Rng;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCmd,
}

/// The help of every bench `--database`.
const DATABASE_HELP: &str = "The benchmark's own database: sqlite://PATH or postgres://USER:PASS@HOST/DB. \
    No default; refused unless empty or made by a bench command (bench commands write made-up data)";

/// The checkpoint that marks a database as made by a bench command.
pub const MARK: &str = "BENCH";

#[derive(Subcommand)]
enum BenchCmd {
    /// The pure decision function, single-threaded.
    Decide {
        /// Decisions to time.
        #[arg(long, default_value_t = 5_000_000)]
        iterations: u64,
    },
    /// Fill a database: N people, M results, a share of them commuters, and checkpoints.
    Populate {
        #[arg(long, env = "TONGXING_DATABASE", help = DATABASE_HELP)]
        database: String,
        /// People to create (3 % of them approved commuters).
        #[arg(long, default_value_t = 1_000_000)]
        people: u64,
        /// Test results to create, spread evenly over the people, sampled in the last 30 days.
        #[arg(long, default_value_t = 10_000_000)]
        results: u64,
    },
    /// Import a generated lab CSV of N rows (timed: the import only).
    Import {
        #[arg(long, env = "TONGXING_DATABASE", help = DATABASE_HELP)]
        database: String,
        /// Rows of the generated file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// People the rows are spread over (rows / people samples each).
        #[arg(long, default_value_t = 1_000_000)]
        people: u64,
        /// Seed of the generated rows: a different seed gives new samples.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Rows per transaction (as `import results --batch`; the same default).
        #[arg(long)]
        batch: Option<usize>,
    },
    /// Checkpoint decisions over HTTP against a populated database.
    Checks {
        #[arg(long, env = "TONGXING_DATABASE", help = DATABASE_HELP)]
        database: String,
        /// People the populated database holds (checks pick among them).
        #[arg(long, default_value_t = 1_000_000)]
        people: u64,
        /// Checks to send in all.
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        /// Concurrent connections (checkpoint terminals).
        #[arg(long, default_value_t = 32)]
        concurrency: u64,
        /// Run the analytics job (rollups and warnings, every second) while the checks arrive,
        /// as `serve` does.
        #[arg(long)]
        rollups: bool,
    },
    /// The dashboard's queries over a simulated month (`tongxing simulate` first): each timed
    /// 20 times; then a full rollup rebuild (`--rebuild`).
    Analytics {
        #[arg(long, env = "TONGXING_DATABASE", help = DATABASE_HELP)]
        database: String,
        /// Also time a full rebuild of the rollups from the entry events.
        #[arg(long)]
        rebuild: bool,
    },
    /// The offline checkpoint's decision on a pass (every stage, then the rules, through
    /// decide_on_pass) against raw ES256 verification of the same passes, one core.
    Offline {
        /// Entries of the revocation list (random, plus one pass in a hundred revoked).
        #[arg(long, default_value_t = 1_000_000)]
        revoked: u64,
        /// Paired rounds of 300 ms each.
        #[arg(long, default_value_t = 15)]
        rounds: u32,
    },
    /// Delivery: positive results over the API, each raising an alert, while results arrive
    /// at a steady rate; the time from the result's request to its alert on an SSE client of
    /// another server process (PostgreSQL: several `serve` processes). Then checks over HTTP
    /// against a server running the outbox feed and the webhook relay.
    Alerts(crate::bench_alerts::AlertsArgs),
    /// The overdue scan: `open` pending commitments, `due` of them past their deadline; times
    /// one scan that ends the due ones (an alert and a yellow code each) and one that finds none.
    Overdue {
        #[arg(long, env = "TONGXING_DATABASE", help = DATABASE_HELP)]
        database: String,
        /// People the populated database holds (commitments are spread over them).
        #[arg(long, default_value_t = 1_000_000)]
        people: u64,
        /// Open commitments.
        #[arg(long, default_value_t = 1_000_000)]
        open: u64,
        /// Of which past their deadline.
        #[arg(long, default_value_t = 1_000)]
        due: u64,
    },
    /// Pass issuance over HTTP: citizens fetching their pass (the page's data and a freshly
    /// signed QR text) against a populated database, with a key folder made for the run.
    Passes {
        #[arg(long, env = "TONGXING_DATABASE", help = DATABASE_HELP)]
        database: String,
        /// People the populated database holds (citizens are picked among them).
        #[arg(long, default_value_t = 1_000_000)]
        people: u64,
        /// Citizens signed in (sessions made directly in the store).
        #[arg(long, default_value_t = 2_000)]
        citizens: u64,
        /// Passes to fetch in all.
        #[arg(long, default_value_t = 50_000)]
        requests: u64,
        /// Concurrent connections (citizens' phones).
        #[arg(long, default_value_t = 32)]
        concurrency: u64,
    },
}

pub async fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchCmd::Decide { iterations } => bench_decide(iterations),
        BenchCmd::Offline { revoked, rounds } => crate::bench_offline::bench_offline(revoked, rounds),
        BenchCmd::Populate { database, people, results } => populate(&database, people, results).await,
        BenchCmd::Import { database, rows, people, seed, batch } => {
            bench_import(&database, rows, people, seed, batch).await
        }
        BenchCmd::Checks { database, people, requests, concurrency, rollups } => {
            bench_checks(&database, people, requests, concurrency, rollups).await
        }
        BenchCmd::Alerts(a) => crate::bench_alerts::run(a).await,
        BenchCmd::Analytics { database, rebuild } => bench_analytics(&database, rebuild).await,
        BenchCmd::Overdue { database, people, open, due } => bench_overdue(&database, people, open, due).await,
        BenchCmd::Passes { database, people, citizens, requests, concurrency } => {
            bench_passes(&database, people, citizens, requests, concurrency).await
        }
    }
}

/// Opens a database for a bench command that writes: one that is empty (then marked with the
/// checkpoint [`MARK`]) or marked already. Anything else may be a live database, and is refused.
pub async fn open_bench_database(database: &str) -> Result<Store> {
    let store = Store::connect(database).await.with_context(|| format!("opening {database}"))?;
    if store.checkpoints().await?.iter().any(|c| c.id == MARK && c.kind == "bench") {
        return Ok(store);
    }
    let c = store.counts().await?;
    let empty = c.people == 0
        && c.samples == 0
        && c.commuters == 0
        && c.checkpoints == 0
        && c.entry_events == 0
        && store.policies().await?.is_empty();
    if !empty {
        store.close().await;
        anyhow::bail!(
            "{database} holds data that no bench command made ({} people, {} samples, {} checkpoints); bench \
             commands write made-up people, results and entry events, so they run on a database of their own \
             (an empty one, e.g. --database sqlite://bench.db, or one made by `tongxing bench populate`)",
            c.people,
            c.samples,
            c.checkpoints
        );
    }
    let mark = Checkpoint {
        id: MARK.into(),
        name: "made by tongxing bench: made-up data".into(),
        road: None,
        kind: "bench".into(),
    };
    store.upsert_checkpoint(&mark, Utc::now()).await?;
    Ok(store)
}

/// A realistic mix of facts: visitors with 0-3 samples, commuters, a few yellow codes.
fn facts_mix(n: usize, rng: &mut Rng, at: chrono::DateTime<Utc>) -> Vec<Facts> {
    (0..n)
        .map(|i| {
            let samples = (0..rng.below(4))
                .map(|k| SampleFact {
                    lab: "BJ-LAB-017".into(),
                    sample_id: format!("S{i}-{k}"),
                    sampled_at: at - Duration::minutes(rng.below(20 * 24 * 60) as i64),
                    site: if rng.chance(20) { "SA-JINGHA-XIANGHE".into() } else { "H-CHAOYANG".into() },
                    site_kind: if rng.chance(20) { SiteKind::ServiceArea } else { SiteKind::Hospital },
                    result: match rng.below(20) {
                        0 => TestResult::Pending,
                        1 => TestResult::Invalid,
                        _ => TestResult::Negative,
                    },
                })
                .collect();
            let commuter = rng.chance(30).then(|| CommuterFacts {
                status: if rng.chance(90) { CommuterStatus::Approved } else { CommuterStatus::Suspended },
                valid_until: Some(at + Duration::days(100)),
                first_checked_at: rng.chance(80).then(|| at - Duration::days(3)),
            });
            let code = rng.chance(3).then(|| CodeFacts {
                colour: CodeColour::Yellow,
                reason: Some("弹窗".into()),
                expires_at: None,
            });
            Facts {
                person: PersonFacts { known: true, code, commuter, samples, commitment_letter: rng.chance(10) },
                checkpoint: CheckpointFacts { id: "CP-JINGHA".into(), road: Some("京哈高速".into()) },
            }
        })
        .collect()
}

fn bench_decide(iterations: u64) -> Result<()> {
    let policy = Policy::beijing_2021_11_17();
    let at = Utc::now();
    let facts = facts_mix(4096, &mut Rng::new(1), at);
    let mut passes = 0u64;
    let start = Instant::now();
    for i in 0..iterations {
        let d = decide(&facts[(i as usize) & 4095], &policy, at);
        passes += (d.verdict == tongxing_domain::Verdict::Pass) as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "decide: {iterations} decisions in {secs:.3} s on one core = {:.0} decisions/s ({:.0} ns each; {passes} passes)",
        iterations as f64 / secs,
        secs * 1e9 / iterations as f64
    );
    Ok(())
}

/// The i-th generated person's document: unique for i below 160 million, stable across runs.
pub(crate) fn person_doc(i: u64) -> String {
    const REGIONS: [&str; 8] = ["110105", "110108", "131082", "131028", "131024", "120104", "130102", "110101"];
    let region = REGIONS[(i % 8) as usize];
    let j = i / 8;
    let birth =
        chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("date") + Duration::days(((j / 1000) % 20000) as i64);
    let first17 = format!("{region}{}{:03}", birth.format("%Y%m%d"), j % 1000);
    let check = tongxing_domain::ids::id_check_char(first17.as_bytes());
    format!("{first17}{check}")
}

async fn populate(database: &str, people: u64, results: u64) -> Result<()> {
    let store = open_bench_database(database).await?;
    let now = Utc::now();
    let today = now.with_timezone(&tongxing_domain::shanghai()).date_naive();
    let policy = Policy::beijing_2021_11_17();
    for tp in &policy.designated_test_points {
        let short = tp.id.trim_start_matches("SA-").split('-').next().unwrap_or("X").to_string();
        store
            .upsert_checkpoint(
                &Checkpoint {
                    id: format!("CP-{short}"),
                    name: tp.road.clone(),
                    road: Some(tp.road.clone()),
                    kind: "police".into(),
                },
                now,
            )
            .await?;
    }
    let start = Instant::now();
    let mut rng = Rng::new(42);
    let per_person = results.div_ceil(people.max(1));
    let mut batch = Vec::with_capacity(10_000);
    let mut written = 0u64;
    for i in 0..people {
        let doc = Document::parse(DocumentKind::ResidentId, &person_doc(i), today)?;
        for k in 0..per_person {
            if written + batch.len() as u64 >= results {
                break;
            }
            batch.push(SampleInput {
                lab: format!("LAB-{:02}", i % 40),
                sample_id: format!("P{i:010}{k:02}"),
                document: doc.clone(),
                sampled_at: now - Duration::minutes(rng.below(30 * 24 * 60) as i64),
                site: "H-CHAOYANG".into(),
                site_kind: SiteKind::Hospital,
                result: if rng.chance(3) { TestResult::Pending } else { TestResult::Negative },
            });
        }
        if batch.len() >= 10_000 {
            store.submit_samples(&batch, "bench", now).await?;
            written += batch.len() as u64;
            batch.clear();
            if written % 1_000_000 < 10_000 {
                eprintln!("populate: {written} results, {:.0} rows/s", written as f64 / start.elapsed().as_secs_f64());
            }
        }
    }
    store.submit_samples(&batch, "bench", now).await?;
    written += batch.len() as u64;
    // 3% commuters, imported approved.
    let mut commuters = Vec::new();
    for i in (0..people).step_by(33) {
        let doc = Document::parse(DocumentKind::ResidentId, &person_doc(i), today)?;
        let home = tongxing_domain::ids::RegionCode::parse("131082")?;
        commuters.push((
            PersonInput { document: doc, name: None, phone: None, residence_region: Some(home) },
            CommuterApplication {
                kind: tongxing_domain::facts::CommuterKind::Worker,
                residence_region: home,
                residence_proof: "lease".into(),
                employer_name: "bench".into(),
                employer_uscc: "91350100M000100Y43".into(),
                work_region: tongxing_domain::ids::RegionCode::parse("110105")?,
            },
        ));
        if commuters.len() >= 5000 {
            store.import_commuters(&commuters, now + Duration::days(180), "bench", now).await?;
            commuters.clear();
        }
    }
    store.import_commuters(&commuters, now + Duration::days(180), "bench", now).await?;
    let secs = start.elapsed().as_secs_f64();
    println!("populate: {people} people, {written} results in {secs:.1} s ({:.0} results/s)", written as f64 / secs);
    println!("{:?}", store.counts().await?);
    store.close().await;
    Ok(())
}

async fn bench_import(database: &str, rows: u64, people: u64, seed: u64, batch: Option<usize>) -> Result<()> {
    // Refused before the file is written.
    let store = open_bench_database(database).await?;
    let dir = std::env::temp_dir().join(format!("tongxing-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file: PathBuf = dir.join("results.csv");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
        writeln!(w, "lab,sample_id,document_number,sampled_at,site,site_kind,result")?;
        let mut rng = Rng::new(seed);
        // Yesterday (Beijing time), as a round's results arrive: the day is the same all day
        // long, so that importing the same rows twice that day is a re-import (unchanged).
        let beijing = tongxing_domain::shanghai();
        let yesterday = Utc::now().with_timezone(&beijing).date_naive() - Duration::days(1);
        let base = yesterday
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_local_timezone(beijing)
            .single()
            .expect("fixed offset");
        for r in 0..rows {
            let p = rng.below(people.max(1));
            let t = base + Duration::seconds(rng.below(24 * 3600) as i64);
            let result = if rng.chance(5) { "pending" } else { "negative" };
            writeln!(
                w,
                "LAB-{:02},S{seed:02}{r:010},{},{},C-{},community,{result}",
                r % 40,
                person_doc(p),
                t.format("%Y-%m-%d %H:%M:%S"),
                p % 500
            )?;
        }
    }
    let start = Instant::now();
    let parallel = crate::import::default_parallel(&store);
    let batch = batch.unwrap_or_else(|| crate::import::default_batch(&store)).max(1);
    let report = crate::import::import_results(&store, &file, batch, "bench", parallel).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "import: {rows} rows in {secs:.2} s = {:.0} rows/s ({} accepted, {} unchanged, {} corrected, {} rejected)",
        rows as f64 / secs,
        report.accepted,
        report.unchanged,
        report.corrected,
        report.rejected.len()
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn bench_checks(database: &str, people: u64, requests: u64, concurrency: u64, rollups: bool) -> Result<()> {
    let store = open_bench_database(database).await?;
    let token = crate::create_token(&store, "officer", "", Some("bench")).await?;
    let state =
        tongxing_http::AppState::new(tongxing_app::App::new(store.clone(), crate::load_policies(&[])?.policies));
    // The analytics job's runs: (seconds, events counted).
    let ticks: Arc<std::sync::Mutex<Vec<(f64, i64)>>> = Arc::default();
    if rollups {
        // Caught up first (a database the rollups never saw is counted here), and the periodic
        // detectors' and testing demand's first run done (`serve` runs them at start-up), then
        // as `serve` runs them while the checks arrive: the rollup every second, the
        // periodic detectors apart at their own pace (surges every minute, labs every ten,
        // demand every hour: a run of a minute or more includes them).
        state.app.rollup(Utc::now(), usize::MAX).await?;
        let mut clock = tongxing_app::analytics::JobClock::default();
        clock.periodic(&state.app, Utc::now()).await?;
        let app = state.app.clone();
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                let t0 = Instant::now();
                match app.rollup(Utc::now(), 40).await {
                    Ok(run) => ticks.lock().unwrap().push((t0.elapsed().as_secs_f64(), run.events as i64)),
                    Err(e) => tracing::warn!(error = %e, "analytics job"),
                }
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            }
        });
        let app = state.app.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = clock.periodic(&app, Utc::now()).await {
                    tracing::warn!(error = %e, "analytics job");
                }
                tokio::time::sleep(StdDuration::from_secs(5)).await;
            }
        });
    }
    let addr = serve(state).await?;
    let run = load(addr, requests, concurrency, move |rng| {
        let doc = person_doc(rng.below(people.max(1)));
        let body = format!(r#"{{"checkpoint_id":"CP-JINGHA","document_number":"{doc}"}}"#);
        format!(
            "POST /api/v1/checks HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    })
    .await?;
    println!(
        "checks: {} requests, {concurrency} connections, {}; pass {} conditional {} deny {}",
        run.latencies.len(),
        run.summary(),
        run.verdicts[0],
        run.verdicts[1],
        run.verdicts[2]
    );
    if rollups {
        let mut t = ticks.lock().unwrap().clone();
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(max) = t.last() {
            let events: i64 = t.iter().map(|x| x.1).sum();
            println!(
                "rollup during the load: {} runs, {events} events counted; a run p50 {:.0} ms, max {:.0} ms \
                 ({} events): an event waits at most the 1 s pause plus a run, {:.2} s, for its warning",
                t.len(),
                t[t.len() / 2].0 * 1000.0,
                max.0 * 1000.0,
                max.1,
                1.0 + max.0
            );
        }
    }
    println!("{:?}", store.counts().await?);
    store.close().await;
    Ok(())
}

async fn bench_analytics(database: &str, rebuild: bool) -> Result<()> {
    use tongxing_app::analytics::FlowRequest;
    use tongxing_store::FlowDim;
    let store = open_bench_database(database).await?;
    let app = tongxing_app::App::new(store.clone(), crate::load_policies(&[])?.policies);
    let c = store.counts().await?;
    if rebuild {
        let (events, secs) = crate::rollup::rebuild(&store).await?;
        println!(
            "analytics: rollup rebuild: {events} entry events in {secs:.1} s ({:.0} events/s)",
            events as f64 / secs
        );
    } else {
        app.rollup(Utc::now(), usize::MAX).await?;
    }
    let now = Utc::now();
    app.compute_demand(now).await?;
    let flows = |grain: i64, days: i64, rows: FlowDim, columns: FlowDim| FlowRequest {
        grain,
        since: now - Duration::days(days),
        until: now,
        rows,
        columns,
        checkpoint: None,
        verdict: None,
        who: None,
        mode: None,
    };
    let queries: Vec<(&str, FlowRequest)> = vec![
        ("flows 15 min × checkpoint, last 24 h", flows(15, 1, FlowDim::Checkpoint, FlowDim::Bucket)),
        ("flows hour × verdict, last 7 days", flows(60, 7, FlowDim::Bucket, FlowDim::Verdict)),
        ("flows day × reason, last 30 days", flows(1440, 30, FlowDim::Reason, FlowDim::Bucket)),
        ("flows checkpoint × who, last 30 days", flows(1440, 30, FlowDim::Checkpoint, FlowDim::Who)),
        ("flows hour of day × mode, last 7 days", flows(60, 7, FlowDim::Mode, FlowDim::HourOfDay)),
    ];
    println!("analytics: {} entry events in the database; each query 20 times, suppressed (analyst):", c.entry_events);
    let time = |label: &str, mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        println!("  {label:<45} p50 {:>7.2} ms  max {:>7.2} ms", times[times.len() / 2], times[times.len() - 1]);
    };
    for (label, q) in &queries {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            app.flows(q, true).await?;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        time(label, times);
    }
    let today = now.with_timezone(&tongxing_domain::shanghai()).date_naive();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        app.profile(today, None, true).await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    time("profile: today beside 3 past weeks", times);
    let mut times = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        app.shortcuts(now - Duration::days(7), now, true).await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    time("shortcuts by pair, 7 days", times);
    let mut times = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        app.demand(true).await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    time("testing demand (the job's snapshot)", times);
    let t0 = Instant::now();
    app.compute_demand(now).await?;
    println!("  computing testing demand (the job, hourly): {:.0} ms", t0.elapsed().as_secs_f64() * 1000.0);
    let t0 = Instant::now();
    app.detect_surges(now).await?;
    let surges = t0.elapsed().as_secs_f64() * 1000.0;
    let t1 = Instant::now();
    app.detect_clusters(now).await?;
    let clusters = t1.elapsed().as_secs_f64() * 1000.0;
    let t2 = Instant::now();
    app.detect_labs(now).await?;
    let labs = t2.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  periodic detectors: surges and slow rises {surges:.0} ms and clusters {clusters:.0} ms (every minute), labs {labs:.0} ms (every ten)"
    );
    store.close().await;
    Ok(())
}

async fn bench_overdue(database: &str, people: u64, open: u64, due: u64) -> Result<()> {
    let store = open_bench_database(database).await?;
    let now = Utc::now();
    let start = Instant::now();
    store.bench_commitments(open as i64, due as i64, people as i64, now).await?;
    println!("overdue: {open} open commitments written in {:.1} s", start.elapsed().as_secs_f64());
    let app = tongxing_app::App::new(store.clone(), crate::load_policies(&[])?.policies);
    let start = Instant::now();
    let raised = app.scan_overdue(now, 1000).await?;
    let first = start.elapsed();
    let start = Instant::now();
    let again = app.scan_overdue(now, 1000).await?;
    let second = start.elapsed();
    println!(
        "overdue: scan over {open} open commitments, {due} due: {raised} alerts in {:.3} s ({:.0} µs each); \
         the next scan (none due) in {:.1} ms, {again} alerts",
        first.as_secs_f64(),
        first.as_micros() as f64 / raised.max(1) as f64,
        second.as_secs_f64() * 1000.0
    );
    store.close().await;
    Ok(())
}

async fn bench_passes(database: &str, people: u64, citizens: u64, requests: u64, concurrency: u64) -> Result<()> {
    let store = open_bench_database(database).await?;
    let dir = std::env::temp_dir().join(format!("tongxing-bench-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crate::keys::generate(&dir, tongxing_pass::Algorithm::Es256, Utc::now())?;
    let keys = crate::keys::load(&dir, Utc::now())?;
    // Sessions for citizens spread over the population, made as signing in makes them.
    let mut tokens = Vec::new();
    let mut rng = Rng::new(99);
    while (tokens.len() as u64) < citizens {
        let doc = person_doc(rng.below(people.max(1)));
        let Some(person) = store.person(&format!("ID:{doc}")).await? else { continue };
        let t = tongxing_http::auth::new_token();
        store.create_session(&t.id, &t.hash, person.id, Utc::now(), Utc::now() + Duration::hours(1)).await?;
        tokens.push(t.secret);
    }
    let app = tongxing_app::App::new(store.clone(), crate::load_policies(&[])?.policies).with_pass_keys(keys);
    let addr = serve(tongxing_http::AppState::new(app)).await?;
    let tokens = Arc::new(tokens);
    let run = load(addr, requests, concurrency, move |rng| {
        let token = &tokens[rng.below(tokens.len() as u64) as usize];
        format!("GET /api/v1/citizen/pass HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\r\n")
    })
    .await?;
    println!(
        "passes: {} requests, {concurrency} connections, {} (each a page of data and a newly signed QR); pass {} conditional {} deny {}",
        run.latencies.len(),
        run.summary(),
        run.verdicts[0],
        run.verdicts[1],
        run.verdicts[2]
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Serves the API on a loopback port in this process.
async fn serve(state: tongxing_http::AppState) -> Result<std::net::SocketAddr> {
    let app = tongxing_http::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// What a load run measured.
pub(crate) struct Run {
    pub(crate) latencies: Vec<StdDuration>,
    /// Answers with a pass, conditional, deny verdict.
    verdicts: [u64; 3],
    secs: f64,
}

impl Run {
    pub(crate) fn summary(&self) -> String {
        let all = &self.latencies;
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        let ms = |d: StdDuration| d.as_secs_f64() * 1000.0;
        format!(
            "{:.2} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.secs,
            all.len() as f64 / self.secs,
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(*all.last().unwrap_or(&StdDuration::ZERO))
        )
    }
}

/// Sends `requests` requests over `concurrency` keep-alive connections, each made by `request`
/// (given the connection's random source), and measures each answer's latency. An answer that
/// is not a 200 stops the run.
pub(crate) async fn load(
    addr: std::net::SocketAddr,
    requests: u64,
    concurrency: u64,
    request: impl Fn(&mut Rng) -> String + Send + Sync + 'static,
) -> Result<Run> {
    let request = Arc::new(request);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (next, request) = (next.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut verdicts = [0u64; 3];
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut rng = Rng::new(c + 1);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let req = request(&mut rng);
                let t0 = Instant::now();
                stream.write_all(req.as_bytes()).await?;
                let text = read_response(&mut stream, &mut buf).await?;
                latencies.push(t0.elapsed());
                if !text.starts_with("HTTP/1.1 200") {
                    anyhow::bail!("request failed: {}", text.lines().next().unwrap_or(""));
                }
                let v = if text.contains("\"verdict\":\"pass\"") {
                    0
                } else if text.contains("\"verdict\":\"conditional\"") {
                    1
                } else {
                    2
                };
                verdicts[v] += 1;
            }
            Ok::<_, anyhow::Error>((latencies, verdicts))
        }));
    }
    let mut latencies = Vec::with_capacity(requests as usize);
    let mut verdicts = [0u64; 3];
    for t in tasks {
        let (l, v) = t.await??;
        latencies.extend(l);
        for k in 0..3 {
            verdicts[k] += v[k];
        }
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort();
    Ok(Run { latencies, verdicts, secs })
}

/// Reads one HTTP/1.1 response with a content-length body; returns it as text.
pub(crate) async fn read_response(stream: &mut tokio::net::TcpStream, buf: &mut [u8]) -> Result<String> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            anyhow::bail!("connection closed");
        }
        filled += n;
        let text = String::from_utf8_lossy(&buf[..filled]);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if filled >= end + 4 + len {
                return Ok(text[..end + 4 + len].to_string());
            }
        }
    }
}
