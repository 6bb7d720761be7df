//! COSE_Sign1 (RFC 9052 §4.2) as the formats use it: tag 18, a protected header holding the
//! algorithm (label 1) and the key id (label 4), an empty unprotected header, an embedded
//! payload, and the signature over `Sig_structure = ["Signature1", protected, h'', payload]`.
//!
//! The key id sits in the protected header, as the EU DCC does since its 1.0.5 profile: the
//! signature then covers it, so nobody can re-label a signed pass to steer a verifier to
//! another key (of another algorithm, say) without breaking the signature.

use crate::cbor::{self, Reader, Writer};
use crate::keys::{Algorithm, KeyId, Signer};
use crate::refusal::{Refusal, Stage, refuse};

/// A parsed COSE_Sign1 borrowing from its input.
#[derive(Debug)]
pub struct Sign1<'a> {
    /// The protected header's bytes (the content of the byte string), as signed.
    pub protected: &'a [u8],
    pub alg: Algorithm,
    pub protected_kid: Option<KeyId>,
    pub unprotected_kid: Option<KeyId>,
    pub payload: &'a [u8],
    pub signature: &'a [u8],
}

const TAG_SIGN1: u64 = 18;

fn bad(e: cbor::CborError) -> Refusal {
    Refusal::new(Stage::BadCose, e.0)
}

/// Parses a COSE_Sign1 (tagged or not). Every refusal is at [`Stage::BadCose`].
pub fn parse(cose: &[u8]) -> Result<Sign1<'_>, Refusal> {
    cbor::check(cose).map_err(bad)?;
    let mut r = Reader::new(cose);
    if r.peek_major().map_err(bad)? == cbor::TAG {
        let tag = r.tag().map_err(bad)?;
        if tag != TAG_SIGN1 {
            return refuse(Stage::BadCose, format!("CBOR tag {tag} is not COSE_Sign1 (18)"));
        }
    }
    if r.array().map_err(bad)? != 4 {
        return refuse(Stage::BadCose, "a COSE_Sign1 is an array of 4 items");
    }
    let protected = r.bytes().map_err(bad)?;
    let (alg, protected_kid) = parse_protected(protected)?;
    let unprotected_kid = parse_unprotected(&mut r)?;
    if r.peek_major().map_err(bad)? != cbor::BYTES {
        return refuse(Stage::BadCose, "the payload must be embedded as a byte string");
    }
    let payload = r.bytes().map_err(bad)?;
    let signature = r.bytes().map_err(bad)?;
    Ok(Sign1 { protected, alg, protected_kid, unprotected_kid, payload, signature })
}

fn parse_protected(protected: &[u8]) -> Result<(Algorithm, Option<KeyId>), Refusal> {
    if protected.is_empty() {
        return refuse(Stage::BadCose, "the protected header is empty: it must name the algorithm");
    }
    cbor::check(protected).map_err(bad)?;
    let mut r = Reader::new(protected);
    let n = r.map().map_err(bad)?;
    let (mut alg, mut kid, mut seen) = (None, None, 0u64);
    for _ in 0..n {
        let label = r.int_key().map_err(bad)?;
        match label {
            Some(l @ (1 | 2 | 4)) if !cbor::first_time(&mut seen, l as u32) => {
                return refuse(Stage::BadCose, format!("header label {l} appears twice"));
            }
            Some(1) => {
                let id = r.int().map_err(|_| Refusal::new(Stage::BadCose, "the algorithm must be an integer"))?;
                alg = Some(Algorithm::from_cose(id).ok_or_else(|| {
                    Refusal::new(
                        Stage::BadCose,
                        format!("algorithm {id} is not accepted (ES256 -7, EdDSA -8, PS256 -37)"),
                    )
                })?);
            }
            Some(2) => return refuse(Stage::BadCose, "critical header parameters are not supported"),
            Some(4) => kid = Some(read_kid(&mut r)?),
            _ => r.skip().map_err(bad)?,
        }
    }
    match alg {
        Some(a) => Ok((a, kid)),
        None => refuse(Stage::BadCose, "the protected header names no algorithm (label 1)"),
    }
}

fn parse_unprotected(r: &mut Reader<'_>) -> Result<Option<KeyId>, Refusal> {
    let n = r.map().map_err(bad)?;
    let (mut kid, mut seen) = (None, 0u64);
    for _ in 0..n {
        match r.int_key().map_err(bad)? {
            Some(4) if !cbor::first_time(&mut seen, 4) => {
                return refuse(Stage::BadCose, "header label 4 appears twice");
            }
            Some(4) => kid = Some(read_kid(r)?),
            Some(1) => return refuse(Stage::BadCose, "the algorithm must be in the protected header"),
            _ => r.skip().map_err(bad)?,
        }
    }
    Ok(kid)
}

fn read_kid(r: &mut Reader<'_>) -> Result<KeyId, Refusal> {
    let b = r.bytes().map_err(|_| Refusal::new(Stage::BadCose, "the key id must be a byte string"))?;
    KeyId::from_slice(b)
        .ok_or_else(|| Refusal::new(Stage::BadCose, format!("the key id is {} bytes: it must be 8", b.len())))
}

/// Writes the Sig_structure for a COSE_Sign1 with no external data into `out` (cleared).
pub fn sig_structure(protected: &[u8], payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut w = Writer(out);
    w.array(4);
    w.text("Signature1");
    w.bytes(protected);
    w.bytes(&[]);
    w.bytes(payload);
}

/// The protected header `{1: alg, 4: kid}`.
pub fn protected_header(alg: Algorithm, kid: Option<KeyId>) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    let mut w = Writer(&mut h);
    w.map(1 + kid.is_some() as usize);
    w.uint(1);
    w.int(alg.cose());
    if let Some(kid) = kid {
        w.uint(4);
        w.bytes(&kid.0);
    }
    h
}

/// Assembles a tagged COSE_Sign1 from its parts.
pub fn assemble(protected: &[u8], unprotected_kid: Option<KeyId>, payload: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + signature.len() + 16);
    let mut w = Writer(&mut out);
    w.tag(TAG_SIGN1);
    w.array(4);
    w.bytes(protected);
    match unprotected_kid {
        Some(kid) => {
            w.map(1);
            w.uint(4);
            w.bytes(&kid.0);
        }
        None => w.map(0),
    }
    w.bytes(payload);
    w.bytes(signature);
    out
}

/// Signs `payload` with `signer`: the key id in the protected header.
pub fn sign(signer: &Signer, payload: &[u8]) -> Vec<u8> {
    let protected = protected_header(signer.algorithm(), Some(signer.kid()));
    let mut tbs = Vec::new();
    sig_structure(&protected, payload, &mut tbs);
    assemble(&protected, None, payload, &signer.sign(&tbs))
}
