//! The spans beside a trace or a saga, from the configured span source:
//! `GET /api/v1/traces/{trace_id}/spans` and `GET /api/v1/sagas/{saga_id}/spans`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sagascope_model::TraceSpans;
use sagascope_spans::SpanError;

use crate::app_state::AppState;
use crate::http::openapi::ErrorBody;

/// A span read's failure as an HTTP answer: a malformed trace id is the
/// client's (400), a failing Jaeger/Tempo a gateway's (502, "spans
/// unavailable: …"), the database ours (500, details in the log).
#[derive(Debug)]
pub enum SpansApiError {
    NotFound(String),
    Spans(SpanError),
}

impl From<SpanError> for SpansApiError {
    fn from(error: SpanError) -> SpansApiError {
        SpansApiError::Spans(error)
    }
}

impl IntoResponse for SpansApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            SpansApiError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            SpansApiError::Spans(error) if error.is_bad_request() => {
                (StatusCode::BAD_REQUEST, error.to_string())
            }
            SpansApiError::Spans(error) if error.is_upstream() => {
                tracing::warn!(%error, "span source failed");
                (
                    StatusCode::BAD_GATEWAY,
                    format!("spans unavailable: {error}"),
                )
            }
            SpansApiError::Spans(error) => {
                tracing::error!(%error, "span read failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "spans unavailable: internal error; see the server log".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// `GET /api/v1/traces/{trace_id}/spans`: the trace's spans (at most
/// `MAX_SPANS_PER_TRACE`, then `truncated`), with the deep link.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{trace_id}/spans",
    tag = "spans",
    summary = "Spans of a trace",
    description = "The trace's spans from the configured source (sagascope's OTLP receiver, \
        or a Jaeger/Tempo query API, cached), ordered by start, at most 20,000 (then \
        `truncated`), with a deep link to the trace when a URL template is set.",
    params(("trace_id" = String, Path, description = "The trace id: 32 hex digits.")),
    responses(
        (status = 200, description = "The spans of the trace.", body = TraceSpans),
        (status = 400, description = "The trace id is not 32 hex digits.", body = ErrorBody),
        (status = 404, description = "No spans for that trace.", body = ErrorBody),
        (status = 502, description = "The Jaeger/Tempo query API failed.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn trace_spans(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<TraceSpans>, SpansApiError> {
    match state.spans.trace_spans(&trace_id).await? {
        Some(trace) => Ok(Json(trace)),
        None => Err(SpansApiError::NotFound(format!(
            "no spans for trace `{}`",
            trace_id.trim()
        ))),
    }
}

/// `GET /api/v1/sagas/{saga_id}/spans`: the spans of each of the saga's
/// traces that has some (an empty list when none has).
#[utoipa::path(
    get,
    path = "/api/v1/sagas/{saga_id}/spans",
    tag = "spans",
    summary = "Spans of a saga",
    description = "The spans of each of the saga's trace ids that has some (an empty list \
        when none has).",
    params(("saga_id" = String, Path, description = "The saga id.")),
    responses(
        (status = 200, description = "One entry per trace of the saga with spans.", body = Vec<TraceSpans>),
        (status = 404, description = "No saga with that id.", body = ErrorBody),
        (status = 502, description = "The Jaeger/Tempo query API failed.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn saga_spans(
    State(state): State<AppState>,
    Path(saga_id): Path<String>,
) -> Result<Json<Vec<TraceSpans>>, SpansApiError> {
    match state.spans.saga_spans_if_known(&saga_id).await? {
        Some(traces) => Ok(Json(traces)),
        None => Err(SpansApiError::NotFound(format!("no saga `{saga_id}`"))),
    }
}
