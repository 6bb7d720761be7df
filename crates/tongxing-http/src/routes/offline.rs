//! The offline checkpoint: the bundle it syncs besides the two signed lists (rule sets,
//! checkpoints, policy parameters), and the upload of the checks it made offline, each recorded
//! once by its idempotency key. The use cases are `tongxing_app::offline`; this only translates.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::Deserialize;
use tongxing_app::offline::{Bundle, MAX_UPLOAD, UploadReport, UploadRow};
use tongxing_domain::auth::Action;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;

/// What an offline checkpoint syncs besides the trust list and the revocation list: the rule
/// sets (their JSON bodies as published), the checkpoints this token may check at, and the
/// policy parameters (how old the data may grow before the checkpoint warns; how far its clock
/// may be behind a pass's issue time).
#[utoipa::path(get, path = "/api/v1/checkpoint/bundle", tag = "checkpoint", operation_id = "checkpoint_bundle",
    responses((status = 200, body = Bundle), (status = 503, body = crate::error::Problem)))]
pub async fn bundle(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Bundle>> {
    caller.require(Action::Check)?;
    Ok(Json(s.app.checkpoint_bundle(&caller.scope, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineUpload {
    /// 1 to 500 checks, oldest first.
    #[schema(min_items = 1, max_items = 500)]
    pub checks: Vec<UploadRow>,
}

/// Uploads checks made offline (`tongxing checkpoint sync` sends its queue). Each is recorded
/// once, by its idempotency key: a retried upload answers `duplicate` for what an earlier one
/// recorded. A check whose pass does not verify with this server's trust list at the check's
/// time, whose person is unknown or whose checkpoint is not registered is `rejected`, with the
/// reason; the others are recorded, in one transaction. A malformed field refuses the whole
/// upload (422, naming it) and records nothing.
#[utoipa::path(post, path = "/api/v1/checks/offline", tag = "checkpoint", operation_id = "upload_offline_checks",
    request_body = OfflineUpload,
    responses((status = 200, body = UploadReport), (status = 503, body = crate::error::Problem)))]
pub async fn upload(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<OfflineUpload>,
) -> ApiResult<Json<UploadReport>> {
    caller.require(Action::Check)?;
    if req.checks.is_empty() || req.checks.len() > MAX_UPLOAD {
        return Err(ApiError::invalid("checks", format!("1 to {MAX_UPLOAD} checks, got {}", req.checks.len())));
    }
    let checks = req
        .checks
        .iter()
        .enumerate()
        .map(|(i, row)| row.parse(&format!("checks[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    for c in &checks {
        caller.require_scope("checkpoint", c.checkpoint_id.as_str())?;
    }
    let report = s.app.record_offline_checks(&checks, &caller.token_id, Utc::now()).await?;
    Ok(Json(report))
}
