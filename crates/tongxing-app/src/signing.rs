//! Signed passes: issuing one for a person, the trust list and the revocation list that offline
//! checkpoints sync, and putting a person's passes on the revocation list when their colour
//! turns, their commuter certification is suspended or revoked, or their passes are withdrawn.
//!
//! The keys reach the application as values ([`PassKeys`]); reading them from their files of
//! mode 0600 is the binary's work (`tongxing keys`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ring::hmac;
use serde::Serialize;
use tongxing_domain::facts::{CommuterKind, CommuterStatus, TestResult};
use tongxing_domain::time;
use tongxing_pass::{CommuterBadge, Entry, Pass, PassTest, RevocationDelta, RevocationHash, RevocationSet, Signer};
use utoipa::ToSchema;

use crate::{App, AppError, AppResult};

/// The issuer named in every pass.
pub const ISSUER: &str = "tongxing";

/// The keys of a server that issues passes.
pub struct PassKeys {
    /// Signs passes: the newest signing key that is not retired.
    pub signer: Signer,
    /// Signs the trust list and the revocation list; its public half is the checkpoints'
    /// trust anchor.
    pub list_signer: Signer,
    /// The keys passes are verified with (online checks), and the same list signed, as served.
    pub trust: tongxing_pass::TrustList,
    pub trust_list: Vec<u8>,
    /// Makes the pseudonymous person reference a pass carries (never the document number).
    pub person_key: hmac::Key,
}

impl PassKeys {
    /// The 16-byte person reference of `person_id`: an HMAC, the same on every server holding
    /// the same key, meaningless without it.
    pub fn person_ref(&self, person_id: i64) -> Vec<u8> {
        hmac::sign(&self.person_key, person_id.to_string().as_bytes()).as_ref()[..16].to_vec()
    }
}

/// A pass as issued: the QR text and when it stops being accepted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedPass {
    /// `TX1:…`: put it in a QR code (error correction Q), or use the SVG/PNG endpoints.
    pub text: String,
    #[serde(serialize_with = "time::serialize")]
    pub issued_at: DateTime<Utc>,
    /// A short lifetime (15 minutes by default): a screenshot soon expires; fetch a new one.
    #[serde(serialize_with = "time::serialize")]
    pub expires_at: DateTime<Utc>,
}

impl App {
    /// With the keys to issue passes and sign the lists.
    pub fn with_pass_keys(mut self, keys: Arc<PassKeys>) -> App {
        self.keys = Some(keys);
        self
    }

    pub(crate) fn pass_keys(&self) -> AppResult<&Arc<PassKeys>> {
        self.keys.as_ref().ok_or_else(|| {
            AppError::Unavailable("this server issues no signed passes: start it with --keys DIR".into())
        })
    }

    /// Whether this server issues signed passes.
    pub fn issues_passes(&self) -> bool {
        self.keys.is_some()
    }

    /// Issues a signed pass for a person at `now`, carrying what a checkpoint decides on:
    /// the colour in force, the latest tests and the commuter badge.
    pub async fn issue_pass(&self, person_id: i64, now: DateTime<Utc>) -> AppResult<IssuedPass> {
        let p = self.pass_facts(person_id, now).await?;
        self.sign_pass(&p, now).await
    }

    /// What a pass is made from (one read).
    pub(crate) async fn pass_facts(&self, person_id: i64, now: DateTime<Utc>) -> AppResult<tongxing_store::PassFacts> {
        let policy = self.policy_at(now)?;
        self.store
            .load_pass_facts(person_id, now - policy.lookback(), now)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no person {person_id}")))
    }

    /// Signs a pass from facts already loaded (the citizen's page loads them once for both
    /// the view and the pass).
    pub(crate) async fn sign_pass(&self, p: &tongxing_store::PassFacts, now: DateTime<Utc>) -> AppResult<IssuedPass> {
        let facts = &p.facts;
        let person_id = p.person_id;
        let keys = self.pass_keys()?;
        let policy = self.policy_at(now)?;
        let mut samples: Vec<_> = facts.samples.iter().filter(|s| s.sampled_at <= now).collect();
        // Newest first; the latest conclusive results are what a checkpoint needs, and a
        // pending service-area sample (for a commitment) after them.
        samples.sort_by_key(|s| std::cmp::Reverse(s.sampled_at));
        let tests = samples
            .iter()
            .filter(|s| s.result != TestResult::Invalid)
            .take(tongxing_pass::pass::MAX_TESTS)
            .map(|s| PassTest { sampled_at: s.sampled_at.timestamp(), site_kind: s.site_kind, result: s.result })
            .collect();
        // The site of the newest pending service-area test the pass carries (the rules accept
        // one from a designated test point only), and whether its letter is signed.
        let pending_site = samples
            .iter()
            .filter(|s| s.result != TestResult::Invalid)
            .take(tongxing_pass::pass::MAX_TESTS)
            .find(|s| s.result == TestResult::Pending && s.site_kind == tongxing_domain::SiteKind::ServiceArea)
            .map(|s| s.site.clone())
            .filter(|site| !site.is_empty() && site.len() <= tongxing_pass::pass::MAX_TEXT);
        let commuter = match (&facts.commuter, &p.commuter_kind) {
            (Some(c), Some(kind)) => Some(CommuterBadge {
                kind: CommuterKind::parse(kind).map_err(AppError::Internal)?,
                status: c.status,
                valid_until: c.valid_until.map(|t| t.timestamp()),
                first_check_done: c.first_checked_at.is_some_and(|t| t <= now),
                next_test_due: None,
            }),
            _ => None,
        };
        let person_ref = keys.person_ref(person_id);
        // The reference is stored once per person (a check on the pass finds them by it).
        if p.pass_ref.is_none() {
            self.store.set_pass_ref(person_id, &hex(&person_ref)).await?;
        }
        let issued_at = now.timestamp();
        let expires_at = issued_at + policy.pass_lifetime().num_seconds();
        let pass = Pass {
            issuer: ISSUER.into(),
            issued_at,
            expires_at,
            person_ref,
            colour: facts.colour_at(now),
            colour_reason: facts.colour_reason_at(now).map(str::to_string),
            tests,
            commuter,
            pending_site,
            commitment_letter: facts.commitment_letter,
        };
        let text = tongxing_pass::issue(&keys.signer, &pass).map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(IssuedPass {
            text,
            issued_at: DateTime::from_timestamp(issued_at, 0).unwrap_or(now),
            expires_at: DateTime::from_timestamp(expires_at, 0).unwrap_or(now),
        })
    }

    /// The signed trust list (COSE_Sign1 over CBOR; docs/PASS-FORMAT.md).
    pub fn trust_list(&self) -> AppResult<Vec<u8>> {
        Ok(self.pass_keys()?.trust_list.clone())
    }

    /// The signed revocation list: whole (`since` 0 or absent), or the changes after `since`.
    pub async fn revocation_list(&self, since: u64, now: DateTime<Utc>) -> AppResult<Vec<u8>> {
        let keys = self.pass_keys()?;
        let from = i64::try_from(since).map_err(|_| AppError::invalid("since", "is out of range"))?;
        let (version, rows) = self.store.revocations_since(from).await?;
        if from > version {
            return Err(AppError::invalid(
                "since",
                format!("version {since} is ahead of the list's ({version}); sync from 0"),
            ));
        }
        let entries = rows
            .iter()
            .map(|(hash, cutoff)| Ok(Entry { hash: parse_hash(hash)?, cutoff: cutoff.timestamp() }))
            .collect::<AppResult<Vec<_>>>()?;
        let version = version as u64;
        Ok(if since == 0 {
            RevocationSet::new(version, now.timestamp(), entries).sign(&keys.list_signer)
        } else {
            let delta = RevocationDelta {
                from_version: since,
                to_version: version,
                issued_at: now.timestamp(),
                upserts: entries,
                removals: Vec::new(),
            };
            delta.sign(&keys.list_signer)
        })
    }

    /// Puts the person's passes issued before `now` on the revocation list. Called when their
    /// colour turns yellow or red, their certification is suspended or revoked, or their passes
    /// are withdrawn. A deployment that issues passes gives every server the keys (the person
    /// reference needs them); without keys there are no passes to revoke, and nothing is done.
    pub async fn revoke_passes_of(&self, person_id: i64, reason: &str, now: DateTime<Utc>) -> AppResult<()> {
        let Some(keys) = &self.keys else {
            tracing::debug!(person_id, reason, "no pass keys on this server: no passes to revoke");
            return Ok(());
        };
        let hash = RevocationHash::of_person(&keys.person_ref(person_id));
        // Passes are stamped in whole seconds: every pass of the second of the change, and
        // before, is revoked (one issued in that second may show the old state).
        let cutoff = DateTime::from_timestamp(now.timestamp() + 1, 0).unwrap_or(now);
        self.store.revoke(&hash.to_hex(), cutoff, reason, now).await?;
        Ok(())
    }

    /// Sets a person's health-code colour (history kept) and, for yellow or red, revokes the
    /// passes that still show the old colour.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_code(
        &self,
        person_id: i64,
        colour: tongxing_domain::CodeColour,
        reason: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        // Yellow or red: the store queues the revocation in the same transaction.
        self.store.set_code(person_id, colour, reason, expires_at, by, now).await?;
        self.drain_revocation_queue().await?;
        Ok(())
    }

    /// Turns queued revocations (written with each yellow or red code, by this server, another
    /// one or an import) into entries on the revocation list, oldest first, and removes them;
    /// returns how many. A server without pass keys leaves them to one that has the keys.
    /// Revoking twice is harmless (the entry's cut-off only grows), so a crash between the
    /// entry and the removal repeats nothing wrong.
    pub async fn drain_revocation_queue(&self) -> AppResult<usize> {
        if self.keys.is_none() {
            return Ok(0);
        }
        let mut done = 0;
        loop {
            let queued = self.store.revocation_queue(500).await?;
            for q in &queued {
                self.revoke_passes_of(q.person_id, &q.reason, q.at).await?;
            }
            let ids: Vec<i64> = queued.iter().map(|q| q.id).collect();
            self.store.revocation_queue_done(&ids).await?;
            done += queued.len();
            if queued.len() < 500 {
                return Ok(done);
            }
        }
    }

    /// A registry officer's decision on a certification; a suspension or revocation revokes the
    /// passes that still show the badge.
    pub async fn change_commuter(
        &self,
        person_id: i64,
        to: CommuterStatus,
        reason: Option<&str>,
        valid_until: Option<DateTime<Utc>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        self.store.change_commuter(person_id, to, reason, valid_until, by, now).await?;
        if matches!(to, CommuterStatus::Suspended | CommuterStatus::Revoked | CommuterStatus::Expired) {
            self.revoke_passes_of(person_id, &format!("commuter {to}"), now).await?;
        }
        Ok(())
    }
}

/// Lower-case hex, as pass references and revocation hashes are stored.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(hex: &str) -> AppResult<RevocationHash> {
    let mut h = [0u8; tongxing_pass::revocation::HASH_LEN];
    if hex.len() != 2 * h.len() {
        return Err(AppError::Internal(format!("a stored revocation hash has {} hex digits", hex.len())));
    }
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| AppError::Internal("a stored revocation hash is not hex".into()))?;
    }
    Ok(RevocationHash(h))
}
