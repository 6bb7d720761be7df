//! tongxing-certlogic against the EU's reference engine, certlogic-js (pinned in
//! `benches/reference/package.json`), side by side in one run, on the same DCC business rules and
//! data documents (`benches/data/`, see its README.md). Run:
//! `cargo bench -p tongxing-certlogic --bench reference`.
//!
//! 1. Compiles every rule once, then evaluates every rule on every document, round after round on
//!    one thread for the time budget, and prints `tongxing-certlogic: … evaluations/s` (for
//!    `Expr::evaluate`, which returns the value as certlogic-js's `evaluate` does, and for
//!    `Expr::evaluate_truthy`, what a verifier needs).
//! 2. If `node` is on PATH: installs the reference with `npm ci` when `benches/reference/node_modules`
//!    is missing, runs `node benches/reference/bench.js <rules> <data> --results` and compares
//!    both engines' results on every (rule, document) pair (an evaluation error on one side must be
//!    one on the other; values must be equal), printing the number of disagreements; then runs
//!    the reference's timing and prints `tongxing-certlogic is X.Y times certlogic-js`.
//!    Without node, or if the install fails, it says that the reference was skipped.
//!
//! The time budget per measurement is 3 s; `TONGXING_BENCH_SECONDS` changes it. Exits non-zero
//! if the engines disagree on any pair.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tongxing_certlogic::Expr;

struct Rule {
    id: String,
    expr: Expr,
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn load_rules(path: &Path) -> Vec<Rule> {
    let Value::Array(rules) = read_json(path) else {
        panic!("{} must be an array of rules", path.display());
    };
    rules
        .iter()
        .map(|rule| {
            let id = rule["Identifier"].as_str().expect("Identifier").to_owned();
            let expr = Expr::compile(&rule["Logic"]).unwrap_or_else(|e| panic!("rule {id} does not compile: {e}"));
            Rule { id, expr }
        })
        .collect()
}

fn load_data(path: &Path) -> Vec<Value> {
    let Value::Array(data) = read_json(path) else {
        panic!("{} must be an array of data documents", path.display());
    };
    data
}

/// Runs `round` (which makes `per_round` evaluations) for about `budget` after a warm-up, and
/// returns (evaluations, elapsed).
fn measure(budget: Duration, per_round: u64, mut round: impl FnMut()) -> (u64, Duration) {
    let warm_until = Instant::now() + budget.min(Duration::from_secs(1)) / 3;
    while Instant::now() < warm_until {
        round();
    }
    let started = Instant::now();
    let mut rounds = 0;
    loop {
        round();
        rounds += 1;
        let elapsed = started.elapsed();
        if elapsed >= budget {
            return (rounds * per_round, elapsed);
        }
    }
}

fn report(name: &str, (evaluations, elapsed): (u64, Duration)) -> f64 {
    let per_second = evaluations as f64 / elapsed.as_secs_f64();
    println!(
        "{name}: {evaluations} evaluations in {:.3} s = {per_second:.0} evaluations/s ({:.0} ns each)",
        elapsed.as_secs_f64(),
        1e9 / per_second
    );
    per_second
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure the reference's `node_modules` is there, installing it with `npm ci` if not.
fn ensure_reference_installed(reference: &Path) -> Result<(), String> {
    if reference.join("node_modules/certlogic-js/package.json").exists() {
        return Ok(());
    }
    println!("installing the reference: npm ci in {}", reference.display());
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(reference)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("npm ci failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
    }
}

fn run_node(bench_js: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("node").arg(bench_js).args(args).output().map_err(|e| format!("cannot run node: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "node {} failed ({}): {}",
            bench_js.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("node printed non-UTF-8: {e}"))
}

/// The evaluations per second in `certlogic-js: N evaluations in S s = R evaluations/s`.
fn parse_rate(line: &str) -> Option<f64> {
    let (_, rest) = line.split_once(" = ")?;
    rest.strip_suffix(" evaluations/s")?.trim().parse().ok()
}

/// Whether our result agrees with the reference's: both an evaluation error, or equal JSON
/// values (numbers by value).
fn agrees(ours: &Result<Value, tongxing_certlogic::EvalError>, theirs: &Value) -> bool {
    let theirs_error = theirs.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("error"));
    match ours {
        Err(_) => theirs_error,
        Ok(value) => !theirs_error && same_json(value, theirs),
    }
}

fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same_json(v, w)))
        }
        (a, b) => a == b,
    }
}

/// Compares every (rule, document) result with the reference's; returns the number of
/// disagreements, printing the first few.
fn check_agreement(rules: &[Rule], data: &[Value], reference: &Value) -> Result<usize, String> {
    let ids: Vec<&str> = reference["rules"]
        .as_array()
        .ok_or("the reference's results have no \"rules\"")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if ids != rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>() {
        return Err("the reference evaluated other rules".to_owned());
    }
    let table = reference["results"].as_array().ok_or("the reference's results have no \"results\"")?;
    if table.len() != data.len() {
        return Err(format!("the reference has results for {} documents, not {}", table.len(), data.len()));
    }
    let mut disagreements = 0;
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    for (d, (document, row)) in data.iter().zip(table).enumerate() {
        let row = row.as_array().ok_or("a row of results is not an array")?;
        if row.len() != rules.len() {
            return Err(format!("row {d} has {} results", row.len()));
        }
        for (rule, theirs) in rules.iter().zip(row) {
            let ours = rule.expr.evaluate(document);
            match &ours {
                Ok(Value::Bool(true)) => passed += 1,
                Ok(_) => failed += 1,
                Err(_) => errors += 1,
            }
            if !agrees(&ours, theirs) {
                disagreements += 1;
                if disagreements <= 10 {
                    let ours = match &ours {
                        Ok(v) => v.to_string(),
                        Err(e) => format!("error: {e}"),
                    };
                    println!(
                        "  disagreement: rule {} on document #{d}: tongxing-certlogic {ours}, certlogic-js {theirs}",
                        rule.id
                    );
                }
            }
        }
    }
    println!(
        "agreement with {}: {} (rule, document) pairs, {disagreements} disagreements \
         (tongxing-certlogic: {passed} true, {failed} other values, {errors} evaluation errors)",
        reference["engine"].as_str().unwrap_or("certlogic-js"),
        rules.len() * data.len()
    );
    Ok(disagreements)
}

fn main() -> ExitCode {
    let budget = std::env::var("TONGXING_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(3), Duration::from_secs_f64);
    let benches = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches");
    let rules_path = benches.join("data/rules.json");
    let data_path = benches.join("data/data.json");
    let reference = benches.join("reference");

    let rules = load_rules(&rules_path);
    let data = load_data(&data_path);
    let per_round = (rules.len() * data.len()) as u64;
    println!(
        "{} rules × {} data documents = {per_round} evaluations a round, one thread, {:.1} s a measurement",
        rules.len(),
        data.len(),
        budget.as_secs_f64()
    );

    let ours = report(
        "tongxing-certlogic",
        measure(budget, per_round, || {
            for document in &data {
                for rule in &rules {
                    let _ = black_box(rule.expr.evaluate(black_box(document)));
                }
            }
        }),
    );
    let ours_truthy = report(
        "tongxing-certlogic (evaluate_truthy)",
        measure(budget, per_round, || {
            for document in &data {
                for rule in &rules {
                    let _ = black_box(rule.expr.evaluate_truthy(black_box(document)));
                }
            }
        }),
    );

    if !node_available() {
        println!("reference skipped: node is not on PATH");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = ensure_reference_installed(&reference) {
        println!("reference skipped: {e}");
        return ExitCode::SUCCESS;
    }
    let bench_js = reference.join("bench.js");
    let (rules_arg, data_arg) = (rules_path.to_str().expect("UTF-8 path"), data_path.to_str().expect("UTF-8 path"));

    let disagreements = match run_node(&bench_js, &[rules_arg, data_arg, "--results"])
        .and_then(|out| serde_json::from_str(&out).map_err(|e| format!("bad results JSON: {e}")))
        .and_then(|results: Value| check_agreement(&rules, &data, &results))
    {
        Ok(n) => n,
        Err(e) => {
            println!("reference skipped: {e}");
            return ExitCode::SUCCESS;
        }
    };

    let seconds = format!("{}", budget.as_secs_f64());
    let line = match run_node(&bench_js, &[rules_arg, data_arg, "--seconds", &seconds]) {
        Ok(out) => out,
        Err(e) => {
            println!("reference skipped: {e}");
            return ExitCode::SUCCESS;
        }
    };
    let line = line.lines().find(|l| l.starts_with("certlogic-js:")).unwrap_or("");
    println!("{line}");
    match parse_rate(line) {
        Some(theirs) => {
            println!(
                "tongxing-certlogic is {:.1} times certlogic-js ({:.1} times with evaluate_truthy)",
                ours / theirs,
                ours_truthy / theirs
            );
        }
        None => println!("reference skipped: cannot read its figure from {line:?}"),
    }

    if disagreements > 0 {
        println!("the engines disagree on {disagreements} pairs");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
