//! The HTTP surface: `/api/v1` (JSON + SSE), health probes, and the Leptos
//! pages with their static assets.

mod api_ingest;
mod api_metrics;
mod api_sagas;
mod api_stream;
mod api_traces;
mod health;
mod metrics;
mod search;

use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app_state::AppState;

pub use metrics::prometheus;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/sagas", get(api_sagas::list_sagas))
        .route("/sagas/{saga_id}", get(api_sagas::get_saga))
        .route("/traces/{trace_id}", get(api_traces::get_trace))
        .route("/ingest/errors", get(api_ingest::list_ingest_errors))
        .route("/stream", get(api_stream::stream))
        .route("/metrics/overview", get(api_metrics::overview))
        .route(
            "/metrics/saga-types/{saga_type}",
            get(api_metrics::saga_type),
        )
        .route("/metrics/lag", get(api_metrics::lag))
        .route("/alerts", get(api_metrics::alerts));

    let routes = generate_route_list(app::App);
    let store = state.store.clone();
    let overview = state.overview.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/search", get(search::search))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(store.clone());
                provide_context(overview.clone());
            },
            move || app::shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
