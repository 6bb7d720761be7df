//! The entry decision: a pure function of (facts, policy, check time). No clock, no storage.
//!
//! The order of the checks is the order an officer would explain them in: the code colour
//! first, then a positive result, then a valid negative test (commuters may use an older one
//! after their first check), then conditional entry on a pending service-area sample.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::facts::{CodeColour, Facts, SampleFact, SiteKind, TestResult};
use crate::policy::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Entry allowed on a signed commitment letter while a result is pending.
    Conditional,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Conditional => "conditional",
            Verdict::Deny => "deny",
        }
    }
}

/// Stable reason codes. Never renumber or rename: entry events, metrics and rules refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// Pass: negative test within the visitor window.
    NegativeWithinWindow,
    /// Pass: certified commuter, negative test within the commuter window.
    CommuterNegativeWithinWindow,
    /// Pass: certified commuter's first check, with a test within the first-check window.
    CommuterFirstCheck,
    /// Conditional: pending sample at a designated service-area test point, letter signed.
    PendingWithCommitment,
    CodeYellow,
    CodeRed,
    PositiveResult,
    TestTooOld,
    CommuterTestTooOld,
    FirstCheckNeeds48h,
    NoValidTest,
    /// Pending service-area sample, but no commitment letter yet.
    CommitmentLetterRequired,
    /// Informational: the person has a commuter certification that is not in force.
    CommuterNotActive,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NegativeWithinWindow => "NEGATIVE_WITHIN_WINDOW",
            Self::CommuterNegativeWithinWindow => "COMMUTER_NEGATIVE_WITHIN_WINDOW",
            Self::CommuterFirstCheck => "COMMUTER_FIRST_CHECK",
            Self::PendingWithCommitment => "PENDING_WITH_COMMITMENT",
            Self::CodeYellow => "CODE_YELLOW",
            Self::CodeRed => "CODE_RED",
            Self::PositiveResult => "POSITIVE_RESULT",
            Self::TestTooOld => "TEST_TOO_OLD",
            Self::CommuterTestTooOld => "COMMUTER_TEST_TOO_OLD",
            Self::FirstCheckNeeds48h => "FIRST_CHECK_NEEDS_48H",
            Self::NoValidTest => "NO_VALID_TEST",
            Self::CommitmentLetterRequired => "COMMITMENT_LETTER_REQUIRED",
            Self::CommuterNotActive => "COMMUTER_NOT_ACTIVE",
        }
    }
    pub const ALL: &'static [ReasonCode] = &[
        Self::NegativeWithinWindow,
        Self::CommuterNegativeWithinWindow,
        Self::CommuterFirstCheck,
        Self::PendingWithCommitment,
        Self::CodeYellow,
        Self::CodeRed,
        Self::PositiveResult,
        Self::TestTooOld,
        Self::CommuterTestTooOld,
        Self::FirstCheckNeeds48h,
        Self::NoValidTest,
        Self::CommitmentLetterRequired,
        Self::CommuterNotActive,
    ];
}

/// One reason of a decision. Messages are rendered from the code, the policy and the
/// checkpoint by [`Reason::message`], so that deciding allocates no text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    /// The sample the reason is about, as "lab/sample_id", if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    /// The check is a certified commuter's first pass: the store records it.
    pub records_commuter_first_check: bool,
}

fn sample_ref(s: &SampleFact) -> Option<String> {
    Some(format!("{}/{}", s.lab, s.sample_id))
}

fn reason(code: ReasonCode) -> Reason {
    Reason { code, sample: None }
}

/// Decides whether the person may enter at `at` under `policy`.
pub fn decide(facts: &Facts, policy: &Policy, at: DateTime<Utc>) -> Decision {
    let person = &facts.person;
    let mut notes = Vec::new();

    // 1. Code colour. A non-green colour that has lapsed counts as green.
    match person.colour_at(at) {
        CodeColour::Green => {}
        CodeColour::Yellow => return deny(vec![reason(ReasonCode::CodeYellow)]),
        CodeColour::Red => return deny(vec![reason(ReasonCode::CodeRed)]),
    }

    // Samples that exist at the check time (a replay must not see the future).
    let samples = || person.samples.iter().filter(|s| s.sampled_at <= at);

    // 2. The latest definitive result decides whether the person is positive.
    let latest_definitive = samples()
        .filter(|s| matches!(s.result, TestResult::Negative | TestResult::Positive))
        // On a tie in sampling time the positive one counts.
        .max_by_key(|s| (s.sampled_at, s.result == TestResult::Positive));
    if let Some(s) = latest_definitive
        && s.result == TestResult::Positive
    {
        return deny(vec![Reason { code: ReasonCode::PositiveResult, sample: sample_ref(s) }]);
    }

    // 3. Commuter certification in force?
    let commuter = person.commuter.as_ref();
    let active = person.commuter_at(at);
    if commuter.is_some() && !active {
        notes.push(reason(ReasonCode::CommuterNotActive));
    }
    let first_done = active && commuter.and_then(|c| c.first_checked_at).is_some_and(|t| t <= at);

    let window = if !active {
        policy.nat_window()
    } else if first_done {
        policy.commuter_window()
    } else {
        policy.commuter_first_check_window()
    };
    let latest_negative = latest_definitive.filter(|s| s.result == TestResult::Negative);
    if let Some(s) = latest_negative
        && s.sampled_at >= at - window
    {
        let code = match (active, first_done) {
            (false, _) => ReasonCode::NegativeWithinWindow,
            (true, true) => ReasonCode::CommuterNegativeWithinWindow,
            (true, false) => ReasonCode::CommuterFirstCheck,
        };
        let mut reasons = vec![Reason { code, sample: sample_ref(s) }];
        reasons.extend(notes);
        return Decision { verdict: Verdict::Pass, reasons, records_commuter_first_check: active && !first_done };
    }

    // 4. A pending sample from a designated service-area test point, recent enough.
    let pending_sa = samples()
        .filter(|s| {
            s.result == TestResult::Pending
                && s.site_kind == SiteKind::ServiceArea
                && policy.test_point(&s.site).is_some()
                && s.sampled_at >= at - policy.commitment_window()
        })
        .max_by_key(|s| s.sampled_at);
    if let Some(s) = pending_sa {
        if person.commitment_letter {
            let mut reasons = vec![Reason { code: ReasonCode::PendingWithCommitment, sample: sample_ref(s) }];
            reasons.extend(notes);
            return Decision { verdict: Verdict::Conditional, reasons, records_commuter_first_check: false };
        }
        let mut reasons = vec![Reason { code: ReasonCode::CommitmentLetterRequired, sample: sample_ref(s) }];
        reasons.extend(notes);
        return deny(reasons);
    }

    // 5. Deny, saying precisely why.
    let code = match latest_negative {
        Some(s) if active && !first_done && s.sampled_at >= at - policy.commuter_window() => {
            ReasonCode::FirstCheckNeeds48h
        }
        Some(_) if active => ReasonCode::CommuterTestTooOld,
        Some(_) => ReasonCode::TestTooOld,
        None => ReasonCode::NoValidTest,
    };
    let mut reasons = vec![Reason { code, sample: latest_negative.and_then(sample_ref) }];
    reasons.extend(notes);
    deny(reasons)
}

fn deny(reasons: Vec<Reason>) -> Decision {
    Decision { verdict: Verdict::Deny, reasons, records_commuter_first_check: false }
}

/// Language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Zh,
    En,
}

impl ReasonCode {
    /// What the person should do, without the policy's numbers (a rule set's own description
    /// says what was required). `test_point` names the nearest designated test point;
    /// `colour_reason` is the health authority's reason for a yellow or red code.
    pub fn advice(self, lang: Lang, test_point: Option<&str>, colour_reason: Option<&str>) -> String {
        let why = colour_reason.unwrap_or("-");
        let go_test = |lang| match (lang, test_point) {
            (Lang::Zh, Some(t)) => format!("请前往最近的{t}采样，签署承诺书后可先行进京。"),
            (Lang::Zh, None) => "请前往临京服务区检测点采样，签署承诺书后可先行进京。".to_string(),
            (Lang::En, Some(t)) => {
                format!("Get tested at the nearest test point, {t}; after signing the commitment letter you may enter.")
            }
            (Lang::En, None) => {
                "Get tested at a service-area test point; after signing the commitment letter you may enter."
                    .to_string()
            }
        };
        match (lang, self) {
            (Lang::Zh, Self::NegativeWithinWindow | Self::CommuterNegativeWithinWindow | Self::CommuterFirstCheck) => {
                "可以通行。".into()
            }
            (Lang::En, Self::NegativeWithinWindow | Self::CommuterNegativeWithinWindow | Self::CommuterFirstCheck) => {
                "You may pass.".into()
            }
            (Lang::Zh, Self::PendingWithCommitment) => "可有条件通行；结果出来前请减少外出。".into(),
            (Lang::En, Self::PendingWithCommitment) => {
                "You may enter; limit your movements until the result arrives.".into()
            }
            (Lang::Zh, Self::CodeYellow) => {
                format!("健康码为黄码（{why}），请按健康宝提示完成核酸检测或申诉。")
            }
            (Lang::En, Self::CodeYellow) => {
                format!("Yellow health code ({why}): follow the Health Kit's instructions to test or appeal.")
            }
            (Lang::Zh, Self::CodeRed) => format!("健康码为红码（{why}），请配合防疫人员处置。"),
            (Lang::En, Self::CodeRed) => {
                format!("Red health code ({why}): please follow the epidemic-control staff's instructions.")
            }
            (Lang::Zh, Self::PositiveResult) => "请配合防疫人员处置。".into(),
            (Lang::En, Self::PositiveResult) => "Please follow the epidemic-control staff's instructions.".into(),
            (lang, Self::TestTooOld | Self::CommuterTestTooOld | Self::FirstCheckNeeds48h | Self::NoValidTest) => {
                go_test(lang)
            }
            (Lang::Zh, Self::CommitmentLetterRequired) => {
                "签署《进（返）京人员承诺书》后可有条件通行：在采样的服务区检测点签署，或在手机“通行”中签署。".into()
            }
            (Lang::En, Self::CommitmentLetterRequired) => "Sign the entry commitment letter to enter conditionally: \
                 at the service-area test point where you were sampled, or on your phone in Tongxing."
                .into(),
            (Lang::Zh, Self::CommuterNotActive) => "按一般进京人员查验。".into(),
            (Lang::En, Self::CommuterNotActive) => "Checked as a visitor.".into(),
        }
    }

    /// Parses the stable code (e.g. `NO_VALID_TEST`).
    pub fn parse(s: &str) -> Option<ReasonCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Conditional, Verdict::Deny].into_iter().find(|v| v.as_str() == s)
    }
}

#[cfg(test)]
mod tests;
