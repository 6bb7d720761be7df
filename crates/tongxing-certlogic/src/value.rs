//! The values an evaluation works with: JSON borrowed from the data or the expression wherever
//! possible, plus CertLogic's own date-time kind, which JSON cannot carry.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Number, Value};

use crate::datetime::DateTime;

pub(crate) static NULL: Value = Value::Null;
pub(crate) static TRUE: Value = Value::Bool(true);
pub(crate) static FALSE: Value = Value::Bool(false);

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    /// Plain JSON: borrowed from the data or the compiled expression, or computed.
    Json(Cow<'a, Value>),
    /// A date-time, made by `plusTime` or `dccDateOfBirth`.
    DateTime(DateTime),
    /// An array literal whose items were evaluated (they may be date-times).
    Array(Vec<Val<'a>>),
    /// The whole data context of a `reduce` lambda (`{"var": ""}` inside it):
    /// `{"current": .0, "accumulator": .1}`.
    ReduceContext(Box<(Val<'a>, Val<'a>)>),
}

impl<'a> Val<'a> {
    #[inline]
    pub(crate) fn null() -> Val<'a> {
        Val::Json(Cow::Borrowed(&NULL))
    }

    #[inline]
    pub(crate) fn bool(b: bool) -> Val<'a> {
        Val::Json(Cow::Borrowed(if b { &TRUE } else { &FALSE }))
    }

    /// The JSON value, if this is plain JSON.
    #[inline]
    pub(crate) fn json(&self) -> Option<&Value> {
        match self {
            Val::Json(v) => Some(v),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn int(&self) -> Option<i64> {
        match self.json() {
            Some(Value::Number(n)) => int_of(n),
            _ => None,
        }
    }

    /// `Some(true)` if truthy, `Some(false)` if falsy, `None` if neither (date-times and
    /// non-integer numbers).
    pub(crate) fn truthiness(&self) -> Option<bool> {
        match self {
            Val::Json(v) => truthiness(v),
            Val::DateTime(_) => None,
            Val::Array(items) => Some(!items.is_empty()),
            Val::ReduceContext(_) => Some(true),
        }
    }

    /// A copy that borrows what `self` holds, without cloning JSON.
    pub(crate) fn reborrow(&'a self) -> Val<'a> {
        match self {
            Val::Json(v) => Val::Json(Cow::Borrowed(v.as_ref())),
            Val::DateTime(dt) => Val::DateTime(*dt),
            Val::Array(items) => Val::Array(items.iter().map(Val::reborrow).collect()),
            Val::ReduceContext(ctx) => Val::ReduceContext(Box::new((ctx.0.reborrow(), ctx.1.reborrow()))),
        }
    }

    /// A copy that borrows nothing.
    pub(crate) fn into_owned(self) -> Val<'static> {
        match self {
            Val::Json(v) => Val::Json(Cow::Owned(v.into_owned())),
            Val::DateTime(dt) => Val::DateTime(dt),
            Val::Array(items) => Val::Array(items.into_iter().map(Val::into_owned).collect()),
            Val::ReduceContext(ctx) => {
                let (current, accumulator) = *ctx;
                Val::ReduceContext(Box::new((current.into_owned(), accumulator.into_owned())))
            }
        }
    }

    /// The JSON form of a result: date-times become ISO 8601 strings in UTC with milliseconds.
    pub(crate) fn into_json(self) -> Value {
        match self {
            Val::Json(v) => v.into_owned(),
            Val::DateTime(dt) => Value::String(dt.to_string()),
            Val::Array(items) => Value::Array(items.into_iter().map(Val::into_json).collect()),
            Val::ReduceContext(ctx) => {
                let (current, accumulator) = *ctx;
                let mut map = serde_json::Map::new();
                map.insert("current".to_owned(), current.into_json());
                map.insert("accumulator".to_owned(), accumulator.into_json());
                Value::Object(map)
            }
        }
    }

    /// A short rendering for error messages.
    pub(crate) fn describe(&self) -> String {
        const LIMIT: usize = 80;
        let mut s = match self {
            Val::Json(v) => match v.as_ref() {
                Value::Null => "null (missing or null data)".to_owned(),
                v => v.to_string(),
            },
            Val::DateTime(dt) => format!("the date-time {dt}"),
            other => other.clone().into_json().to_string(),
        };
        if s.len() > LIMIT {
            let mut cut = LIMIT;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            let _ = write!(s, "…");
        }
        s
    }
}

/// The integer a JSON number stands for. As in JavaScript, where CertLogic began, a float with
/// no fractional part (`42.0`) is an integer; only integers within the 64-bit range count.
#[inline]
pub(crate) fn int_of(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

/// CertLogic truthiness of plain JSON: `Some(true)` truthy, `Some(false)` falsy, `None` neither.
#[inline]
pub(crate) fn truthiness(v: &Value) -> Option<bool> {
    match v {
        Value::Null => Some(false),
        Value::Bool(b) => Some(*b),
        Value::Number(n) => int_of(n).map(|i| i != 0),
        Value::String(s) => Some(!s.is_empty()),
        Value::Array(a) => Some(!a.is_empty()),
        Value::Object(o) => Some(!o.is_empty()),
    }
}

/// Equality without type coercion (`===`, and membership for `in`): JSON values are equal when
/// they have the same type and content (integers by value, so `1` equals `1.0`); date-times
/// when they are the same instant; a value and a date-time never.
pub(crate) fn equals(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Json(a), Val::Json(b)) => json_equals(a, b),
        (Val::DateTime(a), Val::DateTime(b)) => a == b,
        (Val::Array(a), Val::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| equals(a, b)),
        (Val::Array(a), Val::Json(b)) | (Val::Json(b), Val::Array(a)) => match b.as_ref() {
            Value::Array(b) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| equals(a, &Val::Json(Cow::Borrowed(b))))
            }
            _ => false,
        },
        (Val::ReduceContext(a), Val::ReduceContext(b)) => equals(&a.0, &b.0) && equals(&a.1, &b.1),
        _ => false,
    }
}

pub(crate) fn json_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => match (int_of(a), int_of(b)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => a.as_f64() == b.as_f64(),
            _ => false,
        },
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_equals(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| json_equals(v, w)))
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_include_integral_floats() {
        let n = |v: Value| v.as_number().cloned().unwrap();
        assert_eq!(int_of(&n(json!(42))), Some(42));
        assert_eq!(int_of(&n(json!(42.0))), Some(42));
        assert_eq!(int_of(&n(json!(-0.0))), Some(0));
        assert_eq!(int_of(&n(json!(2.5))), None);
        assert_eq!(int_of(&n(json!(1e300))), None);
        assert_eq!(int_of(&n(json!(u64::MAX))), None);
    }

    #[test]
    fn truthiness_follows_the_spec() {
        for v in [json!(false), json!(null), json!(""), json!(0), json!([]), json!({})] {
            assert_eq!(truthiness(&v), Some(false), "{v}");
        }
        for v in [json!(true), json!("0"), json!(-1), json!([0]), json!({"a": null})] {
            assert_eq!(truthiness(&v), Some(true), "{v}");
        }
        assert_eq!(truthiness(&json!(0.5)), None);
        assert_eq!(Val::DateTime(DateTime::parse("2021").unwrap()).truthiness(), None);
    }

    #[test]
    fn equality_is_without_coercion() {
        assert!(json_equals(&json!(1), &json!(1.0)));
        assert!(!json_equals(&json!(1), &json!("1")));
        assert!(!json_equals(&json!(0), &json!(false)));
        assert!(!json_equals(&json!(null), &json!(false)));
        assert!(json_equals(&json!({"a": [1, "x"]}), &json!({"a": [1.0, "x"]})));
        let dt = |s| Val::DateTime(DateTime::parse(s).unwrap());
        assert!(equals(&dt("2021-01-01T01:00:00+01:00"), &dt("2021-01-01")));
        assert!(!equals(&dt("2021-01-01"), &Val::Json(Cow::Owned(json!("2021-01-01T00:00:00.000Z")))));
    }

    #[test]
    fn descriptions_are_short() {
        let long = Val::Json(Cow::Owned(json!("é".repeat(100))));
        assert!(long.describe().chars().count() <= 81);
        assert_eq!(Val::null().describe(), "null (missing or null data)");
    }
}
