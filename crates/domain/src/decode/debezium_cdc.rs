//! Debezium CDC change events of an outbox table (topics `cdc.<db>.outbox`,
//! or Debezium's default `<server>.<schema>.outbox`): `{before, after,
//! source, op, ts_ms}`, optionally under `payload` next to a `schema` (the
//! JsonConverter with schemas enabled). The outbox row is in `after`: `id,
//! aggregatetype, aggregateid, type, payload, trace_id, request_id,
//! created_at`. `payload` may be a JSON string holding JSON (Debezium's
//! `io.debezium.data.Json`) or an object; `created_at` may be epoch micros
//! (`MicroTimestamp`), millis, or ISO text (`ZonedTimestamp`).
//!
//! Only inserts (`op` c) and snapshot reads (`op` r) are events. Updates,
//! deletes and truncates of outbox rows (`op` u, d, t: typically the relay
//! cleaning up) are [`DecodeError::Ignored`], never ingest errors.

use std::borrow::Cow;

use sagascope_model::{Header, Timestamp};
use serde_json::{Map, Value};

use super::debezium_outbox::is_outbox_topic;
use super::fields::{
    coords_id, json_kind, parse_timestamp, string_field, truncate, unwrap_json_string,
    TraceCandidates,
};
use super::DecodeError;
use crate::rules::Rules;
use crate::saga_event::{RawMessage, SagaEvent};

const FORMAT: &str = "debezium cdc";

/// Header carrying the envelope's `source.ts_ms` (when the database
/// committed the row, as Debezium saw it).
pub const SOURCE_TS_HEADER: &str = "debezium.source.ts_ms";
/// Header carrying the envelope's `op` (`c` insert, `r` snapshot read).
pub const OP_HEADER: &str = "debezium.op";

/// CDC topics: `cdc.*`, or Debezium's `<server>.<schema>.<table>` naming
/// when the table name contains `outbox`.
pub fn is_cdc_topic(topic: &str) -> bool {
    if topic.starts_with("cdc.") {
        return true;
    }
    let mut segments = topic.rsplit('.');
    let table = segments.next().unwrap_or_default();
    segments.count() >= 2
        && !is_outbox_topic(topic)
        && table.to_ascii_lowercase().contains("outbox")
}

fn is_envelope(object: &Map<String, Value>) -> bool {
    object.contains_key("op") && (object.contains_key("after") || object.contains_key("before"))
}

/// The change event itself: the object, or its `payload` when wrapped with
/// a `schema`.
pub fn envelope(object: &Map<String, Value>) -> Option<&Map<String, Value>> {
    if is_envelope(object) {
        return Some(object);
    }
    object
        .get("payload")
        .and_then(Value::as_object)
        .filter(|payload| is_envelope(payload))
}

/// The outbox row in `after`: an object, or a JSON string holding one.
fn after_row(envelope: &Map<String, Value>) -> Result<Cow<'_, Map<String, Value>>, DecodeError> {
    match envelope.get("after") {
        Some(Value::Object(row)) => Ok(Cow::Borrowed(row)),
        None | Some(Value::Null) => Err(DecodeError::MissingField {
            format: FORMAT,
            field: "after",
        }),
        Some(Value::String(text)) => match unwrap_json_string(Value::String(text.clone())) {
            Value::Object(row) => Ok(Cow::Owned(row)),
            other => Err(not_a_row(&other)),
        },
        Some(other) => Err(not_a_row(other)),
    }
}

fn not_a_row(value: &Value) -> DecodeError {
    DecodeError::InvalidField {
        format: FORMAT,
        field: "after",
        reason: format!("is {}, expected the outbox row object", json_kind(value)),
    }
}

/// Debezium's `tracingspancontext` column is Java properties text; its
/// `traceparent=` line is a W3C traceparent.
fn traceparent_in_span_context(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("traceparent="))
        .map(str::to_string)
}

pub fn decode(
    message: &RawMessage,
    envelope: &Map<String, Value>,
    rules: &Rules,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let op = string_field(envelope, &["op"]).ok_or(DecodeError::MissingField {
        format: FORMAT,
        field: "op",
    })?;
    match op.as_str() {
        "c" | "r" => {}
        "u" => return Err(DecodeError::ignored("Debezium update (op u)")),
        "d" => return Err(DecodeError::ignored("Debezium delete (op d)")),
        "t" => return Err(DecodeError::ignored("Debezium truncate (op t)")),
        other => {
            return Err(DecodeError::InvalidField {
                format: FORMAT,
                field: "op",
                reason: format!("is `{}`, expected c, r, u, d or t", truncate(other, 40)),
            })
        }
    }
    let row = after_row(envelope)?;
    let row = row.as_ref();
    let event_type = string_field(row, &["type", "eventType", "event_type", "eventtype"]).ok_or(
        DecodeError::MissingField {
            format: FORMAT,
            field: "after.type",
        },
    )?;
    let payload = row
        .get("payload")
        .cloned()
        .map(unwrap_json_string)
        .unwrap_or(Value::Null);
    let inner = payload.as_object();
    let from_inner = |names: &[&str]| inner.and_then(|o| string_field(o, names));

    let event_id =
        string_field(row, &["id", "event_id", "eventId"]).unwrap_or_else(|| coords_id(message));
    let aggregate_type = string_field(row, &["aggregatetype", "aggregate_type", "aggregateType"]);
    let aggregate_id = string_field(row, &["aggregateid", "aggregate_id", "aggregateId"]);
    let trace = TraceCandidates::new()
        .traceparent("traceparent header", message.header("traceparent"))
        .traceparent(
            "after field traceparent",
            string_field(row, &["traceparent"]),
        )
        .traceparent(
            "after field tracingspancontext",
            row.get("tracingspancontext")
                .and_then(Value::as_str)
                .and_then(traceparent_in_span_context),
        )
        .trace_id_headers(message)
        .trace_id_fields("after", Some(row))
        .trace_id_fields("payload", inner)
        .resolve();
    let explicit_saga_id = string_field(row, &["saga_id", "sagaId"])
        .or_else(|| from_inner(&["saga_id", "sagaId"]))
        .or_else(|| message.header("saga_id"));
    let source_ts = envelope
        .get("source")
        .and_then(Value::as_object)
        .and_then(|source| string_field(source, &["ts_ms"]));
    let occurred_at = ["created_at", "createdAt", "occurred_at", "timestamp"]
        .iter()
        .find_map(|f| row.get(*f).and_then(parse_timestamp))
        .or_else(|| source_ts.as_ref().and_then(|ts| ts_millis(ts)))
        .or_else(|| envelope.get("ts_ms").and_then(parse_timestamp))
        .or(message.timestamp)
        .unwrap_or(ingested_at);
    let classification = rules.classify(&event_type);
    let error = if classification.phase.is_failure() {
        from_inner(&["reason", "error", "error_message", "failure_reason"])
    } else {
        None
    };
    let request_id = message
        .header("request_id")
        .or_else(|| string_field(row, &["request_id", "requestId"]))
        .or_else(|| from_inner(&["request_id", "requestId"]));

    let mut headers = message.headers_as_text();
    headers.push(Header {
        key: OP_HEADER.to_string(),
        value: op,
    });
    if let Some(ts) = source_ts {
        headers.push(Header {
            key: SOURCE_TS_HEADER.to_string(),
            value: ts,
        });
    }
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
        business_keys: aggregate_id.iter().cloned().collect(),
        occurred_at,
        published_at: message.timestamp,
        ingested_at,
        source_type: aggregate_type,
        source_id: aggregate_id,
        coords: message.coords.clone(),
        headers,
        payload,
        error,
    })
}

/// `source.ts_ms` is always milliseconds (no size guessing).
fn ts_millis(text: &str) -> Option<Timestamp> {
    use chrono::TimeZone;
    let millis = text.parse::<i64>().ok()?;
    chrono::Utc.timestamp_millis_opt(millis).single()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ingested_at, message};
    use super::super::Decoder;
    use super::*;
    use crate::saga_event::KafkaCoords;
    use chrono::TimeZone;
    use sagascope_model::Phase;
    use serde_json::json;

    const RULES: &str = r#"
        [[saga]]
        type = "scan_reward"
        [saga.events]
        ScanCompleted = { step = "Scan", phase = "step_succeeded" }
        CharacterAcquireFailed = { step = "AcquireCharacter", phase = "step_failed" }
    "#;

    fn decoder() -> Decoder {
        Decoder::new(Rules::parse(RULES).unwrap())
    }

    fn source(ts_ms: i64, snapshot: &str) -> Value {
        json!({
            "version": "2.7.3.Final", "connector": "postgresql", "name": "cdc",
            "ts_ms": ts_ms, "snapshot": snapshot, "db": "scan", "sequence": "[null,\"24023928\"]",
            "schema": "public", "table": "outbox", "txId": 771, "lsn": 24023928, "xmin": null
        })
    }

    fn at(millis: i64) -> Timestamp {
        chrono::Utc.timestamp_millis_opt(millis).unwrap()
    }

    /// A create without the schema wrapper; the JSONB payload arrives as a
    /// JSON string and created_at as MicroTimestamp.
    #[test]
    fn insert_without_schema_wrapper_and_payload_as_a_json_string() {
        let value = json!({
            "before": null,
            "after": {
                "id": "6f1c2b8e-5d1a-4f0e-9b7c-2a1d3e4f5a60",
                "aggregatetype": "scan",
                "aggregateid": "scan-881",
                "type": "ScanCompleted",
                "payload": "{\"scan_id\":\"scan-881\",\"user_id\":\"u-1\",\"label\":\"plastic\"}",
                "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736",
                "request_id": "req-77",
                "created_at": 1_763_719_200_125_000_i64
            },
            "source": source(1_763_719_200_300, "false"),
            "op": "c",
            "ts_ms": 1_763_719_200_410_i64,
            "transaction": null
        });
        let msg = message(
            "cdc.scan.outbox",
            Some(r#"{"id":"6f1c2b8e-5d1a-4f0e-9b7c-2a1d3e4f5a60"}"#),
            &value.to_string(),
            &[],
        );
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(
            event,
            SagaEvent {
                event_id: "6f1c2b8e-5d1a-4f0e-9b7c-2a1d3e4f5a60".into(),
                saga_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                explicit_saga_id: None,
                rule_classified: true,
                correlation_rank: 1,
                correlation_keys: vec!["trace:4bf92f3577b34da6a3ce929d0e0e4736".into()],
                saga_type: Some("scan_reward".into()),
                step: Some("Scan".into()),
                phase: Phase::StepSucceeded,
                event_type: "ScanCompleted".into(),
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                span_id: None,
                request_id: Some("req-77".into()),
                business_keys: vec!["scan-881".into()],
                occurred_at: at(1_763_719_200_125),
                published_at: msg.timestamp,
                ingested_at: ingested_at(),
                source_type: Some("scan".into()),
                source_id: Some("scan-881".into()),
                coords: KafkaCoords {
                    topic: "cdc.scan.outbox".into(),
                    partition: 2,
                    offset: 41
                },
                headers: vec![
                    Header {
                        key: OP_HEADER.into(),
                        value: "c".into()
                    },
                    Header {
                        key: SOURCE_TS_HEADER.into(),
                        value: "1763719200300".into()
                    },
                ],
                payload: json!({"scan_id":"scan-881","user_id":"u-1","label":"plastic"}),
                error: None,
            }
        );
    }

    /// A snapshot read with the JsonConverter schema wrapper, an object
    /// payload, an ISO created_at and a traceparent header.
    #[test]
    fn snapshot_read_with_schema_wrapper() {
        let value = json!({
            "schema": {
                "type": "struct", "name": "cdc.character.outbox.Envelope", "optional": false,
                "fields": [
                    {"field": "before", "type": "struct", "optional": true},
                    {"field": "after", "type": "struct", "optional": true},
                    {"field": "op", "type": "string", "optional": false}
                ]
            },
            "payload": {
                "before": null,
                "after": {
                    "id": "0b6f4a5e-1c1e-4e53-9a55-3f0c2e1d9a01",
                    "aggregatetype": "character",
                    "aggregateid": "u-1",
                    "type": "CharacterAcquireFailed",
                    "payload": {"user_id": "u-1", "reason": "inventory full"},
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "request_id": null,
                    "created_at": "2025-11-21T10:00:02.500000Z"
                },
                "source": source(1_763_719_300_000, "true"),
                "op": "r",
                "ts_ms": 1_763_719_300_100_i64
            }
        });
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
        let msg = message(
            "cdc.character.outbox",
            None,
            &value.to_string(),
            &[("traceparent", traceparent)],
        );
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.event_id, "0b6f4a5e-1c1e-4e53-9a55-3f0c2e1d9a01");
        assert_eq!(event.saga_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(event.saga_type.as_deref(), Some("scan_reward"));
        assert_eq!(event.step.as_deref(), Some("AcquireCharacter"));
        assert_eq!(event.phase, Phase::StepFailed);
        assert_eq!(event.event_type, "CharacterAcquireFailed");
        assert_eq!(
            event.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(event.span_id.as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(event.request_id, None);
        assert_eq!(event.occurred_at, at(1_763_719_202_500));
        assert_eq!(event.source_type.as_deref(), Some("character"));
        assert_eq!(event.source_id.as_deref(), Some("u-1"));
        assert_eq!(
            event.payload,
            json!({"user_id": "u-1", "reason": "inventory full"})
        );
        assert_eq!(event.error.as_deref(), Some("inventory full"));
        assert_eq!(
            event.headers,
            vec![
                Header {
                    key: "traceparent".into(),
                    value: traceparent.into()
                },
                Header {
                    key: OP_HEADER.into(),
                    value: "r".into()
                },
                Header {
                    key: SOURCE_TS_HEADER.into(),
                    value: "1763719300000".into()
                },
            ]
        );
    }

    #[test]
    fn millisecond_created_at_no_trace_id_and_an_explicit_saga_id() {
        let value = json!({
            "before": null,
            "after": {
                "id": 42, "aggregatetype": "order", "aggregateid": "O-1001",
                "type": "OrderPlaced", "payload": "{\"saga_id\":\"ord-7f3a\",\"total\":42}",
                "trace_id": "not a trace id", "created_at": 1_763_719_200_000_i64
            },
            "source": {"ts_ms": 1_763_719_200_010_i64}, "op": "c", "ts_ms": 1_763_719_200_020_i64
        });
        let event = Decoder::default()
            .decode(
                &message("dbserver1.public.outbox", None, &value.to_string(), &[]),
                ingested_at(),
            )
            .unwrap();
        assert_eq!(event.event_id, "42");
        assert_eq!(event.saga_id, "ord-7f3a");
        assert_eq!(event.trace_id, None);
        assert_eq!(event.phase, Phase::Event);
        assert_eq!(event.saga_type, None);
        assert_eq!(event.occurred_at, at(1_763_719_200_000));
        assert_eq!(
            event.headers.last(),
            Some(&Header {
                key: crate::decode::REJECTED_TRACE_HEADER.into(),
                value: "after field trace_id `not a trace id` is not a valid trace id".into()
            })
        );
    }

    #[test]
    fn updates_deletes_and_truncates_are_ignored_not_errors() {
        let row = json!({"id": "e-1", "aggregatetype": "scan", "aggregateid": "s-1",
            "type": "ScanCompleted", "payload": "{}", "created_at": 1_763_719_200_000_i64});
        let cases = [
            (
                json!({"before": row, "after": row, "op": "u", "source": source(1, "false")}),
                "ignored: Debezium update (op u)",
            ),
            (
                json!({"schema": {}, "payload": {"before": row, "after": null, "op": "d"}}),
                "ignored: Debezium delete (op d)",
            ),
            (
                json!({"before": null, "after": null, "op": "t"}),
                "ignored: Debezium truncate (op t)",
            ),
        ];
        for (value, text) in cases {
            let err = Decoder::default()
                .decode(
                    &message("cdc.scan.outbox", None, &value.to_string(), &[]),
                    ingested_at(),
                )
                .unwrap_err();
            assert!(err.is_ignored(), "{err}");
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn garbage_envelopes_are_clear_errors() {
        let decode = |value: Value| {
            Decoder::default().decode(
                &message("cdc.scan.outbox", None, &value.to_string(), &[]),
                ingested_at(),
            )
        };
        assert_eq!(
            decode(json!({"op": "c", "after": null})),
            Err(DecodeError::MissingField {
                format: FORMAT,
                field: "after"
            })
        );
        assert_eq!(
            decode(json!({"op": "c", "after": {"id": "x", "payload": {}}})),
            Err(DecodeError::MissingField {
                format: FORMAT,
                field: "after.type"
            })
        );
        assert_eq!(
            decode(json!({"op": "c", "after": [1, 2]}))
                .unwrap_err()
                .to_string(),
            "debezium cdc: field `after` is array, expected the outbox row object"
        );
        assert_eq!(
            decode(json!({"op": "x", "before": null}))
                .unwrap_err()
                .to_string(),
            "debezium cdc: field `op` is `x`, expected c, r, u, d or t"
        );
        assert_eq!(
            decode(json!({"op": null, "after": {}})),
            Err(DecodeError::MissingField {
                format: FORMAT,
                field: "op"
            })
        );
        // The module entry point directly, with odd but valid JSON.
        for garbage in [
            json!({"op": true, "after": "{\"type\": 1}"}),
            json!({"op": "c", "after": "not json"}),
            json!({"op": "r", "after": {"type": ""}}),
        ] {
            let object = garbage.as_object().unwrap();
            let result = super::decode(
                &message("cdc.x.outbox", None, "", &[]),
                object,
                &Rules::default(),
                ingested_at(),
            );
            assert!(result.is_err(), "{garbage}");
        }
    }

    #[test]
    fn cdc_topics() {
        for topic in [
            "cdc.scan.outbox",
            "cdc.auth.users",
            "db1.public.outbox",
            "srv.shop.OutboxEvent",
        ] {
            assert!(is_cdc_topic(topic), "{topic}");
        }
        for topic in [
            "events.scan",
            "outbox.event.outbox",
            "saga.state",
            "outbox",
            "public.outbox",
        ] {
            assert!(!is_cdc_topic(topic), "{topic}");
        }
    }
}
