//! Row ↔ model conversions shared by the queries.

use sagascope_domain::{from_micros, SagaProjection};
use sagascope_model::{Header, IngestErrorView, Phase, SagaStatus, SagaSummary, TimelineEvent};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

pub const EVENT_COLUMNS: &str = "event_id, saga_id, phase, step, event_type, occurred_at_us, published_at_us, ingested_at_us, topic, kafka_partition, kafka_offset, trace_id, span_id, headers, payload, error";

pub const INGEST_ERROR_COLUMNS: &str =
    "id, topic, kafka_partition, kafka_offset, reason, first_bytes, message_key, published_at_us, ingested_at_us";

pub fn projection_from_json(text: &str) -> Result<SagaProjection> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("saga projection: {e}")))
}

/// A saga row (`status`, `projection`) as its summary. Status comes from the
/// projection except `stalled`, which only the stall sweep sets.
pub fn summary_from_row(row: &AnyRow) -> Result<SagaSummary> {
    let text: String = row.try_get("projection")?;
    let mut summary = projection_from_json(&text)?.summary();
    let status: String = row.try_get("status")?;
    if status == SagaStatus::Stalled.as_str() {
        summary.status = SagaStatus::Stalled;
    }
    Ok(summary)
}

pub fn timeline_event_from_row(row: &AnyRow) -> Result<TimelineEvent> {
    let phase_text: String = row.try_get("phase")?;
    let headers_text: String = row.try_get("headers")?;
    let payload_text: String = row.try_get("payload")?;
    let headers: Vec<Header> = serde_json::from_str(&headers_text)
        .map_err(|e| StoreError::Corrupt(format!("event headers: {e}")))?;
    let payload = serde_json::from_str(&payload_text)
        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    Ok(TimelineEvent {
        event_id: row.try_get("event_id")?,
        saga_id: row.try_get("saga_id")?,
        phase: Phase::parse(&phase_text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown phase {phase_text}")))?,
        step: row.try_get("step")?,
        event_type: row.try_get("event_type")?,
        occurred_at: from_micros(row.try_get("occurred_at_us")?),
        published_at: row
            .try_get::<Option<i64>, _>("published_at_us")?
            .map(from_micros),
        ingested_at: from_micros(row.try_get("ingested_at_us")?),
        topic: row.try_get("topic")?,
        partition: row.try_get("kafka_partition")?,
        offset: row.try_get("kafka_offset")?,
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        headers,
        payload,
        error: row.try_get("error")?,
    })
}

pub fn ingest_error_from_row(row: &AnyRow) -> Result<IngestErrorView> {
    Ok(IngestErrorView {
        id: row.try_get("id")?,
        topic: row.try_get("topic")?,
        partition: row.try_get("kafka_partition")?,
        offset: row.try_get("kafka_offset")?,
        reason: row.try_get("reason")?,
        first_bytes: row.try_get("first_bytes")?,
        key: row.try_get("message_key")?,
        published_at: row
            .try_get::<Option<i64>, _>("published_at_us")?
            .map(from_micros),
        ingested_at: from_micros(row.try_get("ingested_at_us")?),
    })
}
