//! `/api/v1/metrics/*` and `/api/v1/alerts`: the overview's figures as JSON.
//! Every endpoint takes `window` (15m, 1h, 6h, 24h, 7d) and an optional
//! `at` (RFC 3339) that ends the window somewhere in the past instead of now.

use axum::extract::{Path, Query, State};
use axum::Json;
use sagascope_model::{
    AlertList, LagReport, MetricsWindow, OverviewMetrics, SagaTypeMetrics, Timestamp,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// `15m`, `1h`, `6h`, `24h` or `7d` (default 1h; 15m for alerts).
    window: Option<String>,
    /// RFC 3339 time that ends the window (default now).
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
#[utoipa::path(
    get,
    path = "/api/v1/metrics/overview",
    tag = "metrics",
    summary = "The overview's figures",
    description = "Outcome counts, rates and percentiles per saga type, lag per topic, watched consumer groups, ingest health, the DLQ card and the alerts, over the window.",
    params(WindowQuery),
    responses(
        (status = 200, description = "The overview's figures.", body = OverviewMetrics),
        (status = 400, description = "`window` or `at` is invalid.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn overview(
    State(state): State<AppState>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<OverviewMetrics>, AppError> {
    let (window, at) = query.resolve(MetricsWindow::default())?;
    Ok(Json(state.overview.overview(window, at).await?))
}

/// `GET /api/v1/metrics/saga-types/{type}?window=&at=`: one type with its steps.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/saga-types/{saga_type}",
    tag = "metrics",
    summary = "One saga type with its steps",
    description = "The figures of one saga type over the window, with its steps slowest p95 first.",
    params(("saga_type" = String, Path, description = "The saga type."), WindowQuery),
    responses(
        (status = 200, description = "One saga type with its steps.", body = SagaTypeMetrics),
        (status = 400, description = "`window` or `at` is invalid.", body = ErrorBody),
        (status = 404, description = "No saga of that type started in the window.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/metrics/lag",
    tag = "metrics",
    summary = "Lag per topic and consumer group",
    description = "Outbox relay lag and consumer lag per topic (percentiles and series), and the lag of the watched consumer groups.",
    params(WindowQuery),
    responses(
        (status = 200, description = "Lag per topic and consumer group.", body = LagReport),
        (status = 400, description = "`window` or `at` is invalid.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "metrics",
    summary = "Breached thresholds",
    description = "The alerts of the window (15m unless given), worst first.",
    params(WindowQuery),
    responses(
        (status = 200, description = "Breached thresholds.", body = AlertList),
        (status = 400, description = "`window` or `at` is invalid.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn alerts(
    State(state): State<AppState>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<AlertList>, AppError> {
    let (window, at) = query.resolve(MetricsWindow::Minutes15)?;
    Ok(Json(state.overview.alerts(window, at).await?))
}
