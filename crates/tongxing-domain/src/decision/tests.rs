//! The foundation issue's decision table, row by row, plus properties.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::facts::*;

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 11, 18, 8, 0, 0).unwrap()
}

fn sample(id: &str, age: Duration, kind: SiteKind, site: &str, result: TestResult) -> SampleFact {
    SampleFact {
        lab: "LAB1".into(),
        sample_id: id.into(),
        sampled_at: t() - age,
        site: site.into(),
        site_kind: kind,
        result,
    }
}
fn negative(age: Duration) -> SampleFact {
    sample(&format!("n{}", age.num_minutes()), age, SiteKind::Hospital, "H1", TestResult::Negative)
}

fn person(samples: Vec<SampleFact>) -> Facts {
    Facts {
        person: PersonFacts { known: true, code: None, commuter: None, samples, commitment_letter: false },
        checkpoint: CheckpointFacts { id: "CP1".into(), road: Some("京哈高速".into()) },
    }
}

fn commuter(status: CommuterStatus, first: Option<DateTime<Utc>>, samples: Vec<SampleFact>) -> Facts {
    let mut f = person(samples);
    f.person.commuter =
        Some(CommuterFacts { status, valid_until: Some(t() + Duration::days(100)), first_checked_at: first });
    f
}

fn policy() -> Policy {
    Policy::beijing_2021_11_17()
}

fn verdict(f: &Facts) -> (Verdict, ReasonCode) {
    let d = decide(f, &policy(), t());
    (d.verdict, d.reasons[0].code)
}

#[test]
fn green_negative_47h_passes() {
    assert_eq!(
        verdict(&person(vec![negative(Duration::hours(47))])),
        (Verdict::Pass, ReasonCode::NegativeWithinWindow)
    );
}

#[test]
fn window_is_inclusive_at_48h() {
    assert_eq!(verdict(&person(vec![negative(Duration::hours(48))])).0, Verdict::Pass);
    assert_eq!(verdict(&person(vec![negative(Duration::hours(48) + Duration::seconds(1))])).0, Verdict::Deny);
}

#[test]
fn negative_49h_is_too_old() {
    assert_eq!(verdict(&person(vec![negative(Duration::hours(49))])), (Verdict::Deny, ReasonCode::TestTooOld));
}

#[test]
fn no_test_or_only_pending_ordinary_sites() {
    assert_eq!(verdict(&person(vec![])), (Verdict::Deny, ReasonCode::NoValidTest));
    let pending = sample("p", Duration::hours(2), SiteKind::Community, "C1", TestResult::Pending);
    let mut f = person(vec![pending]);
    f.person.commitment_letter = true;
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::NoValidTest));
}

#[test]
fn yellow_or_red_denies_whatever_the_tests() {
    for (colour, code) in [(CodeColour::Yellow, ReasonCode::CodeYellow), (CodeColour::Red, ReasonCode::CodeRed)] {
        let mut f = person(vec![negative(Duration::hours(1))]);
        f.person.code = Some(CodeFacts { colour, reason: Some("弹窗".into()), expires_at: None });
        assert_eq!(verdict(&f), (Verdict::Deny, code));
    }
}

#[test]
fn lapsed_yellow_counts_as_green() {
    let mut f = person(vec![negative(Duration::hours(1))]);
    f.person.code =
        Some(CodeFacts { colour: CodeColour::Yellow, reason: None, expires_at: Some(t() - Duration::hours(1)) });
    assert_eq!(verdict(&f).0, Verdict::Pass);
}

#[test]
fn commuter_first_check_needs_48h() {
    let f = commuter(CommuterStatus::Approved, None, vec![negative(Duration::days(3))]);
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::FirstCheckNeeds48h));
}

#[test]
fn commuter_first_check_with_20h_passes_and_is_recorded() {
    let f = commuter(CommuterStatus::Approved, None, vec![negative(Duration::hours(20))]);
    let d = decide(&f, &policy(), t());
    assert_eq!(d.verdict, Verdict::Pass);
    assert_eq!(d.reasons[0].code, ReasonCode::CommuterFirstCheck);
    assert!(d.records_commuter_first_check);
}

#[test]
fn commuter_later_days_13_days_passes() {
    let f = commuter(CommuterStatus::Approved, Some(t() - Duration::days(5)), vec![negative(Duration::days(13))]);
    let d = decide(&f, &policy(), t());
    assert_eq!((d.verdict, d.reasons[0].code), (Verdict::Pass, ReasonCode::CommuterNegativeWithinWindow));
    assert!(!d.records_commuter_first_check);
}

#[test]
fn commuter_15_days_is_too_old() {
    let f = commuter(CommuterStatus::Approved, Some(t() - Duration::days(5)), vec![negative(Duration::days(15))]);
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::CommuterTestTooOld));
}

#[test]
fn inactive_certifications_are_visitors() {
    for status in [
        CommuterStatus::Pending,
        CommuterStatus::Rejected,
        CommuterStatus::Suspended,
        CommuterStatus::Revoked,
        CommuterStatus::Expired,
    ] {
        let f = commuter(status, Some(t() - Duration::days(5)), vec![negative(Duration::days(13))]);
        let d = decide(&f, &policy(), t());
        assert_eq!((d.verdict, d.reasons[0].code), (Verdict::Deny, ReasonCode::TestTooOld), "{status}");
        assert!(d.reasons.iter().any(|r| r.code == ReasonCode::CommuterNotActive));
        let f = commuter(status, Some(t() - Duration::days(5)), vec![negative(Duration::hours(20))]);
        assert_eq!(verdict(&f), (Verdict::Pass, ReasonCode::NegativeWithinWindow), "{status}");
    }
    // Approved but past its validity.
    let mut f = commuter(CommuterStatus::Approved, Some(t() - Duration::days(5)), vec![negative(Duration::days(13))]);
    f.person.commuter.as_mut().unwrap().valid_until = Some(t());
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::TestTooOld));
}

#[test]
fn latest_positive_wins_over_older_negative() {
    let pos = sample("p", Duration::hours(10), SiteKind::Hospital, "H1", TestResult::Positive);
    let f = person(vec![negative(Duration::hours(20)), pos]);
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::PositiveResult));
    // A newer negative after an older positive decides on its own.
    let pos = sample("p", Duration::hours(30), SiteKind::Hospital, "H1", TestResult::Positive);
    assert_eq!(verdict(&person(vec![negative(Duration::hours(20)), pos])).0, Verdict::Pass);
}

#[test]
fn pending_service_area_sample_with_letter_is_conditional() {
    let sa = sample("sa", Duration::hours(3), SiteKind::ServiceArea, "SA-JINGHA-XIANGHE", TestResult::Pending);
    let mut f = person(vec![negative(Duration::hours(60)), sa.clone()]);
    f.person.commitment_letter = true;
    assert_eq!(verdict(&f), (Verdict::Conditional, ReasonCode::PendingWithCommitment));
    f.person.commitment_letter = false;
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::CommitmentLetterRequired));
    // Older than 24 h: no longer conditional.
    let old = sample("sa", Duration::hours(25), SiteKind::ServiceArea, "SA-JINGHA-XIANGHE", TestResult::Pending);
    let mut f = person(vec![old]);
    f.person.commitment_letter = true;
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::NoValidTest));
    // Not a designated test point.
    let other = sample("sa", Duration::hours(3), SiteKind::ServiceArea, "SOMEWHERE", TestResult::Pending);
    let mut f = person(vec![other]);
    f.person.commitment_letter = true;
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::NoValidTest));
}

#[test]
fn unknown_person_is_denied_not_an_error() {
    let mut f = person(vec![]);
    f.person.known = false;
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::NoValidTest));
}

#[test]
fn future_samples_are_ignored() {
    let f = person(vec![negative(Duration::hours(-1))]);
    assert_eq!(verdict(&f), (Verdict::Deny, ReasonCode::NoValidTest));
}

#[test]
fn advice_names_the_nearest_test_point_and_the_colour_reason() {
    let d = decide(&person(vec![]), &policy(), t());
    let tp = policy().test_point_on_road("京哈高速").cloned().unwrap();
    let zh = d.reasons[0].code.advice(Lang::Zh, Some(&tp.name_zh), None);
    assert!(zh.contains("香河"), "{zh}");
    let en = d.reasons[0].code.advice(Lang::En, Some(&tp.name_en), None);
    assert!(en.contains("Xianghe"), "{en}");
    let y = ReasonCode::CodeYellow.advice(Lang::Zh, None, Some("弹窗"));
    assert!(y.contains("弹窗"), "{y}");
    for code in ReasonCode::ALL {
        assert!(!code.advice(Lang::Zh, None, None).is_empty());
        assert!(!code.advice(Lang::En, None, None).is_empty());
        assert_eq!(ReasonCode::parse(code.as_str()), Some(*code));
    }
}

fn arb_sample() -> impl Strategy<Value = SampleFact> {
    (
        0i64..(20 * 24 * 60),
        prop::sample::select(SiteKind::ALL.to_vec()),
        prop::sample::select(TestResult::ALL.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(mins, kind, result, designated)| {
            let site = if designated { "SA-JINGHA-XIANGHE" } else { "H1" };
            sample(&format!("s{mins}"), Duration::minutes(mins - 60), kind, site, result)
        })
}

proptest! {
    /// Nobody with a non-green code in force, or whose latest result is positive, ever passes;
    /// every pass rests on a negative sample inside the longest window.
    #[test]
    fn pass_is_always_justified(samples in prop::collection::vec(arb_sample(), 0..6),
                                colour in prop::sample::select(CodeColour::ALL.to_vec()),
                                is_commuter in any::<bool>(), first in any::<bool>(), letter in any::<bool>()) {
        let mut f = if is_commuter {
            commuter(CommuterStatus::Approved, first.then(|| t() - Duration::days(1)), samples)
        } else {
            person(samples)
        };
        f.person.code = Some(CodeFacts { colour, reason: None, expires_at: None });
        f.person.commitment_letter = letter;
        let d = decide(&f, &policy(), t());
        prop_assert!(!d.reasons.is_empty());
        if d.verdict != Verdict::Deny {
            prop_assert_eq!(colour, CodeColour::Green);
        }
        if d.verdict == Verdict::Pass {
            let sample = d.reasons[0].sample.clone().unwrap();
            let s = f.person.samples.iter().find(|s| format!("{}/{}", s.lab, s.sample_id) == sample).unwrap();
            prop_assert_eq!(s.result, TestResult::Negative);
            prop_assert!(s.sampled_at <= t() && s.sampled_at >= t() - Duration::days(14));
            prop_assert!(!f.person.samples.iter().any(|o| o.result == TestResult::Positive && o.sampled_at > s.sampled_at && o.sampled_at <= t()));
        }
        if d.verdict == Verdict::Conditional {
            prop_assert!(letter);
        }
    }

    /// A decision depends on the facts, not on the order samples are listed in.
    #[test]
    fn sample_order_does_not_matter(mut samples in prop::collection::vec(arb_sample(), 0..6)) {
        let a = decide(&person(samples.clone()), &policy(), t()).verdict;
        samples.reverse();
        prop_assert_eq!(a, decide(&person(samples), &policy(), t()).verdict);
    }
}
