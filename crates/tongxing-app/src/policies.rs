//! Entry policies as the health authority handles them: a candidate rule set read and
//! validated (a refusal names the rule or the field), dry-run over recorded checks, published,
//! activated. Publication, activation and dry runs are written to the policy audit log. The API
//! and the health authority's page call these.

use chrono::{DateTime, Utc};
use tongxing_domain::text::{PolicyId, PolicyVersion};
use tongxing_domain::time;
use tongxing_rules::{RuleSet, RuleSetError};

use crate::dryrun::{DryRunReport, dry_run};
use crate::input::At;
use crate::{App, AppError, AppResult};

/// Reads and validates a rule set from its JSON text; a refusal names the rule
/// (`rules[GR-CN-0001]`) or the field.
pub fn parse_rule_set(text: &str) -> AppResult<RuleSet> {
    let rs = match RuleSet::from_json(text) {
        Ok(rs) => rs,
        Err(RuleSetError::Rule { identifier, reason }) => {
            return Err(AppError::invalid(
                format!("rules[{}]", tongxing_domain::text::shorten(&identifier)),
                tongxing_domain::text::shorten_quoted(&reason),
            ));
        }
        Err(RuleSetError::Field { field, reason }) => {
            return Err(AppError::invalid(field, tongxing_domain::text::shorten_quoted(&reason)));
        }
        Err(e) => return Err(AppError::invalid("body", tongxing_domain::text::shorten_quoted(&e.to_string()))),
    };
    PolicyId::parse(rs.id()).at("id")?;
    PolicyVersion::parse(rs.version()).at("version")?;
    Ok(rs)
}

impl App {
    /// Publishes a validated rule set (not yet in force); `true` when it is new. A built-in
    /// version cannot be published again.
    pub async fn publish_policy(&self, rs: &RuleSet, text: &str, by: &str, now: DateTime<Utc>) -> AppResult<bool> {
        if tongxing_rules::is_builtin(rs.id(), rs.version()) {
            return Err(AppError::Conflict(format!(
                "{} version {} is built in; publish a new version",
                rs.id(),
                rs.version()
            )));
        }
        Ok(self.store.publish_policy(rs.id(), rs.version(), text, by, now).await?)
    }

    /// Activates a published rule set: it decides checks from its `valid_from`, here at once and
    /// on the other servers at their next reload.
    pub async fn activate_policy(
        &self,
        id: &PolicyId,
        version: &PolicyVersion,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        self.store.activate_policy(id.as_str(), version.as_str(), by, now).await?;
        self.reload_rules().await?;
        Ok(())
    }

    /// Replays the checks recorded from `since` to `until` under a candidate and reports what
    /// would change; the dry run is written to the audit log.
    pub async fn dry_run_policy(
        &self,
        candidate: &RuleSet,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        sample: usize,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<DryRunReport> {
        if since >= until {
            return Err(AppError::invalid("since", "must be before until"));
        }
        let report = dry_run(&self.store, candidate, since, until, sample).await?;
        let detail = format!(
            "{} events from {} to {}: {} changed ({} stricter, {} looser)",
            report.events,
            time::rfc3339(since),
            time::rfc3339(until),
            report.changed,
            report.stricter,
            report.looser
        );
        self.store.audit_policy(now, by, "dry-run", candidate.id(), candidate.version(), Some(&detail)).await?;
        Ok(report)
    }
}
