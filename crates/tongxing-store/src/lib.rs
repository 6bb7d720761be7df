//! Tongxing's storage: one interface ([`Store`]) over SQLite (the embedded default) and
//! PostgreSQL (the scale-out store). Only this crate writes SQL.
//!
//! Layout:
//! - `model`: the records read and written.
//! - `sql`: the statements, written once in the dialect both databases share and instantiated
//!   per driver (`sqlite`, `postgres`).
//! - `migrate`: embedded migrations, run at start-up.
//! - [`Store`]: dispatch to the backend, and the group commit of entry events.
//!
//! Invariants: every multi-row write is one transaction (a bad batch writes nothing); once a
//! method returns `Ok`, the data is committed (SQLite in WAL mode survives a killed process).

mod alerts;
mod analytics;
pub mod checkpoint;
mod citizens;
mod commitments;
mod delivery;
mod migrate;
pub mod model;
mod offline;
mod queues;
mod sql;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commitments::commitment_select;
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Row, Sqlite};
use tokio::sync::{mpsc, oneshot};
use tongxing_domain::commitment::{CodeChange, CommitmentStatus};
use tongxing_domain::facts::{CodeColour, CodeFacts, CommuterFacts, CommuterStatus, PersonFacts, TestResult};

pub use alerts::{AlertFilter, AlertRecord, NewAlert, OutboxEvent};
pub use analytics::{
    CellEntry, FlowCell, FlowDim, FlowQuery, GRAINS, LabStats, PLACE_KINDS, Place, PositiveRow, RollupPass,
    WARN_WITHIN_HOURS, bucket_of,
};
pub use citizens::{FamilyLink, NewOtp, OtpCounts, OtpRecord, QueuedRevocation};
pub use commitments::{CommitmentRecord, FollowUps, NewCommitment, SignRefusal};
pub use delivery::{
    Attempt, DueDelivery, Fence, IDEMPOTENCY_ABANDONED, IDEMPOTENCY_TTL, IdempotencyStart, IdempotentRecord,
    LeaseRecord, NewWebhook, WebhookRecord,
};
pub use model::*;
pub use queues::LabSample;
use sql::{
    EntryRow, SampleKey, SampleRow, code_record, parse_people, parse_sample_facts, parse_stored, plan_samples,
    result_str, rows_with_ids, site_kind_str, to_json,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("the database URL is not supported: {0} (use sqlite://PATH or postgres://...)")]
    Url(String),
    #[error("migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    #[error("the store is shutting down")]
    Closed,
    #[error("a concurrent write stored the same sample first; run the batch again")]
    Raced,
    /// A fenced write by a server that no longer holds the lease (another took it over).
    #[error("the lease '{0}' is held by another server now")]
    LeaseLost(String),
}

impl StoreError {
    /// Lost a race with a concurrent transaction (or a deadlock): running it again succeeds.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Raced => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01") | Some("40001"))
            }
            _ => false,
        }
    }

    /// The database could not be reached (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Closed
                | StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }
}

/// Runs a store call on the backend again (up to 8 times, after a short random pause) while it
/// fails because it lost to a concurrent transaction: a serialization failure (40001: any
/// transaction on CockroachDB and YugabyteDB, or PostgreSQL at SERIALIZABLE) or a deadlock
/// (40P01). A failed attempt was rolled back whole, so running it again is safe.
macro_rules! retried {
    ($self:expr, $p:ident => $e:expr) => {{
        let mut attempt = 0u32;
        loop {
            let r = match &$self.inner.backend {
                crate::Backend::Sqlite($p) => $e,
                crate::Backend::Postgres($p) => $e,
            };
            match r {
                Err(e) if e.is_retryable() && attempt < 8 => {
                    attempt += 1;
                    crate::retry_pause(attempt, &e).await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retried;

/// The pause before attempt `attempt` + 1: 1 ms, 2 ms, 4 ms … (at most 32 ms), plus up to 5 ms.
pub(crate) async fn retry_pause(attempt: u32, e: &StoreError) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let jitter = u64::from(nanos.subsec_nanos() % 5000);
    tracing::debug!(attempt, error = %e, "transaction retried");
    tokio::time::sleep(Duration::from_micros((500u64 << attempt.min(6)) + jitter)).await;
}

/// A read pool and a write pool. With SQLite the write pool has one connection (SQLite has
/// one writer) and the read pool several; with PostgreSQL both are the same pool.
pub(crate) struct Pools<DB: sqlx::Database> {
    read: Pool<DB>,
    write: Pool<DB>,
}

mod sqlite_impl {
    use super::*;
    sql::sql_impl!(
        Sqlite,
        samples = "(SELECT j.value ->> 'k' AS k, j.value ->> 'dk' AS dk, j.value ->> 'dn' AS dn, j.value ->> 'l' AS l,
                    j.value ->> 's' AS s, j.value ->> 't' AS t, j.value ->> 'w' AS w, j.value ->> 'si' AS si, j.value ->> 'sk' AS sk,
                    j.value ->> 'r' AS r, j.value ->> 'p' AS p FROM jsonb_each($1) AS j) AS j",
        entries = "(SELECT j.value ->> 'c' AS c, j.value ->> 't' AS t, j.value ->> 'k' AS k, j.value ->> 'p' AS p,
                    j.value ->> 'v' AS v, j.value ->> 'r' AS r, j.value ->> 'pi' AS pi, j.value ->> 'pv' AS pv,
                    j.value ->> 'rv' AS rv, j.value ->> 'f' AS f, j.value ->> 'pl' AS pl, j.value ->> 'o' AS o,
                    j.value ->> 'vi' AS vi FROM jsonb_each($1) AS j) AS j",
        agg = "json_group_array",
        arr = "json_array",
        // The weeks $3 to $4, one index seek each.
        weeks = "IN (WITH RECURSIVE d(x) AS (SELECT $3 UNION ALL SELECT x + 1 FROM d WHERE x < $4) SELECT x FROM d)"
    );
    commitments::commitments_impl!(Sqlite, alerts = crate::alerts::sqlite_impl);
}
mod postgres_impl {
    use super::*;
    sql::sql_impl!(
        Postgres,
        samples = "jsonb_to_recordset($1::jsonb) AS j(k text, dk text, dn text, l text, s text, t bigint, w bigint, si text, sk text, r text, p bigint)",
        entries =
            "jsonb_to_recordset($1::jsonb) AS j(c text, t bigint, k text, p bigint, v text, r text, pi text, pv text,
                   rv text, f text, pl text, o text, vi text)",
        agg = "json_agg",
        arr = "json_build_array",
        weeks = "= ANY(ARRAY(SELECT generate_series($3::bigint, $4::bigint)))"
    );
    commitments::commitments_impl!(Postgres, alerts = crate::alerts::postgres_impl);
}

enum Backend {
    Sqlite(Pools<Sqlite>),
    Postgres(Pools<Postgres>),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $e:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite($p) => $e,
            Backend::Postgres($p) => $e,
        }
    };
}
pub(crate) use dispatch;

struct Inner {
    backend: Backend,
    /// Sends entry events to the group-commit task; each waits for its commit.
    entries: mpsc::Sender<(EntryEvent, oneshot::Sender<Result<(), String>>)>,
    /// Whether the last batch of samples was all new: then the next is first tried as such.
    fresh_samples: std::sync::atomic::AtomicBool,
    /// Wakes this process's outbox reader (`Store::outbox_signal`), and whether a LISTEN task runs.
    outbox_signal: Arc<tokio::sync::Notify>,
    outbox_listening: std::sync::atomic::AtomicBool,
    /// The rollup job's memory of each document's last check (this process's, when it runs the job).
    recent: tokio::sync::Mutex<crate::analytics::Recent>,
}

/// The store. Cheap to clone; all clones share the pools and the entry writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One read of a person's record, for the access log.
#[derive(Debug, Clone, Serialize)]
pub struct AccessLogEntry {
    pub at: DateTime<Utc>,
    pub token_id: String,
    pub role: String,
    pub person_id: PersonId,
    pub action: String,
    pub purpose: String,
}

/// Which commuter-certification changes are allowed.
pub fn check_transition(from: CommuterStatus, to: CommuterStatus) -> Result<(), StoreError> {
    use CommuterStatus::*;
    let ok = matches!(
        (from, to),
        (Pending, Approved)
            | (Pending, Rejected)
            | (Approved, Suspended | Revoked | Expired)
            | (Suspended, Approved | Revoked)
    );
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("a certification in state '{from}' cannot become '{to}'")))
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` — created if missing — or `postgres://...`) and runs
    /// the embedded migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let mut sqlite_checkpoints: Option<(Pool<Sqlite>, Pool<Sqlite>)> = None;
        let backend = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // For a new database: 16 KiB pages make the indexes one level shallower and
                // write a testing round's index pages in a quarter of the log frames (the
                // import ran 50 % faster than with 4 KiB pages; docs/PERFORMANCE.md).
                .page_size(16_384)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives the process being killed; only a power cut
                // can lose the last transactions.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false)
                .pragma("cache_size", "-262144")
                .pragma("temp_store", "memory")
                .pragma("journal_size_limit", "67108864")
                // Checkpoints run on their own connection (below), not in the writer's commits.
                .pragma("wal_autocheckpoint", "0");
            let write = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
            migrate::run_sqlite(&write).await?;
            let checkpoints = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
            sqlite_checkpoints = Some((checkpoints, write.clone()));
            let read = SqlitePoolOptions::new().max_connections(4).connect_with(opts.read_only(true)).await?;
            Backend::Sqlite(Pools { read, write })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
            migrate::run_postgres(&pool).await?;
            Backend::Postgres(Pools { read: pool.clone(), write: pool })
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let (tx, rx) = mpsc::channel(8192);
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                entries: tx,
                fresh_samples: std::sync::atomic::AtomicBool::new(true),
                outbox_signal: Default::default(),
                outbox_listening: Default::default(),
                recent: Default::default(),
            }),
        };
        tokio::spawn(entry_writer(store.clone_backend_handle(), rx));
        if let Some((pool, writer)) = sqlite_checkpoints {
            tokio::spawn(checkpointer(store.clone_backend_handle(), pool, writer));
        }
        Ok(store)
    }

    /// A handle for the entry writer that does not keep the channel open.
    fn clone_backend_handle(&self) -> WriterHandle {
        WriterHandle(Arc::downgrade(&self.inner))
    }

    pub fn kind(&self) -> Kind {
        match self.inner.backend {
            Backend::Sqlite(_) => Kind::Sqlite,
            Backend::Postgres(_) => Kind::Postgres,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, p => p.ping().await)
    }

    /// Registers a person, or updates the fields given; returns the person's id.
    pub async fn upsert_person(&self, p: &PersonInput, at: DateTime<Utc>) -> Result<PersonId, StoreError> {
        dispatch!(self, b => b.upsert_person(p, at).await)
    }
    pub async fn person(&self, doc_key: &str) -> Result<Option<PersonRecord>, StoreError> {
        dispatch!(self, b => b.person(doc_key).await)
    }
    /// The person's samples taken from `since` to `until`, newest first, at most `limit`.
    pub async fn samples_of(
        &self,
        person_id: PersonId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SampleRecord>, StoreError> {
        dispatch!(self, b => b.samples_of(person_id, since, until, limit).await)
    }
    pub async fn sample_history(&self, lab: &str, sample_id: &str) -> Result<Vec<SampleRecord>, StoreError> {
        dispatch!(self, b => b.sample_history(lab, sample_id).await)
    }
    /// Stores a batch of samples atomically; one outcome per input, in order.
    pub async fn submit_samples(
        &self,
        inputs: &[SampleInput],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<SampleOutcome>, StoreError> {
        self.submit_samples_following(inputs, by, at).await.map(|(outcomes, _)| outcomes)
    }

    /// [`Store::submit_samples`], with what followed from results that answered commitments
    /// (codes changed, alerts raised: in the same transaction).
    pub async fn submit_samples_following(
        &self,
        inputs: &[SampleInput],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(Vec<SampleOutcome>, FollowUps), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        // A testing round is mostly new samples: a batch is first written as if it were all
        // new (no look-up of what is stored); if one of its samples is known, that attempt is
        // dropped whole and the batch compared row by row. Once a batch had resends, the next
        // ones go straight to the comparison until one is all new again.
        if self.inner.fresh_samples.load(Relaxed) {
            match dispatch!(self, b => b.submit_new_samples(inputs, by, at).await) {
                // New samples answer no commitment (one is signed for a stored sample).
                Ok(Some(outcomes)) => return Ok((outcomes, FollowUps::default())),
                Ok(None) => self.inner.fresh_samples.store(false, Relaxed),
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
        }
        // Concurrent batches (several importers on PostgreSQL) may race for the same new
        // sample; the loser's transaction is dropped whole and run again, now seeing it.
        let mut attempt = 0;
        loop {
            match dispatch!(self, b => b.submit_samples_once(inputs, by, at).await) {
                Err(e) if e.is_retryable() && attempt < 5 => attempt += 1,
                Ok((outcomes, follow_ups)) => {
                    let fresh = outcomes.iter().all(|o| *o == SampleOutcome::Accepted);
                    self.inner.fresh_samples.store(fresh, Relaxed);
                    return Ok((outcomes, follow_ups));
                }
                Err(e) => return Err(e),
            }
        }
    }
    /// Registers a sample taken at a test point (result pending), the person created if needed.
    pub async fn register_sample(
        &self,
        input: &SampleInput,
        pool_id: Option<&str>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<SampleOutcome, StoreError> {
        dispatch!(self, b => b.register_sample(input, pool_id, by, at).await)
    }
    /// Records a commitment letter; `Ok(Err(..))` says why it was refused, `Ok(Ok((c, false)))`
    /// that it was signed before.
    pub async fn sign_commitment(
        &self,
        c: &NewCommitment<'_>,
    ) -> Result<Result<(CommitmentRecord, bool), SignRefusal>, StoreError> {
        dispatch!(self, b => b.sign_commitment(c).await)
    }
    /// For `tongxing bench overdue`: `open` pending commitments of the first `people` people,
    /// `due` of them past their deadline at `now`.
    pub async fn bench_commitments(
        &self,
        open: i64,
        due: i64,
        people: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => b.bench_commitments(open, due, people, now).await)
    }
    /// A person's commitments, newest first.
    pub async fn commitments_of(&self, person_id: PersonId) -> Result<Vec<CommitmentRecord>, StoreError> {
        dispatch!(self, b => b.commitments_of(person_id).await)
    }
    /// Ends up to `limit` pending commitments past their deadline (overdue: alert, yellow code).
    pub async fn scan_overdue(&self, now: DateTime<Utc>, limit: i64) -> Result<FollowUps, StoreError> {
        dispatch!(self, b => b.scan_overdue(now, limit).await)
    }
    /// A pool's result (negative or positive); returns the number of members and what followed.
    pub async fn pool_result(
        &self,
        lab: &str,
        pool_id: &str,
        result: TestResult,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(usize, FollowUps), StoreError> {
        dispatch!(self, b => b.pool_result(lab, pool_id, result, by, at).await)
    }
    pub async fn set_code(
        &self,
        person_id: PersonId,
        colour: CodeColour,
        reason: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => b.set_code(person_id, colour, reason, expires_at, by, at).await)
    }
    /// Sets the colours of many people (each registered if new) in one transaction: all or
    /// nothing. Returns their ids, in order.
    pub async fn set_codes(
        &self,
        rows: &[ColourRow],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<PersonId>, StoreError> {
        retried!(self, b => b.set_codes(rows, by, at).await)
    }
    pub async fn code_history(&self, person_id: PersonId) -> Result<Vec<CodeRecord>, StoreError> {
        dispatch!(self, b => b.code_history(person_id).await)
    }
    /// Registers (or updates) the person and files a commuter application, atomically.
    pub async fn apply_commuter(
        &self,
        person: &PersonInput,
        a: &CommuterApplication,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<PersonId, StoreError> {
        dispatch!(self, b => b.apply_commuter(person, a, by, at).await)
    }
    /// Changes a certification's state; returns the state it had.
    pub async fn change_commuter(
        &self,
        person_id: PersonId,
        to: CommuterStatus,
        reason: Option<&str>,
        valid_until: Option<DateTime<Utc>>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<CommuterStatus, StoreError> {
        dispatch!(self, b => b.change_commuter(person_id, to, reason, valid_until, by, at).await)
    }
    pub async fn commuter(&self, person_id: PersonId) -> Result<Option<CommuterRecord>, StoreError> {
        dispatch!(self, b => b.commuter(person_id).await)
    }
    pub async fn commuter_history(&self, person_id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        dispatch!(self, b => b.commuter_history(person_id).await)
    }
    /// Imports approved commuters; returns, per row, whether it created a certification.
    pub async fn import_commuters(
        &self,
        rows: &[(PersonInput, CommuterApplication)],
        valid_until: DateTime<Utc>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        dispatch!(self, b => b.import_commuters(rows, valid_until, by, at).await)
    }
    pub async fn upsert_checkpoint(&self, c: &Checkpoint, at: DateTime<Utc>) -> Result<(), StoreError> {
        dispatch!(self, b => b.upsert_checkpoint(c, at).await)
    }
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        dispatch!(self, b => b.checkpoints().await)
    }
    /// Everything a decision at `until` needs about one person, with the samples taken since `since`.
    pub async fn load_facts(
        &self,
        doc_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<LoadedFacts, StoreError> {
        dispatch!(self, b => b.load_facts(doc_key, since, until).await)
    }
    /// A citizen's pass's facts, in one statement (`None`: no such person).
    pub async fn load_pass_facts(
        &self,
        person_id: PersonId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<PassFacts>, StoreError> {
        dispatch!(self, b => b.load_pass_facts(person_id, since, until).await)
    }
    pub async fn record_commuter_first_check(&self, person_id: PersonId, at: DateTime<Utc>) -> Result<(), StoreError> {
        dispatch!(self, b => b.record_commuter_first_check(person_id, at).await)
    }
    /// Records one entry event; returns once it is committed. Concurrent calls are committed
    /// together in one transaction (group commit), which is what makes thousands of checks a
    /// second possible on SQLite's single writer.
    pub async fn record_entry(&self, event: EntryEvent) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner.entries.send((event, tx)).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?.map_err(|e| StoreError::Corrupt(format!("entry not recorded: {e}")))
    }
    /// Entry events checked in [since, until) with an id above `after`, in id order (page
    /// through a period by passing the last id seen).
    pub async fn entries(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EntryRecord>, StoreError> {
        dispatch!(self, b => b.entries(since, until, after, limit).await)
    }
    /// Entry events for a replay: like `entries`, with the facts snapshot left as JSON text.
    pub async fn replay_page(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ReplayRow>, StoreError> {
        dispatch!(self, b => b.replay_page(since, until, after, limit).await)
    }
    /// Stores a rule set (audited); `Ok(false)` when exactly this was published already.
    pub async fn publish_policy(
        &self,
        id: &str,
        version: &str,
        body: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, b => b.publish_policy(id, version, body, by, at).await)
    }
    /// Makes a published rule set eligible for checks from its ValidFrom (audited).
    pub async fn activate_policy(
        &self,
        id: &str,
        version: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => b.activate_policy(id, version, by, at).await)
    }
    pub async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        dispatch!(self, b => b.policies().await)
    }
    pub async fn audit_policy(
        &self,
        at: DateTime<Utc>,
        by: &str,
        action: &str,
        id: &str,
        version: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => b.audit_policy(at, by, action, id, version, detail).await)
    }
    /// Publications, activations and dry runs, oldest first.
    pub async fn policy_audit_log(&self) -> Result<Vec<HistoryEntry>, StoreError> {
        dispatch!(self, b => b.policy_audit_log().await)
    }
    pub async fn verdict_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<VerdictCount>, StoreError> {
        dispatch!(self, b => b.verdict_counts(since, until).await)
    }
    pub async fn create_token(
        &self,
        id: &str,
        hash: &str,
        role: &str,
        scope: &[String],
        label: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => b.create_token(id, hash, role, scope, label, at).await)
    }
    /// The token with this hash, unless revoked or expired at `now`.
    pub async fn token_by_hash(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
        dispatch!(self, b => b.token_by_hash(hash, now).await)
    }
    pub async fn log_access(&self, a: &AccessLogEntry) -> Result<(), StoreError> {
        dispatch!(self, b => b.log_access(a).await)
    }
    pub async fn access_log(&self, person_id: PersonId) -> Result<Vec<AccessLogEntry>, StoreError> {
        dispatch!(self, b => b.access_log(person_id).await)
    }
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        dispatch!(self, b => b.counts().await)
    }

    async fn write_entries(&self, events: &[EntryEvent]) -> Result<(), StoreError> {
        dispatch!(self, b => b.record_entries(events).await)
    }

    /// Closes the pools (after the entry writer has drained).
    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(p) => {
                // The log copied into the database file and emptied: the file alone is whole.
                // Readers first (a reader's snapshot holds the log); the checkpointer's own
                // passive run may still hold it for a moment, so a busy answer is retried.
                p.read.close().await;
                for _ in 0..40 {
                    match sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&p.write).await {
                        Ok(r) if r.get::<i64, _>(0) == 0 => break,
                        Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "final WAL checkpoint failed");
                            break;
                        }
                    }
                }
                p.write.close().await;
            }
            Backend::Postgres(p) => p.write.close().await,
        }
    }
}

struct WriterHandle(std::sync::Weak<Inner>);

/// Size of the write-ahead log beyond which it is truncated.
const WAL_RESTART_BYTES: i64 = 256 << 20;

/// Copies SQLite's write-ahead log into the database file every half second (a passive
/// checkpoint: it never blocks the writer or readers), so commits never pay for it. Under a
/// constant stream of reads and writes the log may never find a moment to start over, so once
/// it passes [`WAL_RESTART_BYTES`] a truncating checkpoint waits for the readers of the moment
/// and starts it afresh (writes wait for that short while).
async fn checkpointer(handle: WriterHandle, pool: Pool<Sqlite>, writer: Pool<Sqlite>) {
    // A frame holds one page; a database keeps the page size it was created with.
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&pool).await.unwrap_or(4096);
    let restart_frames = WAL_RESTART_BYTES / page_size.max(512);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if handle.0.strong_count() == 0 {
            break;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await {
            Ok(r) => {
                let (log, done) = (r.get::<i64, _>(1), r.get::<i64, _>(2));
                tracing::debug!(log, done, "WAL checkpoint");
                if log > restart_frames {
                    let started = std::time::Instant::now();
                    // On the writer's own connection, between two of its transactions: it then
                    // only waits for readers, never competes with the writer for the lock.
                    match sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&writer).await {
                        Ok(r) => tracing::info!(
                            frames = log,
                            busy = r.get::<i64, _>(0),
                            millis = started.elapsed().as_millis() as u64,
                            "WAL truncated"
                        ),
                        Err(e) => tracing::warn!(error = %e, "WAL truncation failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&pool).await;
    pool.close().await;
}

/// The group-commit task: takes every event waiting, writes them in one transaction, answers
/// each caller. Ends when every `Store` clone is gone.
async fn entry_writer(handle: WriterHandle, mut rx: mpsc::Receiver<(EntryEvent, oneshot::Sender<Result<(), String>>)>) {
    const MAX_BATCH: usize = 1024;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Some(inner) = handle.0.upgrade() else {
            break;
        };
        let store = Store { inner };
        let (events, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let result = store.write_entries(&events).await.map_err(|e| {
            tracing::error!(error = %e, count = events.len(), "entry events not recorded");
            e.to_string()
        });
        drop(store);
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}
