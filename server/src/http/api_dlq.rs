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
use crate::http::openapi::ErrorBody;

/// `GET /api/v1/dlq?topic=&failure_group=&reason=&saga_type=&state=&since=&until=&saga_id=&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/v1/dlq",
    tag = "dlq",
    summary = "List dead letters",
    description = "Dead letters newest first, filtered by DLQ topic, failure group, reason \
        text, saga type, state (one or several, comma-separated), time and saga id; \
        keyset-paged by `cursor`.",
    params(DlqFilter),
    responses(
        (status = 200, description = "One page of dead letters.", body = DeadLetterPage),
        (status = 400, description = "A filter is invalid; the message names it.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/dlq/groups",
    tag = "dlq",
    summary = "Depth per DLQ topic and failure group",
    description = "Depth (open dead letters), totals and ages per DLQ topic and per failure \
        group, deepest first, with the list's filters (`limit` and `cursor` do not apply).",
    params(DlqFilter),
    responses(
        (status = 200, description = "Topics and failure groups.", body = DeadLetterGroups),
        (status = 400, description = "A filter is invalid; the message names it.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/dlq/{id}",
    tag = "dlq",
    summary = "One dead letter",
    description = "Everything about one dead letter: key, headers and value byte-exact \
        (text, or base64 when not readable UTF-8), the failure, the saga and the re-drives.",
    params(("id" = String, Path, description = "The dead letter id `{topic}/{partition}/{offset}`, percent-encoded (`orders.DLT%2F0%2F7`).")),
    responses(
        (status = 200, description = "The dead letter.", body = DeadLetterDetail),
        (status = 404, description = "No dead letter with that id.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_dead_letter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterDetail>, AppError> {
    detail(&state, &id).await
}

/// `GET /api/v1/dlq/{topic}/{partition}/{offset}`: the same, unencoded.
#[utoipa::path(
    get,
    path = "/api/v1/dlq/{topic}/{partition}/{offset}",
    tag = "dlq",
    summary = "One dead letter by its coordinates",
    description = "The same as `GET /api/v1/dlq/{id}`, the id as three path segments.",
    params(("topic" = String, Path, description = "The DLQ topic."), ("partition" = String, Path, description = "The partition."), ("offset" = String, Path, description = "The offset.")),
    responses(
        (status = 200, description = "The dead letter.", body = DeadLetterDetail),
        (status = 404, description = "No dead letter at those coordinates.", body = ErrorBody),
    )
)]
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
