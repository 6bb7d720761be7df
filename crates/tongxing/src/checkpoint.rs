//! The offline checkpoint: `tongxing checkpoint sync|status` and `tongxing verify`.
//!
//! `sync` first uploads the queue of checks made since the last sync (each marked only once the
//! server has answered `recorded`, `duplicate` or `rejected` for it: a sync killed mid-upload
//! sends the same rows again, and the server's idempotency keys record each once), then
//! downloads the trust list, the revocation list (a delta from the version held, or the whole
//! list) and the bundle (rule sets, checkpoints, policy parameters). Both lists are verified
//! with the trust anchor before anything is stored, and everything is stored in one transaction:
//! a sync that fails part-way changes nothing but the upload marks.
//!
//! `verify` decides with no network, from the state file alone, through
//! `tongxing_app::verify::decide_on_pass` — the same function the online check calls. Each check
//! is committed to the state file (WAL, synchronous=FULL) before its verdict is printed.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use tongxing_app::offline::{Bundle, BundleCheckpoint, OfflinePolicy, UploadReport, UploadRow};
use tongxing_app::verify::{PassRefusal, decide_on_pass};
use tongxing_domain::facts::CheckpointFacts;
use tongxing_domain::text::Plate;
use tongxing_domain::time::rfc3339;
use tongxing_pass::revocation::{ENTRY_WIRE_LEN, HASH_LEN};
use tongxing_pass::{Decoder, Entry, PublicKey, RevocationDelta, RevocationHash, RevocationSet, TrustList};
use tongxing_rules::RuleSet;
use tongxing_store::checkpoint::{LocalCheck, LocalState, Synced, UploadOutcome};

/// The default state file, in the working directory.
pub const DEFAULT_STATE: &str = "checkpoint.db";
/// Checks per upload request.
const UPLOAD_BATCH: i64 = 200;
/// The largest image file read (the 20-megapixel limit is checked from its header after).
const MAX_IMAGE_FILE: u64 = 64 << 20;
/// The largest answer read from the server (a revocation list of 10 M entries is 240 MB).
const MAX_ANSWER: u64 = 1 << 30;

/// Exit codes of `verify` (also in its `--help`).
pub const VERIFY_EXIT_CODES: &str = "Exit codes:
  0  every code was decided (pass, conditional or deny: read the verdict)
  1  another failure (the state file could not be read or written)
  2  bad input: arguments, an unreadable file, no synced state, an unknown checkpoint
  3  a code was refused at a stage of the verification (the stage is named; nothing was decided)";

/// Exit codes of `checkpoint sync`.
pub const SYNC_EXIT_CODES: &str = "Exit codes:
  0  synced: queued checks uploaded, lists and rules stored
  1  the server could not be reached or failed (nothing downloaded is stored; uploads answered are marked)
  2  bad input: arguments, the trust anchor file, a checkpoint the token may not check at
  3  a list from the server did not verify with the trust anchor, or a rule set does not load: nothing stored
  4  synced, but the server rejected some queued checks (each is listed with the reason)";

#[derive(Subcommand)]
pub enum CheckpointCmd {
    /// Upload the queued checks, then download the trust list, the revocation list and the rules
    /// into the state file (verified with the trust anchor first).
    #[command(after_help = SYNC_EXIT_CODES)]
    Sync(SyncArgs),
    /// Serve the officer's page on this device, deciding from the state file with no network;
    /// upload each check as soon as the server can be reached.
    #[command(after_help = crate::node::SERVE_EXIT_CODES)]
    Serve(crate::node::ServeArgs),
    /// What the state file holds: the lists and their ages, the checkpoint, the queue.
    Status {
        /// The checkpoint's state file.
        #[arg(long, default_value = DEFAULT_STATE, env = "TONGXING_CHECKPOINT_STATE")]
        state: PathBuf,
    },
}

#[derive(Args)]
pub struct SyncArgs {
    /// The server's base URL, e.g. https://tongxing.example (default: the last sync's).
    #[arg(long)]
    server: Option<String>,
    /// An officer's API token (`tongxing token create --role officer`); never stored.
    #[arg(long, env = "TONGXING_TOKEN", hide_env_values = true)]
    token: String,
    /// The trust anchor: the list-signing key's public half (trust-anchor.pem of the server's key
    /// folder). Required at the first sync; later syncs keep the one stored.
    #[arg(long)]
    trust_anchor: Option<PathBuf>,
    /// The checkpoint checks are made at (default: the last sync's, or the token's only one).
    #[arg(long)]
    checkpoint: Option<String>,
    /// The checkpoint's state file (made if missing).
    #[arg(long, default_value = DEFAULT_STATE, env = "TONGXING_CHECKPOINT_STATE")]
    state: PathBuf,
}

#[derive(Args)]
#[command(after_help = VERIFY_EXIT_CODES)]
pub struct VerifyArgs {
    /// A QR text (`TX1:…`) as a scanner reads it.
    #[arg(conflicts_with_all = ["image", "stdin"], required_unless_present_any = ["image", "stdin"])]
    text: Option<String>,
    /// A photo or screenshot of the code: PNG or JPEG, at most 20 megapixels.
    #[arg(long, conflicts_with = "stdin")]
    image: Option<PathBuf>,
    /// Read codes from standard input, one a line, as a scanner in keyboard mode sends them; each
    /// is decided and printed as it arrives, blank lines are skipped, a bad line does not stop it.
    #[arg(long)]
    stdin: bool,
    /// The checkpoint's state file (`tongxing checkpoint sync` makes it).
    #[arg(long, default_value = DEFAULT_STATE, env = "TONGXING_CHECKPOINT_STATE")]
    state: PathBuf,
    /// The checkpoint the check is made at (default: the one synced).
    #[arg(long)]
    checkpoint: Option<String>,
    /// The vehicle's plate, if the person is in one (recorded with the check).
    #[arg(long)]
    plate: Option<String>,
    /// One JSON object a code (JSON Lines), for machines.
    #[arg(long)]
    json: bool,
    /// Decide as of this time (RFC 3339 with an offset) instead of the device's clock: for
    /// replaying a past check and for tests. Printed with the verdict and recorded with the check.
    #[arg(long)]
    at: Option<String>,
}

/// A line of what `sync` and `status` report, on stdout. A closed stdout (`| head`) is not a
/// reason to stop a sync half-way: the line is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A failure with its exit code.
pub(crate) struct Fail(pub(crate) u8, pub(crate) anyhow::Error);

impl Fail {
    /// Whether the server could not be reached at all (as opposed to answering with an error).
    pub(crate) fn unreachable(&self) -> bool {
        self.1.chain().any(|e| e.is::<Unreachable>())
    }
}

/// The server could not be reached: no connection, a timeout, an answer cut off.
#[derive(Debug)]
pub(crate) struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

pub(crate) fn bad_input(e: impl Into<anyhow::Error>) -> Fail {
    Fail(2, e.into())
}
pub(crate) fn failure(e: impl Into<anyhow::Error>) -> Fail {
    Fail(1, e.into())
}

fn exit(r: std::result::Result<u8, Fail>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, e)) => {
            // One line: the causes joined.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(code)
        }
    }
}

pub async fn run_checkpoint(cmd: CheckpointCmd) -> ExitCode {
    match cmd {
        CheckpointCmd::Sync(args) => exit(sync(args).await),
        CheckpointCmd::Status { state } => exit(status(&state).await),
        CheckpointCmd::Serve(args) => crate::node::run(args).await,
    }
}

pub async fn run_verify(args: VerifyArgs) -> ExitCode {
    exit(verify(args).await)
}

// ---------------------------------------------------------------------------------------------
// The state as the verifier uses it.

/// What `verify` and `checkpoint serve` work with, loaded from the state file.
pub(crate) struct Loaded {
    pub(crate) synced: Synced,
    pub(crate) trust: TrustList,
    pub(crate) revocations: RevocationSet,
    pub(crate) rules: Vec<RuleSet>,
    pub(crate) policy: OfflinePolicy,
    pub(crate) checkpoints: Vec<BundleCheckpoint>,
}

fn entries_to_bytes(set: &RevocationSet) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.len() * ENTRY_WIRE_LEN);
    for e in set.entries() {
        out.extend_from_slice(&e.hash.0);
        out.extend_from_slice(&e.cutoff.to_be_bytes());
    }
    out
}

fn entries_from_bytes(bytes: &[u8]) -> Result<Vec<Entry>> {
    anyhow::ensure!(bytes.len().is_multiple_of(ENTRY_WIRE_LEN), "the stored revocation list is damaged");
    Ok(bytes
        .chunks_exact(ENTRY_WIRE_LEN)
        .map(|r| {
            let mut hash = [0u8; HASH_LEN];
            hash.copy_from_slice(&r[..HASH_LEN]);
            let cutoff = i64::from_be_bytes(r[HASH_LEN..].try_into().expect("8 bytes"));
            Entry { hash: RevocationHash(hash), cutoff }
        })
        .collect())
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}
fn from_secs(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

impl Loaded {
    pub(crate) fn from(synced: Synced) -> Result<Loaded> {
        let anchor = PublicKey::from_pem(&synced.anchor_pem).context("the stored trust anchor is damaged")?;
        // Verified again: the file may have been damaged or changed since the sync.
        let trust = TrustList::verify(&synced.trust_list, &anchor)
            .map_err(|e| anyhow::anyhow!("the stored trust list: {e}"))?;
        let revocations = RevocationSet::new(
            synced.revocation_version as u64,
            secs(synced.revocation_issued_at),
            entries_from_bytes(&synced.revocations)?,
        );
        let rules = synced
            .rule_sets
            .iter()
            .map(|body| RuleSet::from_json(body).map_err(|e| anyhow::anyhow!("a stored rule set does not load: {e}")))
            .collect::<Result<Vec<_>>>()?;
        let policy: OfflinePolicy = serde_json::from_str(&synced.policy).context("the stored policy is damaged")?;
        let checkpoints: Vec<BundleCheckpoint> =
            serde_json::from_str(&synced.checkpoints).context("the stored checkpoints are damaged")?;
        Ok(Loaded { synced, trust, revocations, rules, policy, checkpoints })
    }

    /// (name, version, synced at) of each part of the data.
    pub(crate) fn parts(&self) -> [(&'static str, Option<i64>, DateTime<Utc>); 3] {
        [
            ("trust list", Some(self.synced.trust_version), self.synced.trust_synced_at),
            ("rules", None, self.synced.rules_synced_at),
            ("revocation list", Some(self.synced.revocation_version), self.synced.revocations_synced_at),
        ]
    }

    /// The data's ages at `at`, and a warning for each part older than the policy allows.
    pub(crate) fn data(&self, at: DateTime<Utc>) -> (Value, Vec<String>) {
        let max = chrono::Duration::hours(self.policy.offline_data_max_age_hours);
        let mut data = serde_json::Map::new();
        let mut warnings = Vec::new();
        for (name, version, synced_at) in self.parts() {
            let age = at - synced_at;
            let stale = age > max;
            if stale {
                warnings.push(format!(
                    "the {name} was synced {} ago, more than the {} hours the policy allows: run `tongxing checkpoint sync`",
                    human_age(age),
                    self.policy.offline_data_max_age_hours
                ));
            }
            data.insert(
                name.replace(' ', "_"),
                json!({"version": version, "synced_at": rfc3339(synced_at), "age_seconds": age.num_seconds(), "stale": stale}),
            );
        }
        (Value::Object(data), warnings)
    }

    fn data_line(&self, at: DateTime<Utc>) -> String {
        self.parts()
            .iter()
            .map(|(name, version, synced_at)| {
                let v = version.map(|v| format!(" v{v}")).unwrap_or_default();
                format!("{name}{v} synced {} ago", human_age(at - *synced_at))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn human_age(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    match s {
        s if s < 0 => format!("{} s in the future of this decision", -s),
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

// ---------------------------------------------------------------------------------------------
// verify

async fn verify(args: VerifyArgs) -> std::result::Result<u8, Fail> {
    let at = match &args.at {
        Some(v) => Some(DateTime::parse_from_rfc3339(v.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            bad_input(anyhow::anyhow!("--at: {v:?} is not RFC 3339 with an offset, e.g. 2021-11-17T08:30:00+08:00"))
        })?),
        None => None,
    };
    let plate = match args.plate.as_deref() {
        Some(p) => Some(Plate::parse(p).map_err(|e| bad_input(anyhow::anyhow!("--plate: {e}")))?.into_string()),
        None => None,
    };
    let state = LocalState::open(&args.state, false).await.map_err(bad_input)?;
    let result = verify_with(&state, &args, at, plate.as_deref()).await;
    state.close().await;
    result
}

async fn verify_with(
    state: &LocalState,
    args: &VerifyArgs,
    at: Option<DateTime<Utc>>,
    plate: Option<&str>,
) -> std::result::Result<u8, Fail> {
    let synced = state.synced().await.map_err(failure)?.ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "{} holds no synced data: run `tongxing checkpoint sync` first",
            args.state.display()
        ))
    })?;
    let loaded = Loaded::from(synced).map_err(failure)?;
    let known = || loaded.checkpoints.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ");
    let cp_id = args.checkpoint.clone().or_else(|| loaded.synced.checkpoint_id.clone()).ok_or_else(|| {
        bad_input(anyhow::anyhow!("name the checkpoint with --checkpoint (this token may check at: {})", known()))
    })?;
    let cp = loaded.checkpoints.iter().find(|c| c.id == cp_id).ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "--checkpoint: {cp_id:?} is not a checkpoint this device synced (it may check at: {})",
            known()
        ))
    })?;
    let facts = CheckpointFacts { id: cp.id.clone(), road: cp.road.clone() };
    let mut v = Verifier {
        state,
        loaded: &loaded,
        decoder: Decoder::new().with_clock_tolerance(loaded.policy.clock_tolerance_seconds),
        facts,
        at,
        plate,
        json: args.json,
        warned: 0,
        rng: SystemRandom::new(),
    };
    let mut refused = false;
    if let Some(path) = &args.image {
        let text = read_image(path)?;
        refused |= !v.check(text).await?;
    } else if args.stdin {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        while let Some(line) =
            read_line(&mut input).map_err(|e| failure(anyhow::anyhow!("reading standard input: {e}")))?
        {
            if let Line::Text(t) = &line
                && t.trim().is_empty()
            {
                continue;
            }
            refused |= !v.check(line.into_input()).await?;
        }
    } else if let Some(text) = &args.text {
        refused |= !v.check(Input::Text(text.trim_end_matches(['\r', '\n']).to_string())).await?;
    }
    Ok(if refused { 3 } else { 0 })
}

/// One code to decide, or why it cannot be read.
pub(crate) enum Input {
    Text(String),
    Refused(PassRefusal),
}

fn refusal(stage: tongxing_pass::Stage, detail: impl Into<String>) -> PassRefusal {
    PassRefusal { stage: stage.as_str().into(), detail: detail.into() }
}

/// An image file: refused at `too_large` before it is read when over [`MAX_IMAGE_FILE`], then
/// by its header over 20 megapixels; at `bad_image` when it is not a readable PNG or JPEG.
fn read_image(path: &Path) -> std::result::Result<Input, Fail> {
    let meta = std::fs::metadata(path).map_err(|e| bad_input(anyhow::anyhow!("--image {}: {e}", path.display())))?;
    if meta.len() > MAX_IMAGE_FILE {
        return Ok(Input::Refused(refusal(
            tongxing_pass::Stage::TooLarge,
            format!("the image file is {} bytes: at most {MAX_IMAGE_FILE}", meta.len()),
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad_input(anyhow::anyhow!("--image {}: {e}", path.display())))?;
    Ok(match tongxing_pass::decode_image(&bytes) {
        Ok(text) => Input::Text(text),
        Err(r) => Input::Refused(PassRefusal { stage: r.stage.as_str().into(), detail: r.detail }),
    })
}

enum Line {
    Text(String),
    TooLong(usize),
    NotText,
}

impl Line {
    fn into_input(self) -> Input {
        match self {
            Line::Text(t) => Input::Text(t),
            Line::TooLong(n) => Input::Refused(refusal(
                tongxing_pass::Stage::TooLarge,
                format!("the code is {n} bytes or more: at most {}", tongxing_pass::MAX_TEXT_BYTES),
            )),
            Line::NotText => Input::Refused(refusal(tongxing_pass::Stage::BadPrefix, "the line is not UTF-8 text")),
        }
    }
}

/// One line of a scanner's stream, holding at most 4 KiB of it (a longer line is read to its end
/// and refused). `None` at the end of the input. Only the line end (LF or CRLF) is removed:
/// a space is a Base45 character, so a code is never trimmed.
fn read_line(input: &mut impl BufRead) -> std::io::Result<Option<Line>> {
    let cap = tongxing_pass::MAX_TEXT_BYTES + 2; // room for "\r\n"
    let mut buf = Vec::with_capacity(256);
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        total += part.len();
        if buf.len() < cap {
            buf.extend_from_slice(&part[..part.len().min(cap - buf.len())]);
        }
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    while buf.last() == Some(&b'\r') {
        buf.pop();
        total -= 1;
    }
    if total > tongxing_pass::MAX_TEXT_BYTES {
        return Ok(Some(Line::TooLong(total)));
    }
    Ok(Some(match String::from_utf8(buf) {
        Ok(t) => Line::Text(t),
        Err(_) => Line::NotText,
    }))
}

struct Verifier<'a> {
    state: &'a LocalState,
    loaded: &'a Loaded,
    decoder: Decoder,
    facts: CheckpointFacts,
    at: Option<DateTime<Utc>>,
    plate: Option<&'a str>,
    json: bool,
    /// How many parts of the data were stale when last warned about: a scanner's stream warns
    /// again when another part turns stale during the run.
    warned: usize,
    rng: SystemRandom,
}

/// A fresh idempotency key: 16 random bytes as 32 hex digits.
pub(crate) fn new_key(rng: &SystemRandom) -> std::result::Result<String, Fail> {
    let mut key = [0u8; 16];
    rng.fill(&mut key).map_err(|_| failure(anyhow::anyhow!("no system randomness")))?;
    Ok(tongxing_app::signing::hex(&key))
}

/// One code decided at the checkpoint, and already on disk.
pub(crate) struct LocalDecision {
    pub(crate) key: String,
    /// The device's clock when it was decided.
    pub(crate) checked_at: DateTime<Utc>,
    /// The time it was decided as of (`checked_at` unless `--at` gave another).
    pub(crate) at: DateTime<Utc>,
    /// The verdict, or the stage that refused the code.
    pub(crate) outcome: std::result::Result<tongxing_app::verify::Decided, PassRefusal>,
}

/// Decides on one code from the state file's data alone (`decide_on_pass`, the function the
/// online check calls) and commits the check to the state file before returning: a decided check
/// is queued for upload under a fresh idempotency key, a refused code is kept on the device.
/// `verify` and `checkpoint serve` both decide through here.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn decide_and_record(
    state: &LocalState,
    loaded: &Loaded,
    decoder: &mut Decoder,
    facts: &CheckpointFacts,
    input: Input,
    plate: Option<&str>,
    as_of: Option<DateTime<Utc>>,
    rng: &SystemRandom,
) -> std::result::Result<LocalDecision, Fail> {
    let checked_at = Utc::now();
    let at = as_of.unwrap_or(checked_at);
    let key = new_key(rng)?;
    let (qr, outcome) = match input {
        Input::Text(text) => {
            let outcome =
                decide_on_pass(decoder, &text, &loaded.trust, &loaded.revocations, &loaded.rules, facts.clone(), at);
            (Some(text), outcome)
        }
        Input::Refused(r) => (None, Err(r)),
    };
    let mut local = LocalCheck {
        idempotency_key: key.clone(),
        checkpoint_id: facts.id.clone(),
        checked_at,
        as_of,
        verdict: None,
        stage: None,
        body: String::new(),
        state: String::new(),
        detail: None,
    };
    match &outcome {
        Ok(decided) => {
            let row = UploadRow::from_decided(
                &key,
                &facts.id,
                checked_at,
                as_of,
                qr.as_deref().unwrap_or(""),
                plate,
                decided,
            );
            local.verdict = Some(decided.decision.verdict.clone());
            local.body = serde_json::to_string(&row).map_err(failure)?;
        }
        Err(r) => {
            local.stage = Some(r.stage.clone());
            // The refused text is kept (for the officer's log) when it is of a code's size.
            let kept = qr.as_deref().filter(|t| t.len() <= tongxing_pass::MAX_TEXT_BYTES);
            local.body = json!({"stage": r.stage, "detail": r.detail, "qr": kept}).to_string();
        }
    }
    // On disk before anything is shown.
    state.record_check(&local).await.map_err(|e| failure(anyhow::anyhow!("recording the check: {e}")))?;
    Ok(LocalDecision { key, checked_at, at, outcome })
}

impl Verifier<'_> {
    /// Decides on one code, records it, then prints it. `Ok(true)` when decided.
    async fn check(&mut self, input: Input) -> std::result::Result<bool, Fail> {
        let d = decide_and_record(
            self.state,
            self.loaded,
            &mut self.decoder,
            &self.facts,
            input,
            self.plate,
            self.at,
            &self.rng,
        )
        .await?;
        let (data, warnings) = self.loaded.data(d.at);
        if warnings.len() > self.warned {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
        }
        self.warned = warnings.len();
        let mut out = match &d.outcome {
            Ok(decided) => {
                let mut v = serde_json::to_value(&decided.decision).map_err(failure)?;
                v["decided"] = json!(true);
                v
            }
            Err(r) => json!({"decided": false, "stage": r.stage, "detail": r.detail}),
        };
        out["checkpoint_id"] = json!(self.facts.id);
        out["checked_at"] = json!(rfc3339(d.checked_at));
        out["as_of"] = json!(self.at.map(rfc3339));
        out["plate"] = json!(self.plate);
        out["idempotency_key"] = json!(d.key);
        out["queued"] = json!(d.outcome.is_ok());
        out["data"] = data;
        out["warnings"] = json!(warnings);
        let mut stdout = std::io::stdout().lock();
        let text = if self.json { out.to_string() } else { self.human(&d.outcome, &out, d.at) };
        writeln!(stdout, "{text}").and_then(|()| stdout.flush()).map_err(failure)?;
        Ok(d.outcome.is_ok())
    }

    fn human(
        &self,
        outcome: &std::result::Result<tongxing_app::verify::Decided, PassRefusal>,
        out: &Value,
        at: DateTime<Utc>,
    ) -> String {
        let mut lines = Vec::new();
        let decided_as_of = match self.at {
            Some(t) => format!(
                "decided as of {} (--at; the device's clock said {})",
                rfc3339(t),
                out["checked_at"].as_str().unwrap_or("")
            ),
            None => format!("decided {}", rfc3339(at)),
        };
        match outcome {
            Ok(d) => {
                let head = match d.decision.verdict.as_str() {
                    "pass" => "通行 PASS",
                    "conditional" => "有条件通行 CONDITIONAL",
                    _ => "禁止通行 DENY",
                };
                lines.push(head.to_string());
                for r in &d.decision.reasons {
                    lines.push(format!("  {}  {}", r.code, r.message_zh));
                    lines.push(format!("  {}  {}", " ".repeat(r.code.len()), r.message_en));
                }
                lines.push(format!(
                    "  code colour {} · commuter {} · key {}",
                    d.decision.code_colour,
                    if d.decision.commuter { "yes" } else { "no" },
                    d.decision.key_id
                ));
                lines.push(format!(
                    "  pass issued {}, expires {}",
                    rfc3339(d.decision.pass_issued_at),
                    rfc3339(d.decision.pass_expires_at)
                ));
                lines.push(format!(
                    "  policy {} {} at {}; {decided_as_of}",
                    d.decision.policy_id, d.decision.policy_version, self.facts.id
                ));
            }
            Err(r) => {
                lines.push(format!("拒绝 REFUSED at stage {}: {}", r.stage, r.detail));
                lines.push(format!("  nothing was decided at {}; {decided_as_of}", self.facts.id));
            }
        }
        lines.push(format!("  data: {}", self.loaded.data_line(at)));
        lines.join("\n")
    }
}

// ---------------------------------------------------------------------------------------------
// status

async fn status(path: &Path) -> std::result::Result<u8, Fail> {
    let state = LocalState::open(path, false).await.map_err(bad_input)?;
    let result = async {
        let counts = state.queue_counts().await.map_err(failure)?;
        match state.synced().await.map_err(failure)? {
            None => say!("{}: never synced", path.display()),
            Some(s) => {
                let loaded = Loaded::from(s).map_err(failure)?;
                let now = Utc::now();
                say!("server {}", loaded.synced.server);
                say!("checkpoint {}", loaded.synced.checkpoint_id.as_deref().unwrap_or("(none: pass --checkpoint)"));
                say!("checkpoints {}", loaded.checkpoints.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", "));
                say!("data: {}", loaded.data_line(now));
                say!(
                    "trust list: {} keys; revocation list: {} entries; rule sets: {}",
                    loaded.trust.len(),
                    loaded.revocations.len(),
                    loaded.rules.iter().map(|r| format!("{} {}", r.id(), r.version())).collect::<Vec<_>>().join(", ")
                );
                for w in loaded.data(now).1 {
                    eprintln!("warning: {w}");
                }
            }
        }
        say!(
            "checks: {} to upload, {} recorded, {} duplicates, {} rejected, {} refused codes (kept here)",
            counts.pending,
            counts.recorded,
            counts.duplicate,
            counts.rejected,
            counts.local
        );
        Ok(0)
    }
    .await;
    state.close().await;
    result
}

// ---------------------------------------------------------------------------------------------
// sync

/// A blocking HTTP client for the server. Each call runs in `block_in_place`: the runtime moves
/// its other tasks (a `checkpoint serve`'s requests) off the thread while it waits.
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

/// Why a request failed: the server answered with an error status, or could not be reached.
pub(crate) enum HttpError {
    Status(u16, String),
    Transport(String),
}

impl HttpError {
    pub(crate) fn into_fail(self, what: &str) -> Fail {
        match self {
            HttpError::Status(code, detail) => failure(anyhow::anyhow!("{what}: the server answered {code}: {detail}")),
            HttpError::Transport(e) => failure(anyhow::Error::new(Unreachable(e)).context(what.to_string())),
        }
    }
}

impl Client {
    /// A client of the server at `base` (no trailing slash), sending `token`.
    pub(crate) fn new(base: &str, token: &str, timeout: Duration) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout(timeout).build(),
            base: base.to_string(),
            token: token.to_string(),
        }
    }

    fn answer(r: std::result::Result<ureq::Response, ureq::Error>) -> std::result::Result<Vec<u8>, HttpError> {
        match r {
            Ok(resp) => {
                let mut body = Vec::new();
                resp.into_reader()
                    .take(MAX_ANSWER)
                    .read_to_end(&mut body)
                    .map_err(|e| HttpError::Transport(format!("reading the answer: {e}")))?;
                Ok(body)
            }
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["detail"].as_str().map(str::to_string))
                    .unwrap_or_else(|| text.chars().take(300).collect());
                Err(HttpError::Status(code, detail))
            }
            Err(e) => Err(HttpError::Transport(e.to_string())),
        }
    }

    pub(crate) fn get(&self, path: &str, auth: bool) -> std::result::Result<Vec<u8>, HttpError> {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if auth {
            req = req.set("Authorization", &format!("Bearer {}", self.token));
        }
        blocking(|| Self::answer(req.call()))
    }

    pub(crate) fn post_json(&self, path: &str, body: &Value) -> std::result::Result<Vec<u8>, HttpError> {
        let req = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", "application/json");
        blocking(|| Self::answer(req.send_string(&body.to_string())))
    }
}

/// Runs a blocking call where the runtime allows it to block (a multi-threaded runtime's
/// worker hands its tasks to others first); elsewhere just runs it.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

async fn sync(args: SyncArgs) -> std::result::Result<u8, Fail> {
    if let Some(cp) = &args.checkpoint {
        tongxing_domain::text::CheckpointId::parse(cp).map_err(|e| bad_input(anyhow::anyhow!("--checkpoint: {e}")))?;
    }
    let anchor_given = match &args.trust_anchor {
        Some(path) => Some(
            tongxing_pass::keyfile::read_public_key(path)
                .map_err(|e| bad_input(anyhow::anyhow!("--trust-anchor: {e}")))?,
        ),
        None => None,
    };
    if let Some(server) = &args.server
        && !(server.starts_with("http://") || server.starts_with("https://"))
    {
        return Err(bad_input(anyhow::anyhow!("--server: {server:?} is not an http:// or https:// URL")));
    }
    let state = LocalState::open(&args.state, true)
        .await
        .map_err(|e| bad_input(anyhow::anyhow!("--state {}: {e}", args.state.display())))?;
    let result = sync_with(&state, &args, anchor_given).await;
    state.close().await;
    result
}

async fn sync_with(
    state: &LocalState,
    args: &SyncArgs,
    anchor_given: Option<PublicKey>,
) -> std::result::Result<u8, Fail> {
    let prev = state.synced().await.map_err(failure)?;
    let server = match (&args.server, &prev) {
        (Some(s), _) => s.trim_end_matches('/').to_string(),
        (None, Some(p)) => p.server.clone(),
        (None, None) => return Err(bad_input(anyhow::anyhow!("--server is required at the first sync"))),
    };
    let anchor = match (anchor_given, &prev) {
        (Some(a), _) => a,
        (None, Some(p)) => {
            PublicKey::from_pem(&p.anchor_pem).map_err(|e| failure(anyhow::anyhow!("the stored trust anchor: {e}")))?
        }
        (None, None) => return Err(bad_input(anyhow::anyhow!("--trust-anchor is required at the first sync"))),
    };
    let client = Client::new(&server, &args.token, Duration::from_secs(60));

    // 1. The queue, uploaded first: what was checked offline reaches the server even if the
    //    downloads fail.
    let up = upload_queue(state, &client).await?;
    for (key, why) in &up.rejected {
        eprintln!("rejected by the server: check {key}: {why}");
    }
    say!("uploaded: {} recorded, {} already recorded, {} rejected", up.recorded, up.duplicates, up.rejected.len());

    // 2. The lists and the bundle, verified, then stored together.
    let down = download(state, &client, &anchor, prev.as_ref(), &server, args.checkpoint.as_deref()).await?;
    say!("trust list v{}: {} keys", down.trust_version, down.trust_keys);
    say!("revocation list v{}: {} entries", down.revocation_version, down.revocation_entries);
    say!("rule sets: {}", down.rule_sets.join(", "));
    say!(
        "policy: warn after {} h without a sync; clock tolerance {} s",
        down.policy.offline_data_max_age_hours,
        down.policy.clock_tolerance_seconds
    );
    match &down.checkpoint_id {
        Some(cp) => say!("checkpoint {cp}"),
        None => say!("checkpoint: none chosen (this token may check at: {}); pass --checkpoint", down.known),
    }
    Ok(if up.rejected.is_empty() { 0 } else { 4 })
}

/// What an upload of the queue did.
#[derive(Debug, Default)]
pub(crate) struct Uploaded {
    pub(crate) recorded: usize,
    pub(crate) duplicates: usize,
    /// (idempotency key, the server's reason) of each check it rejected.
    pub(crate) rejected: Vec<(String, String)>,
}

/// Uploads the queued checks, oldest first, in batches, until none is pending. Each batch's
/// answers are marked in the state file as they come: an upload cut off part-way sends the rest
/// (and perhaps a batch again, which the server answers `duplicate`) the next time.
pub(crate) async fn upload_queue(state: &LocalState, client: &Client) -> std::result::Result<Uploaded, Fail> {
    let mut up = Uploaded::default();
    loop {
        let rows = state.pending(UPLOAD_BATCH).await.map_err(failure)?;
        if rows.is_empty() {
            return Ok(up);
        }
        let checks: Vec<Value> = rows
            .iter()
            .map(|r| serde_json::from_str(&r.body))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| failure(anyhow::anyhow!("a queued check is damaged: {e}")))?;
        let answer = client.post_json("/api/v1/checks/offline", &json!({ "checks": checks }));
        let report: UploadReport = match answer {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| failure(anyhow::anyhow!("uploading checks: the server's answer is not a report: {e}")))?,
            Err(e) => return Err(e.into_fail("uploading the queued checks")),
        };
        let mut marks = Vec::with_capacity(report.results.len());
        for r in &report.results {
            let outcome = match r.outcome.as_str() {
                "recorded" => UploadOutcome::Recorded,
                "duplicate" => UploadOutcome::Duplicate,
                _ => {
                    let why = r.reason.clone().unwrap_or_else(|| "no reason given".into());
                    up.rejected.push((r.idempotency_key.clone(), why.clone()));
                    UploadOutcome::Rejected(why)
                }
            };
            marks.push((r.idempotency_key.clone(), outcome));
        }
        state.mark_uploaded(&marks, Utc::now()).await.map_err(failure)?;
        up.recorded += report.recorded;
        up.duplicates += report.duplicates;
        let answered: std::collections::HashSet<&str> =
            report.results.iter().map(|r| r.idempotency_key.as_str()).collect();
        if !rows.iter().any(|r| answered.contains(r.idempotency_key.as_str())) {
            return Err(failure(anyhow::anyhow!("the server answered for none of the checks sent")));
        }
    }
}

/// What a download stored.
pub(crate) struct Downloaded {
    pub(crate) trust_version: u64,
    pub(crate) trust_keys: usize,
    pub(crate) revocation_version: u64,
    pub(crate) revocation_entries: usize,
    /// "id version" of each rule set.
    pub(crate) rule_sets: Vec<String>,
    pub(crate) policy: OfflinePolicy,
    pub(crate) checkpoint_id: Option<String>,
    /// The checkpoints the token may check at, comma-separated.
    pub(crate) known: String,
}

/// Downloads the trust list, the revocation list (a delta from the version held when it can)
/// and the bundle, verifies both lists with `anchor`, and stores everything in one transaction:
/// a download that fails part-way stores nothing. `checkpoint` chooses the checkpoint (default:
/// the one held, or the token's only one).
pub(crate) async fn download(
    state: &LocalState,
    client: &Client,
    anchor: &PublicKey,
    prev: Option<&Synced>,
    server: &str,
    checkpoint: Option<&str>,
) -> std::result::Result<Downloaded, Fail> {
    let now = Utc::now();
    let trust_bytes = client.get("/api/v1/trust-list", false).map_err(|e| e.into_fail("the trust list"))?;
    let trust = TrustList::verify(&trust_bytes, anchor).map_err(|e| {
        Fail(3, anyhow::anyhow!("the trust list does not verify with the trust anchor: {e}: nothing stored"))
    })?;
    let same_anchor = prev.is_some_and(|p| PublicKey::from_pem(&p.anchor_pem).is_ok_and(|a| a.kid() == anchor.kid()));
    let held = match prev {
        Some(p) if same_anchor && p.revocation_version > 0 && p.server == server => Some(RevocationSet::new(
            p.revocation_version as u64,
            secs(p.revocation_issued_at),
            entries_from_bytes(&p.revocations).map_err(failure)?,
        )),
        _ => None,
    };
    let revocations = match held {
        Some(set) => match client.get(&format!("/api/v1/revocations?since={}", set.version()), false) {
            Ok(bytes) => {
                let delta = RevocationDelta::verify(&bytes, anchor).map_err(|e| {
                    Fail(
                        3,
                        anyhow::anyhow!(
                            "the revocation delta does not verify with the trust anchor: {e}: nothing stored"
                        ),
                    )
                })?;
                match set.apply(&delta) {
                    Ok(next) => next,
                    Err(_) => full_revocations(client, anchor)?,
                }
            }
            // The server's list is behind the one held (a new database): start again from it.
            Err(HttpError::Status(422, _)) => full_revocations(client, anchor)?,
            Err(e) => return Err(e.into_fail("the revocation list")),
        },
        None => full_revocations(client, anchor)?,
    };
    let bundle_bytes =
        client.get("/api/v1/checkpoint/bundle", true).map_err(|e| e.into_fail("the checkpoint bundle"))?;
    let bundle: Bundle = serde_json::from_slice(&bundle_bytes)
        .map_err(|e| failure(anyhow::anyhow!("the checkpoint bundle is not what this build reads: {e}")))?;
    let mut rule_sets = Vec::with_capacity(bundle.rule_sets.len());
    for body in &bundle.rule_sets {
        let text = body.to_string();
        let rs = RuleSet::from_json(&text)
            .map_err(|e| Fail(3, anyhow::anyhow!("a rule set from the server does not load: {e}: nothing stored")))?;
        rule_sets.push((rs.id().to_string(), rs.version().to_string(), text));
    }
    let known = bundle.checkpoints.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ");
    let checkpoint_id = match (checkpoint, prev.and_then(|p| p.checkpoint_id.clone())) {
        (Some(cp), _) => Some(cp.trim().to_string()),
        (None, Some(cp)) => Some(cp),
        (None, None) if bundle.checkpoints.len() == 1 => Some(bundle.checkpoints[0].id.clone()),
        (None, None) => None,
    };
    if let Some(cp) = &checkpoint_id
        && !bundle.checkpoints.iter().any(|c| &c.id == cp)
    {
        return Err(bad_input(anyhow::anyhow!(
            "--checkpoint: {cp:?} is not a checkpoint this token may check at (it may check at: {known})"
        )));
    }
    let synced = Synced {
        server: server.to_string(),
        anchor_pem: anchor.to_pem(),
        checkpoint_id: checkpoint_id.clone(),
        checkpoints: serde_json::to_string(&bundle.checkpoints).map_err(failure)?,
        policy: serde_json::to_string(&bundle.policy).map_err(failure)?,
        trust_list: trust_bytes,
        trust_version: trust.version() as i64,
        trust_issued_at: from_secs(trust.issued_at()),
        trust_synced_at: now,
        revocations: entries_to_bytes(&revocations),
        revocation_version: revocations.version() as i64,
        revocation_issued_at: from_secs(revocations.issued_at()),
        revocations_synced_at: now,
        rule_sets: Vec::new(),
        rules_issued_at: bundle.issued_at,
        rules_synced_at: now,
    };
    state.save_synced(&synced, &rule_sets).await.map_err(failure)?;
    Ok(Downloaded {
        trust_version: trust.version(),
        trust_keys: trust.len(),
        revocation_version: revocations.version(),
        revocation_entries: revocations.len(),
        rule_sets: rule_sets.iter().map(|(id, v, _)| format!("{id} {v}")).collect(),
        policy: bundle.policy,
        checkpoint_id,
        known,
    })
}

fn full_revocations(client: &Client, anchor: &PublicKey) -> std::result::Result<RevocationSet, Fail> {
    let bytes = client.get("/api/v1/revocations", false).map_err(|e| e.into_fail("the revocation list"))?;
    RevocationSet::verify(&bytes, anchor).map_err(|e| {
        Fail(3, anyhow::anyhow!("the revocation list does not verify with the trust anchor: {e}: nothing stored"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut r = std::io::BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        while let Some(l) = read_line(&mut r).unwrap() {
            out.push(match l {
                Line::Text(t) => t,
                Line::TooLong(n) => format!("too long {n}"),
                Line::NotText => "not text".into(),
            });
        }
        out
    }

    #[test]
    fn scanner_lines() {
        assert_eq!(lines(b"TX1:A\r\n\nTX1:B"), ["TX1:A", "", "TX1:B"]);
        let mut long = vec![b'A'; 5000];
        long.extend_from_slice(b"\nTX1:C\n\xff\xfe\n");
        assert_eq!(lines(&long), ["too long 5000", "TX1:C", "not text"]);
        assert_eq!(lines(b""), Vec::<String>::new());
    }

    #[test]
    fn revocation_entries_round_trip() {
        let set = RevocationSet::new(
            3,
            1000,
            vec![
                Entry { hash: RevocationHash([7; 16]), cutoff: -5 },
                Entry { hash: RevocationHash([1; 16]), cutoff: 99 },
            ],
        );
        let back = RevocationSet::new(3, 1000, entries_from_bytes(&entries_to_bytes(&set)).unwrap());
        assert_eq!(back, set);
        assert!(entries_from_bytes(&[0; 23]).is_err());
    }
}
