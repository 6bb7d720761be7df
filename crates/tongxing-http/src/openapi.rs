//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tongxing entry control", description = "Entry control for a city: people, test results, health codes, the commuter database and checkpoint decisions. Times are RFC 3339 with an offset; stored in UTC; displayed in Asia/Shanghai (UTC+8)."),
    paths(
        routes::people::register,
        routes::people::lookup,
        routes::people::access_log,
        routes::people::set_code,
        routes::results::submit_one,
        routes::results::submit_batch,
        routes::results::history,
        routes::commuters::apply,
        routes::commuters::decide,
        routes::checkpoints::register,
        routes::checkpoints::list,
        routes::checks::check,
        routes::checks::check_vehicle,
        routes::checks::entries,
        routes::stats::overview,
        routes::stats::verdicts,
        routes::policies::list,
        routes::policies::publish,
        routes::policies::activate,
        routes::policies::dry_run,
        routes::policies::audit,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
