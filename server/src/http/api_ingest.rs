use axum::extract::{Query, State};
use axum::Json;
use sagascope_model::IngestErrorView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestErrorsQuery {
    /// How many, from 1 to 1000 (default 100).
    limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestErrorsPage {
    /// Newest first.
    items: Vec<IngestErrorView>,
}

/// `GET /api/v1/ingest/errors?limit=`: newest first.
#[utoipa::path(
    get,
    path = "/api/v1/ingest/errors",
    tag = "ingest",
    summary = "Ingest errors",
    description = "Messages that could not be decoded, newest first, with their Kafka \
        coordinates, the reason and their first bytes.",
    params(IngestErrorsQuery),
    responses(
        (status = 200, description = "The newest ingest errors.", body = IngestErrorsPage),
        (status = 400, description = "`limit` is not an integer from 1 to 1000.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn list_ingest_errors(
    State(state): State<AppState>,
    Query(query): Query<IngestErrorsQuery>,
) -> Result<Json<IngestErrorsPage>, AppError> {
    let limit = match query
        .limit
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => 100,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(AppError::BadRequest(format!(
                    "`limit` must be an integer from 1 to 1000, got `{text}`"
                )))
            }
        },
    };
    Ok(Json(IngestErrorsPage {
        items: state.store.ingest_errors(limit).await?,
    }))
}
