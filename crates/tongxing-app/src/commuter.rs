//! The commuter database (通勤人员数据库): an application (by a registry officer for someone, or
//! by the citizen for themselves), checked against the policy at once; the registry officer's
//! decisions; the queue of applications with their evidence; a person's own certification and
//! its history.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tongxing_domain::facts::CommuterStatus;
use tongxing_domain::ids::{Document, RegionCode};
use tongxing_domain::text::Reason;
use tongxing_domain::{mask, time};
use tongxing_store::PersonInput;
use utoipa::ToSchema;

use crate::input::{RawApplication, application};
use crate::{App, AppError, AppResult};

/// A registry officer's decisions on a certification.
pub const ACTIONS: &[&str] = &["approve", "reject", "suspend", "reinstate", "revoke", "expire"];

/// A certification's state after an application or a decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommuterState {
    pub status: String,
    #[serde(serialize_with = "time::serialize_opt")]
    pub valid_until: Option<DateTime<Utc>>,
}

/// One step of a certification's history, as its holder sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommuterStep {
    #[serde(serialize_with = "time::serialize")]
    pub at: DateTime<Utc>,
    /// pending (applied), approved, rejected, suspended, revoked or expired.
    pub status: String,
    pub reason: Option<String>,
}

/// A person's own certification and how it got there.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyCommuter {
    /// worker, student or escorting_parent.
    pub kind: String,
    pub status: String,
    pub residence_region: String,
    pub residence_region_name: Option<String>,
    pub residence_proof: String,
    pub employer_name: String,
    pub work_region: String,
    pub work_region_name: Option<String>,
    #[serde(serialize_with = "time::serialize")]
    pub applied_at: DateTime<Utc>,
    /// The reason of the last decision (a rejection's, a suspension's).
    pub decision_reason: Option<String>,
    #[serde(serialize_with = "time::serialize_opt")]
    pub valid_until: Option<DateTime<Utc>>,
    pub history: Vec<CommuterStep>,
}

/// An application awaiting a registry officer, with its evidence (personal data masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedApplication {
    /// The person's id: names the application in a decision made from the queue.
    pub person_id: i64,
    pub name: Option<String>,
    pub document: String,
    pub kind: String,
    pub status: String,
    pub residence_region: String,
    pub residence_region_name: Option<String>,
    /// The kind of proof of residence shown: household_register, property_deed, lease or
    /// residents_committee_letter.
    pub residence_proof: String,
    pub employer_name: String,
    /// The employer's unified social credit code (checked when filed).
    pub employer_uscc: String,
    pub work_region: String,
    pub work_region_name: Option<String>,
    #[serde(serialize_with = "time::serialize")]
    pub applied_at: DateTime<Utc>,
    pub decision_reason: Option<String>,
    #[serde(serialize_with = "time::serialize_opt")]
    pub valid_until: Option<DateTime<Utc>>,
}

/// A decision's new state and its reason: reject, suspend and revoke need one.
fn decision(action: &str, reason: Option<&str>) -> AppResult<(CommuterStatus, Option<String>)> {
    let action = action.trim();
    let (to, needs_reason) = match action {
        "approve" | "reinstate" => (CommuterStatus::Approved, false),
        "reject" => (CommuterStatus::Rejected, true),
        "suspend" => (CommuterStatus::Suspended, true),
        "revoke" => (CommuterStatus::Revoked, true),
        "expire" => (CommuterStatus::Expired, false),
        other => {
            return Err(AppError::invalid(
                "action",
                format!("{} is not one of: {}", tongxing_domain::text::quote(other), ACTIONS.join(", ")),
            ));
        }
    };
    let reason = crate::input::optional("reason", reason, Reason::parse)?.map(Reason::into_string);
    if needs_reason && reason.is_none() {
        return Err(AppError::invalid("reason", format!("a reason is required to {action}")));
    }
    Ok((to, reason))
}

fn region_name(code: &str) -> Option<String> {
    RegionCode::parse(code).ok().map(|r| r.name().to_string())
}

impl App {
    /// Files an application for the person of `document`: refused at once (naming the field) if
    /// the residence is not in the surrounding regions or the workplace not in the city;
    /// otherwise pending review. `by` is the token that filed it.
    pub async fn apply_commuter(
        &self,
        document: Document,
        raw: &RawApplication<'_>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CommuterState> {
        let policy = self.policy_at(now)?;
        let parsed = application(raw, policy, "")?;
        let app = parsed.application;
        let person = PersonInput {
            document,
            name: parsed.name,
            phone: parsed.phone,
            residence_region: Some(app.residence_region),
        };
        self.store.apply_commuter(&person, &app, by, now).await?;
        Ok(CommuterState { status: CommuterStatus::Pending.to_string(), valid_until: None })
    }

    /// A registry officer's decision on the certification of the person of `document`.
    pub async fn decide_commuter(
        &self,
        document: &Document,
        action: &str,
        reason: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CommuterState> {
        // The decision is checked before anyone is looked up: bad input is named first.
        decision(action, reason)?;
        let person = self
            .store
            .person(&document.key())
            .await?
            .ok_or_else(|| AppError::NotFound("no person is registered with this document".into()))?;
        self.decide_commuter_of(person.id, action, reason, by, now).await
    }

    /// A registry officer's decision on a person's certification (from the queue). `action` is
    /// one of [`ACTIONS`]; reject, suspend and revoke need a reason.
    pub async fn decide_commuter_of(
        &self,
        person_id: i64,
        action: &str,
        reason: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CommuterState> {
        let policy = self.policy_at(now)?;
        let (to, reason) = decision(action, reason)?;
        if self.store.commuter(person_id).await?.is_none() {
            return Err(AppError::NotFound("this person has no commuter application".into()));
        }
        let valid_until = (action.trim() == "approve").then(|| now + Duration::days(policy.commuter_validity_days));
        self.change_commuter(person_id, to, reason.as_deref(), valid_until, by, now).await?;
        let rec = self.store.commuter(person_id).await?;
        Ok(CommuterState { status: to.to_string(), valid_until: rec.and_then(|r| r.valid_until) })
    }

    /// A person's own certification, with its history (who decided is not shown: a token id
    /// says nothing to the holder).
    pub async fn my_commuter(&self, person_id: i64) -> AppResult<Option<MyCommuter>> {
        let Some(c) = self.store.commuter(person_id).await? else { return Ok(None) };
        let history = self
            .store
            .commuter_history(person_id)
            .await?
            .into_iter()
            .map(|h| CommuterStep { at: h.at, status: h.state, reason: h.reason })
            .collect();
        Ok(Some(MyCommuter {
            kind: c.kind,
            status: c.status.to_string(),
            residence_region_name: region_name(&c.residence_region),
            residence_region: c.residence_region,
            residence_proof: c.residence_proof,
            employer_name: c.employer_name,
            work_region_name: region_name(&c.work_region),
            work_region: c.work_region,
            applied_at: c.applied_at,
            decision_reason: c.decision_reason,
            valid_until: c.valid_until,
            history,
        }))
    }

    /// Certifications in `status` (the queue: pending), oldest application first, masked.
    pub async fn commuter_queue(&self, status: CommuterStatus, limit: i64) -> AppResult<Vec<QueuedApplication>> {
        Ok(self
            .store
            .commuters_in(status, limit.clamp(1, 1000))
            .await?
            .into_iter()
            .map(|(p, c)| QueuedApplication {
                person_id: p.id,
                name: p.name.as_deref().map(mask::name),
                document: mask::document_number(&p.doc_number),
                kind: c.kind,
                status: c.status.to_string(),
                residence_region_name: region_name(&c.residence_region),
                residence_region: c.residence_region,
                residence_proof: c.residence_proof,
                employer_name: c.employer_name,
                employer_uscc: c.employer_uscc,
                work_region_name: region_name(&c.work_region),
                work_region: c.work_region,
                applied_at: c.applied_at,
                decision_reason: c.decision_reason,
                valid_until: c.valid_until,
            })
            .collect())
    }
}
