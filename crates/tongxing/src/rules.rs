//! `tongxing rules`: CertLogic expressions and entry policies from the command line, for
//! operators testing a rule set before publishing it.
//!
//! Exit codes: 0 success; 1 a test failed; 2 an invalid expression, policy or data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use clap::Subcommand;
use tongxing_certlogic::Expr;
use tongxing_rules::RuleSet;
use tongxing_store::Store;

#[derive(Subcommand)]
pub enum RulesCmd {
    /// Evaluate a CertLogic expression (or a rule file's `Logic`) on a data file; prints the result.
    Eval { rule: PathBuf, data: PathBuf },
    /// Validate a whole policy (rule set) file.
    Check { policy: PathBuf },
    /// Run a folder of rules with their tests (DCC layout: <RULE-ID>/rule.json, <RULE-ID>/tests/*.json).
    Test { dir: PathBuf },
    /// Print a policy re-issued under a new version, in force from a date (e.g. to re-impose it).
    Reissue {
        policy: PathBuf,
        #[arg(long)]
        version: String,
        /// RFC 3339, or "now".
        #[arg(long, default_value = "now")]
        from: String,
    },
    /// Replay recorded entry events under a candidate policy and report what would change.
    DryRun {
        policy: PathBuf,
        /// How far back: e.g. 7d, 24h, 90m.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Changed entries to show (pseudonymised).
        #[arg(long, default_value_t = 20)]
        sample: usize,
        #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
    },
}

/// An input problem: printed on stderr, exit code 2.
fn refuse(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn read_json(path: &Path, what: &str) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{what} {} is not JSON: {e}", path.display()))
}

/// Parses "7d", "24h", "90m".
pub fn parse_span(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "d" => Some(Duration::days(n)),
        "h" => Some(Duration::hours(n)),
        "m" => Some(Duration::minutes(n)),
        _ => None,
    }
}

pub async fn run(cmd: RulesCmd) -> Result<ExitCode> {
    match cmd {
        RulesCmd::Eval { rule, data } => {
            let rule = match read_json(&rule, "rule") {
                Ok(v) => v,
                Err(e) => return Ok(refuse(e)),
            };
            let logic = rule.get("Logic").cloned().unwrap_or(rule);
            let expr = match Expr::compile(&logic) {
                Ok(e) => e,
                Err(e) => return Ok(refuse(format!("invalid CertLogic expression: {e}"))),
            };
            let data = match read_json(&data, "data") {
                Ok(v) => v,
                Err(e) => return Ok(refuse(e)),
            };
            match expr.evaluate(&data) {
                Ok(v) => {
                    println!("{}", serde_json::to_string(&v)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refuse(format!("evaluation failed: {e}"))),
            }
        }
        RulesCmd::Check { policy } => {
            let text = match std::fs::read_to_string(&policy) {
                Ok(t) => t,
                Err(e) => return Ok(refuse(format!("cannot read {}: {e}", policy.display()))),
            };
            match RuleSet::from_json(&text) {
                Ok(rs) => {
                    println!(
                        "ok: {} version {}, {} rules, valid from {}{}",
                        rs.id(),
                        rs.version(),
                        rs.rules().len(),
                        rs.valid_from().to_rfc3339(),
                        rs.valid_to().map(|t| format!(" to {}", t.to_rfc3339())).unwrap_or_default()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refuse(format!("{}: {e}", policy.display()))),
            }
        }
        RulesCmd::Test { dir } => {
            let report =
                tongxing_certlogic::rule_tests::run(&dir).with_context(|| format!("reading {}", dir.display()))?;
            for f in &report.failed {
                println!("FAILED {} / {}: {}", f.rule, f.test, f.reason);
            }
            let secs = report.elapsed.as_secs_f64().max(1e-9);
            println!(
                "{} evaluations in {:.3} s = {:.0} evaluations/s",
                report.evaluations,
                secs,
                report.evaluations as f64 / secs
            );
            println!("{} passed, {} failed", report.passed, report.failed.len());
            Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        RulesCmd::Reissue { policy, version, from } => {
            let from = if from == "now" {
                Utc::now()
            } else {
                match chrono::DateTime::parse_from_rfc3339(&from) {
                    Ok(t) => t.with_timezone(&Utc),
                    Err(_) => {
                        return Ok(refuse(format!(
                            "--from: '{from}' is not RFC 3339 (e.g. 2026-12-01T00:00:00+08:00) or 'now'"
                        )));
                    }
                }
            };
            let text = match std::fs::read_to_string(&policy) {
                Ok(t) => t,
                Err(e) => return Ok(refuse(format!("cannot read {}: {e}", policy.display()))),
            };
            match tongxing_rules::reissue(&text, &version, from) {
                Ok(out) => {
                    println!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refuse(format!("{}: {e}", policy.display()))),
            }
        }
        RulesCmd::DryRun { policy, since, sample, database } => {
            let Some(span) = parse_span(&since) else {
                return Ok(refuse(format!("--since: '{since}' is not a span like 7d, 24h or 90m")));
            };
            let text = match std::fs::read_to_string(&policy) {
                Ok(t) => t,
                Err(e) => return Ok(refuse(format!("cannot read {}: {e}", policy.display()))),
            };
            let rs = match RuleSet::from_json(&text) {
                Ok(rs) => rs,
                Err(e) => return Ok(refuse(format!("{}: {e}", policy.display()))),
            };
            let store = Store::connect(&database).await.with_context(|| format!("opening {database}"))?;
            let until = Utc::now();
            let report = tongxing_http::dryrun::dry_run(&store, &rs, until - span, until, sample).await?;
            store
                .audit_policy(
                    until,
                    "cli",
                    "dry-run",
                    rs.id(),
                    rs.version(),
                    Some(&format!("{} events, {} changed", report.events, report.changed)),
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!(
                "dry run of {} {}: {} entry events in {:.1} s, {} would change ({} stricter, {} looser)",
                report.candidate_id,
                report.candidate_version,
                report.events,
                report.elapsed_ms as f64 / 1000.0,
                report.changed,
                report.stricter,
                report.looser
            );
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
