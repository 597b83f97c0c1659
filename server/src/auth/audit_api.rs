//! `GET /api/v1/audit`: the audit log, newest first, filtered by actor,
//! action (exact or `prefix.`/`prefix*`), `since`/`until`, keyset-paged by
//! `cursor`. Operators and admins only: the log names users, client
//! addresses and the reasons operators gave, which viewers (possibly
//! anonymous) need not see.

use axum::extract::{Query, State};
use axum::Json;
use sagascope_model::{AuditFilter, AuditPage};

use crate::app_state::AppState;
use crate::error::AppError;

pub async fn list_audit(
    State(state): State<AppState>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, AppError> {
    let query = filter.validate().map_err(AppError::BadRequest)?;
    Ok(Json(state.store.list_audit(&query).await?))
}
