//! EU DCC (HC1) test certificates as evidence: synthetic ones signed with our own document
//! signer keys (ES256 and PS256), and one published EU test vector.

use std::io::Write;

use base64::Engine as _;
use flate2::{Compression, write::ZlibEncoder};
use tongxing_domain::facts::TestResult;
use tongxing_pass::cbor::Writer;
use tongxing_pass::hcert::{self, DccTrustList};
use tongxing_pass::{Algorithm, KeyId, Signer, Stage, base45, cose};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/dcc");
/// 2027-01-01T00:00:00Z, inside the test certificates' validity.
const IAT: i64 = 1_798_761_600;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

fn payload(iat: i64, exp: i64, sc: &str, tr: &str) -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = Writer(&mut b);
    let kv = |w: &mut Writer<'_>, k: &str, v: &str| {
        w.text(k);
        w.text(v);
    };
    w.map(4);
    w.uint(1);
    w.text("XX");
    w.uint(4);
    w.int(exp);
    w.uint(6);
    w.int(iat);
    w.int(hcert::CLAIM_HCERT);
    w.map(1);
    w.uint(1);
    w.map(4);
    kv(&mut w, "ver", "1.3.0");
    w.text("nam");
    w.map(4);
    kv(&mut w, "fn", "Mustermann");
    kv(&mut w, "fnt", "MUSTERMANN");
    kv(&mut w, "gn", "Erika");
    kv(&mut w, "gnt", "ERIKA");
    kv(&mut w, "dob", "1964-08-12");
    w.text("t");
    w.array(1);
    w.map(10);
    kv(&mut w, "tg", "840539006");
    kv(&mut w, "tt", hcert::TYPE_NAAT);
    kv(&mut w, "nm", "Roche LightCycler qPCR");
    kv(&mut w, "sc", sc);
    kv(&mut w, "tr", tr);
    kv(&mut w, "tc", "Test centre 1");
    kv(&mut w, "co", "XX");
    kv(&mut w, "is", "Test ministry");
    kv(&mut w, "ci", "URN:UVCI:01:XX:TONGXING0001#X");
    w.text("x-unknown");
    w.array(0);
    b
}

fn hc1(cose_bytes: &[u8]) -> String {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    z.write_all(cose_bytes).unwrap();
    format!("HC1:{}", base45::encode(&z.finish().unwrap()))
}

fn sign_ec(payload: &[u8], kid_protected: bool) -> Vec<u8> {
    let signer = Signer::from_pkcs8(&read("ec.key.der")).unwrap();
    let kid = KeyId::of_der(&read("ec.cert.der"));
    let protected = cose::protected_header(Algorithm::Es256, kid_protected.then_some(kid));
    let mut tbs = Vec::new();
    cose::sig_structure(&protected, payload, &mut tbs);
    cose::assemble(&protected, (!kid_protected).then_some(kid), payload, &signer.sign(&tbs))
}

fn sign_rsa(payload: &[u8]) -> Vec<u8> {
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&read("rsa.key.der")).unwrap();
    let kid = KeyId::of_der(&read("rsa.cert.der"));
    let protected = cose::protected_header(Algorithm::Ps256, Some(kid));
    let mut tbs = Vec::new();
    cose::sig_structure(&protected, payload, &mut tbs);
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(&ring::signature::RSA_PSS_SHA256, &ring::rand::SystemRandom::new(), &tbs, &mut sig).unwrap();
    cose::assemble(&protected, None, payload, &sig)
}

fn trust_json(wrapped: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let entries: Vec<serde_json::Value> = ["ec", "rsa"]
        .iter()
        .map(|k| {
            let cert = read(&format!("{k}.cert.der"));
            serde_json::json!({
                "kid": b64.encode(KeyId::of_der(&cert).0),
                "country": "XX",
                "certificateType": "DSC",
                "rawData": b64.encode(&cert),
            })
        })
        .collect();
    if wrapped { serde_json::json!({ "certificates": entries }) } else { serde_json::json!(entries) }.to_string()
}

#[test]
fn synthetic_test_certificates_verify_and_become_facts() {
    for wrapped in [false, true] {
        let trust = DccTrustList::from_json(&trust_json(wrapped)).unwrap();
        assert_eq!(trust.len(), 2);
        let p = payload(IAT, IAT + 72 * 3600, "2026-12-31T21:30:00+01:00", hcert::RESULT_NOT_DETECTED);
        for (cose_bytes, alg) in [
            (sign_ec(&p, true), Algorithm::Es256),
            (sign_ec(&p, false), Algorithm::Es256),
            (sign_rsa(&p), Algorithm::Ps256),
        ] {
            let v = hcert::decode(&hc1(&cose_bytes), &trust, IAT + 3600).unwrap();
            assert_eq!(v.alg, alg);
            assert_eq!(v.issuer_country.as_deref(), Some("XX"));
            assert_eq!((v.family_name.as_deref(), v.given_name.as_deref()), (Some("MUSTERMANN"), Some("ERIKA")));
            assert_eq!(v.date_of_birth.as_deref(), Some("1964-08-12"));
            assert_eq!(v.tests.len(), 1);
            let t = &v.tests[0];
            assert!(t.is_nucleic_acid());
            assert_eq!(t.sampled_at, 1_798_749_000); // 2026-12-31T20:30:00Z
            assert_eq!(t.result, TestResult::Negative);
            assert_eq!(t.centre.as_deref(), Some("Test centre 1"));
        }
    }
    // Detected is positive; an unknown code is invalid.
    let trust = DccTrustList::from_json(&trust_json(false)).unwrap();
    for (tr, want) in [(hcert::RESULT_DETECTED, TestResult::Positive), ("0", TestResult::Invalid)] {
        let p = payload(IAT, IAT + 3600, "2026-12-31T21:30:00Z", tr);
        assert_eq!(hcert::decode(&hc1(&sign_ec(&p, true)), &trust, IAT).unwrap().tests[0].result, want);
    }
}

#[test]
fn hc1_stages() {
    let trust = DccTrustList::from_json(&trust_json(false)).unwrap();
    let ok = payload(IAT, IAT + 3600, "2026-12-31T21:30:00Z", hcert::RESULT_NOT_DETECTED);
    let stage = |text: &str, now: i64| hcert::decode(text, &trust, now).unwrap_err().stage;
    let text = hc1(&sign_ec(&ok, true));
    assert_eq!(stage(&text.replacen("HC1:", "TX1:", 1), IAT), Stage::BadPrefix);
    assert_eq!(stage(&text, IAT + 3600), Stage::Expired);
    assert_eq!(stage(&text, IAT - 301), Stage::NotYetValid);
    assert_eq!(hcert::decode(&text, &DccTrustList::default(), IAT).unwrap_err().stage, Stage::UnknownKey);
    let mut c = sign_ec(&ok, true);
    let n = c.len();
    c[n - 70] ^= 1;
    assert_eq!(stage(&hc1(&c), IAT), Stage::BadSignature);
    // Signed before the signing certificate was valid.
    let early = payload(IAT - 365 * 86400, IAT + 3600, "2026-12-31T21:30:00Z", hcert::RESULT_NOT_DETECTED);
    assert_eq!(stage(&hc1(&sign_ec(&early, true)), IAT), Stage::KeyNotValid);
    // A sample time that is not RFC 3339.
    let bad_sc = payload(IAT, IAT + 3600, "yesterday", hcert::RESULT_NOT_DETECTED);
    assert_eq!(stage(&hc1(&sign_ec(&bad_sc, true)), IAT), Stage::BadClaims);
    // Uncompressed COSE is accepted on the EU path (the EU allows it).
    let raw = format!("HC1:{}", base45::encode(&sign_ec(&ok, true)));
    assert!(hcert::decode(&raw, &trust, IAT).is_ok());
}

#[test]
fn a_trust_list_with_a_wrong_kid_is_refused() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let json = serde_json::json!([{ "kid": b64.encode([0u8; 8]), "rawData": b64.encode(read("ec.cert.der")) }]);
    let e = DccTrustList::from_json(&json.to_string()).unwrap_err();
    assert!(e.to_string().contains("kid does not match"), "{e}");
    assert!(DccTrustList::from_json("{}").is_err());
    assert!(DccTrustList::from_json("[{\"rawData\": \"AAAA\"}]").is_err());
}

/// One published EU test vector (Austria). Its signing certificate was issued two days after
/// the certificate it signs, so a verifier that checks the validity of the signing certificate
/// at the issue time refuses it as key_not_valid: that stage comes after the signature, so
/// reaching it proves the envelope, COSE and ES256 stages accept another implementation's code.
#[test]
fn published_eu_test_vector_verifies_its_signature() {
    let v: serde_json::Value = serde_json::from_slice(&read("eu-dgc-testdata-AT-3.json")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = b64.decode(v["CERTIFICATE"].as_str().unwrap()).unwrap();
    let mut trust = DccTrustList::default();
    trust.add_certificate(&cert, Some("AT".into())).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(v["VALIDATIONCLOCK"].as_str().unwrap()).unwrap().timestamp();
    let text = v["PREFIX"].as_str().unwrap();
    let r = hcert::decode(text, &trust, now).unwrap_err();
    assert_eq!(r.stage, Stage::KeyNotValid, "{r}");
    // The same code with one signature byte changed fails at the signature.
    let mut z = Vec::new();
    base45::decode_into(&text.as_bytes()[4..], &mut z).unwrap();
    let mut c = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&z[..]), &mut c).unwrap();
    let n = c.len();
    c[n - 1] ^= 1;
    assert_eq!(hcert::decode(&hc1(&c), &trust, now).unwrap_err().stage, Stage::BadSignature);
}
