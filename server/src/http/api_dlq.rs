//! Dead letters, read side: `GET /api/v1/dlq` (filtered list, newest
//! first, keyset-paged), `/api/v1/dlq/groups` (depth and age per DLQ topic
//! and per failure group) and `/api/v1/dlq/{id}` (everything, bytes
//! included). Ids are `{topic}/{partition}/{offset}`: send them
//! percent-encoded (`orders.DLT%2F0%2F7`) or as three path segments.

use axum::extract::{Path, Query, State};
use axum::Json;
use sagascope_model::{DeadLetterDetail, DeadLetterGroups, DeadLetterPage, DlqFilter};

use crate::app_state::AppState;
use crate::error::AppError;

/// `GET /api/v1/dlq?topic=&failure_group=&reason=&saga_type=&state=&since=&until=&saga_id=&limit=&cursor=`
#[tracing::instrument(skip(state))]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    Query(filter): Query<DlqFilter>,
) -> Result<Json<DeadLetterPage>, AppError> {
    let query = filter.validate().map_err(AppError::BadRequest)?;
    Ok(Json(state.store.list_dead_letters(&query).await?))
}

/// `GET /api/v1/dlq/groups`, with the list's filters (`limit` and `cursor`
/// do not apply). Depth counts the states in `depth_states`.
#[tracing::instrument(skip(state))]
pub async fn dead_letter_groups(
    State(state): State<AppState>,
    Query(filter): Query<DlqFilter>,
) -> Result<Json<DeadLetterGroups>, AppError> {
    let query = DlqFilter {
        limit: None,
        cursor: None,
        ..filter
    }
    .validate()
    .map_err(AppError::BadRequest)?;
    Ok(Json(
        state
            .store
            .dead_letter_groups(&query, chrono::Utc::now())
            .await?,
    ))
}

/// `GET /api/v1/dlq/{id}` with the id percent-encoded.
#[tracing::instrument(skip(state))]
pub async fn get_dead_letter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterDetail>, AppError> {
    detail(&state, &id).await
}

/// `GET /api/v1/dlq/{topic}/{partition}/{offset}`: the same, unencoded.
#[tracing::instrument(skip(state))]
pub async fn get_dead_letter_at(
    State(state): State<AppState>,
    Path((topic, partition, offset)): Path<(String, String, String)>,
) -> Result<Json<DeadLetterDetail>, AppError> {
    detail(&state, &format!("{topic}/{partition}/{offset}")).await
}

async fn detail(state: &AppState, id: &str) -> Result<Json<DeadLetterDetail>, AppError> {
    state
        .store
        .dead_letter(id)
        .await?
        .map(|mut detail| {
            state.redaction.apply_to_dead_letter(&mut detail);
            Json(detail)
        })
        .ok_or_else(|| AppError::NotFound(format!("no dead letter with id `{id}`")))
}
