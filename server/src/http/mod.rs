//! The HTTP surface: `/api/v1` (JSON + SSE), health probes, and the Leptos
//! pages with their static assets.

mod api_dlq;
mod api_dlq_actions;
mod api_flows;
mod api_ingest;
mod api_metrics;
mod api_sagas;
mod api_spans;
pub mod api_stream;
mod api_traces;
mod dlq_forms;
mod health;
mod metrics;
pub mod openapi;
mod otlp_receiver;
pub mod request_limits;
mod search;
pub mod stream_limits;

use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sagascope_auth::Role;

use crate::app_state::AppState;
use crate::auth::require;

pub use metrics::prometheus;
pub use otlp_receiver::OTLP_TRACES_PATH;

/// The OTLP receiver alone, for `--otlp-listen` (no pages, no session
/// guard: the handler checks the OTLP token itself).
pub fn otlp_router(state: AppState) -> Router {
    Router::new()
        .route(OTLP_TRACES_PATH, post(otlp_receiver::receive_traces))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/sagas", get(api_sagas::list_sagas))
        .route("/sagas/{saga_id}", get(api_sagas::get_saga))
        .route("/sagas/{saga_id}/spans", get(api_spans::saga_spans))
        .route("/types", get(api_flows::list_flows))
        .route("/types/{saga_type}/flow", get(api_flows::get_flow))
        .route("/traces/{trace_id}", get(api_traces::get_trace))
        .route("/traces/{trace_id}/spans", get(api_spans::trace_spans))
        .route("/ingest/errors", get(api_ingest::list_ingest_errors))
        .route("/stream", get(api_stream::stream))
        .route("/metrics/overview", get(api_metrics::overview))
        .route(
            "/metrics/saga-types/{saga_type}",
            get(api_metrics::saga_type),
        )
        .route("/metrics/lag", get(api_metrics::lag))
        .route("/alerts", get(api_metrics::alerts))
        .route("/dlq", get(api_dlq::list_dead_letters))
        .route("/dlq/groups", get(api_dlq::dead_letter_groups))
        .route("/dlq/{id}", get(api_dlq::get_dead_letter))
        .route(
            "/dlq/{topic}/{partition}/{offset}",
            get(api_dlq::get_dead_letter_at),
        )
        // Re-drive and discard (operator).
        .route(
            "/dlq/retry",
            post(api_dlq_actions::bulk).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/retry-jobs",
            get(api_dlq_actions::list_jobs).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/retry-jobs/{id}",
            get(api_dlq_actions::get_job).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/retry-jobs/{id}/cancel",
            post(api_dlq_actions::cancel).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/{id}/retry",
            post(api_dlq_actions::retry).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/{topic}/{partition}/{offset}/retry",
            post(api_dlq_actions::retry_at).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/{id}/discard",
            post(api_dlq_actions::discard).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/{topic}/{partition}/{offset}/discard",
            post(api_dlq_actions::discard_at).route_layer(require(Role::Operator)),
        )
        // This API's OpenAPI document.
        .route("/openapi.json", get(openapi::openapi_json))
        // Login, logout, me, API tokens, users, audit log.
        .merge(crate::auth::api_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.store.clone(),
            crate::error::answer_503_while_the_store_is_down,
        ));

    let routes = generate_route_list(app::App);
    let store = state.store.clone();
    let overview = state.overview.clone();
    let redaction = state.redaction.clone();
    let spans = state.spans.clone();
    let flows = state.flows.clone();
    let options = state.leptos_options.clone();
    // Every page and server function: the store, the overview, and the
    // request's CSP nonce and session (top bar, CSRF meta tag, roles).
    let context = move || {
        provide_context(store.clone());
        provide_context(overview.clone());
        provide_context((*redaction).clone());
        // The span waterfall's server functions read spans through it.
        provide_context(spans.clone());
        // The saga-type pages and the timeline's "waiting on".
        provide_context(flows.clone());
        // The `/api` reference page renders the OpenAPI document.
        provide_context(app::pages::api_reference::ApiReferenceDocument(
            openapi::DOCUMENT.clone(),
        ));
        crate::auth::provide_request_context();
    };
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/search", get(search::search))
        // OTLP/HTTP trace exports (protobuf or JSON; token checked in the
        // handler, see the auth middleware's exemption).
        .route(OTLP_TRACES_PATH, post(otlp_receiver::receive_traces))
        // The same actions as HTML forms (303 back to the page).
        .route(
            "/dlq/actions/retry",
            post(dlq_forms::retry).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/actions/discard",
            post(dlq_forms::discard).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/actions/bulk-retry",
            post(dlq_forms::bulk).route_layer(require(Role::Operator)),
        )
        .route(
            "/dlq/actions/cancel-job",
            post(dlq_forms::cancel_job_form).route_layer(require(Role::Operator)),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        // Authentication, read/CSRF/mutation guards, and the security
        // headers (CSP with a per-request nonce) on every response.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::auth_middleware,
        ))
        // `/api/v1` errors are JSON, whoever answered them.
        .layer(axum::middleware::from_fn(request_limits::json_error_bodies))
        // The request's span (continuing an incoming `traceparent`) and
        // its duration metric (crate::telemetry).
        .layer(crate::telemetry::http_trace_layer())
        .layer(axum::middleware::from_fn(
            crate::telemetry::record_http_request,
        ))
        // Too-long URLs and oversized server-function bodies, before
        // anything else reads (or audits) them.
        .layer(axum::middleware::from_fn(request_limits::limit_requests))
        .with_state(state)
}
