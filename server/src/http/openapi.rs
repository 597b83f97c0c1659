//! The OpenAPI 3.1 document of `/api/v1`, generated from the code: the
//! model types derive their schemas (`sagascope-model`'s `openapi`
//! feature), each handler carries a `#[utoipa::path]`, and this file lists
//! them. Served at `GET /api/v1/openapi.json` and rendered by the `/api`
//! reference page (`app::pages::api_reference`).
//!
//! Refusals every operation can meet before its handler runs (the auth
//! middleware's 401/403/413/503) are added by [`MiddlewareRefusals`] rather
//! than repeated on each handler, so a new route gets them too.

use std::sync::{Arc, LazyLock};

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDocument, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    api_dlq, api_dlq_actions, api_flows, api_ingest, api_metrics, api_sagas, api_spans, api_stream,
    api_traces, otlp_receiver,
};
use crate::auth::{audit_api, login, tokens};

/// The body of every refusal and error: `{"error": "…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong, for a person to read.
    pub error: String,
}

/// A retry the broker refused (502): the message, and the outcome with the
/// dead letter back to `new` and its idempotency key free.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedRetryBody {
    pub error: String,
    pub outcome: sagascope_model::RetryOutcome,
}

/// Answer of `POST /api/v1/auth/logout` (JSON requests).
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutResponse {
    /// Whether a session was found and ended.
    pub logged_out: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sagascope API",
        description = "The JSON and SSE API of sagascope under `/api/v1`: sagas and their \
            timelines, traces and their spans, ingest errors, the overview's metrics and \
            alerts, dead letters and their re-drive, authentication and the audit log.\n\n\
            Reads need a signed-in user (an API token, `Authorization: Bearer ssk_…`, or the \
            session cookie) unless the server runs with `--anonymous-viewer`. Every mutation \
            needs a signed-in user with the route's role; with a cookie session it also needs \
            a same-origin `Origin` (or `Referer`) and the session's CSRF token in \
            `x-csrf-token` (from `POST /api/v1/auth/login` or `GET /api/v1/auth/me`). \
            Errors are `{\"error\": \"…\"}` with a 4xx status for bad input."
    ),
    servers((url = "/", description = "This sagascope")),
    paths(
        api_sagas::list_sagas,
        api_sagas::get_saga,
        api_flows::list_flows,
        api_flows::get_flow,
        api_traces::get_trace,
        api_spans::trace_spans,
        api_spans::saga_spans,
        api_ingest::list_ingest_errors,
        api_stream::stream,
        api_metrics::overview,
        api_metrics::saga_type,
        api_metrics::lag,
        api_metrics::alerts,
        api_dlq::list_dead_letters,
        api_dlq::dead_letter_groups,
        api_dlq::get_dead_letter,
        api_dlq::get_dead_letter_at,
        api_dlq_actions::bulk,
        api_dlq_actions::list_jobs,
        api_dlq_actions::get_job,
        api_dlq_actions::cancel,
        api_dlq_actions::retry,
        api_dlq_actions::retry_at,
        api_dlq_actions::discard,
        api_dlq_actions::discard_at,
        login::login,
        login::logout,
        login::me,
        tokens::create_token,
        tokens::list_users,
        audit_api::list_audit,
        openapi_json,
        otlp_receiver::receive_traces,
    ),
    components(schemas(ErrorBody, RefusedRetryBody, LogoutResponse)),
    modifiers(&SecuritySchemes, &MiddlewareRefusals),
    security(("api_token" = []), ("session_cookie" = [])),
    tags(
        (name = "sagas", description = "Saga instances: the list with its filters, one saga with its timeline."),
        (name = "flows", description = "Each saga type's flow, learned from its latest instances: usual order, hop times, end events."),
        (name = "traces", description = "Everything that carried one trace id."),
        (name = "spans", description = "The spans of a trace or a saga, from the OTLP receiver or a Jaeger/Tempo query API."),
        (name = "ingest", description = "Messages that could not be decoded."),
        (name = "stream", description = "Live updates as Server-Sent Events."),
        (name = "metrics", description = "The overview's figures, lag and alerts over a time window."),
        (name = "dlq", description = "Dead letters: list, groups, one message with its bytes."),
        (name = "retry", description = "Re-drive and discard of dead letters, and bulk retry jobs (operator)."),
        (name = "auth", description = "Login, logout, the current user, API tokens and users."),
        (name = "audit", description = "The append-only audit log (operator)."),
        (name = "meta", description = "This document."),
        (name = "otlp", description = "The OTLP/HTTP trace receiver (outside /api/v1; its own token)."),
    )
)]
pub struct ApiDoc;

/// The three ways to authenticate (see `crate::auth::identify`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                sagascope_auth::SESSION_COOKIE_NAME,
                "The session cookie `POST /api/v1/auth/login` sets.",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                sagascope_auth::CSRF_HEADER,
                "The session's CSRF token; mutations with the session cookie need it.",
            ))),
        );
        components.add_security_scheme(
            "otlp_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Adds the auth middleware's refusals to every operation that needs a
/// signed-in user (all but the login).
struct MiddlewareRefusals;

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build(),
    )
}

impl Modify for MiddlewareRefusals {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The login is open: it has its own answers; so is the OTLP
            // receiver (outside /api/v1, its own token).
            if path == crate::auth::middleware::LOGIN_API || !path.starts_with("/api/v1/") {
                continue;
            }
            let operations = [(false, item.get.as_mut()), (true, item.post.as_mut())];
            for (mutation, operation) in operations {
                let Some(operation) = operation else { continue };
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                };
                add(
                    "401",
                    "Not signed in (reads need a user unless `--anonymous-viewer`), or the \
                     bearer token is invalid, expired or revoked.",
                );
                add(
                    "503",
                    "Authentication is unavailable: the database could not be reached.",
                );
                if mutation {
                    add(
                        "403",
                        "Refused: a cross-site Origin, a missing or invalid CSRF token (cookie \
                         sessions), or the route's role is missing.",
                    );
                    add(
                        "413",
                        "The form body read for its `csrf_token` field is larger than 1 MiB.",
                    );
                }
            }
        }
    }
}

/// The document, built once.
pub static DOCUMENT: LazyLock<Arc<String>> = LazyLock::new(|| {
    Arc::new(
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serialises"),
    )
});

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    summary = "The OpenAPI document",
    description = "This API as an OpenAPI 3.1 document, generated from the code.",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = serde_json::Value, content_type = "application/json"),
    )
)]
pub async fn openapi_json() -> Response {
    let mut response = DOCUMENT.as_str().to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
