//! Roles and what each may do. Tokens carry a role and, where it applies, a scope: the labs a
//! lab token may report for, the checkpoints an officer token may check at. An empty scope
//! means "all" and is meant for central roles.

use crate::facts::string_enum;

string_enum! {
    /// A caller's role.
    Role {
        Admin = "admin",
        Lab = "lab",
        TestPoint = "test_point",
        Officer = "officer",
        Registry = "registry",
        Health = "health",
        Analyst = "analyst",
        /// A person signed in with a one-time code: sees their own pass and their family's.
        Citizen = "citizen",
    }
}

/// Everything the API lets a caller do, for the permission table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RegisterPerson,
    /// Read a person's record (always written to the access log).
    ReadPerson,
    /// See unmasked personal data in a person's record.
    RevealPerson,
    SubmitResults,
    SetCode,
    ApplyCommuter,
    DecideCommuter,
    ImportCommuters,
    ManageCheckpoints,
    ListCheckpoints,
    Check,
    ReadEntries,
    ReadStats,
    ManageTokens,
    /// Publish, activate and dry-run entry policies.
    PublishPolicy,
    /// Approve or refuse a citizen's link to a minor (a registry officer).
    ReviewFamilyLinks,
    /// Act as a signed-in citizen: one's own pass, one's family's.
    ActAsCitizen,
    /// List alerts and follow their stream.
    ReadAlerts,
    /// Acknowledge and resolve alerts, follow their live stream.
    HandleAlerts,
    /// Register, rotate and disable webhooks.
    ManageWebhooks,
    /// See the servers' shared state (leases).
    ReadOperations,
    /// See the people behind an aggregate count (always written to the access log).
    DrillDown,
}

impl Action {
    /// What the action is, in words, for a refusal ("the role 'lab' may not read a person's record").
    pub fn describe(self) -> &'static str {
        use Action::*;
        match self {
            RegisterPerson => "register people",
            ReadPerson => "read a person's record",
            RevealPerson => "see unmasked personal data",
            SubmitResults => "submit test results",
            SetCode => "set health-code colours",
            ApplyCommuter => "file commuter applications",
            DecideCommuter => "decide on commuter certifications",
            ImportCommuters => "import commuters",
            ManageCheckpoints => "register checkpoints",
            ListCheckpoints => "list checkpoints",
            Check => "check people at a checkpoint",
            ReadEntries => "read entry events",
            ReadStats => "read statistics",
            ManageTokens => "manage tokens",
            PublishPolicy => "publish, activate or dry-run entry policies",
            ReviewFamilyLinks => "approve a citizen's link to a minor",
            ActAsCitizen => "act as a signed-in citizen",
            ReadAlerts => "read alerts",
            HandleAlerts => "handle alerts",
            ManageWebhooks => "manage webhooks",
            ReadOperations => "read the servers' operational state",
            DrillDown => "see the people behind a count",
        }
    }
}

impl Role {
    pub fn can(self, action: Action) -> bool {
        use Action::*;
        use Role::*;
        match action {
            RegisterPerson => matches!(self, Admin | Registry | Health),
            ReadPerson => matches!(self, Admin | Registry | Health),
            RevealPerson => matches!(self, Registry | Health),
            SubmitResults => matches!(self, Admin | Lab | TestPoint),
            SetCode => matches!(self, Health),
            ApplyCommuter => matches!(self, Admin | Registry),
            DecideCommuter => matches!(self, Registry),
            ImportCommuters => matches!(self, Admin | Registry),
            ManageCheckpoints => matches!(self, Admin),
            ListCheckpoints => !matches!(self, Citizen),
            Check => matches!(self, Admin | Officer),
            ReadEntries => matches!(self, Admin | Registry),
            ReadStats => matches!(self, Admin | Analyst | Health),
            ManageTokens => matches!(self, Admin),
            PublishPolicy => matches!(self, Health),
            ReviewFamilyLinks => matches!(self, Registry),
            ActAsCitizen => matches!(self, Citizen),
            ReadAlerts => matches!(self, Health | Analyst),
            HandleAlerts => matches!(self, Health),
            ManageWebhooks => matches!(self, Admin | Health),
            ReadOperations => matches!(self, Admin),
            DrillDown => matches!(self, Health),
        }
    }
}

/// Whether a scoped token covers `item` (a lab code or a checkpoint id).
pub fn in_scope(scope: &[String], item: &str) -> bool {
    scope.is_empty() || scope.iter().any(|s| s == item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_of_duties() {
        assert!(!Role::Lab.can(Action::ReadPerson));
        assert!(!Role::Officer.can(Action::SetCode));
        assert!(!Role::Analyst.can(Action::ReadPerson));
        assert!(!Role::Analyst.can(Action::ReadEntries));
        assert!(Role::Health.can(Action::SetCode));
        assert!(Role::Officer.can(Action::Check));
        assert!(!Role::Admin.can(Action::RevealPerson));
        // Aggregates for the analyst; the people behind them for the health authority only.
        assert!(Role::Analyst.can(Action::ReadStats));
        assert!(!Role::Analyst.can(Action::DrillDown));
        assert!(Role::Health.can(Action::DrillDown));
    }

    #[test]
    fn scopes() {
        assert!(in_scope(&[], "LAB1"));
        assert!(in_scope(&["LAB1".into()], "LAB1"));
        assert!(!in_scope(&["LAB1".into()], "LAB2"));
    }
}
