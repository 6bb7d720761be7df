#![doc = include_str!("../FACTS.md")]

use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Map, Value};
use tongxing_domain::facts::{Facts, SampleFact, TestResult};

/// Builds the facts document of one check: `{"payload": …, "external": …}` as described in the
/// module documentation (and `FACTS.md`). `value_sets` becomes `external.valueSets` as it is: use
/// [`crate::RuleSet::external_value_sets`] for a rule set's value sets, or
/// [`crate::RuleSet::facts_document`], which passes them.
///
/// Every call builds a fresh document. [`crate::RuleSet::decide`] instead refills a document kept
/// per thread, which allocates nothing once warm.
pub fn facts_document(facts: &Facts, at: DateTime<Utc>, value_sets: &Value) -> Value {
    let mut doc = Document::new(value_sets.clone(), &Needs::all());
    doc.fill(facts, at);
    doc.root
}

/// Slots of the payload that hold samples.
const LATEST_DEFINITIVE: usize = 0;
const LATEST_NEGATIVE: usize = 1;
const PENDING: usize = 2;
const SAMPLES: usize = 3;

/// Which fields of the document a rule set reads. [`crate::RuleSet::decide`] builds documents
/// with only these (a rule cannot tell a field it never reads from a missing one), which saves
/// most of the cost of a document; [`facts_document`] builds them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Needs {
    payload: u16,
    code: u16,
    commuter: u16,
    samples: [u16; 4],
    external: u16,
    checkpoint: u16,
}

impl Needs {
    pub(crate) fn all() -> Needs {
        Needs { payload: !0, code: !0, commuter: !0, samples: [!0; 4], external: !0, checkpoint: !0 }
    }

    pub(crate) fn none() -> Needs {
        Needs { payload: 0, code: 0, commuter: 0, samples: [0; 4], external: 0, checkpoint: 0 }
    }

    /// Adds a data path a rule reads (`{"var": path}` outside `reduce` lambdas). Reading an
    /// object or array whole needs all of it.
    pub(crate) fn add(&mut self, path: &str) {
        fn bit(keys: &[&str], key: &str) -> u16 {
            keys.iter().position(|k| *k == key).map_or(0, |i| 1 << i)
        }
        fn field(keys: &[&str], rest: &[&str]) -> u16 {
            match rest {
                [] => !0,
                [f, ..] => bit(keys, f),
            }
        }
        let segments: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('.').collect() };
        match segments.as_slice() {
            [] => *self = Needs::all(),
            ["payload"] => {
                self.payload = !0;
                self.code = !0;
                self.commuter = !0;
                self.samples = [!0; 4];
            }
            ["payload", key, rest @ ..] => {
                self.payload |= bit(PAYLOAD_KEYS, key);
                match *key {
                    "code" => self.code |= field(CODE_KEYS, rest),
                    "commuter" => self.commuter |= field(COMMUTER_KEYS, rest),
                    "latestDefinitive" => self.samples[LATEST_DEFINITIVE] |= field(SAMPLE_KEYS, rest),
                    "latestNegative" => self.samples[LATEST_NEGATIVE] |= field(SAMPLE_KEYS, rest),
                    "pending" | "samples" => {
                        let slot = if *key == "pending" { PENDING } else { SAMPLES };
                        self.samples[slot] |= match rest {
                            [] | [_] => !0,
                            [_, rest @ ..] => field(SAMPLE_KEYS, rest),
                        };
                    }
                    _ => {}
                }
            }
            ["external"] => {
                self.external = !0;
                self.checkpoint = !0;
            }
            ["external", key, rest @ ..] => {
                self.external |= bit(EXTERNAL_KEYS, key);
                if *key == "checkpoint" {
                    self.checkpoint |= field(CHECKPOINT_KEYS, rest);
                }
            }
            _ => {}
        }
    }
}

/// The keys of `all` whose bit is set in `mask`.
fn keys(all: &[&'static str], mask: u16) -> Vec<&'static str> {
    all.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, k)| *k).collect()
}

/// A facts document that can be refilled in place: strings, sample objects and arrays are
/// reused, so that refilling it for another check costs copies, not allocations.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) root: Value,
    /// Keys of the objects, as far as they are needed.
    code_keys: Vec<&'static str>,
    commuter_keys: Vec<&'static str>,
    sample_keys: [Vec<&'static str>; 4],
    /// Sample objects not in the document at the moment, kept for reuse, per slot.
    spare: [Vec<Value>; 4],
    /// Indices of the samples that exist at the check time, newest first.
    order: Vec<usize>,
}

impl Document {
    /// An empty document (no facts filled in yet) with these value sets and the needed fields.
    pub(crate) fn new(value_sets: Value, needs: &Needs) -> Document {
        // Keys are inserted in sorted order, so iteration order is the same whether or not
        // serde_json's `preserve_order` feature is on somewhere in the build.
        let mut payload = Map::new();
        for key in keys(PAYLOAD_KEYS, needs.payload) {
            payload.insert(key.to_owned(), Value::Null);
        }
        let mut external = Map::new();
        for key in keys(EXTERNAL_KEYS, needs.external) {
            let value = match key {
                "checkpoint" => new_object(&keys(CHECKPOINT_KEYS, needs.checkpoint)),
                "valueSets" => value_sets.clone(),
                _ => Value::Null,
            };
            external.insert(key.to_owned(), value);
        }
        let mut root = Map::new();
        root.insert("external".to_owned(), Value::Object(external));
        root.insert("payload".to_owned(), Value::Object(payload));
        Document {
            root: Value::Object(root),
            code_keys: keys(CODE_KEYS, needs.code),
            commuter_keys: keys(COMMUTER_KEYS, needs.commuter),
            sample_keys: needs.samples.map(|mask| keys(SAMPLE_KEYS, mask)),
            spare: Default::default(),
            order: Vec::new(),
        }
    }

    /// Fills the document with the facts of one check at `at`, replacing whatever it held.
    pub(crate) fn fill(&mut self, facts: &Facts, at: DateTime<Utc>) {
        let person = &facts.person;
        let samples = &person.samples;

        // Samples that exist at the check time, newest first; on a tie in sampling time the one
        // listed later first (the native decision's `max_by_key` picks the last of equals).
        self.order.clear();
        self.order.extend((0..samples.len()).rev().filter(|&i| samples[i].sampled_at <= at));
        self.order.sort_by(|&a, &b| samples[b].sampled_at.cmp(&samples[a].sampled_at));
        let order = &self.order;

        // Latest conclusive result; on a tie in sampling time the positive one.
        let definitive = |s: &&SampleFact| matches!(s.result, TestResult::Negative | TestResult::Positive);
        let latest_definitive = order.iter().position(|&i| definitive(&&samples[i])).map(|p| {
            let first = &samples[order[p]];
            order[p..]
                .iter()
                .map(|&i| &samples[i])
                .take_while(|s| s.sampled_at == first.sampled_at)
                .find(|s| s.result == TestResult::Positive)
                .unwrap_or(first)
        });
        let latest_negative = order.iter().map(|&i| &samples[i]).find(|s| s.result == TestResult::Negative);

        let Value::Object(root) = &mut self.root else { unreachable!("the root is an object") };
        let [spare_definitive, spare_negative, spare_pending, spare_samples] = &mut self.spare;
        let [keys_definitive, keys_negative, keys_pending, keys_samples] = &self.sample_keys;
        for (key, slot) in root.iter_mut() {
            let Value::Object(map) = slot else { unreachable!("payload and external are objects") };
            match key.as_str() {
                "external" => {
                    for (key, slot) in map.iter_mut() {
                        match key.as_str() {
                            "checkpoint" => {
                                let Value::Object(cp) = slot else { unreachable!("checkpoint is an object") };
                                for (key, slot) in cp.iter_mut() {
                                    match key.as_str() {
                                        "id" => set_str(slot, &facts.checkpoint.id),
                                        "road" => set_opt_str(slot, facts.checkpoint.road.as_deref()),
                                        _ => {}
                                    }
                                }
                            }
                            "validationClock" => set_time(slot, at),
                            _ => {}
                        }
                    }
                }
                "payload" => {
                    for (key, slot) in map.iter_mut() {
                        match key.as_str() {
                            "code" => match &person.code {
                                None => *slot = Value::Null,
                                Some(code) => {
                                    let obj = object(slot, &self.code_keys);
                                    for (key, slot) in obj.iter_mut() {
                                        match key.as_str() {
                                            "colour" => set_str(slot, code.colour.as_str()),
                                            "expiresAt" => set_opt_time(slot, code.expires_at),
                                            _ => {}
                                        }
                                    }
                                }
                            },
                            "codeColour" => {
                                set_str(slot, person.colour_at(at).as_str());
                            }
                            "commitmentLetter" => *slot = Value::Bool(person.commitment_letter),
                            "commuter" => match &person.commuter {
                                None => *slot = Value::Null,
                                Some(c) => {
                                    let in_force = c.in_force_at(at);
                                    let obj = object(slot, &self.commuter_keys);
                                    for (key, slot) in obj.iter_mut() {
                                        match key.as_str() {
                                            "firstCheckDone" => {
                                                *slot = Value::Bool(c.first_checked_at.is_some_and(|t| t <= at))
                                            }
                                            "firstCheckedAt" => set_opt_time(slot, c.first_checked_at),
                                            "inForce" => *slot = Value::Bool(in_force),
                                            "status" => set_str(slot, c.status.as_str()),
                                            "validUntil" => set_opt_time(slot, c.valid_until),
                                            _ => {}
                                        }
                                    }
                                }
                            },
                            "known" => *slot = Value::Bool(person.known),
                            "latestDefinitive" => {
                                set_opt_sample(slot, latest_definitive, spare_definitive, keys_definitive)
                            }
                            "latestNegative" => set_opt_sample(slot, latest_negative, spare_negative, keys_negative),
                            "pending" => set_samples(
                                slot,
                                order.iter().map(|&i| &samples[i]).filter(|s| s.result == TestResult::Pending),
                                spare_pending,
                                keys_pending,
                            ),
                            "samples" => {
                                set_samples(slot, order.iter().map(|&i| &samples[i]), spare_samples, keys_samples)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The payload's keys, sorted.
const PAYLOAD_KEYS: &[&str] = &[
    "code",
    "codeColour",
    "commitmentLetter",
    "commuter",
    "known",
    "latestDefinitive",
    "latestNegative",
    "pending",
    "samples",
];
const CODE_KEYS: &[&str] = &["colour", "expiresAt"];
const COMMUTER_KEYS: &[&str] = &["firstCheckDone", "firstCheckedAt", "inForce", "status", "validUntil"];
pub(crate) const SAMPLE_KEYS: &[&str] = &["lab", "ref", "result", "sampleId", "sampledAt", "site", "siteKind"];
const EXTERNAL_KEYS: &[&str] = &["checkpoint", "validationClock", "valueSets"];
const CHECKPOINT_KEYS: &[&str] = &["id", "road"];

/// The object in `slot`, made with these keys (null values) if `slot` is not an object yet.
fn object<'v>(slot: &'v mut Value, keys: &[&str]) -> &'v mut Map<String, Value> {
    if !slot.is_object() {
        *slot = new_object(keys);
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

fn new_object(keys: &[&str]) -> Value {
    let mut map = Map::new();
    for key in keys {
        map.insert((*key).to_owned(), Value::Null);
    }
    Value::Object(map)
}

fn set_str(slot: &mut Value, s: &str) {
    match slot {
        Value::String(buf) => {
            buf.clear();
            buf.push_str(s);
        }
        _ => *slot = Value::String(s.to_owned()),
    }
}

fn set_opt_str(slot: &mut Value, s: Option<&str>) {
    match s {
        Some(s) => set_str(slot, s),
        None => *slot = Value::Null,
    }
}

fn set_time(slot: &mut Value, t: DateTime<Utc>) {
    if !slot.is_string() {
        *slot = Value::String(String::with_capacity(24));
    }
    if let Value::String(buf) = slot {
        buf.clear();
        write_time(buf, t);
    }
}

fn set_opt_time(slot: &mut Value, t: Option<DateTime<Utc>>) {
    match t {
        Some(t) => set_time(slot, t),
        None => *slot = Value::Null,
    }
}

fn sample_value(s: &SampleFact, spare: &mut Vec<Value>, keys: &[&str]) -> Value {
    let mut v = spare.pop().unwrap_or_else(|| new_object(keys));
    let Value::Object(map) = &mut v else { unreachable!("spares are objects") };
    for (key, slot) in map.iter_mut() {
        match key.as_str() {
            "lab" => set_str(slot, &s.lab),
            "ref" => {
                if !slot.is_string() {
                    *slot = Value::String(String::new());
                }
                if let Value::String(buf) = slot {
                    buf.clear();
                    buf.push_str(&s.lab);
                    buf.push('/');
                    buf.push_str(&s.sample_id);
                }
            }
            "result" => set_str(slot, s.result.as_str()),
            "sampleId" => set_str(slot, &s.sample_id),
            "sampledAt" => set_time(slot, s.sampled_at),
            "site" => set_str(slot, &s.site),
            "siteKind" => set_str(slot, s.site_kind.as_str()),
            _ => {}
        }
    }
    v
}

fn set_opt_sample(slot: &mut Value, s: Option<&SampleFact>, spare: &mut Vec<Value>, keys: &[&str]) {
    // The object in the slot, if any, goes to the spares: null is left behind.
    if let obj @ Value::Object(_) = std::mem::take(slot) {
        spare.push(obj);
    }
    if let Some(s) = s {
        *slot = sample_value(s, spare, keys);
    }
}

fn set_samples<'s>(
    slot: &mut Value,
    samples: impl Iterator<Item = &'s SampleFact>,
    spare: &mut Vec<Value>,
    keys: &[&str],
) {
    let mut items = match std::mem::take(slot) {
        Value::Array(mut items) => {
            spare.extend(items.drain(..).filter(Value::is_object));
            items
        }
        _ => Vec::new(),
    };
    items.extend(samples.map(|s| sample_value(s, spare, keys)));
    *slot = Value::Array(items);
}

/// Writes `t` as RFC 3339 in UTC: `2021-11-18T08:00:00Z`, with `.mmm` milliseconds when the
/// time has a fraction of a second (CertLogic reads milliseconds and drops the rest).
pub(crate) fn write_time(buf: &mut String, t: DateTime<Utc>) {
    let secs = t.timestamp();
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside CertLogic's four-digit years: written as chrono does; rules reading it fail.
        let _ = write!(buf, "{}", t.to_rfc3339());
        return;
    }
    let mut b = *b"0000-00-00T00:00:00";
    let put = |b: &mut [u8; 19], at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut b, 0, y, 4);
    put(&mut b, 5, i64::from(m), 2);
    put(&mut b, 8, i64::from(d), 2);
    put(&mut b, 11, sod / 3600, 2);
    put(&mut b, 14, sod / 60 % 60, 2);
    put(&mut b, 17, sod % 60, 2);
    buf.push_str(std::str::from_utf8(&b).expect("ASCII digits"));
    let ms = t.nanosecond() % 1_000_000_000 / 1_000_000;
    if ms != 0 {
        let _ = write!(buf, ".{ms:03}");
    }
    buf.push('Z');
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;
    use tongxing_domain::facts::*;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2021, 11, 18, 8, 0, 0).unwrap()
    }

    fn sample(id: &str, age_h: i64, result: TestResult) -> SampleFact {
        SampleFact {
            lab: "LAB1".into(),
            sample_id: id.into(),
            sampled_at: t() - Duration::hours(age_h),
            site: "H1".into(),
            site_kind: SiteKind::Hospital,
            result,
        }
    }

    fn facts(samples: Vec<SampleFact>) -> Facts {
        Facts {
            person: PersonFacts { known: true, code: None, commuter: None, samples, commitment_letter: false },
            checkpoint: CheckpointFacts { id: "CP1".into(), road: Some("京哈高速".into()) },
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let mut s = String::new();
        write_time(&mut s, t());
        assert_eq!(s, "2021-11-18T08:00:00Z");
        s.clear();
        write_time(&mut s, Utc.with_ymd_and_hms(2000, 2, 29, 23, 59, 59).unwrap() + Duration::milliseconds(7));
        assert_eq!(s, "2000-02-29T23:59:59.007Z");
        for days in [-1000i64, 0, 1, 59, 60, 365, 10_957, 19_000, 2_932_896] {
            let d = DateTime::<Utc>::UNIX_EPOCH + Duration::days(days) + Duration::seconds(3723);
            s.clear();
            write_time(&mut s, d);
            assert_eq!(s, d.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }

    #[test]
    fn the_document_has_every_documented_field() {
        let mut f = facts(vec![
            sample("old", 30, TestResult::Negative),
            sample("new", 2, TestResult::Pending),
            sample("future", -1, TestResult::Negative),
            sample("pos", 40, TestResult::Positive),
        ]);
        f.person.code = Some(CodeFacts { colour: CodeColour::Yellow, reason: None, expires_at: Some(t()) });
        f.person.commuter = Some(CommuterFacts {
            status: CommuterStatus::Approved,
            valid_until: None,
            first_checked_at: Some(t() + Duration::hours(1)),
        });
        let doc = facts_document(&f, t(), &json!({"x": ["a"]}));
        let sample = |id: &str, at: &str, result: &str| {
            json!({"lab": "LAB1", "ref": format!("LAB1/{id}"), "result": result, "sampleId": id,
                   "sampledAt": at, "site": "H1", "siteKind": "hospital"})
        };
        let old = sample("old", "2021-11-17T02:00:00Z", "negative");
        let new = sample("new", "2021-11-18T06:00:00Z", "pending");
        let pos = sample("pos", "2021-11-16T16:00:00Z", "positive");
        assert_eq!(
            doc,
            json!({
                "payload": {
                    "known": true,
                    "code": {"colour": "yellow", "expiresAt": "2021-11-18T08:00:00Z"},
                    "codeColour": "green",
                    "commuter": {"status": "approved", "validUntil": null, "firstCheckedAt": "2021-11-18T09:00:00Z",
                                 "inForce": true, "firstCheckDone": false},
                    "commitmentLetter": false,
                    "latestDefinitive": old,
                    "latestNegative": old,
                    "pending": [new],
                    "samples": [new, old, pos],
                },
                "external": {
                    "validationClock": "2021-11-18T08:00:00Z",
                    "checkpoint": {"id": "CP1", "road": "京哈高速"},
                    "valueSets": {"x": ["a"]},
                }
            })
        );
    }

    #[test]
    fn refilling_gives_the_same_document_as_building_fresh() {
        let cases = [
            facts(vec![]),
            facts(vec![sample("a", 1, TestResult::Negative), sample("b", 1, TestResult::Positive)]),
            facts(vec![sample("a", 3, TestResult::Pending), sample("b", 5, TestResult::Pending)]),
            facts(vec![sample("a", 3, TestResult::Invalid)]),
        ];
        let mut doc = Document::new(json!({}), &Needs::all());
        for _ in 0..2 {
            for f in &cases {
                doc.fill(f, t());
                assert_eq!(doc.root, facts_document(f, t(), &json!({})));
            }
        }
        // A tie in sampling time: the positive one is the latest conclusive result.
        let d = facts_document(&cases[1], t(), &json!({}));
        assert_eq!(d["payload"]["latestDefinitive"]["sampleId"], "b");
        assert_eq!(d["payload"]["latestNegative"]["sampleId"], "a");
    }
}
