//! The offline checkpoint's own state: one small SQLite file on the checkpoint's device (not the
//! server's database, and not its migrations: a schema of its own, made on first use).
//!
//! It holds what `tongxing checkpoint sync` downloaded — the signed trust list as served, the
//! revocation list as its entries (deltas are applied locally, so the merged list is no longer
//! one signed document; every part of it was verified before it was stored), the rule sets'
//! JSON bodies, the checkpoints the officer's token may check at, the policy parameters — and
//! the queue of checks made since, each with its idempotency key.
//!
//! Durability: WAL with `synchronous=FULL`, so that a check's row is on disk when
//! [`LocalState::record_check`] returns, before its verdict is shown: a `kill -9` (or a power
//! cut) after the verdict loses nothing. The file is small and checks come at a person's pace,
//! so the fsync per check costs nothing that matters.
//!
//! This module stores bytes and strings; what they mean (COSE, CBOR, rule sets) is the caller's.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Row, Sqlite};

use crate::StoreError;
use crate::model::{from_ms, ms};

/// The schema's version, kept in `PRAGMA user_version`: a file made by a newer build is refused.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS synced (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    server TEXT NOT NULL,
    anchor TEXT NOT NULL,
    checkpoint_id TEXT,
    checkpoints TEXT NOT NULL,
    policy TEXT NOT NULL,
    trust_list BLOB NOT NULL,
    trust_version INTEGER NOT NULL,
    trust_issued_at INTEGER NOT NULL,
    trust_synced_at INTEGER NOT NULL,
    revocations BLOB NOT NULL,
    revocation_version INTEGER NOT NULL,
    revocation_issued_at INTEGER NOT NULL,
    revocations_synced_at INTEGER NOT NULL,
    rules_issued_at INTEGER NOT NULL,
    rules_synced_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_sets (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
-- Every check made here. state: pending (to upload), recorded or duplicate (the server has it),
-- rejected (the server refused it, with the reason), local (a refused code: nobody to record).
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    checkpoint_id TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    as_of INTEGER,
    verdict TEXT,
    stage TEXT,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    uploaded_at INTEGER
);
CREATE INDEX IF NOT EXISTS checks_state ON checks (state, id);
";

/// Everything a sync stores, replaced whole by the next one.
#[derive(Debug, Clone)]
pub struct Synced {
    /// The server's base URL.
    pub server: String,
    /// The trust anchor (the list-signing key's public half), PEM.
    pub anchor_pem: String,
    /// The checkpoint checks are made at unless another is named.
    pub checkpoint_id: Option<String>,
    /// JSON array of the checkpoints the token may check at (`{id, name, road, kind}`).
    pub checkpoints: String,
    /// JSON object of the policy parameters (`offline_data_max_age_hours`, `clock_tolerance_seconds`).
    pub policy: String,
    /// The signed trust list, as served.
    pub trust_list: Vec<u8>,
    pub trust_version: i64,
    pub trust_issued_at: DateTime<Utc>,
    pub trust_synced_at: DateTime<Utc>,
    /// The revocation list's entries, 24-byte records (hash ‖ cut-off) sorted by hash.
    pub revocations: Vec<u8>,
    pub revocation_version: i64,
    pub revocation_issued_at: DateTime<Utc>,
    pub revocations_synced_at: DateTime<Utc>,
    /// The rule sets' JSON bodies.
    pub rule_sets: Vec<String>,
    pub rules_issued_at: DateTime<Utc>,
    pub rules_synced_at: DateTime<Utc>,
}

/// One check made at the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCheck {
    /// 32 hex digits, made when the check is recorded; the server records each key once.
    pub idempotency_key: String,
    pub checkpoint_id: String,
    /// The device's clock when the check was made.
    pub checked_at: DateTime<Utc>,
    /// The time the decision was made as of, when the officer gave one (`--at`).
    pub as_of: Option<DateTime<Utc>>,
    /// pass, conditional or deny; `None` when a stage refused the code.
    pub verdict: Option<String>,
    /// The stage that refused the code.
    pub stage: Option<String>,
    /// JSON: the row to upload (a decided check) or the refusal.
    pub body: String,
    /// pending, recorded, duplicate, rejected or local.
    pub state: String,
    /// Why the server rejected it.
    pub detail: Option<String>,
}

/// What the server answered for one uploaded check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    Recorded,
    Duplicate,
    Rejected(String),
}

/// How many checks are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: i64,
    pub recorded: i64,
    pub duplicate: i64,
    pub rejected: i64,
    pub local: i64,
}

/// The checkpoint's state file.
pub struct LocalState {
    pool: Pool<Sqlite>,
}

impl LocalState {
    /// Opens the state file at `path`; `create` makes it when missing (a sync), otherwise a
    /// missing file is [`StoreError::NotFound`].
    pub async fn open(path: &Path, create: bool) -> Result<LocalState, StoreError> {
        if !create && !path.exists() {
            return Err(StoreError::NotFound(format!(
                "no checkpoint state at {}: run `tongxing checkpoint sync` first",
                path.display()
            )));
        }
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the commit of a check is on disk before its verdict is printed.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&pool).await?;
        if version > SCHEMA_VERSION {
            pool.close().await;
            return Err(StoreError::Corrupt(format!(
                "{} was made by a newer tongxing (schema {version}; this build knows {SCHEMA_VERSION})",
                path.display()
            )));
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {SCHEMA_VERSION}"))).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(LocalState { pool })
    }

    /// What the last sync stored, if any.
    pub async fn synced(&self) -> Result<Option<Synced>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT server, anchor, checkpoint_id, checkpoints, policy, trust_list, trust_version, trust_issued_at,
                trust_synced_at, revocations, revocation_version, revocation_issued_at, revocations_synced_at,
                rules_issued_at, rules_synced_at FROM synced WHERE one = 1",
        )
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let rule_sets =
            sqlx::query_scalar("SELECT body FROM rule_sets ORDER BY id, version").fetch_all(&self.pool).await?;
        Ok(Some(Synced {
            server: r.get(0),
            anchor_pem: r.get(1),
            checkpoint_id: r.get(2),
            checkpoints: r.get(3),
            policy: r.get(4),
            trust_list: r.get(5),
            trust_version: r.get(6),
            trust_issued_at: from_ms(r.get(7)),
            trust_synced_at: from_ms(r.get(8)),
            revocations: r.get(9),
            revocation_version: r.get(10),
            revocation_issued_at: from_ms(r.get(11)),
            revocations_synced_at: from_ms(r.get(12)),
            rule_sets,
            rules_issued_at: from_ms(r.get(13)),
            rules_synced_at: from_ms(r.get(14)),
        }))
    }

    /// Replaces what the last sync stored, in one transaction: all of it or nothing.
    pub async fn save_synced(&self, s: &Synced, rule_sets: &[(String, String, String)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO synced (one, server, anchor, checkpoint_id, checkpoints, policy, trust_list, trust_version,
                trust_issued_at, trust_synced_at, revocations, revocation_version, revocation_issued_at,
                revocations_synced_at, rules_issued_at, rules_synced_at)
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (one) DO UPDATE SET server = excluded.server, anchor = excluded.anchor,
                checkpoint_id = excluded.checkpoint_id, checkpoints = excluded.checkpoints, policy = excluded.policy,
                trust_list = excluded.trust_list, trust_version = excluded.trust_version,
                trust_issued_at = excluded.trust_issued_at, trust_synced_at = excluded.trust_synced_at,
                revocations = excluded.revocations, revocation_version = excluded.revocation_version,
                revocation_issued_at = excluded.revocation_issued_at, revocations_synced_at = excluded.revocations_synced_at,
                rules_issued_at = excluded.rules_issued_at, rules_synced_at = excluded.rules_synced_at",
        )
        .bind(&s.server)
        .bind(&s.anchor_pem)
        .bind(s.checkpoint_id.as_deref())
        .bind(&s.checkpoints)
        .bind(&s.policy)
        .bind(&s.trust_list)
        .bind(s.trust_version)
        .bind(ms(s.trust_issued_at))
        .bind(ms(s.trust_synced_at))
        .bind(&s.revocations)
        .bind(s.revocation_version)
        .bind(ms(s.revocation_issued_at))
        .bind(ms(s.revocations_synced_at))
        .bind(ms(s.rules_issued_at))
        .bind(ms(s.rules_synced_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rule_sets").execute(&mut *tx).await?;
        for (id, version, body) in rule_sets {
            sqlx::query("INSERT INTO rule_sets (id, version, body) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(version)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a check; returns once it is on disk. A decided check is queued for upload
    /// (`pending`); a refused code is kept here only (`local`).
    pub async fn record_check(&self, c: &LocalCheck) -> Result<(), StoreError> {
        let state = if c.verdict.is_some() { "pending" } else { "local" };
        sqlx::query(
            "INSERT INTO checks (idempotency_key, checkpoint_id, checked_at, as_of, verdict, stage, body, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.idempotency_key)
        .bind(&c.checkpoint_id)
        .bind(ms(c.checked_at))
        .bind(c.as_of.map(ms))
        .bind(c.verdict.as_deref())
        .bind(c.stage.as_deref())
        .bind(&c.body)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The oldest checks waiting for upload, at most `limit`.
    pub async fn pending(&self, limit: i64) -> Result<Vec<LocalCheck>, StoreError> {
        self.checks_where("state = 'pending'", limit).await
    }

    /// Every check, oldest first (for tests and the officer's log).
    pub async fn checks(&self) -> Result<Vec<LocalCheck>, StoreError> {
        self.checks_where("true", i64::MAX).await
    }

    async fn checks_where(&self, condition: &'static str, limit: i64) -> Result<Vec<LocalCheck>, StoreError> {
        let sql = format!(
            "SELECT idempotency_key, checkpoint_id, checked_at, as_of, verdict, stage, body, state, detail
             FROM checks WHERE {condition} ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| LocalCheck {
                idempotency_key: r.get(0),
                checkpoint_id: r.get(1),
                checked_at: from_ms(r.get(2)),
                as_of: r.get::<Option<i64>, _>(3).map(from_ms),
                verdict: r.get(4),
                stage: r.get(5),
                body: r.get(6),
                state: r.get(7),
                detail: r.get(8),
            })
            .collect())
    }

    /// Marks uploaded checks with the server's answer, in one transaction. Only pending rows
    /// change: an answer for a check already marked changes nothing.
    pub async fn mark_uploaded(
        &self,
        outcomes: &[(String, UploadOutcome)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (key, outcome) in outcomes {
            let (state, detail) = match outcome {
                UploadOutcome::Recorded => ("recorded", None),
                UploadOutcome::Duplicate => ("duplicate", None),
                UploadOutcome::Rejected(why) => ("rejected", Some(why.as_str())),
            };
            sqlx::query(
                "UPDATE checks SET state = $1, detail = $2, uploaded_at = $3
                 WHERE idempotency_key = $4 AND state = 'pending'",
            )
            .bind(state)
            .bind(detail)
            .bind(ms(at))
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many checks are in each state.
    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM checks GROUP BY state").fetch_all(&self.pool).await?;
        let mut c = QueueCounts::default();
        for r in rows {
            let n: i64 = r.get(1);
            match r.get::<String, _>(0).as_str() {
                "pending" => c.pending = n,
                "recorded" => c.recorded = n,
                "duplicate" => c.duplicate = n,
                "rejected" => c.rejected = n,
                _ => c.local += n,
            }
        }
        Ok(c)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, verdict: Option<&str>) -> LocalCheck {
        LocalCheck {
            idempotency_key: key.into(),
            checkpoint_id: "CP1".into(),
            checked_at: from_ms(1_700_000_000_000),
            as_of: None,
            verdict: verdict.map(str::to_string),
            stage: verdict.is_none().then(|| "bad_prefix".to_string()),
            body: "{}".into(),
            state: String::new(),
            detail: None,
        }
    }

    #[tokio::test]
    async fn queue_and_marks() {
        let dir = std::env::temp_dir().join(format!("tongxing-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp.db");
        let _ = std::fs::remove_file(&path);
        assert!(matches!(LocalState::open(&path, false).await, Err(StoreError::NotFound(_))));
        let s = LocalState::open(&path, true).await.unwrap();
        assert!(s.synced().await.unwrap().is_none());
        s.record_check(&check("a", Some("pass"))).await.unwrap();
        s.record_check(&check("b", None)).await.unwrap();
        s.record_check(&check("c", Some("deny"))).await.unwrap();
        assert!(s.record_check(&check("a", Some("pass"))).await.is_err(), "a key is recorded once");
        let pending: Vec<_> = s.pending(10).await.unwrap().into_iter().map(|c| c.idempotency_key).collect();
        assert_eq!(pending, ["a", "c"]);
        s.mark_uploaded(&[("a".into(), UploadOutcome::Recorded)], Utc::now()).await.unwrap();
        s.mark_uploaded(&[("a".into(), UploadOutcome::Rejected("late".into()))], Utc::now()).await.unwrap();
        s.mark_uploaded(&[("c".into(), UploadOutcome::Rejected("no person".into()))], Utc::now()).await.unwrap();
        let c = s.queue_counts().await.unwrap();
        assert_eq!(c, QueueCounts { pending: 0, recorded: 1, duplicate: 0, rejected: 1, local: 1 });
        s.close().await;
        // Reopened: everything is still there.
        let s = LocalState::open(&path, false).await.unwrap();
        assert_eq!(s.checks().await.unwrap().len(), 3);
        s.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
