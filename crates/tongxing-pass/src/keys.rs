//! Signing keys, public keys and key ids, all through `ring`. A key id is the first 8 bytes of
//! SHA-256 over the public key's DER SubjectPublicKeyInfo, so anyone holding the public key
//! computes the same id, and the id changes with the key and with nothing else.

use std::fmt;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

use crate::der;

/// A signature algorithm, with its COSE identifier (RFC 9053).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256; signatures are raw r‖s, 64 bytes. The default.
    Es256,
    /// EdDSA with Ed25519; 64-byte signatures.
    Ed25519,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, salt 32 bytes): verification only, for EU
    /// certificates.
    Ps256,
}

impl Algorithm {
    pub fn cose(self) -> i64 {
        match self {
            Algorithm::Es256 => -7,
            Algorithm::Ed25519 => -8,
            Algorithm::Ps256 => -37,
        }
    }

    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            -7 => Some(Algorithm::Es256),
            -8 => Some(Algorithm::Ed25519),
            -37 => Some(Algorithm::Ps256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Ed25519 => "EdDSA",
            Algorithm::Ps256 => "PS256",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "es256" => Ok(Algorithm::Es256),
            "ed25519" | "eddsa" => Ok(Algorithm::Ed25519),
            other => Err(format!("unknown signing algorithm {other:?}: use es256 or ed25519")),
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::Ed25519 => &signature::ED25519,
            Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Eight bytes naming a key: SHA-256 of its DER SubjectPublicKeyInfo, truncated (TX1); for EU
/// certificates, SHA-256 of the certificate's DER, truncated (as hcert says).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self::of_der(spki_der)
    }

    /// First 8 bytes of SHA-256 of `der`.
    pub fn of_der(der: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let mut k = [0; 8];
        k.copy_from_slice(&d.as_ref()[..8]);
        KeyId(k)
    }

    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(KeyId)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

// DER SubjectPublicKeyInfo prefixes: SEQUENCE { AlgorithmIdentifier, BIT STRING (0 unused bits) }
// followed by the raw key (RFC 5480 and RFC 8410).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A public key with its algorithm and key id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    alg: Algorithm,
    spki: Vec<u8>,
    /// Where the raw key (what ring takes) starts inside `spki`.
    raw_at: usize,
    kid: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.alg, self.kid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a key this system accepts: {0}")]
    Unsupported(String),
    #[error("the key is damaged or not of its stated kind: {0}")]
    Invalid(String),
}

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo: P-256 (ES256), Ed25519, or RSA (PS256, EU only).
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, KeyError> {
        let parts = der::parse_spki(spki).map_err(KeyError::Invalid)?;
        let alg = match parts.algorithm {
            der::OID_EC_PUBLIC_KEY if parts.parameters == der::OID_P256 => {
                if parts.key.len() != 65 || parts.key[0] != 4 {
                    return Err(KeyError::Invalid("a P-256 key must be an uncompressed point of 65 bytes".into()));
                }
                Algorithm::Es256
            }
            der::OID_EC_PUBLIC_KEY => return Err(KeyError::Unsupported("an elliptic curve other than P-256".into())),
            der::OID_ED25519 if parts.key.len() == 32 => Algorithm::Ed25519,
            der::OID_ED25519 => return Err(KeyError::Invalid("an Ed25519 key must be 32 bytes".into())),
            der::OID_RSA | der::OID_RSA_PSS => Algorithm::Ps256,
            _ => return Err(KeyError::Unsupported("an algorithm other than P-256, Ed25519 or RSA".into())),
        };
        let raw_at = spki.len() - parts.key.len();
        Ok(PublicKey { alg, spki: spki.to_vec(), raw_at, kid: KeyId::of_spki(spki) })
    }

    /// From the raw key: a 65-byte uncompressed P-256 point or a 32-byte Ed25519 key.
    pub fn from_raw(alg: Algorithm, raw: &[u8]) -> Result<Self, KeyError> {
        let prefix: &[u8] = match alg {
            Algorithm::Es256 => &P256_SPKI_PREFIX,
            Algorithm::Ed25519 => &ED25519_SPKI_PREFIX,
            Algorithm::Ps256 => return Err(KeyError::Unsupported("RSA keys come as SubjectPublicKeyInfo".into())),
        };
        let mut spki = prefix.to_vec();
        spki.extend_from_slice(raw);
        Self::from_spki_der(&spki)
    }

    /// Reads `-----BEGIN PUBLIC KEY-----` PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem, "PUBLIC KEY").map_err(KeyError::Invalid)?;
        Self::from_spki_der(&der)
    }

    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> KeyId {
        self.kid
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The raw key as ring takes it (the point, the 32 bytes, or RSAPublicKey DER).
    pub fn raw(&self) -> &[u8] {
        &self.spki[self.raw_at..]
    }

    /// Whether `sig` (raw r‖s for ES256) signs `msg` under this key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(self.alg.verification(), self.raw()).verify(msg, sig).is_ok()
    }
}

/// A PKCS#8 private key document. Its Debug output never shows the key.
pub struct PrivateKeyDer(pub(crate) Vec<u8>);

impl PrivateKeyDer {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyDer(…)")
    }
}

impl Drop for PrivateKeyDer {
    fn drop(&mut self) {
        // Best effort: the key does not linger in freed memory.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs passes and lists. Debug shows the algorithm and key id only.
pub struct Signer {
    pair: Pair,
    public: PublicKey,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({} {})", self.public.alg, self.public.kid)
    }
}

impl Signer {
    /// A new random key; the PKCS#8 document is for [`crate::keyfile::write_private_key`].
    pub fn generate(alg: Algorithm) -> Result<(Signer, PrivateKeyDer), KeyError> {
        let rng = SystemRandom::new();
        let doc = match alg {
            Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::Ps256 => return Err(KeyError::Unsupported("passes are signed with ES256 or Ed25519".into())),
        }
        .map_err(|_| KeyError::Invalid("the system's random source failed".into()))?;
        let der = PrivateKeyDer(doc.as_ref().to_vec());
        Ok((Signer::from_pkcs8(der.as_bytes())?, der))
    }

    /// Reads a PKCS#8 DER private key (P-256 or Ed25519, v1 or v2).
    pub fn from_pkcs8(der: &[u8]) -> Result<Signer, KeyError> {
        let rng = SystemRandom::new();
        let (oid, params) = der::pkcs8_algorithm(der).map_err(KeyError::Invalid)?;
        let (pair, alg, raw) = match oid {
            der::OID_EC_PUBLIC_KEY if params == der::OID_P256 => {
                let p = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|e| KeyError::Invalid(e.to_string()))?;
                let raw = p.public_key().as_ref().to_vec();
                (Pair::Ecdsa(p), Algorithm::Es256, raw)
            }
            der::OID_ED25519 => {
                let p =
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| KeyError::Invalid(e.to_string()))?;
                let raw = p.public_key().as_ref().to_vec();
                (Pair::Ed25519(p), Algorithm::Ed25519, raw)
            }
            _ => return Err(KeyError::Unsupported("a private key other than P-256 or Ed25519".into())),
        };
        let public = PublicKey::from_raw(alg, &raw)?;
        Ok(Signer { pair, public, rng })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn kid(&self) -> KeyId {
        self.public.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.alg
    }

    /// Signs `msg`: raw r‖s (64 bytes) for ES256, 64 bytes for Ed25519.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Ecdsa(p) => {
                p.sign(&self.rng, msg).expect("ECDSA signing fails only if the random source does").as_ref().to_vec()
            }
            Pair::Ed25519(p) => p.sign(msg).as_ref().to_vec(),
        }
    }
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn pem_decode(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| format!("no {begin} line"))? + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| format!("no {end} line"))? + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| format!("bad base64 in the PEM: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trip_and_kid_rule() {
        for alg in [Algorithm::Es256, Algorithm::Ed25519] {
            let (s, der) = Signer::generate(alg).unwrap();
            let p = s.public_key();
            assert_eq!(PublicKey::from_spki_der(p.spki_der()).unwrap(), *p);
            assert_eq!(PublicKey::from_pem(&p.to_pem()).unwrap(), *p);
            let digest = ring::digest::digest(&ring::digest::SHA256, p.spki_der());
            assert_eq!(p.kid().0, digest.as_ref()[..8]);
            let sig = s.sign(b"message");
            assert_eq!(sig.len(), 64);
            assert!(p.verify(b"message", &sig));
            assert!(!p.verify(b"messagf", &sig));
            assert_eq!(Signer::from_pkcs8(der.as_bytes()).unwrap().kid(), s.kid());
            assert_eq!(format!("{der:?}"), "PrivateKeyDer(…)");
        }
    }
}
