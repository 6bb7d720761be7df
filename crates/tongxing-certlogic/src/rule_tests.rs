//! Runs DCC business-rule folders against their test cases, the layout of the EU's
//! `dgc-business-rules` repository: `<anything>/<RULE-ID>/rule.json` holds the rule (its CertLogic
//! expression under `Logic`), `<RULE-ID>/tests/*.json` its test cases, each
//! `{"name": …, "payload": …, "external": …, "expected": true|false}`. A case passes when the
//! CertLogic truthiness of the rule's result on `{"payload": …, "external": …}` equals `expected`.
//!
//! A rule that fails to evaluate fails the case whatever it expects: verifiers treat an error as
//! "rule not passed", but a rule that throws is a bug its author should see.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::{CompileError, Expr};

/// The outcome of [`run`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Test cases whose outcome matched `expected`.
    pub passed: usize,
    /// Test cases that did not pass, and rules or test files that could not be used, in path order.
    pub failed: Vec<Failure>,
    /// How many times a rule was evaluated.
    pub evaluations: u64,
    /// Wall time of the whole run, reading files included.
    pub elapsed: Duration,
}

impl Report {
    /// Whether every test case passed (and there was nothing unusable).
    pub fn all_passed(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One test case that did not pass, or a rule or test file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The rule's ID: the name of its folder.
    pub rule: String,
    /// The test file's name, with its `name` field when it has one: `1.json (sampled 49 h ago)`.
    /// `rule.json` when the rule itself is at fault and it has no test files.
    pub test: String,
    /// What went wrong, for the rule's author.
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}: {}", self.rule, self.test, self.reason)
    }
}

/// Finds every rule folder under `dir` (or `dir` itself when it holds `rule.json`) and runs its
/// test cases. Fails only when a folder cannot be read; problems with single files are failures
/// in the report.
pub fn run(dir: &Path) -> Result<Report, io::Error> {
    let started = Instant::now();
    let mut rule_dirs = Vec::new();
    find_rule_dirs(dir, &mut rule_dirs)?;
    rule_dirs.sort();
    let mut report = Report::default();
    for rule_dir in &rule_dirs {
        run_rule(rule_dir, &mut report)?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Collects folders that contain a `rule.json` file. Symbolic links are not followed, so a link
/// loop cannot make the walk endless.
fn find_rule_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if dir.join("rule.json").is_file() {
        out.push(dir.to_path_buf());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            find_rule_dirs(&entry.path(), out)?;
        }
    }
    Ok(())
}

fn run_rule(rule_dir: &Path, report: &mut Report) -> io::Result<()> {
    let rule_id = rule_dir
        .canonicalize()
        .unwrap_or_else(|_| rule_dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| rule_dir.display().to_string());
    let tests_dir = rule_dir.join("tests");
    let mut test_files = Vec::new();
    if tests_dir.is_dir() {
        for entry in fs::read_dir(&tests_dir)? {
            let path = entry?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "json") {
                test_files.push(path);
            }
        }
    }
    test_files.sort();

    let rule = load_rule(&rule_dir.join("rule.json"));
    let fail = |report: &mut Report, test: String, reason: String| {
        report.failed.push(Failure { rule: rule_id.clone(), test, reason });
    };
    let expr = match rule {
        Ok(expr) => expr,
        Err(reason) => {
            // Every test case of an unusable rule fails with the rule's problem.
            if test_files.is_empty() {
                fail(report, "rule.json".to_owned(), reason.clone());
            }
            for file in &test_files {
                fail(report, file_name(file), reason.clone());
            }
            return Ok(());
        }
    };

    for file in &test_files {
        let case = match load_case(file) {
            Ok(case) => case,
            Err(reason) => {
                fail(report, file_name(file), reason);
                continue;
            }
        };
        let label = match &case.name {
            Some(name) => format!("{} ({name})", file_name(file)),
            None => file_name(file),
        };
        report.evaluations += 1;
        match expr.evaluate(&case.data) {
            Ok(result) => {
                let truthy = crate::is_truthy(&result);
                if truthy == case.expected {
                    report.passed += 1;
                } else {
                    let shown = short(&result);
                    fail(
                        report,
                        label,
                        format!(
                            "expected the rule to {}, but it evaluated to {shown}, which {}",
                            if case.expected { "pass" } else { "fail" },
                            if truthy { "passes" } else { "fails" }
                        ),
                    );
                }
            }
            Err(e) => fail(
                report,
                label,
                format!("the rule failed to evaluate (a verifier would count it as not passed): {e}"),
            ),
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

fn load_rule(path: &Path) -> Result<Expr, String> {
    let rule = read_json(path)?;
    let logic = rule
        .get("Logic")
        .ok_or_else(|| "rule.json has no \"Logic\" field with the rule's CertLogic expression".to_owned())?;
    Expr::compile(logic).map_err(|CompileError::Invalid { issues }| {
        format!(
            "the rule's Logic is not valid CertLogic: {}",
            issues.iter().map(|i| format!("at /Logic{}: {}", i.path, i.message)).collect::<Vec<_>>().join("; ")
        )
    })
}

struct Case {
    name: Option<String>,
    data: Value,
    expected: bool,
}

fn load_case(path: &Path) -> Result<Case, String> {
    let Value::Object(mut case) = read_json(path)? else {
        return Err("a test case must be a JSON object".to_owned());
    };
    let expected = case
        .get("expected")
        .and_then(Value::as_bool)
        .ok_or_else(|| "the test case has no boolean \"expected\" field".to_owned())?;
    let name = case.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut data = Map::new();
    data.insert("payload".to_owned(), case.remove("payload").unwrap_or(Value::Null));
    data.insert("external".to_owned(), case.remove("external").unwrap_or(Value::Null));
    Ok(Case { name, data: Value::Object(data), expected })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A fresh folder under the system's temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "tongxing-certlogic-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, value: &Value) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    }

    fn forty_eight_hours() -> Value {
        json!({
            "Identifier": "TR-EU-0005",
            "Type": "Acceptance",
            "Country": "EU",
            "CertificateType": "Test",
            "Logic": {"if": [
                {"var": "payload.t.0"},
                {"not-before": [
                    {"plusTime": [{"var": "payload.t.0.sc"}, 48, "hour"]},
                    {"plusTime": [{"var": "external.validationClock"}, 0, "hour"]}
                ]},
                true
            ]}
        })
    }

    fn case(name: &str, sampled: &str, expected: bool) -> Value {
        json!({
            "name": name,
            "payload": {"t": [{"sc": sampled, "tr": "260415000"}]},
            "external": {"validationClock": "2021-11-19T08:00:00+08:00"},
            "expected": expected
        })
    }

    #[test]
    fn one_pass_and_one_failure() {
        let tmp = TempDir::new("rules");
        let rule = tmp.0.join("EU/TR-EU-0005");
        write(&rule.join("rule.json"), &forty_eight_hours());
        write(&rule.join("tests/1.json"), &case("sampled 24 h ago", "2021-11-18T08:00:00+08:00", true));
        // Wrong expectation: sampled 49 hours ago, so the rule fails, but the case expects a pass.
        write(&rule.join("tests/2.json"), &case("sampled 49 h ago", "2021-11-17T07:00:00+08:00", true));
        fs::write(rule.join("tests/README.md"), "not a test").unwrap();

        let report = run(&tmp.0).unwrap();
        assert_eq!(report.passed, 1);
        assert_eq!(report.evaluations, 2);
        assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
        let failure = &report.failed[0];
        assert_eq!(failure.rule, "TR-EU-0005");
        assert_eq!(failure.test, "2.json (sampled 49 h ago)");
        assert_eq!(failure.reason, "expected the rule to pass, but it evaluated to false, which fails");
        assert!(!report.all_passed());

        // The rule folder itself can be given.
        let report = run(&rule).unwrap();
        assert_eq!((report.passed, report.failed.len()), (1, 1));
    }

    #[test]
    fn broken_rules_and_cases_are_reported_not_fatal() {
        let tmp = TempDir::new("broken");
        let invalid = tmp.0.join("X-INVALID");
        write(&invalid.join("rule.json"), &json!({"Logic": {"var": "a."}}));
        write(&invalid.join("tests/1.json"), &json!({"payload": {}, "external": {}, "expected": true}));
        let throws = tmp.0.join("X-THROWS");
        write(&throws.join("rule.json"), &json!({"Logic": {"plusTime": [{"var": "payload.x"}, 0, "day"]}}));
        write(&throws.join("tests/1.json"), &json!({"payload": {}, "external": {}, "expected": false}));
        fs::write(throws.join("tests/2.json"), "{ nope").unwrap();
        let untested = tmp.0.join("X-NOLOGIC");
        write(&untested.join("rule.json"), &json!({"Identifier": "X-NOLOGIC"}));

        let report = run(&tmp.0).unwrap();
        assert_eq!(report.passed, 0);
        let summary: Vec<_> = report.failed.iter().map(|f| format!("{}|{}", f.rule, f.test)).collect();
        assert_eq!(summary, ["X-INVALID|1.json", "X-NOLOGIC|rule.json", "X-THROWS|1.json", "X-THROWS|2.json"]);
        assert!(report.failed[0].reason.contains("at /Logic: data access path"));
        assert!(report.failed[1].reason.contains("no \"Logic\" field"));
        assert!(report.failed[2].reason.contains("failed to evaluate"));
        assert!(report.failed[3].reason.contains("not valid JSON"));
    }

    #[test]
    fn missing_folder_is_an_io_error() {
        assert!(run(Path::new("/nonexistent/tongxing/rules")).is_err());
    }
}
