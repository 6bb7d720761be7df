//! The values an evaluation works with: JSON borrowed from the data or the expression wherever
//! possible, plus CertLogic's own date-time kind, which JSON cannot carry.

use std::borrow::Cow;
use std::io;

use serde_json::{Number, Value};

use crate::EvalError;
use crate::budget::Meter;
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

    /// A copy that borrows what `self` holds, without cloning JSON. The arrays and `reduce`
    /// contexts it copies are charged to the meter, one step per item.
    pub(crate) fn reborrow(&'a self, meter: &Meter) -> Result<Val<'a>, EvalError> {
        Ok(match self {
            Val::Json(v) => Val::Json(Cow::Borrowed(v.as_ref())),
            Val::DateTime(dt) => Val::DateTime(*dt),
            Val::Array(items) => {
                meter.charge(items.len() as u64)?;
                Val::Array(items.iter().map(|item| item.reborrow(meter)).collect::<Result<_, _>>()?)
            }
            Val::ReduceContext(ctx) => {
                meter.charge(2)?;
                Val::ReduceContext(Box::new((ctx.0.reborrow(meter)?, ctx.1.reborrow(meter)?)))
            }
        })
    }

    /// A copy that borrows nothing. Its cost is that of [`Meter::check`], which must have
    /// passed on the value first (it also bounds the recursion here).
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

    /// A short rendering for error messages. Its cost is bounded whatever the size or depth of
    /// the value: the rendering stops after a few dozen characters.
    pub(crate) fn describe(&self) -> String {
        const LIMIT: usize = 80;
        match self {
            Val::Json(v) if v.is_null() => "null (missing or null data)".to_owned(),
            Val::DateTime(dt) => format!("the date-time {dt}"),
            other => {
                let mut out = Bounded::new(LIMIT);
                let _ = other.render(&mut out);
                out.finish()
            }
        }
    }

    /// Writes the JSON form of the value (as [`Val::into_json`] gives it) until `out` is full.
    fn render(&self, out: &mut Bounded) -> io::Result<()> {
        use io::Write as _;
        match self {
            Val::Json(v) => serde_json::to_writer(&mut *out, v.as_ref()).map_err(io::Error::other),
            Val::DateTime(dt) => write!(out, "\"{dt}\""),
            Val::Array(items) => {
                out.write_all(b"[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    item.render(out)?;
                }
                out.write_all(b"]")
            }
            // Keys in sorted order, as `into_json`'s map gives them.
            Val::ReduceContext(fields) => {
                out.write_all(b"{\"accumulator\":")?;
                fields.1.render(out)?;
                out.write_all(b",\"current\":")?;
                fields.0.render(out)?;
                out.write_all(b"}")
            }
        }
    }
}

/// The JSON text of `v`, cut after about `limit` bytes (ending in `…` then): bounded in time,
/// memory and recursion whatever the size and depth of `v`.
pub(crate) fn render_json(v: &Value, limit: usize) -> (String, bool) {
    let mut out = Bounded::new(limit);
    let _ = serde_json::to_writer(&mut out, v);
    let complete = !out.full;
    (out.finish(), complete)
}

/// A writer that keeps the first bytes written and fails once it has more than its limit, so
/// that a serialisation into it stops early (each level of nesting writes at least one byte, so
/// it also stops the recursion).
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
    full: bool,
}

impl Bounded {
    fn new(limit: usize) -> Bounded {
        Bounded { bytes: Vec::new(), limit, full: false }
    }

    /// The text, cut at `limit` bytes (on a character boundary) with `…` when longer.
    fn finish(self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.full || s.len() > self.limit {
            let mut cut = self.limit.min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        s
    }
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A few bytes beyond the limit, so that the character at the cut is whole.
        let room = (self.limit + 4).saturating_sub(self.bytes.len());
        if buf.len() > room {
            self.bytes.extend_from_slice(&buf[..room]);
            self.full = true;
            return Err(io::Error::other("rendering cut"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
/// when they are the same instant; a value and a date-time never. Every item of an array or
/// object compared costs a step.
pub(crate) fn equals(a: &Val<'_>, b: &Val<'_>, meter: &Meter) -> Result<bool, EvalError> {
    Ok(match (a, b) {
        (Val::Json(a), Val::Json(b)) => json_equals(a, b, meter)?,
        (Val::DateTime(a), Val::DateTime(b)) => a == b,
        (Val::Array(a), Val::Array(b)) => {
            if a.len() != b.len() {
                return Ok(false);
            }
            meter.charge(a.len() as u64)?;
            for (a, b) in a.iter().zip(b) {
                if !equals(a, b, meter)? {
                    return Ok(false);
                }
            }
            true
        }
        (Val::Array(a), Val::Json(b)) | (Val::Json(b), Val::Array(a)) => match b.as_ref() {
            Value::Array(b) => {
                if a.len() != b.len() {
                    return Ok(false);
                }
                meter.charge(a.len() as u64)?;
                for (a, b) in a.iter().zip(b) {
                    if !equals(a, &Val::Json(Cow::Borrowed(b)), meter)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        },
        (Val::ReduceContext(a), Val::ReduceContext(b)) => {
            meter.charge(2)?;
            equals(&a.0, &b.0, meter)? && equals(&a.1, &b.1, meter)?
        }
        _ => false,
    })
}

pub(crate) fn json_equals(a: &Value, b: &Value, meter: &Meter) -> Result<bool, EvalError> {
    Ok(match (a, b) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => match (int_of(a), int_of(b)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => a.as_f64() == b.as_f64(),
            _ => false,
        },
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Ok(false);
            }
            meter.charge(a.len() as u64)?;
            for (a, b) in a.iter().zip(b) {
                if !json_equals(a, b, meter)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Object(a), Value::Object(b)) => {
            if a.len() != b.len() {
                return Ok(false);
            }
            meter.charge(a.len() as u64)?;
            for (k, v) in a {
                match b.get(k) {
                    Some(w) if json_equals(v, w, meter)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        (a, b) => a == b,
    })
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
        let meter = Meter::new(crate::Limits::DEFAULT);
        let json_equals = |a: &Value, b: &Value| json_equals(a, b, &meter).unwrap();
        assert!(json_equals(&json!(1), &json!(1.0)));
        assert!(!json_equals(&json!(1), &json!("1")));
        assert!(!json_equals(&json!(0), &json!(false)));
        assert!(!json_equals(&json!(null), &json!(false)));
        assert!(json_equals(&json!({"a": [1, "x"]}), &json!({"a": [1.0, "x"]})));
        let dt = |s| Val::DateTime(DateTime::parse(s).unwrap());
        assert!(equals(&dt("2021-01-01T01:00:00+01:00"), &dt("2021-01-01"), &meter).unwrap());
        assert!(!equals(&dt("2021-01-01"), &Val::Json(Cow::Owned(json!("2021-01-01T00:00:00.000Z"))), &meter).unwrap());
    }

    #[test]
    fn descriptions_are_short() {
        let long = Val::Json(Cow::Owned(json!("é".repeat(100))));
        assert!(long.describe().chars().count() <= 81);
        assert_eq!(Val::null().describe(), "null (missing or null data)");
        assert_eq!(Val::Json(Cow::Owned(json!([1, "a"]))).describe(), "[1,\"a\"]");
        let items = Val::Array(vec![Val::DateTime(DateTime::parse("2021-06-01").unwrap()), Val::bool(true)]);
        assert_eq!(items.describe(), "[\"2021-06-01T00:00:00.000Z\",true]");
    }

    #[test]
    fn descriptions_of_deep_and_large_values_are_bounded() {
        // 100,000 levels: rendering, like every walk over values, must not recurse that deep.
        let mut deep = Val::bool(true);
        for _ in 0..100_000 {
            deep = Val::Array(vec![deep]);
        }
        let text = deep.describe();
        assert!(text.starts_with("[[[[") && text.ends_with('…') && text.len() < 100, "{text}");
        std::mem::forget(deep);
        let wide = Val::Json(Cow::Owned(Value::Array(vec![json!("x"); 1_000_000])));
        assert!(wide.describe().len() < 100);
        let (text, complete) = render_json(&json!({"a": [1, 2]}), 80);
        assert_eq!((text.as_str(), complete), ("{\"a\":[1,2]}", true));
        let (text, complete) = render_json(&Value::Array(vec![json!("é"); 1000]), 10);
        assert!(!complete && text.ends_with('…') && text.len() <= 10 + '…'.len_utf8(), "{text}");
    }
}
