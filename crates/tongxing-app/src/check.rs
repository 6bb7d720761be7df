//! Checking people at a checkpoint: one person or every occupant of a vehicle. The rule set in
//! force at the check time decides; every check is recorded as an entry event before the answer
//! goes out, with the facts it was decided on, so that it can be explained and replayed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::decision::{Lang, Reason};
use tongxing_domain::facts::{CheckpointFacts, Facts};
use tongxing_domain::ids::Document;
use tongxing_domain::text::{CheckpointId, Plate};
use tongxing_domain::{mask, time};
use tongxing_store::{Checkpoint, EntryEvent};
use utoipa::ToSchema;

use crate::{App, AppError, AppResult};

/// One reason of a verdict, for the officer and the person checked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReasonView {
    /// Stable code, e.g. NO_VALID_TEST.
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
    /// The sample the reason refers to, "lab/sample_id".
    pub sample: Option<String>,
    /// The rule (Identifier) that gave this reason.
    pub rule: Option<String>,
}

/// The answer to a check (read back by the checkpoint's node, which passes typed ID numbers on
/// to the central server).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckOutcome {
    /// pass, conditional or deny.
    pub verdict: String,
    pub reasons: Vec<ReasonView>,
    /// Masked document number, for the officer to compare with the card.
    pub document: String,
    /// Masked name, if known.
    pub name: Option<String>,
    /// The health-code colour in force.
    pub code_colour: String,
    /// A certified commuter (badge on the health code).
    pub commuter: bool,
    pub policy_id: String,
    pub policy_version: String,
    #[serde(serialize_with = "time::serialize")]
    pub checked_at: DateTime<Utc>,
    /// An EU test certificate shown as evidence: whose it is (to compare with the document)
    /// and the test it carried into the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// An EU Digital COVID Certificate's test, verified, as the officer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The holder's names as written on the certificate (ICAO transliteration).
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub date_of_birth: Option<String>,
    /// The country that issued it.
    pub country: String,
    /// LP6464-4 (nucleic acid) or LP217198-3 (rapid antigen, which does not count here).
    pub test_type: String,
    #[serde(serialize_with = "time::serialize")]
    pub sampled_at: DateTime<Utc>,
    pub result: String,
    pub certificate_id: String,
}

/// One person to check (alone, or as an occupant of a vehicle). A signed commitment letter is
/// the store's evidence, never the request's.
#[derive(Debug, Clone)]
pub struct Person {
    pub document: Document,
    /// An EU test certificate (`HC1:…`) shown as evidence: its nucleic-acid test joins the
    /// person's samples for this decision, like a lab result.
    pub dcc: Option<String>,
}

impl App {
    /// Checks one person at a checkpoint and records the entry event.
    pub async fn check_person(
        &self,
        checkpoint: &CheckpointId,
        person: &Person,
        plate: Option<&Plate>,
        officer: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CheckOutcome> {
        let cp = self.checkpoint(checkpoint, "checkpoint_id").await?;
        self.decide_and_record(&cp, person, plate, officer, now).await
    }

    /// Checks every occupant of a vehicle: one verdict each, in order.
    pub async fn check_vehicle(
        &self,
        checkpoint: &CheckpointId,
        plate: &Plate,
        occupants: &[Person],
        officer: &str,
        now: DateTime<Utc>,
    ) -> AppResult<Vec<CheckOutcome>> {
        if occupants.is_empty() || occupants.len() > 80 {
            return Err(AppError::invalid("occupants", format!("1 to 80 occupants, got {}", occupants.len())));
        }
        let cp = self.checkpoint(checkpoint, "checkpoint_id").await?;
        let mut out = Vec::with_capacity(occupants.len());
        for person in occupants {
            out.push(self.decide_and_record(&cp, person, Some(plate), officer, now).await?);
        }
        Ok(out)
    }

    /// Decides for one person and records the entry event. The pure evaluation sits between
    /// loading the facts and recording the event.
    async fn decide_and_record(
        &self,
        checkpoint: &Checkpoint,
        person: &Person,
        plate: Option<&Plate>,
        officer: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CheckOutcome> {
        let policy = self.policy_at(now)?;
        let rules = self.rules();
        let rule_set = tongxing_rules::select(&rules, now).ok_or_else(|| App::no_rule_set(now))?;
        let doc_key = person.document.key();
        let loaded = self.store.load_facts(&doc_key, now - policy.lookback(), now).await?;
        let (person_id, mut facts_of_person) = (loaded.person_id, loaded.facts);
        let evidence = match &person.dcc {
            Some(text) => {
                let (sample, evidence) = self.dcc_evidence(text, now)?;
                facts_of_person.samples.push(sample);
                Some(evidence)
            }
            None => None,
        };
        let facts = Facts {
            person: facts_of_person,
            checkpoint: CheckpointFacts { id: checkpoint.id.clone(), road: checkpoint.road.clone() },
        };
        let decision = rule_set.decide(&facts, now);

        let reasons = explain(&decision, rule_set, checkpoint.road.as_deref(), facts.person.colour_reason_at(now));
        let outcome = CheckOutcome {
            verdict: decision.verdict.as_str().into(),
            reasons,
            document: mask::document_number(person.document.number()),
            name: loaded.name.as_deref().map(mask::name),
            code_colour: facts.person.colour_at(now).to_string(),
            commuter: facts.person.commuter_at(now),
            policy_id: rule_set.id().to_string(),
            policy_version: rule_set.version().to_string(),
            checked_at: now,
            evidence,
        };
        let event = EntryEvent {
            checkpoint_id: checkpoint.id.clone(),
            checked_at: now,
            doc_key,
            person_id,
            verdict: decision.verdict,
            reasons: decision.reasons.iter().map(|r| Reason { code: r.code, sample: r.sample.clone() }).collect(),
            policy_id: rule_set.id().to_string(),
            policy_version: rule_set.version().to_string(),
            rule_versions: decision.rule_versions.to_vec(),
            facts,
            plate: plate.map(|p| p.as_str().to_string()),
            officer: officer.to_string(),
            commuter_first_check: decision.records_commuter_first_check,
            via: "document",
        };
        self.store.record_entry(event).await?;
        Ok(outcome)
    }
}

/// The reasons of a decision in words, for the officer and the person: what was not met (or
/// what allowed entry) and what to do, naming the service-area test point on `road`.
pub(crate) fn explain(
    decision: &tongxing_rules::RulesDecision<'_>,
    rule_set: &tongxing_rules::RuleSet,
    road: Option<&str>,
    colour_reason: Option<&str>,
) -> Vec<ReasonView> {
    let test_point = road.and_then(|r| rule_set.test_point_on_road(r));
    let tp_name = |key: &str| test_point.and_then(|(_, d)| d.get(key)).and_then(|v| v.as_str());
    decision
        .reasons
        .iter()
        .map(|r| {
            // A failing rule is what was not met; a passing one is what allowed entry.
            let (not_met_zh, not_met_en) =
                if r.rule_passed || r.rule.is_none() { ("", "") } else { ("未满足：", "Not met: ") };
            ReasonView {
                code: r.code.as_str().into(),
                message_zh: format!(
                    "{not_met_zh}{} {}",
                    r.description_zh,
                    r.code.advice(Lang::Zh, tp_name("name_zh"), colour_reason)
                ),
                message_en: format!(
                    "{not_met_en}{} {}",
                    r.description_en,
                    r.code.advice(Lang::En, tp_name("name_en"), colour_reason)
                ),
                sample: r.sample.clone(),
                rule: r.rule.map(str::to_string),
            }
        })
        .collect()
}

impl App {
    /// Checks a person by a scanned pass: verified as an offline checkpoint verifies it (the
    /// same stages, [`crate::verify`]), its revocation looked up in the database, then decided
    /// by the rule set in force on the facts the pass carries — so that online and offline agree
    /// on every pass. The entry event names the person the pass refers to, and a commuter's
    /// first check is recorded as with a document.
    pub async fn check_pass(
        &self,
        checkpoint: &CheckpointId,
        text: &str,
        plate: Option<&Plate>,
        officer: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CheckOutcome> {
        let keys = self.pass_keys()?.clone();
        let cp = self.checkpoint(checkpoint, "checkpoint_id").await?;
        let policy = self.policy_at(now)?;
        let refused =
            |r: tongxing_pass::Refusal| AppError::PassRefused { stage: r.stage.as_str().into(), detail: r.detail };
        let mut decoder = tongxing_pass::Decoder::new().with_clock_tolerance(policy.clock_tolerance_seconds);
        let verified = decoder
            .decode(text, &keys.trust, &tongxing_pass::RevocationSet::empty(), now.timestamp())
            .map_err(refused)?;
        // The revocation list is the database's: the two entries that could name this pass.
        let person_hash = tongxing_pass::RevocationHash::of_person(&verified.pass.person_ref);
        let mut entries = Vec::new();
        for hash in [person_hash, verified.pass_id] {
            if let Some(cutoff) = self.store.revocation_of(&hash.to_hex()).await? {
                entries.push(tongxing_pass::Entry { hash, cutoff: cutoff.timestamp() });
            }
        }
        if !entries.is_empty() {
            let set = tongxing_pass::RevocationSet::new(0, now.timestamp(), entries);
            if let Some(why) = set.check(&verified.pass.person_ref, &verified.pass_id, verified.pass.issued_at) {
                return Err(AppError::PassRefused {
                    stage: tongxing_pass::Stage::Revoked.as_str().into(),
                    detail: why,
                });
            }
        }
        let rules = self.rules();
        let checkpoint_facts = CheckpointFacts { id: cp.id.clone(), road: cp.road.clone() };
        let decided = crate::verify::decide_verified(verified, &rules, checkpoint_facts, now)
            .map_err(|r| AppError::PassRefused { stage: r.stage, detail: r.detail })?;
        let pass_ref = crate::signing::hex(&decided.verified.pass.person_ref);
        let person_id = self.store.person_by_pass_ref(&pass_ref).await?;
        let person = match person_id {
            Some(id) => Some(self.person_record(id).await?),
            None => None,
        };
        let d = decided.decision;
        let outcome = CheckOutcome {
            verdict: d.verdict.clone(),
            reasons: d.reasons,
            document: person.as_ref().map_or_else(|| "(pass)".to_string(), |p| mask::document_number(&p.doc_number)),
            name: person.as_ref().and_then(|p| p.name.as_deref()).map(mask::name),
            code_colour: d.code_colour,
            commuter: d.commuter,
            policy_id: d.policy_id.clone(),
            policy_version: d.policy_version.clone(),
            checked_at: now,
            evidence: None,
        };
        let event = EntryEvent {
            checkpoint_id: cp.id.clone(),
            checked_at: now,
            doc_key: person.as_ref().map_or_else(|| format!("REF:{pass_ref}"), |p| p.doc_key.clone()),
            person_id,
            verdict: decided.verdict,
            reasons: decided.reason_codes.into_iter().map(|(code, sample)| Reason { code, sample }).collect(),
            policy_id: d.policy_id,
            policy_version: d.policy_version,
            rule_versions: decided.rule_versions,
            facts: decided.facts,
            plate: plate.map(|p| p.as_str().to_string()),
            officer: officer.to_string(),
            commuter_first_check: decided.records_commuter_first_check,
            via: "pass",
        };
        self.store.record_entry(event).await?;
        Ok(outcome)
    }
}

impl App {
    /// Verifies an EU test certificate (the same envelope stages as a pass, then the document
    /// signer's key and signature, expiry) and turns its nucleic-acid test into a sample.
    pub fn dcc_evidence(
        &self,
        text: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(tongxing_domain::facts::SampleFact, Evidence)> {
        let trust = self.dcc.as_ref().ok_or_else(|| {
            AppError::Unavailable("this server accepts no EU certificates: start it with --dcc-trust FILE".into())
        })?;
        let refused = |stage: &str, detail: String| AppError::PassRefused { stage: stage.into(), detail };
        let dcc = tongxing_pass::hcert::decode(text, trust, now.timestamp())
            .map_err(|r| refused(r.stage.as_str(), r.detail))?;
        let Some(test) = dcc.tests.iter().max_by_key(|t| t.sampled_at) else {
            return Err(refused(
                "not_a_test",
                "the certificate holds no test (vaccinations and recoveries are not evidence here)".into(),
            ));
        };
        if !test.is_nucleic_acid() {
            return Err(refused(
                "not_a_test",
                format!(
                    "the test is of type {} (rapid antigen); a nucleic-acid test (LP6464-4) is required",
                    test.test_type
                ),
            ));
        }
        let sampled_at = DateTime::from_timestamp(test.sampled_at, 0).unwrap_or_default();
        let sample = tongxing_domain::facts::SampleFact {
            lab: format!("DCC-{}", test.country),
            sample_id: test.certificate_id.clone(),
            sampled_at,
            site: test.centre.clone().unwrap_or_default(),
            site_kind: tongxing_domain::facts::SiteKind::Hospital,
            result: test.result,
        };
        let evidence = Evidence {
            family_name: dcc.family_name.clone(),
            given_name: dcc.given_name.clone(),
            date_of_birth: dcc.date_of_birth.clone(),
            country: test.country.clone(),
            test_type: test.test_type.clone(),
            sampled_at,
            result: test.result.to_string(),
            certificate_id: test.certificate_id.clone(),
        };
        Ok((sample, evidence))
    }
}
