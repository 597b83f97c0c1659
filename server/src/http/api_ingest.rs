use axum::extract::{Query, State};
use axum::Json;
use sagascope_model::IngestErrorView;
use serde::{Deserialize, Serialize};

use crate::app_state::AppState;
use crate::error::AppError;

#[derive(Debug, Deserialize)]
pub struct IngestErrorsQuery {
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IngestErrorsPage {
    items: Vec<IngestErrorView>,
}

/// `GET /api/v1/ingest/errors?limit=`: newest first.
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
