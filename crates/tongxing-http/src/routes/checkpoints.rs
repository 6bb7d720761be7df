//! Checkpoints: registered by the admin, listed for everyone.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_store::Checkpoint;
use utoipa::ToSchema;

use super::{required, text};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, JsonBody};

pub const KINDS: &[&str] = &["police", "village", "station", "airport", "service_area"];

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CheckpointBody {
    /// Stable id, e.g. "CP-G1-XIANGHE".
    pub id: String,
    pub name: String,
    /// Road, e.g. "京哈高速": names the nearest service-area test point in messages.
    pub road: Option<String>,
    /// police, village, station, airport or service_area.
    pub kind: String,
}

/// Registers (or updates) a checkpoint.
#[utoipa::path(post, path = "/api/v1/checkpoints", tag = "checkpoints", request_body = CheckpointBody,
    responses((status = 201, body = CheckpointBody), (status = 422, body = crate::error::Problem)))]
pub async fn register(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<CheckpointBody>,
) -> ApiResult<(StatusCode, Json<CheckpointBody>)> {
    caller.require(Action::ManageCheckpoints)?;
    let id = required("id", Some(&b.id), 64)?;
    if !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
        return Err(ApiError::invalid("id", "letters, digits, '-' and '_' only"));
    }
    let name = required("name", Some(&b.name), 100)?;
    let road = text("road", b.road.as_deref(), 64)?;
    let kind = b.kind.trim().to_string();
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::invalid("kind", format!("'{kind}' is not one of: {}", KINDS.join(", "))));
    }
    let cp = Checkpoint { id, name, road, kind };
    s.store.upsert_checkpoint(&cp, Utc::now()).await?;
    s.checkpoints.write().expect("checkpoint cache").insert(cp.id.clone(), cp.clone());
    Ok((StatusCode::CREATED, Json(CheckpointBody { id: cp.id, name: cp.name, road: cp.road, kind: cp.kind })))
}

/// Lists the checkpoints.
#[utoipa::path(get, path = "/api/v1/checkpoints", tag = "checkpoints", responses((status = 200, body = Vec<CheckpointBody>)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CheckpointBody>>> {
    caller.require(Action::ListCheckpoints)?;
    let all = s.store.checkpoints().await?;
    Ok(Json(all.into_iter().map(|c| CheckpointBody { id: c.id, name: c.name, road: c.road, kind: c.kind }).collect()))
}

/// The checkpoint with this id, from the cache or the store.
pub async fn find(s: &AppState, id: &str, field: &str) -> ApiResult<Checkpoint> {
    if let Some(cp) = s.checkpoints.read().expect("checkpoint cache").get(id) {
        return Ok(cp.clone());
    }
    let all = s.store.checkpoints().await?;
    let mut cache = s.checkpoints.write().expect("checkpoint cache");
    for cp in all {
        cache.insert(cp.id.clone(), cp);
    }
    cache.get(id).cloned().ok_or_else(|| ApiError::invalid(field, format!("no checkpoint '{id}' is registered")))
}
