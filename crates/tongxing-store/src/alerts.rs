//! Alerts and the outbox. An alert is stored with the event that raised it and, in the same
//! transaction, an outbox row that delivery (the SSE stream, webhooks) reads; acknowledging and
//! resolving an alert write outbox rows too. Outbox ids come from a counter row taken in the
//! writing transaction, so they are committed in order and without gaps.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::model::{PersonId, from_ms, ms};
use crate::{Backend, Store, StoreError};

/// An alert to raise.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// positive, overdue or pool_positive.
    pub kind: String,
    /// One alert per cause: a second alert with this key raises nothing.
    pub dedup_key: String,
    pub person_id: Option<PersonId>,
    /// What the people who act on it need (JSON object).
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// An alert as stored.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRecord {
    pub id: i64,
    pub kind: String,
    pub dedup_key: String,
    #[serde(skip)]
    pub person_id: Option<PersonId>,
    pub payload: serde_json::Value,
    /// open, acknowledged or resolved.
    pub status: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    #[serde(serialize_with = "tongxing_domain::time::serialize_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// One event of the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEvent {
    pub id: i64,
    /// alert.raised, alert.acknowledged or alert.resolved.
    pub event: String,
    pub alert_id: Option<i64>,
    pub payload: serde_json::Value,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub created_at: DateTime<Utc>,
}

pub(crate) fn json(v: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

macro_rules! alert_select {
    ($where:literal) => {
        concat!(
            "SELECT id, kind, dedup_key, person_id, payload, status, raised_at, acknowledged_by, acknowledged_at,
                    resolved_by, resolved_at, outcome FROM alerts ",
            $where
        )
    };
}

macro_rules! alerts_impl {
    ($db:ty, notify = $notify:literal) => {
        fn alert_record(r: &<$db as sqlx::Database>::Row) -> Result<AlertRecord, StoreError> {
            Ok(AlertRecord {
                id: r.get(0),
                kind: r.get(1),
                dedup_key: r.get(2),
                person_id: r.get(3),
                payload: json(r.get(4))?,
                status: r.get(5),
                raised_at: from_ms(r.get(6)),
                acknowledged_by: r.get(7),
                acknowledged_at: r.get::<Option<i64>, _>(8).map(from_ms),
                resolved_by: r.get(9),
                resolved_at: r.get::<Option<i64>, _>(10).map(from_ms),
                outcome: r.get(11),
            })
        }

        /// Appends an outbox event in the caller's transaction; returns its id.
        pub(crate) async fn outbox_append(
            tx: &mut sqlx::Transaction<'_, $db>,
            event: &str,
            alert_id: Option<i64>,
            payload: &serde_json::Value,
            at: DateTime<Utc>,
        ) -> Result<i64, StoreError> {
            let id: i64 = sqlx::query("UPDATE outbox_counter SET id = id + 1 WHERE one = 1 RETURNING id")
                .fetch_one(&mut **tx)
                .await?
                .get(0);
            sqlx::query("INSERT INTO outbox (id, event, alert_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(event)
                .bind(alert_id)
                .bind(payload.to_string())
                .bind(ms(at))
                .execute(&mut **tx)
                .await?;
            // PostgreSQL: wakes the servers listening (delivered at the commit); they poll anyway.
            if !$notify.is_empty() {
                sqlx::query($notify).bind(id.to_string()).execute(&mut **tx).await?;
            }
            Ok(id)
        }

        /// Raises an alert in the caller's transaction, with its outbox event; `None` when an
        /// alert with the same dedup key exists (nothing is written).
        pub(crate) async fn raise_alert_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            a: &NewAlert,
        ) -> Result<Option<i64>, StoreError> {
            let row = sqlx::query(
                "INSERT INTO alerts (kind, dedup_key, person_id, payload, status, raised_at)
                 VALUES ($1, $2, $3, $4, 'open', $5) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            )
            .bind(&a.kind)
            .bind(&a.dedup_key)
            .bind(a.person_id)
            .bind(a.payload.to_string())
            .bind(ms(a.at))
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let id: i64 = row.get(0);
            let event = serde_json::json!({
                "alert": id, "kind": a.kind, "status": "open", "raised_at": tongxing_domain::time::rfc3339(a.at),
                "detail": a.payload,
            });
            outbox_append(tx, "alert.raised", Some(id), &event, a.at).await?;
            Ok(Some(id))
        }

        impl crate::Pools<$db> {
            pub(crate) async fn raise_alert(&self, a: &NewAlert) -> Result<Option<i64>, StoreError> {
                let mut tx = self.write.begin().await?;
                let id = raise_alert_in(&mut tx, a).await?;
                tx.commit().await?;
                Ok(id)
            }

            pub(crate) async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
                let row = sqlx::query(alert_select!("WHERE id = $1")).bind(id).fetch_optional(&self.read).await?;
                row.as_ref().map(alert_record).transpose()
            }

            pub(crate) async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>, StoreError> {
                let rows = sqlx::query(alert_select!(
                    "WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR kind = $2) AND raised_at >= $3
                     ORDER BY raised_at DESC, id DESC LIMIT $4"
                ))
                .bind(f.status.as_deref())
                .bind(f.kind.as_deref())
                .bind(f.since.map(ms).unwrap_or(0))
                .bind(f.limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(alert_record).collect()
            }

            /// Moves an alert from `from` to `to` (acknowledged or resolved), with its outbox
            /// event; false when it is not in `from`.
            pub(crate) async fn move_alert(
                &self,
                id: i64,
                from: &str,
                to: &str,
                by: &str,
                outcome: Option<&str>,
                at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let row = if to == "acknowledged" {
                    sqlx::query(
                        "UPDATE alerts SET status = $3, acknowledged_by = $4, acknowledged_at = $5
                         WHERE id = $1 AND status = $2 RETURNING id",
                    )
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .bind(by)
                    .bind(ms(at))
                    .fetch_optional(&mut *tx)
                    .await?
                } else {
                    sqlx::query(
                        "UPDATE alerts SET status = $3, resolved_by = $4, resolved_at = $5, outcome = $6
                         WHERE id = $1 AND status = $2 RETURNING id",
                    )
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .bind(by)
                    .bind(ms(at))
                    .bind(outcome)
                    .fetch_optional(&mut *tx)
                    .await?
                };
                if row.is_none() {
                    return Ok(false);
                }
                let event = serde_json::json!({
                    "alert": id, "status": to, "by": by, "outcome": outcome, "at": tongxing_domain::time::rfc3339(at),
                });
                outbox_append(&mut tx, &format!("alert.{to}"), Some(id), &event, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            /// The id of the last committed outbox event (0: none).
            pub(crate) async fn outbox_head(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query("SELECT id FROM outbox_counter WHERE one = 1").fetch_one(&self.write).await?.get(0))
            }

            pub(crate) async fn outbox_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxEvent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, event, alert_id, payload, created_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(OutboxEvent {
                            id: r.get(0),
                            event: r.get(1),
                            alert_id: r.get(2),
                            payload: json(r.get(3))?,
                            created_at: from_ms(r.get(4)),
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) mod sqlite_impl {
    use super::*;
    alerts_impl!(sqlx::Sqlite, notify = "");
}
pub(crate) mod postgres_impl {
    use super::*;
    alerts_impl!(sqlx::Postgres, notify = "SELECT pg_notify('tongxing_outbox', $1)");
}

/// The channel writers of the outbox notify on PostgreSQL.
pub(crate) const OUTBOX_CHANNEL: &str = "tongxing_outbox";

impl Store {
    /// Raises an alert (its own transaction), with its outbox event; `None` when one with the
    /// same dedup key exists.
    pub async fn raise_alert(&self, a: &NewAlert) -> Result<Option<i64>, StoreError> {
        let id = crate::retried!(self, p => p.raise_alert(a).await)?;
        self.outbox_written();
        Ok(id)
    }
    pub async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        crate::retried!(self, p => p.alert(id).await)
    }
    /// Alerts, newest first.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>, StoreError> {
        crate::retried!(self, p => p.alerts(f).await)
    }
    /// Acknowledges (`to` = acknowledged) or resolves (`to` = resolved, with an outcome) an
    /// alert in state `from`; false when it is not in that state.
    pub async fn move_alert(
        &self,
        id: i64,
        from: &str,
        to: &str,
        by: &str,
        outcome: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let moved = crate::retried!(self, p => p.move_alert(id, from, to, by, outcome, at).await)?;
        self.outbox_written();
        Ok(moved)
    }
    /// The id of the last committed outbox event (0: none yet).
    pub async fn outbox_head(&self) -> Result<i64, StoreError> {
        crate::retried!(self, p => p.outbox_head().await)
    }
    /// Outbox events after `after`, in order.
    pub async fn outbox_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxEvent>, StoreError> {
        crate::retried!(self, p => p.outbox_after(after, limit).await)
    }
}

impl Store {
    /// Wakes this process's outbox readers early: call it after committing a transaction that
    /// wrote to the outbox (`raise_alert_in`). Without it they find the events at their next poll;
    /// on PostgreSQL the commit's NOTIFY wakes every server's readers anyway.
    pub fn outbox_written(&self) {
        self.inner.outbox_signal.notify_one();
    }

    /// What wakes this process's outbox reader: [`Store::outbox_written`] here and, on
    /// PostgreSQL, a notification from any server (a task LISTENs from the first call on). A
    /// wake-up may be lost (NOTIFY is not kept for whoever does not listen): readers poll too.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        if let Backend::Postgres(p) = &self.inner.backend
            && !self.inner.outbox_listening.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let pool = p.read.clone();
            let signal = self.inner.outbox_signal.clone();
            tokio::spawn(async move {
                loop {
                    let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                        Ok(l) => l,
                        Err(e) => {
                            if pool.is_closed() {
                                return;
                            }
                            tracing::warn!(error = %e, "LISTEN for the outbox: no connection; polling only");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    if let Err(e) = listener.listen(OUTBOX_CHANNEL).await {
                        tracing::warn!(error = %e, "LISTEN for the outbox failed; polling only");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                    // `recv` reconnects by itself after a lost connection (what was sent meanwhile
                    // is lost: the readers' polls find it).
                    loop {
                        match listener.recv().await {
                            Ok(_) => signal.notify_one(),
                            Err(e) => {
                                if pool.is_closed() {
                                    return;
                                }
                                tracing::warn!(error = %e, "LISTEN for the outbox interrupted");
                                signal.notify_one();
                                break;
                            }
                        }
                    }
                }
            });
        }
        self.inner.outbox_signal.clone()
    }
}
