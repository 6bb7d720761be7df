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

/// The person's health code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeFacts {
    pub colour: CodeColour,
    pub reason: Option<String>,
    /// When a non-green colour lapses back to green (exclusive), if it does.
    pub expires_at: Option<DateTime<Utc>>,
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
