//! The fast path: a second compilation of rule Logic that reads the native facts directly instead
//! of a JSON document.
//!
//! [`tongxing_certlogic`] is the reference: it validates every expression, runs the DCC test
//! folders, and evaluates whatever this module does not handle. This module compiles the part of
//! CertLogic that entry rules are made of (`var` of a documented field, literals, array literals,
//! `if`, `and`, `!`, `===`, `in`, `+`, the comparisons, `plusTime` by hours or days on a
//! date-time field, and `reduce` over the sample lists, value sets and arrays) into a tree that
//! evaluates against [`Ctx`], the facts with their rule-independent preprocessing. Its values mirror the reference's exactly: a date-time
//! field is the RFC 3339 string the facts document would hold, read by `plusTime` at millisecond
//! precision; equality, truthiness and the order in which operands are evaluated are the
//! reference's.
//!
//! Whenever an evaluation would need something the fast path does not model (an error, an
//! object compared by value, a date outside four-digit years), it gives up with [`Bail`] and the
//! rule is evaluated by the reference engine on the facts document instead, so results and error
//! messages are always the reference's. Expressions with other operators (`dccDateOfBirth`,
//! `extractFromUVCI`, `plusTime` by months or years or on a literal) are not compiled here. Tests compare both paths on random facts and on random expressions.
//!
//! The fast path keeps to the engine's evaluation budget ([`tongxing_certlogic::Limits`]) in
//! the same way: each `reduce` iteration is charged one step plus the number of nodes of its
//! lambda, array comparisons a step per item, and an array carried to the next iteration is
//! checked for size and depth. Past a limit it gives up, and the engine, which counts in the
//! same way over its own nodes and also charges the values it copies, fails the rule with its
//! budget error. (The engine's count is the larger, so within a narrow margin below the step
//! limit a rule may complete here that the engine would stop; rules that come near the limit on
//! ordinary facts are refused at load, see [`crate::budget`].)

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tongxing_certlogic::{MAX_STEPS, MAX_VALUE_DEPTH, MAX_VALUE_SIZE};
use tongxing_domain::facts::{CodeColour, CommuterStatus, Facts, SampleFact, SiteKind, TestResult};

use crate::document::write_time;

/// The fast path cannot evaluate this (the reference engine will).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

/// The facts of one check, preprocessed as the facts document is (see FACTS.md).
pub(crate) struct Ctx<'a> {
    facts: &'a Facts,
    at: DateTime<Utc>,
    code_colour: CodeColour,
    latest_definitive: Option<&'a SampleFact>,
    latest_negative: Option<&'a SampleFact>,
    /// Samples up to the check time, newest first (on a tie, the one listed later first); made
    /// when a rule reads them.
    sorted: OnceCell<Vec<&'a SampleFact>>,
    pending: OnceCell<Vec<&'a SampleFact>>,
    /// Steps of the evaluation under way (reset for each expression), as the engine counts them.
    steps: Cell<u64>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(facts: &'a Facts, at: DateTime<Utc>) -> Ctx<'a> {
        let person = &facts.person;
        let code_colour = person.colour_at(at);
        // As the document: on a tie in sampling time the sample listed later; the latest
        // conclusive result prefers a positive one.
        let mut latest_definitive: Option<&SampleFact> = None;
        let mut latest_negative: Option<&SampleFact> = None;
        for s in person.samples.iter().filter(|s| s.sampled_at <= at) {
            if matches!(s.result, TestResult::Negative | TestResult::Positive) {
                let key = |s: &SampleFact| (s.sampled_at, s.result == TestResult::Positive);
                if latest_definitive.is_none_or(|d| key(s) >= key(d)) {
                    latest_definitive = Some(s);
                }
                if s.result == TestResult::Negative && latest_negative.is_none_or(|n| s.sampled_at >= n.sampled_at) {
                    latest_negative = Some(s);
                }
            }
        }
        Ctx {
            facts,
            at,
            code_colour,
            latest_definitive,
            latest_negative,
            sorted: OnceCell::new(),
            pending: OnceCell::new(),
            steps: Cell::new(0),
        }
    }

    /// Charges `n` steps of the budget; gives up past it.
    #[inline]
    fn charge(&self, n: u64) -> Result<(), Bail> {
        let steps = self.steps.get().saturating_add(n);
        self.steps.set(steps);
        if steps > MAX_STEPS { Err(Bail) } else { Ok(()) }
    }

    fn sorted(&self) -> &Vec<&'a SampleFact> {
        self.sorted.get_or_init(|| {
            let samples = &self.facts.person.samples;
            let mut sorted: Vec<&SampleFact> = samples.iter().rev().filter(|s| s.sampled_at <= self.at).collect();
            sorted.sort_by_key(|s| std::cmp::Reverse(s.sampled_at));
            sorted
        })
    }

    fn pending(&self) -> &Vec<&'a SampleFact> {
        self.pending.get_or_init(|| self.sorted().iter().copied().filter(|s| s.result == TestResult::Pending).collect())
    }
}

/// A value during fast evaluation, standing for the reference's value.
#[derive(Debug, Clone)]
enum FVal<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A string of the facts or of the expression.
    Str(&'a String),
    /// A string naming an enumeration value (a code colour, a result, …).
    Name(&'static &'static str),
    /// The string the facts document holds for this date-time.
    DateStr(&'a DateTime<Utc>),
    /// The string `"<lab>/<sampleId>"` of a sample.
    Ref(&'a SampleFact),
    /// A CertLogic date-time (made by `plusTime`), in milliseconds since 1970.
    Time(i64),
    /// An object or array of the document, known only by its truthiness.
    Opaque(bool),
    /// A value set: an array of codes.
    ValueSet(&'a Vec<Value>),
    /// A sample object of the document.
    Sample(&'a SampleFact),
    /// An array of sample objects of the document.
    List(&'a Vec<&'a SampleFact>),
    /// An array literal whose items were evaluated.
    Array(Rc<Vec<FVal<'a>>>),
}

impl<'a> FVal<'a> {
    /// CertLogic truthiness; `None` for neither truthy nor falsy.
    fn truthiness(&self) -> Option<bool> {
        match *self {
            FVal::Null => Some(false),
            FVal::Bool(b) => Some(b),
            FVal::Int(i) => Some(i != 0),
            FVal::Str(s) => Some(!s.is_empty()),
            FVal::Name(s) => Some(!s.is_empty()),
            FVal::DateStr(_) | FVal::Ref(_) => Some(true),
            FVal::Time(_) => None,
            FVal::Opaque(t) => Some(t),
            FVal::ValueSet(v) => Some(!v.is_empty()),
            FVal::Sample(_) => Some(true),
            FVal::List(l) => Some(!l.is_empty()),
            FVal::Array(ref a) => Some(!a.is_empty()),
        }
    }

    /// The string of a `Str` or `Name`.
    #[inline]
    fn plain_str(&self) -> Option<&str> {
        match *self {
            FVal::Str(s) => Some(s),
            FVal::Name(s) => Some(s),
            _ => None,
        }
    }

    fn string(&self) -> Option<Cow<'_, str>> {
        match *self {
            FVal::Str(s) => Some(Cow::Borrowed(s.as_str())),
            FVal::Name(s) => Some(Cow::Borrowed(s)),
            FVal::DateStr(t) => {
                let mut s = String::with_capacity(24);
                write_time(&mut s, *t);
                Some(Cow::Owned(s))
            }
            FVal::Ref(s) => Some(Cow::Owned(sample_ref(s))),
            _ => None,
        }
    }

    /// The value as the reference's `evaluate` would give it, where that is plain JSON.
    #[cfg(test)]
    fn into_json(self) -> Result<Value, Bail> {
        Ok(match self {
            FVal::Null => Value::Null,
            FVal::Bool(b) => Value::Bool(b),
            FVal::Int(i) => Value::from(i),
            FVal::Str(_) | FVal::Name(_) | FVal::DateStr(_) | FVal::Ref(_) => {
                Value::String(self.string().expect("a string").into_owned())
            }
            FVal::Array(items) => Value::Array(items.iter().cloned().map(FVal::into_json).collect::<Result<_, _>>()?),
            FVal::Time(_) | FVal::Opaque(_) | FVal::ValueSet(_) | FVal::Sample(_) | FVal::List(_) => return Err(Bail),
        })
    }

    /// `var` below this value (`segments` after `current` or `accumulator` in a `reduce`
    /// lambda), as the reference's lookup.
    fn lookup(&self, segments: &[Segment]) -> Result<FVal<'a>, Bail> {
        let Some((first, rest)) = segments.split_first() else {
            return Ok(self.clone());
        };
        let next = match self {
            FVal::Array(items) => match first.index.and_then(|i| items.get(i)) {
                Some(item) => return item.lookup(rest),
                None => return Ok(FVal::Null),
            },
            FVal::ValueSet(codes) => match first.index.and_then(|i| codes.get(i)).and_then(json_string) {
                Some(code) => FVal::Str(code),
                None => FVal::Null,
            },
            FVal::List(samples) => match first.index.and_then(|i| samples.get(i)) {
                Some(s) => FVal::Sample(s),
                None => FVal::Null,
            },
            FVal::Sample(s) => match sample_field(&first.key) {
                Some(f) => field_of(s, f),
                None => FVal::Null,
            },
            FVal::Opaque(_) => return Err(Bail),
            // Scalars and date-times have nothing below them.
            _ => FVal::Null,
        };
        next.lookup(rest)
    }
}

/// `===` as the reference has it: same type and content; date-times by instant; a date-time and
/// plain JSON never. Objects and arrays are left to the reference, except arrays built by the
/// expression (a step per item compared).
fn strict_equals(a: &FVal<'_>, b: &FVal<'_>, ctx: &Ctx<'_>) -> Result<bool, Bail> {
    use FVal::*;
    let container = |v: &FVal<'_>| matches!(v, Opaque(_) | ValueSet(_) | Sample(_) | List(_) | Array(_));
    Ok(match (a, b) {
        (Time(x), Time(y)) => x == y,
        (Time(_), _) | (_, Time(_)) => false,
        (Array(x), Array(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            ctx.charge(x.len() as u64)?;
            for (a, b) in x.iter().zip(y.iter()) {
                if !strict_equals(a, b, ctx)? {
                    return Ok(false);
                }
            }
            true
        }
        // Two objects or arrays of the document: compared by structure, left to the reference.
        _ if container(a) && container(b) => return Err(Bail),
        // An object or array never equals a scalar.
        _ if container(a) || container(b) => false,
        (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (Str(_) | Name(_), Str(_) | Name(_)) => a.plain_str() == b.plain_str(),
        (Str(_) | Name(_) | DateStr(_) | Ref(_), Str(_) | Name(_) | DateStr(_) | Ref(_)) => a.string() == b.string(),
        _ => false,
    })
}

/// Whether `item` is in a value set (an array of JSON strings, as the rule set makes them).
fn in_value_set(item: &FVal<'_>, set: &[Value]) -> Result<bool, Bail> {
    match item {
        FVal::Opaque(_) | FVal::ValueSet(_) | FVal::Sample(_) | FVal::List(_) | FVal::Array(_) => Err(Bail),
        FVal::Str(s) => Ok(set.iter().any(|v| v.as_str() == Some(s.as_str()))),
        FVal::Name(s) => Ok(set.iter().any(|v| v.as_str() == Some(**s))),
        FVal::DateStr(_) | FVal::Ref(_) => {
            let s = item.string().expect("a string");
            Ok(set.iter().any(|v| v.as_str() == Some(&*s)))
        }
        // Value sets hold strings only: nothing else equals one of them.
        FVal::Null | FVal::Bool(_) | FVal::Int(_) | FVal::Time(_) => Ok(false),
    }
}

fn json_string(v: &Value) -> Option<&String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// `"<lab>/<sampleId>"`.
pub(crate) fn sample_ref(s: &SampleFact) -> String {
    let mut r = String::with_capacity(s.lab.len() + 1 + s.sample_id.len());
    r.push_str(&s.lab);
    r.push('/');
    r.push_str(&s.sample_id);
    r
}

// The names of enumeration values, as places a value can point to (the facts' `as_str`, checked
// by a test).
fn colour_name(c: CodeColour) -> &'static &'static str {
    match c {
        CodeColour::Green => &"green",
        CodeColour::Yellow => &"yellow",
        CodeColour::Red => &"red",
    }
}
fn result_name(r: TestResult) -> &'static &'static str {
    match r {
        TestResult::Pending => &"pending",
        TestResult::Negative => &"negative",
        TestResult::Positive => &"positive",
        TestResult::Invalid => &"invalid",
    }
}
fn site_kind_name(k: SiteKind) -> &'static &'static str {
    match k {
        SiteKind::Hospital => &"hospital",
        SiteKind::Community => &"community",
        SiteKind::ServiceArea => &"service_area",
    }
}
fn status_name(s: CommuterStatus) -> &'static &'static str {
    match s {
        CommuterStatus::Pending => &"pending",
        CommuterStatus::Approved => &"approved",
        CommuterStatus::Rejected => &"rejected",
        CommuterStatus::Suspended => &"suspended",
        CommuterStatus::Revoked => &"revoked",
        CommuterStatus::Expired => &"expired",
    }
}

/// Which sample of the document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Which {
    LatestDefinitive,
    LatestNegative,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SampleField {
    Lab,
    Ref,
    Result,
    SampleId,
    SampledAt,
    Site,
    SiteKind,
}

/// A field of the facts document that the fast path reads.
#[derive(Debug)]
pub(crate) enum Leaf {
    /// A path the document does not have: always null.
    Missing,
    Known,
    Code,
    CodeColourSet,
    CodeExpiresAt,
    CodeColour,
    CommitmentLetter,
    Commuter,
    CommuterStatus,
    CommuterValidUntil,
    CommuterFirstCheckedAt,
    CommuterInForce,
    CommuterFirstCheckDone,
    Sample(Which, Option<SampleField>),
    Pending,
    Samples,
    Clock,
    Checkpoint,
    CheckpointId,
    CheckpointRoad,
    ValueSets(bool),
    ValueSet(Vec<Value>),
}

fn sample_field(f: &str) -> Option<SampleField> {
    Some(match f {
        "lab" => SampleField::Lab,
        "ref" => SampleField::Ref,
        "result" => SampleField::Result,
        "sampleId" => SampleField::SampleId,
        "sampledAt" => SampleField::SampledAt,
        "site" => SampleField::Site,
        "siteKind" => SampleField::SiteKind,
        _ => return None,
    })
}

fn field_of(s: &SampleFact, f: SampleField) -> FVal<'_> {
    match f {
        SampleField::Lab => FVal::Str(&s.lab),
        SampleField::Ref => FVal::Ref(s),
        SampleField::Result => FVal::Name(result_name(s.result)),
        SampleField::SampleId => FVal::Str(&s.sample_id),
        SampleField::SampledAt => FVal::DateStr(&s.sampled_at),
        SampleField::Site => FVal::Str(&s.site),
        SampleField::SiteKind => FVal::Name(site_kind_name(s.site_kind)),
    }
}

impl Leaf {
    /// The leaf for a `var` path, or `None` when the fast path does not read it (the whole
    /// document, or inside an array).
    fn from_path(path: &str, value_sets: &Map<String, Value>) -> Option<Leaf> {
        let segments: Vec<&str> = path.split('.').collect();
        Some(match segments.as_slice() {
            [""] | ["payload"] | ["external"] => return None,
            ["payload", "known"] => Leaf::Known,
            ["payload", "code"] => Leaf::Code,
            ["payload", "code", "colour"] => Leaf::CodeColourSet,
            ["payload", "code", "expiresAt"] => Leaf::CodeExpiresAt,
            ["payload", "codeColour"] => Leaf::CodeColour,
            ["payload", "commitmentLetter"] => Leaf::CommitmentLetter,
            ["payload", "commuter"] => Leaf::Commuter,
            ["payload", "commuter", "status"] => Leaf::CommuterStatus,
            ["payload", "commuter", "validUntil"] => Leaf::CommuterValidUntil,
            ["payload", "commuter", "firstCheckedAt"] => Leaf::CommuterFirstCheckedAt,
            ["payload", "commuter", "inForce"] => Leaf::CommuterInForce,
            ["payload", "commuter", "firstCheckDone"] => Leaf::CommuterFirstCheckDone,
            ["payload", which @ ("latestDefinitive" | "latestNegative"), rest @ ..] => {
                let which = if *which == "latestDefinitive" { Which::LatestDefinitive } else { Which::LatestNegative };
                match rest {
                    [] => Leaf::Sample(which, None),
                    [f] => match sample_field(f) {
                        Some(f) => Leaf::Sample(which, Some(f)),
                        None => Leaf::Missing,
                    },
                    _ => Leaf::Missing,
                }
            }
            ["payload", "pending"] => Leaf::Pending,
            ["payload", "samples"] => Leaf::Samples,
            ["payload", "pending" | "samples", ..] => return None,
            ["external", "validationClock"] => Leaf::Clock,
            ["external", "checkpoint"] => Leaf::Checkpoint,
            ["external", "checkpoint", "id"] => Leaf::CheckpointId,
            ["external", "checkpoint", "road"] => Leaf::CheckpointRoad,
            ["external", "valueSets"] => Leaf::ValueSets(!value_sets.is_empty()),
            ["external", "valueSets", id] => match value_sets.get(*id) {
                Some(Value::Object(codes)) => Leaf::ValueSet(crate::ruleset::value_set_codes(codes)),
                _ => Leaf::Missing,
            },
            ["external", "valueSets", ..] => return None,
            _ => Leaf::Missing,
        })
    }

    fn get<'a, 'f: 'a>(&'a self, ctx: &'a Ctx<'f>) -> FVal<'a> {
        let person = &ctx.facts.person;
        let time = |t: &'a Option<DateTime<Utc>>| t.as_ref().map_or(FVal::Null, FVal::DateStr);
        match self {
            Leaf::Missing => FVal::Null,
            Leaf::Known => FVal::Bool(person.known),
            Leaf::Code => {
                if person.code.is_some() {
                    FVal::Opaque(true)
                } else {
                    FVal::Null
                }
            }
            Leaf::CodeColourSet => person.code.as_ref().map_or(FVal::Null, |c| FVal::Name(colour_name(c.colour))),
            Leaf::CodeExpiresAt => person.code.as_ref().map_or(FVal::Null, |c| time(&c.expires_at)),
            Leaf::CodeColour => FVal::Name(colour_name(ctx.code_colour)),
            Leaf::CommitmentLetter => FVal::Bool(person.commitment_letter),
            Leaf::Commuter => {
                if person.commuter.is_some() {
                    FVal::Opaque(true)
                } else {
                    FVal::Null
                }
            }
            Leaf::CommuterStatus => person.commuter.as_ref().map_or(FVal::Null, |c| FVal::Name(status_name(c.status))),
            Leaf::CommuterValidUntil => person.commuter.as_ref().map_or(FVal::Null, |c| time(&c.valid_until)),
            Leaf::CommuterFirstCheckedAt => person.commuter.as_ref().map_or(FVal::Null, |c| time(&c.first_checked_at)),
            Leaf::CommuterInForce => person.commuter.as_ref().map_or(FVal::Null, |c| FVal::Bool(c.in_force_at(ctx.at))),
            Leaf::CommuterFirstCheckDone => person
                .commuter
                .as_ref()
                .map_or(FVal::Null, |c| FVal::Bool(c.first_checked_at.is_some_and(|t| t <= ctx.at))),
            Leaf::Sample(which, field) => {
                let sample = match which {
                    Which::LatestDefinitive => ctx.latest_definitive,
                    Which::LatestNegative => ctx.latest_negative,
                };
                let Some(s) = sample else { return FVal::Null };
                match field {
                    None => FVal::Sample(s),
                    Some(f) => field_of(s, *f),
                }
            }
            Leaf::Pending => FVal::List(ctx.pending()),
            Leaf::Samples => FVal::List(ctx.sorted()),
            Leaf::Clock => FVal::DateStr(&ctx.at),
            Leaf::Checkpoint => FVal::Opaque(true),
            Leaf::CheckpointId => FVal::Str(&ctx.facts.checkpoint.id),
            Leaf::CheckpointRoad => ctx.facts.checkpoint.road.as_ref().map_or(FVal::Null, FVal::Str),
            Leaf::ValueSets(truthy) => FVal::Opaque(*truthy),
            Leaf::ValueSet(codes) => FVal::ValueSet(codes),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    Before,
    After,
    NotAfter,
    NotBefore,
}

impl Cmp {
    fn from_name(name: &str) -> Option<Cmp> {
        Some(match name {
            "<" => Cmp::Less,
            ">" => Cmp::Greater,
            "<=" => Cmp::LessOrEqual,
            ">=" => Cmp::GreaterOrEqual,
            "before" => Cmp::Before,
            "after" => Cmp::After,
            "not-after" => Cmp::NotAfter,
            "not-before" => Cmp::NotBefore,
            _ => return None,
        })
    }
    fn on_date_times(self) -> bool {
        matches!(self, Cmp::Before | Cmp::After | Cmp::NotAfter | Cmp::NotBefore)
    }
    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Cmp::Less | Cmp::Before => a < b,
            Cmp::Greater | Cmp::After => a > b,
            Cmp::LessOrEqual | Cmp::NotAfter => a <= b,
            Cmp::GreaterOrEqual | Cmp::NotBefore => a >= b,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Lit {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Lit {
    fn val(&self) -> FVal<'_> {
        match self {
            Lit::Bool(b) => FVal::Bool(*b),
            Lit::Int(i) => FVal::Int(*i),
            Lit::Str(s) => FVal::Str(s),
        }
    }
}

/// A compiled expression of the fast path.
#[derive(Debug)]
pub(crate) enum FNode {
    Lit(Lit),
    Var(Leaf),
    If(Box<[FNode; 3]>),
    And(Box<[FNode]>),
    Not(Box<FNode>),
    Equals(Box<[FNode; 2]>),
    In(Box<FNode>, Box<FNode>),
    /// `in` on a literal array of literals.
    InLiteral(Box<FNode>, Box<[Lit]>),
    Plus(Box<[FNode; 2]>),
    Compare(Cmp, Box<[FNode]>),
    /// `plusTime` by a fixed number of milliseconds (hours or days).
    PlusTime(Box<FNode>, i64, i64),
    /// An array literal with items that need evaluation.
    Array(Box<[FNode]>),
    /// `var` inside a `reduce` lambda: below `current` (true) or `accumulator` (false), or null
    /// for any other first segment.
    LambdaVar(Option<bool>, Box<[Segment]>),
    /// `reduce` over a list, with a lambda and an initial value, and the number of nodes of the
    /// lambda (its weight: what each iteration is charged, as by the engine).
    Reduce(Box<[FNode; 3]>, u64),
}

/// A segment of a `var` path, as the reference splits it.
#[derive(Debug)]
pub(crate) struct Segment {
    key: String,
    /// For arrays: the segment is all digits.
    index: Option<usize>,
}

/// The data context of a `reduce` lambda.
struct Scope<'s, 'a> {
    current: &'s FVal<'a>,
    accumulator: &'s FVal<'a>,
}

/// JavaScript's `Date` range, as the reference's.
const MAX_MS: i64 = 8_640_000_000_000_000;
/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: the facts document writes four-digit years
/// only, so only these parse.
const FIRST_MS: i64 = -62_167_219_200_000;
const END_MS: i64 = 253_402_300_800_000;

/// As the reference: an integer, or a float without fractional part within the 64-bit range.
fn int_of(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

impl FNode {
    /// Compiles a CertLogic expression that the reference has validated, or `None` when it uses
    /// something the fast path does not handle.
    pub(crate) fn compile(logic: &Value, value_sets: &Map<String, Value>) -> Option<FNode> {
        FNode::compile_in(logic, value_sets, false)
    }

    /// `in_lambda`: inside a `reduce` lambda, where `var` reads `current` and `accumulator`.
    fn compile_in(logic: &Value, value_sets: &Map<String, Value>, in_lambda: bool) -> Option<FNode> {
        Some(match logic {
            Value::Bool(b) => FNode::Lit(Lit::Bool(*b)),
            Value::String(s) => FNode::Lit(Lit::Str(s.clone())),
            Value::Number(n) => FNode::Lit(Lit::Int(int_of(n)?)),
            Value::Null => return None,
            Value::Array(items) => {
                // All-literal arrays the reference folds into a JSON array: kept to `in`.
                let items = items
                    .iter()
                    .map(|i| FNode::compile_in(i, value_sets, in_lambda))
                    .collect::<Option<Box<[FNode]>>>()?;
                if items.iter().all(|i| matches!(i, FNode::Lit(_))) {
                    return None;
                }
                FNode::Array(items)
            }
            Value::Object(map) => {
                let (op, args) = map.iter().next()?;
                if map.len() != 1 {
                    return None;
                }
                if op == "var" {
                    let path = args.as_str()?;
                    if !in_lambda {
                        return Some(FNode::Var(Leaf::from_path(path, value_sets)?));
                    }
                    if path.is_empty() {
                        return None;
                    }
                    let segments: Box<[Segment]> = path
                        .split('.')
                        .map(|k| Segment {
                            key: k.to_owned(),
                            index: k.bytes().all(|b| b.is_ascii_digit()).then(|| k.parse().unwrap_or(usize::MAX)),
                        })
                        .collect();
                    let field = match segments[0].key.as_str() {
                        "current" => Some(true),
                        "accumulator" => Some(false),
                        _ => None,
                    };
                    return Some(FNode::LambdaVar(field, segments));
                }
                let args = args.as_array()?;
                let c = |i: usize| FNode::compile_in(args.get(i)?, value_sets, in_lambda);
                let all = || {
                    args.iter().map(|a| FNode::compile_in(a, value_sets, in_lambda)).collect::<Option<Box<[FNode]>>>()
                };
                match (op.as_str(), args.len()) {
                    ("if", 3) => FNode::If(Box::new([c(0)?, c(1)?, c(2)?])),
                    ("and", n) if n >= 2 => FNode::And(all()?),
                    ("!", 1) => FNode::Not(Box::new(c(0)?)),
                    ("===", 2) => FNode::Equals(Box::new([c(0)?, c(1)?])),
                    ("+", 2) => FNode::Plus(Box::new([c(0)?, c(1)?])),
                    ("in", 2) => match &args[1] {
                        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
                            let lits = items
                                .iter()
                                .map(|v| match v {
                                    Value::Bool(b) => Some(Lit::Bool(*b)),
                                    Value::String(s) => Some(Lit::Str(s.clone())),
                                    Value::Number(n) => int_of(n).map(Lit::Int),
                                    _ => None,
                                })
                                .collect::<Option<Box<[Lit]>>>()?;
                            FNode::InLiteral(Box::new(c(0)?), lits)
                        }
                        _ => FNode::In(Box::new(c(0)?), Box::new(c(1)?)),
                    },
                    (name, 2 | 3) if Cmp::from_name(name).is_some() => FNode::Compare(Cmp::from_name(name)?, all()?),
                    ("plusTime", 3) => {
                        // A literal date is folded by the reference; not handled here.
                        if !args[0].is_object() {
                            return None;
                        }
                        let amount = int_of(args[1].as_number()?)?;
                        let unit_ms = match args[2].as_str()? {
                            "hour" => 3_600_000,
                            "day" => 86_400_000,
                            _ => return None,
                        };
                        FNode::PlusTime(Box::new(c(0)?), amount, unit_ms)
                    }
                    ("reduce", 3) => {
                        let lambda = FNode::compile_in(&args[1], value_sets, true)?;
                        let weight = lambda.weight();
                        FNode::Reduce(Box::new([c(0)?, lambda, c(2)?]), weight)
                    }
                    _ => return None,
                }
            }
        })
    }

    /// Evaluates against the facts (and, in a `reduce` lambda, its scope), giving the value.
    fn eval<'a, 'f: 'a>(&'a self, ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<FVal<'a>, Bail> {
        match self {
            FNode::Lit(l) => Ok(l.val()),
            FNode::Var(leaf) => Ok(leaf.get(ctx)),
            FNode::LambdaVar(field, segments) => lambda_var(*field, segments, scope),
            FNode::If(ops) => {
                let [guard, then, otherwise] = &**ops;
                match guard.truth(ctx, scope)? {
                    Some(true) => then.eval(ctx, scope),
                    Some(false) => otherwise.eval(ctx, scope),
                    None => Err(Bail),
                }
            }
            FNode::And(ops) => and(ops, ctx, scope),
            FNode::Plus(ops) => plus(ops, ctx, scope),
            FNode::PlusTime(..) => self.time(ctx, scope).map(FVal::Time),
            FNode::Array(items) => array(items, ctx, scope),
            FNode::Reduce(ops, weight) => reduce(ops, *weight, ctx, scope),
            FNode::Not(_) | FNode::Equals(_) | FNode::In(..) | FNode::InLiteral(..) | FNode::Compare(..) => {
                Ok(FVal::Bool(self.truth(ctx, scope)? == Some(true)))
            }
        }
    }

    /// The truthiness of the value (`None`: neither truthy nor falsy). Most of a rule is
    /// evaluated here, where results are a byte, not a value.
    fn truth<'a, 'f: 'a>(&'a self, ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<Option<bool>, Bail> {
        match self {
            FNode::Lit(l) => Ok(l.val().truthiness()),
            FNode::Var(leaf) => Ok(leaf.get(ctx).truthiness()),
            FNode::If(ops) => {
                let [guard, then, otherwise] = &**ops;
                match guard.truth(ctx, scope)? {
                    Some(true) => then.truth(ctx, scope),
                    Some(false) => otherwise.truth(ctx, scope),
                    None => Err(Bail),
                }
            }
            // The first falsy operand, or else the last one: its truthiness.
            FNode::And(ops) => {
                for op in ops.iter() {
                    match op.truth(ctx, scope)? {
                        Some(true) => {}
                        Some(false) => return Ok(Some(false)),
                        None => return Err(Bail),
                    }
                }
                Ok(Some(true))
            }
            FNode::Not(op) => Ok(Some(!op.truth(ctx, scope)?.ok_or(Bail)?)),
            FNode::Equals(ops) => Ok(Some(strict_equals(&ops[0].value(ctx, scope)?, &ops[1].value(ctx, scope)?, ctx)?)),
            FNode::In(item, list) => is_in(item, list, ctx, scope).map(Some),
            FNode::InLiteral(item, lits) => in_literal(item, lits, ctx, scope).map(Some),
            FNode::Compare(cmp, ops) => compare(*cmp, ops, ctx, scope).map(Some),
            FNode::PlusTime(..) => self.time(ctx, scope).map(|_| None),
            FNode::LambdaVar(..) | FNode::Plus(_) | FNode::Array(_) | FNode::Reduce(..) => {
                Ok(self.eval(ctx, scope)?.truthiness())
            }
        }
    }

    /// The value, without a call for literals and data.
    #[inline]
    fn value<'a, 'f: 'a>(&'a self, ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<FVal<'a>, Bail> {
        match self {
            FNode::Lit(l) => Ok(l.val()),
            FNode::Var(leaf) => Ok(leaf.get(ctx)),
            _ => self.eval(ctx, scope),
        }
    }

    /// The value, which must be a date-time (as a comparison's operand), in milliseconds.
    fn time<'a, 'f: 'a>(&'a self, ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<i64, Bail> {
        match self {
            FNode::PlusTime(op, amount, unit_ms) => match op.value(ctx, scope)? {
                FVal::DateStr(t) => {
                    let ms = t.timestamp_millis();
                    if !(FIRST_MS..END_MS).contains(&ms) {
                        return Err(Bail);
                    }
                    let ms = amount.checked_mul(*unit_ms).and_then(|d| ms.checked_add(d)).ok_or(Bail)?;
                    if !(-MAX_MS..=MAX_MS).contains(&ms) {
                        return Err(Bail);
                    }
                    Ok(ms)
                }
                _ => Err(Bail),
            },
            _ => match self.eval(ctx, scope)? {
                FVal::Time(ms) => Ok(ms),
                _ => Err(Bail),
            },
        }
    }

    /// Whether the expression passes (is truthy), as the reference's `evaluate_truthy`.
    pub(crate) fn truthy(&self, ctx: &Ctx<'_>) -> Result<bool, Bail> {
        ctx.steps.set(0);
        Ok(self.truth(ctx, None)? == Some(true))
    }

    /// The result as the reference's `evaluate` gives it, where that is plain JSON.
    #[cfg(test)]
    pub(crate) fn evaluate(&self, ctx: &Ctx<'_>) -> Result<Value, Bail> {
        self.eval(ctx, None)?.into_json()
    }

    /// The result if it is a string (for a reason's sample), as the reference would give it.
    pub(crate) fn string(&self, ctx: &Ctx<'_>) -> Result<Option<String>, Bail> {
        ctx.steps.set(0);
        Ok(self.eval(ctx, None)?.string().map(Cow::into_owned))
    }
}

fn lambda_var<'a>(field: Option<bool>, segments: &[Segment], scope: Option<&Scope<'_, 'a>>) -> Result<FVal<'a>, Bail> {
    let scope = scope.ok_or(Bail)?;
    match field {
        Some(true) => scope.current.lookup(&segments[1..]),
        Some(false) => scope.accumulator.lookup(&segments[1..]),
        None => Ok(FVal::Null),
    }
}

/// `and` for its value: the first falsy operand, or else the last one.
fn and<'a, 'f: 'a>(ops: &'a [FNode], ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<FVal<'a>, Bail> {
    let mut result = FVal::Bool(true);
    for op in ops {
        result = op.value(ctx, scope)?;
        match result.truthiness() {
            Some(true) => {}
            Some(false) => return Ok(result),
            None => return Err(Bail),
        }
    }
    Ok(result)
}

#[inline(never)]
fn is_in<'a, 'f: 'a>(
    item: &'a FNode,
    list: &'a FNode,
    ctx: &'a Ctx<'f>,
    scope: Option<&Scope<'_, 'a>>,
) -> Result<bool, Bail> {
    let (item, list) = (item.value(ctx, scope)?, list.value(ctx, scope)?);
    match list {
        FVal::ValueSet(set) => in_value_set(&item, set),
        FVal::Array(items) => {
            for x in items.iter() {
                if strict_equals(&item, x, ctx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Err(Bail),
    }
}

#[inline(never)]
fn in_literal<'a, 'f: 'a>(
    item: &'a FNode,
    lits: &'a [Lit],
    ctx: &'a Ctx<'f>,
    scope: Option<&Scope<'_, 'a>>,
) -> Result<bool, Bail> {
    let item = item.value(ctx, scope)?;
    for lit in lits {
        if strict_equals(&item, &lit.val(), ctx)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[inline(never)]
fn plus<'a, 'f: 'a>(ops: &'a [FNode; 2], ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<FVal<'a>, Bail> {
    match (ops[0].value(ctx, scope)?, ops[1].value(ctx, scope)?) {
        (FVal::Int(a), FVal::Int(b)) => a.checked_add(b).map(FVal::Int).ok_or(Bail),
        _ => Err(Bail),
    }
}

/// All operands first, then their types, as the reference.
fn compare<'a, 'f: 'a>(
    cmp: Cmp,
    ops: &'a [FNode],
    ctx: &'a Ctx<'f>,
    scope: Option<&Scope<'_, 'a>>,
) -> Result<bool, Bail> {
    let mut values = [0i64; 3];
    let mut ok = true;
    for (slot, op) in values.iter_mut().zip(ops) {
        let v = if cmp.on_date_times() {
            match op {
                // A date-time operation that fails is an error before any type check.
                FNode::PlusTime(..) => Some(op.time(ctx, scope)?),
                _ => match op.eval(ctx, scope)? {
                    FVal::Time(ms) => Some(ms),
                    _ => None,
                },
            }
        } else {
            match op.value(ctx, scope)? {
                FVal::Int(i) => Some(i),
                _ => None,
            }
        };
        match v {
            Some(v) => *slot = v,
            None => ok = false,
        }
    }
    if !ok {
        return Err(Bail);
    }
    Ok(values[..ops.len()].windows(2).all(|w| cmp.holds(w[0], w[1])))
}

#[inline(never)]
fn array<'a, 'f: 'a>(items: &'a [FNode], ctx: &'a Ctx<'f>, scope: Option<&Scope<'_, 'a>>) -> Result<FVal<'a>, Bail> {
    Ok(FVal::Array(Rc::new(items.iter().map(|i| i.eval(ctx, scope)).collect::<Result<Vec<FVal<'a>>, Bail>>()?)))
}

/// A left fold of the lambda over the list; a null list gives the initial value. Each iteration
/// is charged `1 + weight` steps, and an array carried to the next one is checked.
#[inline(never)]
fn reduce<'a, 'f: 'a>(
    ops: &'a [FNode; 3],
    weight: u64,
    ctx: &'a Ctx<'f>,
    scope: Option<&Scope<'_, 'a>>,
) -> Result<FVal<'a>, Bail> {
    let [list, lambda, initial] = ops;
    let list = list.eval(ctx, scope)?;
    let per_item = weight.saturating_add(1);
    let step = |current: &FVal<'a>, accumulator: FVal<'a>| {
        ctx.charge(per_item)?;
        let next = lambda.eval(ctx, Some(&Scope { current, accumulator: &accumulator }))?;
        check_built(&next, ctx)?;
        Ok(next)
    };
    let initial = || {
        let v = initial.eval(ctx, scope)?;
        check_built(&v, ctx)?;
        Ok(v)
    };
    match list {
        FVal::Null => initial(),
        FVal::List(samples) => {
            let mut acc = initial()?;
            for s in samples {
                acc = step(&FVal::Sample(s), acc)?;
            }
            Ok(acc)
        }
        FVal::ValueSet(codes) => {
            let mut acc = initial()?;
            for code in codes {
                acc = step(&FVal::Str(json_string(code).ok_or(Bail)?), acc)?;
            }
            Ok(acc)
        }
        FVal::Array(items) => {
            let mut acc = initial()?;
            for item in items.iter() {
                acc = step(item, acc)?;
            }
            Ok(acc)
        }
        _ => Err(Bail),
    }
}

/// Checks an array that the expression built (a `reduce` accumulator) against the engine's
/// value size and depth limits, as the engine would count its JSON form; the walk is charged.
/// Anything else is a reference into the facts, not built.
fn check_built(v: &FVal<'_>, ctx: &Ctx<'_>) -> Result<(), Bail> {
    fn walk(v: &FVal<'_>, depth: usize, size: &mut u64) -> Result<(), Bail> {
        // Nodes and levels of the JSON form (an upper bound for document objects).
        let (nodes, levels) = match v {
            FVal::ValueSet(codes) => (1 + codes.len() as u64, 1),
            FVal::List(samples) => (1 + 8 * samples.len() as u64, 2),
            FVal::Sample(_) => (8, 1),
            FVal::Opaque(_) => (1, 2),
            _ => (1, 0),
        };
        *size += nodes;
        if *size > MAX_VALUE_SIZE || depth + levels > MAX_VALUE_DEPTH {
            return Err(Bail);
        }
        if let FVal::Array(items) = v {
            for item in items.iter() {
                walk(item, depth + 1, size)?;
            }
        }
        Ok(())
    }
    if !matches!(v, FVal::Array(_)) {
        return Ok(());
    }
    let mut size = 0;
    let outcome = walk(v, 1, &mut size);
    ctx.charge(size)?;
    outcome
}

impl FNode {
    /// The number of nodes (using the weights of `reduce`s below).
    fn weight(&self) -> u64 {
        let children: u64 = match self {
            FNode::Lit(_) | FNode::Var(_) | FNode::LambdaVar(..) => 0,
            FNode::If(ops) => ops.iter().map(FNode::weight).sum(),
            FNode::And(ops) | FNode::Compare(_, ops) | FNode::Array(ops) => ops.iter().map(FNode::weight).sum(),
            FNode::Not(op) | FNode::PlusTime(op, ..) | FNode::InLiteral(op, _) => op.weight(),
            FNode::Equals(ops) | FNode::Plus(ops) => ops.iter().map(FNode::weight).sum(),
            FNode::In(a, b) => a.weight() + b.weight(),
            FNode::Reduce(ops, weight) => ops[0].weight() + weight + ops[2].weight(),
        };
        children + 1
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
