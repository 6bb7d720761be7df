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

/// A pending service-area sample of a citizen (or a linked family member) that no letter
/// covers yet: the citizen may sign for it on their phone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LetterDue {
    /// The family link the sample's person is on; none for the citizen's own.
    pub link: Option<i64>,
    /// Masked.
    pub name: Option<String>,
    pub document: String,
    /// The test point (the sample's `lab`).
    pub test_point: String,
    pub sample_id: String,
    #[serde(serialize_with = "time::serialize")]
    pub sampled_at: DateTime<Utc>,
}

/// A designated service-area test point of the rules in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestPointView {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
}

/// A sample a test point took, as its staff see it in the day's list (the person masked).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DaySample {
    pub sample_id: String,
    pub pool_id: Option<String>,
    #[serde(serialize_with = "time::serialize")]
    pub sampled_at: DateTime<Utc>,
    /// pending, negative, positive or invalid: the result as it arrives.
    pub result: String,
    pub name: Option<String>,
    pub document: String,
    /// The letter's state when one was signed: pending, fulfilled, positive or overdue.
    pub letter: Option<String>,
}

/// A letter a citizen signs on their phone: for their own sample, or a linked family member's.
pub struct CitizenSigning<'a> {
    pub link: Option<i64>,
    pub test_point: &'a str,
    pub sample_id: &'a str,
    /// The version and SHA-256 of the text shown.
    pub letter_version: &'a str,
    pub letter_sha256: &'a str,
}

/// How far back a sample still waits for a letter: a result takes a day at most.
const LETTER_LOOK_BACK: chrono::Duration = chrono::Duration::days(3);

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

    /// The designated service-area test points of the rules in force at `now`.
    pub fn test_points(&self, now: DateTime<Utc>) -> AppResult<Vec<TestPointView>> {
        let rules = self.rules();
        let rule_set = tongxing_rules::select(&rules, now).ok_or_else(|| App::no_rule_set(now))?;
        let text = |d: &serde_json::Value, k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        Ok(rule_set
            .value_set(TEST_POINTS)
            .map(|v| {
                v.iter()
                    .map(|(id, d)| TestPointView {
                        id: id.clone(),
                        name_zh: text(d, "name_zh"),
                        name_en: text(d, "name_en"),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The samples a test point took on a day (Beijing time), newest first, with their results
    /// and letters as they stand; people masked.
    pub async fn test_point_day(&self, test_point: &LabCode, day: chrono::NaiveDate) -> AppResult<Vec<DaySample>> {
        let start = day
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(tongxing_domain::shanghai()).single())
            .ok_or_else(|| AppError::invalid("date", "not a day"))?
            .with_timezone(&Utc);
        let rows =
            self.store.samples_of_lab(test_point.as_str(), start, start + chrono::Duration::days(1), 2000).await?;
        Ok(rows
            .into_iter()
            .map(|r| DaySample {
                sample_id: r.sample_id,
                pool_id: r.pool_id,
                sampled_at: r.sampled_at,
                result: r.result,
                name: r.name.as_deref().map(tongxing_domain::mask::name),
                document: tongxing_domain::mask::document_number(&r.doc_number),
                letter: r.commitment,
            })
            .collect())
    }

    /// The document of the person a test point's sample was taken from (to take their letter on
    /// the test point's device without sending the number again).
    pub async fn sample_document(&self, lab: &LabCode, sample_id: &str) -> AppResult<Document> {
        let sample_id = SampleId::parse(sample_id).at("sample_id")?;
        let owner =
            self.store.sample_owner(lab.as_str(), sample_id.as_str()).await?.ok_or_else(|| {
                AppError::invalid("sample_id", format!("no sample {sample_id} from test point {lab}"))
            })?;
        Document::from_key(&owner.doc_key)
            .ok_or_else(|| AppError::Internal(format!("person {} has an unreadable document key", owner.id)))
    }

    /// The samples a citizen may sign a letter for: their own and their linked family's pending
    /// service-area samples of the last three days that no letter covers, newest first.
    pub async fn letters_due(&self, citizen_id: i64, now: DateTime<Utc>) -> AppResult<Vec<LetterDue>> {
        let mut people = vec![(None, citizen_id)];
        for l in self.store.family_links(citizen_id).await? {
            if l.status == "linked" {
                people.push((Some(l.id), l.member_id));
            }
        }
        let mut out = Vec::new();
        for (link, person_id) in people {
            let signed: Vec<(String, String)> =
                self.store.commitments_of(person_id).await?.into_iter().map(|c| (c.lab, c.sample_id)).collect();
            let record = self.person_record(person_id).await?;
            for s in self.store.samples_of(person_id, now - LETTER_LOOK_BACK, now + CLOCK_SKEW, 50).await? {
                let pending = s.result == TestResult::Pending.as_str();
                let service_area = s.site_kind == SiteKind::ServiceArea.as_str();
                if pending && service_area && !signed.iter().any(|(l, id)| *l == s.lab && *id == s.sample_id) {
                    out.push(LetterDue {
                        link,
                        name: record.name.as_deref().map(tongxing_domain::mask::name),
                        document: tongxing_domain::mask::document_number(&record.doc_number),
                        test_point: s.lab,
                        sample_id: s.sample_id,
                        sampled_at: s.sampled_at,
                    });
                }
            }
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.sampled_at));
        Ok(out)
    }

    /// Signs the letter on a citizen's phone, for their own sample or a linked family member's
    /// (`link`), with the text shown (its version and SHA-256).
    pub async fn sign_letter_as_citizen(
        &self,
        citizen_id: i64,
        s: &CitizenSigning<'_>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(CommitmentView, bool)> {
        let person_id = match s.link {
            None => citizen_id,
            Some(l) => self.member_of(citizen_id, l).await?,
        };
        let record = self.person_record(person_id).await?;
        let document = Document::from_key(&record.doc_key)
            .ok_or_else(|| AppError::Internal(format!("person {person_id} has an unreadable document key")))?;
        let signing = Signing {
            document,
            lab: s.test_point,
            sample_id: s.sample_id,
            letter_version: s.letter_version,
            letter_sha256: s.letter_sha256,
            signed_via: "citizen_phone",
        };
        self.sign_letter(&signing, by, now).await
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
