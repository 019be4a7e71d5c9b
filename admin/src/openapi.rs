//! The router and its OpenAPI document, built together from the annotated
//! handlers so that they cannot drift apart. Every operation documents the
//! problem responses it can give.

use crate::extract::MAX_BODY_BYTES;
use crate::http_metrics;
use crate::problem::{Problem, ProblemBody};
use crate::routes::{
    audit, auth, catalogue, cluster, devices, history, licences, lockouts, login_sessions, numbers,
    password_reset, queues, sessions, system, tenants, users,
};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Carillon admin API", description = "Tenants, users, devices, numbers, queues, licences, agent sessions, activity records and the cluster."),
    components(schemas(ProblemBody)),
    tags(
        (name = "auth"), (name = "tenants"), (name = "branches"), (name = "users"), (name = "devices"),
        (name = "numbers"), (name = "skills"), (name = "groups"), (name = "pause-types"), (name = "queues"),
        (name = "licences"), (name = "sessions"), (name = "history"), (name = "audit"), (name = "cluster"), (name = "system")
    )
)]
struct ApiDoc;

/// The full router with `/api/v1/openapi.json`.
pub fn router(state: AppState) -> Router {
    let (router, document) = api().split_for_parts();
    // Serialised once: the handler is cloned for every connection and
    // request, and a cloned `Document` is a deep copy of the whole tree.
    let document = axum::body::Bytes::from(
        serde_json::to_vec(&finish(document))
            .expect("the OpenAPI document is plain data and always serialises"),
    );
    let metrics = state.http_metrics.clone();
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let body = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            http_metrics::track,
        ))
        .with_state(state)
}

/// The OpenAPI document alone (for tests and tools).
pub fn document() -> Document {
    finish(api().split_for_parts().1)
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(password_reset::request))
        .routes(routes!(password_reset::confirm))
        .routes(routes!(login_sessions::list))
        .routes(routes!(login_sessions::end))
        .routes(routes!(login_sessions::logout))
        .routes(routes!(audit::list_platform))
        .routes(routes!(audit::list))
        .routes(routes!(audit::retention, audit::set_retention))
        .routes(routes!(lockouts::list_all))
        .routes(routes!(lockouts::unlock_any))
        .routes(routes!(lockouts::list_of_tenant))
        .routes(routes!(lockouts::unlock_of_tenant))
        .routes(routes!(cluster::get))
        .routes(routes!(cluster::placement))
        .routes(routes!(cluster::add_member))
        .routes(routes!(cluster::remove_member))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get, tenants::rename))
        .routes(routes!(tenants::feature_codes, tenants::set_feature_codes))
        .routes(routes!(
            catalogue::branches::list,
            catalogue::branches::create
        ))
        .routes(routes!(
            catalogue::branches::get,
            catalogue::branches::update,
            catalogue::branches::delete
        ))
        .routes(routes!(catalogue::skills::list, catalogue::skills::create))
        .routes(routes!(
            catalogue::skills::get,
            catalogue::skills::update,
            catalogue::skills::delete
        ))
        .routes(routes!(catalogue::groups::list, catalogue::groups::create))
        .routes(routes!(
            catalogue::groups::get,
            catalogue::groups::update,
            catalogue::groups::delete
        ))
        .routes(routes!(
            catalogue::pause_types::list,
            catalogue::pause_types::create
        ))
        .routes(routes!(
            catalogue::pause_types::get,
            catalogue::pause_types::update,
            catalogue::pause_types::delete
        ))
        .routes(routes!(catalogue::queues::list, catalogue::queues::create))
        .routes(routes!(
            catalogue::queues::get,
            catalogue::queues::update,
            catalogue::queues::delete
        ))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::set_password))
        .routes(routes!(users::set_pin))
        .routes(routes!(devices::list, devices::create))
        .routes(routes!(devices::extensions))
        .routes(routes!(devices::get, devices::update, devices::delete))
        .routes(routes!(numbers::list, numbers::create))
        .routes(routes!(numbers::delete))
        .routes(routes!(numbers::assign))
        .routes(routes!(numbers::release))
        .routes(routes!(licences::report))
        .routes(routes!(licences::buy))
        .routes(routes!(licences::withdraw))
        .routes(routes!(licences::assign))
        .routes(routes!(licences::release))
        .routes(routes!(licences::hand_over))
        .routes(routes!(licences::ranks))
        .routes(routes!(licences::buy_packages))
        .routes(routes!(licences::withdraw_packages))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::get))
        .routes(routes!(sessions::state))
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::check_in))
        .routes(routes!(sessions::check_out))
        .routes(routes!(sessions::pause))
        .routes(routes!(sessions::unpause))
        .routes(routes!(sessions::begin_activity))
        .routes(routes!(sessions::end_activity))
        .routes(routes!(sessions::set_disposition))
        .routes(routes!(sessions::end_wrap_up))
        .routes(routes!(queues::waiting, queues::enqueue))
        .routes(routes!(queues::change_priority))
        .routes(routes!(queues::withdraw))
        .routes(routes!(queues::assign))
        .routes(routes!(queues::abandon))
        .routes(routes!(history::list))
        .routes(routes!(history::get))
}

/// Adds the bearer scheme and, to every operation, the problem responses it
/// can give (documented once here instead of on every handler).
fn finish(mut doc: Document) -> Document {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "Problem",
                    ))))
                    .build(),
            )
            .build()
    };
    // The API refuses unknown fields (422 INVALID_BODY), but the same schemas
    // describe responses that add `id` and other fields to a spec: the
    // document does not claim `additionalProperties: false`.
    for schema in components.schemas.values_mut() {
        if let RefOr::T(utoipa::openapi::schema::Schema::Object(object)) = schema {
            object.additional_properties = None;
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let system = !path.starts_with("/api/v1/")
            || path == "/api/v1/auth/login"
            || path.starts_with("/api/v1/auth/password-reset");
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.request_body.is_some();
            // Every error is served as problem+json, whatever a handler annotated.
            for (status, response) in operation.responses.responses.iter_mut() {
                if status.as_str() >= "400" {
                    *response = RefOr::T(problem(status));
                }
            }
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(problem(description)));
            };
            if path.starts_with("/api/v1/") {
                add("400", "Malformed request (problem code names the rule)");
                add("404", "No such object in the caller's tenant");
                add(
                    "503",
                    "The cluster did not answer in time; retry with the same Idempotency-Key",
                );
            }
            if !system {
                add("401", "Missing, invalid or expired bearer token");
                add("403", "The caller's roles may not do this");
                add(
                    "429",
                    "Too many invalid bearer tokens from this address (`TOKEN_THROTTLED`, with `Retry-After`)",
                );
                add(
                    "409",
                    "Conflicts with the current state (problem code names the rule)",
                );
            }
            if path == "/api/v1/auth/login" {
                add("401", "Unknown login or wrong password");
            }
            if has_body {
                add("413", "Body larger than 64 KiB");
                add("415", "Body is not application/json");
                add(
                    "422",
                    "Body breaks a validation rule (problem code names it)",
                );
            }
        }
    }
    doc
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route does not take that method",
    )
}
