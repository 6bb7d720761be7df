//! Checkpoints: registered by the admin, listed for everyone.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tongxing_domain::auth::Action;
use tongxing_domain::text::{CheckpointId, PlaceName, Road};
use tongxing_store::Checkpoint;
use utoipa::ToSchema;

use super::optional;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::JsonBody;
use crate::{AppState, schema};

pub const KINDS: &[&str] = &["police", "village", "station", "airport", "service_area"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointBody {
    /// Stable id, e.g. "CP-G1-XIANGHE".
    #[schema(value_type = schema::CheckpointId)]
    pub id: String,
    #[schema(value_type = schema::PlaceName)]
    pub name: String,
    /// The road the checkpoint is on: names the nearest service-area test point in messages.
    #[schema(value_type = Option<schema::Road>)]
    pub road: Option<String>,
    #[schema(value_type = schema::CheckpointKind)]
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    pub id: String,
    pub name: String,
    pub road: Option<String>,
    /// police, village, station, airport or service_area.
    pub kind: String,
}

impl From<Checkpoint> for CheckpointView {
    fn from(c: Checkpoint) -> Self {
        CheckpointView { id: c.id, name: c.name, road: c.road, kind: c.kind }
    }
}

/// Registers (or updates) a checkpoint.
#[utoipa::path(post, path = "/api/v1/checkpoints", tag = "checkpoints", operation_id = "register_checkpoint", request_body = CheckpointBody,
    responses((status = 201, body = CheckpointView)))]
pub async fn register(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<CheckpointBody>,
) -> ApiResult<(StatusCode, Json<CheckpointView>)> {
    caller.require(Action::ManageCheckpoints)?;
    let id = CheckpointId::parse(&b.id).at("id")?.into_string();
    let name = PlaceName::parse(&b.name).at("name")?.into_string();
    let road = optional("road", b.road.as_deref(), Road::parse)?.map(Road::into_string);
    let kind = b.kind.trim().to_string();
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::invalid(
            "kind",
            format!("{} is not one of: {}", tongxing_domain::text::quote(&kind), KINDS.join(", ")),
        ));
    }
    let cp = s.app.register_checkpoint(Checkpoint { id, name, road, kind }, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(cp.into())))
}

/// Lists the checkpoints.
#[utoipa::path(get, path = "/api/v1/checkpoints", tag = "checkpoints", operation_id = "list_checkpoints",
    responses((status = 200, body = Vec<CheckpointView>)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CheckpointView>>> {
    caller.require(Action::ListCheckpoints)?;
    let all = s.app.store.checkpoints().await?;
    Ok(Json(all.into_iter().map(CheckpointView::from).collect()))
}
