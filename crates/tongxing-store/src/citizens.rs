//! Citizens: one-time codes, session tokens bound to a person, family links. The statements
//! are written once and instantiated for both databases, as in `sql.rs`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::model::{PersonId, PersonRecord, from_ms, ms};
use crate::{Backend, Store, StoreError};

/// A one-time code as stored (never the code itself).
#[derive(Debug, Clone)]
pub struct OtpRecord {
    pub id: i64,
    pub salt: String,
    pub code_hash: String,
    pub tries: i32,
    pub expires_at: DateTime<Utc>,
}

/// How many codes went to a phone, and were asked for from an address, since a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtpCounts {
    pub to_phone: i64,
    pub from_address: i64,
    /// When the last code to the phone was sent.
    pub last_to_phone: Option<DateTime<Utc>>,
}

/// A new code to store.
pub struct NewOtp<'a> {
    pub person_id: PersonId,
    pub purpose: &'a str,
    pub salt: &'a str,
    pub code_hash: &'a str,
    pub phone: &'a str,
    pub address: &'a str,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A family link: a citizen may act for the member once it is `linked`.
#[derive(Debug, Clone)]
pub struct FamilyLink {
    pub id: i64,
    pub citizen_id: PersonId,
    pub member_id: PersonId,
    /// pending (a minor awaiting a registry officer), linked, refused or removed.
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub reason: Option<String>,
}

/// A person whose passes must be revoked: written with the colour change, in its transaction
/// (migration 0010); a server holding the pass keys turns it into a revocation entry.
#[derive(Debug, Clone)]
pub struct QueuedRevocation {
    pub id: i64,
    pub person_id: PersonId,
    pub reason: String,
    /// When the colour changed: passes issued up to then (to the second) are revoked.
    pub at: DateTime<Utc>,
}

/// Queues the revocation of a person's passes, in the transaction that changed their colour.
pub(crate) const QUEUE_REVOCATION: &str = "INSERT INTO revocation_queue (person_id, reason, at) VALUES ($1, $2, $3)";

macro_rules! family_select {
    ($where:literal) => {
        concat!(
            "SELECT id, citizen_id, member_id, status, requested_at, decided_at, approved_by, reason FROM family_links ",
            $where
        )
    };
}

macro_rules! citizens_impl {
    ($db:ty) => {
        fn family_link(r: &<$db as sqlx::Database>::Row) -> FamilyLink {
            FamilyLink {
                id: r.get(0),
                citizen_id: r.get(1),
                member_id: r.get(2),
                status: r.get(3),
                requested_at: from_ms(r.get(4)),
                decided_at: r.get::<Option<i64>, _>(5).map(from_ms),
                approved_by: r.get(6),
                reason: r.get(7),
            }
        }

        impl crate::Pools<$db> {
            pub(crate) async fn set_pass_ref(&self, person_id: PersonId, pass_ref: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE people SET pass_ref = $2 WHERE id = $1 AND pass_ref IS NULL")
                    .bind(person_id)
                    .bind(pass_ref)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            pub(crate) async fn person_by_pass_ref(&self, pass_ref: &str) -> Result<Option<PersonId>, StoreError> {
                let row = sqlx::query("SELECT id FROM people WHERE pass_ref = $1")
                    .bind(pass_ref)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn revoke(
                &self,
                hash: &str,
                cutoff: DateTime<Utc>,
                reason: &str,
                at: DateTime<Utc>,
            ) -> Result<i64, StoreError> {
                let mut tx = self.write.begin().await?;
                let version: i64 =
                    sqlx::query("UPDATE revocation_counter SET version = version + 1 WHERE one = 1 RETURNING version")
                        .fetch_one(&mut *tx)
                        .await?
                        .get(0);
                sqlx::query(
                    "INSERT INTO revocations (hash, cutoff, version, reason, at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (hash) DO UPDATE SET
                        cutoff = CASE WHEN excluded.cutoff > revocations.cutoff THEN excluded.cutoff ELSE revocations.cutoff END,
                        version = excluded.version,
                        reason = excluded.reason, at = excluded.at",
                )
                .bind(hash)
                .bind(ms(cutoff))
                .bind(version)
                .bind(reason)
                .bind(ms(at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(version)
            }

            pub(crate) async fn revocation_queue(&self, limit: i64) -> Result<Vec<QueuedRevocation>, StoreError> {
                let rows = sqlx::query("SELECT id, person_id, reason, at FROM revocation_queue ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.write)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| QueuedRevocation { id: r.get(0), person_id: r.get(1), reason: r.get(2), at: from_ms(r.get(3)) })
                    .collect())
            }

            pub(crate) async fn revocation_queue_done(&self, ids: &[i64]) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                for id in ids {
                    sqlx::query("DELETE FROM revocation_queue WHERE id = $1").bind(*id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn revocation_of(&self, hash: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
                let row = sqlx::query("SELECT cutoff FROM revocations WHERE hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.map(|r| from_ms(r.get(0))))
            }

            pub(crate) async fn revocations_since(&self, version: i64) -> Result<(i64, Vec<(String, DateTime<Utc>)>), StoreError> {
                // One snapshot: the counter and the rows it covers read together.
                let mut tx = self.write.begin().await?;
                let current: i64 = sqlx::query("SELECT version FROM revocation_counter WHERE one = 1")
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                let rows = sqlx::query("SELECT hash, cutoff FROM revocations WHERE version > $1 AND version <= $2 ORDER BY hash")
                    .bind(version)
                    .bind(current)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((current, rows.into_iter().map(|r| (r.get(0), from_ms(r.get(1)))).collect()))
            }

            pub(crate) async fn otp_counts(
                &self,
                phone: &str,
                address: &str,
                since: DateTime<Utc>,
            ) -> Result<OtpCounts, StoreError> {
                let row = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM otp_codes WHERE phone = $1 AND created_at >= $3),
                            (SELECT COUNT(*) FROM otp_codes WHERE address = $2 AND created_at >= $3),
                            (SELECT MAX(created_at) FROM otp_codes WHERE phone = $1 AND created_at >= $3)",
                )
                .bind(phone)
                .bind(address)
                .bind(ms(since))
                .fetch_one(&self.write)
                .await?;
                Ok(OtpCounts {
                    to_phone: row.get(0),
                    from_address: row.get(1),
                    last_to_phone: row.get::<Option<i64>, _>(2).map(from_ms),
                })
            }

            pub(crate) async fn insert_otp(&self, o: &NewOtp<'_>) -> Result<i64, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO otp_codes (person_id, purpose, salt, code_hash, phone, address, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(o.person_id)
                .bind(o.purpose)
                .bind(o.salt)
                .bind(o.code_hash)
                .bind(o.phone)
                .bind(o.address)
                .bind(ms(o.at))
                .bind(ms(o.expires_at))
                .fetch_one(&self.write)
                .await?;
                Ok(row.get(0))
            }

            pub(crate) async fn latest_otp(
                &self,
                person_id: PersonId,
                purpose: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<OtpRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, salt, code_hash, tries, expires_at FROM otp_codes
                     WHERE person_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(person_id)
                .bind(purpose)
                .bind(ms(now))
                .fetch_optional(&self.write)
                .await?;
                Ok(row.map(|r| OtpRecord {
                    id: r.get(0),
                    salt: r.get(1),
                    code_hash: r.get(2),
                    tries: r.get(3),
                    expires_at: from_ms(r.get(4)),
                }))
            }

            pub(crate) async fn count_otp_try(&self, id: i64, max: i32) -> Result<Option<i32>, StoreError> {
                let row = sqlx::query(
                    "UPDATE otp_codes SET tries = tries + 1 WHERE id = $1 AND tries < $2 AND used_at IS NULL RETURNING tries",
                )
                .bind(id)
                .bind(max)
                .fetch_optional(&self.write)
                .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn use_otp(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
                let row = sqlx::query("UPDATE otp_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING id")
                    .bind(id)
                    .bind(ms(at))
                    .fetch_optional(&self.write)
                    .await?;
                Ok(row.is_some())
            }

            pub(crate) async fn create_session(
                &self,
                id: &str,
                hash: &str,
                person_id: PersonId,
                at: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO tokens (id, hash, role, scope, label, created_at, person_id, expires_at)
                     VALUES ($1, $2, 'citizen', '[]', 'citizen session', $3, $4, $5)",
                )
                .bind(id)
                .bind(hash)
                .bind(ms(at))
                .bind(person_id)
                .bind(ms(expires_at))
                .execute(&self.write)
                .await?;
                Ok(())
            }

            pub(crate) async fn family_links(&self, citizen_id: PersonId) -> Result<Vec<FamilyLink>, StoreError> {
                let rows = sqlx::query(family_select!("WHERE citizen_id = $1 ORDER BY id"))
                    .bind(citizen_id)
                    .fetch_all(&self.write)
                    .await?;
                Ok(rows.iter().map(family_link).collect())
            }

            pub(crate) async fn family_link(&self, id: i64) -> Result<Option<FamilyLink>, StoreError> {
                let row = sqlx::query(family_select!("WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.write)
                    .await?;
                Ok(row.as_ref().map(family_link))
            }

            pub(crate) async fn pending_family_links(&self) -> Result<Vec<FamilyLink>, StoreError> {
                let rows = sqlx::query(family_select!("WHERE status = 'pending' ORDER BY requested_at, id"))
                    .fetch_all(&self.write)
                    .await?;
                Ok(rows.iter().map(family_link).collect())
            }

            pub(crate) async fn request_family_link(
                &self,
                citizen_id: PersonId,
                member_id: PersonId,
                status: &str,
                approved_by: Option<&str>,
                at: DateTime<Utc>,
                max: i64,
            ) -> Result<Option<i64>, StoreError> {
                // One statement: the link is made only while the citizen has fewer than `max`
                // links pending or made; a removed or refused one may be asked for again.
                let decided = (status == "linked").then(|| ms(at));
                let row = sqlx::query(
                    "INSERT INTO family_links (citizen_id, member_id, status, requested_at, decided_at, approved_by)
                     SELECT $1, $2, $3, $4, $5, $6
                     WHERE (SELECT COUNT(*) FROM family_links
                            WHERE citizen_id = $1 AND status IN ('pending', 'linked') AND member_id <> $2) < $7
                     ON CONFLICT (citizen_id, member_id) DO UPDATE SET
                        status = excluded.status, requested_at = excluded.requested_at,
                        decided_at = excluded.decided_at, approved_by = excluded.approved_by, reason = NULL
                     RETURNING id",
                )
                .bind(citizen_id)
                .bind(member_id)
                .bind(status)
                .bind(ms(at))
                .bind(decided)
                .bind(approved_by)
                .bind(max)
                .fetch_optional(&self.write)
                .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn decide_family_link(
                &self,
                id: i64,
                from: &str,
                to: &str,
                by: &str,
                reason: Option<&str>,
                at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "UPDATE family_links SET status = $3, approved_by = $4, reason = $5, decided_at = $6
                     WHERE id = $1 AND status = $2 RETURNING id",
                )
                .bind(id)
                .bind(from)
                .bind(to)
                .bind(by)
                .bind(reason)
                .bind(ms(at))
                .fetch_optional(&self.write)
                .await?;
                Ok(row.is_some())
            }
        }
    };
}

mod sqlite_impl {
    use super::*;
    citizens_impl!(sqlx::Sqlite);
}
mod postgres_impl {
    use super::*;
    citizens_impl!(sqlx::Postgres);
}

macro_rules! on_backend {
    ($self:expr, $p:ident => $e:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite($p) => $e,
            Backend::Postgres($p) => $e,
        }
    };
}

impl Store {
    /// Keeps the person's pass reference (the first time a pass is issued for them).
    pub async fn set_pass_ref(&self, person_id: PersonId, pass_ref: &str) -> Result<(), StoreError> {
        on_backend!(self, p => p.set_pass_ref(person_id, pass_ref).await)
    }
    /// The person a pass reference names.
    pub async fn person_by_pass_ref(&self, pass_ref: &str) -> Result<Option<PersonId>, StoreError> {
        on_backend!(self, p => p.person_by_pass_ref(pass_ref).await)
    }
    /// Puts `hash` on the revocation list (passes issued before `cutoff`), or moves its
    /// cut-off; returns the list's new version.
    pub async fn revoke(
        &self,
        hash: &str,
        cutoff: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        on_backend!(self, p => p.revoke(hash, cutoff, reason, at).await)
    }
    /// The oldest `limit` queued revocations (in the order the colours changed).
    pub async fn revocation_queue(&self, limit: i64) -> Result<Vec<QueuedRevocation>, StoreError> {
        on_backend!(self, p => p.revocation_queue(limit).await)
    }
    /// Removes queued revocations once their entries are on the list.
    pub async fn revocation_queue_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        on_backend!(self, p => p.revocation_queue_done(ids).await)
    }
    /// The cut-off of one hash on the revocation list, if it is on it.
    pub async fn revocation_of(&self, hash: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_backend!(self, p => p.revocation_of(hash).await)
    }
    /// The list's version and the entries set after `version` (all of them from 0).
    pub async fn revocations_since(&self, version: i64) -> Result<(i64, Vec<(String, DateTime<Utc>)>), StoreError> {
        on_backend!(self, p => p.revocations_since(version).await)
    }
    pub async fn person_by_id(&self, id: PersonId) -> Result<Option<PersonRecord>, StoreError> {
        on_backend!(self, p => p.person_by_id(id).await)
    }
    /// Codes sent to `phone` and asked for from `address` since `since` (for rate limits).
    pub async fn otp_counts(&self, phone: &str, address: &str, since: DateTime<Utc>) -> Result<OtpCounts, StoreError> {
        on_backend!(self, p => p.otp_counts(phone, address, since).await)
    }
    pub async fn insert_otp(&self, o: &NewOtp<'_>) -> Result<i64, StoreError> {
        on_backend!(self, p => p.insert_otp(o).await)
    }
    /// The latest unused, unexpired code for this person and purpose.
    pub async fn latest_otp(
        &self,
        person_id: PersonId,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OtpRecord>, StoreError> {
        on_backend!(self, p => p.latest_otp(person_id, purpose, now).await)
    }
    /// Counts one try at a code, atomically; `None` when the code is used or out of tries.
    pub async fn count_otp_try(&self, id: i64, max: i32) -> Result<Option<i32>, StoreError> {
        on_backend!(self, p => p.count_otp_try(id, max).await)
    }
    /// Marks a code used; false if it already was (a code works once).
    pub async fn use_otp(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        on_backend!(self, p => p.use_otp(id, at).await)
    }
    /// Stores a citizen session token (its hash) bound to the person, ending at `expires_at`.
    pub async fn create_session(
        &self,
        id: &str,
        hash: &str,
        person_id: PersonId,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_backend!(self, p => p.create_session(id, hash, person_id, at, expires_at).await)
    }
    pub async fn family_links(&self, citizen_id: PersonId) -> Result<Vec<FamilyLink>, StoreError> {
        on_backend!(self, p => p.family_links(citizen_id).await)
    }
    pub async fn family_link(&self, id: i64) -> Result<Option<FamilyLink>, StoreError> {
        on_backend!(self, p => p.family_link(id).await)
    }
    pub async fn pending_family_links(&self) -> Result<Vec<FamilyLink>, StoreError> {
        on_backend!(self, p => p.pending_family_links().await)
    }
    /// Asks for (or makes) a link; `None` when the citizen already has `max` links.
    pub async fn request_family_link(
        &self,
        citizen_id: PersonId,
        member_id: PersonId,
        status: &str,
        approved_by: Option<&str>,
        at: DateTime<Utc>,
        max: i64,
    ) -> Result<Option<i64>, StoreError> {
        on_backend!(self, p => p.request_family_link(citizen_id, member_id, status, approved_by, at, max).await)
    }
    /// Moves a link from `from` to `to`; false when it is not in `from` (decided already).
    pub async fn decide_family_link(
        &self,
        id: i64,
        from: &str,
        to: &str,
        by: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, p => p.decide_family_link(id, from, to, by, reason, at).await)
    }
}
