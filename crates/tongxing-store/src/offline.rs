//! Checks made at an offline checkpoint and uploaded at its next sync. Each carries the
//! checkpoint's idempotency key (unique in `entry_events`): an upload retried after a lost
//! answer records nothing twice. One upload is one transaction. The statements are written once
//! and instantiated for both databases, as in `sql.rs`.

use crate::model::{OfflineEntry, ms};
use crate::{Backend, Store, StoreError};

macro_rules! offline_impl {
    ($db:ty) => {
        impl crate::Pools<$db> {
            pub(crate) async fn record_offline_entries(&self, rows: &[OfflineEntry]) -> Result<Vec<bool>, StoreError> {
                let mut tx = self.write.begin().await?;
                let mut recorded = Vec::with_capacity(rows.len());
                for r in rows {
                    let e = &r.event;
                    let done = sqlx::query(
                        "INSERT INTO entry_events (checkpoint_id, checked_at, doc_key, person_id, verdict, reasons,
                            policy_id, policy_version, rule_versions, facts, plate, officer, via, idempotency_key)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                         ON CONFLICT (idempotency_key) DO NOTHING",
                    )
                    .bind(&e.checkpoint_id)
                    .bind(ms(e.checked_at))
                    .bind(&e.doc_key)
                    .bind(e.person_id)
                    .bind(e.verdict.as_str())
                    .bind(crate::sql::to_json(&e.reasons)?)
                    .bind(&e.policy_id)
                    .bind(&e.policy_version)
                    .bind(crate::sql::to_json(&e.rule_versions)?)
                    .bind(crate::sql::to_json(&e.facts)?)
                    .bind(e.plate.as_deref())
                    .bind(&e.officer)
                    .bind(e.via)
                    .bind(&r.idempotency_key)
                    .execute(&mut *tx)
                    .await?;
                    let new = done.rows_affected() == 1;
                    if new && e.commuter_first_check && let Some(pid) = e.person_id {
                        // The earliest first check wins: an offline one may arrive after a later online one.
                        sqlx::query(
                            "UPDATE commuters SET first_checked_at = $1
                             WHERE person_id = $2 AND (first_checked_at IS NULL OR first_checked_at > $1)",
                        )
                        .bind(ms(e.checked_at))
                        .bind(pid)
                        .execute(&mut *tx)
                        .await?;
                    }
                    recorded.push(new);
                }
                tx.commit().await?;
                Ok(recorded)
            }
        }
    };
}

mod sqlite_impl {
    use super::*;
    offline_impl!(sqlx::Sqlite);
}
mod postgres_impl {
    use super::*;
    offline_impl!(sqlx::Postgres);
}

impl Store {
    /// Records checks uploaded by an offline checkpoint, in one transaction: for each, `true`
    /// when it was recorded now, `false` when its idempotency key was recorded before (a retried
    /// upload). A commuter's first check is recorded with the event that says so.
    pub async fn record_offline_entries(&self, rows: &[OfflineEntry]) -> Result<Vec<bool>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(p) => p.record_offline_entries(rows).await,
            Backend::Postgres(p) => p.record_offline_entries(rows).await,
        }
    }
}
