//! Revocation: 16-byte truncated SHA-256 hashes, each with a cut-off time. An entry revokes
//! every pass it matches that was issued before its cut-off:
//!
//! - a person entry, `SHA-256("tx-person\0" ‖ person_ref)[..16]`, put there when the person's
//!   code turns yellow or red or their commuter certification is revoked or suspended, with the
//!   cut-off at that moment: the green passes already out stop verifying, and the passes issued
//!   after the change (which carry the new colour) are not caught;
//! - a pass entry, `SHA-256("tx-pass\0" ‖ CWT payload)[..16]`, for one withdrawn pass.
//!
//! Sixteen bytes, like the EU DCC's revocation lists: with 10 million entries the chance that any
//! pass ever matches an entry by accident is ~10⁷ × 2⁻¹²⁸ per look-up, and nobody can grind a
//! colliding person reference (8 bytes would halve the memory but leave a 2⁻⁶⁴ margin).
//! The hash is over the payload, which the signature fixes, not over the signature (ECDSA
//! signatures are malleable: (r, s) and (r, n−s) both verify).
//!
//! [`RevocationSet`] is the checkpoint's copy: entries sorted by hash with a directory over the
//! leading bits, so a look-up reads one directory slot and a bucket of a few entries: O(1), 24
//! bytes an entry plus ~1.7 bytes of directory. [`RevocationLog`] is the server's model of the
//! list's history, which makes full lists and deltas since a version.

use std::collections::HashMap;

use crate::cbor::{self, Reader, Writer};
use crate::cose;
use crate::keys::{PublicKey, Signer};
use crate::refusal::{Refusal, Stage, refuse};
use crate::trust::verify_list;

pub const HASH_LEN: usize = 16;
/// Bytes of an entry on the wire: the hash, then the cut-off as a big-endian i64.
pub const ENTRY_WIRE_LEN: usize = HASH_LEN + 8;
pub const FULL_LIST_TYPE: &str = "tx-revocation-list";
pub const DELTA_TYPE: &str = "tx-revocation-delta";

/// A truncated SHA-256 naming a person or a pass on the revocation list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevocationHash(pub [u8; HASH_LEN]);

impl RevocationHash {
    fn of(domain: &[u8], data: &[u8]) -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(domain);
        ctx.update(data);
        let d = ctx.finish();
        let mut h = [0; HASH_LEN];
        h.copy_from_slice(&d.as_ref()[..HASH_LEN]);
        RevocationHash(h)
    }

    /// The entry that revokes a person's passes.
    pub fn of_person(person_ref: &[u8]) -> Self {
        Self::of(b"tx-person\0", person_ref)
    }

    /// The entry that revokes one pass (by its CWT payload, the signed bytes).
    pub fn of_pass(cwt_payload: &[u8]) -> Self {
        Self::of(b"tx-pass\0", cwt_payload)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for RevocationHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RevocationHash({})", self.to_hex())
    }
}

/// One revocation: passes matching `hash` issued before `cutoff` (UTC seconds) are revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub hash: RevocationHash,
    pub cutoff: i64,
}

/// The checkpoint's revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationSet {
    version: u64,
    issued_at: i64,
    /// Sorted by hash, one entry per hash.
    entries: Vec<Entry>,
    /// `dir[b]..dir[b + 1]` are the entries whose leading `bits` bits are `b`.
    dir: Vec<u32>,
    bits: u32,
}

/// A change set from one version of the list to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationDelta {
    pub from_version: u64,
    pub to_version: u64,
    pub issued_at: i64,
    /// New entries and entries whose cut-off changed.
    pub upserts: Vec<Entry>,
    /// Hashes no longer on the list (a person back to green, a certification reinstated).
    pub removals: Vec<RevocationHash>,
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl RevocationSet {
    pub fn empty() -> Self {
        RevocationSet { version: 0, issued_at: 0, entries: Vec::new(), dir: vec![0, 0], bits: 0 }
    }

    /// Builds the set; of two entries for one hash the later cut-off wins.
    pub fn new(version: u64, issued_at: i64, mut entries: Vec<Entry>) -> Self {
        entries.sort_unstable_by(|a, b| a.hash.cmp(&b.hash).then(b.cutoff.cmp(&a.cutoff)));
        entries.dedup_by_key(|e| e.hash);
        let mut set = RevocationSet { version, issued_at, entries, dir: Vec::new(), bits: 0 };
        set.index();
        set
    }

    fn index(&mut self) {
        assert!(self.entries.len() < u32::MAX as usize, "a revocation list of 4 billion entries");
        // About four entries a bucket; at most 2^24 buckets.
        let target = (self.entries.len() / 4).max(1);
        self.bits = (usize::BITS - target.leading_zeros()).min(24);
        let buckets = 1usize << self.bits;
        let mut dir = Vec::with_capacity(buckets + 1);
        let mut i = 0usize;
        for b in 0..buckets {
            dir.push(i as u32);
            while i < self.entries.len() && self.bucket(&self.entries[i].hash) == b {
                i += 1;
            }
        }
        dir.push(i as u32);
        self.dir = dir;
    }

    fn bucket(&self, h: &RevocationHash) -> usize {
        if self.bits == 0 {
            0
        } else {
            (u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]) >> (32 - self.bits)) as usize
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The cut-off of `hash`'s entry, if it has one.
    pub fn lookup(&self, hash: &RevocationHash) -> Option<i64> {
        let b = self.bucket(hash);
        let bucket = &self.entries[self.dir[b] as usize..self.dir[b + 1] as usize];
        bucket.iter().find(|e| e.hash == *hash).map(|e| e.cutoff)
    }

    /// Why a pass of `person_ref` with id `pass_id`, issued at `issued_at`, is revoked, if it is.
    /// The two look-ups are interleaved: their directory reads, then their bucket reads, are
    /// independent loads that the processor overlaps (with 10 M entries each is a cache miss).
    pub fn check(&self, person_ref: &[u8], pass_id: &RevocationHash, issued_at: i64) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let person = RevocationHash::of_person(person_ref);
        let (b1, b2) = (self.bucket(pass_id), self.bucket(&person));
        let (s1, e1, s2, e2) = (self.dir[b1], self.dir[b1 + 1], self.dir[b2], self.dir[b2 + 1]);
        let find = |h: &RevocationHash, s: u32, e: u32| {
            self.entries[s as usize..e as usize].iter().find(|x| x.hash == *h).map(|x| x.cutoff)
        };
        let (by_pass, by_person) = (find(pass_id, s1, e1), find(&person, s2, e2));
        if by_pass.is_some_and(|c| issued_at < c) {
            return Some(format!("this pass was withdrawn (revocation list version {})", self.version));
        }
        match by_person {
            Some(c) if issued_at < c => Some(format!(
                "the person's status changed after this pass was issued (revocation list version {}): ask for a new pass",
                self.version
            )),
            _ => None,
        }
    }

    /// Heap bytes held (entries and directory).
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Entry>() + self.dir.capacity() * size_of::<u32>()
    }

    /// The set after `delta`, which must start at this set's version.
    pub fn apply(&self, delta: &RevocationDelta) -> Result<RevocationSet, Refusal> {
        if delta.from_version != self.version {
            return refuse(
                Stage::BadClaims,
                format!("the delta starts at version {}, this list is at {}", delta.from_version, self.version),
            );
        }
        let mut changes: Vec<(RevocationHash, Option<i64>)> = delta
            .removals
            .iter()
            .map(|h| (*h, None))
            .chain(delta.upserts.iter().map(|e| (e.hash, Some(e.cutoff))))
            .collect();
        // The last change of a hash wins (upserts come after removals).
        changes.sort_by_key(|c| c.0);
        let mut merged = Vec::with_capacity(self.entries.len() + delta.upserts.len());
        let mut old = self.entries.iter().peekable();
        let mut i = 0;
        while i < changes.len() {
            let mut j = i;
            while j + 1 < changes.len() && changes[j + 1].0 == changes[i].0 {
                j += 1;
            }
            let (hash, cutoff) = changes[j];
            while old.peek().is_some_and(|e| e.hash < hash) {
                merged.push(*old.next().unwrap());
            }
            if old.peek().is_some_and(|e| e.hash == hash) {
                old.next();
            }
            if let Some(cutoff) = cutoff {
                merged.push(Entry { hash, cutoff });
            }
            i = j + 1;
        }
        merged.extend(old);
        let mut set = RevocationSet {
            version: delta.to_version,
            issued_at: delta.issued_at,
            entries: merged,
            dir: Vec::new(),
            bits: 0,
        };
        set.index();
        Ok(set)
    }

    /// Payload `{1: "tx-revocation-list", 2: version, 3: issued_at, 4: entries}`, entries one
    /// byte string of 24-byte records sorted by hash.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.entries.len() * ENTRY_WIRE_LEN + 64);
        let mut w = Writer(&mut buf);
        w.map(4);
        w.uint(1);
        w.text(FULL_LIST_TYPE);
        w.uint(2);
        w.uint(self.version);
        w.uint(3);
        w.int(self.issued_at);
        w.uint(4);
        w.head(cbor::BYTES, (self.entries.len() * ENTRY_WIRE_LEN) as u64);
        for e in &self.entries {
            buf.extend_from_slice(&e.hash.0);
            buf.extend_from_slice(&e.cutoff.to_be_bytes());
        }
        buf
    }

    pub fn sign(&self, list_signer: &Signer) -> Vec<u8> {
        cose::sign(list_signer, &self.to_cbor())
    }

    /// Verifies a signed full list with the trust anchor and loads it.
    pub fn verify(signed: &[u8], anchor: &PublicKey) -> Result<RevocationSet, Refusal> {
        let payload = verify_list(signed, anchor)?;
        let f = read_list(payload, FULL_LIST_TYPE)?;
        let entries = parse_entries(f.entries)?;
        if entries.windows(2).any(|w| w[0].hash >= w[1].hash) {
            return refuse(Stage::BadClaims, "revocation list: entries are not sorted by hash without repeats");
        }
        let mut set = RevocationSet { version: f.version, issued_at: f.issued_at, entries, dir: Vec::new(), bits: 0 };
        set.index();
        Ok(set)
    }
}

impl RevocationDelta {
    /// Payload `{1: "tx-revocation-delta", 2: to_version, 3: issued_at, 4: upserts,
    /// 5: from_version, 6: removals}`; removals one byte string of 16-byte hashes.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.upserts.len() * ENTRY_WIRE_LEN + self.removals.len() * HASH_LEN + 64);
        let mut w = Writer(&mut buf);
        w.map(6);
        w.uint(1);
        w.text(DELTA_TYPE);
        w.uint(2);
        w.uint(self.to_version);
        w.uint(3);
        w.int(self.issued_at);
        w.uint(4);
        w.head(cbor::BYTES, (self.upserts.len() * ENTRY_WIRE_LEN) as u64);
        for e in &self.upserts {
            buf.extend_from_slice(&e.hash.0);
            buf.extend_from_slice(&e.cutoff.to_be_bytes());
        }
        let mut w = Writer(&mut buf);
        w.uint(5);
        w.uint(self.from_version);
        w.uint(6);
        w.head(cbor::BYTES, (self.removals.len() * HASH_LEN) as u64);
        for h in &self.removals {
            buf.extend_from_slice(&h.0);
        }
        buf
    }

    pub fn sign(&self, list_signer: &Signer) -> Vec<u8> {
        cose::sign(list_signer, &self.to_cbor())
    }

    pub fn verify(signed: &[u8], anchor: &PublicKey) -> Result<RevocationDelta, Refusal> {
        let payload = verify_list(signed, anchor)?;
        let f = read_list(payload, DELTA_TYPE)?;
        let (Some(from_version), Some(removals)) = (f.from_version, f.removals) else {
            return refuse(Stage::BadClaims, "revocation delta: from_version (5) and removals (6) are required");
        };
        if !removals.len().is_multiple_of(HASH_LEN) {
            return refuse(Stage::BadClaims, "revocation delta: removals are not whole 16-byte hashes");
        }
        let removals =
            removals.chunks_exact(HASH_LEN).map(|c| RevocationHash(c.try_into().expect("16 bytes"))).collect();
        Ok(RevocationDelta {
            from_version,
            to_version: f.version,
            issued_at: f.issued_at,
            upserts: parse_entries(f.entries)?,
            removals,
        })
    }
}

struct ListFields<'a> {
    version: u64,
    issued_at: i64,
    entries: &'a [u8],
    from_version: Option<u64>,
    removals: Option<&'a [u8]>,
}

fn read_list<'a>(payload: &'a [u8], kind: &str) -> Result<ListFields<'a>, Refusal> {
    let bad = |e: cbor::CborError| Refusal::new(Stage::BadClaims, format!("revocation list: {}", e.0));
    cbor::check(payload).map_err(bad)?;
    let mut r = Reader::new(payload);
    let n = r.map().map_err(bad)?;
    let mut f = ListFields { version: 0, issued_at: 0, entries: &[], from_version: None, removals: None };
    let mut seen = 0u64;
    for _ in 0..n {
        let k = r.int_key().map_err(bad)?;
        if let Some(k @ 1..=6) = k
            && !cbor::first_time(&mut seen, k as u32)
        {
            return refuse(Stage::BadClaims, format!("revocation list: key {k} appears twice"));
        }
        match k {
            Some(1) => {
                let t = r.text().map_err(bad)?;
                if t != kind {
                    return refuse(Stage::BadClaims, format!("a {t:?} document where a {kind:?} was expected"));
                }
            }
            Some(2) => f.version = r.uint().map_err(bad)?,
            Some(3) => f.issued_at = r.int().map_err(bad)?,
            Some(4) => f.entries = r.bytes().map_err(bad)?,
            Some(5) => f.from_version = Some(r.uint().map_err(bad)?),
            Some(6) => f.removals = Some(r.bytes().map_err(bad)?),
            _ => r.skip().map_err(bad)?,
        }
    }
    if seen & 0b11110 != 0b11110 {
        return refuse(
            Stage::BadClaims,
            "revocation list: type (1), version (2), issued_at (3), entries (4) are required",
        );
    }
    Ok(f)
}

fn parse_entries(b: &[u8]) -> Result<Vec<Entry>, Refusal> {
    if !b.len().is_multiple_of(ENTRY_WIRE_LEN) {
        return refuse(Stage::BadClaims, "revocation list: entries are not whole 24-byte records");
    }
    Ok(b.chunks_exact(ENTRY_WIRE_LEN)
        .map(|c| Entry {
            hash: RevocationHash(c[..HASH_LEN].try_into().expect("16 bytes")),
            cutoff: i64::from_be_bytes(c[HASH_LEN..].try_into().expect("8 bytes")),
        })
        .collect())
}

/// The server's model of the list: every hash's latest state and the version that set it.
/// Each change is a new version; removed hashes are remembered (tombstones) so that a delta
/// can carry the removal.
#[derive(Debug, Clone, Default)]
pub struct RevocationLog {
    version: u64,
    /// hash → (cut-off, or None once removed; version of the change)
    state: HashMap<RevocationHash, (Option<i64>, u64)>,
    /// Deltas can start at this version or later; older clients need the full list.
    horizon: u64,
}

impl RevocationLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Revokes `hash`'s passes issued before `cutoff`.
    pub fn revoke(&mut self, hash: RevocationHash, cutoff: i64) -> u64 {
        self.version += 1;
        self.state.insert(hash, (Some(cutoff), self.version));
        self.version
    }

    /// Takes `hash` off the list (if it was on it).
    pub fn reinstate(&mut self, hash: RevocationHash) -> u64 {
        if let Some(s) = self.state.get_mut(&hash)
            && s.0.is_some()
        {
            self.version += 1;
            *s = (None, self.version);
        }
        self.version
    }

    /// The whole list now.
    pub fn full(&self, issued_at: i64) -> RevocationSet {
        let entries = self.state.iter().filter_map(|(h, (c, _))| c.map(|cutoff| Entry { hash: *h, cutoff })).collect();
        RevocationSet::new(self.version, issued_at, entries)
    }

    /// The changes after `version`, or `None` if that version is older than the remembered
    /// removals (the client then fetches the full list).
    pub fn delta_since(&self, version: u64, issued_at: i64) -> Option<RevocationDelta> {
        if version < self.horizon || version > self.version {
            return None;
        }
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for (h, (c, v)) in &self.state {
            if *v > version {
                match c {
                    Some(cutoff) => upserts.push(Entry { hash: *h, cutoff: *cutoff }),
                    None => removals.push(*h),
                }
            }
        }
        upserts.sort();
        removals.sort();
        Some(RevocationDelta { from_version: version, to_version: self.version, issued_at, upserts, removals })
    }

    /// Forgets removals made at or before `version`; deltas from older versions are no longer
    /// offered.
    pub fn forget_removals_through(&mut self, version: u64) {
        self.state.retain(|_, (c, v)| c.is_some() || *v > version);
        self.horizon = self.horizon.max(version);
    }
}
