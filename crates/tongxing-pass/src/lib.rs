//! Signed health codes ("passes") for Tongxing: the QR text is
//! `TX1:` + Base45(zlib(COSE_Sign1(CWT))), the chain of the EU DCC's `HC1:` with our own prefix
//! and claims. Pure library: no database, no network, no clock (every time is a parameter in
//! UTC seconds); the only file I/O is in [`keyfile`]. docs/PASS-FORMAT.md is the format's spec.

pub mod base45;
pub mod cbor;
pub mod codec;
pub mod cose;
mod der;
pub mod hcert;
pub mod keyfile;
pub mod keys;
pub mod pass;
pub mod qr;
pub mod refusal;
pub mod revocation;
pub mod trust;

pub use codec::{
    DEFAULT_CLOCK_TOLERANCE, DEFAULT_PASS_LIFETIME, Decoder, Issuer, MAX_INFLATED_BYTES, MAX_TEXT_BYTES, PREFIX,
    VerifiedPass, decode, issue,
};
pub use keys::{Algorithm, KeyError, KeyId, PrivateKeyDer, PublicKey, Signer};
pub use pass::{CommuterBadge, Pass, PassError, PassTest};
pub use qr::{decode_image, qr_png, qr_svg};
pub use refusal::{Refusal, Stage};
pub use revocation::{Entry, RevocationDelta, RevocationHash, RevocationLog, RevocationSet};
pub use trust::{TrustList, TrustedKey};
