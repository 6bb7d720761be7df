//! Alerts for the health authority (the analyst may list them): list and filter, one alert,
//! acknowledge, resolve with an outcome; and the live stream for the command centre
//! (server-sent events, resumed from `Last-Event-ID` without gaps or duplicates).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use tongxing_app::alerts::{AlertQuery, AlertView, envelope};
use tongxing_domain::auth::Action;
use tongxing_domain::text::Reason;
use utoipa::{IntoParams, ToSchema};

use super::parse_time_opt;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::{AppState, schema};

/// Seconds between two heartbeats (SSE comments) on an idle stream: proxies keep it open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// open, acknowledged or resolved.
    #[param(value_type = Option<String>, max_length = 20, pattern = "^(open|acknowledged|resolved)$")]
    pub status: Option<String>,
    /// positive, overdue, pool_positive, or an early warning: cloned_code, shortcut, surge,
    /// slow_rise, positive_cluster, lab_late, lab_positivity.
    #[param(value_type = Option<String>, max_length = 20,
        pattern = "^(positive|overdue|pool_positive|cloned_code|shortcut|surge|slow_rise|positive_cluster|lab_late|lab_positivity)$")]
    pub kind: Option<String>,
    /// Raised at or after, RFC 3339 with an offset.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// At most this many, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Alerts, newest first (personal data masked).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", operation_id = "list_alerts", params(AlertsQuery),
    responses((status = 200, body = Vec<AlertView>)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AlertsQuery>,
) -> ApiResult<Json<Vec<AlertView>>> {
    caller.require(Action::ReadAlerts)?;
    let since = parse_time_opt("since", q.since.as_deref())?;
    let query = AlertQuery { status: q.status.as_deref(), kind: q.kind.as_deref(), since, limit: q.limit };
    Ok(Json(s.app.alerts(&query).await?))
}

/// One alert.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", operation_id = "get_alert",
    params(("id" = i64, Path, description = "The alert's id")),
    responses((status = 200, body = AlertView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<i64>,
) -> ApiResult<Json<AlertView>> {
    caller.require(Action::ReadAlerts)?;
    Ok(Json(s.app.alert(id).await?))
}

/// Acknowledges an open alert: someone acts on it (recorded: who, when).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", operation_id = "acknowledge_alert",
    params(("id" = i64, Path, description = "The alert's id")),
    responses((status = 200, body = AlertView), (status = 404, body = crate::error::Problem),
        (status = 409, description = "The alert was acknowledged or resolved already", body = crate::error::Problem)))]
pub async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<i64>,
) -> ApiResult<Json<AlertView>> {
    caller.require(Action::HandleAlerts)?;
    Ok(Json(s.app.acknowledge_alert(id, &caller.token_id, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// What was done, e.g. "isolated at home; family tested".
    #[schema(value_type = schema::Reason)]
    pub outcome: String,
}

/// Resolves an open or acknowledged alert with its outcome.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", operation_id = "resolve_alert",
    params(("id" = i64, Path, description = "The alert's id")), request_body = ResolveRequest,
    responses((status = 200, body = AlertView), (status = 404, body = crate::error::Problem),
        (status = 409, description = "The alert was resolved already", body = crate::error::Problem)))]
pub async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<i64>,
    JsonBody(b): JsonBody<ResolveRequest>,
) -> ApiResult<Json<AlertView>> {
    caller.require(Action::HandleAlerts)?;
    let outcome = Reason::parse(&b.outcome).at("outcome")?;
    Ok(Json(s.app.resolve_alert(id, &caller.token_id, &outcome, Utc::now()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this event id (as `Last-Event-ID`, which wins when both are sent); without
    /// either, the stream starts with the next event.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// The live stream of alert events (server-sent events) for the command centre: each event as
/// `id: N`, `event: alert.raised` (or alert.acknowledged, alert.resolved) and `data:` the event
/// as JSON (`{"id", "type", "timestamp", "data"}`); a comment every 15 s when idle. After a
/// dropped connection, reconnecting with `Last-Event-ID` (browsers do) resumes with the next
/// event: event ids have no gaps, and none is sent twice.
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "alerts", operation_id = "alert_stream",
    params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: the stream resumes after it")),
    responses((status = 200, description = "An endless text/event-stream", body = String, content_type = "text/event-stream")))]
pub async fn stream(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(q): QueryParams<StreamQuery>,
) -> ApiResult<Response> {
    caller.require(Action::HandleAlerts)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            Some(text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid("Last-Event-ID", "must be the id of an event received: a whole number, 0 or more")
            })?)
        }
    };
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::invalid("after", "must be 0 or more"));
    }
    let rx = s.app.alert_feed().subscribe(last_event_id.or(q.after)).await?;
    Ok(event_stream(rx))
}

/// The SSE answer of a subscription to the outbox feed: this stream's, and the health
/// authority's page's (which signs in with a cookie instead of a bearer token).
pub fn event_stream(rx: tokio::sync::mpsc::Receiver<std::sync::Arc<tongxing_store::OutboxEvent>>) -> Response {
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        let event = Event::default().id(e.id.to_string()).event(&e.event).data(envelope(&e).to_string());
        Some((Ok::<_, Infallible>(event), rx))
    });
    let mut resp = Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")).into_response();
    // Proxies (nginx) pass each event on at once.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
