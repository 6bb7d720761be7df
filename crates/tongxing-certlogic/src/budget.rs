//! The evaluation budget: every evaluation runs under [`Limits`] on the work it does (steps) and
//! on the values it builds (size and depth), checked as it runs, so that no expression, however
//! hostile, can exhaust memory, the stack or the processor of the process evaluating it.
//!
//! What is counted, and where:
//! - **Steps** bound the work. An evaluation is charged, when it starts, the number of nodes of
//!   the compiled expression (each node is evaluated at most once, outside `reduce` lambdas);
//!   each `reduce` iteration is charged, before it runs, one plus the number of nodes of its
//!   lambda. So steps are an upper bound on the nodes evaluated, computed without a counter in
//!   the evaluator's hot path. On top of that, every value node that evaluation copies (the
//!   accumulator carried to the next `reduce` iteration, an array or `reduce` context read
//!   through `var` inside a lambda, the result converted to JSON) or compares (`===` and `in`
//!   on arrays and objects) costs one step.
//! - **Value size** and **value depth** bound the memory and the recursion that values built
//!   by evaluation can need: they are checked on every value a `reduce` carries to its next
//!   iteration (the initial value, then each result of the lambda) and on the result of
//!   [`crate::Expr::evaluate`], before it is copied. Only `reduce` makes values grow with the
//!   data, so with these checks every value of an evaluation stays within the depth limit plus
//!   the expression's own nesting (at most 128) plus the data's: recursion over values (copy,
//!   comparison, rendering, drop) cannot exhaust the stack.

use std::cell::Cell;
use std::fmt;

use serde_json::Value;

use crate::EvalError;
use crate::value::Val;

/// Default limit on steps (see [`Limits::steps`]). The built-in Tongxing rules take at most
/// about 1,400 on the largest facts the system produces; the CertLogic test suite at most 28. An
/// evaluation stopped at this limit has taken 10–100 ms (docs/PERFORMANCE.md).
pub const MAX_STEPS: u64 = 1_000_000;
/// Default limit on the size of a value, in JSON nodes (see [`Limits::value_size`]): a few
/// megabytes. Real accumulators are a boolean, a number or a pair (16 nodes in the built-in
/// rules, with a value set); the suite's values have at most 4 nodes.
pub const MAX_VALUE_SIZE: u64 = 100_000;
/// Default limit on the nesting depth of a value (see [`Limits::value_depth`]). Real values are
/// at most 3 deep (facts documents and DCC payloads are a few levels deep).
pub const MAX_VALUE_DEPTH: usize = 64;

/// The budget of one evaluation. [`Limits::DEFAULT`] is what [`crate::Expr::evaluate`] and
/// [`crate::Expr::evaluate_truthy`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Work: nodes evaluated (counted as the expression's size, plus each `reduce` lambda's size
    /// per iteration) plus value nodes copied or compared.
    pub steps: u64,
    /// The most JSON nodes (every array, object, and scalar, date-times included) a value that a
    /// `reduce` carries, or the result, may have.
    pub value_size: u64,
    /// The deepest such a value may nest: a scalar is 1 deep, `[1]` 2, `[[1]]` 3.
    pub value_depth: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits { steps: MAX_STEPS, value_size: MAX_VALUE_SIZE, value_depth: MAX_VALUE_DEPTH };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// What an evaluation used of its budget (see [`crate::Expr::evaluate_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub steps: u64,
    /// The largest value checked (a `reduce` accumulator or the result), in JSON nodes.
    pub value_size: u64,
    /// The deepest value checked.
    pub value_depth: usize,
}

/// Which limit of the budget an evaluation went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    Steps,
    ValueSize,
    ValueDepth,
}

impl Limit {
    pub(crate) fn describe(self, max: u64) -> String {
        match self {
            Limit::Steps => format!(
                "it took more than {max} steps (nodes evaluated, counting each reduce iteration, and values copied or \
                 compared); a reduce nested in another's lambda multiplies the lengths of their lists: do not nest \
                 reduces over the data, and keep lambdas small"
            ),
            Limit::ValueSize => format!(
                "it built a value of more than {max} JSON nodes; a reduce whose lambda uses the accumulator more than \
                 once in the value it returns (e.g. [{{\"var\": \"accumulator\"}}, {{\"var\": \"accumulator\"}}]) \
                 doubles it with every item: use the accumulator at most once in the result"
            ),
            Limit::ValueDepth => format!(
                "it built a value nested more than {max} levels deep; a reduce whose lambda wraps the accumulator \
                 (e.g. [{{\"var\": \"accumulator\"}}]) nests it one level deeper with every item: keep accumulators flat"
            ),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Steps => "steps",
            Limit::ValueSize => "value size",
            Limit::ValueDepth => "value depth",
        })
    }
}

/// The running account of one evaluation.
pub(crate) struct Meter {
    limits: Limits,
    steps: Cell<u64>,
    largest: Cell<u64>,
    deepest: Cell<usize>,
}

impl Meter {
    pub(crate) fn new(limits: Limits) -> Meter {
        Meter { limits, steps: Cell::new(0), largest: Cell::new(0), deepest: Cell::new(0) }
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage { steps: self.steps.get(), value_size: self.largest.get(), value_depth: self.deepest.get() }
    }

    /// Charges `n` steps; fails once the total is past the limit.
    #[inline]
    pub(crate) fn charge(&self, n: u64) -> Result<(), EvalError> {
        let steps = self.steps.get().saturating_add(n);
        self.steps.set(steps);
        if steps > self.limits.steps { Err(self.exceeded(Limit::Steps)) } else { Ok(()) }
    }

    fn exceeded(&self, limit: Limit) -> EvalError {
        let max = match limit {
            Limit::Steps => self.limits.steps,
            Limit::ValueSize => self.limits.value_size,
            Limit::ValueDepth => self.limits.value_depth as u64,
        };
        EvalError::BudgetExceeded { limit, max }
    }

    /// Checks the size and depth of a value that evaluation keeps (a `reduce` accumulator, the
    /// result) and charges the walk, which stops as soon as a limit is passed.
    pub(crate) fn check(&self, v: &Val<'_>) -> Result<(), EvalError> {
        let mut walk = Walk { size: 0, deepest: 0, limits: &self.limits };
        let outcome = walk.val(v, 1);
        self.charge(walk.size)?;
        outcome.map_err(|limit| self.exceeded(limit))?;
        self.largest.set(self.largest.get().max(walk.size));
        self.deepest.set(self.deepest.get().max(walk.deepest));
        Ok(())
    }
}

struct Walk<'l> {
    size: u64,
    deepest: usize,
    limits: &'l Limits,
}

impl Walk<'_> {
    fn node(&mut self, depth: usize) -> Result<(), Limit> {
        self.size += 1;
        if self.size > self.limits.value_size {
            return Err(Limit::ValueSize);
        }
        if depth > self.limits.value_depth {
            return Err(Limit::ValueDepth);
        }
        self.deepest = self.deepest.max(depth);
        Ok(())
    }

    fn val(&mut self, v: &Val<'_>, depth: usize) -> Result<(), Limit> {
        match v {
            Val::Json(json) => self.json(json, depth),
            Val::DateTime(_) => self.node(depth),
            Val::Array(items) => {
                self.node(depth)?;
                items.iter().try_for_each(|item| self.val(item, depth + 1))
            }
            Val::ReduceContext(fields) => {
                self.node(depth)?;
                self.val(&fields.0, depth + 1)?;
                self.val(&fields.1, depth + 1)
            }
        }
    }

    fn json(&mut self, v: &Value, depth: usize) -> Result<(), Limit> {
        self.node(depth)?;
        match v {
            Value::Array(items) => items.iter().try_for_each(|item| self.json(item, depth + 1)),
            Value::Object(map) => map.values().try_for_each(|item| self.json(item, depth + 1)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use crate::{EvalError, Expr, Limit, Limits, MAX_STEPS, MAX_VALUE_DEPTH, MAX_VALUE_SIZE, Usage, validate};

    /// Debug builds are slow; the shapes below would take minutes, gigabytes or the whole stack
    /// without the budget.
    const QUICK: Duration = Duration::from_secs(5);

    fn items(n: usize) -> Value {
        Value::Array((0..n as i64).map(Value::from).collect())
    }

    fn limit_of(result: Result<Value, EvalError>) -> Limit {
        match result {
            Err(EvalError::BudgetExceeded { limit, .. }) => limit,
            other => panic!("expected a budget error, got {other:?}"),
        }
    }

    /// Evaluates with the default budget, checking that it fails quickly on `limit`, both with
    /// `evaluate` and `evaluate_truthy`.
    fn fails_on(logic: &Value, data: &Value, limit: Limit) -> EvalError {
        let expr = Expr::compile(logic).unwrap();
        let started = Instant::now();
        let err = expr.evaluate(data).unwrap_err();
        assert_eq!(limit_of(Err(err.clone())), limit, "{err}");
        assert_eq!(limit_of(expr.evaluate_truthy(data).map(Value::Bool)), limit);
        assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
        err
    }

    fn usage(logic: &Value, data: &Value, limits: &Limits) -> (Result<Value, EvalError>, Usage) {
        Expr::compile(logic).unwrap().evaluate_with(data, limits)
    }

    /// Shape 1: the accumulator used twice in the step doubles the value with every item
    /// (2^64 nodes over 64 items).
    #[test]
    fn an_accumulator_used_twice_per_step_stops_at_the_value_size() {
        let doubling = json!({"reduce": [{"var": "xs"}, [{"var": "accumulator"}, {"var": "accumulator"}], 0]});
        let err = fails_on(&doubling, &json!({"xs": items(64)}), Limit::ValueSize);
        let text = err.to_string();
        assert!(text.contains("value size") && text.contains(&MAX_VALUE_SIZE.to_string()), "{text}");
        assert!(text.contains("use the accumulator at most once"), "{text}");
        // Also as a reduce context ({"var": ""} copies both) and inside nested arrays.
        let context = json!({"reduce": [{"var": "xs"}, [{"var": ""}, [{"var": "accumulator"}]], 0]});
        fails_on(&context, &json!({"xs": items(64)}), Limit::ValueSize);
    }

    /// Shape 2: the accumulator nested one level deeper with every item; without the budget,
    /// copying, comparing or dropping it recursed 100,000 levels and overflowed the stack.
    #[test]
    fn an_accumulator_nested_deeper_per_item_stops_at_the_value_depth() {
        let nesting = json!({"reduce": [{"var": "xs"}, [{"var": "accumulator"}], 0]});
        let err = fails_on(&nesting, &json!({"xs": items(100_000)}), Limit::ValueDepth);
        assert!(err.to_string().contains("keep accumulators flat"), "{err}");
        // Wrapped in a reduce context instead of an array.
        let context = json!({"reduce": [{"var": "xs"}, {"var": ""}, 0]});
        fails_on(&context, &json!({"xs": items(100_000)}), Limit::ValueDepth);
    }

    /// Shape 3: reduces nested five levels deep over lists of 40 items: 40^5 ≈ 10^8 iterations.
    #[test]
    fn nested_reduces_stop_at_the_steps() {
        let forty = items(40);
        let mut lambda = json!({"+": [{"var": "accumulator"}, 1]});
        for _ in 0..4 {
            lambda = json!({"+": [{"var": "accumulator"}, {"reduce": [forty.clone(), lambda, 0]}]});
        }
        let nested = json!({"reduce": [{"var": "xs"}, lambda, 0]});
        let err = fails_on(&nested, &json!({"xs": forty}), Limit::Steps);
        let text = err.to_string();
        assert!(text.contains(&format!("more than {MAX_STEPS} steps")) && text.contains("do not nest"), "{text}");
    }

    /// Each limit, exactly at it and just past it, with the default limits.
    #[test]
    fn each_default_limit_just_past_it() {
        // Steps: 4 for the expression, 1 for checking the initial value, then per item 2 (the
        // iteration and its one-node lambda) and 1 (checking the new accumulator).
        let carry = json!({"reduce": [{"var": "xs"}, {"var": "accumulator"}, 0]});
        let n = ((MAX_STEPS - 5) / 3) as usize;
        let expr = Expr::compile(&carry).unwrap();
        assert!(expr.evaluate_truthy(&json!({"xs": items(n)})).is_ok());
        assert_eq!(limit_of(expr.evaluate_truthy(&json!({"xs": items(n + 1)})).map(Value::Bool)), Limit::Steps);

        // Value size: the accumulator becomes an item of the data with MAX_VALUE_SIZE - 1 nodes.
        let last = json!({"reduce": [{"var": "xs"}, {"var": "current"}, 0]});
        let big = |nodes: usize| json!({"xs": [items(nodes - 1)]});
        let (result, used) = usage(&last, &big(MAX_VALUE_SIZE as usize), &Limits::DEFAULT);
        assert!(result.is_ok());
        assert_eq!(used.value_size, MAX_VALUE_SIZE);
        fails_on(&last, &big(MAX_VALUE_SIZE as usize + 1), Limit::ValueSize);

        // Value depth: after n items the accumulator is n + 1 deep.
        let nesting = json!({"reduce": [{"var": "xs"}, [{"var": "accumulator"}], 0]});
        let (result, used) = usage(&nesting, &json!({"xs": items(MAX_VALUE_DEPTH - 1)}), &Limits::DEFAULT);
        assert!(result.is_ok());
        assert_eq!(used.value_depth, MAX_VALUE_DEPTH);
        fails_on(&nesting, &json!({"xs": items(MAX_VALUE_DEPTH)}), Limit::ValueDepth);
    }

    /// `evaluate_with` reports what an evaluation used, and stops just past custom limits.
    #[test]
    fn custom_limits_and_usage() {
        let rule = json!({"reduce": [{"var": "xs"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]});
        let data = json!({"xs": items(10)});
        let (result, used) = usage(&rule, &data, &Limits::DEFAULT);
        assert_eq!(result.unwrap(), json!(45));
        // 6 nodes; the initial value checked; 10 × (1 + 3 lambda nodes + 1 check); the result checked.
        assert_eq!(used, Usage { steps: 6 + 1 + 50 + 1, value_size: 1, value_depth: 1 });
        let tight = Limits { steps: used.steps, ..Limits::DEFAULT };
        assert!(usage(&rule, &data, &tight).0.is_ok());
        let past = Limits { steps: used.steps - 1, ..Limits::DEFAULT };
        assert_eq!(limit_of(usage(&rule, &data, &past).0), Limit::Steps);

        let pairs = json!({"reduce": [{"var": "xs"}, [{"var": "current"}, {"var": "current"}], 0]});
        let (_, used) = usage(&pairs, &data, &Limits::DEFAULT);
        assert_eq!((used.value_size, used.value_depth), (3, 2));
        let small = Limits { value_size: 2, ..Limits::DEFAULT };
        assert_eq!(limit_of(usage(&pairs, &data, &small).0), Limit::ValueSize);
        let shallow = Limits { value_depth: 1, ..Limits::DEFAULT };
        assert_eq!(limit_of(usage(&pairs, &data, &shallow).0), Limit::ValueDepth);

        // Comparing large values costs steps too: 100 comparisons of 10,000 items per iteration.
        let same = json!({"===": [{"var": "accumulator"}, {"var": "accumulator"}]});
        let lambda = json!({"if": [{"and": vec![same; 100]}, {"var": "accumulator"}, 0]});
        let compare = json!({"reduce": [{"var": "xs"}, lambda, {"var": "big"}]});
        let expr = Expr::compile(&compare).unwrap();
        assert!(expr.weight() < 500);
        let data = json!({"xs": items(10), "big": items(10_000)});
        let (result, used) = expr.evaluate_with(&data, &Limits::DEFAULT);
        assert_eq!(limit_of(result), Limit::Steps);
        assert!(used.value_size <= 10_001, "{used:?}");
    }

    /// A 4 MB invalid rule: validation keeps bounded copies of the offending sub-expressions,
    /// and a bounded number of issues (it used to copy the 4 MB under each of 100 invalid levels).
    #[test]
    fn validating_a_huge_invalid_rule_keeps_little() {
        let mut bottom: Vec<Value> = vec![json!("twenty characters..."); 200_000];
        bottom.extend(std::iter::repeat_n(Value::Null, 10_000));
        let mut logic = Value::Array(bottom);
        for _ in 0..100 {
            // `and` needs two operands: every level is an issue holding everything below it.
            let mut map = serde_json::Map::new();
            map.insert("and".to_owned(), Value::Array(vec![logic]));
            logic = Value::Object(map);
        }
        assert!(logic.to_string().len() > 4_000_000);
        let started = Instant::now();
        let issues = validate(&logic);
        assert!(started.elapsed() < QUICK);
        assert_eq!(issues.len(), crate::MAX_ISSUES + 1);
        assert!(issues.last().unwrap().message.starts_with("10000 more issue(s) not listed"), "{:?}", issues.last());
        let kept: usize = issues.iter().map(|i| i.expr.to_string().len() + i.message.len() + i.path.len()).sum();
        assert!(kept < 200_000, "issues keep {kept} bytes");
        let first = issues[0].expr.as_str().expect("a cut rendering");
        assert!(first.starts_with("{\"and\":[{\"and\":") && first.ends_with('…'), "{first}");
        assert_eq!(issues[0].message, "an \"and\" operation must have at least 2 operands, but it has 1");
        assert!(Expr::compile(&logic).is_err());
    }

    /// Expressions of real size stay far inside the budget, and a small expression pays only
    /// its own nodes.
    #[test]
    fn the_expression_is_charged_its_size() {
        let rule = json!({"and": [{"var": "a"}, {"!": [{"var": "b"}]}, {"in": [{"var": "c"}, ["x", "y"]]}]});
        let expr = Expr::compile(&rule).unwrap();
        assert_eq!(expr.weight(), 7);
        let (result, used) = expr.evaluate_with(&json!({"a": 1, "c": "x"}), &Limits::DEFAULT);
        assert_eq!(result.unwrap(), json!(true));
        // Its nodes, and checking the result.
        assert_eq!(used.steps, 7 + 1);
        let none = Limits { steps: 6, ..Limits::DEFAULT };
        assert_eq!(limit_of(expr.evaluate_with(&json!({}), &none).0), Limit::Steps);
    }
}
