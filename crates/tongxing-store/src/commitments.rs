//! Samples registered at the service-area test points, the commitment letters signed for them,
//! and what follows: a result ends a commitment in the transaction that stores it (a positive
//! one raises an alert and turns the code red), the overdue scan ends those whose result is
//! late, a positive pool turns its members yellow. The statements are instantiated per
//! database in the same modules as `sql.rs` (`commitments_impl!`), sharing its helpers.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::PersonId;

pub(crate) const HOUR_MS: i64 = 3_600_000;
/// How far back an alert lists a person's entries: 14 days, the longest a commuter's test
/// stays valid (a commitment's sample is hours old; this bounds a pathological one).
pub(crate) const CONTEXT_HOURS: i64 = 14 * 24;
/// At most this many entries in one alert.
pub(crate) const MAX_CONTEXT_ENTRIES: usize = 200;
/// Hours of a person's entries read by one statement.
pub(crate) const HOURS_PER_QUERY: usize = 24;
/// A person's entries in up to [`HOURS_PER_QUERY`] hours ($4…): through the index that leads
/// with the hour of the check (migration 0009).
pub(crate) static ENTRIES_BY_HOURS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let slots: Vec<String> = (4..4 + HOURS_PER_QUERY).map(|i| format!("${i}")).collect();
    format!(
        "SELECT checkpoint_id, checked_at, plate, verdict FROM entry_events
         WHERE checked_at / 3600000 IN ({}) AND person_id = $1 AND checked_at >= $2 AND checked_at <= $3
         ORDER BY checked_at LIMIT {MAX_CONTEXT_ENTRIES}",
        slots.join(", ")
    )
});
/// Others checked in the same vehicle at the same checkpoint within this of an entry.
pub(crate) const CO_TRAVELLER_MS: i64 = 600_000;

/// A commitment letter to record.
#[derive(Debug, Clone)]
pub struct NewCommitment<'a> {
    pub doc_key: &'a str,
    pub lab: &'a str,
    pub sample_id: &'a str,
    pub letter_version: &'a str,
    pub letter_sha256: &'a str,
    pub signed_at: DateTime<Utc>,
    /// The test point where it was signed, or "citizen-phone".
    pub place: &'a str,
    /// test_point_device or citizen_phone.
    pub signed_via: &'a str,
    pub signed_by: &'a str,
    pub deadline: DateTime<Utc>,
}

/// A commitment as stored.
#[derive(Debug, Clone, Serialize)]
pub struct CommitmentRecord {
    pub id: i64,
    #[serde(skip)]
    pub person_id: PersonId,
    pub lab: String,
    pub sample_id: String,
    pub letter_version: String,
    pub letter_sha256: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub signed_at: DateTime<Utc>,
    pub place: String,
    pub signed_via: String,
    /// pending, fulfilled, positive or overdue.
    pub status: String,
    /// When the result is due (the policy's deadline after sampling).
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub deadline: DateTime<Utc>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Why signing was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignRefusal {
    /// No such sample, or not this person's.
    NoSample,
    /// The sample's result is known already.
    NotPending(String),
    /// The sample was not taken at a service-area test point.
    NotServiceArea,
    /// Another person's letter covers the sample.
    OtherPerson,
}

/// What a submission changed besides the samples: the people whose code changed (their passes
/// are revoked by the caller, who holds the keys) and the alerts raised.
#[derive(Debug, Clone, Default)]
pub struct FollowUps {
    pub colour_changes: Vec<PersonId>,
    pub alerts: Vec<i64>,
}

impl FollowUps {
    pub fn extend(&mut self, other: FollowUps) {
        self.colour_changes.extend(other.colour_changes);
        self.alerts.extend(other.alerts);
    }
}

macro_rules! commitment_select {
    ($where:literal) => {
        concat!(
            "SELECT id, person_id, lab, sample_id, letter_version, letter_sha256, signed_at, place, signed_via, status,
                    deadline, resolved_at FROM commitments ",
            $where
        )
    };
}
pub(crate) use commitment_select;

/// Instantiated inside the modules of `sql_impl!` (it uses their `person_query` and the
/// alerts module of the same database).
macro_rules! commitments_impl {
    ($db:ty, alerts = $alerts:path) => {
        use $alerts as alerts_db;
        use crate::commitments::{CONTEXT_HOURS, CO_TRAVELLER_MS, HOUR_MS, MAX_CONTEXT_ENTRIES};

        fn commitment_record(r: &<$db as sqlx::Database>::Row) -> CommitmentRecord {
            CommitmentRecord {
                id: r.get(0),
                person_id: r.get(1),
                lab: r.get(2),
                sample_id: r.get(3),
                letter_version: r.get(4),
                letter_sha256: r.get(5),
                signed_at: from_ms(r.get(6)),
                place: r.get(7),
                signed_via: r.get(8),
                status: r.get(9),
                deadline: from_ms(r.get(10)),
                resolved_at: r.get::<Option<i64>, _>(11).map(from_ms),
            }
        }

        /// Sets a person's code in the caller's transaction, with its history.
        async fn set_code_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            person_id: PersonId,
            colour: CodeColour,
            reason: Option<&str>,
            by: &str,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO health_codes (person_id, colour, reason, expires_at, set_at, set_by) VALUES ($1, $2, $3, NULL, $4, $5)
                 ON CONFLICT (person_id) DO UPDATE SET colour = excluded.colour, reason = excluded.reason,
                    expires_at = NULL, set_at = excluded.set_at, set_by = excluded.set_by",
            )
            .bind(person_id)
            .bind(colour.as_str())
            .bind(reason)
            .bind(ms(at))
            .bind(by)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO health_code_history (person_id, colour, reason, expires_at, set_at, set_by) VALUES ($1, $2, $3, NULL, $4, $5)",
            )
            .bind(person_id)
            .bind(colour.as_str())
            .bind(reason)
            .bind(ms(at))
            .bind(by)
            .execute(&mut **tx)
            .await?;
            if colour != CodeColour::Green {
                sqlx::query(crate::citizens::QUEUE_REVOCATION)
                    .bind(person_id)
                    .bind(format!("code {colour}: {}", reason.unwrap_or("")))
                    .bind(ms(at))
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }

        /// Who a person is, as the people who act on an alert need it: masked, with the phone
        /// to reach them.
        async fn person_context_in(tx: &mut sqlx::Transaction<'_, $db>, person_id: PersonId) -> Result<serde_json::Value, StoreError> {
            let person = sqlx::query("SELECT doc_number, name, phone FROM people WHERE id = $1")
                .bind(person_id)
                .fetch_optional(&mut **tx)
                .await?;
            let (doc, name, phone): (String, Option<String>, Option<String>) = match &person {
                Some(r) => (r.get(0), r.get(1), r.get(2)),
                None => (String::new(), None, None),
            };
            Ok(serde_json::json!({
                "document": tongxing_domain::mask::document_number(&doc),
                "name": name.as_deref().map(tongxing_domain::mask::name),
                "phone": phone.as_deref().map(tongxing_domain::mask::phone),
            }))
        }

        /// What the people who act on an alert need about a person: who (masked, and the
        /// phone to reach them), every entry from `since` to `until` (checkpoint, time, plate;
        /// at most the last [`CONTEXT_HOURS`] hours) and the others checked in the same vehicle
        /// at the same checkpoint within ten minutes. Read hour by hour through the indexes
        /// that lead with the hour of the check (migration 0009).
        async fn alert_context_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            person_id: PersonId,
            since: i64,
            until: i64,
        ) -> Result<serde_json::Value, StoreError> {
            let person = person_context_in(tx, person_id).await?;
            let since = since.max(until - CONTEXT_HOURS * HOUR_MS);
            // One statement per 24 hours of the window (an index seek per hour): a fixed text,
            // so it is prepared once per connection; a shorter chunk repeats its last hour.
            let hours: Vec<i64> = (since.div_euclid(HOUR_MS)..=until.div_euclid(HOUR_MS)).collect();
            let mut entries = Vec::new();
            for chunk in hours.chunks(crate::commitments::HOURS_PER_QUERY) {
                if entries.len() >= MAX_CONTEXT_ENTRIES {
                    break;
                }
                let mut q = sqlx::query(crate::commitments::ENTRIES_BY_HOURS.as_str()).bind(person_id).bind(since).bind(until);
                for i in 0..crate::commitments::HOURS_PER_QUERY {
                    q = q.bind(chunk.get(i).or(chunk.last()).copied().unwrap_or_default());
                }
                entries.extend(q.fetch_all(&mut **tx).await?);
            }
            entries.truncate(MAX_CONTEXT_ENTRIES);
            let mut entry_list = Vec::new();
            let mut travellers = Vec::new();
            for e in &entries {
                let (cp, at, plate, verdict): (String, i64, Option<String>, String) = (e.get(0), e.get(1), e.get(2), e.get(3));
                entry_list.push(serde_json::json!({
                    "checkpoint_id": cp, "checked_at": tongxing_domain::time::rfc3339(from_ms(at)), "plate": plate, "verdict": verdict,
                }));
                let Some(plate) = plate else { continue };
                let (from, to) = (at - CO_TRAVELLER_MS, at + CO_TRAVELLER_MS);
                for hour in from.div_euclid(HOUR_MS)..=to.div_euclid(HOUR_MS) {
                    let others = sqlx::query(
                        "SELECT e.doc_key, e.checked_at, p.name, p.phone FROM entry_events e LEFT JOIN people p ON p.id = e.person_id
                         WHERE e.checked_at / 3600000 = $1 AND e.plate = $2 AND e.checked_at >= $3 AND e.checked_at <= $4
                           AND e.plate IS NOT NULL AND e.checkpoint_id = $5 AND (e.person_id IS NULL OR e.person_id <> $6) LIMIT 100",
                    )
                    .bind(hour)
                    .bind(&plate)
                    .bind(from)
                    .bind(to)
                    .bind(&cp)
                    .bind(person_id)
                    .fetch_all(&mut **tx)
                    .await?;
                    for o in others {
                        let key: String = o.get(0);
                        let number = key.split_once(':').map(|(_, n)| n.to_string()).unwrap_or(key);
                        travellers.push(serde_json::json!({
                            "document": tongxing_domain::mask::document_number(&number),
                            "name": o.get::<Option<String>, _>(2).as_deref().map(tongxing_domain::mask::name),
                            "phone": o.get::<Option<String>, _>(3).as_deref().map(tongxing_domain::mask::phone),
                            "checkpoint_id": cp, "plate": plate,
                            "checked_at": tongxing_domain::time::rfc3339(from_ms(o.get(1))),
                        }));
                    }
                }
            }
            Ok(serde_json::json!({
                "person": person,
                "entries": entry_list,
                "co_travellers": travellers,
            }))
        }

        /// Ends the commitments that `results` (lab, sample_id, result) answer, in the caller's
        /// transaction: fulfilled, or positive with an alert and a red code; a late negative
        /// lifts the overdue yellow.
        pub(crate) async fn follow_up_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            results: &[(&str, &str, TestResult)],
            by: &str,
            at: DateTime<Utc>,
        ) -> Result<FollowUps, StoreError> {
            let mut out = FollowUps::default();
            for (lab, sample_id, result) in results {
                let row = sqlx::query(commitment_select!(
                    "WHERE lab = $1 AND sample_id = $2 AND status IN ('pending', 'overdue')"
                ))
                .bind(*lab)
                .bind(*sample_id)
                .fetch_optional(&mut **tx)
                .await?;
                let Some(c) = row.as_ref().map(commitment_record) else { continue };
                let status = CommitmentStatus::parse(&c.status).map_err(StoreError::Corrupt)?;
                let Some((to, change)) = tongxing_domain::commitment::on_result(status, *result) else { continue };
                sqlx::query("UPDATE commitments SET status = $2, resolved_at = $3 WHERE id = $1")
                    .bind(c.id)
                    .bind(to.as_str())
                    .bind(ms(at))
                    .execute(&mut **tx)
                    .await?;
                match change {
                    Some(CodeChange::Red) => {
                        set_code_in(tx, c.person_id, CodeColour::Red, Some(tongxing_domain::commitment::POSITIVE_REASON), by, at)
                            .await?;
                        out.colour_changes.push(c.person_id);
                        let sampled: i64 = sqlx::query("SELECT sampled_at FROM samples WHERE lab = $1 AND sample_id = $2")
                            .bind(*lab)
                            .bind(*sample_id)
                            .fetch_one(&mut **tx)
                            .await?
                            .get(0);
                        let mut payload = alert_context_in(tx, c.person_id, sampled, ms(at)).await?;
                        payload["sample"] = serde_json::json!({
                            "lab": lab, "sample_id": sample_id, "result": result.as_str(),
                            "sampled_at": tongxing_domain::time::rfc3339(from_ms(sampled)),
                            "place": c.place, "letter_signed_at": tongxing_domain::time::rfc3339(c.signed_at),
                        });
                        let alert = NewAlert {
                            kind: "positive".into(),
                            dedup_key: format!("positive:{lab}/{sample_id}"),
                            person_id: Some(c.person_id),
                            payload,
                            at,
                        };
                        if let Some(id) = alerts_db::raise_alert_in(tx, &alert).await? {
                            out.alerts.push(id);
                        }
                    }
                    Some(CodeChange::LiftOverdue) => {
                        // Only the yellow the overdue scan set is lifted; another colour set since stays.
                        let current: Option<String> =
                            sqlx::query_scalar("SELECT reason FROM health_codes WHERE person_id = $1 AND colour = 'yellow'")
                                .bind(c.person_id)
                                .fetch_optional(&mut **tx)
                                .await?
                                .flatten();
                        if current.as_deref() == Some(tongxing_domain::commitment::OVERDUE_REASON) {
                            set_code_in(tx, c.person_id, CodeColour::Green, None, by, at).await?;
                        }
                    }
                    None => {}
                }
            }
            Ok(out)
        }

        impl crate::Pools<$db> {
            /// Registers a sample taken at a test point (result pending), creating the person
            /// if needed; the same registration again changes nothing.
            pub(crate) async fn register_sample(
                &self,
                input: &SampleInput,
                pool_id: Option<&str>,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<SampleOutcome, StoreError> {
                let mut tx = self.write.begin().await?;
                let person = PersonInput { document: input.document.clone(), name: None, phone: None, residence_region: None };
                let person_id: i64 = person_query(crate::sql::UPSERT_PERSON_KEEP, &person, at).fetch_one(&mut *tx).await?.get(0);
                let inserted = sqlx::query(
                    "INSERT INTO samples (lab, sample_id, person_id, sampled_at, sampled_week, site, site_kind, result, revision,
                        updated_at, updated_by, pool_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11) ON CONFLICT (lab, sample_id) DO NOTHING",
                )
                .bind(&input.lab)
                .bind(&input.sample_id)
                .bind(person_id)
                .bind(ms(input.sampled_at))
                .bind(crate::model::week(ms(input.sampled_at)))
                .bind(&input.site)
                .bind(input.site_kind.as_str())
                .bind(input.result.as_str())
                .bind(ms(at))
                .bind(by)
                .bind(pool_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    tx.commit().await?;
                    return Ok(SampleOutcome::Accepted);
                }
                let stored = sqlx::query("SELECT person_id, sampled_at, site, pool_id FROM samples WHERE lab = $1 AND sample_id = $2")
                    .bind(&input.lab)
                    .bind(&input.sample_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let same = stored.get::<i64, _>(0) == person_id
                    && stored.get::<i64, _>(1) == ms(input.sampled_at)
                    && stored.get::<String, _>(2) == input.site
                    && stored.get::<Option<String>, _>(3).as_deref() == pool_id;
                if same {
                    Ok(SampleOutcome::Unchanged)
                } else {
                    Err(StoreError::Conflict(format!(
                        "sample {} of {} is registered already with other details (another person, time, site or pool)",
                        input.sample_id, input.lab
                    )))
                }
            }

            /// Records a commitment letter for a pending service-area sample of the person;
            /// `Ok(Err(..))` says why it was refused. The same sample signed again by the same
            /// person returns the first record.
            pub(crate) async fn sign_commitment(
                &self,
                c: &NewCommitment<'_>,
            ) -> Result<Result<(CommitmentRecord, bool), SignRefusal>, StoreError> {
                let mut tx = self.write.begin().await?;
                let sample = sqlx::query(
                    "SELECT s.person_id, s.result, s.site_kind FROM samples s JOIN people p ON p.id = s.person_id
                     WHERE s.lab = $1 AND s.sample_id = $2 AND p.doc_key = $3",
                )
                .bind(c.lab)
                .bind(c.sample_id)
                .bind(c.doc_key)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(sample) = sample else { return Ok(Err(SignRefusal::NoSample)) };
                let person_id: i64 = sample.get(0);
                if let Some(existing) = sqlx::query(commitment_select!("WHERE lab = $1 AND sample_id = $2"))
                    .bind(c.lab)
                    .bind(c.sample_id)
                    .fetch_optional(&mut *tx)
                    .await?
                {
                    let existing = commitment_record(&existing);
                    return Ok(if existing.person_id == person_id { Ok((existing, false)) } else { Err(SignRefusal::OtherPerson) });
                }
                let result: String = sample.get(1);
                if result != "pending" {
                    return Ok(Err(SignRefusal::NotPending(result)));
                }
                if sample.get::<String, _>(2) != "service_area" {
                    return Ok(Err(SignRefusal::NotServiceArea));
                }
                let row = sqlx::query(
                    "INSERT INTO commitments (person_id, lab, sample_id, letter_version, letter_sha256, signed_at, place, signed_via,
                        signed_by, deadline, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')
                     RETURNING id, person_id, lab, sample_id, letter_version, letter_sha256, signed_at, place, signed_via, status,
                        deadline, resolved_at",
                )
                .bind(person_id)
                .bind(c.lab)
                .bind(c.sample_id)
                .bind(c.letter_version)
                .bind(c.letter_sha256)
                .bind(ms(c.signed_at))
                .bind(c.place)
                .bind(c.signed_via)
                .bind(c.signed_by)
                .bind(ms(c.deadline))
                .fetch_one(&mut *tx)
                .await?;
                let record = commitment_record(&row);
                tx.commit().await?;
                Ok(Ok((record, true)))
            }

            /// For the benchmark: `open` pending commitments spread over the people with ids
            /// 1..=`people`, `due` of them with their deadline before `now` (one statement).
            pub(crate) async fn bench_commitments(
                &self,
                open: i64,
                due: i64,
                people: i64,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $1)
                     INSERT INTO commitments (person_id, lab, sample_id, letter_version, letter_sha256, signed_at, place, signed_via,
                        signed_by, deadline, status)
                     SELECT 1 + (i % $3), 'BENCH-TP', 'B' || CAST(i AS TEXT), 'bench', 'bench', $4, 'BENCH-TP', 'test_point_device',
                        'bench', CASE WHEN i <= $2 THEN $4 - 1000 ELSE $4 + 86400000 END, 'pending'
                     FROM n",
                )
                .bind(open)
                .bind(due)
                .bind(people)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn commitments_of(&self, person_id: PersonId) -> Result<Vec<CommitmentRecord>, StoreError> {
                let rows = sqlx::query(commitment_select!("WHERE person_id = $1 ORDER BY signed_at DESC, id DESC"))
                    .bind(person_id)
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows.iter().map(commitment_record).collect())
            }

            /// Ends up to `limit` pending commitments whose deadline has passed: overdue, an
            /// alert each, the code yellow until the result comes. One transaction.
            pub(crate) async fn scan_overdue(&self, now: DateTime<Utc>, limit: i64) -> Result<FollowUps, StoreError> {
                let mut tx = self.write.begin().await?;
                let rows = sqlx::query(commitment_select!(
                    "WHERE status = 'pending' AND deadline <= $1 ORDER BY deadline LIMIT $2"
                ))
                .bind(ms(now))
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let mut out = FollowUps::default();
                for c in rows.iter().map(commitment_record) {
                    let moved = sqlx::query("UPDATE commitments SET status = 'overdue' WHERE id = $1 AND status = 'pending'")
                        .bind(c.id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if moved == 0 {
                        continue;
                    }
                    let colour: Option<String> = sqlx::query_scalar("SELECT colour FROM health_codes WHERE person_id = $1")
                        .bind(c.person_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    // A red code stays red; green (or none) turns yellow.
                    if colour.as_deref() != Some("red") && colour.as_deref() != Some("yellow") {
                        set_code_in(&mut tx, c.person_id, CodeColour::Yellow, Some(tongxing_domain::commitment::OVERDUE_REASON), "overdue-scan", now)
                            .await?;
                        out.colour_changes.push(c.person_id);
                    }
                    let mut payload = alert_context_in(&mut tx, c.person_id, ms(c.signed_at), ms(now)).await?;
                    payload["sample"] = serde_json::json!({
                        "lab": c.lab, "sample_id": c.sample_id, "place": c.place,
                        "deadline": tongxing_domain::time::rfc3339(c.deadline),
                        "letter_signed_at": tongxing_domain::time::rfc3339(c.signed_at),
                    });
                    let alert = NewAlert {
                        kind: "overdue".into(),
                        dedup_key: format!("overdue:{}/{}", c.lab, c.sample_id),
                        person_id: Some(c.person_id),
                        payload,
                        at: now,
                    };
                    if let Some(id) = alerts_db::raise_alert_in(&mut tx, &alert).await? {
                        out.alerts.push(id);
                    }
                }
                tx.commit().await?;
                Ok(out)
            }

            /// A pool's result: negative → every member's sample negative (ending their
            /// commitments); positive → every member's code yellow pending an individual retest,
            /// and one alert listing them. Returns the members' (doc key) and what followed.
            pub(crate) async fn pool_result(
                &self,
                lab: &str,
                pool_id: &str,
                result: TestResult,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<(usize, FollowUps), StoreError> {
                let mut tx = self.write.begin().await?;
                let members = sqlx::query(
                    "SELECT s.sample_id, s.person_id, s.result, s.revision FROM samples s WHERE s.lab = $1 AND s.pool_id = $2
                     ORDER BY s.sample_id",
                )
                .bind(lab)
                .bind(pool_id)
                .fetch_all(&mut *tx)
                .await?;
                if members.is_empty() {
                    return Err(StoreError::NotFound(format!("no samples of pool {pool_id} at {lab}")));
                }
                let mut out = FollowUps::default();
                let pending: Vec<(String, i64)> = members
                    .iter()
                    .filter(|m| m.get::<String, _>(2) == "pending")
                    .map(|m| (m.get::<String, _>(0), m.get::<i64, _>(1)))
                    .collect();
                match result {
                    TestResult::Negative => {
                        for (sid, _) in &pending {
                            sqlx::query(
                                "INSERT INTO sample_history (lab, sample_id, revision, result, sampled_at, site, site_kind, recorded_at, recorded_by)
                                 SELECT lab, sample_id, revision, result, sampled_at, site, site_kind, updated_at, updated_by
                                 FROM samples WHERE lab = $1 AND sample_id = $2",
                            )
                            .bind(lab)
                            .bind(sid)
                            .execute(&mut *tx)
                            .await?;
                            sqlx::query(
                                "UPDATE samples SET result = 'negative', revision = revision + 1, updated_at = $3, updated_by = $4
                                 WHERE lab = $1 AND sample_id = $2",
                            )
                            .bind(lab)
                            .bind(sid)
                            .bind(ms(at))
                            .bind(by)
                            .execute(&mut *tx)
                            .await?;
                        }
                        let keys: Vec<(&str, &str, TestResult)> =
                            pending.iter().map(|(sid, _)| (lab, sid.as_str(), TestResult::Negative)).collect();
                        out.extend(follow_up_in(&mut tx, &keys, by, at).await?);
                    }
                    TestResult::Positive => {
                        let mut listed = Vec::new();
                        for (sid, person_id) in &pending {
                            let colour: Option<String> = sqlx::query_scalar("SELECT colour FROM health_codes WHERE person_id = $1")
                                .bind(*person_id)
                                .fetch_optional(&mut *tx)
                                .await?;
                            if colour.as_deref() != Some("red") {
                                set_code_in(&mut tx, *person_id, CodeColour::Yellow, Some(tongxing_domain::commitment::POOL_REASON), by, at)
                                    .await?;
                                out.colour_changes.push(*person_id);
                            }
                            let person = person_context_in(&mut tx, *person_id).await?;
                            listed.push(serde_json::json!({ "person": person, "sample_id": sid }));
                        }
                        let alert = NewAlert {
                            kind: "pool_positive".into(),
                            dedup_key: format!("pool:{lab}/{pool_id}"),
                            person_id: None,
                            payload: serde_json::json!({"lab": lab, "pool_id": pool_id, "members": listed}),
                            at,
                        };
                        if let Some(id) = alerts_db::raise_alert_in(&mut tx, &alert).await? {
                            out.alerts.push(id);
                        }
                    }
                    other => {
                        return Err(StoreError::Conflict(format!(
                            "a pool's result is negative or positive, not {other}"
                        )));
                    }
                }
                tx.commit().await?;
                Ok((members.len(), out))
            }
        }
    };
}
pub(crate) use commitments_impl;
