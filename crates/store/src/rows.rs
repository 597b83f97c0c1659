//! Row ↔ model conversions shared by the queries.

use sagascope_domain::{from_micros, KafkaCoords, SagaEvent, SagaProjection};
use sagascope_model::{Header, IngestErrorView, Phase, SagaStatus, SagaSummary, TimelineEvent};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

pub const EVENT_COLUMNS: &str = "event_id, saga_id, phase, step, event_type, occurred_at_us, published_at_us, ingested_at_us, topic, kafka_partition, kafka_offset, trace_id, span_id, headers, payload, error";

/// Every stored column of an event, to rebuild the canonical event (merges,
/// reprojection).
pub const FULL_EVENT_COLUMNS: &str = "event_id, saga_id, saga_type, step, phase, event_type, trace_id, span_id, request_id, occurred_at_us, published_at_us, ingested_at_us, source_type, source_id, topic, kafka_partition, kafka_offset, headers, payload, error, explicit_saga_id, rule_classified, business_keys";

pub const INGEST_ERROR_COLUMNS: &str =
    "id, topic, kafka_partition, kafka_offset, reason, first_bytes, message_key, published_at_us, ingested_at_us";

pub fn projection_from_json(text: &str) -> Result<SagaProjection> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("saga projection: {e}")))
}

/// A saga row (`status`, `projection`) as its summary. Status comes from the
/// projection except what only the stall sweep sets: `stalled`, or the
/// inferred end of a quiet choreography (`status_inferred`). An undeclared
/// choreography that a failure, compensation or `{Type}Completed` event
/// ended is the projection's own status (with its end time): not inferred.
pub fn summary_from_row(row: &AnyRow) -> Result<SagaSummary> {
    let text: String = row.try_get("projection")?;
    let mut summary = projection_from_json(&text)?.summary();
    // The column holds the learned pairs' judgement as well as the events'
    // own (statements that do not select it keep the events' own).
    if let Ok(missing) = row.try_get::<Option<String>, _>("missing_compensations") {
        summary.missing_compensations = match missing {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("missing compensations: {e}")))?,
            None => Vec::new(),
        };
    }
    let status: String = row.try_get("status")?;
    if status == SagaStatus::Stalled.as_str() {
        summary.status = SagaStatus::Stalled;
    } else if matches!(
        summary.status,
        SagaStatus::Running | SagaStatus::Compensating
    ) {
        if let Some(swept) = SagaStatus::parse(&status).filter(|s| *s != summary.status) {
            summary.status = swept;
            summary.status_inferred = true;
            // Statements that do not select it read as the flat timeout's.
            let from: Option<String> = row.try_get("inferred_from").ok().flatten();
            // Stopped at a learned end event: it ended with that event.
            if from.as_deref() == Some(crate::INFERRED_FROM_LEARNED_END) {
                summary.ended_at = Some(summary.last_event_at);
                summary.duration_ms = Some(
                    (summary.last_event_at - summary.started_at)
                        .num_milliseconds()
                        .max(0),
                );
            }
            summary.inferred_from = Some(from.unwrap_or_else(|| "quiet".to_string()));
        }
    }
    Ok(summary)
}

pub fn timeline_event_from_row(row: &AnyRow) -> Result<TimelineEvent> {
    let headers_text: String = row.try_get("headers")?;
    let payload_text: String = row.try_get("payload")?;
    let headers: Vec<Header> = serde_json::from_str(&headers_text)
        .map_err(|e| StoreError::Corrupt(format!("event headers: {e}")))?;
    let payload = serde_json::from_str(&payload_text)
        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    let e = crate::read_timeline::EventScalars::from_row(row)?;
    Ok(TimelineEvent {
        event_id: e.event_id,
        saga_id: e.saga_id,
        phase: e.phase,
        step: e.step,
        event_type: e.event_type,
        occurred_at: e.occurred_at,
        published_at: e.published_at,
        ingested_at: e.ingested_at,
        topic: e.topic,
        partition: e.partition,
        offset: e.offset,
        trace_id: e.trace_id,
        span_id: e.span_id,
        headers,
        payload,
        error: e.error,
    })
}

fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("event {column}: {e}")))
}

/// A row selected with [`FULL_EVENT_COLUMNS`] as the canonical event. The
/// correlation fields are left empty: the caller re-derives them.
pub fn saga_event_from_row(row: &AnyRow) -> Result<SagaEvent> {
    let phase_text: String = row.try_get("phase")?;
    let partition: i64 = row.try_get("kafka_partition")?;
    let rule_classified: i64 = row.try_get("rule_classified")?;
    Ok(SagaEvent {
        event_id: row.try_get("event_id")?,
        saga_id: row.try_get("saga_id")?,
        explicit_saga_id: row.try_get("explicit_saga_id")?,
        rule_classified: rule_classified != 0,
        correlation_rank: 0,
        correlation_keys: Vec::new(),
        saga_type: row.try_get("saga_type")?,
        step: row.try_get("step")?,
        phase: Phase::parse(&phase_text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown phase {phase_text}")))?,
        event_type: row.try_get("event_type")?,
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        request_id: row.try_get("request_id")?,
        business_keys: json_column(row, "business_keys")?,
        occurred_at: from_micros(row.try_get("occurred_at_us")?),
        published_at: row
            .try_get::<Option<i64>, _>("published_at_us")?
            .map(from_micros),
        ingested_at: from_micros(row.try_get("ingested_at_us")?),
        source_type: row.try_get("source_type")?,
        source_id: row.try_get("source_id")?,
        coords: KafkaCoords {
            topic: row.try_get("topic")?,
            partition: i32::try_from(partition).unwrap_or_default(),
            offset: row.try_get("kafka_offset")?,
        },
        headers: json_column(row, "headers")?,
        payload: json_column(row, "payload")?,
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
