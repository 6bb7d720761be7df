//! `tongxing`: the one binary. `serve` runs the API; `import` loads lab results and the
//! commuter list from CSV; `token` makes API tokens; `bench` measures.

mod bench;
mod bench_alerts;
mod bench_offline;
mod checkpoint;
mod demo;
mod import;
mod keys;
mod node;
mod rollup;
mod rules;
mod serve;
mod simulate;
mod sms;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tongxing_domain::Policy;
use tongxing_domain::auth::Role;
use tongxing_rules::RuleSet;
use tongxing_store::Store;

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE: &str = "sqlite://tongxing.db";

#[derive(Parser)]
#[command(
    name = "tongxing",
    version,
    about = "Tongxing (通行): entry control for a city in an epidemic",
    after_help = "Every command that opens a database takes --database, or TONGXING_DATABASE from the environment."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP API.
    Serve(serve::ServeArgs),
    /// Load CSV files into the database.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Measure decisions, checks and imports (figures for docs/PERFORMANCE.md).
    Bench(bench::BenchArgs),
    /// Write a realistic simulated month of entry events, samples and results (with injected
    /// cases for the early warnings) into a database of its own.
    Simulate(simulate::SimulateArgs),
    /// The flows kept from the entry events: rebuild them, or show how far the job has come.
    #[command(subcommand)]
    Rollup(rollup::RollupCmd),
    /// CertLogic rules and entry policies: eval, check, test, reissue, dry-run.
    #[command(subcommand)]
    Rules(rules::RulesCmd),
    /// The keys that sign passes and lists: generate, rotate, list.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Signed passes (health codes): issue one.
    #[command(subcommand)]
    Pass(PassCmd),
    /// The offline checkpoint: sync its data from the server (uploading the checks made
    /// offline), show it, serve the officer's page on the checkpoint's own device.
    #[command(subcommand)]
    Checkpoint(checkpoint::CheckpointCmd),
    /// Decide on a pass with no network: a QR text, an image of one, or a scanner's stream on
    /// stdin, by the data `tongxing checkpoint sync` stored. Every check is queued for upload.
    Verify(checkpoint::VerifyArgs),
}

#[derive(Subcommand)]
enum PassCmd {
    /// Issue a signed pass for a person and print its QR text (for operators and tests).
    Issue {
        /// The person's document number.
        document: String,
        /// resident_id (default), passport, hk_macao_permit or taiwan_permit.
        #[arg(long)]
        document_kind: Option<String>,
        /// The key folder (`tongxing keys generate`).
        #[arg(long, env = "TONGXING_KEYS")]
        keys: PathBuf,
        /// Also write the QR code as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Also write the QR code as PNG to this file.
        #[arg(long)]
        png: Option<PathBuf>,
        /// The server's database: sqlite://PATH or postgres://USER:PASS@HOST/DB.
        #[arg(long, default_value = DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// admin, lab, test_point, officer, registry, health or analyst (citizens sign in with a code).
        #[arg(long)]
        role: String,
        /// Comma-separated labs (for lab/test_point) or checkpoint ids (for officer); empty = all.
        #[arg(long, default_value = "")]
        scope: String,
        /// A note on whom the token is for.
        #[arg(long)]
        label: Option<String>,
        /// The server's database: sqlite://PATH or postgres://USER:PASS@HOST/DB.
        #[arg(long, default_value = DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
    },
}

/// The policy files given to `serve --policy`, in the project's two formats.
pub struct PolicyFiles {
    /// Legacy policies (`tongxing_domain::Policy`: windows in hours and days, regions, test
    /// points): the built-in one, then those given. They set the facts' look-back window and the
    /// rules for commuter applications.
    pub policies: Vec<Policy>,
    /// Rule sets (CertLogic rules in the DCC business-rule shape, as shipped in
    /// `crates/tongxing-rules/policies/`), each with its text: they decide checks once published
    /// and activated.
    pub rule_sets: Vec<(RuleSet, String)>,
}

/// Reads policy files of either format: a JSON object with `rules` is a rule set, anything else
/// a legacy policy. Each is validated whole before anything is used.
pub fn load_policies(files: &[PathBuf]) -> Result<PolicyFiles> {
    let mut out = PolicyFiles { policies: vec![Policy::beijing_2021_11_17()], rule_sets: Vec::new() };
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading policy {}", f.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("policy {} is not JSON", f.display()))?;
        if value.get("rules").is_some() {
            let rs = RuleSet::from_json(&text).with_context(|| format!("rule set {}", f.display()))?;
            // Stored as the API stores a published body, so that the same rule set compares equal.
            out.rule_sets.push((rs, value.to_string()));
        } else {
            let p = Policy::from_json(&text)
                .with_context(|| format!("policy {} (read as a legacy policy: it has no \"rules\")", f.display()))?;
            out.policies.retain(|q| !(q.id == p.id && q.version == p.version));
            out.policies.push(p);
        }
    }
    Ok(out)
}

pub async fn create_token(store: &Store, role: &str, scope: &str, label: Option<&str>) -> Result<String> {
    use tongxing_domain::text::{CheckpointId, LabCode, Label};
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!("--role: {e}"))?;
    if role == Role::Citizen {
        anyhow::bail!("--role: citizen tokens are sessions a person opens with a one-time code, not made here");
    }
    let scope = scope
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match role {
            Role::Officer => CheckpointId::parse(item).map(CheckpointId::into_string),
            _ => LabCode::parse(item).map(LabCode::into_string),
        })
        .collect::<Result<Vec<String>, _>>()
        .map_err(|e| anyhow::anyhow!("--scope: an item {e}"))?;
    let label = Label::parse_opt(label).map_err(|e| anyhow::anyhow!("--label: {e}"))?;
    let t = tongxing_http::auth::new_token();
    store
        .create_token(&t.id, &t.hash, role.as_str(), &scope, label.as_ref().map(Label::as_str), chrono::Utc::now())
        .await?;
    Ok(t.secret)
}

/// Log lines go to stderr (stdout is for results), in colour only on a terminal, with times in
/// Beijing time. `RUST_LOG` sets the filter; without it, `quiet` keeps only errors.
fn init_logging(quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = if quiet { "error" } else { "info,sqlx=warn" };
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().expect("valid default filter"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_timer(BeijingTime)
                .with_target(false),
        )
        .with(filter)
        .init();
}

/// Log times as every time shown to people: RFC 3339 at +08:00 (`tongxing_domain::time`).
struct BeijingTime;

impl tracing_subscriber::fmt::time::FormatTime for BeijingTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&tongxing_domain::time::rfc3339(chrono::Utc::now()))
    }
}

/// A command whose every failure is bad input: one line on stderr, exit code 2.
fn input_error(r: Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn issue_pass(
    document: &str,
    kind: Option<&str>,
    keys: &std::path::Path,
    svg: Option<&std::path::Path>,
    png: Option<&std::path::Path>,
    database: &str,
) -> Result<()> {
    let now = chrono::Utc::now();
    let doc = tongxing_app::input::document(kind, document, "", now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys = keys::load(keys, now)?;
    let store = Store::connect(database).await.with_context(|| format!("opening {database}"))?;
    let result = async {
        let person = store.person(&doc.key()).await?.context("no person is registered with this document")?;
        let app = tongxing_app::App::new(store.clone(), load_policies(&[])?.policies).with_pass_keys(keys);
        app.reload_rules().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let pass = app.issue_pass(person.id, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(path) = svg {
            std::fs::write(path, tongxing_pass::qr_svg(&pass.text)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = png {
            std::fs::write(path, tongxing_pass::qr_png(&pass.text, 6)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        println!("{}", pass.text);
        eprintln!("valid until {}", tongxing_domain::time::rfc3339(pass.expires_at));
        Ok(())
    }
    .await;
    store.close().await;
    result
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Rules(cmd) => rules::run(cmd).await,
        Cmd::Import(cmd) => import::run(cmd).await,
        Cmd::Keys(cmd) => Ok(input_error(keys::run(cmd))),
        Cmd::Pass(PassCmd::Issue { document, document_kind, keys, svg, png, database }) => Ok(input_error(
            issue_pass(&document, document_kind.as_deref(), &keys, svg.as_deref(), png.as_deref(), &database).await,
        )),
        Cmd::Checkpoint(cmd) => Ok(checkpoint::run_checkpoint(cmd).await),
        Cmd::Verify(args) => Ok(checkpoint::run_verify(args).await),
        other => run_other(other).await.map(|()| ExitCode::SUCCESS),
    }
}

async fn run_other(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Serve(args) => serve::run(args).await,
        Cmd::Token(TokenCmd::Create { role, scope, label, database }) => {
            let store = Store::connect(&database).await.with_context(|| format!("opening {database}"))?;
            let secret = create_token(&store, &role, &scope, label.as_deref()).await?;
            println!("{secret}");
            eprintln!("This token is shown once; store it safely. Use it as: Authorization: Bearer <token>");
            store.close().await;
            Ok(())
        }
        Cmd::Bench(args) => bench::run(args).await,
        Cmd::Simulate(args) => simulate::run(args).await,
        Cmd::Rollup(cmd) => rollup::run(cmd).await,
        Cmd::Rules(_) | Cmd::Import(_) | Cmd::Keys(_) | Cmd::Pass(_) | Cmd::Checkpoint(_) | Cmd::Verify(_) => {
            unreachable!("handled in run")
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The checkpoint's commands print what they report; the log keeps to errors.
    let quiet = matches!(&cli.cmd, Cmd::Import(cmd) if cmd.quiet())
        || matches!(&cli.cmd, Cmd::Checkpoint(cmd) if !matches!(cmd, checkpoint::CheckpointCmd::Serve(_)))
        || matches!(&cli.cmd, Cmd::Verify(_));
    init_logging(quiet);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses to go on when a condition fails, with the message given.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if !cond {
        bail!(msg());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every subcommand and every argument says what it is, in `--help`.
    #[test]
    fn every_command_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
        }
        Cli::command().debug_assert();
        let mut missing = Vec::new();
        walk(&Cli::command(), "tongxing", &mut missing);
        assert!(missing.is_empty(), "undescribed in --help: {missing:?}");
    }

    /// Every subcommand that opens a database reads TONGXING_DATABASE too.
    #[test]
    fn every_database_argument_reads_the_environment() {
        fn walk(cmd: &clap::Command, path: &str, wrong: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), wrong);
            }
            for arg in cmd.get_arguments() {
                if arg.get_id() == "database" && arg.get_env() != Some(std::ffi::OsStr::new("TONGXING_DATABASE")) {
                    wrong.push(path.to_string());
                }
            }
        }
        let mut wrong = Vec::new();
        walk(&Cli::command(), "tongxing", &mut wrong);
        assert!(wrong.is_empty(), "--database without TONGXING_DATABASE: {wrong:?}");
    }

    /// Bench commands have no default database: never the live `tongxing.db`.
    #[test]
    fn bench_has_no_default_database() {
        let cmd = Cli::command();
        let bench = cmd.find_subcommand("bench").unwrap();
        for sub in bench.get_subcommands() {
            if let Some(db) = sub.get_arguments().find(|a| a.get_id() == "database") {
                assert!(db.get_default_values().is_empty(), "bench {}", sub.get_name());
            }
        }
    }
}
