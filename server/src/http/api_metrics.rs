//! `/api/v1/metrics/*` and `/api/v1/alerts`: the overview's figures as JSON.
//! Every endpoint takes `window` (15m, 1h, 6h, 24h, 7d) and an optional
//! `at` (RFC 3339) that ends the window somewhere in the past instead of now.

use axum::extract::{Path, Query, State};
use axum::Json;
use sagascope_model::{
    AlertList, LagReport, MetricsWindow, OverviewMetrics, SagaTypeMetrics, Timestamp,
};
use serde::Deserialize;

use crate::app_state::AppState;
use crate::error::AppError;

#[derive(Debug, Default, Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
    at: Option<String>,
}

impl WindowQuery {
    fn resolve(&self, default: MetricsWindow) -> Result<(MetricsWindow, Timestamp), AppError> {
        let window = match self.window.as_deref().map(str::trim) {
            None | Some("") => default,
            Some(text) => MetricsWindow::parse(text).map_err(AppError::BadRequest)?,
        };
        let at = match self.at.as_deref().map(str::trim) {
            None | Some("") => chrono::Utc::now(),
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    AppError::BadRequest(format!(
                        "`at` must be an RFC 3339 time such as 2026-11-21T10:00:00Z, got `{text}`"
                    ))
                })?,
        };
        Ok((window, at))
    }
}

/// `GET /api/v1/metrics/overview?window=&at=`
#[tracing::instrument(skip(state))]
pub async fn overview(
    State(state): State<AppState>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<OverviewMetrics>, AppError> {
    let (window, at) = query.resolve(MetricsWindow::default())?;
    Ok(Json(state.overview.overview(window, at).await?))
}

/// `GET /api/v1/metrics/saga-types/{type}?window=&at=`: one type with its steps.
#[tracing::instrument(skip(state))]
pub async fn saga_type(
    State(state): State<AppState>,
    Path(saga_type): Path<String>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<SagaTypeMetrics>, AppError> {
    let (window, at) = query.resolve(MetricsWindow::default())?;
    state
        .overview
        .saga_type(&saga_type, window, at)
        .await?
        .map(Json)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no saga of type `{saga_type}` started in the {} window",
                window.as_str()
            ))
        })
}

/// `GET /api/v1/metrics/lag?window=&at=`: outbox relay and consumer lag per
/// topic, and the watched consumer groups.
#[tracing::instrument(skip(state))]
pub async fn lag(
    State(state): State<AppState>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<LagReport>, AppError> {
    let (window, at) = query.resolve(MetricsWindow::default())?;
    Ok(Json(state.overview.lag(window, at).await?))
}

/// `GET /api/v1/alerts?window=&at=`: breached thresholds, worst first
/// (window 15 m unless given).
#[tracing::instrument(skip(state))]
pub async fn alerts(
    State(state): State<AppState>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<AlertList>, AppError> {
    let (window, at) = query.resolve(MetricsWindow::Minutes15)?;
    Ok(Json(state.overview.alerts(window, at).await?))
}
