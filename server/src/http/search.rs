//! `GET /search?q=`: the global search box. Jumps straight to the match —
//! the saga when exactly one matches, the trace page when the text is a trace
//! id shared by several sagas — else to the filtered saga list.

use axum::extract::{Query, State};
use axum::response::Redirect;
use sagascope_model::{percent_encode, SagaFilter};
use serde::Deserialize;

use crate::app_state::AppState;
use crate::error::AppError;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

#[tracing::instrument(skip(state))]
pub async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Result<Redirect, AppError> {
    let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(Redirect::to("/sagas"));
    };
    let filter = SagaFilter {
        q: Some(q.to_string()),
        limit: Some("2".into()),
        ..Default::default()
    };
    let page = state
        .store
        .list_sagas(&filter.validate().map_err(AppError::BadRequest)?)
        .await?;
    let encoded = percent_encode(q);
    Ok(match page.items.as_slice() {
        [only] => Redirect::to(&format!("/sagas/{}", percent_encode(&only.saga_id))),
        [first, ..] if first.trace_ids.iter().any(|t| t == q) => {
            Redirect::to(&format!("/traces/{encoded}"))
        }
        _ => Redirect::to(&format!("/sagas?q={encoded}")),
    })
}
