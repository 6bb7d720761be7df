//! Entry on a commitment letter: the service-area test points register samples, a person signs
//! the letter for a pending sample (on the test point's device or their own phone), the check
//! lets them in conditionally, and every pending result is followed to its end — in the store,
//! in the transaction that stores the result; the overdue scan ends the late ones; a positive
//! pool turns its members yellow. The passes of anyone whose code changed are revoked here.

use chrono::{DateTime, Utc};
use ring::digest;
use serde::Serialize;
use tongxing_domain::facts::{SiteKind, TestResult};
use tongxing_domain::ids::Document;
use tongxing_domain::letter::Letter;
use tongxing_domain::text::{LabCode, SampleId};
use tongxing_domain::time;
use tongxing_store::{CommitmentRecord, FollowUps, NewCommitment, SampleInput, SampleOutcome, SignRefusal};
use utoipa::ToSchema;

use crate::input::{At, CLOCK_SKEW};
use crate::{App, AppError, AppResult};

/// The value set of the rule sets that lists the designated test points.
pub const TEST_POINTS: &str = "designated-test-points";

/// How a letter was signed.
pub const SIGNED_VIA: &[&str] = &["test_point_device", "citizen_phone"];

/// The letter as served: the text, its version and the SHA-256 a signature must name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LetterView {
    pub version: String,
    pub title_zh: String,
    pub title_en: String,
    pub text_zh: String,
    pub text_en: String,
    /// Hex SHA-256 of the text signed: title_zh, text_zh, title_en and text_en, each followed by
    /// a line break but the last.
    pub sha256: String,
}

/// A person's commitment as they (and officers) see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommitmentView {
    pub id: i64,
    pub lab: String,
    pub sample_id: String,
    /// pending, fulfilled, positive or overdue.
    pub status: String,
    pub letter_version: String,
    pub place: String,
    /// test_point_device or citizen_phone.
    pub signed_via: String,
    #[serde(serialize_with = "time::serialize")]
    pub signed_at: DateTime<Utc>,
    /// When the result is due.
    #[serde(serialize_with = "time::serialize")]
    pub result_expected_by: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// For the person: "commitment pending: result expected by …", then the outcome.
    pub message_zh: String,
    pub message_en: String,
}

impl From<CommitmentRecord> for CommitmentView {
    fn from(c: CommitmentRecord) -> Self {
        let by = time::rfc3339(c.deadline);
        let (zh, en) = match c.status.as_str() {
            "pending" => (
                format!("承诺书待履行：检测结果预计于 {by} 前出具。"),
                format!("Commitment pending: result expected by {by}."),
            ),
            "fulfilled" => {
                ("承诺已履行：检测结果为阴性。".into(), "Commitment fulfilled: the result is negative.".into())
            }
            "positive" => (
                "检测结果为阳性：请立即配合疾控部门处置。".into(),
                "The result is positive: follow the disease-control staff's instructions at once.".into(),
            ),
            _ => (
                format!("检测结果逾期未出（应于 {by} 前）：健康码为黄码，请就近复检。"),
                format!("The result is overdue (due by {by}): the code is yellow; get tested again nearby."),
            ),
        };
        CommitmentView {
            id: c.id,
            lab: c.lab,
            sample_id: c.sample_id,
            status: c.status,
            letter_version: c.letter_version,
            place: c.place,
            signed_via: c.signed_via,
            signed_at: c.signed_at,
            result_expected_by: c.deadline,
            resolved_at: c.resolved_at,
            message_zh: zh,
            message_en: en,
        }
    }
}

fn sha256_hex(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl LetterView {
    pub fn of(l: Letter) -> LetterView {
        let sha256 = sha256_hex(&l.signed_text());
        LetterView {
            version: l.version,
            title_zh: l.title_zh,
            title_en: l.title_en,
            text_zh: l.text_zh,
            text_en: l.text_en,
            sha256,
        }
    }
}

/// A sample a test point registers.
pub struct TestPointSample<'a> {
    pub test_point: &'a str,
    pub sample_id: &'a str,
    pub document: Document,
    pub sampled_at: DateTime<Utc>,
    /// The pool (10 in 1) the sample was put in, if pooled.
    pub pool_id: Option<&'a str>,
}

/// A letter to sign.
pub struct Signing<'a> {
    pub document: Document,
    /// The test point (the sample's owner) and the sample's bar code.
    pub lab: &'a str,
    pub sample_id: &'a str,
    pub letter_version: &'a str,
    pub letter_sha256: &'a str,
    /// test_point_device or citizen_phone.
    pub signed_via: &'a str,
}

impl App {
    /// The current letter.
    pub fn letter(&self) -> LetterView {
        LetterView::of(Letter::current())
    }

    /// Registers a sample taken at a designated service-area test point (result pending). The
    /// test point is the sample's owner (`lab`): the lab reports its result under that code.
    pub async fn register_test_point_sample(
        &self,
        s: &TestPointSample<'_>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<SampleOutcome> {
        let rules = self.rules();
        let rule_set = tongxing_rules::select(&rules, now).ok_or_else(|| App::no_rule_set(now))?;
        let designated = rule_set.value_set(TEST_POINTS).is_some_and(|v| v.contains_key(s.test_point));
        if !designated {
            let list: Vec<&String> = rule_set.value_set(TEST_POINTS).map(|v| v.keys().collect()).unwrap_or_default();
            return Err(AppError::invalid(
                "test_point",
                format!(
                    "{} is not a designated service-area test point of the rules in force: {}",
                    tongxing_domain::text::quote(s.test_point),
                    list.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let lab = LabCode::parse(s.test_point).at("test_point")?.into_string();
        let sample_id = SampleId::parse(s.sample_id).at("sample_id")?.into_string();
        if s.sampled_at > now + CLOCK_SKEW {
            return Err(AppError::invalid("sampled_at", format!("{} is in the future", time::rfc3339(s.sampled_at))));
        }
        if let Some(pool) = s.pool_id {
            SampleId::parse(pool).at("pool_id")?;
        }
        let input = SampleInput {
            lab: lab.clone(),
            sample_id,
            document: s.document.clone(),
            sampled_at: s.sampled_at,
            site: lab,
            site_kind: SiteKind::ServiceArea,
            result: TestResult::Pending,
        };
        Ok(self.store.register_sample(&input, s.pool_id, by, now).await?)
    }

    /// Records a signed letter for a pending service-area sample: the consent record (person,
    /// sample, text version and its SHA-256, time, place, how). The text signed must be one
    /// this server serves, named by its version and hash.
    pub async fn sign_letter(
        &self,
        s: &Signing<'_>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(CommitmentView, bool)> {
        let letter = Letter::version(s.letter_version).ok_or_else(|| {
            AppError::invalid(
                "letter_version",
                format!(
                    "{} is not a letter version; the current one is {}",
                    tongxing_domain::text::quote(s.letter_version),
                    Letter::current().version
                ),
            )
        })?;
        let expected = sha256_hex(&letter.signed_text());
        if !expected.eq_ignore_ascii_case(s.letter_sha256.trim()) {
            return Err(AppError::invalid(
                "letter_sha256",
                format!(
                    "is not the SHA-256 of version {}'s text ({expected}): show the text served and sign that",
                    letter.version
                ),
            ));
        }
        if !SIGNED_VIA.contains(&s.signed_via) {
            return Err(AppError::invalid(
                "signed_via",
                format!("{} is not one of: {}", tongxing_domain::text::quote(s.signed_via), SIGNED_VIA.join(", ")),
            ));
        }
        let lab = LabCode::parse(s.lab).at("test_point")?;
        let sample_id = SampleId::parse(s.sample_id).at("sample_id")?;
        let policy = self.policy_at(now)?;
        // The deadline counts from sampling; the store reads the sample's time.
        let sampled_at = self
            .store
            .sample_history(lab.as_str(), sample_id.as_str())
            .await?
            .last()
            .map(|r| r.sampled_at)
            .ok_or_else(|| AppError::invalid("sample_id", format!("no sample {sample_id} from test point {lab}")))?;
        let place = if s.signed_via == "citizen_phone" { "citizen-phone" } else { lab.as_str() };
        let record = NewCommitment {
            doc_key: &s.document.key(),
            lab: lab.as_str(),
            sample_id: sample_id.as_str(),
            letter_version: &letter.version,
            letter_sha256: &expected,
            signed_at: now,
            place,
            signed_via: s.signed_via,
            signed_by: by,
            deadline: sampled_at + policy.result_deadline(),
        };
        match self.store.sign_commitment(&record).await? {
            Ok((c, created)) => Ok((c.into(), created)),
            Err(SignRefusal::NoSample) => Err(AppError::invalid(
                "sample_id",
                format!("no sample {sample_id} from test point {lab} is registered for this person"),
            )),
            Err(SignRefusal::NotPending(result)) => Err(AppError::Conflict(format!(
                "the sample's result is known ({result}): a letter covers a pending sample only"
            ))),
            Err(SignRefusal::NotServiceArea) => {
                Err(AppError::invalid("sample_id", "the sample was not taken at a service-area test point"))
            }
            Err(SignRefusal::OtherPerson) => {
                Err(AppError::Conflict("another person's letter covers this sample".into()))
            }
        }
    }

    /// A person's commitments, newest first.
    pub async fn commitments_of(&self, person_id: i64) -> AppResult<Vec<CommitmentView>> {
        Ok(self.store.commitments_of(person_id).await?.into_iter().map(CommitmentView::from).collect())
    }

    /// Stores results (API or import) and follows up what they answer; the passes of people
    /// whose code changed are revoked.
    pub async fn submit_samples(
        &self,
        inputs: &[SampleInput],
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<Vec<SampleOutcome>> {
        let (outcomes, follow_ups) = self.store.submit_samples_following(inputs, by, now).await?;
        self.after(&follow_ups).await?;
        Ok(outcomes)
    }

    /// A pool's result from its lab.
    pub async fn pool_result(
        &self,
        lab: &LabCode,
        pool_id: &SampleId,
        result: TestResult,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(usize, Vec<i64>)> {
        if !matches!(result, TestResult::Negative | TestResult::Positive) {
            return Err(AppError::invalid("result", "a pool's result is negative or positive"));
        }
        let (members, follow_ups) = self.store.pool_result(lab.as_str(), pool_id.as_str(), result, by, now).await?;
        self.after(&follow_ups).await?;
        Ok((members, follow_ups.alerts))
    }

    /// Ends the commitments past their deadline, in passes of at most `limit`; returns how
    /// many alerts were raised.
    pub async fn scan_overdue(&self, now: DateTime<Utc>, limit: i64) -> AppResult<usize> {
        let mut raised = 0;
        // Bounded, so that one call never runs away; the next scan takes the rest.
        for _ in 0..1000 {
            let f = self.store.scan_overdue(now, limit).await?;
            self.after(&f).await?;
            raised += f.alerts.len();
            if (f.alerts.len() as i64) < limit {
                break;
            }
        }
        Ok(raised)
    }

    async fn after(&self, f: &FollowUps) -> AppResult<()> {
        if !f.alerts.is_empty() {
            // This server's stream clients get the alerts now, not at the next poll.
            self.store.outbox_written();
        }
        if !f.colour_changes.is_empty() {
            // Their revocations were queued with the colours; this server has them listed now.
            self.drain_revocation_queue().await?;
        }
        Ok(())
    }
}
