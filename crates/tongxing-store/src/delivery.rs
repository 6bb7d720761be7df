//! Delivery: leases (a task on one server at a time, with a fencing token), webhooks and their
//! deliveries, and the stored answers of requests sent with an Idempotency-Key. The statements
//! are written once and instantiated for both databases, as in `sql.rs`; the one that differs is
//! how the relay claims due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
//! writer).
//!
//! Fencing: a write made on behalf of a lease holder runs [`fence`] first, in its transaction:
//! an update of the lease row that matches only while the token is the one the holder got. On
//! PostgreSQL it also locks the row until the commit, so a new holder cannot take the lease
//! between the check and the commit; a holder that lost the lease gets
//! [`StoreError::LeaseLost`] and writes nothing.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::alerts::json;
use crate::model::{from_ms, ms};
use crate::{Store, StoreError};

/// A lease as stored.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: String,
    /// The fencing token: grows by one at every change of holder.
    pub token: i64,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub expires_at: DateTime<Utc>,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub acquired_at: DateTime<Utc>,
}

/// A held lease: what a fenced write checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub name: String,
    pub token: i64,
}

/// A webhook to register.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    /// Event types it receives; empty: all.
    pub events: Vec<String>,
    pub secret: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A webhook as stored (with its secrets: never shown after they are made).
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    pub start_after: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Deliveries not yet answered with 2xx, and delivered.
    pub pending: i64,
    pub delivered: i64,
    /// The last failed attempt's status (0: no answer) and error.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

/// A delivery claimed by a relay pass, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub webhook_id: i64,
    pub outbox_id: i64,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub url: String,
    /// The secrets to sign with: the current one, and the previous one during its grace period.
    pub secrets: Vec<String>,
    pub event: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub webhook_id: i64,
    pub outbox_id: i64,
    /// The receiver's status (0: no answer).
    pub status: i32,
    pub error: Option<String>,
    /// `None`: delivered (2xx). `Some(t)`: try again at t.
    pub retry_at: Option<DateTime<Utc>>,
}

/// A stored answer to a request with an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRecord {
    pub method: String,
    pub path: String,
    pub body_sha256: String,
    /// `None` while the first request runs.
    pub status: Option<i32>,
    pub content_type: Option<String>,
    pub response: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What [`Store::idempotency_begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyStart {
    /// The key is new (or expired, or abandoned): this request runs and its answer is kept.
    Run,
    /// The key is known: its record (compare the request; replay the answer, or wait).
    Known(IdempotentRecord),
}

/// How long a key is kept.
pub const IDEMPOTENCY_TTL: Duration = Duration::hours(24);
/// A first request still unanswered after this is taken as abandoned (its server died).
pub const IDEMPOTENCY_ABANDONED: Duration = Duration::seconds(60);

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

fn events_of(v: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_value(json(v)?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

macro_rules! webhook_select {
    ($where:literal) => {
        concat!(
            "SELECT w.id, w.url, w.events, w.secret, w.previous_secret, w.previous_until, w.start_after, w.created_by,
                    w.created_at, w.rotated_at, w.disabled_at,
                    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.delivered_at IS NULL),
                    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.delivered_at IS NOT NULL),
                    (SELECT d.last_status FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.delivered_at IS NULL
                       AND d.last_status IS NOT NULL ORDER BY d.outbox_id DESC LIMIT 1),
                    (SELECT d.last_error FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.delivered_at IS NULL
                       AND d.last_status IS NOT NULL ORDER BY d.outbox_id DESC LIMIT 1)
             FROM webhooks w ",
            $where
        )
    };
}

macro_rules! delivery_impl {
    ($db:ty, claim_lock = $lock:literal) => {
        /// The fence: matches only while `f` is the lease's current token (and, on PostgreSQL,
        /// holds the lease row until the transaction ends).
        pub(crate) async fn fence(tx: &mut sqlx::Transaction<'_, $db>, f: &Fence) -> Result<(), StoreError> {
            let done = sqlx::query("UPDATE leases SET token = token WHERE name = $1 AND token = $2")
                .bind(&f.name)
                .bind(f.token)
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::LeaseLost(f.name.clone())) }
        }

        fn webhook_record(r: &<$db as sqlx::Database>::Row) -> Result<WebhookRecord, StoreError> {
            Ok(WebhookRecord {
                id: r.get(0),
                url: r.get(1),
                events: events_of(r.get(2))?,
                secret: r.get(3),
                previous_secret: r.get(4),
                previous_until: r.get::<Option<i64>, _>(5).map(from_ms),
                start_after: r.get(6),
                created_by: r.get(7),
                created_at: from_ms(r.get(8)),
                rotated_at: r.get::<Option<i64>, _>(9).map(from_ms),
                disabled_at: r.get::<Option<i64>, _>(10).map(from_ms),
                pending: r.get(11),
                delivered: r.get(12),
                last_status: r.get::<Option<i32>, _>(13),
                last_error: r.get(14),
            })
        }

        impl crate::Pools<$db> {
            pub(crate) async fn acquire_lease(
                &self,
                name: &str,
                holder: &str,
                ttl: Duration,
                now: DateTime<Utc>,
            ) -> Result<Option<i64>, StoreError> {
                // Free or expired: taken, with the next token. Held by this holder: renewed.
                let row = sqlx::query(
                    "INSERT INTO leases (name, holder, token, expires_at, acquired_at) VALUES ($1, $2, 1, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET
                        token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > $4
                                     THEN leases.token ELSE leases.token + 1 END,
                        acquired_at = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > $4
                                     THEN leases.acquired_at ELSE excluded.acquired_at END,
                        holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
                     RETURNING token",
                )
                .bind(name)
                .bind(holder)
                .bind(ms(now + ttl))
                .bind(ms(now))
                .fetch_optional(&self.write)
                .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn renew_lease(
                &self,
                f: &Fence,
                holder: &str,
                ttl: Duration,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND token = $3",
                )
                .bind(&f.name)
                .bind(holder)
                .bind(f.token)
                .bind(ms(now + ttl))
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            pub(crate) async fn release_lease(&self, f: &Fence, holder: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3")
                    .bind(&f.name)
                    .bind(holder)
                    .bind(f.token)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            pub(crate) async fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
                let rows = sqlx::query("SELECT name, holder, token, expires_at, acquired_at FROM leases ORDER BY name")
                    .fetch_all(&self.write)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| LeaseRecord {
                        name: r.get(0),
                        holder: r.get(1),
                        token: r.get(2),
                        expires_at: from_ms(r.get(3)),
                        acquired_at: from_ms(r.get(4)),
                    })
                    .collect())
            }

            pub(crate) async fn create_webhook(&self, w: &NewWebhook) -> Result<WebhookRecord, StoreError> {
                let mut tx = self.write.begin().await?;
                // It receives the events committed after it: the outbox's head, read now.
                let head: i64 = sqlx::query("SELECT id FROM outbox_counter WHERE one = 1").fetch_one(&mut *tx).await?.get(0);
                let id: i64 = sqlx::query(
                    "INSERT INTO webhooks (url, events, secret, start_after, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&w.url)
                .bind(events_json(&w.events))
                .bind(&w.secret)
                .bind(head)
                .bind(&w.by)
                .bind(ms(w.at))
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                let row = sqlx::query(webhook_select!("WHERE w.id = $1")).bind(id).fetch_one(&mut *tx).await?;
                let record = webhook_record(&row)?;
                tx.commit().await?;
                Ok(record)
            }

            pub(crate) async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
                let rows = sqlx::query(webhook_select!("ORDER BY w.id")).fetch_all(&self.write).await?;
                rows.iter().map(webhook_record).collect()
            }

            pub(crate) async fn webhook(&self, id: i64) -> Result<Option<WebhookRecord>, StoreError> {
                let row = sqlx::query(webhook_select!("WHERE w.id = $1")).bind(id).fetch_optional(&self.write).await?;
                row.as_ref().map(webhook_record).transpose()
            }

            pub(crate) async fn rotate_webhook(
                &self,
                id: i64,
                secret: &str,
                grace_until: DateTime<Utc>,
                at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE webhooks SET previous_secret = secret, previous_until = $3, secret = $2, rotated_at = $4
                     WHERE id = $1 AND disabled_at IS NULL",
                )
                .bind(id)
                .bind(secret)
                .bind(ms(grace_until))
                .bind(ms(at))
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            pub(crate) async fn disable_webhook(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE webhooks SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL")
                    .bind(id)
                    .bind(ms(at))
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            pub(crate) async fn fan_out(&self, f: &Fence, at: DateTime<Utc>, max: i64) -> Result<i64, StoreError> {
                let mut tx = self.write.begin().await?;
                fence(&mut tx, f).await?;
                let from: i64 =
                    sqlx::query("SELECT fanned_out FROM webhook_relay WHERE one = 1").fetch_one(&mut *tx).await?.get(0);
                let head: i64 = sqlx::query("SELECT id FROM outbox_counter WHERE one = 1").fetch_one(&mut *tx).await?.get(0);
                let upto = head.min(from + max);
                if upto <= from {
                    return Ok(0);
                }
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (webhook_id, outbox_id, attempts, next_attempt_at)
                     SELECT w.id, o.id, 0, $3 FROM outbox o JOIN webhooks w ON o.id > w.start_after
                     WHERE o.id > $1 AND o.id <= $2 AND w.disabled_at IS NULL
                       AND (w.events = '[]' OR w.events LIKE '%\"' || o.event || '\"%')
                     ON CONFLICT (webhook_id, outbox_id) DO NOTHING",
                )
                .bind(from)
                .bind(upto)
                .bind(ms(at))
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE webhook_relay SET fanned_out = $1 WHERE one = 1").bind(upto).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() as i64)
            }

            pub(crate) async fn claim_deliveries(
                &self,
                claim: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<DueDelivery>, StoreError> {
                let mut tx = self.write.begin().await?;
                let claimed = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET claim = $1, next_attempt_at = $3, attempts = attempts + 1
                     WHERE (webhook_id, outbox_id) IN (
                        SELECT d.webhook_id, d.outbox_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                        WHERE d.delivered_at IS NULL AND d.next_attempt_at <= $2 AND w.disabled_at IS NULL
                        ORDER BY d.next_attempt_at, d.outbox_id LIMIT $4",
                    $lock,
                    ")"
                ))
                .bind(claim)
                .bind(ms(now))
                .bind(ms(until))
                .bind(limit)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() == 0 {
                    return Ok(Vec::new());
                }
                let rows = sqlx::query(
                    "SELECT d.webhook_id, d.outbox_id, d.attempts, w.url, w.secret, w.previous_secret, w.previous_until,
                            o.event, o.payload, o.created_at
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN outbox o ON o.id = d.outbox_id
                     WHERE d.claim = $1 AND d.delivered_at IS NULL ORDER BY d.outbox_id",
                )
                .bind(claim)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.iter()
                    .map(|r| {
                        let mut secrets = vec![r.get::<String, _>(4)];
                        if let (Some(prev), Some(until)) = (r.get::<Option<String>, _>(5), r.get::<Option<i64>, _>(6))
                            && until > ms(now)
                        {
                            secrets.push(prev);
                        }
                        Ok(DueDelivery {
                            webhook_id: r.get(0),
                            outbox_id: r.get(1),
                            attempts: r.get(2),
                            url: r.get(3),
                            secrets,
                            event: r.get(7),
                            payload: json(r.get(8))?,
                            created_at: from_ms(r.get(9)),
                        })
                    })
                    .collect()
            }

            pub(crate) async fn finish_deliveries(
                &self,
                f: &Fence,
                claim: &str,
                attempts: &[Attempt],
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                fence(&mut tx, f).await?;
                for a in attempts {
                    sqlx::query(
                        "UPDATE webhook_deliveries SET claim = NULL, last_status = $4, last_error = $5,
                            delivered_at = CASE WHEN $6 IS NULL THEN $7 ELSE NULL END,
                            next_attempt_at = COALESCE($6, next_attempt_at)
                         WHERE webhook_id = $1 AND outbox_id = $2 AND claim = $3",
                    )
                    .bind(a.webhook_id)
                    .bind(a.outbox_id)
                    .bind(claim)
                    .bind(a.status)
                    .bind(a.error.as_deref())
                    .bind(a.retry_at.map(ms))
                    .bind(ms(at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn idempotency_begin(
                &self,
                token_id: &str,
                key: &str,
                method: &str,
                path: &str,
                body_sha256: &str,
                now: DateTime<Utc>,
            ) -> Result<IdempotencyStart, StoreError> {
                for _ in 0..3 {
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (token_id, key, method, path, body_sha256, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_id, key) DO NOTHING",
                    )
                    .bind(token_id)
                    .bind(key)
                    .bind(method)
                    .bind(path)
                    .bind(body_sha256)
                    .bind(ms(now))
                    .execute(&self.write)
                    .await?;
                    if inserted.rows_affected() == 1 {
                        return Ok(IdempotencyStart::Run);
                    }
                    let row = sqlx::query(
                        "SELECT method, path, body_sha256, status, content_type, response, created_at
                         FROM idempotency_keys WHERE token_id = $1 AND key = $2",
                    )
                    .bind(token_id)
                    .bind(key)
                    .fetch_optional(&self.write)
                    .await?;
                    let Some(r) = row else { continue };
                    let record = IdempotentRecord {
                        method: r.get(0),
                        path: r.get(1),
                        body_sha256: r.get(2),
                        status: r.get(3),
                        content_type: r.get(4),
                        response: r.get(5),
                        created_at: from_ms(r.get(6)),
                    };
                    let expired = record.created_at <= now - IDEMPOTENCY_TTL;
                    let abandoned = record.status.is_none() && record.created_at <= now - IDEMPOTENCY_ABANDONED;
                    if !(expired || abandoned) {
                        return Ok(IdempotencyStart::Known(record));
                    }
                    // Expired, or its first request died unanswered: this one takes the key over
                    // (whoever updates the row first).
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET method = $3, path = $4, body_sha256 = $5, status = NULL,
                            content_type = NULL, response = NULL, created_at = $6
                         WHERE token_id = $1 AND key = $2 AND created_at = $7",
                    )
                    .bind(token_id)
                    .bind(key)
                    .bind(method)
                    .bind(path)
                    .bind(body_sha256)
                    .bind(ms(now))
                    .bind(ms(record.created_at))
                    .execute(&self.write)
                    .await?;
                    if taken.rows_affected() == 1 {
                        return Ok(IdempotencyStart::Run);
                    }
                }
                Err(StoreError::Conflict(format!("the Idempotency-Key {key:?} is contended; retry")))
            }

            pub(crate) async fn idempotency_known(
                &self,
                token_id: &str,
                key: &str,
            ) -> Result<Option<IdempotentRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT method, path, body_sha256, status, content_type, response, created_at
                     FROM idempotency_keys WHERE token_id = $1 AND key = $2",
                )
                .bind(token_id)
                .bind(key)
                .fetch_optional(&self.write)
                .await?;
                Ok(row.map(|r| IdempotentRecord {
                    method: r.get(0),
                    path: r.get(1),
                    body_sha256: r.get(2),
                    status: r.get(3),
                    content_type: r.get(4),
                    response: r.get(5),
                    created_at: from_ms(r.get(6)),
                }))
            }

            pub(crate) async fn idempotency_finish(
                &self,
                token_id: &str,
                key: &str,
                status: i32,
                content_type: Option<&str>,
                response: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE idempotency_keys SET status = $3, content_type = $4, response = $5
                     WHERE token_id = $1 AND key = $2 AND status IS NULL",
                )
                .bind(token_id)
                .bind(key)
                .bind(status)
                .bind(content_type)
                .bind(response)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            pub(crate) async fn idempotency_abandon(&self, token_id: &str, key: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND status IS NULL")
                    .bind(token_id)
                    .bind(key)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            pub(crate) async fn idempotency_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(ms(before))
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

mod sqlite_impl {
    use super::*;
    delivery_impl!(sqlx::Sqlite, claim_lock = "");
}
mod postgres_impl {
    use super::*;
    // Relays claim rows nobody else holds, without waiting for those that others do.
    delivery_impl!(sqlx::Postgres, claim_lock = " FOR UPDATE OF d SKIP LOCKED");
}

impl Store {
    /// Takes the lease `name` for `holder` when it is free or expired (with the next fencing
    /// token), or renews it when `holder` holds it; `None` when another holder does.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        crate::retried!(self, p => p.acquire_lease(name, holder, ttl, now).await)
    }
    /// Extends a held lease; false when it was lost (another holder took it).
    pub async fn renew_lease(
        &self,
        f: &Fence,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        crate::retried!(self, p => p.renew_lease(f, holder, ttl, now).await)
    }
    /// Gives a lease up (it expires now).
    pub async fn release_lease(&self, f: &Fence, holder: &str) -> Result<(), StoreError> {
        crate::retried!(self, p => p.release_lease(f, holder).await)
    }
    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        crate::retried!(self, p => p.leases().await)
    }
    /// Registers a webhook: it receives the events committed after this.
    pub async fn create_webhook(&self, w: &NewWebhook) -> Result<WebhookRecord, StoreError> {
        crate::retried!(self, p => p.create_webhook(w).await)
    }
    pub async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        crate::retried!(self, p => p.webhooks().await)
    }
    pub async fn webhook(&self, id: i64) -> Result<Option<WebhookRecord>, StoreError> {
        crate::retried!(self, p => p.webhook(id).await)
    }
    /// A new secret; the old one keeps signing until `grace_until`. False when there is no such
    /// enabled webhook.
    pub async fn rotate_webhook(
        &self,
        id: i64,
        secret: &str,
        grace_until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        crate::retried!(self, p => p.rotate_webhook(id, secret, grace_until, at).await)
    }
    /// Stops deliveries to a webhook; false when there is no such enabled webhook.
    pub async fn disable_webhook(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        crate::retried!(self, p => p.disable_webhook(id, at).await)
    }
    /// Fans the outbox events not yet fanned out (at most `max`) out to the webhooks that take
    /// them, as deliveries due at `at` (fenced); returns the deliveries made.
    pub async fn fan_out(&self, f: &Fence, at: DateTime<Utc>, max: i64) -> Result<i64, StoreError> {
        crate::retried!(self, p => p.fan_out(f, at, max).await)
    }
    /// Claims up to `limit` deliveries due at `now` for the pass `claim`, until `until` (when
    /// another pass may take them again), with what sending them needs.
    pub async fn claim_deliveries(
        &self,
        claim: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        crate::retried!(self, p => p.claim_deliveries(claim, now, until, limit).await)
    }
    /// Records a pass's attempts (fenced): delivered, or due again later.
    pub async fn finish_deliveries(
        &self,
        f: &Fence,
        claim: &str,
        attempts: &[Attempt],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::retried!(self, p => p.finish_deliveries(f, claim, attempts, at).await)
    }
    /// Starts a request with an Idempotency-Key: the first one with the key runs; a later one
    /// gets the key's record.
    pub async fn idempotency_begin(
        &self,
        token_id: &str,
        key: &str,
        method: &str,
        path: &str,
        body_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyStart, StoreError> {
        crate::retried!(self, p => p.idempotency_begin(token_id, key, method, path, body_sha256, now).await)
    }
    /// The record of a key, if any.
    pub async fn idempotency_known(&self, token_id: &str, key: &str) -> Result<Option<IdempotentRecord>, StoreError> {
        crate::retried!(self, p => p.idempotency_known(token_id, key).await)
    }
    /// Keeps the first request's answer.
    pub async fn idempotency_finish(
        &self,
        token_id: &str,
        key: &str,
        status: i32,
        content_type: Option<&str>,
        response: &str,
    ) -> Result<(), StoreError> {
        crate::retried!(self, p => p.idempotency_finish(token_id, key, status, content_type, response).await)
    }
    /// Forgets a key whose first request failed (a server error): a retry runs again.
    pub async fn idempotency_abandon(&self, token_id: &str, key: &str) -> Result<(), StoreError> {
        crate::retried!(self, p => p.idempotency_abandon(token_id, key).await)
    }
    /// Removes the keys made before `before`.
    pub async fn idempotency_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        crate::retried!(self, p => p.idempotency_purge(before).await)
    }
}
