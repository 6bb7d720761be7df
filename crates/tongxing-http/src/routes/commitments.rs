//! The service-area test points and the commitment letter: registering samples, serving the
//! letter, signing it (on the test point's device, or the citizen's phone), the person's
//! commitments; and a pool's result from its lab.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tongxing_app::commitment::{CommitmentView, DaySample, LetterDue, LetterView, Signing, TestPointSample};
use tongxing_domain::auth::{Action, Role};
use tongxing_domain::facts::TestResult;
use tongxing_domain::text::{LabCode, SampleId};
use tongxing_store::SampleOutcome;
use utoipa::{IntoParams, ToSchema};

use super::{document, parse_time};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::{AppState, schema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPointSampleBody {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// The tube's bar code.
    #[schema(value_type = schema::SampleId)]
    pub sample_id: String,
    /// When the sample was taken.
    #[schema(value_type = schema::Timestamp)]
    pub sampled_at: String,
    /// The pool (10 in 1) the sample went into, if pooled.
    #[schema(value_type = Option<schema::SampleId>)]
    pub pool_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// accepted, or unchanged when exactly this was registered before.
    pub outcome: String,
    /// The code labs report this sample's result under (`lab`): the test point's id.
    pub lab: String,
    pub sample_id: String,
}

/// A designated service-area test point registers a sample it took (result pending), for a
/// person scanned or typed in. The test point's id is the sample's `lab`.
#[utoipa::path(post, path = "/api/v1/test-points/{test_point}/samples", tag = "commitments",
    operation_id = "register_test_point_sample",
    params(("test_point" = schema::LabCode, Path, description = "A designated test point's id, e.g. SA-JINGHA-XIANGHE")),
    request_body = TestPointSampleBody,
    responses((status = 201, body = Registered), (status = 409, body = crate::error::Problem)))]
pub async fn register_sample(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(test_point): PathParams<String>,
    JsonBody(b): JsonBody<TestPointSampleBody>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    caller.require(Action::SubmitResults)?;
    let test_point = LabCode::parse(&test_point).at("test_point")?;
    caller.require_scope("test point", test_point.as_str())?;
    let now = Utc::now();
    let doc = document(b.document_kind.as_deref(), &b.document_number, "", now)?;
    let sampled_at = parse_time("sampled_at", &b.sampled_at)?;
    let sample = TestPointSample {
        test_point: test_point.as_str(),
        sample_id: &b.sample_id,
        document: doc,
        sampled_at,
        pool_id: b.pool_id.as_deref().map(str::trim).filter(|p| !p.is_empty()),
    };
    let outcome = s.app.register_test_point_sample(&sample, &caller.token_id, now).await?;
    let status = if outcome == SampleOutcome::Accepted { StatusCode::CREATED } else { StatusCode::OK };
    let outcome = if outcome == SampleOutcome::Accepted { "accepted" } else { "unchanged" };
    Ok((
        status,
        Json(Registered {
            outcome: outcome.into(),
            lab: test_point.into_string(),
            sample_id: b.sample_id.trim().into(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The day, in Beijing time (default: today).
    #[param(value_type = Option<String>, format = Date, max_length = 10)]
    pub date: Option<String>,
}

/// The samples a test point took on a day (Beijing time), newest first, with their results and
/// letters as they stand; people masked.
#[utoipa::path(get, path = "/api/v1/test-points/{test_point}/samples", tag = "commitments",
    operation_id = "test_point_day",
    params(("test_point" = schema::LabCode, Path, description = "A designated test point's id"), DayQuery),
    responses((status = 200, body = Vec<DaySample>)))]
pub async fn day(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(test_point): PathParams<String>,
    QueryParams(q): QueryParams<DayQuery>,
) -> ApiResult<Json<Vec<DaySample>>> {
    caller.require(Action::SubmitResults)?;
    let test_point = LabCode::parse(&test_point).at("test_point")?;
    caller.require_scope("test point", test_point.as_str())?;
    let day = match q.date.as_deref() {
        None => tongxing_app::input::today(Utc::now()),
        Some(d) => chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
            ApiError::invalid("date", format!("{} is not a date such as 2021-11-17", tongxing_domain::text::quote(d)))
        })?,
    };
    Ok(Json(s.app.test_point_day(&test_point, day).await?))
}

/// The entry commitment letter in force (zh-CN and English), with its version and the SHA-256
/// a signature names. No token needed: it is shown before signing.
#[utoipa::path(get, path = "/api/v1/letter", tag = "commitments", operation_id = "commitment_letter", security(()),
    responses((status = 200, body = LetterView)))]
pub async fn letter(State(s): State<AppState>) -> Json<LetterView> {
    Json(s.app.letter())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    #[serde(default)]
    #[schema(value_type = Option<schema::DocumentKind>)]
    pub document_kind: Option<String>,
    #[schema(value_type = schema::DocumentNumber)]
    pub document_number: String,
    /// The test point that took the sample (the sample's `lab`).
    #[schema(value_type = schema::LabCode)]
    pub test_point: String,
    #[schema(value_type = schema::SampleId)]
    pub sample_id: String,
    /// The version of the text shown and signed.
    #[schema(value_type = String, max_length = 64)]
    pub letter_version: String,
    /// Its SHA-256 (hex), as `GET /api/v1/letter` gives it.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    pub letter_sha256: String,
}

/// Signs the letter for a pending service-area sample: on the test point's device (a test
/// point's token), or on the citizen's own phone (a citizen's session, for themselves or a linked
/// family member). Signing the same sample again returns the first record (200).
#[utoipa::path(post, path = "/api/v1/commitments", tag = "commitments", operation_id = "sign_commitment",
    request_body = SignBody,
    responses((status = 201, body = CommitmentView), (status = 409, body = crate::error::Problem)))]
pub async fn sign(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<SignBody>,
) -> ApiResult<(StatusCode, Json<CommitmentView>)> {
    let now = Utc::now();
    let doc = document(b.document_kind.as_deref(), &b.document_number, "", now)?;
    let test_point = LabCode::parse(&b.test_point).at("test_point")?;
    SampleId::parse(&b.sample_id).at("sample_id")?;
    if b.letter_version.len() > 64 {
        return Err(ApiError::invalid("letter_version", "at most 64 characters"));
    }
    let via = match caller.role {
        Role::TestPoint => {
            caller.require_scope("test point", test_point.as_str())?;
            "test_point_device"
        }
        Role::Citizen => {
            // One's own sample, or a linked family member's.
            let me =
                caller.person_id.ok_or_else(|| ApiError::Forbidden("this token is not bound to a person".into()))?;
            let person = s.app.store.person(&doc.key()).await?;
            let allowed = match &person {
                Some(p) => s.app.acts_for(me, p.id).await?,
                None => false,
            };
            if !allowed {
                return Err(ApiError::Forbidden("a citizen signs for themselves or a linked family member".into()));
            }
            "citizen_phone"
        }
        _ => {
            return Err(ApiError::Forbidden(format!(
                "the role '{}' may not sign a commitment letter (a test point or the citizen signs)",
                caller.role
            )));
        }
    };
    let signing = Signing {
        document: doc,
        lab: test_point.as_str(),
        sample_id: &b.sample_id,
        letter_version: b.letter_version.trim(),
        letter_sha256: &b.letter_sha256,
        signed_via: via,
    };
    let (view, created) = s.app.sign_letter(&signing, &caller.token_id, now).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view)))
}

/// My commitment letters, newest first.
#[utoipa::path(get, path = "/api/v1/citizen/commitments", tag = "commitments", operation_id = "my_commitments",
    responses((status = 200, body = Vec<CommitmentView>)))]
pub async fn mine(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CommitmentView>>> {
    caller.require(Action::ActAsCitizen)?;
    let me = caller.person_id.ok_or_else(|| ApiError::Forbidden("this token is not bound to a person".into()))?;
    Ok(Json(s.app.commitments_of(me).await?))
}

/// My pending service-area samples (and my linked family's) that no letter covers yet, newest
/// first: sign for one with `POST /api/v1/commitments`.
#[utoipa::path(get, path = "/api/v1/citizen/letters", tag = "commitments", operation_id = "my_letters_due",
    responses((status = 200, body = Vec<LetterDue>)))]
pub async fn due(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<LetterDue>>> {
    caller.require(Action::ActAsCitizen)?;
    let me = caller.person_id.ok_or_else(|| ApiError::Forbidden("this token is not bound to a person".into()))?;
    Ok(Json(s.app.letters_due(me, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    /// The lab (or test point) whose pool it is.
    #[schema(value_type = schema::LabCode)]
    pub lab: String,
    /// negative or positive.
    #[schema(value_type = String, pattern = "^(negative|positive)$")]
    pub result: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolOutcome {
    /// The samples in the pool.
    pub members: usize,
    /// The alert raised (a positive pool: one alert listing its members).
    pub alerts: Vec<i64>,
}

/// A pool's result: negative → every member's sample negative; positive → every member's code
/// yellow pending an individual retest, and one alert listing them.
#[utoipa::path(post, path = "/api/v1/pools/{pool_id}/result", tag = "commitments", operation_id = "pool_result",
    params(("pool_id" = schema::SampleId, Path, description = "The pool's id")), request_body = PoolBody,
    responses((status = 200, body = PoolOutcome), (status = 404, body = crate::error::Problem)))]
pub async fn pool(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(pool_id): PathParams<String>,
    JsonBody(b): JsonBody<PoolBody>,
) -> ApiResult<Json<PoolOutcome>> {
    caller.require(Action::SubmitResults)?;
    let pool_id = SampleId::parse(&pool_id).at("pool_id")?;
    let lab = LabCode::parse(&b.lab).at("lab")?;
    caller.require_scope("lab", lab.as_str())?;
    let result = TestResult::parse(&b.result).at("result")?;
    let (members, alerts) = s.app.pool_result(&lab, &pool_id, result, &caller.token_id, Utc::now()).await?;
    Ok(Json(PoolOutcome { members, alerts }))
}
