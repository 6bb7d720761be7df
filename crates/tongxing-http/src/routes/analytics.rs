//! Big data for the command centre: flows, time-of-day profiles, shortcuts, testing demand and
//! the early warnings — counts only, read from the rollups, each as JSON or CSV
//! (`format=csv`). The analyst sees every count under the threshold suppressed (with the
//! complements that keep it from being recovered by subtraction); the health authority's
//! drill-down to the people behind a count is written to the access log. Places (checkpoints,
//! test points, counties) on the map are data an administrator registers.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;
use tongxing_app::alerts::{AlertQuery, AlertView};
use tongxing_app::analytics::{CountTable, DrillDown, FlowRequest, WARNING_KINDS, warnings_sheet};
use tongxing_app::export::{ExportFormat, Sheet};
use tongxing_domain::auth::{Action, Role};
use tongxing_domain::text::{CheckpointId, Reason};
use tongxing_store::{FlowDim, PLACE_KINDS, Place};
use utoipa::{IntoParams, ToSchema};

use super::checks::period;
use super::parse_time_opt;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, At};
use crate::extract::{JsonBody, QueryParams};
use crate::{AppState, schema};

/// JSON, CSV or (built with the `parquet` feature) Parquet.
fn export_format(format: Option<&str>) -> Result<ExportFormat, ApiError> {
    ExportFormat::parse(format).map_err(|e| ApiError::invalid("format", e))
}

/// A sheet as a file to download.
fn file(sheet: Sheet, format: ExportFormat) -> ApiResult<Response> {
    let (body, content_type, ext) = match format {
        ExportFormat::Parquet => (parquet_bytes(&sheet)?, "application/vnd.apache.parquet", "parquet"),
        _ => (sheet.to_csv().into_bytes(), "text/csv; charset=utf-8", "csv"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.{ext}\"", sheet.name)),
        ],
        body,
    )
        .into_response())
}

#[cfg(feature = "parquet")]
fn parquet_bytes(sheet: &Sheet) -> ApiResult<Vec<u8>> {
    sheet.to_parquet().map_err(ApiError::Internal)
}

#[cfg(not(feature = "parquet"))]
fn parquet_bytes(_: &Sheet) -> ApiResult<Vec<u8>> {
    Err(ApiError::Internal("parquet is not built into this server".into()))
}

fn table(name: &str, t: CountTable, format: ExportFormat) -> ApiResult<Response> {
    match format {
        ExportFormat::Json => Ok(Json(t).into_response()),
        _ => file(t.to_sheet(name), format),
    }
}

/// Counts are suppressed for the analyst.
fn suppressed(caller: &Caller) -> bool {
    caller.role == Role::Analyst
}

fn one_of(field: &str, v: Option<&str>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match v.map(str::trim) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
        Some(v) => Err(ApiError::invalid(
            field,
            format!("{} is not one of: {}", tongxing_domain::text::quote(v), allowed.join(", ")),
        )),
    }
}

fn dim(field: &str, v: Option<&str>, default: FlowDim) -> Result<FlowDim, ApiError> {
    match v {
        None => Ok(default),
        Some(v) => FlowDim::parse(v.trim()).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{} is not one of: {}", tongxing_domain::text::quote(v), FlowDim::NAMES.join(", ")),
            )
        }),
    }
}

/// A registered checkpoint's id (a count of an unknown checkpoint is a mistake, not a zero).
async fn checkpoint(s: &AppState, field: &str, v: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let id = CheckpointId::parse(v.trim()).at(field)?;
    Ok(Some(s.app.checkpoint(&id, field).await?.id))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FlowsQuery {
    /// Bucket length: 15m, 1h (default) or 1d (Beijing days).
    #[param(value_type = Option<String>, max_length = 3, pattern = "^(15m|1h|1d)$")]
    pub grain: Option<String>,
    /// Start (inclusive), RFC 3339 with an offset; default 24 hours before `until`.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// End (exclusive), RFC 3339 with an offset; default now.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub until: Option<String>,
    /// What the rows are: checkpoint (default), bucket, verdict, reason, who, mode or hour_of_day.
    #[param(value_type = Option<String>, max_length = 20)]
    pub rows: Option<String>,
    /// What the columns are (default bucket); must differ from the rows.
    #[param(value_type = Option<String>, max_length = 20)]
    pub columns: Option<String>,
    /// One checkpoint only.
    #[param(value_type = Option<String>, max_length = 64)]
    pub checkpoint: Option<String>,
    /// pass, conditional or deny only.
    #[param(value_type = Option<String>, max_length = 20, pattern = "^(pass|conditional|deny)$")]
    pub verdict: Option<String>,
    /// commuter or visitor only.
    #[param(value_type = Option<String>, max_length = 20, pattern = "^(commuter|visitor)$")]
    pub who: Option<String>,
    /// vehicle or foot only.
    #[param(value_type = Option<String>, max_length = 20, pattern = "^(vehicle|foot)$")]
    pub mode: Option<String>,
    /// json (default), csv, or parquet (a server built with the `parquet` feature).
    #[param(value_type = Option<String>, max_length = 7, pattern = "^(json|csv|parquet)$")]
    pub format: Option<String>,
}

/// Entries as a table of counts from the rollups: rows and columns chosen among checkpoint,
/// time bucket (15 minutes, hour or day), verdict, first reason, commuter or visitor, vehicle or
/// on foot, hour of the day; with per-row denial rates when the columns are verdicts.
#[utoipa::path(get, path = "/api/v1/analytics/flows", tag = "analytics", operation_id = "analytics_flows",
    params(FlowsQuery),
    responses((status = 200, description = "The table (JSON), or CSV with format=csv, or Parquet with format=parquet",
        content((CountTable = "application/json"), (String = "text/csv"), (String = "application/vnd.apache.parquet")))))]
pub async fn flows(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<FlowsQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ReadStats)?;
    let format = export_format(q.format.as_deref())?;
    let grain = match q.grain.as_deref().map(str::trim) {
        None | Some("1h") => 60,
        Some("15m") => 15,
        Some("1d") => 1440,
        Some(other) => {
            return Err(ApiError::invalid(
                "grain",
                format!("{} is not one of: 15m, 1h, 1d", tongxing_domain::text::quote(other)),
            ));
        }
    };
    let (since, until) = period(q.since.as_deref(), q.until.as_deref(), Utc::now())?;
    let request = FlowRequest {
        grain,
        since,
        until,
        rows: dim("rows", q.rows.as_deref(), FlowDim::Checkpoint)?,
        columns: dim("columns", q.columns.as_deref(), FlowDim::Bucket)?,
        checkpoint: checkpoint(&s, "checkpoint", q.checkpoint.as_deref()).await?,
        verdict: one_of("verdict", q.verdict.as_deref(), &["pass", "conditional", "deny"])?,
        who: one_of("who", q.who.as_deref(), &["commuter", "visitor"])?,
        mode: one_of("mode", q.mode.as_deref(), &["vehicle", "foot"])?,
    };
    let t = s.app.flows(&request, suppressed(&caller)).await?;
    table("flows", t, format)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// A Beijing date, YYYY-MM-DD; default today.
    #[param(value_type = Option<String>, format = Date, max_length = 10)]
    pub date: Option<String>,
    /// One checkpoint; default all.
    #[param(value_type = Option<String>, max_length = 64)]
    pub checkpoint: Option<String>,
    /// json (default), csv, or parquet (a server built with the `parquet` feature).
    #[param(value_type = Option<String>, max_length = 7, pattern = "^(json|csv|parquet)$")]
    pub format: Option<String>,
}

/// The time-of-day profile: entries per hour on a day and on the same weekday of the three
/// weeks before (the first row beside the second: today and the same weekday last week).
#[utoipa::path(get, path = "/api/v1/analytics/profile", tag = "analytics", operation_id = "analytics_profile",
    params(ProfileQuery),
    responses((status = 200, description = "The table (JSON), or CSV with format=csv, or Parquet with format=parquet",
        content((CountTable = "application/json"), (String = "text/csv"), (String = "application/vnd.apache.parquet")))))]
pub async fn profile(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ProfileQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ReadStats)?;
    let format = export_format(q.format.as_deref())?;
    let date = match q.date.as_deref().map(str::trim) {
        None => Utc::now().with_timezone(&tongxing_domain::shanghai()).date_naive(),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid("date", format!("{} is not a date (YYYY-MM-DD)", tongxing_domain::text::quote(d)))
        })?,
    };
    let cp = checkpoint(&s, "checkpoint", q.checkpoint.as_deref()).await?;
    let t = s.app.profile(date, cp, suppressed(&caller)).await?;
    table("profile", t, format)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodFormatQuery {
    /// Start (inclusive), RFC 3339 with an offset; default 7 days before `until`.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// End (exclusive), RFC 3339 with an offset; default now.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub until: Option<String>,
    /// json (default), csv, or parquet (a server built with the `parquet` feature).
    #[param(value_type = Option<String>, max_length = 7, pattern = "^(json|csv|parquet)$")]
    pub format: Option<String>,
}

/// Shortcuts — people denied at one checkpoint and checked at another within hours — per pair
/// of checkpoints: where they cluster.
#[utoipa::path(get, path = "/api/v1/analytics/shortcuts", tag = "analytics", operation_id = "analytics_shortcuts",
    params(PeriodFormatQuery),
    responses((status = 200, description = "The table (JSON), or CSV with format=csv, or Parquet with format=parquet",
        content((CountTable = "application/json"), (String = "text/csv"), (String = "application/vnd.apache.parquet")))))]
pub async fn shortcuts(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PeriodFormatQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ReadStats)?;
    let format = export_format(q.format.as_deref())?;
    let now = Utc::now();
    let until = parse_time_opt("until", q.until.as_deref())?.unwrap_or(now);
    let since = parse_time_opt("since", q.since.as_deref())?.unwrap_or(until - Duration::days(7));
    if since >= until {
        return Err(ApiError::invalid("since", "must be before until"));
    }
    let t = s.app.shortcuts(since, until, suppressed(&caller)).await?;
    table("shortcuts", t, format)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// json (default), csv or parquet (the commuters per county and day).
    #[param(value_type = Option<String>, max_length = 7, pattern = "^(json|csv|parquet)$")]
    pub format: Option<String>,
}

/// Testing demand for the next 14 days: commuters whose valid test runs out each day (last
/// negative + the commuter window), per residence county and per nearest test point; those
/// without a valid test already, beside each test point's capacity and the days over it
/// (`capacity`, `over_capacity`); and visitors entering on a 48-hour test, forecast by the
/// same weekday of past weeks, with its back-test (MASE with seasonal period 7, sMAPE) by
/// horizon. Computed hourly by the analytics job.
#[utoipa::path(get, path = "/api/v1/analytics/demand", tag = "analytics", operation_id = "analytics_demand",
    params(FormatQuery),
    responses((status = 200, description = "The forecast (JSON), or its commuter table as CSV with format=csv",
        content((Object = "application/json"), (String = "text/csv")))))]
pub async fn demand(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<FormatQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ReadStats)?;
    let format = export_format(q.format.as_deref())?;
    let body = s.app.demand(suppressed(&caller)).await?;
    if format != ExportFormat::Json {
        let t: CountTable = serde_json::from_value(body["by_county"].clone())
            .map_err(|e| ApiError::Internal(format!("demand table: {e}")))?;
        return table("demand", t, format);
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WarningsQuery {
    /// open, acknowledged or resolved.
    #[param(value_type = Option<String>, max_length = 20, pattern = "^(open|acknowledged|resolved)$")]
    pub status: Option<String>,
    /// Raised at or after, RFC 3339 with an offset.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// json (default), csv, or parquet (a server built with the `parquet` feature).
    #[param(value_type = Option<String>, max_length = 7, pattern = "^(json|csv|parquet)$")]
    pub format: Option<String>,
}

/// The early warnings (alerts of the kinds cloned_code, shortcut, surge, slow_rise,
/// positive_cluster, lab_late, lab_positivity), newest first, each with why it fired; at most
/// 100 of each kind. They are alerts: acknowledged and resolved as every alert.
#[utoipa::path(get, path = "/api/v1/analytics/warnings", tag = "analytics", operation_id = "analytics_warnings",
    params(WarningsQuery),
    responses((status = 200, description = "The warnings (JSON), or CSV with format=csv, or Parquet with format=parquet",
        content((Vec<AlertView> = "application/json"), (String = "text/csv"), (String = "application/vnd.apache.parquet")))))]
pub async fn warnings(
    State(s): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<WarningsQuery>,
) -> ApiResult<Response> {
    caller.require(Action::ReadAlerts)?;
    let format = export_format(q.format.as_deref())?;
    let since = parse_time_opt("since", q.since.as_deref())?;
    let mut all = Vec::new();
    for kind in WARNING_KINDS {
        let query = AlertQuery { status: q.status.as_deref(), kind: Some(kind), since, limit: Some(100) };
        all.extend(s.app.alerts(&query).await?);
    }
    all.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then(b.id.cmp(&a.id)));
    if format != ExportFormat::Json {
        return file(warnings_sheet(&all), format);
    }
    Ok(Json(all).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntriesRequest {
    /// The checkpoint of the count.
    #[schema(value_type = schema::CheckpointId)]
    pub checkpoint: String,
    /// Start (inclusive), RFC 3339 with an offset; default 24 hours before `until`.
    #[schema(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub since: Option<String>,
    /// End (exclusive), RFC 3339 with an offset; default now.
    #[schema(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub until: Option<String>,
    /// pass, conditional or deny only.
    #[schema(value_type = Option<String>, max_length = 20, pattern = "^(pass|conditional|deny)$")]
    pub verdict: Option<String>,
    /// Why the people are read (written to the access log).
    #[schema(value_type = schema::Reason)]
    pub purpose: String,
    /// Show document numbers and names unmasked (default false).
    #[serde(default)]
    pub reveal: bool,
}

/// The people behind a count (health authority only): the entry events of one checkpoint over
/// a period, at most 200, masked unless `reveal`; every person shown is written to the access
/// log with the purpose. A POST, as a person's record is read (`/people/lookup`): the purpose
/// travels in the body, not in a URL that proxies log.
#[utoipa::path(post, path = "/api/v1/analytics/entries", tag = "analytics", operation_id = "analytics_entries",
    request_body = EntriesRequest, responses((status = 200, body = Vec<Object>)))]
pub async fn entries(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(q): JsonBody<EntriesRequest>,
) -> ApiResult<Json<Vec<tongxing_store::CellEntry>>> {
    caller.require(Action::DrillDown)?;
    let purpose = Reason::parse(&q.purpose).at("purpose")?;
    let cp = checkpoint(&s, "checkpoint", Some(&q.checkpoint)).await?.unwrap_or_default();
    let (since, until) = period(q.since.as_deref(), q.until.as_deref(), Utc::now())?;
    let verdict = one_of("verdict", q.verdict.as_deref(), &["pass", "conditional", "deny"])?;
    if q.reveal {
        caller.require(Action::RevealPerson)?;
    }
    let d = DrillDown {
        checkpoint: &cp,
        since,
        until,
        verdict: verdict.as_deref(),
        caller: (&caller.token_id, caller.role.as_str()),
        purpose: purpose.as_str(),
        reveal: q.reveal,
    };
    let rows = s.app.drill_down(&d, Utc::now()).await?;
    Ok(Json(rows))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceInput {
    /// checkpoint, test_point or county.
    #[schema(max_length = 20, pattern = "^(checkpoint|test_point|county)$")]
    pub kind: String,
    /// The checkpoint's id, the test point's site id, or the county's GB/T 2260 code.
    #[schema(value_type = schema::SiteCode)]
    pub id: String,
    #[schema(value_type = Option<schema::PlaceName>)]
    pub name: Option<String>,
    /// Latitude, degrees (WGS 84).
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    /// Longitude, degrees (WGS 84).
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    /// A test point's capacity, samples a day, 1 to 1,000,000 (test points only): testing
    /// demand is compared with it.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub capacity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacesRequest {
    /// At most 1,000 places; each replaces one of the same kind and id.
    pub places: Vec<PlaceInput>,
}

/// Registers places on the map (or moves them): checkpoints (the cloned-code warning measures
/// the distance between them), test points and counties (testing demand sends each county's
/// commuters to the nearest test point).
#[utoipa::path(post, path = "/api/v1/analytics/places", tag = "analytics", operation_id = "register_places",
    request_body = PlacesRequest, responses((status = 200, body = Object)))]
pub async fn register_places(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<PlacesRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Action::ManageCheckpoints)?;
    if b.places.len() > 1000 {
        return Err(ApiError::invalid("places", format!("at most 1,000 places, got {}", b.places.len())));
    }
    let mut places = Vec::with_capacity(b.places.len());
    for (i, p) in b.places.iter().enumerate() {
        let at = |f: &str| format!("places[{i}].{f}");
        if !PLACE_KINDS.contains(&p.kind.as_str()) {
            return Err(ApiError::invalid(
                at("kind"),
                format!("{} is not one of: {}", tongxing_domain::text::quote(&p.kind), PLACE_KINDS.join(", ")),
            ));
        }
        let id = tongxing_domain::text::SiteCode::parse(&p.id).at(&at("id"))?;
        let name = tongxing_domain::text::PlaceName::parse_opt(p.name.as_deref()).at(&at("name"))?;
        if !(p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat)) {
            return Err(ApiError::invalid(at("lat"), format!("must be from -90 to 90, got {}", p.lat)));
        }
        if !(p.lon.is_finite() && (-180.0..=180.0).contains(&p.lon)) {
            return Err(ApiError::invalid(at("lon"), format!("must be from -180 to 180, got {}", p.lon)));
        }
        if let Some(c) = p.capacity {
            if p.kind != "test_point" {
                return Err(ApiError::invalid(
                    at("capacity"),
                    format!("only a test point has a capacity, not a {}", p.kind),
                ));
            }
            if !(1..=1_000_000).contains(&c) {
                return Err(ApiError::invalid(
                    at("capacity"),
                    format!("must be from 1 to 1,000,000 samples a day, got {c}"),
                ));
            }
        }
        places.push(Place {
            kind: p.kind.clone(),
            id: id.into_string(),
            name: name.map(|n| n.as_str().to_string()),
            lat: p.lat,
            lon: p.lon,
            capacity: p.capacity,
        });
    }
    s.app.store.upsert_places(&places).await.map_err(tongxing_app::AppError::from)?;
    Ok(Json(serde_json::json!({"registered": places.len()})))
}

/// The places on the map.
#[utoipa::path(get, path = "/api/v1/analytics/places", tag = "analytics", operation_id = "list_places",
    responses((status = 200, body = Vec<Object>)))]
pub async fn places(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Place>>> {
    caller.require(Action::ListCheckpoints)?;
    Ok(Json(s.app.store.places(None).await.map_err(tongxing_app::AppError::from)?))
}
