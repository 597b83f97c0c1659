use axum::extract::{Path, State};
use axum::Json;
use sagascope_model::TraceView;

use crate::app_state::AppState;
use crate::error::AppError;

/// `GET /api/v1/traces/{trace_id}`: every saga and event with that trace id.
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
