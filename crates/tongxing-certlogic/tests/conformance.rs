//! The official CertLogic test suites (copied into tests/certlogic-testdata, see NOTE.md there),
//! run against this crate.
//!
//! Evaluation suite rules (its README and schema): a file, case or assertion with
//! `"directive": "skip"` is skipped; an assertion's own `certLogicExpression` overrides its case's;
//! `expected` is compared with the result by JSON equality (integers by value); `message`
//! describes the assertion. `"directive": "only"` would focus a mocha run; here every
//! non-skipped assertion runs regardless, which is stricter.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tongxing_certlogic::{Expr, Limits, MAX_STEPS, MAX_VALUE_DEPTH, MAX_VALUE_SIZE, Usage, validate};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certlogic-testdata")
}

fn suite_files(folder: &str) -> Vec<(String, Value)> {
    let mut files: Vec<_> = fs::read_dir(testdata().join(folder))
        .unwrap_or_else(|e| panic!("cannot read {folder}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect()
}

fn skipped(v: &Value) -> bool {
    v.get("directive").and_then(Value::as_str) == Some("skip")
}

/// JSON equality with numbers compared by value (`1` equals `1.0`), as JavaScript compares them.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[derive(Default)]
struct Tally {
    ran: usize,
    passed: usize,
    skipped: usize,
    failures: Vec<String>,
}

#[test]
fn evaluation_test_suite() {
    let mut tally = Tally::default();
    let mut cases = 0;
    // The most any assertion used of the evaluation budget.
    let mut most = Usage::default();
    for (file, suite) in suite_files("testSuite") {
        let file_skipped = skipped(&suite);
        for (ci, case) in suite["cases"].as_array().expect("cases").iter().enumerate() {
            cases += 1;
            let case_name = case["name"].as_str().unwrap_or("?");
            let case_skipped = file_skipped || skipped(case);
            let case_expr = case.get("certLogicExpression");
            for (ai, assertion) in case["assertions"].as_array().expect("assertions").iter().enumerate() {
                if case_skipped || skipped(assertion) {
                    tally.skipped += 1;
                    continue;
                }
                tally.ran += 1;
                let label = format!(
                    "{file} / case #{ci} {case_name:?} / assertion #{ai}{}",
                    assertion["message"].as_str().map(|m| format!(" ({m})")).unwrap_or_default()
                );
                let Some(logic) = assertion.get("certLogicExpression").or(case_expr) else {
                    tally.failures.push(format!("{label}: no certLogicExpression"));
                    continue;
                };
                let expr = match Expr::compile(logic) {
                    Ok(expr) => expr,
                    Err(e) => {
                        tally.failures.push(format!("{label}: does not compile: {e}"));
                        continue;
                    }
                };
                let expected = &assertion["expected"];
                let (result, usage) = expr.evaluate_with(&assertion["data"], &Limits::DEFAULT);
                most.steps = most.steps.max(usage.steps);
                most.value_size = most.value_size.max(usage.value_size);
                most.value_depth = most.value_depth.max(usage.value_depth);
                match result {
                    Ok(actual) if same(&actual, expected) => tally.passed += 1,
                    Ok(actual) => tally.failures.push(format!("{label}: expected {expected}, got {actual}")),
                    Err(e) => tally.failures.push(format!("{label}: expected {expected}, got error: {e}")),
                }
            }
        }
    }
    println!(
        "CertLogic evaluation suite: {cases} cases, {} assertions: {} ran, {} passed, {} failed, {} skipped",
        tally.ran + tally.skipped,
        tally.ran,
        tally.passed,
        tally.failures.len(),
        tally.skipped
    );
    println!(
        "Most of the evaluation budget one assertion used: {} steps, values of {} nodes, {} deep",
        most.steps, most.value_size, most.value_depth
    );
    assert!(tally.failures.is_empty(), "{} failing assertions:\n{}", tally.failures.len(), tally.failures.join("\n"));
    // Far inside the budget (docs/PERFORMANCE.md records the figures).
    assert!(most.steps * 100 < MAX_STEPS && most.value_size * 100 < MAX_VALUE_SIZE, "{most:?}");
    assert!(most.value_depth * 4 < MAX_VALUE_DEPTH, "{most:?}");
    // The suite as copied: 60 cases, 232 assertions, 14 skipped (see its README).
    assert_eq!((cases, tally.ran + tally.skipped, tally.skipped), (60, 232, 14));
}

/// The skipped assertions are skipped because the specification disagrees with them (or with
/// an extension they test): check that this engine follows the specification there.
#[test]
fn skipped_assertions_follow_the_specification() {
    let in_nulls = serde_json::json!({"in": [{"var": "x"}, {"var": "y"}]});
    let expr = Expr::compile(&in_nulls).unwrap();
    for data in [
        serde_json::json!(null),
        serde_json::json!({}),
        serde_json::json!({"x": null}),
        serde_json::json!({"x": null, "y": null}),
    ] {
        // "operating on a non-array <operand 2> is considered an error"
        let err = expr.evaluate(&data).unwrap_err();
        assert!(err.to_string().contains("must be an array"), "{data}: {err}");
    }
    // Patched reduce: the lambda's context has no "data" (a possible future extension).
    let patched = serde_json::json!({"reduce": [{"var": "x"}, {"var": "data.z"}, 0]});
    let expr = Expr::compile(&patched).unwrap();
    assert_eq!(expr.evaluate(&serde_json::json!({"x": [1], "z": 1})).unwrap(), Value::Null);
}

#[test]
fn validation_test_suite() {
    let (mut ran, mut skipped_count) = (0, 0);
    let mut failures = Vec::new();
    for (file, suite) in suite_files("validation-testSuite") {
        let file_skipped = skipped(&suite);
        for (ci, case) in suite["cases"].as_array().expect("cases").iter().enumerate() {
            if file_skipped || skipped(case) {
                skipped_count += 1;
                continue;
            }
            ran += 1;
            let logic = &case["certLogicExpression"];
            let label = format!("{file} / case #{ci} {logic}");
            let expected = case["issues"].as_array().expect("issues");
            let actual = validate(logic);
            // Each expected issue must be reported, for the same sub-expression and with the
            // same message, and nothing else.
            let matches = actual.len() == expected.len()
                && expected
                    .iter()
                    .zip(&actual)
                    .all(|(e, a)| same(&e["expr"], &a.expr) && e["message"].as_str() == Some(a.message.as_str()));
            if !matches {
                failures.push(format!("{label}: expected {}, got {:?}", Value::Array(expected.clone()), actual));
            }
            // compile agrees with validate.
            if Expr::compile(logic).is_ok() != actual.is_empty() {
                failures.push(format!("{label}: compile and validate disagree"));
            }
        }
    }
    println!(
        "CertLogic validation suite: {ran} cases ran, {} passed, {} failed, {skipped_count} skipped",
        ran - failures.len().min(ran),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ran, 23);
}

/// The expressions of the evaluation suite are all valid CertLogic.
#[test]
fn evaluation_suite_expressions_validate() {
    let mut failures = Vec::new();
    for (file, suite) in suite_files("testSuite") {
        for case in suite["cases"].as_array().unwrap() {
            let mut exprs: Vec<&Value> = case.get("certLogicExpression").into_iter().collect();
            for a in case["assertions"].as_array().unwrap() {
                exprs.extend(a.get("certLogicExpression"));
            }
            for e in exprs {
                let issues = validate(e);
                if !issues.is_empty() {
                    failures.push(format!("{file}: {e}: {issues:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
