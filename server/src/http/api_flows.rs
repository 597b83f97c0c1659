//! Learned saga flows (`sagascope_flows`): what the `/types/{saga_type}`
//! page draws, for scripts and other dashboards.

use axum::extract::{Path, State};
use axum::Json;
use sagascope_model::FlowModel;

use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

/// `GET /api/v1/types`
#[utoipa::path(
    get,
    path = "/api/v1/types",
    tag = "flows",
    summary = "Learned flows of every recent saga type",
    description = "For each saga type seen in the last 24 h (at most 64), the flow learned from \
        its latest instances (at most 500): the events as nodes (with the instances that reached \
        each, began or ended there, and whether it is learned to end instances), the hops between \
        consecutive events with their counts and gap percentiles, the usual duration, and for \
        types whose events do not declare their end, how long an instance may be quiet before \
        it is inferred finished. Relearned every 10 s.",
    responses(
        (status = 200, description = "Every learned flow, by saga type.", body = Vec<FlowModel>),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn list_flows(State(state): State<AppState>) -> Json<Vec<FlowModel>> {
    Json(
        state
            .flows
            .all()
            .iter()
            .map(|model| FlowModel::clone(model))
            .collect(),
    )
}

/// `GET /api/v1/types/{saga_type}/flow`
#[utoipa::path(
    get,
    path = "/api/v1/types/{saga_type}/flow",
    tag = "flows",
    summary = "The learned flow of one saga type",
    description = "As one item of `GET /api/v1/types`.",
    params(("saga_type" = String, Path, description = "The saga type.")),
    responses(
        (status = 200, description = "The type's learned flow.", body = FlowModel),
        (status = 404, description = "No flow learned for that type (no instance in the last 24 h, \
            or not learned yet: the first round runs at start-up, then every 10 s).", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_flow(
    State(state): State<AppState>,
    Path(saga_type): Path<String>,
) -> Result<Json<FlowModel>, AppError> {
    state
        .flows
        .get(&saga_type)
        .map(|model| Json(FlowModel::clone(&model)))
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no flow learned for saga type `{saga_type}` (none of its sagas in the last 24 h, or not learned yet)"
            ))
        })
}
