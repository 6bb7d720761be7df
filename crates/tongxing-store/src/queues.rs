//! The lists the staff's pages work through: commuter applications in a state (the registry's
//! queue), a test point's samples of a period with their letters and results, and whose a
//! sample is. The
//! statements are written once and instantiated for both databases, as in `sql.rs`.

use chrono::{DateTime, Utc};
use sqlx::Row;
use tongxing_domain::facts::CommuterStatus;

use crate::model::{CommuterRecord, PersonId, PersonRecord, from_ms, ms};
use crate::{Backend, Store, StoreError};

/// A sample a test point took, with whose it is and its letter.
#[derive(Debug, Clone)]
pub struct LabSample {
    pub sample_id: String,
    pub sampled_at: DateTime<Utc>,
    pub result: String,
    pub pool_id: Option<String>,
    pub person_id: PersonId,
    pub doc_number: String,
    pub name: Option<String>,
    /// The letter's state when one was signed: pending, fulfilled, positive or overdue.
    pub commitment: Option<String>,
}

macro_rules! queues_impl {
    ($db:ty) => {
        impl crate::Pools<$db> {
            pub(crate) async fn commuters_in(
                &self,
                status: &str,
                limit: i64,
            ) -> Result<Vec<(PersonRecord, CommuterRecord)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT p.id, p.doc_key, p.doc_kind, p.doc_number, p.name, p.phone, p.residence_region,
                        p.created_at, p.updated_at,
                        c.status, c.kind, c.residence_region, c.residence_proof, c.employer_name, c.employer_uscc,
                        c.work_region, c.applied_at, c.decided_at, c.decided_by, c.decision_reason, c.valid_until,
                        c.first_checked_at
                     FROM commuters c JOIN people p ON p.id = c.person_id
                     WHERE c.status = $1 ORDER BY c.applied_at, p.id LIMIT $2",
                )
                .bind(status)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let person = PersonRecord {
                        id: r.get(0),
                        doc_key: r.get(1),
                        doc_kind: r.get(2),
                        doc_number: r.get(3),
                        name: r.get(4),
                        phone: r.get(5),
                        residence_region: r.get(6),
                        created_at: from_ms(r.get(7)),
                        updated_at: from_ms(r.get(8)),
                    };
                    let commuter = crate::model::commuter_record!(r, 9);
                    out.push((person, commuter));
                }
                Ok(out)
            }

            pub(crate) async fn sample_owner(&self, lab: &str, sample_id: &str) -> Result<Option<PersonRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT p.id, p.doc_key, p.doc_kind, p.doc_number, p.name, p.phone, p.residence_region,
                        p.created_at, p.updated_at
                     FROM samples s JOIN people p ON p.id = s.person_id WHERE s.lab = $1 AND s.sample_id = $2",
                )
                .bind(lab)
                .bind(sample_id)
                .fetch_optional(&self.read)
                .await?;
                Ok(row.map(|r| PersonRecord {
                    id: r.get(0),
                    doc_key: r.get(1),
                    doc_kind: r.get(2),
                    doc_number: r.get(3),
                    name: r.get(4),
                    phone: r.get(5),
                    residence_region: r.get(6),
                    created_at: from_ms(r.get(7)),
                    updated_at: from_ms(r.get(8)),
                }))
            }

            pub(crate) async fn samples_of_lab(
                &self,
                lab: &str,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<LabSample>, StoreError> {
                let rows = sqlx::query(
                    "SELECT s.sample_id, s.sampled_at, s.result, s.pool_id, p.id, p.doc_number, p.name, c.status
                     FROM samples s JOIN people p ON p.id = s.person_id
                     LEFT JOIN commitments c ON c.lab = s.lab AND c.sample_id = s.sample_id
                     WHERE s.lab = $1 AND s.sampled_at >= $2 AND s.sampled_at < $3
                     ORDER BY s.sampled_at DESC, s.sample_id LIMIT $4",
                )
                .bind(lab)
                .bind(ms(since))
                .bind(ms(until))
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| LabSample {
                        sample_id: r.get(0),
                        sampled_at: from_ms(r.get(1)),
                        result: r.get(2),
                        pool_id: r.get(3),
                        person_id: r.get(4),
                        doc_number: r.get(5),
                        name: r.get(6),
                        commitment: r.get(7),
                    })
                    .collect())
            }
        }
    };
}

mod sqlite_impl {
    use super::*;
    queues_impl!(sqlx::Sqlite);
}
mod postgres_impl {
    use super::*;
    queues_impl!(sqlx::Postgres);
}

impl Store {
    /// Commuter certifications in `status` with their people, oldest application first.
    pub async fn commuters_in(
        &self,
        status: CommuterStatus,
        limit: i64,
    ) -> Result<Vec<(PersonRecord, CommuterRecord)>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.commuters_in(status.as_str(), limit).await,
            Backend::Postgres(b) => b.commuters_in(status.as_str(), limit).await,
        }
    }

    /// Whose sample `(lab, sample_id)` is.
    pub async fn sample_owner(&self, lab: &str, sample_id: &str) -> Result<Option<PersonRecord>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.sample_owner(lab, sample_id).await,
            Backend::Postgres(b) => b.sample_owner(lab, sample_id).await,
        }
    }

    /// The samples `lab` (a lab or test point) took from `since` until before `until`, newest
    /// first, at most `limit`, with whose they are and their letter.
    pub async fn samples_of_lab(
        &self,
        lab: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LabSample>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.samples_of_lab(lab, since, until, limit).await,
            Backend::Postgres(b) => b.samples_of_lab(lab, since, until, limit).await,
        }
    }
}
