//! `tongxing import`: CSV files from labs and the police's initial commuter list.
//!
//! Lab files give times in the labs' local format `2021-11-17 08:30:00`, meaning Asia/Shanghai
//! (UTC+8); RFC 3339 with an offset is accepted too. A bad row is reported with its own line
//! number in the file (the header being line 1) and never stops the good ones; each batch of
//! good rows is one transaction, so a row is either wholly stored or not at all. Re-running the
//! same file changes nothing. The exit code tells a script what happened ([`EXIT_CODES`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use clap::{Args, Subcommand};
use serde::Deserialize;
use tokio::sync::mpsc;
pub use tongxing_app::csvfile::{CsvRows, Unreadable};
use tongxing_app::input::RawSample;
use tongxing_store::{SampleInput, SampleOutcome, Store};

/// Shown under `tongxing import --help` and each import's `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  every row was stored: accepted, unchanged (imported before) or a correction
  1  another failure: the database could not be opened or written
  2  invalid arguments
  3  some rows were rejected, each named with its line and reason; the other rows are stored
  4  the file could not be read: missing, empty, without the expected header line, or an I/O
     error part-way (the batches before it are stored; re-running the file is safe)";

/// Some rows were rejected; the others are stored.
pub const EXIT_REJECTED: u8 = 3;
/// The file could not be read (the error says why).
pub const EXIT_UNREADABLE: u8 = 4;

#[derive(Subcommand)]
#[command(after_help = EXIT_CODES)]
pub enum ImportCmd {
    /// A lab's results, one sample per row.
    ///
    /// Columns (named in the header line): lab, sample_id, document_kind (optional),
    /// document_number, sampled_at, site, site_kind, result; see README.md, "CSV formats".
    /// Times without an offset are Beijing time.
    #[command(after_help = EXIT_CODES)]
    Results {
        /// The CSV file: UTF-8, a header line naming the columns, then one sample per line.
        file: PathBuf,
        /// Rows per transaction (default: 200,000 on SQLite, 50,000 on PostgreSQL).
        #[arg(long)]
        batch: Option<usize>,
        /// Batches written at once (default: 2 on SQLite, which prepares one while the other is
        /// written; 4 on PostgreSQL).
        #[arg(long)]
        parallel: Option<usize>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The initial commuter database: people imported as approved commuters.
    ///
    /// Columns (named in the header line): document_kind (optional), document_number, name and
    /// phone (optional), kind, residence_region, residence_proof, employer_name, employer_uscc,
    /// work_region; see README.md, "CSV formats".
    #[command(after_help = EXIT_CODES)]
    Commuters {
        /// The CSV file: UTF-8, a header line naming the columns, then one person per line.
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// What both imports take.
#[derive(Args)]
pub struct CommonArgs {
    /// sqlite://PATH (created if missing) or postgres://USER:PASS@HOST/DB.
    #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
    database: String,
    /// Who is importing, recorded in the history (e.g. the lab's code).
    #[arg(long, default_value = "import")]
    by: String,
    /// Print one JSON object on stdout instead of text: the counts and every rejected row with
    /// its line and reason.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
    /// Print nothing but errors (no summary, no rejected rows, no progress); the exit code tells.
    #[arg(long, short)]
    quiet: bool,
}

impl ImportCmd {
    /// Whether the output is to be kept to errors.
    pub fn quiet(&self) -> bool {
        match self {
            ImportCmd::Results { common, .. } | ImportCmd::Commuters { common, .. } => common.quiet,
        }
    }
}

/// What an import did, row by row.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub accepted: usize,
    pub unchanged: usize,
    pub corrected: usize,
    /// (line number in the file, reason), in the file's order.
    pub rejected: Vec<(u64, String)>,
}

impl ImportReport {
    pub fn rows(&self) -> usize {
        self.accepted + self.unchanged + self.corrected + self.rejected.len()
    }

    /// The text for people: the first 1,000 rejected rows, then the counts.
    pub fn print(&self, elapsed: std::time::Duration) {
        let mut out = std::io::stdout().lock();
        for (line, reason) in self.rejected.iter().take(1000) {
            let _ = writeln!(out, "line {line}: rejected: {reason}");
        }
        if self.rejected.len() > 1000 {
            let _ = writeln!(out, "... and {} more rejected rows", self.rejected.len() - 1000);
        }
        let _ = writeln!(
            out,
            "{} rows in {:.1} s ({:.0} rows/s): {} accepted, {} unchanged, {} corrected, {} rejected",
            self.rows(),
            elapsed.as_secs_f64(),
            self.rows() as f64 / elapsed.as_secs_f64().max(1e-9),
            self.accepted,
            self.unchanged,
            self.corrected,
            self.rejected.len()
        );
    }

    /// The one JSON object for scripts (`--json`).
    pub fn json(&self, file: &Path, elapsed: std::time::Duration) -> serde_json::Value {
        let rejected: Vec<_> =
            self.rejected.iter().map(|(line, reason)| serde_json::json!({"line": line, "reason": reason})).collect();
        serde_json::json!({
            "file": file.display().to_string(),
            "rows": self.rows(),
            "accepted": self.accepted,
            "unchanged": self.unchanged,
            "corrected": self.corrected,
            "rejected": self.rejected.len(),
            "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "rejected_rows": rejected,
        })
    }

    /// 0 when every row was stored, [`EXIT_REJECTED`] otherwise.
    pub fn exit_code(&self) -> ExitCode {
        if self.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_REJECTED) }
    }
}

pub async fn run(cmd: ImportCmd) -> Result<ExitCode> {
    let (file, common) = match &cmd {
        ImportCmd::Results { file, common, .. } | ImportCmd::Commuters { file, common, .. } => (file.clone(), common),
    };
    // The file is opened first: a missing or wrong file changes nothing, not even the database.
    let required: &[&str] = match cmd {
        ImportCmd::Results { .. } => RESULT_COLUMNS,
        ImportCmd::Commuters { .. } => COMMUTER_COLUMNS,
    };
    let csv = match open_csv(&file, required) {
        Ok(csv) => csv,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_UNREADABLE));
        }
    };
    let database = &common.database;
    let store = Store::connect(database).await.with_context(|| format!("opening {database}"))?;
    let start = Instant::now();
    let progress = !common.quiet;
    let outcome = match &cmd {
        ImportCmd::Results { batch, parallel, .. } => {
            let parallel = parallel.unwrap_or_else(|| default_parallel(&store)).max(1);
            let batch = batch.unwrap_or_else(|| default_batch(&store)).max(1);
            import_results_from(&store, csv, batch, &common.by, parallel, progress).await
        }
        ImportCmd::Commuters { .. } => {
            let policies = crate::load_policies(&[])?.policies;
            import_commuters(&store, csv, &policies[0], &common.by).await
        }
    };
    store.close().await;
    let report = match outcome {
        Ok(r) => r,
        Err(e) => match e.downcast_ref::<Unreadable>() {
            Some(u) => {
                eprintln!("error: {}", u);
                return Ok(ExitCode::from(EXIT_UNREADABLE));
            }
            None => return Err(e),
        },
    };
    if common.json {
        println!("{}", report.json(&file, start.elapsed()));
    } else if !common.quiet {
        report.print(start.elapsed());
    }
    Ok(report.exit_code())
}

/// A CSV file opened for reading ([`CsvRows`]: the application layer's reader, shared with the
/// pages that take CSV).
pub type CsvFile = CsvRows<std::fs::File>;

/// Opens `file` and reads its header line, which must name every `required` column.
pub fn open_csv(file: &Path, required: &[&str]) -> Result<CsvFile, Unreadable> {
    let name = file.display().to_string();
    let f = std::fs::File::open(file).map_err(|e| Unreadable(format!("cannot open {name}: {e}")))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    CsvRows::new(name, f, len, required)
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

fn row_to_sample(row: ResultRow, now: DateTime<Utc>) -> Result<SampleInput, String> {
    let sampled_at = parse_lab_time(&row.sampled_at).ok_or_else(|| {
        format!(
            "sampled_at: {} is not a time like 2021-11-17 08:30:00 (Beijing time) or RFC 3339",
            tongxing_domain::text::quote(&row.sampled_at)
        )
    })?;
    let raw = RawSample {
        lab: &row.lab,
        sample_id: &row.sample_id,
        document_kind: row.document_kind.as_deref(),
        document_number: &row.document_number,
        sampled_at,
        site: &row.site,
        site_kind: &row.site_kind,
        result: &row.result,
    };
    tongxing_app::input::sample(&raw, "", now).map_err(|e| e.to_string())
}

/// The columns a results file must have (`document_kind` is optional).
const RESULT_COLUMNS: &[&str] = &["lab", "sample_id", "document_number", "sampled_at", "site", "site_kind", "result"];
use tongxing_app::commuter::COMMUTER_COLUMNS;

enum Parsed {
    Batch { rows: Vec<SampleInput>, rejected: Vec<(u64, String)>, bytes: u64 },
    Failed(Unreadable),
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

/// Imports a results file (as `tongxing import results`, without the progress bar). A file that
/// cannot be read is an [`Unreadable`] error.
pub async fn import_results(
    store: &Store,
    file: &Path,
    batch: usize,
    by: &str,
    parallel: usize,
) -> Result<ImportReport> {
    let csv = open_csv(file, RESULT_COLUMNS)?;
    import_results_from(store, csv, batch, by, parallel, false).await
}

/// Streams the file: a blocking thread parses and validates; up to `parallel` batches are
/// written at once, each in its own transaction.
async fn import_results_from(
    store: &Store,
    mut csv: CsvFile,
    batch: usize,
    by: &str,
    parallel: usize,
    show_progress: bool,
) -> Result<ImportReport> {
    let total_bytes = csv.total_bytes();
    let (tx, mut rx) = mpsc::channel::<Parsed>(2);
    let now = Utc::now();
    let parser = tokio::task::spawn_blocking(move || {
        let headers = csv.headers().clone();
        let mut rows = Vec::with_capacity(batch);
        let mut rejected = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match csv.next(&mut record) {
                Ok(None) => break,
                Ok(Some((line, Ok(fields)))) => match fields.deserialize::<ResultRow>(Some(&headers)) {
                    Ok(row) => match row_to_sample(row, now) {
                        Ok(s) => rows.push(s),
                        Err(e) => rejected.push((line, e)),
                    },
                    Err(e) => rejected.push((line, format!("unreadable row: {e}"))),
                },
                Ok(Some((line, Err(e)))) => rejected.push((line, format!("unreadable row: {e}"))),
                Err(e) => {
                    // What was read before is still written (and counted): then the error.
                    let bytes = csv.bytes_read();
                    let _ = tx.blocking_send(Parsed::Batch { rows, rejected, bytes });
                    let _ = tx.blocking_send(Parsed::Failed(e));
                    return;
                }
            }
            if rows.len() >= batch {
                let msg = Parsed::Batch {
                    rows: std::mem::replace(&mut rows, Vec::with_capacity(batch)),
                    rejected: std::mem::take(&mut rejected),
                    bytes: csv.bytes_read(),
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
            }
        }
        let bytes = csv.bytes_read();
        let _ = tx.blocking_send(Parsed::Batch { rows, rejected, bytes });
    });

    let mut report = ImportReport::default();
    let mut progress = show_progress.then(|| Progress::new(total_bytes));
    let mut writing = tokio::task::JoinSet::new();
    let mut bytes_seen = 0;
    let mut failed = None;
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
            Parsed::Failed(e) => failed = Some(e),
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
                if let Some(p) = progress.as_mut() {
                    p.update(bytes_seen, report.rows());
                }
            }
        }
    }
    while let Some(done) = writing.join_next().await {
        count(&mut report, done.context("a writer failed")??);
        if let Some(p) = progress.as_mut() {
            p.update(bytes_seen, report.rows());
        }
    }
    parser.await.context("the CSV parser failed")?;
    if let Some(p) = progress {
        p.finish();
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(report),
    }
}

/// Imports approved commuters (as `tongxing import commuters`): the rows checked by the
/// application layer (as the registry's page checks a pasted file), the good ones stored. A
/// person who already has a certification is left unchanged.
async fn import_commuters(
    store: &Store,
    mut csv: CsvFile,
    policy: &tongxing_domain::Policy,
    by: &str,
) -> Result<ImportReport> {
    let now = Utc::now();
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    for row in tongxing_app::commuter::check_rows(&mut csv, policy, now)? {
        match row.checked {
            Ok(good) => rows.push(good),
            Err(reason) => report.rejected.push((row.line, reason)),
        }
    }
    let (accepted, unchanged) = tongxing_app::commuter::store_rows(store, &rows, policy, by, now).await?;
    report.accepted = accepted;
    report.unchanged = unchanged;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The line and the first field of every record, or the reason it is unreadable.
    fn lines(content: &[u8]) -> Vec<(u64, String)> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tongxing-csv-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.csv");
        std::fs::write(&file, content).unwrap();
        let mut csv = open_csv(&file, &["a"]).unwrap();
        let mut out = Vec::new();
        let mut row = csv::StringRecord::new();
        while let Some((line, fields)) = csv.next(&mut row).unwrap() {
            out.push((line, fields.map(|f| f[0].to_string()).unwrap_or_else(|e| e)));
        }
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn each_record_has_its_own_line() {
        let expected = vec![(2, "x".to_string()), (3, "y".into()), (5, "z".into())];
        assert_eq!(lines(b"a,b\nx,1\ny,2\n\nz,3\n"), expected);
        assert_eq!(lines(b"a,b\r\nx,1\r\ny,2\r\n\r\nz,3\r\n"), expected);
        assert_eq!(lines(b"a,b\nx,1\ny,2\n\nz,3"), expected, "no newline at the end");
        assert_eq!(lines(b"\xef\xbb\xbfa,b\nx,1\ny,2\n  \nz,3\n"), expected, "a BOM; a line of spaces");
        // A quoted field spanning lines: the record is on the line it starts on.
        let got = lines(b"a,b\nx,\"one\ntwo\"\ny,\"\r\n\r\n\"\r\nz,3\n");
        assert_eq!(got, vec![(2, "x".to_string()), (4, "y".into()), (7, "z".into())]);
    }

    #[test]
    fn unreadable_records_are_named_once_at_their_line() {
        let got = lines(b"a,b\nx,1\nbad\nw\xffw,2\n\"q\nq\",1,extra\nz,3\n");
        assert_eq!(got[0], (2, "x".to_string()));
        assert_eq!(got[1].0, 3);
        assert!(got[1].1.starts_with("1 fields where the header line has 2"), "{got:?}");
        assert_eq!(got[2], (4, "a: not valid UTF-8 (the file must be saved as UTF-8)".to_string()));
        assert_eq!(got[3].0, 5);
        assert!(got[3].1.starts_with("3 fields"), "{got:?}");
        assert_eq!(got[4], (7, "z".to_string()));
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_file_without_the_columns_is_unreadable() {
        let dir = std::env::temp_dir().join(format!("tongxing-csv-h-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.csv");
        std::fs::write(&file, "lab,sample\n1,2\n").unwrap();
        let e = open_csv(&file, RESULT_COLUMNS).err().unwrap();
        assert!(e.0.contains("lacks the column(s)"), "{e}");
        std::fs::write(&file, "").unwrap();
        assert!(open_csv(&file, RESULT_COLUMNS).err().unwrap().0.contains("empty"));
        assert!(open_csv(&dir.join("missing.csv"), RESULT_COLUMNS).err().unwrap().0.contains("cannot open"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
