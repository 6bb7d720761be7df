//! One test per refusal stage, each with the input that produces it.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use tongxing_pass::cbor::Writer;
use tongxing_pass::{
    Algorithm, Decoder, Entry, Pass, RevocationHash, RevocationSet, Signer, Stage, TrustList, base45, cose, decode,
    issue,
};

use crate::common::{T0, sample_pass, setup};

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn wrap(cose: &[u8]) -> String {
    format!("TX1:{}", base45::encode(&zlib(cose)))
}

/// The COSE bytes inside a TX1 text.
fn open(text: &str) -> Vec<u8> {
    let mut z = Vec::new();
    base45::decode_into(&text.as_bytes()[4..], &mut z).unwrap();
    let mut out = Vec::new();
    ZlibDecoder::new(&z[..]).read_to_end(&mut out).unwrap();
    out
}

fn stage(text: &str, trust: &TrustList, revs: &RevocationSet, now: i64) -> Stage {
    match decode(text, trust, revs, now) {
        Ok(v) => panic!("verified: {v:?}"),
        Err(r) => {
            assert!(!r.detail.is_empty());
            r.stage
        }
    }
}

#[test]
fn every_stage_has_a_stable_distinct_name() {
    let names: std::collections::HashSet<_> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names.len(), Stage::ALL.len());
    for n in names {
        assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{n}");
    }
}

#[test]
fn too_large_text() {
    let (_, trust, revs) = setup(Algorithm::Es256);
    let text = format!("TX1:{}", "0".repeat(4093));
    assert_eq!(stage(&text, &trust, &revs, T0), Stage::TooLarge);
}

#[test]
fn wrong_prefix() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    assert_eq!(stage(&text.replacen("TX1:", "HC1:", 1), &trust, &revs, T0), Stage::BadPrefix);
    assert_eq!(stage(&text[4..], &trust, &revs, T0), Stage::BadPrefix);
    assert_eq!(stage("", &trust, &revs, T0), Stage::BadPrefix);
}

#[test]
fn bad_base45() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    let mut bad = text.clone();
    bad.replace_range(10..11, "a");
    assert_eq!(stage(&bad, &trust, &revs, T0), Stage::BadBase45);
    // A length of 3n + 1 characters is not Base45 (whole groups are 3, a final byte 2): cut
    // to the nearest such length, whatever the length of this pass's text.
    let mut cut = text.len() - 1;
    while (cut - 4) % 3 != 1 {
        cut -= 1;
    }
    assert_eq!(stage(&text[..cut], &trust, &revs, T0), Stage::BadBase45);
}

#[test]
fn truncated_code_fails_at_compression() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    for cut in [3, 30, 90] {
        assert_eq!(stage(&text[..text.len() - cut], &trust, &revs, T0), Stage::BadCompression, "cut {cut}");
    }
    assert_eq!(stage(&format!("TX1:{}", base45::encode(b"not zlib at all")), &trust, &revs, T0), Stage::BadCompression);
}

#[test]
fn compression_bomb_is_refused_at_the_limit() {
    let (_, trust, revs) = setup(Algorithm::Es256);
    // 1 MiB of zeros deflates to ~1 KiB: a text well under the 4 KiB limit.
    let bomb = zlib(&vec![0u8; 1 << 20]);
    let text = format!("TX1:{}", base45::encode(&bomb));
    assert!(text.len() <= 4096, "{}", text.len());
    let started = std::time::Instant::now();
    let r = decode(&text, &trust, &revs, T0).unwrap_err();
    assert_eq!(r.stage, Stage::TooLarge, "{r}");
    assert!(r.detail.contains("65536"), "{r}");
    assert!(started.elapsed().as_millis() < 500);
    // Exactly at the limit is fine for the envelope (then not COSE).
    let text = wrap(&vec![0u8; 65536]);
    assert_eq!(stage(&text, &trust, &revs, T0), Stage::BadCose);
}

#[test]
fn not_cose_and_nested_too_deep() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    assert_eq!(stage(&wrap(b"\x01"), &trust, &revs, T0), Stage::BadCose);
    // A COSE_Sign1 whose unprotected header nests 17 levels: refused before any signature work.
    let mut deep = Vec::new();
    let mut w = Writer(&mut deep);
    w.tag(18);
    w.array(4);
    w.bytes(&cose::protected_header(Algorithm::Es256, Some(signer.kid())));
    w.map(1);
    w.uint(99);
    for _ in 0..15 {
        w.array(1);
    }
    w.uint(0);
    w.bytes(b"payload");
    w.bytes(&[0; 64]);
    let r = decode(&wrap(&deep), &trust, &revs, T0).unwrap_err();
    assert_eq!(r.stage, Stage::BadCose);
    assert!(r.detail.contains("deeper than 16"), "{r}");
    // The key id must be protected in TX1.
    let pass = sample_pass().to_cwt().unwrap();
    let protected = cose::protected_header(Algorithm::Es256, None);
    let unprotected = cose::assemble(&protected, Some(signer.kid()), &pass, &[0; 64]);
    assert_eq!(stage(&wrap(&unprotected), &trust, &revs, T0), Stage::BadCose);
}

#[test]
fn unknown_key() {
    let (signer, _, revs) = setup(Algorithm::Es256);
    let (_, other_trust, _) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    assert_eq!(stage(&text, &other_trust, &revs, T0), Stage::UnknownKey);
}

#[test]
fn tampered_byte_and_other_key_fail_the_signature() {
    for alg in [Algorithm::Es256, Algorithm::Ed25519] {
        let (signer, trust, revs) = setup(alg);
        let text = issue(&signer, &sample_pass()).unwrap();
        let mut c = open(&text);
        // The payload ends 64 + 2 bytes before the end (signature and its head); flip a byte in it.
        let i = c.len() - 70;
        c[i] ^= 1;
        assert_eq!(stage(&wrap(&c), &trust, &revs, T0), Stage::BadSignature, "{alg}");
        // Signed by another key under the trusted key's id.
        let (other, _) = Signer::generate(alg).unwrap();
        let payload = sample_pass().to_cwt().unwrap();
        let protected = cose::protected_header(alg, Some(signer.kid()));
        let mut tbs = Vec::new();
        cose::sig_structure(&protected, &payload, &mut tbs);
        let forged = cose::assemble(&protected, None, &payload, &other.sign(&tbs));
        assert_eq!(stage(&wrap(&forged), &trust, &revs, T0), Stage::BadSignature, "{alg}");
    }
}

#[test]
fn signed_but_not_a_pass() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let mut payload = Vec::new();
    let mut w = Writer(&mut payload);
    w.map(1);
    w.uint(1);
    w.text("BJ-HEALTH");
    let text = wrap(&cose::sign(&signer, &payload));
    let r = decode(&text, &trust, &revs, T0).unwrap_err();
    assert_eq!(r.stage, Stage::BadClaims);
    assert!(r.detail.contains("exp (4)"), "{r}");
}

#[test]
fn key_not_valid_before_its_window_and_after_retirement() {
    let (signer, mut trust, revs) = setup(Algorithm::Es256);
    let mut early = sample_pass();
    early.issued_at = T0 - 2 * 86400;
    early.expires_at = T0 + 60;
    assert_eq!(stage(&issue(&signer, &early).unwrap(), &trust, &revs, T0), Stage::KeyNotValid);
    // Retired at T0 + 10: a pass it signed at T0 still verifies until it expires...
    let text = issue(&signer, &sample_pass()).unwrap();
    trust.retire(&signer.kid(), T0 + 10, 15 * 60).unwrap();
    assert!(decode(&text, &trust, &revs, T0 + 14 * 60).is_ok());
    // ...a pass it signs after retiring does not...
    let mut late = sample_pass();
    late.issued_at = T0 + 20;
    assert_eq!(stage(&issue(&signer, &late).unwrap(), &trust, &revs, T0 + 30), Stage::KeyNotValid);
    // ...and nothing verifies once its last pass has expired.
    let mut long = sample_pass();
    long.expires_at = T0 + 86400;
    assert_eq!(stage(&issue(&signer, &long).unwrap(), &trust, &revs, T0 + 10 + 15 * 60), Stage::KeyNotValid);
}

#[test]
fn clock_behind_by_more_than_the_tolerance() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    assert!(decode(&text, &trust, &revs, T0 - 300).is_ok());
    assert_eq!(stage(&text, &trust, &revs, T0 - 301), Stage::ClockBehind);
    let mut strict = Decoder::new().with_clock_tolerance(0);
    assert_eq!(strict.decode(&text, &trust, &revs, T0 - 1).unwrap_err().stage, Stage::ClockBehind);
    assert!(strict.decode(&text, &trust, &revs, T0).is_ok());
}

#[test]
fn expired() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    assert!(decode(&text, &trust, &revs, T0 + 15 * 60 - 1).is_ok());
    assert_eq!(stage(&text, &trust, &revs, T0 + 15 * 60), Stage::Expired);
}

#[test]
fn revoked_person_and_withdrawn_pass() {
    let (signer, trust, _) = setup(Algorithm::Es256);
    let pass = sample_pass();
    let text = issue(&signer, &pass).unwrap();
    let person = RevocationHash::of_person(&pass.person_ref);
    // The code turned yellow at T0 + 60: the green pass issued at T0 is revoked...
    let revs = RevocationSet::new(2, T0 + 60, vec![Entry { hash: person, cutoff: T0 + 60 }]);
    assert_eq!(stage(&text, &trust, &revs, T0 + 120), Stage::Revoked);
    // ...a pass issued after the change is not caught by that entry.
    let mut after = pass.clone();
    after.issued_at = T0 + 61;
    after.expires_at = T0 + 900;
    assert!(decode(&issue(&signer, &after).unwrap(), &trust, &revs, T0 + 120).is_ok());
    // A withdrawn pass, by its id.
    let id = decode(&text, &trust, &RevocationSet::empty(), T0).unwrap().pass_id;
    let revs = RevocationSet::new(3, T0, vec![Entry { hash: id, cutoff: i64::MAX }]);
    let r = decode(&text, &trust, &revs, T0 + 1).unwrap_err();
    assert_eq!(r.stage, Stage::Revoked);
    assert!(r.detail.contains("withdrawn"), "{r}");
    // Another pass of the same person is not withdrawn with it.
    let mut other = pass;
    other.issued_at += 1;
    assert!(decode(&issue(&signer, &other).unwrap(), &trust, &revs, T0 + 2).is_ok());
}

#[test]
fn stages_run_in_order_on_one_bad_code() {
    // An expired pass from an unknown key is refused as unknown_key: the key comes first.
    let (signer, _, revs) = setup(Algorithm::Es256);
    let text = issue(&signer, &sample_pass()).unwrap();
    let empty = TrustList::new(1, T0);
    assert_eq!(stage(&text, &empty, &revs, T0 + 86400), Stage::UnknownKey);
    let _ = Pass::from_cwt(&sample_pass().to_cwt().unwrap()).unwrap();
}
