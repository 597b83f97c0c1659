//! One error type for HTTP handlers. Client errors carry their message;
//! server errors are logged and answered with a generic text, except a
//! database that does not answer: that is 503 with what the operator needs
//! (since when, the last error), as `/readyz` says it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sagascope_model::StoreOutage;
use sagascope_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store is down (see [`answer_503_while_the_store_is_down`]).
    #[error("{}", .0.message())]
    StoreUnavailable(StoreOutage),
}

/// Seconds a client should wait before asking again while the store is
/// down: the ping's period.
const RETRY_AFTER_SECONDS: u64 = sagascope_store::STORE_PING_EVERY.as_secs();

/// `/api/v1` while the store is known to be down: 503 at once, rather than
/// every request waiting out the pool's connect timeout to fail the same
/// way. The periodic ping (`sagascope_store::watch_store_availability`)
/// ends the outage within seconds of the database answering again. The
/// OpenAPI document and the live stream need no database and pass.
pub async fn answer_503_while_the_store_is_down(
    axum::extract::State(store): axum::extract::State<Store>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let needs_no_store = path.ends_with("/openapi.json") || path.ends_with("/stream");
    match store.availability().outage() {
        Some(outage) if !needs_no_store => AppError::StoreUnavailable(outage).into_response(),
        _ => next.run(request).await,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone()),
            AppError::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
            AppError::StoreUnavailable(outage) => {
                (StatusCode::SERVICE_UNAVAILABLE, outage.message())
            }
            // Without the store at hand (a plain `?`): the error itself
            // says whether the database is unreachable.
            AppError::Store(error) if sagascope_store::is_store_unavailable(error) => {
                tracing::warn!(%error, "request failed: the store is unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{}: {error}", sagascope_model::STORE_UNAVAILABLE),
                )
            }
            AppError::Store(error) => {
                tracing::error!(%error, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_string(),
                )
            }
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}
