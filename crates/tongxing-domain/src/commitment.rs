//! What follows a commitment letter: the states of a commitment and what a result does to it.
//! Pure: the store applies these decisions in the transaction that stores the result.

use crate::facts::{CodeColour, TestResult};

crate::facts::string_enum! {
    /// Where a signed commitment stands.
    CommitmentStatus {
        /// Signed; the sample's result is not known yet.
        Pending = "pending",
        /// The result came back negative.
        Fulfilled = "fulfilled",
        /// The result came back positive: an alert went out, the code turned red.
        Positive = "positive",
        /// No result by the deadline: an alert went out, the code turned yellow until it comes.
        Overdue = "overdue",
    }
}

/// The code change a result brings to a committed person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChange {
    /// Red, for a positive result (and an alert).
    Red,
    /// Back to green: the yellow an overdue commitment set is lifted by the negative result.
    LiftOverdue,
}

/// A result's effect on a commitment in `status`: its new status and the code change, or
/// `None` when nothing follows (a pending or invalid result, a commitment already ended).
pub fn on_result(status: CommitmentStatus, result: TestResult) -> Option<(CommitmentStatus, Option<CodeChange>)> {
    use CommitmentStatus::*;
    match (status, result) {
        (Pending, TestResult::Negative) => Some((Fulfilled, None)),
        (Overdue, TestResult::Negative) => Some((Fulfilled, Some(CodeChange::LiftOverdue))),
        (Pending | Overdue, TestResult::Positive) => Some((Positive, Some(CodeChange::Red))),
        _ => None,
    }
}

/// The reasons the system sets on a code, in both languages (a code's reason is one text).
pub const POSITIVE_REASON: &str = "核酸检测阳性（承诺书采样） / positive test (sample of a commitment letter)";
pub const OVERDUE_REASON: &str = "承诺书核酸结果逾期未出 / commitment letter: test result overdue";
pub const POOL_REASON: &str = "混检阳性，待单管复核 / pooled sample positive: individual retest required";

/// The colour a code change sets.
pub fn colour(change: CodeChange) -> CodeColour {
    match change {
        CodeChange::Red => CodeColour::Red,
        CodeChange::LiftOverdue => CodeColour::Green,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_end_commitments() {
        use CommitmentStatus::*;
        assert_eq!(on_result(Pending, TestResult::Negative), Some((Fulfilled, None)));
        assert_eq!(on_result(Pending, TestResult::Positive), Some((Positive, Some(CodeChange::Red))));
        assert_eq!(on_result(Overdue, TestResult::Negative), Some((Fulfilled, Some(CodeChange::LiftOverdue))));
        assert_eq!(on_result(Overdue, TestResult::Positive), Some((Positive, Some(CodeChange::Red))));
        assert_eq!(on_result(Pending, TestResult::Pending), None);
        assert_eq!(on_result(Pending, TestResult::Invalid), None);
        assert_eq!(on_result(Fulfilled, TestResult::Positive), None);
        assert_eq!(on_result(Positive, TestResult::Negative), None);
    }
}
