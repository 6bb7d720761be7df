//! The trust list: which keys sign passes, and when. The server publishes it as a COSE_Sign1
//! signed by a separate list-signing key; a checkpoint is given that key's public half
//! explicitly (its trust anchor) and accepts no list that it does not verify.
//!
//! A key has a signing window `[valid_from, signs_until)` and verifies until `verifies_until`.
//! Retiring a key ends its signing window now and keeps it verifying for the longest pass
//! lifetime, so the last pass it signed stays good until it expires.

use std::collections::HashMap;

use crate::cbor::{self, Reader, Writer};
use crate::cose;
use crate::keys::{KeyId, PublicKey, Signer};
use crate::refusal::{Refusal, Stage, refuse};

/// The payload's type marker: a list-signing key signs trust lists and revocation lists, and
/// the marker keeps one from being taken for the other.
pub const TRUST_LIST_TYPE: &str = "tx-trust-list";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub key: PublicKey,
    /// First second at which the key may sign.
    pub valid_from: i64,
    /// End of the signing window (exclusive): set when the key is retired.
    pub signs_until: Option<i64>,
    /// After this second nothing the key signed verifies.
    pub verifies_until: Option<i64>,
}

/// Keys by key id; lookup is a hash-map probe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustList {
    version: u64,
    issued_at: i64,
    keys: HashMap<KeyId, TrustedKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TrustError(pub String);

impl TrustList {
    pub fn new(version: u64, issued_at: i64) -> Self {
        TrustList { version, issued_at, keys: HashMap::new() }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the list was made: a checkpoint shows its age (stale data is worth a warning).
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }

    pub fn get(&self, kid: &KeyId) -> Option<&TrustedKey> {
        self.keys.get(kid)
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a key that signs from `valid_from`. Two keys with one id are refused.
    pub fn add(&mut self, key: PublicKey, valid_from: i64) -> Result<(), TrustError> {
        self.insert(TrustedKey { key, valid_from, signs_until: None, verifies_until: None })
    }

    fn insert(&mut self, k: TrustedKey) -> Result<(), TrustError> {
        if self.keys.contains_key(&k.key.kid()) {
            return Err(TrustError(format!("key {} is listed twice", k.key.kid())));
        }
        if k.key.algorithm() == crate::keys::Algorithm::Ps256 {
            return Err(TrustError("passes are signed with ES256 or Ed25519 keys".into()));
        }
        self.keys.insert(k.key.kid(), k);
        Ok(())
    }

    /// Retires a key at `at`: it signs nothing from then on and verifies until
    /// `at + max_pass_lifetime`, when the last pass it signed has expired.
    pub fn retire(&mut self, kid: &KeyId, at: i64, max_pass_lifetime: i64) -> Result<(), TrustError> {
        let k = self.keys.get_mut(kid).ok_or_else(|| TrustError(format!("key {kid} is not listed")))?;
        k.signs_until = Some(at);
        k.verifies_until = Some(at.saturating_add(max_pass_lifetime));
        Ok(())
    }

    /// Drops keys that verify nothing any more at `now`.
    pub fn prune(&mut self, now: i64) {
        self.keys.retain(|_, k| k.verifies_until.is_none_or(|u| now < u));
    }

    /// The payload: `{1: "tx-trust-list", 2: version, 3: issued_at, 4: [key, …]}`, each key
    /// `{1: kid, 2: spki, 3: valid_from, ?4: signs_until, ?5: verifies_until}`, keys sorted by id.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut keys: Vec<&TrustedKey> = self.keys.values().collect();
        keys.sort_by_key(|k| k.key.kid());
        let mut buf = Vec::new();
        let mut w = Writer(&mut buf);
        w.map(4);
        w.uint(1);
        w.text(TRUST_LIST_TYPE);
        w.uint(2);
        w.uint(self.version);
        w.uint(3);
        w.int(self.issued_at);
        w.uint(4);
        w.array(keys.len());
        for k in keys {
            w.map(3 + k.signs_until.is_some() as usize + k.verifies_until.is_some() as usize);
            w.uint(1);
            w.bytes(&k.key.kid().0);
            w.uint(2);
            w.bytes(k.key.spki_der());
            w.uint(3);
            w.int(k.valid_from);
            if let Some(s) = k.signs_until {
                w.uint(4);
                w.int(s);
            }
            if let Some(v) = k.verifies_until {
                w.uint(5);
                w.int(v);
            }
        }
        buf
    }

    /// The signed list (a COSE_Sign1, `application/cose`).
    pub fn sign(&self, list_signer: &Signer) -> Vec<u8> {
        cose::sign(list_signer, &self.to_cbor())
    }

    /// Verifies a signed list with the trust anchor and reads it.
    pub fn verify(signed: &[u8], anchor: &PublicKey) -> Result<TrustList, Refusal> {
        let payload = verify_list(signed, anchor)?;
        Self::from_cbor(payload)
    }

    fn from_cbor(payload: &[u8]) -> Result<TrustList, Refusal> {
        let bad = |e: cbor::CborError| Refusal::new(Stage::BadClaims, format!("trust list: {}", e.0));
        cbor::check(payload).map_err(bad)?;
        let mut r = Reader::new(payload);
        let n = r.map().map_err(bad)?;
        let mut list = TrustList::default();
        let mut seen = 0u64;
        for _ in 0..n {
            let k = r.int_key().map_err(bad)?;
            match k {
                Some(k @ 1..=4) if !cbor::first_time(&mut seen, k as u32) => {
                    return refuse(Stage::BadClaims, format!("trust list: key {k} appears twice"));
                }
                Some(1) => {
                    let t = r.text().map_err(bad)?;
                    if t != TRUST_LIST_TYPE {
                        return refuse(Stage::BadClaims, format!("a {t:?} document is not a trust list"));
                    }
                }
                Some(2) => list.version = r.uint().map_err(bad)?,
                Some(3) => list.issued_at = r.int().map_err(bad)?,
                Some(4) => {
                    for _ in 0..r.array().map_err(bad)? {
                        let key =
                            read_key(&mut r).map_err(|e| Refusal::new(Stage::BadClaims, format!("trust list: {e}")))?;
                        list.insert(key).map_err(|e| Refusal::new(Stage::BadClaims, format!("trust list: {e}")))?;
                    }
                }
                _ => r.skip().map_err(bad)?,
            }
        }
        if seen & 0b11110 != 0b11110 {
            return refuse(
                Stage::BadClaims,
                "trust list: type (1), version (2), issued_at (3) and keys (4) are required",
            );
        }
        Ok(list)
    }
}

fn read_key(r: &mut Reader<'_>) -> Result<TrustedKey, String> {
    let n = r.map().map_err(|e| e.0)?;
    let (mut kid, mut spki, mut from, mut signs, mut verifies, mut seen) = (None, None, None, None, None, 0u64);
    for _ in 0..n {
        let k = r.int_key().map_err(|e| e.0)?;
        if let Some(k @ 1..=5) = k
            && !cbor::first_time(&mut seen, k as u32)
        {
            return Err(format!("a key entry repeats key {k}"));
        }
        match k {
            Some(1) => kid = Some(r.bytes().map_err(|e| e.0)?),
            Some(2) => spki = Some(r.bytes().map_err(|e| e.0)?),
            Some(3) => from = Some(r.int().map_err(|e| e.0)?),
            Some(4) => signs = Some(r.int().map_err(|e| e.0)?),
            Some(5) => verifies = Some(r.int().map_err(|e| e.0)?),
            _ => r.skip().map_err(|e| e.0)?,
        }
    }
    let (Some(kid), Some(spki), Some(valid_from)) = (kid, spki, from) else {
        return Err("a key entry needs kid (1), spki (2) and valid_from (3)".into());
    };
    let key = PublicKey::from_spki_der(spki).map_err(|e| e.to_string())?;
    if kid != key.kid().0 {
        return Err(format!("the entry's key id does not match its key ({})", key.kid()));
    }
    Ok(TrustedKey { key, valid_from, signs_until: signs, verifies_until: verifies })
}

/// Verifies a list signed by the list-signing key and returns its payload. The key id in the
/// list's protected header must be the anchor's.
pub(crate) fn verify_list<'a>(signed: &'a [u8], anchor: &PublicKey) -> Result<&'a [u8], Refusal> {
    let s = cose::parse(signed)?;
    if s.protected_kid != Some(anchor.kid()) {
        return refuse(Stage::UnknownKey, format!("the list is not signed by the trust anchor {}", anchor.kid()));
    }
    if s.alg != anchor.algorithm() {
        return refuse(Stage::BadSignature, "the list's algorithm is not the trust anchor's");
    }
    let mut tbs = Vec::with_capacity(s.payload.len() + 32);
    cose::sig_structure(s.protected, s.payload, &mut tbs);
    if !anchor.verify(&tbs, s.signature) {
        return refuse(Stage::BadSignature, "the list's signature does not verify with the trust anchor");
    }
    Ok(s.payload)
}
