//! EU Digital COVID Certificates (`HC1:`) as evidence: the same envelope stages as TX1 (size,
//! prefix, Base45, zlib, COSE_Sign1), then the hcert profile: key id of 8 bytes in the
//! protected header (or, for older issuers, the unprotected one), ES256 with raw r‖s or
//! PS256, CWT claims 1 (issuing country), 4 (exp), 6 (iat) and −260 {1: the DCC payload}. The
//! test entries (`t`) become [`DccTest`] facts; vaccinations and recoveries are counted, not read.
//!
//! Signing keys come from a trust-list file the operator gives: the EU gateway's JSON of
//! document signer certificates (see [`DccTrustList::from_json`]).

use std::collections::HashMap;

use base64::Engine as _;
use tongxing_domain::facts::TestResult;

use crate::cbor::{self, Reader};
use crate::codec::{DEFAULT_CLOCK_TOLERANCE, Envelope};
use crate::cose;
use crate::der;
use crate::keys::{Algorithm, KeyId, PublicKey};
use crate::refusal::{Refusal, Stage, refuse};

pub const PREFIX: &str = "HC1:";
/// The CWT claim holding the health certificate.
pub const CLAIM_HCERT: i64 = -260;
/// Test result "not detected" (SNOMED CT 260415000).
pub const RESULT_NOT_DETECTED: &str = "260415000";
/// Test result "detected" (SNOMED CT 260373001).
pub const RESULT_DETECTED: &str = "260373001";
/// Test type: nucleic acid amplification with probe detection (LOINC LP6464-4).
pub const TYPE_NAAT: &str = "LP6464-4";

/// A document signer's key from the trust list.
#[derive(Debug, Clone)]
pub struct DscKey {
    pub kid: KeyId,
    pub key: PublicKey,
    pub country: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
}

/// Document signer keys by key id (two countries' certificates may share an id: each is tried).
#[derive(Debug, Clone, Default)]
pub struct DccTrustList {
    keys: HashMap<KeyId, Vec<DscKey>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DCC trust list: {0}")]
pub struct DccTrustError(pub String);

impl DccTrustList {
    /// Reads the gateway's JSON: either an array of objects or `{"certificates": [...]}` (the
    /// national backends' form), each object with `rawData` (base64 DER certificate) and `kid`
    /// (base64, 8 bytes), optionally `country`; other fields are ignored. A `kid` that is not
    /// the first 8 bytes of SHA-256 of the certificate refuses the file.
    pub fn from_json(json: &str) -> Result<Self, DccTrustError> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| DccTrustError(format!("not JSON: {e}")))?;
        let items = match &v {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(o) => match o.get("certificates") {
                Some(serde_json::Value::Array(a)) => a,
                _ => return Err(DccTrustError("an object without a \"certificates\" array".into())),
            },
            _ => return Err(DccTrustError("neither an array nor an object".into())),
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut list = DccTrustList::default();
        for (i, item) in items.iter().enumerate() {
            let field = |name: &str| item.get(name).and_then(|v| v.as_str());
            let raw = field("rawData").ok_or_else(|| DccTrustError(format!("entry {i} has no rawData")))?;
            let cert = b64.decode(raw).map_err(|e| DccTrustError(format!("entry {i}: rawData is not base64: {e}")))?;
            let kid = field("kid").map(|k| b64.decode(k)).transpose();
            let kid = kid.map_err(|e| DccTrustError(format!("entry {i}: kid is not base64: {e}")))?;
            let key = list
                .add_certificate(&cert, field("country").map(str::to_string))
                .map_err(|e| DccTrustError(format!("entry {i}: {e}")))?;
            if let Some(k) = kid
                && k != key.0
            {
                return Err(DccTrustError(format!("entry {i}: kid does not match the certificate ({key})")));
            }
        }
        Ok(list)
    }

    /// Adds a DER certificate; its key id is the first 8 bytes of SHA-256 of the DER.
    pub fn add_certificate(&mut self, cert_der: &[u8], country: Option<String>) -> Result<KeyId, DccTrustError> {
        let parts = der::parse_certificate(cert_der).map_err(DccTrustError)?;
        let key = PublicKey::from_spki_der(parts.spki).map_err(|e| DccTrustError(e.to_string()))?;
        if key.algorithm() == Algorithm::Ed25519 {
            return Err(DccTrustError("hcert signs with ES256 or PS256 keys, not Ed25519".into()));
        }
        let kid = KeyId::of_der(cert_der);
        let dsc = DscKey { kid, key, country, not_before: parts.not_before, not_after: parts.not_after };
        self.keys.entry(kid).or_default().push(dsc);
        Ok(kid)
    }

    pub fn get(&self, kid: &KeyId) -> &[DscKey] {
        self.keys.get(kid).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One test entry of a certificate, as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DccTest {
    /// `tg`: the disease (840539006 is COVID-19).
    pub disease: String,
    /// `tt`: LP6464-4 (nucleic acid) or LP217198-3 (rapid antigen).
    pub test_type: String,
    /// `sc`: when the sample was taken, UTC seconds.
    pub sampled_at: i64,
    /// `tr`, mapped: not detected → negative, detected → positive, anything else → invalid.
    pub result: TestResult,
    /// `tc`: the testing centre, if given.
    pub centre: Option<String>,
    /// `co`: the country of the test.
    pub country: String,
    /// `is`: the certificate issuer.
    pub issuer: String,
    /// `ci`: the unique certificate identifier.
    pub certificate_id: String,
}

impl DccTest {
    pub fn is_nucleic_acid(&self) -> bool {
        self.test_type == TYPE_NAAT
    }
}

/// A certificate whose every stage passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDcc {
    pub kid: KeyId,
    pub alg: Algorithm,
    /// CWT `iss`: the issuing country, if given.
    pub issuer_country: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// `nam.fnt` and `nam.gnt`: the names in the ICAO 9303 transliteration (for matching the ID).
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    /// `dob` as written (ISO 8601, possibly only a year or year-month).
    pub date_of_birth: Option<String>,
    pub tests: Vec<DccTest>,
    /// How many vaccination (`v`) and recovery (`r`) entries it holds (not used as evidence).
    pub vaccinations: usize,
    pub recoveries: usize,
}

/// Verifies `HC1:` codes offline. Reuses its buffers.
pub struct DccDecoder {
    envelope: Envelope,
    tbs: Vec<u8>,
    clock_tolerance: i64,
}

impl Default for DccDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DccDecoder {
    pub fn new() -> Self {
        DccDecoder { envelope: Envelope::new(), tbs: Vec::new(), clock_tolerance: DEFAULT_CLOCK_TOLERANCE }
    }

    /// How far in the future (seconds) an issue time may be before the certificate is refused
    /// as not yet valid.
    pub fn with_clock_tolerance(mut self, seconds: i64) -> Self {
        self.clock_tolerance = seconds.max(0);
        self
    }

    /// Stages: too_large, bad_prefix, bad_base45, bad_compression, bad_cose, unknown_key,
    /// bad_signature, bad_claims (CWT), key_not_valid (iat outside the signing certificate's
    /// validity), not_yet_valid, expired, bad_claims (the DCC payload).
    pub fn decode(&mut self, text: &str, trust: &DccTrustList, now: i64) -> Result<VerifiedDcc, Refusal> {
        let cose_bytes = self.envelope.open(PREFIX, text, true)?;
        let s = cose::parse(cose_bytes)?;
        let Some(kid) = s.protected_kid.or(s.unprotected_kid) else {
            return refuse(Stage::BadCose, "no key id in the protected or unprotected header");
        };
        let candidates = trust.get(&kid);
        if candidates.is_empty() {
            return refuse(Stage::UnknownKey, format!("key {kid} is not in the DCC trust list"));
        }
        cose::sig_structure(s.protected, s.payload, &mut self.tbs);
        let Some(dsc) = candidates.iter().find(|d| d.key.algorithm() == s.alg && d.key.verify(&self.tbs, s.signature))
        else {
            return refuse(Stage::BadSignature, format!("the signature does not verify with key {kid}"));
        };
        let cwt = read_cwt(s.payload)?;
        if cwt.issued_at < dsc.not_before || cwt.issued_at > dsc.not_after {
            return refuse(
                Stage::KeyNotValid,
                format!(
                    "issued at {} outside its signing certificate's validity ({}..{})",
                    cwt.issued_at, dsc.not_before, dsc.not_after
                ),
            );
        }
        if cwt.issued_at > now.saturating_add(self.clock_tolerance) {
            return refuse(
                Stage::NotYetValid,
                format!("the certificate is issued {} s in the future", cwt.issued_at - now),
            );
        }
        if now >= cwt.expires_at {
            return refuse(Stage::Expired, format!("the certificate expired {} s ago", now - cwt.expires_at));
        }
        let mut out = VerifiedDcc {
            kid,
            alg: s.alg,
            issuer_country: cwt.issuer.map(str::to_string),
            issued_at: cwt.issued_at,
            expires_at: cwt.expires_at,
            family_name: None,
            given_name: None,
            date_of_birth: None,
            tests: Vec::new(),
            vaccinations: 0,
            recoveries: 0,
        };
        read_dcc(cwt.hcert, &mut out)?;
        Ok(out)
    }
}

/// Verifies one code (see [`DccDecoder`] for many).
pub fn decode(text: &str, trust: &DccTrustList, now: i64) -> Result<VerifiedDcc, Refusal> {
    DccDecoder::new().decode(text, trust, now)
}

struct Cwt<'a> {
    issuer: Option<&'a str>,
    issued_at: i64,
    expires_at: i64,
    /// Reader positioned at the DCC payload (the value of key 1 inside claim −260).
    hcert: Reader<'a>,
}

fn bad(e: cbor::CborError) -> Refusal {
    Refusal::new(Stage::BadClaims, e.0)
}

fn read_cwt(payload: &[u8]) -> Result<Cwt<'_>, Refusal> {
    cbor::check(payload).map_err(bad)?;
    let mut r = Reader::new(payload);
    let (mut iss, mut iat, mut exp, mut hc) = (None, None, None, None);
    for _ in 0..r.map().map_err(bad)? {
        match r.int_key().map_err(bad)? {
            Some(1) => iss = Some(r.text().map_err(bad)?),
            Some(4) => exp = Some(r.int().map_err(bad)?),
            Some(6) => iat = Some(r.int().map_err(bad)?),
            Some(CLAIM_HCERT) => {
                let mut found = None;
                for _ in 0..r.map().map_err(bad)? {
                    if r.int_key().map_err(bad)? == Some(1) {
                        found = Some(r.clone());
                    }
                    r.skip().map_err(bad)?;
                }
                hc = found;
            }
            _ => r.skip().map_err(bad)?,
        }
    }
    match (iat, exp, hc) {
        (Some(issued_at), Some(expires_at), Some(hcert)) => Ok(Cwt { issuer: iss, issued_at, expires_at, hcert }),
        _ => refuse(Stage::BadClaims, "the CWT needs iat (6), exp (4) and the health certificate (-260: {1: …})"),
    }
}

/// Reads a map with text keys, calling `f` for each key with the reader at its value; `f`
/// returns false to have the value skipped.
fn text_map<'a>(
    r: &mut Reader<'a>,
    mut f: impl FnMut(&str, &mut Reader<'a>) -> Result<bool, Refusal>,
) -> Result<(), Refusal> {
    for _ in 0..r.map().map_err(bad)? {
        let key = if r.peek_major().map_err(bad)? == cbor::TEXT { Some(r.text().map_err(bad)?) } else { None };
        let consumed = match key {
            Some(k) => f(k, r)?,
            None => {
                r.skip().map_err(bad)?;
                false
            }
        };
        if !consumed {
            r.skip().map_err(bad)?;
        }
    }
    Ok(())
}

fn text_of(r: &mut Reader<'_>, what: &str) -> Result<String, Refusal> {
    r.text().map(str::to_string).map_err(|e| Refusal::new(Stage::BadClaims, format!("{what}: {}", e.0)))
}

fn read_dcc(mut r: Reader<'_>, out: &mut VerifiedDcc) -> Result<(), Refusal> {
    text_map(&mut r, |k, r| {
        match k {
            "nam" => text_map(r, |k, r| {
                match k {
                    "fnt" => out.family_name = Some(text_of(r, "nam.fnt")?),
                    "gnt" => out.given_name = Some(text_of(r, "nam.gnt")?),
                    _ => return Ok(false),
                }
                Ok(true)
            })?,
            "dob" => out.date_of_birth = Some(text_of(r, "dob")?),
            "v" => out.vaccinations = count_and_skip(r)?,
            "r" => out.recoveries = count_and_skip(r)?,
            "t" => {
                for _ in 0..r.array().map_err(bad)? {
                    out.tests.push(read_test(r)?);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn count_and_skip(r: &mut Reader<'_>) -> Result<usize, Refusal> {
    let n = r.array().map_err(bad)?;
    for _ in 0..n {
        r.skip().map_err(bad)?;
    }
    Ok(n)
}

fn read_test(r: &mut Reader<'_>) -> Result<DccTest, Refusal> {
    let mut f: HashMap<&'static str, String> = HashMap::new();
    text_map(r, |k, r| {
        let key = match k {
            "tg" => "tg",
            "tt" => "tt",
            "sc" => "sc",
            "tr" => "tr",
            "tc" => "tc",
            "co" => "co",
            "is" => "is",
            "ci" => "ci",
            _ => return Ok(false),
        };
        f.insert(key, text_of(r, &format!("t.{key}"))?);
        Ok(true)
    })?;
    let sc = f.remove("sc").ok_or_else(|| Refusal::new(Stage::BadClaims, "the test entry has no sc"))?;
    let sampled_at = chrono::DateTime::parse_from_rfc3339(&sc)
        .map_err(|_| Refusal::new(Stage::BadClaims, format!("t.sc {sc:?} is not an RFC 3339 date-time")))?
        .timestamp();
    let centre = f.remove("tc");
    let mut take =
        |k: &str| f.remove(k).ok_or_else(|| Refusal::new(Stage::BadClaims, format!("the test entry has no {k}")));
    let result = match take("tr")?.as_str() {
        RESULT_NOT_DETECTED => TestResult::Negative,
        RESULT_DETECTED => TestResult::Positive,
        _ => TestResult::Invalid,
    };
    Ok(DccTest {
        disease: take("tg")?,
        test_type: take("tt")?,
        sampled_at,
        result,
        centre,
        country: take("co")?,
        issuer: take("is")?,
        certificate_id: take("ci")?,
    })
}
