//! Test results from labs and test points, one at a time or in batches. `(lab, sample_id)`
//! identifies a sample; re-sending it changes nothing; a changed record is a correction.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongxing_app::input::RawSample;
use tongxing_domain::auth::Action;
use tongxing_domain::text::{LabCode, SampleId};
use tongxing_store::{SampleInput, SampleOutcome, SampleRecord};
use utoipa::ToSchema;

use super::parse_time;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, PathParams};
use crate::{AppState, schema};

/// The most rows one batch request may carry.
pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultInput {
    #[schema(value_type = schema::LabCode)]
    pub lab: String,
    #[schema(value_type = schema::SampleId)]
    pub sample_id: String,
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// When the sample was taken.
    #[schema(value_type = schema::Timestamp)]
    pub sampled_at: String,
    #[schema(value_type = schema::SiteCode)]
    pub site: String,
    #[schema(value_type = schema::SiteKind)]
    pub site_kind: String,
    #[schema(value_type = schema::TestResult)]
    pub result: String,
}

fn validate(caller: &Caller, r: &ResultInput, at: &str, now: DateTime<Utc>) -> Result<SampleInput, ApiError> {
    let sampled_at = parse_time(&format!("{at}sampled_at"), &r.sampled_at)?;
    let raw = RawSample {
        lab: &r.lab,
        sample_id: &r.sample_id,
        document_kind: r.document_kind.as_deref(),
        document_number: &r.document_number,
        sampled_at,
        site: &r.site,
        site_kind: &r.site_kind,
        result: &r.result,
    };
    let s = tongxing_app::input::sample(&raw, at, now)?;
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
#[utoipa::path(post, path = "/api/v1/results", tag = "results", operation_id = "submit_result", request_body = ResultInput,
    responses((status = 200, body = Submitted)))]
pub async fn submit_one(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<ResultInput>,
) -> ApiResult<Json<Submitted>> {
    caller.require(Action::SubmitResults)?;
    let now = Utc::now();
    let input = validate(&caller, &r, "", now)?;
    let outcome = s.app.submit_samples(std::slice::from_ref(&input), &caller.token_id, now).await?[0];
    s.metrics.sample(outcome_str(outcome), 1);
    Ok(Json(Submitted { outcome: outcome_str(outcome).into() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Up to 10,000 results.
    #[schema(max_items = 10000)]
    pub results: Vec<ResultInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rejected {
    /// The row's position in `results`, counted from 0.
    pub index: usize,
    /// The field, as `results[index].field`.
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
/// A row's refusal names its index, counted from 0, and its field as `results[i].field`.
#[utoipa::path(post, path = "/api/v1/results/batch", tag = "results", operation_id = "submit_results_batch", request_body = Batch,
    responses((status = 200, body = BatchReport)))]
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
        match validate(&caller, r, &format!("results[{i}]."), now) {
            Ok(input) => {
                slots.push(Some(inputs.len()));
                inputs.push(input);
            }
            Err(e) => {
                slots.push(None);
                let (field, reason) = e.field_and_reason();
                rejected.push(Rejected { index: i, field, reason });
            }
        }
    }
    let outcomes = s.app.submit_samples(&inputs, &caller.token_id, now).await?;
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
#[utoipa::path(get, path = "/api/v1/results/{lab}/{sample_id}/history", tag = "results", operation_id = "sample_history",
    params(("lab" = schema::LabCode, Path, description = "The lab's code"), ("sample_id" = schema::SampleId, Path, description = "The lab's sample id")),
    responses((status = 200, body = Vec<Object>), (status = 404, body = crate::error::Problem)))]
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    PathParams((lab, sample_id)): PathParams<(String, String)>,
) -> ApiResult<Json<Vec<SampleRecord>>> {
    let lab = LabCode::parse(&lab).at("lab")?;
    let sample_id = SampleId::parse(&sample_id).at("sample_id")?;
    if !(caller.role.can(Action::SubmitResults) || caller.role.can(Action::SetCode)) {
        return Err(ApiError::Forbidden(
            "only labs, test points and the health authority read sample histories".into(),
        ));
    }
    if caller.role.can(Action::SubmitResults) {
        caller.require_scope("lab", lab.as_str())?;
    }
    let h = s.app.store.sample_history(lab.as_str(), sample_id.as_str()).await?;
    if h.is_empty() {
        return Err(ApiError::NotFound(format!("no sample {sample_id} from lab {lab}")));
    }
    Ok(Json(h))
}
