//! Dead-letter rows ↔ API shapes. Key and value are byte columns (BYTEA,
//! BLOB); headers are JSON `[[name, base64 or null], …]` so that any bytes
//! survive the text column exactly.

use sagascope_domain::from_micros;
use sagascope_model::{
    base64_decode, base64_encode, ByteText, DeadLetterDetail, DeadLetterHeader, DeadLetterState,
    DeadLetterSummary,
};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

/// Columns of a list row.
pub(crate) const SUMMARY_COLUMNS: &str = "id, dlq_topic, dlq_partition, dlq_offset, dead_lettered_at_us, ingested_at_us, format, \
     original_topic, original_partition, original_offset, exception_class, exception_message, failure_group, \
     linked_saga_id, linked_saga_type, saga_id, trace_id, event_id, event_type, state, state_changed_at_us, state_reason, \
     retry_of, retry_count, failed_again_of";

/// Columns of the detail: the list's and the bytes, stack trace and origin.
pub(crate) const DETAIL_COLUMNS: &str = "id, dlq_topic, dlq_partition, dlq_offset, dead_lettered_at_us, ingested_at_us, format, \
     original_topic, original_partition, original_offset, exception_class, exception_message, failure_group, \
     linked_saga_id, linked_saga_type, saga_id, trace_id, event_id, event_type, state, state_changed_at_us, state_reason, \
     retry_of, retry_count, failed_again_of, \
     dlq_timestamp_us, message_key, message_value, headers, stacktrace, original_timestamp_us, original_group";

/// Headers as stored: exact names, values base64 (null stays null).
pub(crate) fn headers_to_json(headers: &[(String, Option<Vec<u8>>)]) -> String {
    let pairs: Vec<(&str, Option<String>)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_deref().map(base64_encode)))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

/// The stored headers, byte-exact.
pub(crate) fn headers_from_json(text: &str) -> Result<Vec<(String, Option<Vec<u8>>)>> {
    let pairs: Vec<(String, Option<String>)> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("dead-letter headers: {e}")))?;
    pairs
        .into_iter()
        .map(|(name, value)| {
            let bytes = match value {
                None => None,
                Some(text) => Some(base64_decode(&text).ok_or_else(|| {
                    StoreError::Corrupt(format!("dead-letter header `{name}` is not base64"))
                })?),
            };
            Ok((name, bytes))
        })
        .collect()
}

fn state_of(row: &AnyRow) -> Result<DeadLetterState> {
    let text: String = row.try_get("state")?;
    DeadLetterState::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown dead-letter state `{text}`")))
}

pub(crate) fn summary_from_row(row: &AnyRow) -> Result<DeadLetterSummary> {
    let retry_count: i64 = row.try_get("retry_count")?;
    Ok(DeadLetterSummary {
        id: row.try_get("id")?,
        dlq_topic: row.try_get("dlq_topic")?,
        dlq_partition: row.try_get("dlq_partition")?,
        dlq_offset: row.try_get("dlq_offset")?,
        dead_lettered_at: from_micros(row.try_get("dead_lettered_at_us")?),
        ingested_at: from_micros(row.try_get("ingested_at_us")?),
        format: row.try_get("format")?,
        original_topic: row.try_get("original_topic")?,
        original_partition: row.try_get("original_partition")?,
        original_offset: row.try_get("original_offset")?,
        exception_class: row.try_get("exception_class")?,
        exception_message: row.try_get("exception_message")?,
        failure_group: row.try_get("failure_group")?,
        saga_id: row.try_get("linked_saga_id")?,
        saga_type: row.try_get("linked_saga_type")?,
        declared_saga_id: row.try_get("saga_id")?,
        trace_id: row.try_get("trace_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        state: state_of(row)?,
        state_changed_at: from_micros(row.try_get("state_changed_at_us")?),
        state_reason: row.try_get("state_reason")?,
        retry_of: row.try_get("retry_of")?,
        retry_count: u32::try_from(retry_count).unwrap_or(u32::MAX),
        failed_again_of: row.try_get("failed_again_of")?,
    })
}

pub(crate) fn detail_from_row(row: &AnyRow) -> Result<DeadLetterDetail> {
    let key: Option<Vec<u8>> = row.try_get("message_key")?;
    let value: Option<Vec<u8>> = row.try_get("message_value")?;
    let headers_text: String = row.try_get("headers")?;
    let headers = headers_from_json(&headers_text)?
        .into_iter()
        .map(|(key, value)| DeadLetterHeader {
            key,
            value: value.as_deref().map(ByteText::of),
        })
        .collect();
    Ok(DeadLetterDetail {
        summary: summary_from_row(row)?,
        dlq_timestamp: row
            .try_get::<Option<i64>, _>("dlq_timestamp_us")?
            .map(from_micros),
        key: key.as_deref().map(ByteText::of),
        value: value.as_deref().map(ByteText::of),
        headers,
        stacktrace: row.try_get("stacktrace")?,
        original_timestamp: row
            .try_get::<Option<i64>, _>("original_timestamp_us")?
            .map(from_micros),
        original_consumer_group: row.try_get("original_group")?,
        redacted_values: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_any_bytes_and_nulls() {
        let headers = vec![
            (
                "kafka_dlt-original-offset".to_string(),
                Some(vec![0, 0, 0, 0, 0, 0, 4, 0]),
            ),
            ("traceparent".to_string(), Some(b"00-abc".to_vec())),
            ("empty".to_string(), Some(Vec::new())),
            ("null".to_string(), None),
            ("dup".to_string(), Some(vec![0xff])),
            ("dup".to_string(), Some(vec![0xfe])),
        ];
        assert_eq!(
            headers_from_json(&headers_to_json(&headers)).unwrap(),
            headers
        );
        assert!(headers_from_json("[[\"x\",\"***\"]]").is_err());
    }
}
