//! The offline checkpoint, server side: what a checkpoint needs besides the two signed lists
//! (the [`Bundle`]: the rule sets, the checkpoints it may check at, the policy parameters), and
//! the checks it made offline, uploaded at its next sync and recorded once each.
//!
//! The checkpoint decides with [`crate::verify::decide_on_pass`], as the online check does; an
//! uploaded check is recorded as it was decided at the gate (verdict, reasons, rule versions),
//! on the facts its pass carries — read from the pass itself after the server has verified its
//! signature with its own trust list as of the check's time. The server's revocation list is not
//! applied: a pass revoked after the check was still good when it was shown.
//!
//! [`UploadRow`] is the wire form of one queued check, written by the CLI and read by the API:
//! one type, so the two cannot drift; [`UploadRow::parse`] checks it at the edge, naming the
//! field, before anything is verified or stored.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::decision::{Reason, ReasonCode, Verdict};
use tongxing_domain::facts::{CheckpointFacts, Facts};
use tongxing_domain::text::{self, Charset, CheckpointId, Plate, PolicyId, PolicyVersion, Spec};
use tongxing_pass::{Decoder, RevocationSet, TrustList};
use tongxing_rules::RuleSet;
use tongxing_store::{EntryEvent, OfflineEntry};
use utoipa::ToSchema;

use crate::input::At;
use crate::signing::hex;
use crate::verify::{Decided, facts_of_pass};
use crate::{App, AppError, AppResult};

/// The most checks one upload may carry (the CLI sends fewer).
pub const MAX_UPLOAD: usize = 500;

/// A checkpoint as the offline verifier needs it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleCheckpoint {
    pub id: String,
    pub name: String,
    /// The road, which names the nearest service-area test point in the advice.
    pub road: Option<String>,
    pub kind: String,
}

/// The policy parameters an offline checkpoint works by.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct OfflinePolicy {
    /// Warn when the trust list, the rules or the revocation list were synced longer ago.
    pub offline_data_max_age_hours: i64,
    /// Refuse to decide (stage `clock_behind`) when the device's clock is this far behind a
    /// pass's issue time.
    pub clock_tolerance_seconds: i64,
}

/// What an offline checkpoint syncs besides the trust list and the revocation list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Bundle {
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: DateTime<Utc>,
    pub policy: OfflinePolicy,
    /// The checkpoints this token may check at.
    pub checkpoints: Vec<BundleCheckpoint>,
    /// The rule sets' JSON bodies, as published: every set the server would decide by at some
    /// time from `offline_data_max_age_hours` ago on (the one in force now, those already
    /// published to come into force later, and those of the data's lifetime, so that a check
    /// replayed with `--at` within it decides as the server would have).
    #[schema(value_type = Vec<Object>)]
    pub rule_sets: Vec<serde_json::Value>,
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        tongxing_domain::time::serialize(t, s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

/// The rule sets that [`tongxing_rules::select`] picks at some time from `from` on. Selection
/// changes only where a set starts or ends, so it is evaluated at `from` and at every such
/// boundary after it.
pub fn rule_sets_from(sets: &[RuleSet], from: DateTime<Utc>) -> Vec<&RuleSet> {
    let mut times: Vec<DateTime<Utc>> = vec![from];
    for s in sets {
        times.extend([Some(s.valid_from()), s.valid_to()].into_iter().flatten().filter(|t| *t > from));
    }
    let mut out: Vec<&RuleSet> = Vec::new();
    for t in times {
        if let Some(s) = tongxing_rules::select(sets, t)
            && !out.iter().any(|o| o.id() == s.id() && o.version() == s.version())
        {
            out.push(s);
        }
    }
    out.sort_by_key(|s| s.valid_from());
    out
}

impl App {
    /// The bundle for a checkpoint officer whose token has `scope` (empty: every checkpoint).
    pub async fn checkpoint_bundle(&self, scope: &[String], now: DateTime<Utc>) -> AppResult<Bundle> {
        let policy = self.policy_at(now)?;
        let offline = OfflinePolicy {
            offline_data_max_age_hours: policy.offline_data_max_age_hours,
            clock_tolerance_seconds: policy.clock_tolerance_seconds,
        };
        let rules = self.rules();
        let chosen = rule_sets_from(&rules, now - chrono::Duration::hours(policy.offline_data_max_age_hours));
        // The bodies as published: the built-in files, and the activated published ones.
        let mut bodies: Vec<serde_json::Value> =
            tongxing_rules::BUILTIN_FILES.iter().filter_map(|(_, text)| serde_json::from_str(text).ok()).collect();
        for p in self.store.policies().await? {
            if p.activated_at.is_some()
                && let Ok(v) = serde_json::from_str(&p.body)
            {
                bodies.push(v);
            }
        }
        let id_version =
            |v: &serde_json::Value| (v["id"].as_str().map(str::to_string), v["version"].as_str().map(str::to_string));
        let mut rule_sets = Vec::with_capacity(chosen.len());
        for set in chosen {
            let body = bodies
                .iter()
                .rev()
                .find(|b| id_version(b) == (Some(set.id().to_string()), Some(set.version().to_string())))
                .ok_or_else(|| {
                    AppError::Internal(format!("the body of rule set {} {} is not found", set.id(), set.version()))
                })?;
            rule_sets.push(body.clone());
        }
        let checkpoints = self
            .store
            .checkpoints()
            .await?
            .into_iter()
            .filter(|c| tongxing_domain::auth::in_scope(scope, &c.id))
            .map(|c| BundleCheckpoint { id: c.id, name: c.name, road: c.road, kind: c.kind })
            .collect();
        Ok(Bundle { issued_at: now, policy: offline, checkpoints, rule_sets })
    }
}

/// One reason of an uploaded check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadReason {
    /// A reason code, e.g. NEGATIVE_WITHIN_WINDOW.
    #[schema(max_length = 64)]
    pub code: String,
    /// The test the reason is about ("pass/t0" for the pass's first test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100, pattern = "^[A-Za-z0-9_./-]{1,100}$")]
    pub sample: Option<String>,
}

/// A rule evaluated for an uploaded check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRuleVersion {
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_./-]{1,64}$")]
    pub id: String,
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_./-]{1,64}$")]
    pub version: String,
}

/// One check made at an offline checkpoint, as uploaded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRow {
    /// 32 lower-case hex digits (16 random bytes), made by the checkpoint when it recorded the
    /// check: the server records each key once.
    #[schema(min_length = 32, max_length = 32, pattern = "^[0-9a-f]{32}$")]
    pub idempotency_key: String,
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub checkpoint_id: String,
    /// The checkpoint's clock when the check was made (RFC 3339 with an offset).
    #[schema(max_length = 40, format = DateTime)]
    pub checked_at: String,
    /// The time the decision was made as of, when the officer gave one (`verify --at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 40, format = DateTime)]
    pub as_of: Option<String>,
    /// The pass's QR text, `TX1:…` (at most 4,096 characters of the QR alphanumeric set).
    #[schema(max_length = 4096, pattern = "^[0-9A-Z $%*+./:-]{1,4096}$")]
    pub qr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 16)]
    pub plate: Option<String>,
    /// pass, conditional or deny.
    #[schema(max_length = 11, pattern = "^(pass|conditional|deny)$")]
    pub verdict: String,
    pub reasons: Vec<UploadReason>,
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_./-]{1,64}$")]
    pub policy_id: String,
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_./-]{1,64}$")]
    pub policy_version: String,
    pub rule_versions: Vec<UploadRuleVersion>,
    /// The decision records a certified commuter's first check.
    #[serde(default)]
    pub commuter_first_check: bool,
}

/// An uploaded check parsed into domain values.
#[derive(Debug, Clone)]
pub struct OfflineCheck {
    pub idempotency_key: String,
    pub checkpoint_id: CheckpointId,
    pub checked_at: DateTime<Utc>,
    pub as_of: Option<DateTime<Utc>>,
    pub qr: String,
    pub plate: Option<Plate>,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    pub policy_id: String,
    pub policy_version: String,
    pub rule_versions: Vec<(String, String)>,
    pub commuter_first_check: bool,
}

/// Whether `c` may appear in a QR text: the QR alphanumeric set, which is Base45's.
fn qr_char(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_uppercase() || " $%*+-./:".contains(c)
}

/// The QR text of a pass, checked for size and characters before any work (the stage named).
pub fn qr_text(field: &str, v: &str) -> AppResult<String> {
    if v.len() > tongxing_pass::MAX_TEXT_BYTES {
        return Err(AppError::invalid(
            field,
            format!("too_large: the code is {} bytes: at most {}", v.len(), tongxing_pass::MAX_TEXT_BYTES),
        ));
    }
    if v.is_empty() {
        return Err(AppError::invalid(field, "is required"));
    }
    if let Some((i, c)) = v.chars().enumerate().find(|(_, c)| !qr_char(*c)) {
        return Err(AppError::invalid(
            field,
            format!("character {} ({c:?}) is not in the QR alphanumeric set of a pass", i + 1),
        ));
    }
    Ok(v.to_string())
}

fn time(field: &str, v: &str) -> AppResult<DateTime<Utc>> {
    if v.len() > 40 {
        return Err(AppError::invalid(field, format!("{} is not an RFC 3339 time", text::quote(v))));
    }
    DateTime::parse_from_rfc3339(v.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        AppError::invalid(
            field,
            format!("{} is not RFC 3339 with an offset, e.g. 2021-11-17T08:30:00+08:00", text::quote(v)),
        )
    })
}

impl UploadRow {
    /// Checks every field, naming the first bad one (`at` is the row's prefix, `checks[3].`).
    pub fn parse(&self, at: &str) -> AppResult<OfflineCheck> {
        let f = |name: &str| format!("{at}{name}");
        let key = self.idempotency_key.as_str();
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(AppError::invalid(
                f("idempotency_key"),
                format!("{} is not 32 lower-case hex digits", text::quote(key)),
            ));
        }
        let checkpoint_id = CheckpointId::parse(&self.checkpoint_id).at(&f("checkpoint_id"))?;
        let checked_at = time(&f("checked_at"), &self.checked_at)?;
        let as_of = self.as_of.as_deref().map(|v| time(&f("as_of"), v)).transpose()?;
        let qr = qr_text(&f("qr"), &self.qr)?;
        let plate = crate::input::optional(&f("plate"), self.plate.as_deref(), Plate::parse)?;
        let verdict = Verdict::parse(&self.verdict).ok_or_else(|| {
            AppError::invalid(
                f("verdict"),
                format!("{} is not one of: pass, conditional, deny", text::quote(&self.verdict)),
            )
        })?;
        const SAMPLE: Spec = Spec { charset: Charset::Code, min: 1, max: 100 };
        let reasons = self
            .reasons
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let code = ReasonCode::parse(&r.code).ok_or_else(|| {
                    AppError::invalid(
                        f(&format!("reasons[{i}].code")),
                        format!("{} is not a reason code", text::quote(&r.code)),
                    )
                })?;
                let sample = match &r.sample {
                    None => None,
                    Some(s) => Some(SAMPLE.check(s).at(&f(&format!("reasons[{i}].sample")))?.to_string()),
                };
                Ok(Reason { code, sample })
            })
            .collect::<AppResult<Vec<_>>>()?;
        if reasons.len() > 64 {
            return Err(AppError::invalid(f("reasons"), "at most 64 reasons"));
        }
        let policy_id = PolicyId::parse(&self.policy_id).at(&f("policy_id"))?.into_string();
        let policy_version = PolicyVersion::parse(&self.policy_version).at(&f("policy_version"))?.into_string();
        if self.rule_versions.len() > 256 {
            return Err(AppError::invalid(f("rule_versions"), "at most 256 rules"));
        }
        let rule_versions = self
            .rule_versions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = PolicyId::parse(&r.id).at(&f(&format!("rule_versions[{i}].id")))?;
                let version = PolicyVersion::parse(&r.version).at(&f(&format!("rule_versions[{i}].version")))?;
                Ok((id.into_string(), version.into_string()))
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(OfflineCheck {
            idempotency_key: key.to_string(),
            checkpoint_id,
            checked_at,
            as_of,
            qr,
            plate,
            verdict,
            reasons,
            policy_id,
            policy_version,
            rule_versions,
            commuter_first_check: self.commuter_first_check,
        })
    }

    /// The row for a check decided at the checkpoint.
    pub fn from_decided(
        key: &str,
        checkpoint_id: &str,
        checked_at: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
        qr: &str,
        plate: Option<&str>,
        decided: &Decided,
    ) -> UploadRow {
        UploadRow {
            idempotency_key: key.to_string(),
            checkpoint_id: checkpoint_id.to_string(),
            checked_at: checked_at.to_rfc3339(),
            as_of: as_of.map(|t| t.to_rfc3339()),
            qr: qr.to_string(),
            plate: plate.map(str::to_string),
            verdict: decided.verdict.as_str().to_string(),
            reasons: decided
                .reason_codes
                .iter()
                .map(|(code, sample)| UploadReason { code: code.as_str().to_string(), sample: sample.clone() })
                .collect(),
            policy_id: decided.decision.policy_id.clone(),
            policy_version: decided.decision.policy_version.clone(),
            rule_versions: decided
                .rule_versions
                .iter()
                .map(|(id, version)| UploadRuleVersion { id: id.clone(), version: version.clone() })
                .collect(),
            commuter_first_check: decided.records_commuter_first_check,
        }
    }
}

/// What the server did with one uploaded check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadResult {
    pub idempotency_key: String,
    /// recorded (now), duplicate (recorded by an earlier upload: nothing written) or rejected.
    pub outcome: String,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to an upload: one result per check, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadReport {
    pub recorded: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<UploadResult>,
}

impl App {
    /// Records the checks an offline checkpoint uploads, once each (by idempotency key), in one
    /// transaction. A check whose pass does not verify (with this server's trust list, at the
    /// check's time), whose person is unknown here or whose checkpoint is not registered is
    /// rejected, with the reason; the others are recorded.
    pub async fn record_offline_checks(
        &self,
        checks: &[OfflineCheck],
        officer: &str,
        now: DateTime<Utc>,
    ) -> AppResult<UploadReport> {
        if checks.is_empty() || checks.len() > MAX_UPLOAD {
            return Err(AppError::invalid("checks", format!("1 to {MAX_UPLOAD} checks, got {}", checks.len())));
        }
        let keys = self.pass_keys()?;
        let trust = &keys.trust;
        let tolerance = self.policy_at(now)?.clock_tolerance_seconds;
        let mut decoder = Decoder::new().with_clock_tolerance(tolerance);
        let no_revocations = RevocationSet::empty();
        let mut seen = HashSet::new();
        // Per check: Ok(index into `entries`), or the outcome already known.
        let mut plan: Vec<Result<usize, UploadResult>> = Vec::with_capacity(checks.len());
        let mut entries = Vec::new();
        let result = |c: &OfflineCheck, outcome: &str, reason: Option<String>| UploadResult {
            idempotency_key: c.idempotency_key.clone(),
            outcome: outcome.into(),
            reason,
        };
        for c in checks {
            if !seen.insert(c.idempotency_key.as_str()) {
                plan.push(Err(result(c, "duplicate", None)));
                continue;
            }
            match self.offline_entry(c, &mut decoder, trust, &no_revocations, officer, now, tolerance).await? {
                Ok(entry) => {
                    plan.push(Ok(entries.len()));
                    entries.push(entry);
                }
                Err(why) => plan.push(Err(result(c, "rejected", Some(why)))),
            }
        }
        let recorded = self.store.record_offline_entries(&entries).await?;
        let results: Vec<UploadResult> = plan
            .into_iter()
            .zip(checks)
            .map(|(p, c)| match p {
                Ok(i) if recorded[i] => result(c, "recorded", None),
                Ok(_) => result(c, "duplicate", None),
                Err(r) => r,
            })
            .collect();
        let count = |o: &str| results.iter().filter(|r| r.outcome == o).count();
        Ok(UploadReport {
            recorded: count("recorded"),
            duplicates: count("duplicate"),
            rejected: count("rejected"),
            results,
        })
    }

    /// The entry event of one uploaded check, or why it is rejected.
    #[allow(clippy::too_many_arguments)]
    async fn offline_entry(
        &self,
        c: &OfflineCheck,
        decoder: &mut Decoder,
        trust: &TrustList,
        no_revocations: &RevocationSet,
        officer: &str,
        now: DateTime<Utc>,
        tolerance: i64,
    ) -> AppResult<Result<OfflineEntry, String>> {
        let decided_at = c.as_of.unwrap_or(c.checked_at);
        if c.checked_at > now + chrono::Duration::seconds(tolerance) {
            return Ok(Err(format!(
                "checked_at {} is ahead of the server's clock: the checkpoint's clock is wrong",
                tongxing_domain::time::rfc3339(c.checked_at)
            )));
        }
        let verified = match decoder.decode(&c.qr, trust, no_revocations, decided_at.timestamp()) {
            Ok(v) => v,
            Err(r) => {
                return Ok(Err(format!(
                    "the pass does not verify here at the check's time: {}: {}",
                    r.stage, r.detail
                )));
            }
        };
        let Some(person_id) = self.store.person_by_pass_ref(&hex(&verified.pass.person_ref)).await? else {
            return Ok(Err("no person here holds this pass's reference".into()));
        };
        let person = self.person_record(person_id).await?;
        let checkpoint = match self.checkpoint(&c.checkpoint_id, "checkpoint_id").await {
            Ok(cp) => cp,
            Err(AppError::Invalid { reason, .. }) => return Ok(Err(reason)),
            Err(e) => return Err(e),
        };
        let facts = Facts {
            person: facts_of_pass(&verified.pass),
            checkpoint: CheckpointFacts { id: checkpoint.id.clone(), road: checkpoint.road.clone() },
        };
        let event = EntryEvent {
            checkpoint_id: checkpoint.id,
            checked_at: decided_at,
            doc_key: person.doc_key,
            person_id: Some(person_id),
            verdict: c.verdict,
            reasons: c.reasons.clone(),
            policy_id: c.policy_id.clone(),
            policy_version: c.policy_version.clone(),
            rule_versions: c.rule_versions.clone(),
            facts,
            plate: c.plate.as_ref().map(|p| p.as_str().to_string()),
            officer: officer.to_string(),
            commuter_first_check: c.commuter_first_check,
            via: if c.as_of.is_some() { "offline_at" } else { "offline" },
        };
        Ok(Ok(OfflineEntry { event, idempotency_key: c.idempotency_key.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_sets_from_now_and_later() {
        let sets = tongxing_rules::builtin();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let names = |v: Vec<&RuleSet>| v.iter().map(|s| s.version().to_string()).collect::<Vec<_>>();
        // In 2030 only the latest is ever selected.
        assert_eq!(names(rule_sets_from(&sets, at("2030-01-01T00:00:00Z"))), ["2022-11-22.1"]);
        // From 2022-05-01: the set in force then, and the two that follow.
        assert_eq!(
            names(rule_sets_from(&sets, at("2022-05-01T00:00:00Z"))),
            ["2021-11-17.1", "2022-05-05.1", "2022-11-22.1"]
        );
    }

    #[test]
    fn qr_text_at_the_edge() {
        assert!(qr_text("qr", "TX1:ABC").is_ok());
        let e = qr_text("qr", &"A".repeat(4097)).unwrap_err().to_string();
        assert!(e.starts_with("qr: too_large"), "{e}");
        assert!(qr_text("qr", "TX1:\u{0}").is_err());
        assert!(qr_text("qr", "tx1:abc").is_err());
        assert!(qr_text("qr", "").is_err());
    }
}
