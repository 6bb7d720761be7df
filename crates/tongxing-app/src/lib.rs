//! The application layer: each use case once, whatever calls it — the HTTP API, the CLI, the
//! offline checkpoint, the web pages. A use case takes values already parsed at the edge
//! (documents, checkpoint ids, plates), loads what it needs from the store, asks the domain and
//! the rules, records what must be recorded, and answers; it never formats HTTP or prints.
//!
//! Layout:
//! - [`App`]: the store, the rule sets in force and the checkpoints, shared by every use case,
//!   and their reload from the database (several servers share one).
//! - [`check`]: check a person, check a vehicle.
//! - [`frame`]: a camera frame of a pass, read with the `verify --image` decoder, then checked.
//! - [`citizen`]: one-time codes, citizens' sessions, family links.
//! - [`colours`]: health-code colours set one by one or from a file, previewed, all or nothing.
//! - [`commuter`]: commuter applications (by the registry or the citizen), decisions, the
//!   registry's queue, a person's own certification.
//! - [`csvfile`]: CSV files read record by record with their lines (the CLI's imports, the
//!   pages' previews).
//! - [`commitment`]: test points' samples, the commitment letter, results followed to their end
//!   (with the store), pools, the overdue scan.
//! - [`dryrun`]: replay recorded checks under a candidate rule set.
//! - [`offline`]: what an offline checkpoint syncs besides the signed lists, and recording the
//!   checks it uploads, once each.
//! - [`policies`]: a candidate rule set validated, dry-run, published, activated (audited).
//! - [`pass`]: a person's pass as the citizen sees it.
//! - [`signing`]: signed passes, the trust list and the revocation list; the changes of
//!   colour and certification that revoke passes.
//! - [`verify`]: deciding on a scanned pass, for the online check and the offline checkpoint.
//! - [`alerts`]: alerts for the health authority (list, acknowledge, resolve); [`feed`]: the
//!   outbox as a live feed for the SSE stream; [`webhooks`]: webhooks, signing and the relay;
//!   [`lease`]: tasks that run on one server at a time, fenced by a token.
//! - [`analytics`]: big data — the rollup job and the periodic detectors (early warnings as
//!   alerts), flows, profiles, shortcuts, testing demand, the drill-down to people.
//! - [`input`]: what the edges receive (a sample, a commuter application, a document) parsed
//!   into domain values, with errors naming the field; shared by the API and the CSV imports.

pub mod alerts;
pub mod analytics;
pub mod check;
pub mod citizen;
pub mod colours;
pub mod commitment;
pub mod commuter;
pub mod csvfile;
pub mod dryrun;
pub mod export;
pub mod feed;
pub mod frame;
pub mod input;
pub mod lease;
pub mod offline;
pub mod pass;
pub mod policies;
pub mod signing;
pub mod verify;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tongxing_domain::Policy;
use tongxing_domain::text::CheckpointId;
use tongxing_rules::RuleSet;
use tongxing_store::{Checkpoint, Store, StoreError};

/// Why a use case refused or failed. The edges map each kind to their own form (a problem
/// document, an exit code).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that is well-formed but not acceptable; `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Not this caller's to see or do (a citizen asking for someone not linked to them).
    #[error("{0}")]
    Forbidden(String),
    /// A scanned pass was refused at a stage of its verification (`bad_signature`, `expired`, …).
    #[error("{stage}: {detail}")]
    PassRefused { stage: String, detail: String },
    /// Too many requests of this kind; retry after the given seconds.
    #[error("{message}")]
    TooMany { message: String, retry_after_secs: u64 },
    /// The database (or the rules it holds) cannot serve now; retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        AppError::Invalid { field: field.into(), reason: reason.to_string() }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => AppError::NotFound(m),
            StoreError::Conflict(m) => AppError::Conflict(m),
            e if e.is_unavailable() => AppError::Unavailable(e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// What every use case shares. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// The legacy policies (windows, regions): the commuter application's checks read them.
    pub policies: Arc<Vec<Policy>>,
    /// Checkpoints by id (checks are hot): filled on a miss, updated on every registration
    /// here, and reloaded whole with the rule sets, so that a change made through another
    /// server arrives within the reload interval.
    checkpoints: Arc<RwLock<HashMap<String, Checkpoint>>>,
    /// The rule sets checks are decided by: the built-in ones and the activated published ones.
    /// Replaced whole on reload; a check holds the `Arc` it started with.
    rules: Arc<RwLock<Arc<Vec<RuleSet>>>>,
    /// Sends one-time codes; none configured means citizens cannot sign in here.
    codes: Option<Arc<dyn citizen::CodeSender>>,
    /// Signs passes and lists; none configured means this server issues no passes.
    keys: Option<Arc<signing::PassKeys>>,
    /// Document signers of EU Digital COVID Certificates, for test certificates shown as
    /// evidence; none configured means they are not accepted here.
    dcc: Option<Arc<tongxing_pass::hcert::DccTrustList>>,
    /// The outbox as a live feed (one poller per server, shared by its stream clients).
    feed: Arc<feed::Feed>,
    /// The thresholds of early warnings and of the privacy of aggregates (`serve --analytics`).
    analytics: Arc<tongxing_domain::analytics::AnalyticsConfig>,
}

impl App {
    pub fn new(store: Store, policies: Vec<Policy>) -> App {
        App {
            policies: Arc::new(policies),
            checkpoints: Default::default(),
            rules: Arc::new(RwLock::new(Arc::new(tongxing_rules::builtin()))),
            codes: None,
            keys: None,
            dcc: None,
            feed: Arc::new(feed::Feed::new(store.clone())),
            analytics: Default::default(),
            store,
        }
    }

    /// With the thresholds of early warnings and suppression (otherwise the defaults).
    pub fn with_analytics(mut self, config: tongxing_domain::analytics::AnalyticsConfig) -> App {
        self.analytics = Arc::new(config);
        self
    }

    /// The outbox as a live feed, for stream clients.
    pub fn alert_feed(&self) -> &Arc<feed::Feed> {
        &self.feed
    }

    /// With the EU DCC trust list (the gateway's document signer certificates).
    pub fn with_dcc_trust(mut self, trust: Arc<tongxing_pass::hcert::DccTrustList>) -> App {
        self.dcc = Some(trust);
        self
    }

    /// With a sender of one-time codes (citizens may then sign in).
    pub fn with_code_sender(mut self, sender: Arc<dyn citizen::CodeSender>) -> App {
        self.codes = Some(sender);
        self
    }

    /// The rule sets in use now.
    pub fn rules(&self) -> Arc<Vec<RuleSet>> {
        self.rules.read().expect("rules lock").clone()
    }

    /// The refusal when no rule set is in force (a misconfigured deployment).
    pub(crate) fn no_rule_set(at: DateTime<Utc>) -> AppError {
        AppError::Unavailable(format!("no entry rule set is in force at {}", tongxing_domain::time::rfc3339(at)))
    }

    /// Reloads what other servers may have changed in the shared database: the rule sets and
    /// the checkpoints.
    pub async fn reload(&self) -> AppResult<usize> {
        self.reload_checkpoints().await?;
        self.reload_rules().await
    }

    /// Replaces the checkpoint cache with the stored checkpoints.
    pub async fn reload_checkpoints(&self) -> AppResult<()> {
        let all: HashMap<String, Checkpoint> =
            self.store.checkpoints().await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        *self.checkpoints.write().expect("checkpoint cache") = all;
        Ok(())
    }

    /// Reloads the rule sets: the built-in ones plus every activated published one. A
    /// published rule set that no longer parses is logged and skipped, never half-loaded.
    pub async fn reload_rules(&self) -> AppResult<usize> {
        let mut sets = tongxing_rules::builtin();
        for p in self.store.policies().await? {
            if p.activated_at.is_none() {
                continue;
            }
            match RuleSet::from_json(&p.body) {
                Ok(rs) => {
                    sets.retain(|s| !(s.id() == rs.id() && s.version() == rs.version()));
                    sets.push(rs);
                }
                Err(e) => {
                    tracing::error!(id = %p.id, version = %p.version, error = %e, "published policy does not load")
                }
            }
        }
        let n = sets.len();
        *self.rules.write().expect("rules lock") = Arc::new(sets);
        Ok(n)
    }

    /// The legacy policy in force at `at`: the latest `valid_from` not after it.
    pub fn policy_at(&self, at: DateTime<Utc>) -> AppResult<&Policy> {
        self.policies.iter().filter(|p| p.in_force_at(at)).max_by_key(|p| p.valid_from).ok_or_else(|| {
            AppError::Unavailable(format!("no entry policy is in force at {}", tongxing_domain::time::rfc3339(at)))
        })
    }

    /// The checkpoint with this id, from the cache or the store; `field` names it in the refusal.
    pub async fn checkpoint(&self, id: &CheckpointId, field: &str) -> AppResult<Checkpoint> {
        if let Some(cp) = self.checkpoints.read().expect("checkpoint cache").get(id.as_str()) {
            return Ok(cp.clone());
        }
        self.reload_checkpoints().await?;
        self.checkpoints
            .read()
            .expect("checkpoint cache")
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| AppError::invalid(field, format!("no checkpoint '{id}' is registered")))
    }

    /// Registers (or updates) a checkpoint, here and in this server's cache.
    pub async fn register_checkpoint(&self, cp: Checkpoint, now: DateTime<Utc>) -> AppResult<Checkpoint> {
        self.store.upsert_checkpoint(&cp, now).await?;
        self.checkpoints.write().expect("checkpoint cache").insert(cp.id.clone(), cp.clone());
        Ok(cp)
    }
}
