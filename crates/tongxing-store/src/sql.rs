//! The SQL both databases share. The statements are written once, in the dialect common to
//! SQLite and PostgreSQL (`$n` parameters, `ON CONFLICT`, `RETURNING`, row values), and
//! instantiated for each driver by `sql_impl!`, so there is one implementation to read and the
//! type checker still sees each driver's concrete types (sqlx has no useful generic executor).

use std::collections::{HashMap, HashSet};

use tongxing_domain::facts::{SiteKind, TestResult};

use crate::model::{SampleInput, SampleOutcome};

/// The stored state of one sample, enough to tell unchanged from corrected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredSample {
    pub person_id: i64,
    pub sampled_at: i64,
    pub site: String,
    pub site_kind: String,
    pub result: String,
    pub revision: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

pub(crate) type SampleKey = (String, String);

/// What to write for the samples that were not new, decided in memory.
pub(crate) struct SamplePlan<'a> {
    pub outcomes: Vec<SampleOutcome>,
    /// (input, person id, new revision): corrections to apply, in order.
    pub updates: Vec<(&'a SampleInput, i64, i64)>,
    /// The versions corrections replace, for the history.
    pub history: Vec<(SampleKey, StoredSample)>,
}

pub(crate) fn site_kind_str(k: SiteKind) -> &'static str {
    k.as_str()
}
pub(crate) fn result_str(r: TestResult) -> &'static str {
    r.as_str()
}

/// Classifies each input. `inserted` holds the keys the batch's `INSERT .. ON CONFLICT DO
/// NOTHING` created (the first input with such a key is the accepted one); `stored` holds what
/// was already stored for the other keys. A key repeated within the batch is compared with its
/// earlier version, so the batch behaves exactly as the same rows sent one by one.
pub(crate) fn plan_samples<'a>(
    inputs: &'a [SampleInput],
    people: &HashMap<String, i64>,
    inserted: &HashSet<SampleKey>,
    mut stored: HashMap<SampleKey, StoredSample>,
    by: &str,
    now: i64,
) -> SamplePlan<'a> {
    let mut plan = SamplePlan { outcomes: Vec::with_capacity(inputs.len()), updates: Vec::new(), history: Vec::new() };
    let mut first_seen: HashSet<SampleKey> = HashSet::new();
    for input in inputs {
        // Ids are read only when some row is not new; a new row's id is not needed here.
        let person_id = people.get(&input.document.key()).copied().unwrap_or(0);
        let key = (input.lab.clone(), input.sample_id.clone());
        let new = StoredSample {
            person_id,
            sampled_at: crate::model::ms(input.sampled_at),
            site: input.site.clone(),
            site_kind: site_kind_str(input.site_kind).to_string(),
            result: result_str(input.result).to_string(),
            revision: 1,
            updated_at: now,
            updated_by: by.to_string(),
        };
        if inserted.contains(&key) && first_seen.insert(key.clone()) {
            stored.insert(key, new);
            plan.outcomes.push(SampleOutcome::Accepted);
            continue;
        }
        let Some(old) = stored.get_mut(&key) else {
            // Cannot happen: a key is either inserted now or was stored before.
            plan.outcomes.push(SampleOutcome::Unchanged);
            continue;
        };
        let same = old.person_id == new.person_id
            && old.sampled_at == new.sampled_at
            && old.site == new.site
            && old.site_kind == new.site_kind
            && old.result == new.result;
        if same {
            plan.outcomes.push(SampleOutcome::Unchanged);
        } else {
            let revision = old.revision + 1;
            plan.history.push((key, old.clone()));
            *old = StoredSample { revision, ..new };
            plan.updates.push((input, person_id, revision));
            plan.outcomes.push(SampleOutcome::Corrected);
        }
    }
    plan
}

/// One row of a sample batch, as sent to the database in a single JSON parameter.
#[derive(serde::Serialize)]
pub(crate) struct SampleRow<'a> {
    pub k: String,
    pub dk: &'static str,
    pub dn: &'a str,
    pub l: &'a str,
    pub s: &'a str,
    pub t: i64,
    /// The sampling week, `crate::model::week(t)`.
    pub w: i64,
    pub si: &'a str,
    pub sk: &'static str,
    pub r: &'static str,
    /// The person's id, when known before the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<i64>,
}

impl<'a> SampleRow<'a> {
    pub fn new(i: &'a SampleInput) -> Self {
        SampleRow {
            k: i.document.key(),
            dk: i.document.kind().as_str(),
            dn: i.document.number(),
            l: &i.lab,
            s: &i.sample_id,
            t: crate::model::ms(i.sampled_at),
            w: crate::model::week(crate::model::ms(i.sampled_at)),
            si: &i.site,
            sk: site_kind_str(i.site_kind),
            r: result_str(i.result),
            p: None,
        }
    }
}

/// One entry event, as sent to the database in a single JSON parameter.
#[derive(serde::Serialize)]
pub(crate) struct EntryRow<'a> {
    pub c: &'a str,
    pub t: i64,
    pub k: &'a str,
    pub p: Option<i64>,
    pub v: &'static str,
    pub r: String,
    pub pi: &'a str,
    pub pv: &'a str,
    pub rv: String,
    pub f: String,
    pub pl: Option<&'a str>,
    pub o: &'a str,
    pub vi: &'static str,
}

/// Batches travel as one JSON array parameter, unpacked by the database into rows with named
/// columns (`samples` for [`SampleRow`], `entries` for [`EntryRow`]): on SQLite a subquery over
/// `jsonb_each($1)`, on PostgreSQL `jsonb_to_recordset($1::jsonb)` with typed columns. One
/// prepared statement and one round trip per batch, whatever its size. Results of many rows come
/// back the same way, aggregated into one JSON text (`agg`, `arr`: `json_group_array`/
/// `json_array` on SQLite, `json_agg`/`json_build_array` on PostgreSQL).
/// Registers a person or updates the fields given (`None` keeps what is stored); returns the id.
/// Binds: doc_key, doc_kind, doc_number, name, phone, residence_region, time.
pub(crate) const UPSERT_PERSON: &str =
    "INSERT INTO people (doc_key, doc_kind, doc_number, name, phone, residence_region, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                     ON CONFLICT (doc_key) DO UPDATE SET
                        name = COALESCE(excluded.name, people.name),
                        phone = COALESCE(excluded.phone, people.phone),
                        residence_region = COALESCE(excluded.residence_region, people.residence_region),
                        updated_at = excluded.updated_at
                     RETURNING id";

/// Like [`UPSERT_PERSON`], but what is stored wins over the input (an imported list never
/// overwrites details the person gave themselves).
pub(crate) const UPSERT_PERSON_KEEP: &str =
    "INSERT INTO people (doc_key, doc_kind, doc_number, name, phone, residence_region, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                         ON CONFLICT (doc_key) DO UPDATE SET name = COALESCE(people.name, excluded.name),
                            phone = COALESCE(people.phone, excluded.phone), residence_region = COALESCE(people.residence_region, excluded.residence_region)
                         RETURNING id";

/// Column 9 of the facts statements: whether a signed commitment letter covers a sample of the
/// person's whose result is still pending (the letter is the only evidence for conditional
/// entry).
macro_rules! commitment_letter {
    () => {
        "(SELECT COUNT(*) FROM commitments cl JOIN samples sl ON sl.lab = cl.lab AND sl.sample_id = cl.sample_id
          WHERE cl.person_id = p.id AND cl.status IN ('pending', 'overdue') AND sl.result = 'pending')"
    };
}
pub(crate) use commitment_letter;

/// The columns of a person, in the order `person_record` reads them.
/// A person's colour now, and its history row: the same six parameters.
pub(crate) const SET_CODE: &str = "INSERT INTO health_codes (person_id, colour, reason, expires_at, set_at, set_by)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (person_id) DO UPDATE SET colour = excluded.colour, reason = excluded.reason,
        expires_at = excluded.expires_at, set_at = excluded.set_at, set_by = excluded.set_by";
pub(crate) const CODE_HISTORY: &str =
    "INSERT INTO health_code_history (person_id, colour, reason, expires_at, set_at, set_by)
    VALUES ($1, $2, $3, $4, $5, $6)";

macro_rules! person_select {
    () => {
        "SELECT id, doc_key, doc_kind, doc_number, name, phone, residence_region, created_at, updated_at FROM people"
    };
}

pub(crate) use person_select;

macro_rules! sql_impl {
    ($db:ty, samples = $samples:literal, entries = $entries:literal, agg = $agg:literal, arr = $arr:literal, weeks = $weeks:literal) => {
        fn person_record(r: &<$db as sqlx::Database>::Row) -> PersonRecord {
            PersonRecord {
                id: r.get(0),
                doc_key: r.get(1),
                doc_kind: r.get(2),
                doc_number: r.get(3),
                name: r.get(4),
                phone: r.get(5),
                residence_region: r.get(6),
                created_at: from_ms(r.get(7)),
                updated_at: from_ms(r.get(8)),
            }
        }

        /// A person's facts from the columns 2..=9 of the facts statements.
        fn person_facts(r: &<$db as sqlx::Database>::Row) -> Result<PersonFacts, StoreError> {
            let code = match r.get::<Option<String>, _>(2) {
                Some(c) => Some(CodeFacts {
                    colour: CodeColour::parse(&c).map_err(StoreError::Corrupt)?,
                    reason: r.get(3),
                    expires_at: r.get::<Option<i64>, _>(4).map(from_ms),
                }),
                None => None,
            };
            let commuter = match r.get::<Option<String>, _>(5) {
                Some(s) => Some(CommuterFacts {
                    status: CommuterStatus::parse(&s).map_err(StoreError::Corrupt)?,
                    valid_until: r.get::<Option<i64>, _>(6).map(from_ms),
                    first_checked_at: r.get::<Option<i64>, _>(7).map(from_ms),
                }),
                None => None,
            };
            let samples = parse_sample_facts(r.get::<Option<String>, _>(8).as_deref())?;
            let commitment_letter = r.get::<i64, _>(9) > 0;
            Ok(PersonFacts { known: true, code, commuter, samples, commitment_letter })
        }

        impl crate::Pools<$db> {
            pub(crate) async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            pub(crate) async fn upsert_person(&self, p: &PersonInput, at: DateTime<Utc>) -> Result<PersonId, StoreError> {
                let row = person_query(crate::sql::UPSERT_PERSON, p, at)
                .fetch_one(&self.write)
                .await?;
                Ok(row.get::<i64, _>(0))
            }

            pub(crate) async fn person(&self, doc_key: &str) -> Result<Option<PersonRecord>, StoreError> {
                let row = sqlx::query(concat!($crate::sql::person_select!(), " WHERE doc_key = $1"))
                    .bind(doc_key)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.as_ref().map(person_record))
            }

            pub(crate) async fn person_by_id(&self, id: PersonId) -> Result<Option<PersonRecord>, StoreError> {
                let row = sqlx::query(concat!($crate::sql::person_select!(), " WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.as_ref().map(person_record))
            }

            /// The person's samples taken from `since` to `until`, newest first, at most `limit`.
            pub(crate) async fn samples_of(
                &self,
                person_id: PersonId,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<SampleRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT lab, sample_id, sampled_at, site, site_kind, result, revision, updated_at
                     FROM samples WHERE sampled_week ", $weeks, " AND person_id = $1 AND sampled_at >= $5 AND sampled_at <= $6
                     ORDER BY sampled_at DESC LIMIT $2"
                ))
                .bind(person_id)
                .bind(limit)
                .bind(crate::model::week(ms(since)))
                .bind(crate::model::week(ms(until)))
                .bind(ms(since))
                .bind(ms(until))
                .fetch_all(&self.read)
                .await?;
                Ok(rows.iter().map(sample_record).collect())
            }

            /// Every version of a sample, oldest first: the replaced ones, then the current one.
            pub(crate) async fn sample_history(&self, lab: &str, sample_id: &str) -> Result<Vec<SampleRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT lab, sample_id, sampled_at, site, site_kind, result, revision, recorded_at
                     FROM sample_history WHERE lab = $1 AND sample_id = $2
                     UNION ALL
                     SELECT lab, sample_id, sampled_at, site, site_kind, result, revision, updated_at
                     FROM samples WHERE lab = $1 AND sample_id = $2
                     ORDER BY 7",
                )
                .bind(lab)
                .bind(sample_id)
                .fetch_all(&self.read)
                .await?;
                Ok(rows.iter().map(sample_record).collect())
            }

            /// Writes a batch whose samples are all new, in one transaction; `None` (and nothing
            /// written) if one of them is stored already or the batch repeats a sample.
            ///
            /// The people's ids are read first, outside the write transaction (people are never
            /// deleted and a document's id never changes, so what a snapshot says stays true):
            /// the single writer then only inserts, without looking anyone up.
            pub(crate) async fn submit_new_samples(
                &self,
                inputs: &[SampleInput],
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<Option<Vec<SampleOutcome>>, StoreError> {
                let mut keys = HashSet::with_capacity(inputs.len());
                if !inputs.iter().all(|i| keys.insert((i.lab.as_str(), i.sample_id.as_str()))) {
                    return Ok(None);
                }
                let now = ms(at);
                let mut rows: Vec<SampleRow> = inputs.iter().map(SampleRow::new).collect();
                let mut seen = HashSet::with_capacity(rows.len());
                let persons: Vec<&SampleRow> = rows.iter().filter(|r| seen.insert(r.k.as_str())).collect();
                let mut ids = people_ids(&self.read, &to_json(&persons)?).await?;
                let missing: Vec<&SampleRow> = persons.into_iter().filter(|r| !ids.contains_key(&r.k)).collect();
                // Prepared before the write transaction when everyone is known (the usual case).
                let (ready, missing) = if missing.is_empty() {
                    (Some(rows_with_ids(&mut rows, &ids)?), String::new())
                } else {
                    (None, to_json(&missing)?)
                };

                let mut tx = self.write.begin().await?;
                let json = if let Some(json) = ready {
                    json
                } else {
                    create_people(&mut tx, &missing, now).await?;
                    ids.extend(people_ids(&mut *tx, &missing).await?);
                    rows_with_ids(&mut rows, &ids)?
                };
                let done = sqlx::query(concat!(
                    "INSERT INTO samples (lab, sample_id, person_id, sampled_at, sampled_week, site, site_kind, result, revision, updated_at, updated_by)
                     SELECT j.l, j.s, CAST(j.p AS BIGINT), CAST(j.t AS BIGINT), CAST(j.w AS BIGINT), j.si, j.sk, j.r, 1, $2, $3
                     FROM ", $samples, " WHERE true ON CONFLICT (lab, sample_id) DO NOTHING"
                ))
                .bind(json)
                .bind(now)
                .bind(by)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != inputs.len() as u64 {
                    return Ok(None); // dropped: rolled back
                }
                tx.commit().await?;
                Ok(Some(vec![SampleOutcome::Accepted; inputs.len()]))
            }

            /// Writes a batch of samples in one transaction: all or nothing.
            pub(crate) async fn submit_samples_once(
                &self,
                inputs: &[SampleInput],
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<(Vec<SampleOutcome>, FollowUps), StoreError> {
                if inputs.is_empty() {
                    return Ok((Vec::new(), FollowUps::default()));
                }
                let now = ms(at);
                // The first row of each (lab, sample_id) may be new; later ones in the same
                // batch are compared with it, as if sent one by one.
                let mut firsts = HashSet::with_capacity(inputs.len());
                let mut rows = Vec::with_capacity(inputs.len());
                // Every person of the batch, once (a repeated sample may name another person).
                let mut persons = HashSet::with_capacity(inputs.len());
                let mut person_rows = Vec::with_capacity(inputs.len());
                for i in inputs {
                    if firsts.insert((i.lab.as_str(), i.sample_id.as_str())) {
                        rows.push(SampleRow::new(i));
                    }
                    let row = SampleRow::new(i);
                    if persons.insert(row.k.clone()) {
                        person_rows.push(row);
                    }
                }
                let repeats = rows.len() < inputs.len();
                let json = to_json(&rows)?;
                let people_json = if repeats { to_json(&person_rows)? } else { json.clone() };
                let mut tx = self.write.begin().await?;

                // What is stored already, as one aggregated row (rows cost a round trip each).
                let found: Option<String> = sqlx::query_scalar(concat!(
                    "SELECT CAST(", $agg, "(", $arr, "(s.lab, s.sample_id, s.person_id, s.sampled_at, s.site, s.site_kind, s.result,
                            s.revision, s.updated_at, s.updated_by)) AS TEXT)
                     FROM ", $samples, " JOIN samples s ON s.lab = j.l AND s.sample_id = j.s"
                ))
                .bind(&json)
                .fetch_one(&mut *tx)
                .await?;
                let stored = parse_stored(found.as_deref())?;

                create_people(&mut tx, &people_json, now).await?;

                // Comparing a resend with what is stored needs the people's ids.
                let mut people = HashMap::new();
                if repeats || !stored.is_empty() {
                    people = people_ids(&mut *tx, &people_json).await?;
                }

                let inserted: HashSet<SampleKey> =
                    rows.iter().map(|r| (r.l.to_string(), r.s.to_string())).filter(|k| !stored.contains_key(k)).collect();
                let new_rows: Vec<&SampleRow> = rows.iter().filter(|r| !stored.contains_key(&(r.l.to_string(), r.s.to_string()))).collect();
                if !new_rows.is_empty() {
                    let done = sqlx::query(concat!(
                        "INSERT INTO samples (lab, sample_id, person_id, sampled_at, sampled_week, site, site_kind, result, revision, updated_at, updated_by)
                         SELECT j.l, j.s, p.id, CAST(j.t AS BIGINT), CAST(j.w AS BIGINT), j.si, j.sk, j.r, 1, $2, $3
                         FROM ", $samples, " JOIN people p ON p.doc_key = j.k
                         WHERE true ON CONFLICT (lab, sample_id) DO NOTHING"
                    ))
                    .bind(to_json(&new_rows)?)
                    .bind(now)
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != new_rows.len() as u64 {
                        // A concurrent batch stored one of these samples since we looked:
                        // nothing is kept, and the caller runs the batch again.
                        return Err(StoreError::Raced);
                    }
                }

                let plan = plan_samples(inputs, &people, &inserted, stored, by, now);
                for ((lab, sid), old) in &plan.history {
                    sqlx::query(
                        "INSERT INTO sample_history (lab, sample_id, revision, result, sampled_at, site, site_kind, recorded_at, recorded_by)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(lab)
                    .bind(sid)
                    .bind(old.revision)
                    .bind(&old.result)
                    .bind(old.sampled_at)
                    .bind(&old.site)
                    .bind(&old.site_kind)
                    .bind(old.updated_at)
                    .bind(&old.updated_by)
                    .execute(&mut *tx)
                    .await?;
                }
                for (i, pid, rev) in &plan.updates {
                    sqlx::query(
                        "UPDATE samples SET person_id = $1, sampled_at = $2, site = $3, site_kind = $4, result = $5, revision = $6,
                            updated_at = $7, updated_by = $8, sampled_week = $11
                         WHERE lab = $9 AND sample_id = $10",
                    )
                    .bind(*pid)
                    .bind(ms(i.sampled_at))
                    .bind(&i.site)
                    .bind(site_kind_str(i.site_kind))
                    .bind(result_str(i.result))
                    .bind(*rev)
                    .bind(now)
                    .bind(by)
                    .bind(&i.lab)
                    .bind(&i.sample_id)
                    .bind(crate::model::week(ms(i.sampled_at)))
                    .execute(&mut *tx)
                    .await?;
                }
                // A result for a sample that let someone in on a commitment letter ends the
                // commitment here, in the transaction that stores it (a new sample has none).
                let answered: Vec<(&str, &str, TestResult)> = plan
                    .updates
                    .iter()
                    .filter(|(i, _, _)| matches!(i.result, TestResult::Negative | TestResult::Positive))
                    .map(|(i, _, _)| (i.lab.as_str(), i.sample_id.as_str(), i.result))
                    .collect();
                let follow_ups = if answered.is_empty() { FollowUps::default() } else { follow_up_in(&mut tx, &answered, by, at).await? };
                tx.commit().await?;
                Ok((plan.outcomes, follow_ups))
            }

            /// Queues the revocation of a person's passes in the transaction that turned their
            /// code yellow or red (migration 0010).
            async fn queue_revocation(
                tx: &mut sqlx::Transaction<'_, $db>,
                person_id: PersonId,
                colour: CodeColour,
                reason: Option<&str>,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(crate::citizens::QUEUE_REVOCATION)
                    .bind(person_id)
                    .bind(format!("code {colour}: {}", reason.unwrap_or("")))
                    .bind(ms(at))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            pub(crate) async fn set_code(
                &self,
                person_id: PersonId,
                colour: CodeColour,
                reason: Option<&str>,
                expires_at: Option<DateTime<Utc>>,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                for statement in [crate::sql::SET_CODE, crate::sql::CODE_HISTORY] {
                    sqlx::query(statement)
                        .bind(person_id)
                        .bind(colour.as_str())
                        .bind(reason)
                        .bind(expires_at.map(ms))
                        .bind(ms(at))
                        .bind(by)
                        .execute(&mut *tx)
                        .await?;
                }
                if colour != CodeColour::Green {
                    Self::queue_revocation(&mut tx, person_id, colour, reason, at).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// Sets the colours of many people (registered if new) in one transaction; returns
            /// their ids in order.
            pub(crate) async fn set_codes(
                &self,
                rows: &[ColourRow],
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<Vec<PersonId>, StoreError> {
                let mut tx = self.write.begin().await?;
                let mut ids = Vec::with_capacity(rows.len());
                for r in rows {
                    let id: i64 = person_query(crate::sql::UPSERT_PERSON, &r.person, at).fetch_one(&mut *tx).await?.get(0);
                    for statement in [crate::sql::SET_CODE, crate::sql::CODE_HISTORY] {
                        sqlx::query(statement)
                            .bind(id)
                            .bind(r.colour.as_str())
                            .bind(r.reason.as_deref())
                            .bind(r.expires_at.map(ms))
                            .bind(ms(at))
                            .bind(by)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if r.colour != CodeColour::Green {
                        Self::queue_revocation(&mut tx, id, r.colour, r.reason.as_deref(), at).await?;
                    }
                    ids.push(id);
                }
                tx.commit().await?;
                Ok(ids)
            }

            pub(crate) async fn code_history(&self, person_id: PersonId) -> Result<Vec<CodeRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT colour, reason, expires_at, set_at, set_by FROM health_code_history WHERE person_id = $1 ORDER BY id",
                )
                .bind(person_id)
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map(|r| code_record(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect()
            }

            /// Registers (or updates) the person and files the application, in one transaction:
            /// a refused application changes nothing, not even the person's details.
            pub(crate) async fn apply_commuter(
                &self,
                person: &PersonInput,
                a: &CommuterApplication,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<PersonId, StoreError> {
                let mut tx = self.write.begin().await?;
                let person_id: i64 = person_query(crate::sql::UPSERT_PERSON, person, at)
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                let existing: Option<String> = sqlx::query("SELECT status FROM commuters WHERE person_id = $1")
                    .bind(person_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.get(0));
                if let Some(s) = existing
                    && (s == "pending" || s == "approved" || s == "suspended")
                {
                    return Err(StoreError::Conflict(format!(
                        "this person already has a commuter certification in state '{s}'; a new application is possible only after a rejection, revocation or expiry"
                    )));
                }
                sqlx::query(
                    "INSERT INTO commuters (person_id, status, kind, residence_region, residence_proof, employer_name, employer_uscc, work_region, applied_at, updated_at)
                     VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (person_id) DO UPDATE SET status = 'pending', kind = excluded.kind, residence_region = excluded.residence_region,
                        residence_proof = excluded.residence_proof, employer_name = excluded.employer_name, employer_uscc = excluded.employer_uscc,
                        work_region = excluded.work_region, applied_at = excluded.applied_at, decided_at = NULL, decided_by = NULL,
                        decision_reason = NULL, valid_until = NULL, first_checked_at = NULL, updated_at = excluded.updated_at",
                )
                .bind(person_id)
                .bind(a.kind.as_str())
                .bind(a.residence_region.to_string())
                .bind(&a.residence_proof)
                .bind(&a.employer_name)
                .bind(&a.employer_uscc)
                .bind(a.work_region.to_string())
                .bind(ms(at))
                .execute(&mut *tx)
                .await?;
                insert_commuter_history(&mut tx, person_id, "pending", None, by, at).await?;
                tx.commit().await?;
                Ok(person_id)
            }

            /// Moves a certification to `to` if the current state allows it (checked by `allowed`).
            pub(crate) async fn change_commuter(
                &self,
                person_id: PersonId,
                to: CommuterStatus,
                reason: Option<&str>,
                valid_until: Option<DateTime<Utc>>,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<CommuterStatus, StoreError> {
                let mut tx = self.write.begin().await?;
                let current: Option<String> = sqlx::query("SELECT status FROM commuters WHERE person_id = $1")
                    .bind(person_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.get(0));
                let Some(current) = current else {
                    return Err(StoreError::NotFound("this person has no commuter application".into()));
                };
                let current = CommuterStatus::parse(&current).map_err(StoreError::Corrupt)?;
                crate::check_transition(current, to)?;
                let decided = matches!(to, CommuterStatus::Approved | CommuterStatus::Rejected) && current == CommuterStatus::Pending;
                sqlx::query(
                    "UPDATE commuters SET status = $1, decision_reason = COALESCE($2, decision_reason),
                        valid_until = COALESCE($3, valid_until), decided_at = CASE WHEN $4 = 1 THEN $5 ELSE decided_at END,
                        decided_by = CASE WHEN $4 = 1 THEN $6 ELSE decided_by END, updated_at = $5
                     WHERE person_id = $7",
                )
                .bind(to.as_str())
                .bind(reason)
                .bind(valid_until.map(ms))
                .bind(i64::from(decided))
                .bind(ms(at))
                .bind(by)
                .bind(person_id)
                .execute(&mut *tx)
                .await?;
                insert_commuter_history(&mut tx, person_id, to.as_str(), reason, by, at).await?;
                tx.commit().await?;
                Ok(current)
            }

            pub(crate) async fn commuter(&self, person_id: PersonId) -> Result<Option<CommuterRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT status, kind, residence_region, residence_proof, employer_name, employer_uscc, work_region,
                        applied_at, decided_at, decided_by, decision_reason, valid_until, first_checked_at
                     FROM commuters WHERE person_id = $1",
                )
                .bind(person_id)
                .fetch_optional(&self.read)
                .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(crate::model::commuter_record!(r, 0)))
            }

            pub(crate) async fn commuter_history(&self, person_id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
                let rows = sqlx::query("SELECT at, by_token, status, reason FROM commuter_history WHERE person_id = $1 ORDER BY id")
                    .bind(person_id)
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| HistoryEntry { at: from_ms(r.get(0)), by: r.get(1), state: r.get(2), reason: r.get(3) })
                    .collect())
            }

            /// Imports approved commuters (the initial database) in one transaction. Rows whose
            /// person already has a certification are left as they are (idempotent re-import).
            /// Returns how many were created.
            pub(crate) async fn import_commuters(
                &self,
                rows: &[(PersonInput, CommuterApplication)],
                valid_until: DateTime<Utc>,
                by: &str,
                at: DateTime<Utc>,
            ) -> Result<Vec<bool>, StoreError> {
                let mut tx = self.write.begin().await?;
                let mut created = Vec::with_capacity(rows.len());
                for (p, a) in rows {
                    let id: i64 = person_query(crate::sql::UPSERT_PERSON_KEEP, p, at).fetch_one(&mut *tx).await?.get(0);
                    let res = sqlx::query(
                        "INSERT INTO commuters (person_id, status, kind, residence_region, residence_proof, employer_name, employer_uscc, work_region,
                            applied_at, decided_at, decided_by, decision_reason, valid_until, updated_at)
                         VALUES ($1, 'approved', $2, $3, $4, $5, $6, $7, $8, $8, $9, 'imported', $10, $8)
                         ON CONFLICT (person_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(a.kind.as_str())
                    .bind(a.residence_region.to_string())
                    .bind(&a.residence_proof)
                    .bind(&a.employer_name)
                    .bind(&a.employer_uscc)
                    .bind(a.work_region.to_string())
                    .bind(ms(at))
                    .bind(by)
                    .bind(ms(valid_until))
                    .execute(&mut *tx)
                    .await?;
                    let new = res.rows_affected() == 1;
                    if new {
                        insert_commuter_history(&mut tx, id, "approved", Some("imported"), by, at).await?;
                    }
                    created.push(new);
                }
                tx.commit().await?;
                Ok(created)
            }

            pub(crate) async fn upsert_checkpoint(&self, c: &Checkpoint, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO checkpoints (id, name, road, kind, created_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, road = excluded.road, kind = excluded.kind",
                )
                .bind(&c.id)
                .bind(&c.name)
                .bind(c.road.as_deref())
                .bind(&c.kind)
                .bind(ms(at))
                .execute(&self.write)
                .await?;
                Ok(())
            }

            pub(crate) async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
                let rows = sqlx::query("SELECT id, name, road, kind FROM checkpoints ORDER BY id").fetch_all(&self.read).await?;
                Ok(rows.into_iter().map(|r| Checkpoint { id: r.get(0), name: r.get(1), road: r.get(2), kind: r.get(3) }).collect())
            }

            /// Everything a decision needs about one person, with the samples taken from `since`
            /// to `until`: one statement, one row (the samples aggregated), since checks are the
            /// hot path. The samples are read week by week (one index seek each).
            pub(crate) async fn load_facts(
                &self,
                doc_key: &str,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<LoadedFacts, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT p.id, p.name, h.colour, h.reason, h.expires_at, c.status, c.valid_until, c.first_checked_at,
                        (SELECT CAST(", $agg, "(", $arr, "(s.lab, s.sample_id, s.sampled_at, s.site, s.site_kind, s.result)) AS TEXT)
                         FROM samples s WHERE s.sampled_week ", $weeks, " AND s.person_id = p.id AND s.sampled_at >= $2),
                        ", crate::sql::commitment_letter!(), "
                     FROM people p
                     LEFT JOIN health_codes h ON h.person_id = p.id
                     LEFT JOIN commuters c ON c.person_id = p.id
                     WHERE p.doc_key = $1"
                ))
                .bind(doc_key)
                .bind(ms(since))
                .bind(crate::model::week(ms(since)))
                .bind(crate::model::week(ms(until)))
                .fetch_optional(&self.read)
                .await?;
                let Some(r) = row else {
                    let facts = PersonFacts { known: false, code: None, commuter: None, samples: Vec::new(), commitment_letter: false };
                    return Ok(LoadedFacts { person_id: None, name: None, facts });
                };
                Ok(LoadedFacts { person_id: Some(r.get(0)), name: r.get(1), facts: person_facts(&r)? })
            }

            /// What a citizen's pass needs, in one statement: the person, their facts, their
            /// commuter kind and pass reference.
            pub(crate) async fn load_pass_facts(
                &self,
                person_id: PersonId,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<Option<PassFacts>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT p.id, p.name, h.colour, h.reason, h.expires_at, c.status, c.valid_until, c.first_checked_at,
                        (SELECT CAST(", $agg, "(", $arr, "(s.lab, s.sample_id, s.sampled_at, s.site, s.site_kind, s.result)) AS TEXT)
                         FROM samples s WHERE s.sampled_week ", $weeks, " AND s.person_id = p.id AND s.sampled_at >= $2),
                        ", crate::sql::commitment_letter!(), ",
                        p.doc_key, p.doc_number, c.kind, p.pass_ref
                     FROM people p
                     LEFT JOIN health_codes h ON h.person_id = p.id
                     LEFT JOIN commuters c ON c.person_id = p.id
                     WHERE p.id = $1"
                ))
                .bind(person_id)
                .bind(ms(since))
                .bind(crate::model::week(ms(since)))
                .bind(crate::model::week(ms(until)))
                .fetch_optional(&self.read)
                .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(PassFacts {
                    person_id,
                    name: r.get(1),
                    doc_key: r.get(10),
                    doc_number: r.get(11),
                    commuter_kind: r.get(12),
                    pass_ref: r.get(13),
                    facts: person_facts(&r)?,
                }))
            }

            /// Records that a certified commuter passed a first check at `at` (from past entry
            /// records, when the database is first built from them).
            pub(crate) async fn record_commuter_first_check(&self, person_id: PersonId, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("UPDATE commuters SET first_checked_at = $1 WHERE person_id = $2 AND first_checked_at IS NULL")
                    .bind(ms(at))
                    .bind(person_id)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            /// Writes entry events in one transaction (the group commit of checks).
            pub(crate) async fn record_entries(&self, events: &[EntryEvent]) -> Result<(), StoreError> {
                let rows: Vec<EntryRow> = events
                    .iter()
                    .map(|e| EntryRow {
                        c: &e.checkpoint_id,
                        t: ms(e.checked_at),
                        k: &e.doc_key,
                        p: e.person_id,
                        v: e.verdict.as_str(),
                        r: serde_json::to_string(&e.reasons).unwrap_or_default(),
                        pi: &e.policy_id,
                        pv: &e.policy_version,
                        rv: serde_json::to_string(&e.rule_versions).unwrap_or_default(),
                        f: serde_json::to_string(&e.facts).unwrap_or_default(),
                        pl: e.plate.as_deref(),
                        o: &e.officer,
                        vi: e.via,
                    })
                    .collect();
                let json = serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let mut tx = self.write.begin().await?;
                sqlx::query(concat!(
                    "INSERT INTO entry_events (checkpoint_id, checked_at, doc_key, person_id, verdict, reasons, policy_id, policy_version, rule_versions, facts, plate, officer, via)
                     SELECT j.c, CAST(j.t AS BIGINT), j.k, CAST(j.p AS BIGINT), j.v, j.r, j.pi, j.pv, j.rv, j.f, j.pl, j.o, j.vi
                     FROM ", $entries
                ))
                .bind(&json)
                .execute(&mut *tx)
                .await?;
                for e in events.iter().filter(|e| e.commuter_first_check) {
                    if let Some(pid) = e.person_id {
                        sqlx::query("UPDATE commuters SET first_checked_at = $1 WHERE person_id = $2 AND first_checked_at IS NULL")
                            .bind(ms(e.checked_at))
                            .bind(pid)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// Entry events checked in [since, until) with an id above `after`, in id order.
            pub(crate) async fn entries(
                &self,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
                after: i64,
                limit: i64,
            ) -> Result<Vec<EntryRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, checkpoint_id, checked_at, doc_key, verdict, reasons, policy_id, policy_version, rule_versions, facts, plate, officer, via
                     FROM entry_events WHERE id > $1 AND checked_at >= $2 AND checked_at < $3
                     ORDER BY id LIMIT $4",
                )
                .bind(after)
                .bind(ms(since))
                .bind(ms(until))
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                let json = |v: &str| serde_json::from_str(v).map_err(|e| StoreError::Corrupt(e.to_string()));
                rows.into_iter()
                    .map(|r| {
                        Ok(EntryRecord {
                            id: r.get(0),
                            checkpoint_id: r.get(1),
                            checked_at: from_ms(r.get(2)),
                            doc_key: r.get(3),
                            verdict: r.get(4),
                            reasons: json(r.get(5))?,
                            policy_id: r.get(6),
                            policy_version: r.get(7),
                            rule_versions: json(r.get(8))?,
                            facts: json(r.get(9))?,
                            plate: r.get(10),
                            officer: r.get(11),
                            via: r.get(12),
                        })
                    })
                    .collect()
            }

            /// Entry events for a replay, page by page (see `entries`), facts left as text.
            pub(crate) async fn replay_page(
                &self,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
                after: i64,
                limit: i64,
            ) -> Result<Vec<ReplayRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, checkpoint_id, checked_at, doc_key, verdict, reasons, facts
                     FROM entry_events WHERE id > $1 AND checked_at >= $2 AND checked_at < $3
                     ORDER BY id LIMIT $4",
                )
                .bind(after)
                .bind(ms(since))
                .bind(ms(until))
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| ReplayRow {
                        id: r.get(0),
                        checkpoint_id: r.get(1),
                        checked_at: from_ms(r.get(2)),
                        doc_key: r.get(3),
                        verdict: r.get(4),
                        reasons: r.get(5),
                        facts: r.get(6),
                    })
                    .collect())
            }

            /// Stores a rule set; publishing the same (id, version) again with the same body
            /// changes nothing, with another body is a conflict.
            pub(crate) async fn publish_policy(&self, id: &str, version: &str, body: &str, by: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let existing: Option<String> = sqlx::query_scalar("SELECT body FROM policies WHERE id = $1 AND version = $2")
                    .bind(id)
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
                match existing {
                    Some(b) if b == body => return Ok(false),
                    Some(_) => {
                        return Err(StoreError::Conflict(format!(
                            "policy {id} version {version} is already published with other content; publish a new version"
                        )));
                    }
                    None => {}
                }
                sqlx::query("INSERT INTO policies (id, version, body, published_at, published_by) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id)
                    .bind(version)
                    .bind(body)
                    .bind(ms(at))
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                policy_audit(&mut tx, at, by, "publish", id, version, None).await?;
                tx.commit().await?;
                Ok(true)
            }

            pub(crate) async fn activate_policy(&self, id: &str, version: &str, by: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                let res = sqlx::query("UPDATE policies SET activated_at = $1, activated_by = $2 WHERE id = $3 AND version = $4 AND activated_at IS NULL")
                    .bind(ms(at))
                    .bind(by)
                    .bind(id)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                if res.rows_affected() == 0 {
                    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM policies WHERE id = $1 AND version = $2")
                        .bind(id)
                        .bind(version)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return match exists {
                        None => Err(StoreError::NotFound(format!("no published policy {id} version {version}"))),
                        Some(_) => Ok(()),
                    };
                }
                policy_audit(&mut tx, at, by, "activate", id, version, None).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, version, body, published_at, published_by, activated_at, activated_by FROM policies ORDER BY published_at, id, version",
                )
                .fetch_all(&self.read)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| PolicyRecord {
                        id: r.get(0),
                        version: r.get(1),
                        body: r.get(2),
                        published_at: from_ms(r.get(3)),
                        published_by: r.get(4),
                        activated_at: r.get::<Option<i64>, _>(5).map(from_ms),
                        activated_by: r.get(6),
                    })
                    .collect())
            }

            /// Audits a dry run (who asked what of which candidate).
            pub(crate) async fn audit_policy(&self, at: DateTime<Utc>, by: &str, action: &str, id: &str, version: &str, detail: Option<&str>) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                policy_audit(&mut tx, at, by, action, id, version, detail).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn policy_audit_log(&self) -> Result<Vec<HistoryEntry>, StoreError> {
                let rows = sqlx::query("SELECT at, token_id, action, policy_id, policy_version, detail FROM policy_audit ORDER BY id")
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| HistoryEntry {
                        at: from_ms(r.get(0)),
                        by: r.get(1),
                        state: format!("{} {} {}", r.get::<String, _>(2), r.get::<String, _>(3), r.get::<String, _>(4)),
                        reason: r.get(5),
                    })
                    .collect())
            }

            pub(crate) async fn verdict_counts(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<VerdictCount>, StoreError> {
                let rows = sqlx::query(
                    "SELECT checkpoint_id, verdict, COUNT(*) FROM entry_events WHERE checked_at >= $1 AND checked_at < $2
                     GROUP BY checkpoint_id, verdict ORDER BY checkpoint_id, verdict",
                )
                .bind(ms(since))
                .bind(ms(until))
                .fetch_all(&self.read)
                .await?;
                Ok(rows.into_iter().map(|r| VerdictCount { checkpoint_id: r.get(0), verdict: r.get(1), count: r.get(2) }).collect())
            }

            pub(crate) async fn create_token(
                &self,
                id: &str,
                hash: &str,
                role: &str,
                scope: &[String],
                label: Option<&str>,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO tokens (id, hash, role, scope, label, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(id)
                    .bind(hash)
                    .bind(role)
                    .bind(serde_json::to_string(scope).unwrap_or_default())
                    .bind(label)
                    .bind(ms(at))
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            pub(crate) async fn token_by_hash(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, role, scope, label, person_id, expires_at FROM tokens
                     WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(hash)
                .bind(ms(now))
                .fetch_optional(&self.read)
                .await?;
                row.map(|r| {
                    Ok(TokenRecord {
                        id: r.get(0),
                        role: r.get(1),
                        scope: serde_json::from_str(r.get(2)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        label: r.get(3),
                        person_id: r.get(4),
                        expires_at: r.get::<Option<i64>, _>(5).map(from_ms),
                    })
                })
                .transpose()
            }

            pub(crate) async fn log_access(&self, a: &AccessLogEntry) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO access_log (at, token_id, role, person_id, action, purpose) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(ms(a.at))
                    .bind(&a.token_id)
                    .bind(&a.role)
                    .bind(a.person_id)
                    .bind(&a.action)
                    .bind(&a.purpose)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            pub(crate) async fn access_log(&self, person_id: PersonId) -> Result<Vec<AccessLogEntry>, StoreError> {
                let rows = sqlx::query("SELECT at, token_id, role, person_id, action, purpose FROM access_log WHERE person_id = $1 ORDER BY id")
                    .bind(person_id)
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| AccessLogEntry {
                        at: from_ms(r.get(0)),
                        token_id: r.get(1),
                        role: r.get(2),
                        person_id: r.get(3),
                        action: r.get(4),
                        purpose: r.get(5),
                    })
                    .collect())
            }

            pub(crate) async fn counts(&self) -> Result<Counts, StoreError> {
                let r = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM people), (SELECT COUNT(*) FROM samples), (SELECT COUNT(*) FROM commuters),
                            (SELECT COUNT(*) FROM checkpoints), (SELECT COUNT(*) FROM entry_events)",
                )
                .fetch_one(&self.read)
                .await?;
                Ok(Counts { people: r.get(0), samples: r.get(1), commuters: r.get(2), checkpoints: r.get(3), entry_events: r.get(4) })
            }
        }

        /// One of the person upserts with its seven parameters bound.
        fn person_query<'q>(
            sql: &'static str,
            p: &'q PersonInput,
            at: DateTime<Utc>,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            sqlx::query(sql)
                .bind(p.document.key())
                .bind(p.document.kind().as_str())
                .bind(p.document.number())
                .bind(p.name.as_deref())
                .bind(p.phone.as_deref())
                .bind(p.residence_region.map(|r| r.to_string()))
                .bind(ms(at))
        }

        /// A sample row selected as (lab, sample_id, sampled_at, site, site_kind, result, revision, time).
        fn sample_record(r: &<$db as sqlx::Database>::Row) -> SampleRecord {
            SampleRecord {
                lab: r.get(0),
                sample_id: r.get(1),
                sampled_at: from_ms(r.get(2)),
                site: r.get(3),
                site_kind: r.get(4),
                result: r.get(5),
                revision: r.get(6),
                updated_at: from_ms(r.get(7)),
            }
        }

        async fn policy_audit(
            tx: &mut sqlx::Transaction<'_, $db>,
            at: DateTime<Utc>,
            by: &str,
            action: &str,
            id: &str,
            version: &str,
            detail: Option<&str>,
        ) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO policy_audit (at, token_id, action, policy_id, policy_version, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(ms(at))
                .bind(by)
                .bind(action)
                .bind(id)
                .bind(version)
                .bind(detail)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Creates the people of a batch (JSON rows as [`SampleRow`]) not seen yet: results
        /// often arrive before the person ever registers.
        async fn create_people(tx: &mut sqlx::Transaction<'_, $db>, json: &str, now: i64) -> Result<(), StoreError> {
            sqlx::query(concat!(
                "INSERT INTO people (doc_key, doc_kind, doc_number, created_at, updated_at)
                 SELECT j.k, j.dk, j.dn, $2, $2 FROM ", $samples, " WHERE true
                 ON CONFLICT (doc_key) DO NOTHING"
            ))
            .bind(json)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// The ids of the people of a batch (JSON rows as [`SampleRow`]) that exist, by document key.
        async fn people_ids<'e, E>(executor: E, json: &str) -> Result<HashMap<String, i64>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let found: Option<String> = sqlx::query_scalar(concat!(
                "SELECT CAST(", $agg, "(", $arr, "(p.doc_key, p.id)) AS TEXT)
                 FROM ", $samples, " JOIN people p ON p.doc_key = j.k"
            ))
            .bind(json)
            .fetch_one(executor)
            .await?;
            parse_people(found.as_deref())
        }

        async fn insert_commuter_history(
            tx: &mut sqlx::Transaction<'_, $db>,
            person_id: PersonId,
            status: &str,
            reason: Option<&str>,
            by: &str,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO commuter_history (person_id, status, reason, at, by_token) VALUES ($1, $2, $3, $4, $5)")
                .bind(person_id)
                .bind(status)
                .bind(reason)
                .bind(ms(at))
                .bind(by)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    };
}

pub(crate) use sql_impl;

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, crate::StoreError> {
    serde_json::to_string(v).map_err(|e| crate::StoreError::Corrupt(e.to_string()))
}

/// Parses the aggregated stored samples: arrays of
/// [lab, sample_id, person_id, sampled_at, site, site_kind, result, revision, updated_at, updated_by].
pub(crate) fn parse_stored(json: Option<&str>) -> Result<HashMap<SampleKey, StoredSample>, crate::StoreError> {
    type Row = (String, String, i64, i64, String, String, String, i64, i64, String);
    let rows: Vec<Row> = match json {
        Some(j) => serde_json::from_str(j).map_err(|e| crate::StoreError::Corrupt(format!("stored samples: {e}")))?,
        None => Vec::new(),
    };
    Ok(rows
        .into_iter()
        .map(|(lab, sid, person_id, sampled_at, site, site_kind, result, revision, updated_at, updated_by)| {
            (
                (lab, sid),
                StoredSample { person_id, sampled_at, site, site_kind, result, revision, updated_at, updated_by },
            )
        })
        .collect())
}

/// Parses aggregated samples: arrays of [lab, sample_id, sampled_at, site, site_kind, result].
pub(crate) fn parse_sample_facts(
    json: Option<&str>,
) -> Result<Vec<tongxing_domain::facts::SampleFact>, crate::StoreError> {
    type Row = (String, String, i64, String, String, String);
    let rows: Vec<Row> = match json {
        Some(j) => serde_json::from_str(j).map_err(|e| crate::StoreError::Corrupt(format!("samples: {e}")))?,
        None => Vec::new(),
    };
    rows.into_iter()
        .map(|(lab, sample_id, sampled_at, site, kind, result)| {
            Ok(tongxing_domain::facts::SampleFact {
                lab,
                sample_id,
                sampled_at: crate::model::from_ms(sampled_at),
                site,
                site_kind: SiteKind::parse(&kind).map_err(crate::StoreError::Corrupt)?,
                result: TestResult::parse(&result).map_err(crate::StoreError::Corrupt)?,
            })
        })
        .collect()
}

/// Gives each row its person's id; the rows as JSON.
pub(crate) fn rows_with_ids(rows: &mut [SampleRow], ids: &HashMap<String, i64>) -> Result<String, crate::StoreError> {
    for r in rows.iter_mut() {
        r.p = Some(*ids.get(&r.k).ok_or_else(|| crate::StoreError::Corrupt(format!("no person for {}", r.k)))?);
    }
    to_json(&rows)
}

/// Parses aggregated [doc_key, id] pairs.
pub(crate) fn parse_people(json: Option<&str>) -> Result<HashMap<String, i64>, crate::StoreError> {
    let rows: Vec<(String, i64)> = match json {
        Some(j) => serde_json::from_str(j).map_err(|e| crate::StoreError::Corrupt(format!("people: {e}")))?,
        None => Vec::new(),
    };
    Ok(rows.into_iter().collect())
}

pub(crate) fn code_record(
    colour: String,
    reason: Option<String>,
    expires_at: Option<i64>,
    set_at: i64,
    set_by: String,
) -> Result<crate::model::CodeRecord, crate::StoreError> {
    Ok(crate::model::CodeRecord {
        colour: tongxing_domain::facts::CodeColour::parse(&colour).map_err(crate::StoreError::Corrupt)?,
        reason,
        expires_at: expires_at.map(crate::model::from_ms),
        set_at: crate::model::from_ms(set_at),
        set_by,
    })
}
