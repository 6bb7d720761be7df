use proptest::prelude::*;
use tongxing_domain::facts::{CodeColour, CommuterKind, CommuterStatus, SiteKind, TestResult};
use tongxing_pass::{Algorithm, CommuterBadge, Decoder, Issuer, Pass, PassTest, decode, issue};

use crate::common::{T0, sample_pass, setup};

#[test]
fn round_trip_es256_and_ed25519() {
    for alg in [Algorithm::Es256, Algorithm::Ed25519] {
        let (signer, trust, revs) = setup(alg);
        let pass = sample_pass();
        let text = issue(&signer, &pass).unwrap();
        assert!(text.starts_with("TX1:"), "{text}");
        assert!(text.len() < 400, "{} characters", text.len());
        let v = decode(&text, &trust, &revs, T0 + 60).unwrap();
        assert_eq!(v.pass, pass);
        assert_eq!(v.kid, signer.kid());
        assert_eq!(v.alg, alg);
    }
}

#[test]
fn the_smallest_pass_round_trips() {
    let (signer, trust, revs) = setup(Algorithm::Es256);
    let pass = Pass {
        issuer: "X".into(),
        issued_at: T0,
        expires_at: T0 + 1,
        person_ref: vec![7],
        colour: CodeColour::Red,
        colour_reason: Some("pop_up_3".into()),
        tests: vec![],
        pending_site: None,
        commitment_letter: false,
        commuter: None,
    };
    let text = issue(&signer, &pass).unwrap();
    assert_eq!(decode(&text, &trust, &revs, T0).unwrap().pass, pass);
}

#[test]
fn a_pass_beyond_the_limits_is_not_issued() {
    let (signer, ..) = setup(Algorithm::Es256);
    let mut p = sample_pass();
    p.tests = vec![p.tests[0]; 4];
    assert!(issue(&signer, &p).unwrap_err().to_string().contains("at most 3 tests"));
    let mut p = sample_pass();
    p.expires_at = p.issued_at;
    assert!(issue(&signer, &p).is_err());
    let mut p = sample_pass();
    p.person_ref = vec![0; 33];
    assert!(issue(&signer, &p).is_err());
}

fn any_enum<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    (0..all.len()).prop_map(move |i| all[i])
}

prop_compose! {
    fn any_test()(at in -1_000_000_000i64..4_000_000_000, site in any_enum(SiteKind::ALL), result in any_enum(TestResult::ALL)) -> PassTest {
        PassTest { sampled_at: at, site_kind: site, result }
    }
}

prop_compose! {
    fn any_badge()(kind in any_enum(CommuterKind::ALL), status in any_enum(CommuterStatus::ALL),
                   until in proptest::option::of(any::<i64>()), first in any::<bool>(),
                   due in proptest::option::of(-100_000i32..2_000_000)) -> CommuterBadge {
        CommuterBadge { kind, status, valid_until: until, first_check_done: first,
            next_test_due: due.map(|d| chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d as i64)) }
    }
}

prop_compose! {
    fn any_pass()(issuer in "[A-Za-z0-9 _\\-\u{4e00}-\u{4e20}]{1,21}", iat in -1_000_000_000i64..4_000_000_000,
                  life in 1i64..100_000_000, person in proptest::collection::vec(any::<u8>(), 1..=32),
                  colour in any_enum(CodeColour::ALL), reason in proptest::option::of("[a-z_0-9]{1,64}"),
                  tests in proptest::collection::vec(any_test(), 0..=3), badge in proptest::option::of(any_badge()),
                  site in proptest::option::of("[A-Z-]{1,64}"), letter in any::<bool>()) -> Pass {
        Pass { issuer, issued_at: iat, expires_at: iat + life, person_ref: person, colour, colour_reason: reason, tests, commuter: badge, pending_site: site, commitment_letter: letter }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Encode then decode is the identity, through the whole chain and through the CWT alone;
    /// ciborium, an independent CBOR decoder, reads the same payload.
    #[test]
    fn encode_then_decode_is_the_identity(pass in any_pass(), ed in any::<bool>()) {
        let alg = if ed { Algorithm::Ed25519 } else { Algorithm::Es256 };
        let (signer, _, revs) = setup(alg);
        let mut trust = tongxing_pass::TrustList::new(1, 0);
        trust.add(signer.public_key().clone(), i64::MIN).unwrap();
        let cwt = pass.to_cwt().unwrap();
        prop_assert_eq!(&Pass::from_cwt(&cwt).unwrap(), &pass);
        let v: ciborium::Value = ciborium::from_reader(&cwt[..]).unwrap();
        let mut again = Vec::new();
        ciborium::into_writer(&v, &mut again).unwrap();
        prop_assert_eq!(&again, &cwt, "our encoding is what ciborium writes for the same value");
        let text = Issuer::new(&signer).issue(&pass).unwrap();
        let got = Decoder::new().decode(&text, &trust, &revs, pass.issued_at).unwrap();
        prop_assert_eq!(got.pass, pass);
    }
}
