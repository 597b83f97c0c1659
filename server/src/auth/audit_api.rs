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
use crate::http::openapi::ErrorBody;

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    summary = "The audit log",
    description = "Audit entries newest first, filtered by actor, action (exact, or a prefix \
        ending in `.` or `*`) and time; keyset-paged by `cursor`. Operator role.",
    params(AuditFilter),
    responses(
        (status = 200, description = "One page of audit entries.", body = AuditPage),
        (status = 400, description = "A filter is invalid; the message names it.", body = ErrorBody),
        (status = 403, description = "The operator role is required.", body = ErrorBody),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, AppError> {
    let query = filter.validate().map_err(AppError::BadRequest)?;
    Ok(Json(state.store.list_audit(&query).await?))
}
