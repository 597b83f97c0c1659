use axum::extract::{Path, Query, State};
use axum::Json;
use sagascope_model::{SagaDetail, SagaFilter, SagaPage};

use crate::app_state::AppState;
use crate::error::AppError;

/// `GET /api/v1/sagas?saga_type=&status=&since=&until=&q=&limit=&cursor=`
#[tracing::instrument(skip(state))]
pub async fn list_sagas(
    State(state): State<AppState>,
    Query(filter): Query<SagaFilter>,
) -> Result<Json<SagaPage>, AppError> {
    let query = filter.validate().map_err(AppError::BadRequest)?;
    Ok(Json(state.store.list_sagas(&query).await?))
}

/// `GET /api/v1/sagas/{saga_id}`: the saga and its timeline.
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
