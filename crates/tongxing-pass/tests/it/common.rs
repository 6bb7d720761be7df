use tongxing_domain::facts::{CodeColour, CommuterKind, CommuterStatus, SiteKind, TestResult};
use tongxing_pass::{Algorithm, CommuterBadge, Pass, PassTest, RevocationSet, Signer, TrustList};

/// 2022-01-10T08:00:00Z
pub const T0: i64 = 1_641_801_600;

pub fn sample_pass() -> Pass {
    Pass {
        issuer: "BJ-HEALTH".into(),
        issued_at: T0,
        expires_at: T0 + 15 * 60,
        person_ref: (0u8..16).collect(),
        colour: CodeColour::Green,
        colour_reason: None,
        tests: vec![
            PassTest { sampled_at: T0 - 20 * 3600, site_kind: SiteKind::ServiceArea, result: TestResult::Negative },
            PassTest { sampled_at: T0 - 9 * 86400, site_kind: SiteKind::Community, result: TestResult::Negative },
        ],
        pending_site: None,
        commitment_letter: false,
        commuter: Some(CommuterBadge {
            kind: CommuterKind::Worker,
            status: CommuterStatus::Approved,
            valid_until: Some(T0 + 180 * 86400),
            first_check_done: true,
            next_test_due: chrono::NaiveDate::from_ymd_opt(2022, 1, 19),
        }),
    }
}

/// A signer, a trust list holding it (valid from a day before T0), and an empty revocation set.
pub fn setup(alg: Algorithm) -> (Signer, TrustList, RevocationSet) {
    let (signer, _) = Signer::generate(alg).unwrap();
    let mut trust = TrustList::new(1, T0);
    trust.add(signer.public_key().clone(), T0 - 86400).unwrap();
    (signer, trust, RevocationSet::empty())
}
