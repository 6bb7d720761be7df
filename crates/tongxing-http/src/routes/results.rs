//! Test results from labs and test points, one at a time or in batches. `(lab, sample_id)`
//! identifies a sample; re-sending it changes nothing; a changed record is a correction.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::facts::{SiteKind, TestResult};
use tongxing_store::{SampleInput, SampleOutcome, SampleRecord};
use utoipa::ToSchema;

use super::{DocumentRef, parse_document};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, JsonBody};

/// How far ahead of the server's clock a sampling time may be (clock skew between systems).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);
/// The most rows one batch request may carry.
pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResultInput {
    /// The lab's code, e.g. "BJ-LAB-017".
    pub lab: String,
    /// The lab's own sample identifier (the tube's bar code).
    pub sample_id: String,
    #[serde(flatten)]
    pub document: DocumentRef,
    /// RFC 3339 with an offset, e.g. 2021-11-17T08:30:00+08:00.
    pub sampled_at: String,
    /// The site's code; designated service-area test points use the policy's ids (SA-...).
    pub site: String,
    /// hospital, community or service_area.
    pub site_kind: String,
    /// pending, negative, positive or invalid.
    pub result: String,
}

fn code(field: &str, v: &str, max: usize) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    if v.len() > max || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)) {
        return Err(ApiError::invalid(field, format!("1 to {max} letters, digits, '-', '_', '.' or '/'")));
    }
    Ok(v.to_string())
}

/// Validates one result; errors name the field, prefixed by `at`. `sampled_at` is already
/// parsed (the CSV importer reads local times; the API RFC 3339).
pub fn parse_sample(
    r: &ResultInput,
    sampled_at: DateTime<Utc>,
    at: &str,
    now: DateTime<Utc>,
) -> Result<SampleInput, ApiError> {
    let lab = code(&format!("{at}lab"), &r.lab, 32)?;
    let sample_id = code(&format!("{at}sample_id"), &r.sample_id, 64)?;
    let document = parse_document(&r.document, at, now)?;
    if sampled_at > now + CLOCK_SKEW {
        return Err(ApiError::invalid(format!("{at}sampled_at"), format!("{sampled_at} is in the future")));
    }
    let site = code(&format!("{at}site"), &r.site, 64)?;
    let site_kind = SiteKind::parse(&r.site_kind).map_err(|e| ApiError::invalid(format!("{at}site_kind"), e))?;
    let result = TestResult::parse(&r.result).map_err(|e| ApiError::invalid(format!("{at}result"), e))?;
    Ok(SampleInput { lab, sample_id, document, sampled_at, site, site_kind, result })
}

fn parse_rfc3339(field: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(v.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ApiError::invalid(field, format!("'{v}' is not RFC 3339 with an offset, e.g. 2021-11-17T08:30:00+08:00"))
    })
}

fn validate(caller: &Caller, r: &ResultInput, at: &str, now: DateTime<Utc>) -> Result<SampleInput, ApiError> {
    let sampled_at = parse_rfc3339(&format!("{at}sampled_at"), &r.sampled_at)?;
    let s = parse_sample(r, sampled_at, at, now)?;
    caller.require_scope("lab", &s.lab)?;
    Ok(s)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// accepted (new), unchanged (already had exactly this) or corrected.
    pub outcome: String,
}

fn outcome_str(o: SampleOutcome) -> &'static str {
    match o {
        SampleOutcome::Accepted => "accepted",
        SampleOutcome::Unchanged => "unchanged",
        SampleOutcome::Corrected => "corrected",
    }
}

/// Submits one sample and its result.
#[utoipa::path(post, path = "/api/v1/results", tag = "results", request_body = ResultInput,
    responses((status = 200, body = Submitted), (status = 422, body = crate::error::Problem)))]
pub async fn submit_one(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<ResultInput>,
) -> ApiResult<Json<Submitted>> {
    caller.require(Action::SubmitResults)?;
    let now = Utc::now();
    let input = validate(&caller, &r, "", now)?;
    let outcome = s.store.submit_samples(std::slice::from_ref(&input), &caller.token_id, now).await?[0];
    s.metrics.sample(outcome_str(outcome), 1);
    Ok(Json(Submitted { outcome: outcome_str(outcome).into() }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Batch {
    pub results: Vec<ResultInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rejected {
    /// Index of the row in `results`.
    pub index: usize,
    pub field: Option<String>,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchReport {
    pub accepted: usize,
    pub unchanged: usize,
    pub corrected: usize,
    pub rejected: Vec<Rejected>,
    /// One entry per row: accepted, unchanged, corrected or rejected.
    pub outcomes: Vec<String>,
}

/// Submits up to 10,000 results. Bad rows are rejected one by one with the reason; the good
/// ones are written in one transaction: when this answers 200, all of them are stored.
#[utoipa::path(post, path = "/api/v1/results/batch", tag = "results", request_body = Batch,
    responses((status = 200, body = BatchReport), (status = 422, body = crate::error::Problem)))]
pub async fn submit_batch(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<Batch>,
) -> ApiResult<Json<BatchReport>> {
    caller.require(Action::SubmitResults)?;
    if b.results.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "results",
            format!("at most {MAX_BATCH} rows per request, got {}", b.results.len()),
        ));
    }
    let now = Utc::now();
    let mut inputs = Vec::with_capacity(b.results.len());
    let mut slots: Vec<Option<usize>> = Vec::with_capacity(b.results.len());
    let mut rejected = Vec::new();
    for (i, r) in b.results.iter().enumerate() {
        match validate(&caller, r, "", now) {
            Ok(input) => {
                slots.push(Some(inputs.len()));
                inputs.push(input);
            }
            Err(e) => {
                slots.push(None);
                let (field, reason) = match e {
                    ApiError::Invalid { field, reason } => (Some(field), reason),
                    other => (None, other.to_string()),
                };
                rejected.push(Rejected { index: i, field, reason });
            }
        }
    }
    let outcomes = s.store.submit_samples(&inputs, &caller.token_id, now).await?;
    let mut report =
        BatchReport { accepted: 0, unchanged: 0, corrected: 0, rejected, outcomes: Vec::with_capacity(slots.len()) };
    for slot in slots {
        let o = match slot {
            Some(j) => {
                let o = outcomes[j];
                match o {
                    SampleOutcome::Accepted => report.accepted += 1,
                    SampleOutcome::Unchanged => report.unchanged += 1,
                    SampleOutcome::Corrected => report.corrected += 1,
                }
                outcome_str(o)
            }
            None => "rejected",
        };
        report.outcomes.push(o.into());
    }
    for (name, n) in [
        ("accepted", report.accepted),
        ("unchanged", report.unchanged),
        ("corrected", report.corrected),
        ("rejected", report.rejected.len()),
    ] {
        s.metrics.sample(name, n as u64);
    }
    Ok(Json(report))
}

/// Every version of one sample, oldest first (the lab that owns it, or the health authority).
#[utoipa::path(get, path = "/api/v1/results/{lab}/{sample_id}/history", tag = "results",
    params(("lab" = String, Path), ("sample_id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = crate::error::Problem)))]
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path((lab, sample_id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<SampleRecord>>> {
    if !(caller.role.can(Action::SubmitResults) || caller.role.can(Action::SetCode)) {
        return Err(ApiError::Forbidden(
            "only labs, test points and the health authority read sample histories".into(),
        ));
    }
    if caller.role.can(Action::SubmitResults) {
        caller.require_scope("lab", &lab)?;
    }
    let h = s.store.sample_history(&lab, &sample_id).await?;
    if h.is_empty() {
        return Err(ApiError::NotFound(format!("no sample {sample_id} from lab {lab}")));
    }
    Ok(Json(h))
}
