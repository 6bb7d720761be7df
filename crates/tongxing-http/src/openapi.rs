//! The OpenAPI document, generated from the handlers' annotations. The refusals every
//! operation can give (400, 401, 403, 413, 415, 422) are added here once, all as
//! `application/problem+json`, so that no handler's annotation can forget one.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_JSON;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tongxing entry control", description = "Entry control for a city: people, test results, health codes, \
        the commuter database and checkpoint decisions.\\n\\n\
        **Times** are RFC 3339 with an offset. Answers give them in Beijing time (`2021-11-17T08:30:00+08:00`); \
        requests may use any offset (in a query string, write `+` as `%2B`; a `+` sent raw arrives as a space and is \
        read as `+`).\\n\\n\
        **Refusals** are RFC 9457 `application/problem+json` documents with a `detail` for people and, for bad input, \
        the `field`: a path into the body (`occupants[1].document_number`), or a query or path parameter's name. \
        Request bodies refuse unknown fields. A bad value is quoted to at most 64 characters."),
    paths(
        routes::people::register,
        routes::people::lookup,
        routes::people::access_log,
        routes::people::set_code,
        routes::people::codes_preview,
        routes::people::set_codes,
        routes::results::submit_one,
        routes::results::submit_batch,
        routes::results::history,
        routes::commuters::apply,
        routes::commuters::decide,
        routes::commuters::queue,
        routes::commuters::import_preview,
        routes::commuters::import,
        routes::checkpoints::register,
        routes::checkpoints::list,
        routes::checks::check,
        routes::checks::check_vehicle,
        routes::checks::check_frame,
        routes::checks::entries,
        routes::offline::bundle,
        routes::offline::upload,
        routes::stats::overview,
        routes::stats::verdicts,
        routes::policies::list,
        routes::policies::publish,
        routes::policies::activate,
        routes::policies::dry_run,
        routes::policies::audit,
        routes::citizen::code,
        routes::citizen::sign_in,
        routes::citizen::my_pass,
        routes::citizen::family,
        routes::citizen::link,
        routes::citizen::family_code,
        routes::citizen::minor,
        routes::citizen::remove,
        routes::citizen::member_pass,
        routes::citizen::my_access_log,
        routes::citizen::my_commuter,
        routes::citizen::apply_commuter,
        routes::citizen::pending,
        routes::citizen::decide,
        routes::passes::my_qr,
        routes::passes::member_qr,
        routes::passes::trust_list,
        routes::passes::revocations,
        routes::passes::withdraw,
        routes::commitments::register_sample,
        routes::commitments::day,
        routes::commitments::letter,
        routes::commitments::sign,
        routes::commitments::mine,
        routes::commitments::due,
        routes::commitments::pool,
        routes::alerts::list,
        routes::alerts::stream,
        routes::alerts::get,
        routes::alerts::acknowledge,
        routes::alerts::resolve,
        routes::webhooks::create,
        routes::webhooks::list,
        routes::webhooks::rotate,
        routes::webhooks::disable,
        routes::ops::leases,
        routes::analytics::flows,
        routes::analytics::profile,
        routes::analytics::shortcuts,
        routes::analytics::demand,
        routes::analytics::warnings,
        routes::analytics::entries,
        routes::analytics::places,
        routes::analytics::register_places,
        document,
        crate::healthz,
        crate::metrics_text,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth, &IdempotencyKeys, &Refusals),
    security(("bearer" = []))
)]
struct ApiDoc;

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

/// `Idempotency-Key` on every POST a token may send (`crate::idempotency`).
struct IdempotencyKeys;

impl Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Required, header::HeaderBuilder};
        for item in openapi.paths.paths.values_mut() {
            let Some(op) = item.post.as_mut().filter(|op| !is_public(op)) else { continue };
            let schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::idempotency::MAX_KEY))
                .pattern(Some("^[!-~]{1,255}$"));
            let param = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retry safe: the first request with this key (per token) runs; a repeat with the same \
                     body, within 24 hours and on any server, gets the same answer (with `Idempotent-Replayed: true`), \
                     one with another body a 422 naming `Idempotency-Key`, and one while the first still runs waits \
                     for its answer (409 with `Retry-After` after 10 s). A random UUID is usual.",
                ))
                .schema(Some(schema))
                .build();
            op.parameters.get_or_insert_with(Vec::new).push(param);
            let busy = ResponseBuilder::new()
                .description("The first request with this Idempotency-Key is still running; send it again shortly")
                .header(
                    "Retry-After",
                    HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(Type::Integer)).build(),
                )
                .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
                .build();
            op.responses.responses.entry("409".into()).or_insert(RefOr::T(busy));
        }
    }
}

/// An operation anyone may call (no bearer token).
fn is_public(op: &Operation) -> bool {
    op.security.as_ref().is_some_and(|reqs| {
        reqs.iter().all(|r| serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty())))
    })
}

/// Whether a route takes `Idempotency-Key`: every POST that needs a token.
pub fn idempotent(method: &axum::http::Method, path: &str) -> bool {
    static DOC: std::sync::LazyLock<utoipa::openapi::OpenApi> = std::sync::LazyLock::new(build);
    *method == axum::http::Method::POST
        && DOC.paths.paths.get(path).and_then(|item| item.post.as_ref()).is_some_and(|op| !is_public(op))
}

/// The shared refusals, as response components.
const REFUSALS: &[(&str, &str, &str)] = &[
    ("400", "Malformed", "The request cannot be read: the body is not JSON, or a path or query value is broken."),
    ("401", "Unauthenticated", "No bearer token, or one the server does not know."),
    ("403", "Forbidden", "The token's role or scope does not allow this."),
    ("413", "TooLarge", "The body is over this endpoint's size limit."),
    ("415", "UnsupportedMediaType", "The body is not sent as application/json."),
    ("422", "InvalidInput", "A field is missing, unknown, of the wrong type or not acceptable; `field` names it."),
];

struct Refusals;

impl Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in REFUSALS {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
                .build();
            components.responses.insert((*name).into(), RefOr::T(response));
        }
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
                add_refusals(op);
            }
        }
    }
}

fn add_refusals(op: &mut Operation) {
    let public = is_public(op);
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let responses = &mut op.responses.responses;
    for (status, name, _) in REFUSALS {
        let applies = match *status {
            "401" | "403" => !public,
            "413" | "415" => has_body,
            "400" | "422" => has_body || has_params,
            _ => false,
        };
        if applies {
            responses
                .entry((*status).into())
                .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
        }
    }
    // Refusals declared in a handler's annotation are problem documents too.
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(r)) = (status.starts_with('4') || status.starts_with('5'), response) {
            as_problem(r);
        }
    }
}

fn as_problem(r: &mut Response) {
    if let Some(content) = r.content.shift_remove("application/json") {
        r.content.insert(PROBLEM_JSON.into(), content);
    }
}

/// The document, with its refusals.
pub fn build() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Whether the document declares query parameters for this route.
pub fn takes_query(method: &axum::http::Method, path: &str) -> bool {
    use utoipa::openapi::path::ParameterIn;
    static DOC: std::sync::LazyLock<utoipa::openapi::OpenApi> = std::sync::LazyLock::new(build);
    let Some(item) = DOC.paths.paths.get(path) else { return false };
    let op = match *method {
        axum::http::Method::GET => &item.get,
        axum::http::Method::POST => &item.post,
        axum::http::Method::PUT => &item.put,
        axum::http::Method::DELETE => &item.delete,
        _ => &None,
    };
    op.as_ref()
        .and_then(|op| op.parameters.as_ref())
        .is_some_and(|ps| ps.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query)))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", operation_id = "openapi", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(build())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(super::build()).unwrap()
    }

    /// Every route the router serves is in the document, and nothing else is.
    #[test]
    fn the_document_lists_exactly_the_routes_served() {
        let served: BTreeSet<(String, String)> =
            crate::routes().served().iter().map(|(m, p)| (m.as_str().to_lowercase(), p.clone())).collect();
        let doc = doc();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
            .collect();
        assert_eq!(served, documented);
    }

    #[test]
    fn operation_ids_are_unique_and_refusals_are_problems() {
        let doc = doc();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
                for (status, response) in op["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let content = match response.get("$ref") {
                            Some(r) => {
                                let name = r.as_str().unwrap().rsplit('/').next().unwrap();
                                doc["components"]["responses"][name]["content"].clone()
                            }
                            None => response["content"].clone(),
                        };
                        let types: Vec<_> = content.as_object().unwrap().keys().collect();
                        assert_eq!(types, ["application/problem+json"], "{method} {path} {status}");
                    }
                }
                let secured = op.get("security").is_none();
                if secured {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}: 401 undocumented");
                    assert!(op["responses"].get("403").is_some(), "{method} {path}: 403 undocumented");
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    if p["in"] == "header" {
                        assert!(["Idempotency-Key", "Last-Event-ID"].contains(&name), "{method} {path} {name}");
                        assert!(!p["required"].as_bool().unwrap_or(false), "{method} {path} {name}");
                        continue;
                    }
                    let in_path = path.contains(&format!("{{{name}}}"));
                    assert_eq!(p["in"], if in_path { "path" } else { "query" }, "{method} {path} {name}");
                    assert_eq!(p["required"].as_bool().unwrap_or(false), in_path, "{method} {path} {name}");
                }
            }
        }
    }

    /// Fields the server requires are required in the schema; strings carry their limits.
    #[test]
    fn schemas_say_what_the_server_enforces() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let required = |s: &str| -> Vec<String> {
            schemas[s]["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
        };
        assert!(required("LookupRequest").contains(&"purpose".to_string()));
        assert_eq!(schemas["CheckpointId"]["maxLength"], 64);
        assert_eq!(schemas["CheckpointId"]["pattern"], "^[A-Za-z0-9_-]{1,64}$");
        assert_eq!(schemas["CheckRequest"]["additionalProperties"], false);
        assert_eq!(schemas["Reason"]["maxLength"], 200);
    }
}
