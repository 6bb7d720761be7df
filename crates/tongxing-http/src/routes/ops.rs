//! What the servers of a deployment share, for operators: the leases of the tasks that run on
//! one server at a time (who holds each, its fencing token, until when).

use axum::Json;
use axum::extract::State;
use tongxing_domain::auth::Action;
use tongxing_store::LeaseRecord;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

/// The leases: for each task that runs on one server at a time (webhook-relay, …), its holder
/// (the server's address and process), fencing token and expiry.
#[utoipa::path(get, path = "/api/v1/ops/leases", tag = "operations", operation_id = "list_leases",
    responses((status = 200, body = Vec<Object>)))]
pub async fn leases(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<LeaseRecord>>> {
    caller.require(Action::ReadOperations)?;
    Ok(Json(s.app.store.leases().await?))
}
