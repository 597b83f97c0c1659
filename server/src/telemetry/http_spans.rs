//! The span of each HTTP request and its duration metric.
//!
//! The span is named `{method} {route}` (the axum route template, never
//! the raw path, so traces group by endpoint), is an OpenTelemetry server
//! span, and continues the caller's trace when the request carries a W3C
//! `traceparent` (extracted with the global propagator). Everything the
//! handler does — store queries, retries, log lines — happens inside it.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnRequest, DefaultOnResponse,
    MakeSpan, OnResponse, TraceLayer,
};
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Requests without a matched route (static files, 404s) share one
/// label, so odd paths cannot grow the series.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Routes whose spans are at debug level.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// `tower_http`'s trace layer with sagascope's span and status recording.
pub type HttpTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    DefaultOnRequest,
    ResponseStatus,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
>;

/// The layer for the router (applied with `Router::layer`, so the
/// matched route is known when the span is made).
pub fn http_trace_layer() -> HttpTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(ResponseStatus)
}

/// Makes the server span of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let method = method_label(request.method());
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        };
        macro_rules! request_span {
            ($level:expr) => {
                tracing::span!(
                    $level,
                    "http.request",
                    otel.name = %name,
                    otel.kind = "server",
                    otel.status_code = Empty,
                    http.request.method = method,
                    http.route = route,
                    url.path = %request.uri().path(),
                    http.response.status_code = Empty,
                )
            };
        }
        // Probes and scrapes come every few seconds from machines: at
        // debug, so the default filter keeps them out of traces and logs.
        let span = if route.is_some_and(|r| QUIET_ROUTES.contains(&r)) {
            request_span!(tracing::Level::DEBUG)
        } else {
            request_span!(tracing::Level::INFO)
        };
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        // Without a valid `traceparent` the span starts a trace of its own.
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
        span
    }
}

/// Records the status on the span (5xx marks it as an error), then logs
/// as `tower_http` does by default (at debug).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseStatus;

impl<B> OnResponse<B> for ResponseStatus {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        // As i64: tracing-opentelemetry keeps unsigned values as text.
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        DefaultOnResponse::default().on_response(response, latency, span);
    }
}

/// `sagascope_http_server_request_duration_seconds{method,route,status}`:
/// time to the response head (an SSE stream counts until it starts).
/// A middleware rather than part of the trace layer, whose response hook
/// does not see the request.
pub async fn record_http_request(request: Request, next: Next) -> Response {
    // Here rather than at start: the recorder is installed by then.
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_histogram!(
            "sagascope_http_server_request_duration_seconds",
            metrics::Unit::Seconds,
            "Time to the response head of HTTP requests, by method, route template and status."
        );
    });
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    metrics::histogram!(
        "sagascope_http_server_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The method, or `_OTHER` for one outside HTTP's standard set (as the
/// OpenTelemetry conventions ask: a client cannot invent series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// Request headers as the propagator reads them.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
    }
}
