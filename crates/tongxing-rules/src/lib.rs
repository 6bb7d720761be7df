//! Tongxing's entry policies as versioned CertLogic rule sets, in the shape of the EU Digital
//! COVID Certificate's business rules, so that a new policy is a new data file, not new code.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tongxing_domain::facts::{CheckpointFacts, Facts, PersonFacts};
//! use tongxing_domain::Verdict;
//!
//! let sets = tongxing_rules::builtin();
//! let at = Utc.with_ymd_and_hms(2021, 11, 18, 0, 0, 0).unwrap();
//! let policy = tongxing_rules::select(&sets, at).expect("a policy in force");
//! assert_eq!(policy.id(), "beijing-2021-11-17");
//! let facts = Facts {
//!     person: PersonFacts { known: true, code: None, commuter: None, samples: vec![], commitment_letter: false },
//!     checkpoint: CheckpointFacts { id: "CP1".into(), road: None },
//! };
//! let d = policy.decide(&facts, at);
//! assert_eq!(d.verdict, Verdict::Deny);
//! assert_eq!(d.reasons[0].code.as_str(), "NO_VALID_TEST");
//! ```
//!
//! # Layout
//! - [`document`]: the facts document, `{"payload": …, "external": …}`, that rules read. Every field
//!   is documented there (and in `FACTS.md`).
//! - [`ruleset`]: the rule-set format, its validation, and the decision.
//! - `fast` (private): the fast path, a second compilation of the rules (see *Evaluation*).
//! - [`budget`]: the evaluation budget, and the representative checks on which a rule set's
//!   rules must stay within it to be accepted.
//! - `policies/*.json`: the built-in rule sets; `policies/tests/<policy>/<RULE-ID>/` their DCC
//!   rule folders with test cases (kept in sync by `tests/dcc_folders.rs`).
//!
//! # The rule-set file
//! ```text
//! { "id": "beijing-2021-11-17", "version": "2021-11-17.1",
//!   "name_zh": …, "name_en": …,
//!   "valid_from": "2021-11-17T00:00:00+08:00", "valid_to": "2022-05-05T00:00:00+08:00" | null,
//!   "value_sets": { "<value-set id>": { "<code>": { details… }, … }, … },
//!   "rules": [ <rule>, … ],
//!   "otherwise": { "Verdict": "deny", "Reason": "NO_VALID_TEST", "Description": [zh, en] } }
//! ```
//! Value sets are kept as the DCC keeps them: code → details. Rules see them, as in the DCC, as
//! `external.valueSets.<id>`: the array of codes. The built-in sets have `surrounding-regions`
//! (region-code prefixes where commuters may live, with names; read by the commuter application,
//! not by the entry rules) and `designated-test-points` (site id → names and road).
//!
//! A rule is a DCC business rule (`Identifier`, `Type` "Acceptance", `Country`, `Version`,
//! `SchemaVersion`, `Engine` "CERTLOGIC", `EngineVersion`, `CertificateType`, `Description` as
//! `[{"lang": "zh", "desc": …}, {"lang": "en", "desc": …}]`, `ValidFrom`, `ValidTo` (null: open),
//! `AffectedFields`, `Logic`) plus two Tongxing fields saying what its result means:
//! `OnPass` and `OnFail`, each absent/null or an outcome
//! `{"Verdict": "pass"|"conditional"|"deny" (absent: a note), "Reason": "<ReasonCode>",
//! "Sample": <CertLogic giving "lab/sample_id">, "RecordsCommuterFirstCheck": bool}`.
//! `Reason` is the name of a native [`tongxing_domain::ReasonCode`].
//!
//! [`RuleSet::from_json`] refuses, naming the field or the rule's `Identifier`: malformed JSON or
//! unknown fields; a Logic or Sample that is not valid CertLogic 1.3 (every issue, with its path);
//! a Logic that reads a field the facts document does not have, a value set the rule set does not
//! have, or a field its `AffectedFields` does not list; an unknown reason code or verdict; a rule
//! with neither outcome; duplicate identifiers; bad versions, engine, type or certificate type;
//! a rule whose `ValidFrom..ValidTo` does not cover the rule set's validity; a rule that goes past
//! the evaluation budget on a representative check (see [`budget`]). It compiles every
//! expression once.
//!
//! # How the verdict is derived
//! The rules form an ordered decision list. [`RuleSet::decide`] builds the facts document, then
//! evaluates the rules in file order:
//! 1. A rule *passes* when its Logic is CertLogic-truthy; it *fails* when it is falsy or when it
//!    fails to evaluate (as DCC verifiers do; the error is reported in `errors`), which includes
//!    going past the evaluation budget ([`budget`]): no rule can stop a check from getting its
//!    verdict.
//! 2. The outcome for that result (`OnPass` or `OnFail`) is looked up. None: next rule.
//! 3. An outcome without `Verdict` is a *note*: its reason is kept, and evaluation goes on.
//! 4. An outcome with a `Verdict` decides: the verdict is its verdict, the reasons are its reason
//!    followed by the notes collected so far, `records_commuter_first_check` is its flag.
//!    Evaluation stops.
//! 5. When no rule decides, the rule set's `otherwise` does (with the notes).
//!
//! So a policy is written as: *requirements* first (fail ⇒ deny: code colour, positive result),
//! then notes (commuter certification not in force), then *grants* (pass ⇒ pass or conditional:
//! a valid negative test for the person's situation, a pending designated sample with a signed
//! letter), then *explanations* of a denial in order of precedence (fail ⇒ deny: letter missing,
//! first check needs 48 h, commuter test too old, test too old), then `otherwise` (no valid test).
//! A rule that does not apply to the person (e.g. a commuter rule for a visitor) is written, as
//! in the DCC, to pass trivially (`{"if": [applies, check, true]}`) or, for a grant, to fail.
//! Every rule is self-contained, so that its DCC test cases need no other rule.
//!
//! With the built-in `beijing-2021-11-17` this reproduces [`tongxing_domain::decide`] exactly
//! (verdict, reasons with their samples, and the first-check flag; checked by a property test
//! over random facts):
//!
//! | Rule | Result ⇒ outcome | Native step |
//! |---|---|---|
//! | BJ-CODE-0001 code not red | fail ⇒ deny CODE_RED | 1 |
//! | BJ-CODE-0002 code green | fail ⇒ deny CODE_YELLOW | 1 |
//! | BJ-NAT-0001 latest conclusive result not positive | fail ⇒ deny POSITIVE_RESULT | 2 |
//! | BJ-COM-0001 certification, if any, in force | fail ⇒ note COMMUTER_NOT_ACTIVE | 3 |
//! | BJ-NAT-0002 visitor: negative within 48 h | pass ⇒ pass NEGATIVE_WITHIN_WINDOW | 3 |
//! | BJ-COM-0002 commuter after first check: negative within 14 d | pass ⇒ pass COMMUTER_NEGATIVE_WITHIN_WINDOW | 3 |
//! | BJ-COM-0003 commuter's first check: negative within 48 h | pass ⇒ pass COMMUTER_FIRST_CHECK, records | 3 |
//! | BJ-SA-0001 pending designated sample ≤ 24 h and letter | pass ⇒ conditional PENDING_WITH_COMMITMENT | 4 |
//! | BJ-SA-0002 such a sample needs the letter | fail ⇒ deny COMMITMENT_LETTER_REQUIRED | 4 |
//! | BJ-COM-0004 first check: a test of the last 14 d must be ≤ 48 h | fail ⇒ deny FIRST_CHECK_NEEDS_48H | 5 |
//! | BJ-COM-0005 commuter's latest negative within 14 d | fail ⇒ deny COMMUTER_TEST_TOO_OLD | 5 |
//! | BJ-NAT-0003 visitor's latest negative within 48 h | fail ⇒ deny TEST_TOO_OLD | 5 |
//! | otherwise | deny NO_VALID_TEST | 5 |
//!
//! `beijing-2022-05-05` differs only in the commuter window (BJ-COM-0002/0004/0005 version 1.1.0:
//! 7 days). `beijing-2022-11-22` drops the commuter rules and has BJ-NAT-0002/0003 version 2.0.0:
//! 48 hours for everyone. Rules keep their `Identifier` across rule sets; a changed rule gets a
//! new `Version`, and the same (Identifier, Version) is the same rule everywhere.
//!
//! # Evaluation
//! [`tongxing_certlogic`] is the reference engine: it validates every expression, runs the DCC
//! rule folders, and [`RuleSet::decide_reference`] evaluates every rule with it on the facts
//! document. Building a JSON document and walking it per rule costs several times the native
//! decision, so [`RuleSet::decide`] takes a fast path: at load, each Logic and Sample is also
//! compiled into a tree that reads the native facts directly (a `var` becomes a field access,
//! a date-time field is read at the millisecond precision CertLogic parses its string with,
//! equality, truthiness and operand order are CertLogic's). It covers the operators entry rules
//! use (`var`, literals, arrays, `if`, `and`, `!`, `===`, `in`, `+`, the comparisons, `plusTime`
//! by hours or days, `reduce`). Wherever it cannot give the engine's answer (an expression
//! outside that set, an evaluation error, an object compared by value) it hands that rule to the
//! engine, on a facts document filled once per decision in a buffer kept per thread with only
//! the fields the rule set reads. Property tests check that the two agree: on every rule for
//! 20,000 random checks, and on 20,000 random expressions over random facts.
//!
//! # Choices
//! - Choosing the rule set in force is the caller's job ([`select`]); [`RuleSet::decide`] applies
//!   every rule of the set it is given (rules must cover the set's validity, so none lapses).
//! - Date-times are compared at CertLogic's precision, milliseconds.
//! - Pure, rule-independent preprocessing happens in Rust (see [`document`]): samples from after
//!   the check time are dropped, samples are sorted newest first, the latest conclusive result,
//!   the latest negative and the pending samples are picked out, the effective code colour (an
//!   expired yellow or red is green) and whether a certification is in force are computed.
//!   Every policy parameter (windows, the green-code and positive-result rules, designated test
//!   points, surrounding regions) lives in the rule set.

pub mod budget;
pub mod document;
mod fast;
pub mod ruleset;

use chrono::{DateTime, Utc};

pub use document::facts_document;
pub use ruleset::{Outcome, Rule, RuleEvalError, RuleReason, RuleSet, RuleSetError, RulesDecision};

/// The built-in rule-set files, oldest first: (file name, contents).
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("beijing-2021-11-17.json", include_str!("../policies/beijing-2021-11-17.json")),
    ("beijing-2022-05-05.json", include_str!("../policies/beijing-2022-05-05.json")),
    ("beijing-2022-11-22.json", include_str!("../policies/beijing-2022-11-22.json")),
];

/// The built-in rule sets, oldest first: Beijing from 17 November 2021, from 5 May 2022 and from
/// 22 November 2022. They follow each other without gap or overlap.
pub fn builtin() -> Vec<RuleSet> {
    BUILTIN_FILES
        .iter()
        .map(|(name, text)| RuleSet::from_json(text).unwrap_or_else(|e| panic!("built-in rule set {name}: {e}")))
        .collect()
}

/// Whether (id, version) is one of the built-in rule sets (computed once).
pub fn is_builtin(id: &str, version: &str) -> bool {
    static IDS: std::sync::LazyLock<Vec<(String, String)>> =
        std::sync::LazyLock::new(|| builtin().iter().map(|r| (r.id().to_string(), r.version().to_string())).collect());
    IDS.iter().any(|(i, v)| i == id && v == version)
}

/// The rule set in force at `at`: of those whose validity contains `at`, the one that started last.
pub fn select(sets: &[RuleSet], at: DateTime<Utc>) -> Option<&RuleSet> {
    sets.iter().filter(|s| s.in_force_at(at)).max_by_key(|s| s.valid_from())
}

/// A rule set's JSON re-issued under a new `version`, in force from `from` with no end date:
/// how an authority re-imposes an earlier policy (its rules keep their identifiers and
/// versions, so entry events still name exactly the rules that decided; their ValidTo is
/// lifted). The result is
/// validated like any published rule set.
pub fn reissue(text: &str, version: &str, from: DateTime<Utc>) -> Result<String, RuleSetError> {
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(RuleSetError::Json)?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| RuleSetError::Field { field: "policy".into(), reason: "must be a JSON object".into() })?;
    obj.insert("version".into(), version.into());
    obj.insert("valid_from".into(), from.to_rfc3339().into());
    obj.insert("valid_to".into(), serde_json::Value::Null);
    // The rules are valid again, without end, for as long as the re-issued set is.
    if let Some(rules) = obj.get_mut("rules").and_then(|r| r.as_array_mut()) {
        for rule in rules.iter_mut().filter_map(|r| r.as_object_mut()) {
            rule.insert("ValidTo".into(), serde_json::Value::Null);
        }
    }
    let out = serde_json::to_string_pretty(&v).map_err(RuleSetError::Json)?;
    RuleSet::from_json(&out)?;
    Ok(out)
}
