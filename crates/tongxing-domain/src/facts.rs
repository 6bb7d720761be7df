//! What the system knows about a person at the moment of a check. A [`Facts`] value is the only
//! input of a decision besides the policy and the time, and entry events store it as their
//! snapshot so that any decision can be replayed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// Parses the snake_case name; the error lists what is accepted.
            pub fn parse(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($s => Ok($name::$variant),)+
                    other => Err(format!("{} is not one of: {}", $crate::text::quote(other), [$($s),+].join(", "))),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// Health-code colour (健康码).
    CodeColour { Green = "green", Yellow = "yellow", Red = "red" }
}

string_enum! {
    /// Result of a nucleic-acid test sample.
    TestResult { Pending = "pending", Negative = "negative", Positive = "positive", Invalid = "invalid" }
}

string_enum! {
    /// Kind of site where a sample was taken.
    SiteKind {
        Hospital = "hospital",
        Community = "community",
        /// 临京服务区检测点: a test point in a service area just outside the city.
        ServiceArea = "service_area",
    }
}

string_enum! {
    /// State of a commuter certification (通勤人员认证).
    CommuterStatus {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Suspended = "suspended",
        Revoked = "revoked",
        Expired = "expired",
    }
}

string_enum! {
    /// Why someone is in the commuter database.
    CommuterKind { Worker = "worker", Student = "student", EscortingParent = "escorting_parent" }
}

/// One sample with its latest result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleFact {
    pub lab: String,
    pub sample_id: String,
    pub sampled_at: DateTime<Utc>,
    pub site: String,
    pub site_kind: SiteKind,
    pub result: TestResult,
}

/// The person's commuter certification, if they ever applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommuterFacts {
    pub status: CommuterStatus,
    /// End of the certification's validity (exclusive); `None` while pending.
    pub valid_until: Option<DateTime<Utc>>,
    /// When the commuter first passed a check with a 48-hour test, if ever.
    pub first_checked_at: Option<DateTime<Utc>>,
}

impl CommuterFacts {
    /// Whether the certification is in force at `at`: approved and not past its validity.
    /// The one definition every caller uses (decisions, the facts document, passes, checks).
    pub fn in_force_at(&self, at: DateTime<Utc>) -> bool {
        self.status == CommuterStatus::Approved && self.valid_until.is_none_or(|u| at < u)
    }
}

/// The person's health code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeFacts {
    pub colour: CodeColour,
    pub reason: Option<String>,
    /// When a non-green colour lapses back to green (exclusive), if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

impl CodeFacts {
    /// Whether this colour still holds at `at` (a lapsed colour is green again).
    pub fn holds_at(&self, at: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| at < e)
    }
}

/// Everything a decision looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonFacts {
    /// Whether the system had any record of the person before the check.
    pub known: bool,
    /// `None`: no code ever set, which means green.
    pub code: Option<CodeFacts>,
    pub commuter: Option<CommuterFacts>,
    /// Samples taken in the look-back period of the policy, any order.
    pub samples: Vec<SampleFact>,
    /// A signed entry commitment letter (承诺书) covers the pending service-area sample.
    /// Until the letter flow exists this comes from the check request.
    #[serde(default)]
    pub commitment_letter: bool,
}

impl PersonFacts {
    /// The health-code colour in force at `at`: the code set, unless it has lapsed; green when
    /// none was ever set. The one definition every caller uses.
    pub fn colour_at(&self, at: DateTime<Utc>) -> CodeColour {
        match &self.code {
            Some(code) if code.holds_at(at) => code.colour,
            _ => CodeColour::Green,
        }
    }

    /// The reason of the colour in force at `at`, if it has one.
    pub fn colour_reason_at(&self, at: DateTime<Utc>) -> Option<&str> {
        self.code.as_ref().filter(|c| c.holds_at(at)).and_then(|c| c.reason.as_deref())
    }

    /// Whether the person is a certified commuter at `at`.
    pub fn commuter_at(&self, at: DateTime<Utc>) -> bool {
        self.commuter.as_ref().is_some_and(|c| c.in_force_at(at))
    }
}

/// The checkpoint a check happens at, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckpointFacts {
    pub id: String,
    /// Road code (e.g. "G4"), used to point people to the nearest service-area test point.
    pub road: Option<String>,
}

/// The input of one decision besides policy and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub person: PersonFacts,
    pub checkpoint: CheckpointFacts,
}
