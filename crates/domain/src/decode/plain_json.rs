//! Plain JSON domain events: an object with `type` (or `eventType` /
//! `event_type`) and optionally the event body in `payload` or `data`; when
//! neither is present the whole object is the payload. Trace context comes
//! from headers (`traceparent`, `trace_id`, `traceId`, `x-trace-id`) or the
//! same fields (top level, then the body). The event id is the `id` /
//! `event_id` / `eventId` field or the `id` header, else
//! `topic/partition/offset`.

use sagascope_model::Timestamp;
use serde_json::{Map, Value};

use super::fields::{
    coords_id, parse_timestamp, string_field, unwrap_json_string, TraceCandidates,
};
use super::DecodeError;
use crate::rules::Rules;
use crate::saga_event::{RawMessage, SagaEvent};

const FORMAT: &str = "plain json";
const TYPE_FIELDS: [&str; 3] = ["type", "eventType", "event_type"];

pub fn looks_like_plain_event(object: &Map<String, Value>) -> bool {
    string_field(object, &TYPE_FIELDS).is_some()
}

pub fn decode(
    message: &RawMessage,
    object: &Map<String, Value>,
    rules: &Rules,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let event_type = string_field(object, &TYPE_FIELDS).ok_or(DecodeError::MissingField {
        format: FORMAT,
        field: "type",
    })?;
    let body = ["payload", "data"]
        .iter()
        .find_map(|f| object.get(*f))
        .cloned()
        .map(unwrap_json_string);
    let body_object = body.as_ref().and_then(Value::as_object);
    // Top-level fields first, then the body's.
    let field = |names: &[&str]| {
        string_field(object, names).or_else(|| body_object.and_then(|b| string_field(b, names)))
    };

    let event_id = string_field(object, &["id", "event_id", "eventId"])
        .or_else(|| message.header("id"))
        .unwrap_or_else(|| coords_id(message));
    let trace = TraceCandidates::new()
        .traceparent("traceparent header", message.header("traceparent"))
        .traceparent("traceparent field", string_field(object, &["traceparent"]))
        .trace_id_headers(message)
        .trace_id_fields("event", Some(object))
        .trace_id_fields("payload", body_object)
        .resolve();
    let source_type = field(&["source", "aggregatetype", "aggregate_type", "aggregateType"]);
    let source_id =
        field(&["aggregateid", "aggregate_id", "aggregateId"]).or_else(|| message.key_text());
    let explicit_saga_id = message
        .header("saga_id")
        .or_else(|| field(&["saga_id", "sagaId", "correlation_id", "correlationId"]));
    let occurred_at = [
        "occurred_at",
        "occurredAt",
        "timestamp",
        "time",
        "created_at",
        "createdAt",
    ]
    .iter()
    .find_map(|f| object.get(*f).and_then(parse_timestamp))
    .or(message.timestamp)
    .unwrap_or(ingested_at);
    let classification = rules.classify(&event_type);
    let error = if classification.phase.is_failure() {
        body_object
            .and_then(|b| string_field(b, &["reason", "error", "error_message", "failure_reason"]))
            .or_else(|| {
                string_field(
                    object,
                    &["reason", "error", "error_message", "failure_reason"],
                )
            })
    } else {
        None
    };
    let request_id = message
        .header("request_id")
        .or_else(|| field(&["request_id", "requestId"]));
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
        request_id,
        business_keys: source_id.iter().cloned().collect(),
        occurred_at,
        published_at: message.timestamp,
        ingested_at,
        source_type,
        source_id,
        coords: message.coords.clone(),
        headers,
        payload: body.unwrap_or_else(|| Value::Object(object.clone())),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ingested_at, message};
    use super::super::Decoder;
    use super::*;
    use crate::saga_event::KafkaCoords;
    use chrono::TimeZone;
    use sagascope_model::{Header, Phase};
    use serde_json::json;

    const RULES: &str = r#"
        [[saga]]
        type = "order"
        [saga.events]
        StockReserved = { step = "ReserveStock", phase = "step_succeeded" }
        PaymentFailed = { step = "AuthorizePayment", phase = "step_failed" }
    "#;

    fn decoder() -> Decoder {
        Decoder::new(Rules::parse(RULES).unwrap())
    }

    fn at(millis: i64) -> Timestamp {
        chrono::Utc.timestamp_millis_opt(millis).unwrap()
    }

    #[test]
    fn header_trace_id_and_a_payload_body() {
        let value = r#"{"eventType":"StockReserved","eventId":"evt-301","occurredAt":"2025-11-21T10:00:04Z",
            "aggregateType":"inventory","aggregateId":"SKU-9",
            "payload":{"order_id":"O-1001","sku":"SKU-9","qty":2}}"#;
        let headers = [
            ("trace_id", "5AF7651916CD43DD8448EB211C80319C"),
            ("request_id", "req-12"),
        ];
        let msg = message("inventory-events", Some("SKU-9"), value, &headers);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(
            event,
            SagaEvent {
                event_id: "evt-301".into(),
                saga_id: "5af7651916cd43dd8448eb211c80319c".into(),
                explicit_saga_id: None,
                rule_classified: true,
                correlation_rank: 1,
                correlation_keys: vec!["trace:5af7651916cd43dd8448eb211c80319c".into()],
                saga_type: Some("order".into()),
                step: Some("ReserveStock".into()),
                phase: Phase::StepSucceeded,
                event_type: "StockReserved".into(),
                trace_id: Some("5af7651916cd43dd8448eb211c80319c".into()),
                span_id: None,
                request_id: Some("req-12".into()),
                business_keys: vec!["SKU-9".into()],
                occurred_at: at(1_763_719_204_000),
                published_at: msg.timestamp,
                ingested_at: ingested_at(),
                source_type: Some("inventory".into()),
                source_id: Some("SKU-9".into()),
                coords: KafkaCoords {
                    topic: "inventory-events".into(),
                    partition: 2,
                    offset: 41
                },
                headers: headers
                    .iter()
                    .map(|(k, v)| Header {
                        key: k.to_string(),
                        value: v.to_string()
                    })
                    .collect(),
                payload: json!({"order_id":"O-1001","sku":"SKU-9","qty":2}),
                error: None,
            }
        );
    }

    #[test]
    fn field_trace_id_data_as_a_json_string_and_failure_reason() {
        let value = json!({
            "type": "PaymentFailed",
            "id": 9001,
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "timestamp": 1_763_719_206_000_i64,
            "data": "{\"order_id\":\"O-1001\",\"reason\":\"card declined\"}"
        });
        let msg = message("payments", None, &value.to_string(), &[]);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.event_id, "9001");
        assert_eq!(event.saga_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            event.trace_id.as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(event.span_id, None);
        assert_eq!(event.saga_type.as_deref(), Some("order"));
        assert_eq!(event.step.as_deref(), Some("AuthorizePayment"));
        assert_eq!(event.phase, Phase::StepFailed);
        assert_eq!(event.occurred_at, at(1_763_719_206_000));
        assert_eq!(
            event.payload,
            json!({"order_id":"O-1001","reason":"card declined"})
        );
        assert_eq!(event.error.as_deref(), Some("card declined"));
        assert_eq!(event.source_type, None);
        assert_eq!(event.source_id, None);
    }

    #[test]
    fn traceparent_header_wins_and_bad_ids_are_not_trusted() {
        let value = r#"{"event_type":"order.shipped","trace_id":"zz zz","order_id":"O-1"}"#;
        let msg = message(
            "orders",
            Some("O-1"),
            value,
            &[
                ("id", "hdr-1"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
        );
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.event_id, "hdr-1");
        assert_eq!(event.saga_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(event.span_id.as_deref(), Some("b7ad6b7169203331"));
        // A lone last word keeps its entity as the default step.
        assert_eq!(event.step.as_deref(), Some("order.shipped"));
        assert_eq!(
            event.payload,
            json!({"event_type":"order.shipped","trace_id":"zz zz","order_id":"O-1"})
        );
        assert_eq!(event.occurred_at, msg.timestamp.unwrap());

        // Only a bad trace id: not used; the key correlates instead.
        let msg = message("orders", Some("O-1"), value, &[]);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.trace_id, None);
        assert_eq!(event.saga_id, "O-1");
        assert_eq!(event.event_id, "orders/2/41");
        assert_eq!(
            event.headers,
            vec![Header {
                key: crate::decode::REJECTED_TRACE_HEADER.into(),
                value: "event field trace_id `zz zz` is not a valid trace id".into()
            }]
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let decode = |value: &str| {
            Decoder::default().decode(&message("misc", None, value, &[]), ingested_at())
        };
        assert_eq!(decode(r#"{"type":""}"#), Err(DecodeError::UnknownFormat));
        assert_eq!(
            decode(r#"{"type":{"a":1}}"#),
            Err(DecodeError::UnknownFormat)
        );
        assert_eq!(decode("\"type\""), Err(DecodeError::NotAnObject("string")));
        let object = json!({"type": null, "payload": 1});
        assert_eq!(
            super::decode(
                &message("misc", None, "", &[]),
                object.as_object().unwrap(),
                &Rules::default(),
                ingested_at()
            ),
            Err(DecodeError::MissingField {
                format: FORMAT,
                field: "type"
            })
        );
    }
}
