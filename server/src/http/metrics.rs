//! `GET /metrics`: Prometheus text exposition of sagascope's series (the
//! ingest's counters and histograms: see `sagascope_ingest::record_batch`),
//! plus `sagascope_dlq_depth{topic}` read from the store at each scrape
//! (re-drives and discards change it outside the ingest). One recorder per
//! process, installed on first use.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app_state::AppState;

/// Histogram buckets for every `*_seconds` series: lags and durations from
/// milliseconds to minutes.
const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder (installed and described once).
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            {
                Ok(with_buckets) => with_buckets,
                Err(error) => {
                    // Only an empty bucket list is refused.
                    tracing::warn!(%error, "histogram buckets refused; exporting summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // With OTLP metric export on, the same updates also go to
            // OpenTelemetry instruments; without it, Prometheus alone.
            let installed = if crate::telemetry::metrics_exported() {
                metrics::set_global_recorder(crate::telemetry::MetricsBridge::new(
                    recorder,
                    &SECONDS_BUCKETS,
                ))
                .is_ok()
            } else {
                metrics::set_global_recorder(recorder).is_ok()
            };
            if !installed {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            sagascope_ingest::describe_ingest_metrics();
            handle
        })
        .clone()
}

#[tracing::instrument(skip(state))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let handle = prometheus();
    // A store outage must not hide the other series: log and go on.
    match state.store.dlq_depth_by_topic(chrono::Utc::now()).await {
        Ok(topics) => {
            for topic in topics {
                metrics::gauge!("sagascope_dlq_depth", "topic" => topic.topic)
                    .set(topic.depth as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "DLQ depth for /metrics failed"),
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
