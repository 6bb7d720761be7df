//! Signed health codes ("passes") for Tongxing: the QR text is
//! `TX1:` + Base45(zlib(COSE_Sign1(CWT))), the chain of the EU DCC's `HC1:` with our own prefix
//! and claims. Pure library: no database, no network, no clock (every time is a parameter in
//! UTC seconds); the only file I/O is in [`keyfile`]. docs/PASS-FORMAT.md is the format's spec.
//!
//! ```
//! use tongxing_pass::{Algorithm, Signer, TrustList, RevocationSet, issue, decode};
//! # let pass = tongxing_pass::Pass { issuer: "BJ-HEALTH".into(), issued_at: 1_641_801_600,
//! #     expires_at: 1_641_802_500, person_ref: vec![7; 16],
//! #     colour: tongxing_domain::facts::CodeColour::Green, colour_reason: None, tests: vec![], commuter: None,
//! #     pending_site: None, commitment_letter: false };
//! let (signer, _pkcs8) = Signer::generate(Algorithm::Es256).unwrap();
//! let mut trust = TrustList::new(1, 1_641_800_000);
//! trust.add(signer.public_key().clone(), 1_641_800_000).unwrap();
//! let text = issue(&signer, &pass).unwrap();                  // "TX1:…"
//! let verified = decode(&text, &trust, &RevocationSet::empty(), 1_641_801_660).unwrap();
//! assert_eq!(verified.pass, pass);
//! ```
//!
//! # Layout
//!
//! - [`codec`]: the TX1 chain. [`Issuer`] signs passes into QR texts; [`Decoder`] runs the
//!   stages backwards, names the first that fails ([`Stage`]), and keeps its buffers between
//!   calls. The envelope (size, prefix, Base45, zlib) is shared with [`hcert`].
//! - [`pass`]: [`Pass`] and its CWT claims, both directions.
//! - [`cose`]: COSE_Sign1 parse and build, the Sig_structure. [`cbor`]: the small CBOR encoder,
//!   the borrowing reader and the well-formedness and depth check every untrusted item passes
//!   first. [`base45`]: RFC 9285.
//! - [`keys`]: [`Signer`], [`PublicKey`], [`KeyId`] (SHA-256 of the SPKI DER, 8 bytes), all
//!   through `ring`. [`keyfile`]: PKCS#8 files of mode 0600 (the only file I/O).
//! - [`trust`]: [`TrustList`], signed by the list-signing key. [`revocation`]: [`RevocationSet`]
//!   (the checkpoint's O(1) look-up), [`RevocationDelta`], [`RevocationLog`] (the server's model).
//! - [`qr`]: SVG and PNG at error correction Q; reading a PNG or JPEG photo back to text.
//! - [`hcert`]: EU DCC (`HC1:`) test certificates as evidence.
//!
//! # Choices, and why
//!
//! - **Our own small CBOR and COSE code instead of `ciborium` and `coset` on the hot path.** A
//!   verifier needs one strict subset (definite lengths, integer keys, no floats where integers
//!   belong) and must bound nesting before descending. [`cbor::check`] proves well-formedness
//!   and depth ≤ 16 in one linear pass without recursion, and the reader then borrows every
//!   string from the input: parsing the COSE_Sign1 and the claims takes 0.8 µs, against 4.4–5.5 µs
//!   for `coset::CoseSign1::from_tagged_slice` plus a `ciborium::Value` of the payload (both
//!   measured in `benches/verify.rs`), which copies the payload and builds a tree. `ciborium`
//!   and `coset` stay as dev-dependencies: the property test checks that our encoding is byte
//!   for byte what ciborium writes for the same value, and the bench measures coset.
//! - **Our own Base45** (40 lines, the RFC's examples as tests) decodes into a buffer the
//!   decoder keeps; the `base45` crate allocates per call and is kept as a test oracle only.
//! - **zlib written as stored blocks.** A pass is ~180 bytes, mostly random; deflate at level 9
//!   gives the same 190 bytes after a miniz compressor reset of 6–21 µs (more than the ES256
//!   signature). Verifiers accept any zlib (`flate2`, miniz backend), with a copy-out fast
//!   path for stored blocks.
//! - **Minimal DER** (`der.rs`) instead of `x509-cert`: the EU path needs three things from a
//!   signing certificate (its SPKI, notBefore, notAfter) and checks no chain (the operator's
//!   file is the trust), so a strict 150-line TLV walker replaces `x509-cert`, `der`, `spki`
//!   and `const-oid`.
//! - **Images without the `image` crate**: `png` and `zune-jpeg` read greyscale, `rqrr` finds the
//!   code, `qrcode` (without its `image` feature) makes the SVG and the module matrix we write
//!   as PNG ourselves.
//! - **Revocation entries carry a cut-off time.** A person entry revokes the passes issued
//!   before the change of status, not the new pass showing the new colour; the set is a sorted
//!   array with a directory over the leading hash bits (24 bytes an entry plus ~1.7 of
//!   directory; a `HashMap<[u8; 16], i64>` would take ~42 at 10 M and has no use for the order that makes
//!   full lists and deltas a merge).
//! - **Key ids in the protected header**, as the EU DCC: the signature covers them.
//! - **`not_yet_valid` vs `clock_behind`.** A TX1 pass is valid from its issue time, stamped
//!   by our own server: a pass from the future means this device's clock is behind
//!   (`clock_behind`, the checkpoint does not decide). An EU certificate from the future is
//!   `not_yet_valid`: a foreign issuer's clock is not ours to vouch for.

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
pub use qr::{decode_image, qr_png, qr_svg, qr_svg_inline};
pub use refusal::{Refusal, Stage};
pub use revocation::{Entry, RevocationDelta, RevocationHash, RevocationLog, RevocationSet};
pub use trust::{TrustList, TrustedKey};
