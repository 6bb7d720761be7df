//! Tongxing's domain: what the entry-control system knows and decides, with no I/O.
//!
//! Layout:
//! - [`ids`]: resident ID numbers (GB 11643-1999), other travel documents, and the GB/T 2260
//!   region table they are checked against; parsed once at the edge into newtypes.
//! - [`uscc`]: unified social credit codes of employers (GB 32100-2015).
//! - [`facts`]: what the system knows about a person at a check (code colour, commuter
//!   certification, test results): the input of a decision, and the snapshot an entry event keeps.
//! - [`policy`]: the entry policy as versioned data (windows, regions, designated test points).
//! - [`decision`]: the entry decision, a pure function of (facts, policy, check time).
//! - [`mask`]: masking of personal data for display.
//! - [`time`]: how times leave the system (RFC 3339 with +08:00).
//!
//! Time is always a value passed in: nothing in this crate reads a clock.

pub mod analytics;
pub mod auth;
pub mod commitment;
pub mod decision;
pub mod facts;
pub mod ids;
pub mod letter;
pub mod mask;
pub mod policy;
pub mod text;
pub mod time;
pub mod uscc;

pub use decision::{Decision, Reason, ReasonCode, Verdict, decide};
pub use facts::{CodeColour, CommuterFacts, CommuterStatus, PersonFacts, SampleFact, SiteKind, TestResult};
pub use ids::{Document, DocumentKind, IdError, ResidentId};
pub use policy::Policy;

/// The display zone of the system: Asia/Shanghai, UTC+8 all year (no daylight saving since 1991).
pub fn shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}
