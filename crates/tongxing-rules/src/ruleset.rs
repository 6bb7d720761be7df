//! The rule-set format, its validation and the decision. See the crate documentation for the
//! design; this module is the implementation.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tongxing_certlogic::{Expr, Limits, validate};
use tongxing_domain::decision::Lang;
use tongxing_domain::facts::Facts;
use tongxing_domain::{ReasonCode, Verdict, text};

use crate::document::{Document, Needs};
use crate::fast::{self, FNode};

/// A validated, compiled entry policy: rules in CertLogic plus value sets.
#[derive(Debug)]
pub struct RuleSet {
    /// Distinguishes rule sets in the per-thread document cache.
    uid: u64,
    id: String,
    version: String,
    name_zh: String,
    name_en: String,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    value_sets: Map<String, Value>,
    external_value_sets: Value,
    /// The document fields the rules read: all that [`RuleSet::decide`] fills in.
    needs: Needs,
    rules: Vec<Rule>,
    /// (Identifier, Version) of every rule, in order.
    versions: Vec<(String, String)>,
    otherwise: Outcome,
    otherwise_zh: String,
    otherwise_en: String,
}

/// One compiled rule of a [`RuleSet`].
#[derive(Debug)]
pub struct Rule {
    identifier: String,
    version: String,
    certificate_type: String,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    description_zh: String,
    description_en: String,
    affected_fields: Vec<String>,
    logic: Expr,
    /// The Logic compiled for the fast path, if it stays within what that handles.
    fast: Option<FNode>,
    on_pass: Option<Outcome>,
    on_fail: Option<Outcome>,
    /// The rule exactly as the rule-set file has it (for DCC rule folders).
    json: Value,
}

/// What a rule's result means for the decision.
#[derive(Debug)]
pub struct Outcome {
    /// `None`: a note, added to the reasons without deciding anything.
    pub verdict: Option<Verdict>,
    pub reason: ReasonCode,
    /// CertLogic giving the sample the reason is about, as `"lab/sample_id"`; any other result
    /// means none.
    sample: Option<Expr>,
    fast_sample: Option<FNode>,
    pub records_commuter_first_check: bool,
}

/// The result of [`RuleSet::decide`]. Borrows its texts from the rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesDecision<'r> {
    pub verdict: Verdict,
    /// The deciding reason first, then the notes, in rule order.
    pub reasons: Vec<RuleReason<'r>>,
    /// Identifier and version of every rule evaluated for this decision, in order: a prefix of
    /// the rule set's rules, ending with the deciding rule (all rules when the rule set's
    /// `otherwise` decided).
    pub rule_versions: &'r [(String, String)],
    /// The check is a certified commuter's first pass: the store records it.
    pub records_commuter_first_check: bool,
    /// Rules that failed to evaluate (and so counted as not passed). Empty for a sound rule set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RuleEvalError<'r>>,
}

/// One reason of a [`RulesDecision`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReason<'r> {
    pub code: ReasonCode,
    /// The rule whose result gave this reason; `None` for the rule set's `otherwise`.
    pub rule: Option<&'r str>,
    /// Whether that rule passed (grants) or failed (denials and notes).
    pub rule_passed: bool,
    pub description_zh: &'r str,
    pub description_en: &'r str,
    /// The sample the reason is about, as `"lab/sample_id"`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
}

impl RuleReason<'_> {
    pub fn description(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => self.description_zh,
            Lang::En => self.description_en,
        }
    }
}

/// A rule whose Logic failed to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvalError<'r> {
    pub rule: &'r str,
    pub message: String,
}

/// Why a rule set was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleSetError {
    #[error("the rule set is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("rule set field {field}: {reason}")]
    Field { field: String, reason: String },
    #[error("rule {identifier}: {reason}")]
    Rule { identifier: String, reason: String },
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> RuleSetError {
    RuleSetError::Field { field: field.into(), reason: reason.into() }
}

// ---- The file format ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    id: String,
    version: String,
    name_zh: String,
    name_en: String,
    valid_from: String,
    #[serde(default)]
    valid_to: Option<String>,
    value_sets: Map<String, Value>,
    rules: Vec<Value>,
    otherwise: OtherwiseFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RuleFile {
    identifier: String,
    #[serde(rename = "Type")]
    rule_type: String,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    region: Option<String>,
    version: String,
    schema_version: String,
    engine: String,
    engine_version: String,
    certificate_type: String,
    description: Vec<DescriptionFile>,
    valid_from: String,
    #[serde(default)]
    valid_to: Option<String>,
    affected_fields: Vec<String>,
    logic: Value,
    #[serde(default)]
    on_pass: Option<OutcomeFile>,
    #[serde(default)]
    on_fail: Option<OutcomeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescriptionFile {
    lang: String,
    desc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct OutcomeFile {
    #[serde(default)]
    verdict: Option<String>,
    reason: String,
    #[serde(default)]
    sample: Option<Value>,
    #[serde(default)]
    records_commuter_first_check: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct OtherwiseFile {
    verdict: String,
    reason: String,
    description: Vec<DescriptionFile>,
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Facts documents kept per thread and rule set (by uid), refilled for every decision.
    static DOCUMENTS: RefCell<Vec<(u64, Document)>> = const { RefCell::new(Vec::new()) };
}

/// How many rule sets' documents a thread keeps.
const CACHED_DOCUMENTS: usize = 8;

impl RuleSet {
    /// Parses and validates a rule set, and compiles its CertLogic once. Every problem names the
    /// field or the rule (by `Identifier`) and says what is wrong.
    pub fn from_json(text: &str) -> Result<RuleSet, RuleSetError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let file: PolicyFile = match serde_path_to_error::deserialize(&mut de) {
            Ok(file) => file,
            Err(e) if e.inner().is_data() => {
                let (field, reason) = text::serde_refusal(&e.path().to_string(), &e.inner().to_string());
                return Err(field_error(field, reason));
            }
            Err(e) => return Err(RuleSetError::Json(e.into_inner())),
        };
        de.end()?;
        text::PolicyId::parse(&file.id).map_err(|e| field_error("id", e.to_string()))?;
        if !file.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(field_error(
                "id",
                format!("{} is not a lower-case identifier (a-z, 0-9, -)", text::quote(&file.id)),
            ));
        }
        text::PolicyVersion::parse(&file.version).map_err(|e| field_error("version", e.to_string()))?;
        for (field, value) in [("name_zh", &file.name_zh), ("name_en", &file.name_en)] {
            text::PolicyName::parse(value).map_err(|e| field_error(field, e.to_string()))?;
        }
        let valid_from = parse_time(&file.valid_from).map_err(|e| field_error("valid_from", e))?;
        let valid_to = match &file.valid_to {
            Some(s) => Some(parse_time(s).map_err(|e| field_error("valid_to", e))?),
            None => None,
        };
        if valid_to.is_some_and(|to| to <= valid_from) {
            return Err(field_error("valid_to", "must be after valid_from"));
        }

        let mut external = Map::new();
        for (id, set) in &file.value_sets {
            let field = || format!("value_sets.{id}");
            if id.is_empty() || id.contains('.') {
                return Err(field_error(field(), "a value-set id must be non-empty and contain no '.'"));
            }
            let Value::Object(entries) = set else {
                return Err(field_error(field(), "must be an object of code → details"));
            };
            if entries.is_empty() {
                return Err(field_error(field(), "must have at least one code"));
            }
            for (code, details) in entries {
                if code.is_empty() {
                    return Err(field_error(field(), "codes must not be empty"));
                }
                if !details.is_object() {
                    return Err(field_error(format!("{}.{code}", field()), "details must be an object"));
                }
            }
            external.insert(id.clone(), Value::Array(value_set_codes(entries)));
        }

        if file.rules.is_empty() {
            return Err(field_error("rules", "a rule set needs at least one rule"));
        }
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        for (n, json) in file.rules.iter().enumerate() {
            let rule = Rule::from_json(json, n, &file.value_sets, valid_from, valid_to)?;
            if !seen.insert(rule.identifier.clone()) {
                return Err(RuleSetError::Rule {
                    identifier: rule.identifier,
                    reason: "the Identifier appears more than once in the rule set".into(),
                });
            }
            rules.push(rule);
        }

        let mut needs = Needs::none();
        for json in &file.rules {
            let mut paths = Vec::new();
            data_vars(&json["Logic"], false, &mut paths);
            for outcome in ["OnPass", "OnFail"] {
                data_vars(&json[outcome]["Sample"], false, &mut paths);
            }
            paths.into_iter().for_each(|p| needs.add(p));
        }

        let external_value_sets = Value::Object(external);
        check_budget(&rules, &file.value_sets, &external_value_sets, valid_from)?;

        let o = &file.otherwise;
        let verdict = parse_verdict(&o.verdict).map_err(|e| field_error("otherwise.Verdict", e))?;
        let reason = parse_reason(&o.reason).map_err(|e| field_error("otherwise.Reason", e))?;
        let (otherwise_zh, otherwise_en) =
            descriptions(&o.description).map_err(|e| field_error("otherwise.Description", e))?;

        Ok(RuleSet {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            id: file.id,
            version: file.version,
            name_zh: file.name_zh,
            name_en: file.name_en,
            valid_from,
            valid_to,
            value_sets: file.value_sets,
            external_value_sets,
            needs,
            versions: rules.iter().map(|r| (r.identifier.clone(), r.version.clone())).collect(),
            rules,
            otherwise: Outcome {
                verdict: Some(verdict),
                reason,
                sample: None,
                fast_sample: None,
                records_commuter_first_check: false,
            },
            otherwise_zh,
            otherwise_en,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.name_zh,
            Lang::En => &self.name_en,
        }
    }
    pub fn valid_from(&self) -> DateTime<Utc> {
        self.valid_from
    }
    pub fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.valid_to
    }
    /// Whether the rule set is the one to apply at `at`: `valid_from <= at < valid_to`.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.valid_from && self.valid_to.is_none_or(|to| at < to)
    }
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    /// A value set as the file has it: code → details.
    pub fn value_set(&self, id: &str) -> Option<&Map<String, Value>> {
        self.value_sets.get(id).and_then(Value::as_object)
    }
    /// The value sets as the rules see them in `external.valueSets`: id → sorted array of codes.
    pub fn external_value_sets(&self) -> &Value {
        &self.external_value_sets
    }
    /// The details of the designated test point (value set `designated-test-points`) on a road,
    /// e.g. to tell a person at a checkpoint where to get tested.
    pub fn test_point_on_road(&self, road: &str) -> Option<(&str, &Map<String, Value>)> {
        self.value_set("designated-test-points")?.iter().find_map(|(code, details)| {
            let details = details.as_object()?;
            (details.get("road")?.as_str()? == road).then_some((code.as_str(), details))
        })
    }

    /// The facts document of a check under this rule set (its value sets in `external`).
    pub fn facts_document(&self, facts: &Facts, at: DateTime<Utc>) -> Value {
        crate::document::facts_document(facts, at, &self.external_value_sets)
    }

    /// Decides whether the person may enter at `at`, by the rules of this set.
    ///
    /// Rules run on the fast path where they can (see the crate documentation), reading the
    /// facts directly; any rule it cannot handle is evaluated by the CertLogic engine on the
    /// facts document, which is then filled (once per decision) in a buffer kept per thread.
    /// The result is always the same as [`RuleSet::decide_reference`]'s.
    pub fn decide(&self, facts: &Facts, at: DateTime<Utc>) -> RulesDecision<'_> {
        let ctx = fast::Ctx::new(facts, at);
        self.run(&mut FastEval { ctx, doc: LazyDocument { set: self, facts, at, filled: false } })
    }

    /// The same decision as [`RuleSet::decide`], with every rule evaluated by the CertLogic
    /// engine (the reference) on the facts document.
    pub fn decide_reference(&self, facts: &Facts, at: DateTime<Utc>) -> RulesDecision<'_> {
        let mut doc = LazyDocument { set: self, facts, at, filled: false };
        doc.with(|doc| self.decide_document(doc))
    }

    /// Decides on a facts document made elsewhere (see [`crate::facts_document`]), with the
    /// CertLogic engine.
    pub fn decide_document(&self, doc: &Value) -> RulesDecision<'_> {
        self.run(&mut ReferenceEval(doc))
    }

    /// Checks that the fast path agrees with the CertLogic engine on every rule (Logic and
    /// Sample) for these facts; for tests. Returns the disagreements.
    #[doc(hidden)]
    pub fn fast_path_disagreements(&self, facts: &Facts, at: DateTime<Utc>) -> Vec<String> {
        let ctx = fast::Ctx::new(facts, at);
        let doc = self.facts_document(facts, at);
        let mut out = Vec::new();
        for rule in &self.rules {
            if let Some(f) = &rule.fast {
                let reference = rule.logic.evaluate_truthy(&doc);
                // Giving up is right only where the reference fails to evaluate.
                match (f.truthy(&ctx), &reference) {
                    (Ok(a), Ok(b)) if a == *b => {}
                    (Err(_), Err(_)) => {}
                    (a, b) => out.push(format!("{}: fast {a:?}, reference {b:?}", rule.identifier)),
                }
            }
            for o in [&rule.on_pass, &rule.on_fail].into_iter().flatten() {
                if let (Some(f), Some(e)) = (&o.fast_sample, &o.sample) {
                    let reference = e.evaluate(&doc);
                    match (f.string(&ctx), &reference) {
                        (Ok(Some(a)), Ok(Value::String(b))) if a == *b => {}
                        (Ok(None), Ok(v)) if !v.is_string() => {}
                        (Err(_), Err(_)) => {}
                        (a, b) => out.push(format!("{} sample: fast {a:?}, reference {b:?}", rule.identifier)),
                    }
                }
            }
        }
        out
    }

    /// The decision list (see the crate documentation), with rules evaluated by `eval`.
    fn run<'r>(&'r self, eval: &mut impl Evaluate<'r>) -> RulesDecision<'r> {
        let mut notes = Vec::new();
        let mut errors = Vec::new();
        let mut evaluated = self.rules.len();
        let mut decided = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let passed = match eval.logic(rule) {
                Ok(passed) => passed,
                Err(message) => {
                    errors.push(RuleEvalError { rule: &rule.identifier, message });
                    false
                }
            };
            let Some(outcome) = (if passed { &rule.on_pass } else { &rule.on_fail }) else {
                continue;
            };
            let reason = RuleReason {
                code: outcome.reason,
                rule: Some(&rule.identifier),
                rule_passed: passed,
                description_zh: &rule.description_zh,
                description_en: &rule.description_en,
                sample: eval.sample(outcome),
            };
            match outcome.verdict {
                None => notes.push(reason),
                Some(verdict) => {
                    decided = Some((verdict, reason, outcome.records_commuter_first_check));
                    evaluated = i + 1;
                    break;
                }
            }
        }
        let (verdict, first, records_commuter_first_check) = decided.unwrap_or_else(|| {
            let reason = RuleReason {
                code: self.otherwise.reason,
                rule: None,
                rule_passed: false,
                description_zh: &self.otherwise_zh,
                description_en: &self.otherwise_en,
                sample: None,
            };
            (self.otherwise.verdict.unwrap_or(Verdict::Deny), reason, false)
        });
        let mut reasons = Vec::with_capacity(1 + notes.len());
        reasons.push(first);
        reasons.append(&mut notes);
        RulesDecision {
            verdict,
            reasons,
            rule_versions: &self.versions[..evaluated],
            records_commuter_first_check,
            errors,
        }
    }
}

/// How [`RuleSet::run`] evaluates a rule's Logic and an outcome's Sample.
trait Evaluate<'r> {
    /// Whether the rule passes; an error message when it fails to evaluate.
    fn logic(&mut self, rule: &'r Rule) -> Result<bool, String>;
    fn sample(&mut self, outcome: &'r Outcome) -> Option<String>;
}

/// The CertLogic engine on a facts document.
struct ReferenceEval<'d>(&'d Value);

impl<'r> Evaluate<'r> for ReferenceEval<'_> {
    fn logic(&mut self, rule: &'r Rule) -> Result<bool, String> {
        rule.logic.evaluate_truthy(self.0).map_err(|e| e.to_string())
    }
    fn sample(&mut self, outcome: &'r Outcome) -> Option<String> {
        outcome.sample(self.0)
    }
}

/// The per-thread facts document of a rule set, filled on first use.
struct LazyDocument<'a> {
    set: &'a RuleSet,
    facts: &'a Facts,
    at: DateTime<Utc>,
    filled: bool,
}

impl LazyDocument<'_> {
    fn with<T>(&mut self, f: impl FnOnce(&Value) -> T) -> T {
        DOCUMENTS.with(|cell| {
            let mut docs = cell.borrow_mut();
            let set = self.set;
            let i = match docs.iter().position(|(uid, _)| *uid == set.uid) {
                Some(i) => i,
                None => {
                    if docs.len() >= CACHED_DOCUMENTS {
                        docs.remove(0);
                    }
                    docs.push((set.uid, Document::new(set.external_value_sets.clone(), &set.needs)));
                    docs.len() - 1
                }
            };
            let doc = &mut docs[i].1;
            if !self.filled {
                doc.fill(self.facts, self.at);
                self.filled = true;
            }
            f(&doc.root)
        })
    }
}

/// The fast path, falling back to the CertLogic engine rule by rule.
struct FastEval<'a> {
    ctx: fast::Ctx<'a>,
    doc: LazyDocument<'a>,
}

impl<'r> Evaluate<'r> for FastEval<'_> {
    fn logic(&mut self, rule: &'r Rule) -> Result<bool, String> {
        if let Some(f) = &rule.fast
            && let Ok(passed) = f.truthy(&self.ctx)
        {
            return Ok(passed);
        }
        self.doc.with(|doc| rule.logic.evaluate_truthy(doc).map_err(|e| e.to_string()))
    }
    fn sample(&mut self, outcome: &'r Outcome) -> Option<String> {
        if let Some(f) = &outcome.fast_sample
            && let Ok(s) = f.string(&self.ctx)
        {
            return s;
        }
        outcome.sample.as_ref()?;
        self.doc.with(|doc| outcome.sample(doc))
    }
}

impl Outcome {
    fn sample(&self, doc: &Value) -> Option<String> {
        match self.sample.as_ref()?.evaluate(doc) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        }
    }
    /// The CertLogic expression that gives the reason's sample, if any.
    pub fn sample_expr(&self) -> Option<&Expr> {
        self.sample.as_ref()
    }
}

impl Rule {
    fn from_json(
        json: &Value,
        n: usize,
        value_sets: &Map<String, Value>,
        set_from: DateTime<Utc>,
        set_to: Option<DateTime<Utc>>,
    ) -> Result<Rule, RuleSetError> {
        let named = json.get("Identifier").and_then(Value::as_str).map(str::to_owned);
        let identifier = named.clone().unwrap_or_else(|| format!("#{} (no Identifier)", n + 1));
        let err = |reason: String| RuleSetError::Rule { identifier: identifier.clone(), reason };
        let file: RuleFile =
            serde_json::from_value(json.clone()).map_err(|e| err(format!("not a rule of the expected shape: {e}")))?;

        if !is_identifier(&file.identifier) {
            return Err(err(format!(
                "Identifier {} is not of the form AA-NAME-0000 (two capital letters, a capitalised name, four digits)",
                text::quote(&file.identifier)
            )));
        }
        if file.rule_type != "Acceptance" {
            return Err(err(format!(
                "Type {} is not supported: only \"Acceptance\" rules are",
                text::quote(&file.rule_type)
            )));
        }
        if file.country.as_deref().is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(err("Country must be an ISO 3166 alpha-2 code".into()));
        }
        if file.region.as_deref().is_some_and(str::is_empty) {
            return Err(err("Region must not be empty when present".into()));
        }
        for (field, v) in [
            ("Version", &file.version),
            ("SchemaVersion", &file.schema_version),
            ("EngineVersion", &file.engine_version),
        ] {
            if semver(v).is_none() {
                return Err(err(format!("{field} {} is not a version of the form 1.2.3", text::quote(v))));
            }
        }
        if file.engine != "CERTLOGIC" {
            return Err(err(format!("Engine {} is not supported: only \"CERTLOGIC\" is", text::quote(&file.engine))));
        }
        match semver(&file.engine_version) {
            Some((1, minor, _)) if minor <= 3 => {}
            Some((0, _, _)) => {}
            _ => {
                return Err(err(format!(
                    "EngineVersion {} is newer than CertLogic 1.3, which this engine implements",
                    file.engine_version
                )));
            }
        }
        if semver(&file.schema_version).is_none_or(|(major, _, _)| major != 1) {
            return Err(err(format!("SchemaVersion {} is not supported: 1.x.y is", file.schema_version)));
        }
        if !["General", "Test", "Vaccination", "Recovery"].contains(&file.certificate_type.as_str()) {
            return Err(err(format!(
                "CertificateType {} is not one of General, Test, Vaccination, Recovery",
                text::quote(&file.certificate_type)
            )));
        }
        let (description_zh, description_en) =
            descriptions(&file.description).map_err(|e| err(format!("Description {e}")))?;
        let valid_from = parse_time(&file.valid_from).map_err(|e| err(format!("ValidFrom {e}")))?;
        let valid_to = match &file.valid_to {
            Some(s) => Some(parse_time(s).map_err(|e| err(format!("ValidTo {e}")))?),
            None => None,
        };
        if valid_to.is_some_and(|to| to <= valid_from) {
            return Err(err("ValidTo must be after ValidFrom".into()));
        }
        // A rule may not lapse while its rule set is in force: decisions apply every rule.
        let covers_end = match (valid_to, set_to) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(rule_to), Some(set_to)) => rule_to >= set_to,
        };
        if valid_from > set_from || !covers_end {
            return Err(err("ValidFrom..ValidTo must cover the rule set's valid_from..valid_to".into()));
        }

        // Fields: everything the Logic reads must be a facts-document field listed in AffectedFields.
        if file.affected_fields.is_empty() {
            return Err(err("AffectedFields must list the facts-document fields the Logic reads".into()));
        }
        for f in &file.affected_fields {
            if !known_field(f, value_sets) {
                return Err(err(format!(
                    "AffectedFields names {}, which is not a field of the facts document (see FACTS.md) \
                     or names a value set the rule set does not have",
                    text::quote(f)
                )));
            }
        }
        // Sample expressions are Tongxing's, not the Logic: their reads need not be listed.
        let check_reads = |what: &str, logic: &Value| -> Result<(), RuleSetError> {
            let listed = what == "Logic";
            let mut paths = Vec::new();
            data_vars(logic, false, &mut paths);
            for p in paths {
                if !known_field(p, value_sets) {
                    return Err(err(format!(
                        "{what} reads {}, which is not a field of the facts document (see FACTS.md) \
                         or names a value set the rule set does not have",
                        text::quote(p)
                    )));
                }
                if listed && !file.affected_fields.iter().any(|f| covers(f, p)) {
                    return Err(err(format!("{what} reads {}, which AffectedFields does not list", text::quote(p))));
                }
            }
            Ok(())
        };
        let compile = |what: &str, logic: &Value| -> Result<Expr, RuleSetError> {
            let issues = validate(logic);
            if !issues.is_empty() {
                let list: Vec<String> =
                    issues
                        .iter()
                        .map(|i| {
                            if i.path.is_empty() { i.message.clone() } else { format!("at {}: {}", i.path, i.message) }
                        })
                        .collect();
                return Err(err(format!("{what} is not valid CertLogic 1.3: {}", list.join("; "))));
            }
            check_reads(what, logic)?;
            Expr::compile(logic).map_err(|e| err(format!("{what}: {e}")))
        };
        let logic = compile("Logic", &file.logic)?;

        let outcome = |which: &str, o: &Option<OutcomeFile>| -> Result<Option<Outcome>, RuleSetError> {
            let Some(o) = o else { return Ok(None) };
            let verdict = match &o.verdict {
                Some(v) => Some(parse_verdict(v).map_err(|e| err(format!("{which}.Verdict {e}")))?),
                None => None,
            };
            let reason = parse_reason(&o.reason).map_err(|e| err(format!("{which}.Reason {e}")))?;
            let sample = match &o.sample {
                Some(s) => Some(compile(&format!("{which}.Sample"), s)?),
                None => None,
            };
            let fast_sample = o.sample.as_ref().and_then(|s| FNode::compile(s, value_sets));
            if o.records_commuter_first_check && verdict != Some(Verdict::Pass) {
                return Err(err(format!("{which}.RecordsCommuterFirstCheck needs Verdict \"pass\"")));
            }
            Ok(Some(Outcome {
                verdict,
                reason,
                sample,
                fast_sample,
                records_commuter_first_check: o.records_commuter_first_check,
            }))
        };
        let on_pass = outcome("OnPass", &file.on_pass)?;
        let on_fail = outcome("OnFail", &file.on_fail)?;
        if on_pass.is_none() && on_fail.is_none() {
            return Err(err("the rule has neither OnPass nor OnFail, so it could never matter".into()));
        }

        Ok(Rule {
            identifier: file.identifier,
            version: file.version,
            certificate_type: file.certificate_type,
            valid_from,
            valid_to,
            description_zh,
            description_en,
            affected_fields: file.affected_fields,
            fast: FNode::compile(&file.logic, value_sets),
            logic,
            on_pass,
            on_fail,
            json: json.clone(),
        })
    }

    pub fn identifier(&self) -> &str {
        &self.identifier
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn certificate_type(&self) -> &str {
        &self.certificate_type
    }
    pub fn valid_from(&self) -> DateTime<Utc> {
        self.valid_from
    }
    pub fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.valid_to
    }
    pub fn description(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.description_zh,
            Lang::En => &self.description_en,
        }
    }
    pub fn affected_fields(&self) -> &[String] {
        &self.affected_fields
    }
    pub fn logic(&self) -> &Expr {
        &self.logic
    }
    /// Whether the Logic and the outcomes' Samples all run on the fast path (see the crate
    /// documentation); otherwise the CertLogic engine evaluates them on the facts document.
    pub fn on_fast_path(&self) -> bool {
        self.fast.is_some()
            && [&self.on_pass, &self.on_fail]
                .into_iter()
                .flatten()
                .all(|o| o.sample.is_none() || o.fast_sample.is_some())
    }
    pub fn on_pass(&self) -> Option<&Outcome> {
        self.on_pass.as_ref()
    }
    pub fn on_fail(&self) -> Option<&Outcome> {
        self.on_fail.as_ref()
    }
    /// The rule exactly as the rule-set file has it: the `rule.json` of a DCC rule folder.
    pub fn json(&self) -> &Value {
        &self.json
    }
}

/// Refuses a rule that goes past the evaluation budget on a representative check, alone or with
/// the rules before it (see [`crate::budget`]).
fn check_budget(
    rules: &[Rule],
    value_sets: &Map<String, Value>,
    external: &Value,
    from: DateTime<Utc>,
) -> Result<(), RuleSetError> {
    use crate::budget::{RULE_SET_STEPS, representative_checks};
    for (check, facts, at) in representative_checks(from, value_sets) {
        let doc = crate::document::facts_document(&facts, at, external);
        let mut total: u64 = 0;
        for rule in rules {
            let samples = [("OnPass.Sample", &rule.on_pass), ("OnFail.Sample", &rule.on_fail)]
                .into_iter()
                .filter_map(|(what, o)| Some((what, o.as_ref()?.sample.as_ref()?)));
            for (what, expr) in std::iter::once(("Logic", &rule.logic)).chain(samples) {
                let (result, usage) = expr.evaluate_with(&doc, &Limits::DEFAULT);
                let refuse = |reason: String| RuleSetError::Rule { identifier: rule.identifier.clone(), reason };
                if let Err(e) = result
                    && e.is_budget()
                {
                    return Err(refuse(format!(
                        "{what} goes past the evaluation budget on a representative check ({check}), so it would fail \
                         to evaluate on real checks: {e}"
                    )));
                }
                total = total.saturating_add(usage.steps);
                if total > RULE_SET_STEPS {
                    return Err(refuse(format!(
                        "{what} takes {} steps on a representative check ({check}), which brings the rules up to it \
                         to {total} steps, more than the {RULE_SET_STEPS} a rule set may take for one check: \
                         make the rules fold less data",
                        usage.steps
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A value set as rules see it: its codes, sorted (whatever the order of the file or of the JSON
/// map), as the array `external.valueSets.<id>`.
pub(crate) fn value_set_codes(entries: &Map<String, Value>) -> Vec<Value> {
    let mut codes: Vec<&String> = entries.keys().collect();
    codes.sort();
    codes.into_iter().cloned().map(Value::String).collect()
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{} is not an RFC 3339 date-time: {e}", text::quote(s)))
}

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    Verdict::parse(s).ok_or_else(|| format!("{} is not one of pass, conditional, deny", text::quote(s)))
}

fn parse_reason(s: &str) -> Result<ReasonCode, String> {
    ReasonCode::parse(s).ok_or_else(|| {
        let all: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        format!("{} is not a reason code; the codes are: {}", text::quote(s), all.join(", "))
    })
}

fn descriptions(list: &[DescriptionFile]) -> Result<(String, String), String> {
    let get = |lang: &str| {
        list.iter()
            .find(|d| d.lang == lang)
            .map(|d| text::RuleDescription::parse(&d.desc).map(text::RuleDescription::into_string))
            .ok_or_else(|| format!("needs a non-empty {{\"lang\": \"{lang}\", \"desc\": …}} entry"))?
            .map_err(|e| format!("({lang}) {e}"))
    };
    Ok((get("zh")?, get("en")?))
}

fn semver(s: &str) -> Option<(u64, u64, u64)> {
    let mut parts = s.split('.').map(|p| {
        if p.is_empty() || (p.len() > 1 && p.starts_with('0')) || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse().ok()
        }
    });
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

/// `AA-NAME-0000`, as in the DCC's `GR-EU-0001` or `TR-NL-0002`.
fn is_identifier(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [prefix, name, number]
        if prefix.len() == 2 && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && number.len() == 4 && number.bytes().all(|b| b.is_ascii_digit()))
}

const SAMPLE_FIELDS: &[&str] = &["lab", "ref", "result", "sampleId", "sampledAt", "site", "siteKind"];

/// Whether `path` is a field of the facts document (FACTS.md) for a rule set with these value sets.
fn known_field(path: &str, value_sets: &Map<String, Value>) -> bool {
    let segments: Vec<&str> = path.split('.').collect();
    let sample = |rest: &[&str]| match rest {
        [] => true,
        [field] => SAMPLE_FIELDS.contains(field),
        _ => false,
    };
    let index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match segments.as_slice() {
        ["payload" | "external"] => true,
        ["payload", "known" | "codeColour" | "commitmentLetter" | "code" | "commuter"] => true,
        ["payload", "code", "colour" | "expiresAt"] => true,
        ["payload", "commuter", "status" | "validUntil" | "firstCheckedAt" | "inForce" | "firstCheckDone"] => true,
        ["payload", "latestDefinitive" | "latestNegative", rest @ ..] => sample(rest),
        ["payload", "pending" | "samples"] => true,
        ["payload", "pending" | "samples", i, rest @ ..] => index(i) && sample(rest),
        ["external", "validationClock" | "checkpoint" | "valueSets"] => true,
        ["external", "checkpoint", "id" | "road"] => true,
        ["external", "valueSets", id] => value_sets.contains_key(*id),
        ["external", "valueSets", id, i] => value_sets.contains_key(*id) && index(i),
        _ => false,
    }
}

/// Whether an AffectedFields entry covers a path the Logic reads: the same path or a prefix of it.
fn covers(field: &str, path: &str) -> bool {
    path == field || path.strip_prefix(field).is_some_and(|rest| rest.starts_with('.'))
}

/// Collects the data paths a CertLogic expression reads; paths inside a `reduce` lambda read
/// `current` and `accumulator`, not the data, and are skipped.
fn data_vars<'v>(logic: &'v Value, in_lambda: bool, out: &mut Vec<&'v str>) {
    match logic {
        Value::Array(items) => items.iter().for_each(|i| data_vars(i, in_lambda, out)),
        Value::Object(map) => {
            for (op, args) in map {
                match (op.as_str(), args) {
                    ("var", Value::String(path)) => {
                        if !in_lambda {
                            out.push(path);
                        }
                    }
                    ("reduce", Value::Array(args)) if args.len() == 3 => {
                        data_vars(&args[0], in_lambda, out);
                        data_vars(&args[1], true, out);
                        data_vars(&args[2], in_lambda, out);
                    }
                    (_, args) => data_vars(args, in_lambda, out),
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert!(is_identifier("BJ-NAT-0001"));
        assert!(is_identifier("GR-EU0-0001"));
        assert!(!is_identifier("bj-NAT-0001"));
        assert!(!is_identifier("BJ-NAT-001"));
        assert!(!is_identifier("BJ-0001"));
        assert_eq!(semver("1.3.0"), Some((1, 3, 0)));
        assert_eq!(semver("1.03.0"), None);
        assert_eq!(semver("1.3"), None);
        assert!(covers("payload.pending", "payload.pending.0.site"));
        assert!(!covers("payload.pending", "payload.pendingX"));
        let sets: Map<String, Value> = serde_json::from_str(r#"{"a": {"x": {}}}"#).unwrap();
        assert!(known_field("external.valueSets.a", &sets));
        assert!(!known_field("external.valueSets.b", &sets));
        assert!(known_field("payload.samples.3.sampledAt", &sets));
        assert!(!known_field("payload.samples.x", &sets));
        assert!(!known_field("payload.colour", &sets));
        assert!(!known_field("", &sets));
    }
}
