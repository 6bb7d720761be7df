//! Why a code was refused, and at which stage of the verification chain. The stage names are
//! stable (snake_case, documented in docs/PASS-FORMAT.md): a checkpoint logs and shows them.

use std::fmt;

/// The stage of the verification chain that refused, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Over a size limit (text over 4 KiB, payload inflating past 64 KiB, image over 20
    /// megapixels), refused before the work.
    TooLarge,
    /// Not `TX1:` (or `HC1:` on the EU path), or not text at all.
    BadPrefix,
    /// Not Base45 (RFC 9285).
    BadBase45,
    /// Not a zlib stream, or a damaged one.
    BadCompression,
    /// Not a COSE_Sign1 of the accepted form (including CBOR nested deeper than 16).
    BadCose,
    /// The key id names no key of the trust list.
    UnknownKey,
    /// The signature does not verify with the key the key id names.
    BadSignature,
    /// The signature verifies but the signed claims are not of the format.
    BadClaims,
    /// The key was not entitled to sign at the pass's issue time, or no longer verifies now.
    KeyNotValid,
    /// The pass was issued after this device's clock by more than the tolerance: the device's
    /// clock is behind, and the checkpoint does not decide until it is set.
    ClockBehind,
    /// An EU certificate issued in the future (beyond the tolerance), or its signing
    /// certificate not yet valid.
    NotYetValid,
    /// The pass's expiry is at or before now.
    Expired,
    /// The person or the pass is on the revocation list.
    Revoked,
    /// An image that is neither PNG nor JPEG, is damaged, or holds no readable QR code.
    BadImage,
}

impl Stage {
    pub const ALL: &'static [Stage] = &[
        Stage::TooLarge,
        Stage::BadPrefix,
        Stage::BadBase45,
        Stage::BadCompression,
        Stage::BadCose,
        Stage::UnknownKey,
        Stage::BadSignature,
        Stage::BadClaims,
        Stage::KeyNotValid,
        Stage::ClockBehind,
        Stage::NotYetValid,
        Stage::Expired,
        Stage::Revoked,
        Stage::BadImage,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::TooLarge => "too_large",
            Stage::BadPrefix => "bad_prefix",
            Stage::BadBase45 => "bad_base45",
            Stage::BadCompression => "bad_compression",
            Stage::BadCose => "bad_cose",
            Stage::UnknownKey => "unknown_key",
            Stage::BadSignature => "bad_signature",
            Stage::BadClaims => "bad_claims",
            Stage::KeyNotValid => "key_not_valid",
            Stage::ClockBehind => "clock_behind",
            Stage::NotYetValid => "not_yet_valid",
            Stage::Expired => "expired",
            Stage::Revoked => "revoked",
            Stage::BadImage => "bad_image",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused code: the stage that refused and a sentence for the officer's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage}: {detail}")]
pub struct Refusal {
    pub stage: Stage,
    pub detail: String,
}

impl Refusal {
    pub fn new(stage: Stage, detail: impl Into<String>) -> Self {
        Refusal { stage, detail: detail.into() }
    }
}

pub(crate) fn refuse<T>(stage: Stage, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(stage, detail))
}
