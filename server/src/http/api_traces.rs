use axum::extract::{Path, State};
use axum::Json;
use sagascope_model::TraceView;

use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

/// `GET /api/v1/traces/{trace_id}`: every saga and event with that trace id.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{trace_id}",
    tag = "traces",
    summary = "Sagas and events of a trace",
    description = "Every saga and every event that carried this trace id.",
    params(("trace_id" = String, Path, description = "The trace id (W3C: 32 hex digits).")),
    responses(
        (status = 200, description = "The sagas and events of the trace.", body = TraceView),
        (status = 404, description = "No event carried that trace id.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_trace(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<TraceView>, AppError> {
    let trace = state.store.trace(&trace_id).await?;
    if trace.events.is_empty() {
        return Err(AppError::NotFound(format!(
            "no events with trace id `{trace_id}`"
        )));
    }
    Ok(Json(trace))
}
