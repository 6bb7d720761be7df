//! Webhooks (admin or health authority): register one (its secret shown once), list them
//! (never a secret), rotate a secret (the old one signs too for 24 hours), disable one. The
//! deliveries themselves are the relay's (`tongxing_app::webhooks`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use tongxing_app::webhooks::{WebhookSecret, WebhookView};
use tongxing_domain::auth::Action;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{JsonBody, PathParams};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where to post the events: an http:// or https:// URL.
    #[schema(max_length = 2000, example = "https://command.example/tongxing/events")]
    pub url: String,
    /// The event types to receive (alert.raised, alert.acknowledged, alert.resolved); all
    /// when left out or empty.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub events: Vec<String>,
}

/// Registers a webhook: it receives the events committed from now on, signed with the secret in
/// the answer (shown this once; Standard Webhooks).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook", request_body = WebhookRequest,
    responses((status = 201, body = WebhookSecret)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<WebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookSecret>)> {
    caller.require(Action::ManageWebhooks)?;
    let w = s.app.create_webhook(&b.url, &b.events, &caller.token_id, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// The webhooks, with their deliveries pending and done (no secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    responses((status = 200, body = Vec<WebhookView>)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<WebhookView>>> {
    caller.require(Action::ManageWebhooks)?;
    Ok(Json(s.app.webhooks().await?))
}

/// A new secret, shown this once. For 24 hours each delivery carries two signatures (the new
/// secret's and the old one's), so the receiver can switch without losing one.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate", tag = "webhooks", operation_id = "rotate_webhook_secret",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 200, body = WebhookSecret), (status = 404, body = crate::error::Problem),
        (status = 409, description = "The webhook is disabled", body = crate::error::Problem)))]
pub async fn rotate(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<i64>,
) -> ApiResult<Json<WebhookSecret>> {
    caller.require(Action::ManageWebhooks)?;
    Ok(Json(s.app.rotate_webhook(id, Utc::now()).await?))
}

/// Stops deliveries to a webhook (those pending are dropped).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/disable", tag = "webhooks", operation_id = "disable_webhook",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 200, body = WebhookView), (status = 404, body = crate::error::Problem),
        (status = 409, description = "The webhook is disabled already", body = crate::error::Problem)))]
pub async fn disable(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<i64>,
) -> ApiResult<Json<WebhookView>> {
    caller.require(Action::ManageWebhooks)?;
    Ok(Json(s.app.disable_webhook(id, Utc::now()).await?))
}
