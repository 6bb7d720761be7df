//! The DCC rule folders of the built-in rule sets: `policies/tests/<policy-id>/<RULE-ID>/rule.json`
//! and `…/tests/NN.json`, made from the policy files and the cases below.
//!
//! The folders are generated, and this test checks that they are in sync: `rule.json` must be the
//! rule as the policy file has it, and every case file must be what the table below gives.
//! Regenerate them after changing a policy or a case with
//! `TONGXING_REGENERATE_DCC=1 cargo test -p tongxing-rules --test dcc_folders`.
//! Then the CertLogic engine's rule-folder runner runs every case, and must find no failure.
//!
//! The expected results are written by hand, one case at a time, from what the rule means; they
//! are not computed by any rule.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tongxing_domain::facts::*;
use tongxing_rules::RuleSet;

fn at(policy: &RuleSet) -> DateTime<Utc> {
    policy.valid_from() + Duration::days(10) + Duration::hours(8)
}

/// A person at a check: the builder the cases use.
#[derive(Clone)]
struct P {
    facts: Facts,
    at: DateTime<Utc>,
}

impl P {
    fn new(at: DateTime<Utc>) -> P {
        P {
            facts: Facts {
                person: PersonFacts {
                    known: true,
                    code: None,
                    commuter: None,
                    samples: vec![],
                    commitment_letter: false,
                },
                checkpoint: CheckpointFacts { id: "CP-G1-XIANGHE".into(), road: Some("京哈高速".into()) },
            },
            at,
        }
    }
    fn sample(mut self, id: &str, age: Duration, kind: SiteKind, site: &str, result: TestResult) -> P {
        self.facts.person.samples.push(SampleFact {
            lab: "LAB1".into(),
            sample_id: id.into(),
            sampled_at: self.at - age,
            site: site.into(),
            site_kind: kind,
            result,
        });
        self
    }
    fn negative(self, age: Duration) -> P {
        self.sample("N1", age, SiteKind::Hospital, "H-110101-001", TestResult::Negative)
    }
    fn positive(self, age: Duration) -> P {
        self.sample("P1", age, SiteKind::Hospital, "H-110101-001", TestResult::Positive)
    }
    fn pending_sa(self, age: Duration, site: &str) -> P {
        self.sample("SA1", age, SiteKind::ServiceArea, site, TestResult::Pending)
    }
    fn code(mut self, colour: CodeColour, expires_in: Option<Duration>) -> P {
        let expires_at = expires_in.map(|d| self.at + d);
        self.facts.person.code = Some(CodeFacts { colour, reason: Some("弹窗".into()), expires_at });
        self
    }
    fn commuter(mut self, status: CommuterStatus, first_check: Option<Duration>) -> P {
        let first_checked_at = first_check.map(|d| self.at - d);
        self.facts.person.commuter =
            Some(CommuterFacts { status, valid_until: Some(self.at + Duration::days(90)), first_checked_at });
        self
    }
    /// A certified commuter after the first check (5 days ago).
    fn certified(self) -> P {
        self.commuter(CommuterStatus::Approved, Some(Duration::days(5)))
    }
    /// A certified commuter before the first check.
    fn first_check(self) -> P {
        self.commuter(CommuterStatus::Approved, None)
    }
    fn valid_until(mut self, d: Duration) -> P {
        let at = self.at;
        self.facts.person.commuter.as_mut().unwrap().valid_until = Some(at + d);
        self
    }
    fn letter(mut self) -> P {
        self.facts.person.commitment_letter = true;
        self
    }
}

fn h(n: i64) -> Duration {
    Duration::hours(n)
}
fn d(n: i64) -> Duration {
    Duration::days(n)
}
fn s1() -> Duration {
    Duration::seconds(1)
}

const XIANGHE: &str = "SA-JINGHA-XIANGHE";

/// The cases of a rule, by its identifier and version.
fn cases(rule: &str, version: &str, t: DateTime<Utc>) -> Vec<(String, P, bool)> {
    let p = || P::new(t);
    // The commuter window of the rule's version.
    let days = if version == "1.1.0" { 7 } else { 14 };
    let c = |name: &str, p: P, expected: bool| (name.to_owned(), p, expected);
    match (rule, version) {
        ("BJ-CODE-0001", _) => vec![
            c("no code set: green", p(), true),
            c("red code in force", p().code(CodeColour::Red, None), false),
            c("red code until tomorrow", p().code(CodeColour::Red, Some(d(1))), false),
            c("red code lapsed an hour ago", p().code(CodeColour::Red, Some(-h(1))), true),
            c("yellow code", p().code(CodeColour::Yellow, None), true),
        ],
        ("BJ-CODE-0002", _) => vec![
            c("no code set: green", p(), true),
            c("green code", p().code(CodeColour::Green, None), true),
            c("yellow code in force", p().code(CodeColour::Yellow, None), false),
            c("yellow code lapsing exactly now", p().code(CodeColour::Yellow, Some(Duration::zero())), true),
            c("yellow code lapsing in a second", p().code(CodeColour::Yellow, Some(s1())), false),
            c("red code", p().code(CodeColour::Red, None), false),
        ],
        ("BJ-NAT-0001", _) => vec![
            c("no sample", p(), true),
            c("negative 10 h ago", p().negative(h(10)), true),
            c("positive 10 h ago", p().positive(h(10)), false),
            c("positive 30 h ago, negative 10 h ago", p().positive(h(30)).negative(h(10)), true),
            c("negative 30 h ago, positive 10 h ago", p().negative(h(30)).positive(h(10)), false),
            c("negative and positive sampled at the same time", p().negative(h(10)).positive(h(10)), false),
            c("positive sampled after the check time", p().negative(h(10)).positive(-h(1)), true),
        ],
        ("BJ-COM-0001", _) => vec![
            c("not a commuter", p(), true),
            c("certified commuter", p().certified(), true),
            c("certification suspended", p().commuter(CommuterStatus::Suspended, None), false),
            c("application pending", p().commuter(CommuterStatus::Pending, None), false),
            c("approved, validity ended exactly now", p().certified().valid_until(Duration::zero()), false),
            c("approved, valid for one more second", p().certified().valid_until(s1()), true),
        ],
        ("BJ-NAT-0002", "1.0.0") => vec![
            c("visitor, negative exactly 48 h ago", p().negative(h(48)), true),
            c("visitor, negative 48 h and 1 s ago", p().negative(h(48) + s1()), false),
            c("visitor, no test", p(), false),
            c("visitor, pending only", p().pending_sa(h(2), XIANGHE), false),
            c("certified commuter, negative 1 h ago: not a visitor", p().certified().negative(h(1)), false),
            c(
                "suspended commuter, negative 1 h ago: a visitor",
                p().commuter(CommuterStatus::Suspended, None).negative(h(1)),
                true,
            ),
        ],
        ("BJ-NAT-0002", "2.0.0") => vec![
            c("visitor, negative exactly 48 h ago", p().negative(h(48)), true),
            c("visitor, negative 48 h and 1 s ago", p().negative(h(48) + s1()), false),
            c("visitor, no test", p(), false),
            c("certified commuter, negative 30 h ago", p().certified().negative(h(30)), true),
            c("certified commuter, negative 3 days ago", p().certified().negative(d(3)), false),
        ],
        ("BJ-COM-0002", _) => vec![
            c(
                &format!("commuter after first check, negative exactly {days} days ago"),
                p().certified().negative(d(days)),
                true,
            ),
            c(
                &format!("commuter after first check, negative {days} days and 1 s ago"),
                p().certified().negative(d(days) + s1()),
                false,
            ),
            c("commuter after first check, no test", p().certified(), false),
            c("commuter before the first check, negative 3 days ago", p().first_check().negative(d(3)), false),
            c(
                "first check recorded in the future",
                p().commuter(CommuterStatus::Approved, Some(-h(1))).negative(h(1)),
                false,
            ),
            c("visitor, negative 1 h ago", p().negative(h(1)), false),
            c(
                "suspended commuter, negative 1 day ago",
                p().commuter(CommuterStatus::Suspended, Some(d(5))).negative(d(1)),
                false,
            ),
        ],
        ("BJ-COM-0003", _) => vec![
            c("first check, negative exactly 48 h ago", p().first_check().negative(h(48)), true),
            c("first check, negative 48 h and 1 s ago", p().first_check().negative(h(48) + s1()), false),
            c("first check, no test", p().first_check(), false),
            c("first check already done, negative 1 h ago", p().certified().negative(h(1)), false),
            c(
                "certification revoked, negative 1 h ago",
                p().commuter(CommuterStatus::Revoked, None).negative(h(1)),
                false,
            ),
        ],
        ("BJ-SA-0001", _) => vec![
            c("pending at a designated point exactly 24 h ago, letter", p().pending_sa(h(24), XIANGHE).letter(), true),
            c(
                "pending at a designated point 24 h and 1 s ago, letter",
                p().pending_sa(h(24) + s1(), XIANGHE).letter(),
                false,
            ),
            c("pending at a designated point, no letter", p().pending_sa(h(2), XIANGHE), false),
            c("pending at a point not designated, letter", p().pending_sa(h(2), "SA-ELSEWHERE").letter(), false),
            c(
                "pending at a designated site, but not a service-area sample",
                p().sample("X", h(2), SiteKind::Hospital, XIANGHE, TestResult::Pending).letter(),
                false,
            ),
            c(
                "older designated sample behind a newer one elsewhere, letter",
                p().pending_sa(h(20), "SA-JINGQIN-SANHE").pending_sa(h(1), "SA-ELSEWHERE").letter(),
                true,
            ),
            c("pending sampled after the check time, letter", p().pending_sa(-h(1), XIANGHE).letter(), false),
            c("letter, but no sample", p().letter(), false),
        ],
        ("BJ-SA-0002", _) => vec![
            c("no pending sample", p(), true),
            c("pending at a designated point, no letter", p().pending_sa(h(2), XIANGHE), false),
            c("pending at a designated point, letter", p().pending_sa(h(2), XIANGHE).letter(), true),
            c("pending at a point not designated, no letter", p().pending_sa(h(2), "SA-ELSEWHERE"), true),
            c("pending at a designated point 25 h ago, no letter", p().pending_sa(h(25), XIANGHE), true),
        ],
        ("BJ-COM-0004", _) => vec![
            c("first check, negative 3 days ago", p().first_check().negative(d(3)), false),
            c("first check, negative 47 h ago", p().first_check().negative(h(47)), true),
            c(&format!("first check, negative exactly {days} days ago"), p().first_check().negative(d(days)), false),
            c(
                &format!("first check, negative {days} days and 1 s ago"),
                p().first_check().negative(d(days) + s1()),
                true,
            ),
            c("first check, no test", p().first_check(), true),
            c("after the first check, negative 3 days ago", p().certified().negative(d(3)), true),
            c("visitor, negative 3 days ago", p().negative(d(3)), true),
        ],
        ("BJ-COM-0005", _) => vec![
            c(&format!("commuter, negative exactly {days} days ago"), p().certified().negative(d(days)), true),
            c(&format!("commuter, negative {days} days and 1 s ago"), p().certified().negative(d(days) + s1()), false),
            c("commuter, no test", p().certified(), true),
            c("commuter before the first check, negative 20 days ago", p().first_check().negative(d(20)), false),
            c("visitor, negative 20 days ago", p().negative(d(20)), true),
        ],
        ("BJ-NAT-0003", "1.0.0") => vec![
            c("visitor, negative exactly 48 h ago", p().negative(h(48)), true),
            c("visitor, negative 48 h and 1 s ago", p().negative(h(48) + s1()), false),
            c("visitor, no test", p(), true),
            c("certified commuter, negative 5 days ago", p().certified().negative(d(5)), true),
            c(
                "expired certification, negative 5 days ago",
                p().commuter(CommuterStatus::Expired, Some(d(30))).negative(d(5)),
                false,
            ),
        ],
        ("BJ-NAT-0003", "2.0.0") => vec![
            c("visitor, negative exactly 48 h ago", p().negative(h(48)), true),
            c("visitor, negative 48 h and 1 s ago", p().negative(h(48) + s1()), false),
            c("visitor, no test", p(), true),
            c("certified commuter, negative 3 days ago", p().certified().negative(d(3)), false),
            c("certified commuter, negative 30 h ago", p().certified().negative(h(30)), true),
        ],
        (rule, version) => {
            panic!("no cases for {rule} {version}: add them to tests/dcc_folders.rs")
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/tests")
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

/// Every file of the folders, as it should be: path under `policies/tests` → JSON.
fn expected_files() -> BTreeMap<PathBuf, Value> {
    let mut files = BTreeMap::new();
    for policy in tongxing_rules::builtin() {
        let t = at(&policy);
        for rule in policy.rules() {
            let dir = PathBuf::from(policy.id()).join(rule.identifier());
            files.insert(dir.join("rule.json"), rule.json().clone());
            for (i, (name, p, expected)) in cases(rule.identifier(), rule.version(), t).into_iter().enumerate() {
                let doc = policy.facts_document(&p.facts, p.at);
                let case = json!({
                    "name": name,
                    "payload": doc["payload"],
                    "external": doc["external"],
                    "expected": expected,
                });
                files.insert(dir.join("tests").join(format!("{:02}.json", i + 1)), case);
            }
        }
    }
    files
}

fn existing_files(dir: &Path, under: &Path, out: &mut BTreeMap<PathBuf, Value>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let rel = under.join(path.file_name().unwrap());
        if path.is_dir() {
            existing_files(&path, &rel, out);
        } else {
            let text = fs::read_to_string(&path).unwrap();
            let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(rel, v);
        }
    }
}

#[test]
fn dcc_rule_folders_are_in_sync_and_pass() {
    let root = root();
    let expected = expected_files();
    if std::env::var_os("TONGXING_REGENERATE_DCC").is_some() {
        let _ = fs::remove_dir_all(&root);
        for (path, v) in &expected {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, pretty(v)).unwrap();
        }
    }
    let mut existing = BTreeMap::new();
    existing_files(&root, Path::new(""), &mut existing);
    let missing: Vec<_> = expected.keys().filter(|p| !existing.contains_key(*p)).collect();
    let extra: Vec<_> = existing.keys().filter(|p| !expected.contains_key(*p)).collect();
    let differ: Vec<_> =
        expected.iter().filter(|(p, v)| existing.get(*p).is_some_and(|e| e != *v)).map(|(p, _)| p).collect();
    let hint = "regenerate: TONGXING_REGENERATE_DCC=1 cargo test -p tongxing-rules --test dcc_folders";
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "out of sync ({hint}): missing {missing:?}, extra {extra:?}, differ {differ:?}"
    );

    let mut total = 0;
    for policy in tongxing_rules::builtin() {
        let report = tongxing_certlogic::rule_tests::run(&root.join(policy.id())).unwrap();
        let failures: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
        assert!(failures.is_empty(), "{}: {failures:#?}", policy.id());
        let cases = expected.keys().filter(|p| p.starts_with(policy.id()) && !p.ends_with("rule.json")).count();
        assert_eq!(report.passed, cases, "{}", policy.id());
        assert!(policy.rules().iter().all(|r| cases_of(&expected, policy.id(), r.identifier()) >= 4));
        total += report.passed;
        eprintln!("{}: {} rules, {} DCC test cases passed", policy.id(), policy.rules().len(), report.passed);
    }
    assert!(total > 100);
}

fn cases_of(files: &BTreeMap<PathBuf, Value>, policy: &str, rule: &str) -> usize {
    files.keys().filter(|p| p.starts_with(Path::new(policy).join(rule).join("tests"))).count()
}

/// The fast path agrees with the CertLogic engine on every rule for every case's facts.
#[test]
fn fast_path_agrees_on_every_case() {
    for policy in tongxing_rules::builtin() {
        let t = at(&policy);
        for rule in policy.rules() {
            for (name, p, _) in cases(rule.identifier(), rule.version(), t) {
                let disagreements = policy.fast_path_disagreements(&p.facts, p.at);
                assert!(disagreements.is_empty(), "{} {name}: {disagreements:?}", policy.id());
                assert_eq!(policy.decide(&p.facts, p.at), policy.decide_reference(&p.facts, p.at), "{name}");
            }
        }
    }
}
