//! Debezium outbox EventRouter messages (seed 003): topic
//! `events.<aggregatetype>`, key = aggregateid, value = the payload JSON (an
//! object, or a JSON string holding JSON), headers `id`, `type`/`eventType`,
//! `trace_id`, `request_id`, `traceparent`, `created_at`. Choreographed sagas
//! carry no saga id: the trace id is the correlation key.
//!
//! Fields the router places in the *envelope* instead of headers
//! (`table.fields.additional.placement=type:envelope:eventType`) arrive as
//! `{"payload": …, "eventType": …, "id": …}`: they are read from the
//! envelope and the event's payload is the inner `payload`.

use sagascope_model::Timestamp;
use serde_json::Value;

use serde_json::Map;

use super::fields::{
    coords_id, parse_timestamp, parse_timestamp_text, string_field, unwrap_json_string,
    TraceCandidates,
};
use super::DecodeError;
use crate::rules::Rules;
use crate::saga_event::{RawMessage, SagaEvent};

const FORMAT: &str = "debezium outbox";
const TOPIC_PREFIXES: [&str; 2] = ["events.", "outbox."];

pub fn has_outbox_headers(message: &RawMessage) -> bool {
    message.header("id").is_some()
        && (message.header("type").is_some() || message.header("eventType").is_some())
}

pub fn is_outbox_topic(topic: &str) -> bool {
    TOPIC_PREFIXES.iter().any(|p| topic.starts_with(p))
}

/// Names the EventRouter may place in the envelope next to `payload`.
const PLACED_FIELDS: [&str; 12] = [
    "eventType",
    "type",
    "event_type",
    "id",
    "eventId",
    "aggregateType",
    "aggregatetype",
    "aggregateId",
    "aggregateid",
    "traceId",
    "trace_id",
    "traceparent",
];

/// (envelope with the placed fields, the event's payload).
fn split_envelope(value: Value) -> (Option<Map<String, Value>>, Value) {
    match value {
        Value::Object(mut object)
            if object.contains_key("payload")
                && PLACED_FIELDS.iter().any(|f| object.contains_key(*f)) =>
        {
            let inner = object.remove("payload").map(unwrap_json_string);
            (Some(object), inner.unwrap_or(Value::Null))
        }
        other => (None, other),
    }
}

pub fn decode(
    message: &RawMessage,
    value: Value,
    rules: &Rules,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let (envelope, payload) = split_envelope(value);
    let envelope = envelope.as_ref();
    let object = payload.as_object();
    // Placed envelope fields first, then the payload's own.
    let from_payload = |names: &[&str]| {
        envelope
            .and_then(|e| string_field(e, names))
            .or_else(|| object.and_then(|o| string_field(o, names)))
    };
    let event_type = message
        .header("type")
        .or_else(|| message.header("eventType"))
        .or_else(|| from_payload(&["type", "eventType", "event_type"]))
        .filter(|t| !t.trim().is_empty())
        .ok_or(DecodeError::MissingField {
            format: FORMAT,
            field: "type",
        })?;
    let coords = &message.coords;
    let event_id = message
        .header("id")
        .or_else(|| envelope.and_then(|e| string_field(e, &["id"])))
        .or_else(|| from_payload(&["event_id", "eventId"]))
        .unwrap_or_else(|| coords_id(message));
    let placed = |names: &[&str]| envelope.and_then(|e| string_field(e, names));
    let aggregate_type = message
        .header("aggregatetype")
        .or_else(|| placed(&["aggregatetype", "aggregateType"]))
        .or_else(|| {
            TOPIC_PREFIXES
                .iter()
                .find_map(|p| coords.topic.strip_prefix(p))
                .map(str::to_string)
        });
    let aggregate_id = message
        .key_text()
        .or_else(|| message.header("aggregateid"))
        .or_else(|| placed(&["aggregateid", "aggregateId"]));
    let trace = TraceCandidates::new()
        .traceparent("traceparent header", message.header("traceparent"))
        .traceparent("envelope field traceparent", placed(&["traceparent"]))
        .trace_id_headers(message)
        .trace_id_fields("envelope", envelope)
        .trace_id_fields("payload", object)
        .resolve();
    let explicit_saga_id = message
        .header("saga_id")
        .or_else(|| from_payload(&["saga_id", "sagaId"]));
    let occurred_at = message
        .header("created_at")
        .as_deref()
        .and_then(parse_timestamp_text)
        .or_else(|| {
            ["created_at", "occurred_at", "timestamp"]
                .iter()
                .find_map(|f| {
                    envelope
                        .and_then(|e| e.get(*f))
                        .or_else(|| object.and_then(|o| o.get(*f)))
                        .and_then(parse_timestamp)
                })
        })
        .or(message.timestamp)
        .unwrap_or(ingested_at);
    let classification = rules.classify(&event_type);
    let error = if classification.phase.is_failure() {
        from_payload(&["reason", "error", "error_message", "failure_reason"])
    } else {
        None
    };
    let mut headers = message.headers_as_text();
    trace.report_rejected(&mut headers);

    Ok(SagaEvent {
        event_id,
        saga_id: String::new(),
        explicit_saga_id,
        rule_classified: true,
        correlation_rank: 0,
        correlation_keys: Vec::new(),
        saga_type: classification.saga_type,
        step: classification.step,
        phase: classification.phase,
        event_type,
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        request_id: message
            .header("request_id")
            .or_else(|| from_payload(&["request_id"])),
        business_keys: aggregate_id.iter().cloned().collect(),
        occurred_at,
        published_at: message.timestamp,
        ingested_at,
        source_type: aggregate_type,
        source_id: aggregate_id,
        coords: coords.clone(),
        headers,
        payload,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ingested_at, message};
    use super::super::Decoder;
    use super::*;
    use chrono::TimeZone;
    use sagascope_model::Phase;
    use serde_json::json;

    const RULES: &str = r#"
        [[saga]]
        type = "scan_reward"
        [saga.events]
        ImageRegistered = { step = "RegisterImage", phase = "saga_started" }
        CharacterAcquireFailed = { step = "AcquireCharacter", phase = "step_failed" }
    "#;

    fn headers(event_type: &str) -> Vec<(&str, &str)> {
        vec![
            ("id", "0b6f4a5e-1c1e-4e53-9a55-3f0c2e1d9a01"),
            ("type", event_type),
            ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
            ("request_id", "req-77"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01",
            ),
            ("created_at", "2025-11-21T10:00:00.125Z"),
        ]
    }

    #[test]
    fn seed_003_event_router_message_is_correlated_by_trace_id() {
        let value = r#"{"image_id":"img-9","user_id":"u-1","url":"s3://bucket/img-9.png"}"#;
        let msg = message(
            "events.image",
            Some("img-9"),
            value,
            &headers("ImageRegistered"),
        );
        let decoder = Decoder::new(Rules::parse(RULES).unwrap());
        let event = decoder.decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.event_id, "0b6f4a5e-1c1e-4e53-9a55-3f0c2e1d9a01");
        assert_eq!(event.saga_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(event.saga_type.as_deref(), Some("scan_reward"));
        assert_eq!(event.step.as_deref(), Some("RegisterImage"));
        assert_eq!(event.phase, Phase::SagaStarted);
        assert_eq!(event.event_type, "ImageRegistered");
        assert_eq!(event.span_id.as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(event.request_id.as_deref(), Some("req-77"));
        assert_eq!(event.source_type.as_deref(), Some("image"));
        assert_eq!(event.source_id.as_deref(), Some("img-9"));
        assert_eq!(event.business_keys, vec!["img-9".to_string()]);
        assert_eq!(
            event.occurred_at,
            chrono::Utc
                .with_ymd_and_hms(2025, 11, 21, 10, 0, 0)
                .unwrap()
                + chrono::Duration::milliseconds(125)
        );
        assert_eq!(
            event.payload,
            json!({"image_id":"img-9","user_id":"u-1","url":"s3://bucket/img-9.png"})
        );
        assert_eq!(event.headers.len(), 6);
        assert_eq!(event.error, None);
    }

    #[test]
    fn payload_as_a_json_string_and_failure_reason() {
        let value = serde_json::to_string(&json!(
            "{\"scan_id\":\"s-1\",\"reason\":\"inventory full\"}"
        ))
        .unwrap();
        let msg = message(
            "events.character",
            Some("s-1"),
            &value,
            &headers("CharacterAcquireFailed"),
        );
        let event = Decoder::new(Rules::parse(RULES).unwrap())
            .decode(&msg, ingested_at())
            .unwrap();
        assert_eq!(
            event.payload,
            json!({"scan_id":"s-1","reason":"inventory full"})
        );
        assert_eq!(event.phase, Phase::StepFailed);
        assert_eq!(event.error.as_deref(), Some("inventory full"));
    }

    #[test]
    fn without_headers_the_topic_and_payload_fields_are_used() {
        let value = r#"{"eventType":"ScanCompleted","traceId":"ABCDEF0123456789ABCDEF0123456789","created_at":1763719200000}"#;
        let event = Decoder::default()
            .decode(&message("events.scan", None, value, &[]), ingested_at())
            .unwrap();
        assert_eq!(event.event_type, "ScanCompleted");
        assert_eq!(event.saga_id, "abcdef0123456789abcdef0123456789");
        assert_eq!(event.phase, Phase::StepSucceeded);
        assert_eq!(event.saga_type, None);
        assert_eq!(event.event_id, "events.scan/2/41");
        assert_eq!(event.source_type.as_deref(), Some("scan"));

        let err = Decoder::default().decode(
            &message("events.scan", None, r#"{"a":1}"#, &[]),
            ingested_at(),
        );
        assert_eq!(
            err,
            Err(DecodeError::MissingField {
                format: FORMAT,
                field: "type"
            })
        );
    }

    #[test]
    fn fields_placed_in_the_envelope_are_read_from_it() {
        // EventRouter with `table.fields.additional.placement=
        // type:envelope:eventType,aggregateid:envelope:aggregateId,
        // traceparent:envelope` and the payload as a JSON string.
        let value = json!({
            "payload": "{\"scan_id\":\"scan-881\",\"reason\":\"no slot left\"}",
            "eventType": "CharacterAcquireFailed",
            "id": "8d6f0c1e-3c55-4d2e-9d0b-7f1c2a3b4c5d",
            "aggregateId": "char-12",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "created_at": 1_763_719_200_125_000_i64
        });
        let event = Decoder::new(Rules::parse(RULES).unwrap())
            .decode(
                &message("events.character", None, &value.to_string(), &[]),
                ingested_at(),
            )
            .unwrap();
        assert_eq!(event.event_type, "CharacterAcquireFailed");
        assert_eq!(event.event_id, "8d6f0c1e-3c55-4d2e-9d0b-7f1c2a3b4c5d");
        assert_eq!(event.saga_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(event.span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(event.source_id.as_deref(), Some("char-12"));
        assert_eq!(event.source_type.as_deref(), Some("character"));
        assert_eq!(event.phase, Phase::StepFailed);
        assert_eq!(event.error.as_deref(), Some("no slot left"));
        assert_eq!(
            event.occurred_at,
            chrono::Utc.timestamp_micros(1_763_719_200_125_000).unwrap()
        );
        assert_eq!(
            event.payload,
            json!({"scan_id": "scan-881", "reason": "no slot left"})
        );
    }
}
