//! `tongxing import`: CSV files from labs and the police's initial commuter list.
//!
//! Lab files give times in the labs' local format `2021-11-17 08:30:00`, meaning Asia/Shanghai
//! (UTC+8); RFC 3339 with an offset is accepted too. A bad row is reported with its line number
//! and never stops the good ones; each batch of good rows is one transaction, so a row is either
//! wholly stored or not at all. Re-running the same file changes nothing.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use clap::Subcommand;
use serde::Deserialize;
use tokio::sync::mpsc;
use tongxing_http::error::ApiError;
use tongxing_http::{Application, DocumentRef, ResultInput, parse_application, parse_document, parse_sample};
use tongxing_store::{PersonInput, SampleInput, SampleOutcome, Store};

#[derive(Subcommand)]
pub enum ImportCmd {
    /// A lab's results: lab,sample_id,[document_kind,]document_number,sampled_at,site,site_kind,result
    Results {
        file: PathBuf,
        #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
        /// Rows per transaction (default: 200,000 on SQLite, 50,000 on PostgreSQL).
        #[arg(long)]
        batch: Option<usize>,
        /// Who is importing, for the history (e.g. the lab's name).
        #[arg(long, default_value = "import")]
        by: String,
        /// Batches written at once (default: 1 on SQLite, which has one writer; 4 on PostgreSQL).
        #[arg(long)]
        parallel: Option<usize>,
    },
    /// The initial commuter database: [document_kind,]document_number,name,phone,kind,
    /// residence_region,residence_proof,employer_name,employer_uscc,work_region
    Commuters {
        file: PathBuf,
        #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
        #[arg(long, default_value = "import")]
        by: String,
    },
}

/// What an import did, row by row.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub accepted: usize,
    pub unchanged: usize,
    pub corrected: usize,
    /// (line number, reason)
    pub rejected: Vec<(u64, String)>,
}

impl ImportReport {
    pub fn print(&self, elapsed: std::time::Duration) {
        let total = self.accepted + self.unchanged + self.corrected + self.rejected.len();
        for (line, reason) in self.rejected.iter().take(1000) {
            println!("line {line}: rejected: {reason}");
        }
        if self.rejected.len() > 1000 {
            println!("... and {} more rejected rows", self.rejected.len() - 1000);
        }
        println!(
            "{total} rows in {:.1} s ({:.0} rows/s): {} accepted, {} unchanged, {} corrected, {} rejected",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64().max(1e-9),
            self.accepted,
            self.unchanged,
            self.corrected,
            self.rejected.len()
        );
    }
}

pub async fn run(cmd: ImportCmd) -> Result<()> {
    match cmd {
        ImportCmd::Results { file, database, batch, by, parallel } => {
            let store = Store::connect(&database).await.with_context(|| format!("opening {database}"))?;
            let start = Instant::now();
            let parallel = parallel.unwrap_or_else(|| default_parallel(&store)).max(1);
            let batch = batch.unwrap_or_else(|| default_batch(&store)).max(1);
            let report = import_results(&store, &file, batch, &by, parallel).await?;
            report.print(start.elapsed());
            store.close().await;
        }
        ImportCmd::Commuters { file, database, by } => {
            let store = Store::connect(&database).await.with_context(|| format!("opening {database}"))?;
            let start = Instant::now();
            let policies = crate::load_policies(&[])?;
            let report = import_commuters(&store, &file, &policies[0], &by).await?;
            report.print(start.elapsed());
            store.close().await;
        }
    }
    Ok(())
}

/// Parses a lab time: local Asia/Shanghai `YYYY-MM-DD HH:MM:SS`, or RFC 3339 with an offset.
pub fn parse_lab_time(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S") {
        return tongxing_domain::shanghai().from_local_datetime(&t).single().map(|t| t.with_timezone(&Utc));
    }
    DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&Utc))
}

#[derive(Deserialize)]
struct ResultRow {
    lab: String,
    sample_id: String,
    #[serde(default)]
    document_kind: Option<String>,
    document_number: String,
    sampled_at: String,
    site: String,
    site_kind: String,
    result: String,
}

fn reason(e: ApiError) -> String {
    match e {
        ApiError::Invalid { field, reason } => format!("{field}: {reason}"),
        other => other.to_string(),
    }
}

fn row_to_sample(row: ResultRow, now: DateTime<Utc>) -> Result<SampleInput, String> {
    let sampled_at = parse_lab_time(&row.sampled_at).ok_or_else(|| {
        format!("sampled_at: '{}' is not a time like 2021-11-17 08:30:00 (Beijing time) or RFC 3339", row.sampled_at)
    })?;
    let input = ResultInput {
        lab: row.lab,
        sample_id: row.sample_id,
        document_kind: row.document_kind,
        document_number: row.document_number,
        sampled_at: row.sampled_at,
        site: row.site,
        site_kind: row.site_kind,
        result: row.result,
    };
    parse_sample(&input, sampled_at, "", now).map_err(reason)
}

enum Parsed {
    Batch { rows: Vec<SampleInput>, rejected: Vec<(u64, String)>, bytes: u64 },
    Failed(String),
}

/// Rows per transaction. On SQLite a batch's new index entries share pages with each other the
/// more of them there are (figures in docs/PERFORMANCE.md); PostgreSQL, writing 4 batches at
/// once, does best with smaller ones.
pub fn default_batch(store: &Store) -> usize {
    match store.kind() {
        tongxing_store::Kind::Sqlite => 200_000,
        tongxing_store::Kind::Postgres => 50_000,
    }
}

/// How many batches to write at once: SQLite has one writer; PostgreSQL takes several.
pub fn default_parallel(store: &Store) -> usize {
    match store.kind() {
        tongxing_store::Kind::Sqlite => 2,
        tongxing_store::Kind::Postgres => 4,
    }
}

/// Streams the file: a blocking thread parses and validates; up to `parallel` batches are
/// written at once, each in its own transaction.
pub async fn import_results(
    store: &Store,
    file: &Path,
    batch: usize,
    by: &str,
    parallel: usize,
) -> Result<ImportReport> {
    let total_bytes = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?.len();
    let reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("reading {}", file.display()))?;
    let (tx, mut rx) = mpsc::channel::<Parsed>(2);
    let now = Utc::now();
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                let _ = tx.blocking_send(Parsed::Failed(format!("cannot read the header line: {e}")));
                return;
            }
        };
        let required = ["lab", "sample_id", "document_number", "sampled_at", "site", "site_kind", "result"];
        let missing: Vec<_> = required.iter().filter(|c| !headers.iter().any(|h| h == **c)).collect();
        if !missing.is_empty() {
            let _ = tx.blocking_send(Parsed::Failed(format!(
                "the header line lacks the column(s) {missing:?}; expected: lab,sample_id,document_kind (optional),document_number,sampled_at,site,site_kind,result"
            )));
            return;
        }
        let mut rows = Vec::with_capacity(batch);
        let mut rejected = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line() + 1;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(line);
                    match record.deserialize::<ResultRow>(Some(&headers)) {
                        Ok(row) => match row_to_sample(row, now) {
                            Ok(s) => rows.push(s),
                            Err(e) => rejected.push((line, e)),
                        },
                        Err(e) => rejected.push((line, format!("unreadable row: {e}"))),
                    }
                }
                Err(e) => rejected.push((line, format!("unreadable row: {e}"))),
            }
            if rows.len() >= batch {
                let bytes = reader.position().byte();
                let msg = Parsed::Batch {
                    rows: std::mem::replace(&mut rows, Vec::with_capacity(batch)),
                    rejected: std::mem::take(&mut rejected),
                    bytes,
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
            }
        }
        let bytes = reader.position().byte();
        let _ = tx.blocking_send(Parsed::Batch { rows, rejected, bytes });
    });

    let mut report = ImportReport::default();
    let mut progress = Progress::new(total_bytes);
    let mut writing = tokio::task::JoinSet::new();
    let mut bytes_seen = 0;
    let count = |report: &mut ImportReport, outcomes: Vec<SampleOutcome>| {
        for o in outcomes {
            match o {
                SampleOutcome::Accepted => report.accepted += 1,
                SampleOutcome::Unchanged => report.unchanged += 1,
                SampleOutcome::Corrected => report.corrected += 1,
            }
        }
    };
    while let Some(msg) = rx.recv().await {
        match msg {
            Parsed::Failed(e) => anyhow::bail!("{}: {e}", file.display()),
            Parsed::Batch { rows, rejected, bytes } => {
                while writing.len() >= parallel {
                    let outcomes =
                        writing.join_next().await.expect("a batch in flight").context("a writer failed")??;
                    count(&mut report, outcomes);
                }
                let (store, by) = (store.clone(), by.to_string());
                writing.spawn(
                    async move { store.submit_samples(&rows, &by, Utc::now()).await.context("writing a batch") },
                );
                report.rejected.extend(rejected);
                bytes_seen = bytes;
                progress
                    .update(bytes_seen, report.accepted + report.unchanged + report.corrected + report.rejected.len());
            }
        }
    }
    while let Some(done) = writing.join_next().await {
        count(&mut report, done.context("a writer failed")??);
        progress.update(bytes_seen, report.accepted + report.unchanged + report.corrected + report.rejected.len());
    }
    parser.await.context("the CSV parser failed")?;
    progress.finish();
    Ok(report)
}

#[derive(Deserialize)]
struct CommuterRow {
    #[serde(default)]
    document_kind: Option<String>,
    document_number: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    kind: String,
    residence_region: String,
    residence_proof: String,
    employer_name: String,
    employer_uscc: String,
    work_region: String,
}

/// Imports approved commuters. A person who already has a certification is left unchanged.
pub async fn import_commuters(
    store: &Store,
    file: &Path,
    policy: &tongxing_domain::Policy,
    by: &str,
) -> Result<ImportReport> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("reading {}", file.display()))?;
    let now = Utc::now();
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    for (i, rec) in reader.deserialize::<CommuterRow>().enumerate() {
        let line = i as u64 + 2;
        let row = match rec {
            Ok(r) => r,
            Err(e) => {
                report.rejected.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let app = Application {
            document_kind: row.document_kind,
            document_number: row.document_number,
            name: row.name,
            phone: row.phone,
            kind: row.kind,
            residence_region: row.residence_region,
            residence_proof: row.residence_proof,
            employer_name: row.employer_name,
            employer_uscc: row.employer_uscc,
            work_region: row.work_region,
        };
        let parsed = parse_document(
            &DocumentRef { document_kind: app.document_kind.clone(), document_number: app.document_number.clone() },
            "",
            now,
        )
        .and_then(|d| parse_application(&app, policy, "").map(|p| (d, p)));
        match parsed {
            Ok((document, (name, phone, a))) => {
                rows.push((PersonInput { document, name, phone, residence_region: Some(a.residence_region) }, a))
            }
            Err(e) => report.rejected.push((line, reason(e))),
        }
    }
    let valid_until = now + chrono::Duration::days(policy.commuter_validity_days);
    for chunk in rows.chunks(2000) {
        for created in store.import_commuters(chunk, valid_until, by, now).await? {
            if created {
                report.accepted += 1;
            } else {
                report.unchanged += 1;
            }
        }
    }
    Ok(report)
}

/// A progress bar on stderr when it is a terminal; a line every few seconds otherwise.
struct Progress {
    total: u64,
    start: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total: total.max(1),
            start: Instant::now(),
            last: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }
    fn update(&mut self, bytes: u64, rows: usize) {
        let rate = rows as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        let frac = (bytes as f64 / self.total as f64).min(1.0);
        let mut err = std::io::stderr();
        if self.tty {
            let filled = (frac * 30.0) as usize;
            let _ = write!(
                err,
                "\r[{}{}] {:3.0}% {rows} rows, {rate:.0} rows/s ",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                frac * 100.0
            );
            let _ = err.flush();
        } else if self.last.elapsed().as_secs() >= 5 {
            let _ = writeln!(err, "{:3.0}% {rows} rows, {rate:.0} rows/s", frac * 100.0);
            self.last = Instant::now();
        }
    }
    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
