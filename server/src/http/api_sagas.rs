use axum::extract::{Path, Query, State};
use axum::Json;
use sagascope_model::{SagaDetail, SagaFilter, SagaPage};

use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

/// `GET /api/v1/sagas?saga_type=&status=&since=&until=&q=&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/v1/sagas",
    tag = "sagas",
    summary = "List sagas",
    description = "Sagas newest first, filtered by type, status (one or several, \
        comma-separated), start time and a search text (saga id, trace id or business key); \
        keyset-paged by `cursor` (pass `next_cursor` of the previous page).",
    params(SagaFilter),
    responses(
        (status = 200, description = "One page of sagas.", body = SagaPage),
        (status = 400, description = "A filter is invalid; the message names it.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn list_sagas(
    State(state): State<AppState>,
    Query(filter): Query<SagaFilter>,
) -> Result<Json<SagaPage>, AppError> {
    let query = filter.validate().map_err(AppError::BadRequest)?;
    Ok(Json(state.store.list_sagas(&query).await?))
}

/// `GET /api/v1/sagas/{saga_id}`: the saga and its timeline.
#[utoipa::path(
    get,
    path = "/api/v1/sagas/{saga_id}",
    tag = "sagas",
    summary = "One saga with its timeline",
    description = "The saga and every event of it in event-time order. The id of a saga \
        that was merged into another also finds the winner.",
    params(("saga_id" = String, Path, description = "The saga id.")),
    responses(
        (status = 200, description = "The saga and its events.", body = SagaDetail),
        (status = 404, description = "No saga with that id.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_saga(
    State(state): State<AppState>,
    Path(saga_id): Path<String>,
) -> Result<Json<SagaDetail>, AppError> {
    state
        .store
        .saga_detail(&saga_id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no saga with id `{saga_id}`")))
}
