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
    Eval {
        /// A CertLogic expression, or a DCC rule file whose `Logic` is evaluated (JSON).
        rule: PathBuf,
        /// The data document the expression reads (JSON), e.g. a facts document (FACTS.md).
        data: PathBuf,
    },
    /// Validate a whole policy (rule set) file.
    Check {
        /// A rule-set file, as in crates/tongxing-rules/policies/.
        policy: PathBuf,
    },
    /// Run a folder of rules with their tests (DCC layout: <RULE-ID>/rule.json, <RULE-ID>/tests/*.json).
    Test {
        /// The folder holding one sub-folder per rule.
        dir: PathBuf,
    },
    /// Print a policy re-issued under a new version, in force from a date (e.g. to re-impose it).
    Reissue {
        /// The rule-set file to re-issue.
        policy: PathBuf,
        /// The new version, e.g. 2026-12 (letters, digits, '-', '_', '.', '/'; at most 64).
        #[arg(long)]
        version: String,
        /// RFC 3339, or "now".
        #[arg(long, default_value = "now")]
        from: String,
    },
    /// Replay recorded entry events under a candidate policy and report what would change.
    DryRun {
        /// The candidate rule-set file.
        policy: PathBuf,
        /// How far back: e.g. 7d, 24h, 90m.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Changed entries to show (pseudonymised).
        #[arg(long, default_value_t = 20)]
        sample: usize,
        /// sqlite://PATH or postgres://USER:PASS@HOST/DB: the database whose entry events are replayed.
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

/// The longest span `--since` accepts: ten years (a replay goes back no further than the
/// entry events kept; times computed from a longer span could leave chrono's range).
const MAX_SPAN_DAYS: i64 = 3660;

/// Parses "7d", "24h", "90m": a positive whole number of days, hours or minutes, at most ten
/// years. The error says what is accepted.
pub fn parse_span(s: &str) -> Result<Duration, String> {
    let accepted = format!(
        "a positive whole number of days, hours or minutes with its unit, like 7d, 24h or 90m, \
         at most {MAX_SPAN_DAYS}d"
    );
    let t = s.trim();
    // The unit is the last character, whatever it is (it may be several bytes long: "7天").
    let Some(unit) = t.chars().next_back() else {
        return Err(format!("'{s}' is empty; it must be {accepted}"));
    };
    let (n, minutes_per) = match unit {
        'd' => (&t[..t.len() - 1], 24 * 60),
        'h' => (&t[..t.len() - 1], 60),
        'm' => (&t[..t.len() - 1], 1),
        _ => return Err(format!("'{s}' has no unit d, h or m; it must be {accepted}")),
    };
    let n: i64 = match n.parse() {
        Ok(n) if n > 0 => n,
        Ok(_) => return Err(format!("'{s}' is not positive; it must be {accepted}")),
        Err(_) => return Err(format!("'{s}' is not a whole number with a unit; it must be {accepted}")),
    };
    match n.checked_mul(minutes_per) {
        Some(minutes) if minutes <= MAX_SPAN_DAYS * 24 * 60 => Ok(Duration::minutes(minutes)),
        _ => Err(format!("'{s}' is too long; it must be {accepted}")),
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
                        tongxing_domain::time::rfc3339(rs.valid_from()),
                        rs.valid_to().map(|t| format!(" to {}", tongxing_domain::time::rfc3339(t))).unwrap_or_default()
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
            let span = match parse_span(&since) {
                Ok(span) => span,
                Err(e) => return Ok(refuse(format!("--since: {e}"))),
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
            let report = tongxing_app::dryrun::dry_run(&store, &rs, until - span, until, sample).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_span(" 24h "), Ok(Duration::hours(24)));
        assert_eq!(parse_span("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_span("3660d"), Ok(Duration::days(3660)));
        assert_eq!(parse_span(&format!("{}m", 3660 * 24 * 60)), Ok(Duration::days(3660)));
    }

    /// These used to panic: "7天" split inside a character, huge numbers in chrono.
    #[test]
    fn bad_spans_are_errors_that_say_what_is_accepted() {
        let cases = [
            ("7天", "has no unit d, h or m"),
            ("天", "has no unit d, h or m"),
            ("天d", "is not a whole number"),
            ("", "is empty"),
            ("d", "is not a whole number"),
            ("7", "has no unit"),
            ("-7d", "is not positive"),
            ("0h", "is not positive"),
            ("3661d", "is too long"),
            ("9223372036854775807d", "is too long"),
            ("9223372036854775807m", "is too long"),
            ("99999999999999999999d", "is not a whole number"),
            ("1.5d", "is not a whole number"),
        ];
        for (input, problem) in cases {
            let err = parse_span(input).unwrap_err();
            assert!(err.contains(problem), "{input}: {err}");
            assert!(err.contains("like 7d, 24h or 90m, at most 3660d"), "{input}: {err}");
        }
    }

    #[tokio::test]
    async fn dry_run_refuses_a_bad_since_with_exit_code_2() {
        for since in ["7天", "9223372036854775807d"] {
            let cmd = RulesCmd::DryRun {
                policy: PathBuf::from("/nonexistent/policy.json"),
                since: since.to_owned(),
                sample: 1,
                database: "sqlite::memory:".to_owned(),
            };
            assert_eq!(run(cmd).await.unwrap(), ExitCode::from(2));
        }
    }
}
