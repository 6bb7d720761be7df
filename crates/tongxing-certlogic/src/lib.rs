//! CertLogic 1.3: the JsonLogic dialect in which the EU Digital COVID Certificate publishes its
//! business rules, and in which Tongxing keeps its entry rules as data.
//!
//! ```
//! use serde_json::json;
//! use tongxing_certlogic::{Expr, is_truthy};
//!
//! // The 48-hour test rule: sampled no more than 48 hours before the check.
//! let rule = Expr::compile(&json!({
//!     "not-before": [
//!         {"plusTime": [{"var": "payload.t.0.sc"}, 48, "hour"]},
//!         {"plusTime": [{"var": "external.validationClock"}, 0, "hour"]}
//!     ]
//! }))?;
//! let data = json!({
//!     "payload": {"t": [{"sc": "2021-11-17T08:00:00+08:00"}]},
//!     "external": {"validationClock": "2021-11-18T20:00:00+08:00"}
//! });
//! assert!(is_truthy(&rule.evaluate(&data)?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! - `compile`: validation and compilation in one pass, JSON → [`Expr`] or [`ValidationIssue`]s.
//! - `eval`: evaluation of a compiled expression against data.
//! - `value`: the evaluator's values (borrowed JSON, date-times), truthiness, equality.
//! - `budget`: the evaluation budget ([`Limits`]): steps, value size, value depth.
//! - `datetime`: CertLogic's date-time parsing and `plusTime` arithmetic.
//! - [`rule_tests`]: runs folders of DCC business rules against their test cases.
//!
//! # Invariants
//! - No I/O except in [`rule_tests`]; no clock anywhere: the validation clock is data.
//! - An [`Expr`] exists only for an expression that [`validate`] accepts.
//! - Evaluation never panics; it fails with an [`EvalError`] exactly where the specification
//!   says evaluation throws (type mismatches it cannot rule out before seeing the data), or
//!   when it goes past its budget.
//! - Evaluation runs within a budget ([`Limits`]: steps, and the size and depth of the values it
//!   builds), checked as it runs: no expression can take more than a bounded time, memory or
//!   stack, however it folds its data (an accumulator used twice per `reduce` step doubles
//!   with every item; one wrapped in an array nests a level deeper with every item; nested
//!   `reduce`s multiply their lists' lengths). Past a limit, evaluation fails with
//!   [`EvalError::BudgetExceeded`]. The default limits ([`MAX_STEPS`], [`MAX_VALUE_SIZE`],
//!   [`MAX_VALUE_DEPTH`]) leave real rules far inside (the CertLogic suites take at most a few
//!   hundred steps, values of a few dozen nodes). Validation is bounded too: at most
//!   [`MAX_ISSUES`] issues, each keeping at most [`MAX_ISSUE_EXPR`] bytes of its expression.
//!
//! # Choices where the specification leaves room
//! - Numbers: a float without fractional part (`42.0`) is an integer, as in the JavaScript
//!   reference implementation; other floats are neither truthy nor falsy.
//! - `and` checks every operand it evaluates, the last one included, for being truthy or falsy
//!   (the specification's wording; the reference implementations skip the last one).
//! - `===` and `in` compare JSON values structurally and date-times by instant.
//! - A `reduce` over `null` gives the initial value (reference behaviour); the lambda sees only
//!   `current` and `accumulator` (no `data`: that is a possible future extension of the spec).
//! - Validation also rejects `plusTime`/`dccDateOfBirth` applied to a literal that can never be
//!   parsed (`"2021-13-01"`, `42`) or to another date-time operation: these expressions are
//!   invalid by the specification, and would fail on every evaluation.
//! - A date-time result of [`Expr::evaluate`] is given as an ISO 8601 string in UTC with
//!   milliseconds (`2021-06-01T00:00:00.000Z`), as JavaScript's `toISOString` writes it.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

mod budget;
mod compile;
mod datetime;
mod eval;
pub mod rule_tests;
mod value;

pub use budget::{Limit, Limits, MAX_STEPS, MAX_VALUE_DEPTH, MAX_VALUE_SIZE, Usage};
pub use compile::{MAX_ISSUE_EXPR, MAX_ISSUES};

/// A compiled CertLogic expression: validated once, immutable, cheap to evaluate many times and
/// from many threads.
#[derive(Debug)]
pub struct Expr {
    root: compile::Node,
    /// The number of nodes of `root`: the steps every evaluation is charged at its start.
    weight: u64,
}

impl Expr {
    /// Validates `logic` and compiles it. Fails with every issue [`validate`] would report.
    pub fn compile(logic: &Value) -> Result<Expr, CompileError> {
        let (mut root, issues) = compile::compile(logic);
        if !issues.is_empty() {
            return Err(CompileError::Invalid { issues });
        }
        let weight = compile::weigh(&mut root);
        Ok(Expr { root, weight })
    }

    /// Evaluates the expression against `data` (for a DCC rule:
    /// `{"payload": <DCC payload>, "external": {"validationClock": …, "valueSets": …}}`), within
    /// the default budget [`Limits::DEFAULT`].
    pub fn evaluate(&self, data: &Value) -> Result<Value, EvalError> {
        self.evaluate_with(data, &Limits::DEFAULT).0
    }

    /// Evaluates within `limits`, and tells what the evaluation used of them (up to the point
    /// where it failed, if it did).
    pub fn evaluate_with(&self, data: &Value, limits: &Limits) -> (Result<Value, EvalError>, Usage) {
        let meter = budget::Meter::new(*limits);
        let result = self.run(data, &meter).and_then(|v| {
            meter.check(&v)?;
            Ok(v.into_json())
        });
        (result, meter.usage())
    }

    /// Evaluates and reports CertLogic truthiness of the result, as a rule engine does to decide
    /// pass (`true`) or fail. Saves converting the result back to JSON. Within
    /// [`Limits::DEFAULT`].
    pub fn evaluate_truthy(&self, data: &Value) -> Result<bool, EvalError> {
        let meter = budget::Meter::new(Limits::DEFAULT);
        Ok(self.run(data, &meter)?.truthiness() == Some(true))
    }

    /// The number of nodes of the compiled expression: the steps every evaluation is charged
    /// when it starts (see [`Limits::steps`]).
    pub fn weight(&self) -> u64 {
        self.weight
    }

    fn run<'a>(&'a self, data: &'a Value, meter: &'a budget::Meter) -> Result<value::Val<'a>, EvalError> {
        meter.charge(self.weight)?;
        self.root.eval(eval::Ctx { scope: eval::Scope::Data(data), meter })
    }
}

/// Checks that `logic` is a CertLogic 1.3 expression. Empty means valid.
pub fn validate(logic: &Value) -> Vec<ValidationIssue> {
    compile::compile(logic).1
}

/// CertLogic truthiness: `true`, a non-empty string, a non-zero integer, a non-empty array or a
/// non-empty object. Everything else is `false`, including the values that are neither truthy
/// nor falsy (non-integer numbers).
pub fn is_truthy(v: &Value) -> bool {
    value::truthiness(v) == Some(true)
}

/// CertLogic falsiness: `false`, `null`, `""`, `0`, `[]` or `{}`. Not the negation of
/// [`is_truthy`]: a non-integer number is neither.
pub fn is_falsy(v: &Value) -> bool {
    value::truthiness(v) == Some(false)
}

/// One reason why a JSON value is not a valid CertLogic expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationIssue {
    /// JSON Pointer (RFC 6901) to the offending expression inside the whole expression;
    /// empty for the whole expression. Example: `/and/1/plusTime/0`.
    pub path: String,
    /// The offending (sub-)expression; when its JSON is longer than [`MAX_ISSUE_EXPR`] bytes,
    /// the start of that JSON, as a string ending in `…`. (Validation reports at most
    /// [`MAX_ISSUES`] issues, plus one saying how many more it found.)
    pub expr: Value,
    /// What is wrong, in the wording of the CertLogic validation test suite where it has one.
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at {}: {}", self.path, self.message)
        }
    }
}

/// Why [`Expr::compile`] refused an expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The expression is not valid CertLogic 1.3.
    #[error("not a valid CertLogic 1.3 expression: {}", list_issues(.issues))]
    Invalid { issues: Vec<ValidationIssue> },
}

fn list_issues(issues: &[ValidationIssue]) -> String {
    issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Why evaluating a valid expression failed: a type mismatch that only the data could reveal.
/// Guard against it in the rule (check presence first: `{"and": [{"var": "x"}, …]}`); a verifier
/// treats a rule that fails to evaluate as not passed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// `if`'s guard, an operand of `and`, or the operand of `!` was neither truthy nor falsy.
    #[error(
        "operand #{operand} of \"{operator}\" evaluated to {value}, which is neither truthy nor falsy \
         (only booleans, null, strings, integers, arrays and objects are)"
    )]
    NeitherTruthyNorFalsy { operator: &'static str, operand: usize, value: String },
    /// An operand of `+`, `<`, `>`, `<=` or `>=` was not an integer.
    #[error("operand #{operand} of \"{operator}\" must be an integer, but evaluated to {value}")]
    NotAnInteger { operator: &'static str, operand: usize, value: String },
    /// `+` left the 64-bit integer range.
    #[error("\"+\" overflowed: {left} + {right} is outside the 64-bit integer range")]
    IntegerOverflow { left: i64, right: i64 },
    /// An operand of `after`, `before`, `not-after` or `not-before` was not a date-time.
    #[error(
        "operand #{operand} of \"{operator}\" must be a date-time (made with \"plusTime\" or \
         \"dccDateOfBirth\"), but evaluated to {value}"
    )]
    NotADateTime { operator: &'static str, operand: usize, value: String },
    /// The right-hand side of `in` was not an array (`null` included: check presence first).
    #[error(
        "operand #2 of \"in\" must be an array, but evaluated to {value}; \
         check that it is present before using \"in\""
    )]
    InNotAnArray { value: String },
    /// The operand of `reduce` was neither an array nor `null`.
    #[error("operand #1 of \"reduce\" must be an array or null, but evaluated to {value}")]
    ReduceNotAnArray { value: String },
    /// The operand of `plusTime` or `dccDateOfBirth` (or `extractFromUVCI`, which also allows
    /// `null`) was not a string.
    #[error(
        "operand #{operand} of \"{operator}\" must be a string{}, but evaluated to {value}",
        if *.null_allowed { " or null" } else { "" }
    )]
    NotAString { operator: &'static str, operand: usize, value: String, null_allowed: bool },
    /// The string given to `plusTime` or `dccDateOfBirth` is not a date(-time) they accept.
    #[error("\"{operator}\" cannot read {value:?} as a date: it {reason}")]
    InvalidDateTime { operator: &'static str, value: String, reason: String },
    /// `plusTime` left the range of representable date-times.
    #[error(
        "\"plusTime\" of {value:?} by {amount} {unit}(s) lies outside the representable range \
         (±100,000,000 days around 1970)"
    )]
    DateTimeOutOfRange { value: String, amount: i64, unit: &'static str },
    /// The evaluation went past a limit of its budget ([`Limits`]); it was stopped there. The
    /// message says which limit and how to write the rule within it.
    #[error("evaluation stopped at the {limit} limit of its budget: {}", .limit.describe(*.max))]
    BudgetExceeded { limit: Limit, max: u64 },
}

impl EvalError {
    /// Whether the evaluation was stopped for going past its budget, rather than failing on the
    /// data.
    pub fn is_budget(&self) -> bool {
        matches!(self, EvalError::BudgetExceeded { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(logic: Value, data: Value) -> Result<Value, EvalError> {
        Expr::compile(&logic).unwrap().evaluate(&data)
    }

    #[test]
    fn expr_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Expr>();
    }

    #[test]
    fn compile_reports_every_issue_with_its_path() {
        let err = Expr::compile(&json!({"and": [
            {"var": "x."},
            {"plusTime": [{"var": "d"}, 1.5, "week"]}
        ]}))
        .unwrap_err();
        let CompileError::Invalid { issues } = &err;
        let paths: Vec<_> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["/and/0", "/and/1", "/and/1"]);
        let text = err.to_string();
        assert!(text.contains("at /and/0: data access path doesn't have a valid format: x."));
        assert!(text.contains("\"amount\" argument (#2) of \"plusTime\" must be an integer, but it is: 1.5"));
        assert!(text.contains("\"unit\" argument (#3) of \"plusTime\" must be a string equal to one of year, month, day, hour, but it is: \"week\""));
    }

    #[test]
    fn arity_and_literal_checks() {
        let message = |logic: Value| validate(&logic).into_iter().map(|i| i.message).collect::<Vec<_>>();
        assert_eq!(
            message(json!({"if": [true, 1]})),
            ["an \"if\"-operation must have exactly 3 values/operands, but it has 2"]
        );
        assert_eq!(
            message(json!({"and": [true]})),
            ["an \"and\" operation must have at least 2 operands, but it has 1"]
        );
        assert_eq!(
            message(json!({"<": [1, 2, 3, 4]})),
            ["an operation with operator \"<\" must have 2 or 3 operands, but it has 4"]
        );
        assert_eq!(
            message(json!({"===": [1]})),
            ["an operation with operator \"===\" must have 2 operands, but it has 1"]
        );
        assert_eq!(
            message(json!({"!": [1, 2]})),
            ["a !-operation (logical not/negation) must have exactly 1 operand, but it has 2"]
        );
        assert_eq!(
            message(json!({"extractFromUVCI": [{"var": "x"}, "1"]})),
            ["\"index\" argument (#2) of \"extractFromUVCI\" must be an integer, but it is: \"1\""]
        );
        assert_eq!(
            message(json!({"dccDateOfBirth": []})),
            ["a \"dccDateOfBirth\"-operation must have exactly 1 operand, but it has 0"]
        );
        assert_eq!(message(json!({"reduce": [[], {"var": 1}, 0]})), ["not of the form { \"var\": \"<path>\" }"]);
        assert_eq!(
            message(json!({"plusTime": ["2021-02-30", 0, "day"]})),
            [
                "date argument (#1) of \"plusTime\": \"2021-02-30\" has the right format but is not a valid calendar date or time of day"
            ]
        );
        assert_eq!(message(json!({"plusTime": [42, 0, "day"]})).len(), 1);
        assert_eq!(message(json!({"plusTime": [{"plusTime": ["2021", 0, "day"]}, 0, "day"]})).len(), 1);
        assert!(message(json!({"plusTime": ["2021-06-01T00:00:00+02:00", 1, "year"]})).is_empty());
        assert!(message(json!({"var": "external.valueSets.covid-19-lab-test-type"})).is_empty());
    }

    #[test]
    fn deep_nesting_is_an_issue_not_a_crash() {
        let mut logic = json!(true);
        for _ in 0..1000 {
            // Not json!: it would serialise (and so recurse through) the whole value each time.
            let mut map = serde_json::Map::new();
            map.insert("!".to_owned(), Value::Array(vec![logic]));
            logic = Value::Object(map);
        }
        let issues = validate(&logic);
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("nested more than 128 levels"));
        assert_eq!(issues[0].path.matches("/!/0").count(), 128);
        // Drop iteratively-built deep values without blowing the test's stack.
        std::mem::forget(logic);
    }

    #[test]
    fn errors_where_the_spec_says_evaluation_throws() {
        let err = |logic: Value, data: Value| eval(logic, data).unwrap_err().to_string();
        assert_eq!(
            err(json!({"in": [{"var": "x"}, {"var": "y"}]}), json!({"x": 1})),
            "operand #2 of \"in\" must be an array, but evaluated to null (missing or null data); \
             check that it is present before using \"in\""
        );
        assert_eq!(
            err(json!({"if": [{"var": "x"}, 1, 2]}), json!({"x": 0.5})),
            "operand #1 of \"if\" evaluated to 0.5, which is neither truthy nor falsy \
             (only booleans, null, strings, integers, arrays and objects are)"
        );
        assert!(
            err(json!({"!": [{"plusTime": ["2021", 0, "day"]}]}), json!(null))
                .contains("the date-time 2021-12-31T00:00:00.000Z")
        );
        assert!(err(json!({"and": [true, {"var": "x"}]}), json!({"x": 1.5})).contains("operand #2 of \"and\""));
        assert_eq!(
            err(json!({"+": [{"var": "x"}, 1]}), json!({"x": "1"})),
            "operand #1 of \"+\" must be an integer, but evaluated to \"1\""
        );
        assert!(err(json!({"+": [{"var": "x"}, 1]}), json!({"x": i64::MAX})).contains("overflowed"));
        assert_eq!(
            err(json!({"<": [1, {"var": "x"}, 3]}), json!({"x": null})),
            "operand #2 of \"<\" must be an integer, but evaluated to null (missing or null data)"
        );
        assert!(
            err(json!({"after": [{"var": "x"}, {"plusTime": ["2021", 0, "day"]}]}), json!({"x": "2021-01-01"}))
                .starts_with("operand #1 of \"after\" must be a date-time")
        );
        assert_eq!(
            err(json!({"plusTime": [{"var": "x"}, 1, "day"]}), json!({})),
            "operand #1 of \"plusTime\" must be a string, but evaluated to null (missing or null data)"
        );
        assert!(
            err(json!({"plusTime": [{"var": "x"}, 1, "day"]}), json!({"x": "2021-06-01 10:00"}))
                .starts_with("\"plusTime\" cannot read \"2021-06-01 10:00\" as a date: it is not in an allowed format")
        );
        assert!(
            err(json!({"dccDateOfBirth": [{"var": "x"}]}), json!({"x": "2021-02-30"}))
                .contains("not a valid calendar date")
        );
        assert!(
            err(json!({"plusTime": [{"var": "x"}, 300000, "year"]}), json!({"x": "2021"}))
                .contains("outside the representable range")
        );
        assert!(err(json!({"reduce": [{"var": "x"}, 0, 0]}), json!({"x": "abc"})).contains("must be an array or null"));
        assert!(
            err(json!({"extractFromUVCI": [{"var": "x"}, 0]}), json!({"x": 1})).contains("must be a string or null")
        );
    }

    #[test]
    fn date_time_results_and_arrays() {
        assert_eq!(
            eval(json!({"plusTime": [{"var": ""}, 2, "hour"]}), json!("2021-06-01T23:30:00-01:00")).unwrap(),
            json!("2021-06-02T02:30:00.000Z")
        );
        assert_eq!(
            eval(json!([{"dccDateOfBirth": ["1990-02"]}, 1]), json!(null)).unwrap(),
            json!(["1990-02-28T00:00:00.000Z", 1])
        );
        assert_eq!(
            eval(
                json!({"in": [{"plusTime": [{"var": "a"}, 0, "day"]}, [{"plusTime": ["2021-06-01", 0, "day"]}]]}),
                json!({"a": "2021-06-01T02:00:00+02:00"})
            )
            .unwrap(),
            json!(true)
        );
        assert_eq!(
            eval(
                json!({"===": [{"plusTime": [{"var": "a"}, 0, "day"]}, {"plusTime": ["2021-06-01", 0, "day"]}]}),
                json!({"a": "2021-06-01"})
            )
            .unwrap(),
            json!(true)
        );
    }

    #[test]
    fn reduce_with_date_times_and_nested_contexts() {
        // The latest of a list of dates, carried as a date-time in the accumulator.
        let latest = json!({"reduce": [
            {"var": "dates"},
            {"if": [
                {"var": "accumulator"},
                {"if": [
                    {"after": [{"plusTime": [{"var": "current"}, 0, "day"]}, {"var": "accumulator"}]},
                    {"plusTime": [{"var": "current"}, 0, "day"]},
                    {"var": "accumulator"}
                ]},
                {"plusTime": [{"var": "current"}, 0, "day"]}
            ]},
            {"var": "none"}
        ]});
        // A date-time accumulator is neither truthy nor falsy: the guard throws (by the spec).
        assert!(eval(latest, json!({"dates": ["2021-01-01", "2021-03-01"]})).is_err());

        let count_matching = json!({"reduce": [
            [1, 2, 3, 2],
            {"+": [{"var": "accumulator"}, {"if": [{"===": [{"var": "current"}, 2]}, 1, 0]}]},
            0
        ]});
        assert_eq!(eval(count_matching, json!(null)).unwrap(), json!(2));

        let whole_context = json!({"reduce": [[{"var": "x"}], {"var": ""}, 7]});
        assert_eq!(eval(whole_context, json!({"x": "a"})).unwrap(), json!({"current": "a", "accumulator": 7}));

        let nested = json!({"reduce": [
            {"var": "rows"},
            {"+": [{"var": "accumulator"}, {"reduce": [{"var": "current"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]}]},
            0
        ]});
        assert_eq!(eval(nested, json!({"rows": [[1, 2], [3], []]})).unwrap(), json!(6));

        let drill = json!({"reduce": [{"var": "xs"}, {"var": "current.a.1"}, null]});
        assert!(Expr::compile(&drill).is_err(), "null literal is not CertLogic");
        let drill = json!({"reduce": [{"var": "xs"}, {"var": "current.a.1"}, 0]});
        assert_eq!(eval(drill, json!({"xs": [{"a": [1, 2]}, {"a": [3, 4]}]})).unwrap(), json!(4));
    }

    #[test]
    fn truthiness_helpers() {
        assert!(is_truthy(&json!([0])));
        assert!(!is_truthy(&json!(0.5)));
        assert!(!is_falsy(&json!(0.5)));
        assert!(is_falsy(&json!({})));
        let e = Expr::compile(&json!({"var": "x"})).unwrap();
        assert!(e.evaluate_truthy(&json!({"x": "y"})).unwrap());
        assert!(!e.evaluate_truthy(&json!({})).unwrap());
    }
}
