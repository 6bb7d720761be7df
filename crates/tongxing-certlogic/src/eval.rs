//! Evaluation of compiled [`Node`]s. Values are borrowed from the data and the expression
//! wherever the semantics allow (`var` never copies), so a typical rule evaluates without
//! allocating. Errors are raised exactly where the specification says evaluation throws, and
//! where the evaluation goes past its budget (see `budget`).

use std::borrow::Cow;

use serde_json::Value;

use crate::EvalError;
use crate::budget::Meter;
use crate::compile::{Comparison, Node, ReduceField, Segment, VarPath};
use crate::datetime::{DateError, DateTime, TimeUnit};
use crate::value::{Val, equals};

/// What an expression is evaluated against: its data context and the evaluation's meter.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) scope: Scope<'a>,
    pub(crate) meter: &'a Meter,
}

/// The data context an expression is evaluated against.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// The data given to `evaluate`.
    Data(&'a Value),
    /// Inside a `reduce` lambda: `{"current": …, "accumulator": …}`.
    Reduce { current: &'a Val<'a>, accumulator: &'a Val<'a> },
}

impl Node {
    /// Evaluates against `ctx`. Each operation lives in its own function so that this
    /// recursive dispatcher keeps a small stack frame, even in debug builds.
    pub(crate) fn eval<'a>(&'a self, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
        match self {
            Node::Literal(v) => Ok(Val::Json(Cow::Borrowed(v))),
            Node::DateTime(dt) => Ok(Val::DateTime(*dt)),
            Node::Var(path) => var(path, ctx),
            Node::Array(items) => array(items, ctx),
            Node::If(operands) => if_then_else(operands, ctx),
            Node::And(operands) => and(operands, ctx),
            Node::Not(operand) => not(operand, ctx),
            Node::StrictEquals(operands) => strict_equals(operands, ctx),
            Node::In(operands) => is_in(operands, ctx),
            Node::Plus(operands) => plus(operands, ctx),
            Node::Compare(op, operands) => compare(*op, operands, ctx),
            Node::Reduce(operands, weight) => reduce(operands, *weight, ctx),
            Node::PlusTime(operand, amount, unit) => plus_time(operand, *amount, *unit, ctx),
            Node::DccDateOfBirth(operand) => dcc_date_of_birth(operand, ctx),
            Node::ExtractFromUvci(operand, index) => extract_from_uvci(operand, *index, ctx),
        }
    }
}

fn array<'a>(items: &'a [Node], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    items.iter().map(|item| item.eval(ctx)).collect::<Result<_, _>>().map(Val::Array)
}

fn if_then_else<'a>(operands: &'a [Node; 3], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let [guard, then, otherwise] = operands;
    let g = guard.eval(ctx)?;
    match g.truthiness() {
        Some(true) => then.eval(ctx),
        Some(false) => otherwise.eval(ctx),
        None => Err(EvalError::NeitherTruthyNorFalsy { operator: "if", operand: 1, value: g.describe() }),
    }
}

/// Lazy, in order: the first falsy operand, or else the last one.
fn and<'a>(operands: &'a [Node], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let mut result = Val::bool(true);
    for (i, operand) in operands.iter().enumerate() {
        result = operand.eval(ctx)?;
        match result.truthiness() {
            Some(true) => {}
            Some(false) => return Ok(result),
            None => {
                return Err(EvalError::NeitherTruthyNorFalsy {
                    operator: "and",
                    operand: i + 1,
                    value: result.describe(),
                });
            }
        }
    }
    Ok(result)
}

fn not<'a>(operand: &'a Node, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let v = operand.eval(ctx)?;
    match v.truthiness() {
        Some(t) => Ok(Val::bool(!t)),
        None => Err(EvalError::NeitherTruthyNorFalsy { operator: "!", operand: 1, value: v.describe() }),
    }
}

fn strict_equals<'a>(operands: &'a [Node; 2], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let [a, b] = operands;
    let (a, b) = (a.eval(ctx)?, b.eval(ctx)?);
    Ok(Val::bool(equals(&a, &b, ctx.meter)?))
}

fn is_in<'a>(operands: &'a [Node; 2], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let [item, list] = operands;
    let (item, list) = (item.eval(ctx)?, list.eval(ctx)?);
    let meter = ctx.meter;
    let mut found = false;
    match &list {
        Val::Json(json) if json.is_array() => {
            for x in json.as_array().into_iter().flatten() {
                if equals(&item, &Val::Json(Cow::Borrowed(x)), meter)? {
                    found = true;
                    break;
                }
            }
        }
        Val::Array(items) => {
            for x in items {
                if equals(&item, x, meter)? {
                    found = true;
                    break;
                }
            }
        }
        _ => {
            return Err(EvalError::InNotAnArray { value: list.describe() });
        }
    }
    Ok(Val::bool(found))
}

fn plus<'a>(operands: &'a [Node; 2], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let [a, b] = operands;
    let left = integer("+", 1, a.eval(ctx)?)?;
    let right = integer("+", 2, b.eval(ctx)?)?;
    let sum = left.checked_add(right).ok_or(EvalError::IntegerOverflow { left, right })?;
    Ok(Val::Json(Cow::Owned(Value::from(sum))))
}

/// All operands are evaluated (no short-circuit), then type-checked, then compared; the
/// ternary form means `a op b and b op c`.
fn compare<'a>(op: Comparison, operands: &'a [Node], ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let mut values = [Val::null(), Val::null(), Val::null()];
    for (slot, operand) in values.iter_mut().zip(operands) {
        *slot = operand.eval(ctx)?;
    }
    let values = &values[..operands.len()];
    let holds = if op.on_date_times() {
        let mut dts = [None; 3];
        for (i, v) in values.iter().enumerate() {
            match v {
                Val::DateTime(dt) => dts[i] = Some(*dt),
                _ => {
                    return Err(EvalError::NotADateTime { operator: op.name(), operand: i + 1, value: v.describe() });
                }
            }
        }
        dts[..values.len()].windows(2).all(|w| op.holds(w[0], w[1]))
    } else {
        let mut ints = [0; 3];
        for (i, v) in values.iter().enumerate() {
            ints[i] = v.int().ok_or_else(|| EvalError::NotAnInteger {
                operator: op.name(),
                operand: i + 1,
                value: v.describe(),
            })?;
        }
        ints[..values.len()].windows(2).all(|w| op.holds(w[0], w[1]))
    };
    Ok(Val::bool(holds))
}

fn plus_time<'a>(operand: &'a Node, amount: i64, unit: TimeUnit, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let v = operand.eval(ctx)?;
    let s = string("plusTime", &v)?;
    let dt = DateTime::parse(s).map_err(|e| date_error("plusTime", s, e))?;
    let dt = dt.plus(amount, unit).map_err(|_| EvalError::DateTimeOutOfRange {
        value: s.to_owned(),
        amount,
        unit: unit.name(),
    })?;
    Ok(Val::DateTime(dt))
}

fn dcc_date_of_birth<'a>(operand: &'a Node, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let v = operand.eval(ctx)?;
    let s = string("dccDateOfBirth", &v)?;
    DateTime::parse_date_of_birth(s).map(Val::DateTime).map_err(|e| date_error("dccDateOfBirth", s, e))
}

fn extract_from_uvci<'a>(operand: &'a Node, index: i64, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let v = operand.eval(ctx)?;
    let uci = match v.json() {
        Some(Value::Null) => return Ok(Val::null()),
        Some(Value::String(s)) => s,
        _ => {
            return Err(EvalError::NotAString {
                operator: "extractFromUVCI",
                operand: 1,
                value: v.describe(),
                null_allowed: true,
            });
        }
    };
    Ok(match extract_from_uci(uci, index) {
        Some(fragment) => Val::Json(Cow::Owned(Value::String(fragment.to_owned()))),
        None => Val::null(),
    })
}

fn integer(operator: &'static str, operand: usize, v: Val<'_>) -> Result<i64, EvalError> {
    v.int().ok_or_else(|| EvalError::NotAnInteger { operator, operand, value: v.describe() })
}

fn string<'v>(operator: &'static str, v: &'v Val<'_>) -> Result<&'v str, EvalError> {
    match v.json() {
        Some(Value::String(s)) => Ok(s),
        _ => Err(EvalError::NotAString { operator, operand: 1, value: v.describe(), null_allowed: false }),
    }
}

fn date_error(operator: &'static str, s: &str, e: DateError) -> EvalError {
    EvalError::InvalidDateTime { operator, value: s.to_owned(), reason: e.to_string() }
}

/// `var`: drills into the data context; anything missing or undrillable is `null`.
fn var<'a>(path: &'a VarPath, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    match ctx.scope {
        Scope::Data(data) => Ok(json_lookup(data, &path.segments)),
        Scope::Reduce { current, accumulator } => {
            let Some((_, rest)) = path.segments.split_first() else {
                let fields = (current.reborrow(ctx.meter)?, accumulator.reborrow(ctx.meter)?);
                return Ok(Val::ReduceContext(Box::new(fields)));
            };
            match path.reduce_field {
                Some(ReduceField::Current) => val_lookup(current, rest, ctx.meter),
                Some(ReduceField::Accumulator) => val_lookup(accumulator, rest, ctx.meter),
                None => Ok(Val::null()),
            }
        }
    }
}

#[inline]
fn json_lookup<'a>(mut v: &'a Value, segments: &[Segment]) -> Val<'a> {
    for segment in segments {
        let next = match v {
            Value::Object(map) => map.get(&*segment.key),
            Value::Array(items) => segment.index.and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(next) => v = next,
            None => return Val::null(),
        }
    }
    Val::Json(Cow::Borrowed(v))
}

fn val_lookup<'a>(v: &'a Val<'a>, segments: &[Segment], meter: &Meter) -> Result<Val<'a>, EvalError> {
    let Some((first, rest)) = segments.split_first() else {
        return v.reborrow(meter);
    };
    Ok(match v {
        Val::Json(json) => json_lookup(json.as_ref(), segments),
        Val::Array(items) => match first.index.and_then(|i| items.get(i)) {
            Some(item) => return val_lookup(item, rest, meter),
            None => Val::null(),
        },
        Val::ReduceContext(fields) => match ReduceField::from_key(&first.key) {
            Some(ReduceField::Current) => return val_lookup(&fields.0, rest, meter),
            Some(ReduceField::Accumulator) => return val_lookup(&fields.1, rest, meter),
            None => Val::null(),
        },
        Val::DateTime(_) => Val::null(),
    })
}

/// `reduce`: a left fold of the lambda over the operand array, starting from the initial value;
/// a `null` operand gives the initial value (as the reference implementation does).
///
/// The budget: each iteration is charged `1 + weight` steps (`weight`: the number of nodes of
/// the lambda) before it runs, and each value carried to the next iteration is checked (size and
/// depth, its walk charged) before it is copied.
fn reduce<'a>(operands: &'a [Node; 3], weight: u64, ctx: Ctx<'a>) -> Result<Val<'a>, EvalError> {
    let [list, lambda, initial] = operands;
    let meter = ctx.meter;
    let per_item = weight.saturating_add(1);
    let list = list.eval(ctx)?;
    match &list {
        Val::Json(json) => match json.as_ref() {
            Value::Null => initial.eval(ctx),
            Value::Array(items) => {
                let mut accumulator = initial.eval(ctx)?;
                meter.check(&accumulator)?;
                for item in items {
                    meter.charge(per_item)?;
                    let current = Val::Json(Cow::Borrowed(item));
                    let next = lambda
                        .eval(Ctx { scope: Scope::Reduce { current: &current, accumulator: &accumulator }, meter })?;
                    meter.check(&next)?;
                    accumulator = next.into_owned();
                }
                Ok(accumulator)
            }
            _ => Err(EvalError::ReduceNotAnArray { value: list.describe() }),
        },
        Val::Array(items) => {
            let mut accumulator = initial.eval(ctx)?;
            meter.check(&accumulator)?;
            for current in items {
                meter.charge(per_item)?;
                let next = lambda.eval(Ctx { scope: Scope::Reduce { current, accumulator: &accumulator }, meter })?;
                meter.check(&next)?;
                accumulator = next.into_owned();
            }
            Ok(accumulator)
        }
        _ => Err(EvalError::ReduceNotAnArray { value: list.describe() }),
    }
}

/// The fragment at `index` of a UCI split on `/`, `#` and `:`, after an optional `URN:UVCI:`.
fn extract_from_uci(uci: &str, index: i64) -> Option<&str> {
    let index = usize::try_from(index).ok()?;
    let uci = uci.strip_prefix("URN:UVCI:").unwrap_or(uci);
    uci.split(['/', '#', ':']).nth(index)
}

#[cfg(test)]
mod tests {
    use super::extract_from_uci;

    #[test]
    fn uci_fragments() {
        assert_eq!(extract_from_uci("a::c/#/f", 0), Some("a"));
        assert_eq!(extract_from_uci("a::c/#/f", 1), Some(""));
        assert_eq!(extract_from_uci("a::c/#/f", 5), Some("f"));
        assert_eq!(extract_from_uci("a::c/#/f", 6), None);
        assert_eq!(extract_from_uci("URN:UVCI:01:NL:187/37512422923", 1), Some("NL"));
        assert_eq!(extract_from_uci("urn:uvci:01", 0), Some("urn"));
        assert_eq!(extract_from_uci("", 0), Some(""));
        assert_eq!(extract_from_uci("x", -1), None);
    }
}
