//! CloudEvents 1.0 over Kafka (the Kafka protocol binding).
//!
//! - Binary mode: attributes in `ce_<name>` headers (`ce_specversion`,
//!   `ce_id`, `ce_type`, `ce_source`, `ce_time`, `ce_subject`, extensions
//!   such as `ce_traceparent` and `ce_sagaid`); the value is the data, its
//!   media type in the `content-type` header.
//! - Structured mode: `content-type: application/cloudevents+json`, or a
//!   JSON object with `specversion`, `id`, `type` and `source`; data in
//!   `data` (any JSON) or `data_base64`.
//!
//! Mapping: event_id = `id`, event_type = `type` (rules for the full type,
//! else its last dotted segment), occurred_at = `time`, source = `source`
//! and `subject`; saga id = the `sagaid`/`saga_id` extension, else a
//! `saga_id` data field, else the trace id (distributed-tracing extension
//! `traceparent`, then the common rule), else `subject`, else `id`.

use sagascope_model::Timestamp;
use serde_json::{json, Map, Value};

use super::fields::{
    decode_base64, encode_base64, parse_timestamp_text, string_field, truncate, unwrap_json_string,
    TraceCandidates,
};
use super::DecodeError;
use crate::rules::Rules;
use crate::saga_event::{RawMessage, SagaEvent};

const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Binary,
    Structured,
}

impl Mode {
    fn format(self) -> &'static str {
        match self {
            Mode::Binary => "cloudevents binary",
            Mode::Structured => "cloudevents structured",
        }
    }

    /// The field name as the producer wrote it, for error texts.
    fn field(self, attribute: &'static str) -> &'static str {
        if self == Mode::Structured {
            return attribute;
        }
        match attribute {
            "specversion" => "ce_specversion",
            "id" => "ce_id",
            "type" => "ce_type",
            "source" => "ce_source",
            _ => attribute,
        }
    }
}

/// `ce_<name>` header; `ce-<name>` is accepted too (HTTP-style producers).
fn ce_header(message: &RawMessage, attribute: &str) -> Option<String> {
    message
        .header(&format!("ce_{attribute}"))
        .or_else(|| message.header(&format!("ce-{attribute}")))
}

fn content_type(message: &RawMessage) -> Option<String> {
    message
        .header("content-type")
        .or_else(|| message.header("content_type"))
        .or_else(|| ce_header(message, "datacontenttype"))
}

fn is_structured_content_type(content_type: &str) -> bool {
    content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with(STRUCTURED_CONTENT_TYPE)
}

/// JSON media types: `application/json`, `text/json`, `*/*+json`. No
/// content type at all is "maybe JSON" and handled by the caller.
fn is_json_content_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

pub fn is_binary(message: &RawMessage) -> bool {
    ce_header(message, "specversion").is_some()
        && !content_type(message).is_some_and(|c| is_structured_content_type(&c))
}

pub fn is_structured(message: &RawMessage, value: &Value) -> bool {
    content_type(message).is_some_and(|c| is_structured_content_type(&c))
        || value.as_object().is_some_and(|object| {
            ["specversion", "id", "type", "source"]
                .iter()
                .all(|k| object.contains_key(*k))
        })
}

/// Event data from raw bytes: JSON when the content type says so (or, with
/// no content type, when it parses), else text, else `{"data_base64": …}`.
fn data_from_bytes(
    bytes: &[u8],
    content_type: Option<&str>,
    mode: Mode,
    field: &'static str,
) -> Result<Value, DecodeError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let declared_json = content_type.is_some_and(is_json_content_type);
    let text = std::str::from_utf8(bytes).ok();
    if declared_json || content_type.is_none() {
        let parsed = text.map(serde_json::from_str::<Value>);
        match parsed {
            Some(Ok(value)) => return Ok(unwrap_json_string(value)),
            Some(Err(e)) if declared_json => {
                return Err(DecodeError::InvalidField {
                    format: mode.format(),
                    field,
                    reason: format!("is not valid JSON although the content type says so: {e}"),
                })
            }
            None if declared_json => {
                return Err(DecodeError::InvalidField {
                    format: mode.format(),
                    field,
                    reason: "is not valid UTF-8 although the content type says JSON".into(),
                })
            }
            _ => {}
        }
    }
    Ok(match text {
        Some(text) => Value::String(text.to_string()),
        None => json!({ "data_base64": encode_base64(bytes) }),
    })
}

/// Binary mode: attributes from `ce_*` headers, the value is the data.
pub fn decode_binary(
    message: &RawMessage,
    rules: &Rules,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let content_type = content_type(message);
    let data = match message.value.as_deref() {
        None => Value::Null,
        Some(bytes) => data_from_bytes(bytes, content_type.as_deref(), Mode::Binary, "value")?,
    };
    build(
        message,
        Mode::Binary,
        &|attribute| ce_header(message, attribute),
        data,
        rules,
        ingested_at,
    )
}

/// Structured mode: the value is the whole event as JSON.
pub fn decode_structured(
    message: &RawMessage,
    value: &Value,
    rules: &Rules,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let object = value
        .as_object()
        .ok_or(DecodeError::NotAnObject(super::fields::json_kind(value)))?;
    let data = structured_data(object)?;
    build(
        message,
        Mode::Structured,
        &|attribute| string_field(object, &[attribute]),
        data,
        rules,
        ingested_at,
    )
}

/// `data` (a JSON value; a string holding JSON is unwrapped when the data
/// content type is JSON), else `data_base64` decoded like binary-mode data.
/// When a producer sets both (the specification forbids it), `data` wins.
fn structured_data(object: &Map<String, Value>) -> Result<Value, DecodeError> {
    let content_type = string_field(object, &["datacontenttype"]);
    let json_data = content_type.as_deref().is_none_or(is_json_content_type);
    if let Some(data) = object.get("data") {
        return Ok(if json_data {
            unwrap_json_string(data.clone())
        } else {
            data.clone()
        });
    }
    match object.get("data_base64") {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::String(encoded)) => {
            let bytes = decode_base64(encoded).ok_or_else(|| DecodeError::InvalidField {
                format: Mode::Structured.format(),
                field: "data_base64",
                reason: format!("is not valid base64: `{}`", truncate(encoded, 40)),
            })?;
            data_from_bytes(
                &bytes,
                content_type.as_deref(),
                Mode::Structured,
                "data_base64",
            )
        }
        Some(other) => Err(DecodeError::InvalidField {
            format: Mode::Structured.format(),
            field: "data_base64",
            reason: format!(
                "is {}, expected a base64 string",
                super::fields::json_kind(other)
            ),
        }),
    }
}

fn build(
    message: &RawMessage,
    mode: Mode,
    attribute: &dyn Fn(&str) -> Option<String>,
    data: Value,
    rules: &Rules,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let required = |name: &'static str| {
        attribute(name).ok_or(DecodeError::MissingField {
            format: mode.format(),
            field: mode.field(name),
        })
    };
    let spec_version = required("specversion")?;
    if spec_version != "1.0" {
        return Err(DecodeError::InvalidField {
            format: mode.format(),
            field: mode.field("specversion"),
            reason: format!("is `{}`, expected 1.0", truncate(&spec_version, 40)),
        });
    }
    let event_id = required("id")?;
    let event_type = required("type")?;
    let source = required("source")?;
    let subject = attribute("subject");
    let data_object = data.as_object();
    let from_data = |names: &[&str]| data_object.and_then(|o| string_field(o, names));

    let traceparent_origin = match mode {
        Mode::Binary => "ce_traceparent header",
        Mode::Structured => "traceparent attribute",
    };
    let trace = TraceCandidates::new()
        .traceparent(traceparent_origin, attribute("traceparent"))
        .traceparent("traceparent header", message.header("traceparent"))
        .trace_id_headers(message)
        .trace_id_fields("data", data_object)
        .resolve();
    let explicit_saga_id = attribute("sagaid")
        .or_else(|| attribute("saga_id"))
        .or_else(|| from_data(&["saga_id", "sagaId"]));
    let occurred_at = attribute("time")
        .as_deref()
        .and_then(parse_timestamp_text)
        .or(message.timestamp)
        .unwrap_or(ingested_at);
    let classification = rules.classify(&event_type);
    let error = if classification.phase.is_failure() {
        from_data(&["reason", "error", "error_message", "failure_reason"])
    } else {
        None
    };
    let request_id = message
        .header("request_id")
        .or_else(|| attribute("requestid"))
        .or_else(|| from_data(&["request_id", "requestId"]));
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
        business_keys: subject.iter().cloned().collect(),
        occurred_at,
        published_at: message.timestamp,
        ingested_at,
        source_type: Some(source),
        source_id: subject,
        coords: message.coords.clone(),
        headers,
        payload: data,
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

    const RULES: &str = r#"
        [[saga]]
        type = "order"
        [saga.events]
        "com.shop.order.OrderPlaced" = { step = "PlaceOrder", phase = "saga_started" }
        PaymentFailed = { step = "AuthorizePayment", phase = "step_failed" }
    "#;
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn decoder() -> Decoder {
        Decoder::new(Rules::parse(RULES).unwrap())
    }

    fn at(millis: i64) -> Timestamp {
        chrono::Utc.timestamp_millis_opt(millis).unwrap()
    }

    fn binary_headers(event_type: &str) -> Vec<(&str, &str)> {
        vec![
            ("ce_specversion", "1.0"),
            ("ce_id", "9c1e7d02-3b7a-4f4e-8a7e-0d6c1f2b3a4d"),
            ("ce_type", event_type),
            ("ce_source", "/shop/payments"),
            ("ce_time", "2025-11-21T10:00:03.750Z"),
            ("ce_subject", "O-1001"),
            ("ce_traceparent", TRACEPARENT),
            ("content-type", "application/json"),
        ]
    }

    #[test]
    fn binary_mode_with_traceparent_extension() {
        let headers = binary_headers("com.shop.order.PaymentFailed");
        let value = r#"{"order_id":"O-1001","amount":42.5,"reason":"card declined"}"#;
        let msg = message("payments", Some("O-1001"), value, &headers);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(
            event,
            SagaEvent {
                event_id: "9c1e7d02-3b7a-4f4e-8a7e-0d6c1f2b3a4d".into(),
                saga_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                explicit_saga_id: None,
                rule_classified: true,
                correlation_rank: 1,
                correlation_keys: vec!["trace:4bf92f3577b34da6a3ce929d0e0e4736".into()],
                saga_type: Some("order".into()),
                step: Some("AuthorizePayment".into()),
                phase: Phase::StepFailed,
                event_type: "com.shop.order.PaymentFailed".into(),
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                span_id: Some("00f067aa0ba902b7".into()),
                request_id: None,
                business_keys: vec!["O-1001".into()],
                occurred_at: at(1_763_719_203_750),
                published_at: msg.timestamp,
                ingested_at: ingested_at(),
                source_type: Some("/shop/payments".into()),
                source_id: Some("O-1001".into()),
                coords: KafkaCoords {
                    topic: "payments".into(),
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
                payload: json!({"order_id":"O-1001","amount":42.5,"reason":"card declined"}),
                error: Some("card declined".into()),
            }
        );
    }

    #[test]
    fn binary_mode_saga_id_extension_text_data_and_no_data() {
        let mut headers = binary_headers("com.shop.order.OrderPlaced");
        headers.retain(|(k, _)| *k != "ce_traceparent" && *k != "content-type");
        headers.push(("ce_sagaid", "ord-7f3a"));
        headers.push(("content-type", "text/plain; charset=utf-8"));
        let msg = message("orders", None, "{not json, just text}", &headers);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.saga_id, "ord-7f3a");
        assert_eq!(event.saga_type.as_deref(), Some("order"));
        assert_eq!(event.step.as_deref(), Some("PlaceOrder"));
        assert_eq!(event.phase, Phase::SagaStarted);
        assert_eq!(event.trace_id, None);
        assert_eq!(event.payload, json!("{not json, just text}"));

        // No value at all is a CloudEvent without data, not a tombstone;
        // without trace or saga id the subject correlates.
        let mut headers = binary_headers("com.shop.order.OrderShipped");
        headers.retain(|(k, _)| *k != "ce_traceparent");
        let mut msg = message("orders", None, "", &headers);
        msg.value = None;
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.payload, Value::Null);
        assert_eq!(event.saga_id, "O-1001");
        assert_eq!(event.step.as_deref(), Some("OrderShipped"));
        assert_eq!(event.phase, Phase::Event);

        // Binary data without a content type is kept as base64.
        let mut headers = binary_headers("com.shop.order.Blob");
        headers.retain(|(k, _)| *k != "content-type");
        let mut msg = message("orders", None, "", &headers);
        msg.value = Some(vec![0xde, 0xad, 0xbe, 0xef]);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.payload, json!({"data_base64": "3q2+7w=="}));
    }

    #[test]
    fn structured_mode_by_content_type() {
        let value = json!({
            "specversion": "1.0",
            "id": "a7f9e0c4-2c55-4d1f-9a51-6b0f0c6e8d21",
            "type": "com.shop.order.OrderPlaced",
            "source": "/shop/orders",
            "subject": "O-1001",
            "time": "2025-11-21T19:00:00+09:00",
            "datacontenttype": "application/json",
            "traceparent": TRACEPARENT,
            "requestid": "req-5",
            "data": {"order_id": "O-1001", "items": [{"sku": "A-1", "qty": 2}]}
        });
        let msg = message(
            "orders",
            Some("O-1001"),
            &value.to_string(),
            &[(
                "content-type",
                "application/cloudevents+json; charset=UTF-8",
            )],
        );
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.event_id, "a7f9e0c4-2c55-4d1f-9a51-6b0f0c6e8d21");
        assert_eq!(event.saga_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(event.saga_type.as_deref(), Some("order"));
        assert_eq!(event.step.as_deref(), Some("PlaceOrder"));
        assert_eq!(event.phase, Phase::SagaStarted);
        assert_eq!(event.event_type, "com.shop.order.OrderPlaced");
        assert_eq!(
            event.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(event.span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(event.request_id.as_deref(), Some("req-5"));
        assert_eq!(event.occurred_at, at(1_763_719_200_000));
        assert_eq!(event.source_type.as_deref(), Some("/shop/orders"));
        assert_eq!(event.source_id.as_deref(), Some("O-1001"));
        assert_eq!(
            event.payload,
            json!({"order_id": "O-1001", "items": [{"sku": "A-1", "qty": 2}]})
        );
        assert_eq!(event.error, None);
    }

    #[test]
    fn structured_mode_by_shape_with_data_base64() {
        let data = r#"{"order_id":"O-1001","reason":"insufficient funds"}"#;
        let value = json!({
            "specversion": "1.0",
            "id": "evt-17",
            "type": "com.shop.payment.PaymentFailed",
            "source": "urn:shop:payments",
            "time": "2025-11-21T10:00:05Z",
            "saga_id": "ord-7f3a",
            "datacontenttype": "application/json",
            "data_base64": encode_base64(data.as_bytes())
        });
        let msg = message("payments", None, &value.to_string(), &[]);
        let event = decoder().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.event_id, "evt-17");
        assert_eq!(event.saga_id, "ord-7f3a");
        assert_eq!(event.saga_type.as_deref(), Some("order"));
        assert_eq!(event.step.as_deref(), Some("AuthorizePayment"));
        assert_eq!(event.phase, Phase::StepFailed);
        assert_eq!(event.trace_id, None);
        assert_eq!(event.occurred_at, at(1_763_719_205_000));
        assert_eq!(event.source_type.as_deref(), Some("urn:shop:payments"));
        assert_eq!(event.source_id, None);
        assert_eq!(
            event.payload,
            json!({"order_id":"O-1001","reason":"insufficient funds"})
        );
        assert_eq!(event.error.as_deref(), Some("insufficient funds"));
        assert_eq!(event.headers, vec![]);
    }

    #[test]
    fn bad_cloudevents_are_clear_errors() {
        let decode = |value: &str, headers: &[(&str, &str)]| {
            decoder().decode(&message("orders", None, value, headers), ingested_at())
        };
        let mut headers = binary_headers("com.shop.order.OrderPlaced");
        headers.retain(|(k, _)| *k != "ce_id");
        assert_eq!(
            decode("{}", &headers),
            Err(DecodeError::MissingField {
                format: "cloudevents binary",
                field: "ce_id"
            })
        );
        let mut headers = binary_headers("com.shop.order.OrderPlaced");
        headers[0] = ("ce_specversion", "0.3");
        assert_eq!(
            decode("{}", &headers).unwrap_err().to_string(),
            "cloudevents binary: field `ce_specversion` is `0.3`, expected 1.0"
        );
        let headers = binary_headers("com.shop.order.OrderPlaced");
        assert!(decode("{broken", &headers)
            .unwrap_err()
            .to_string()
            .starts_with("cloudevents binary: field `value` is not valid JSON"));

        let structured = [("content-type", STRUCTURED_CONTENT_TYPE)];
        assert_eq!(
            decode(
                r#"{"specversion":"1.0","id":"x","source":"/s"}"#,
                &structured
            ),
            Err(DecodeError::MissingField {
                format: "cloudevents structured",
                field: "type"
            })
        );
        assert_eq!(
            decode("[1]", &structured),
            Err(DecodeError::NotAnObject("array"))
        );
        assert_eq!(
            decode(
                r#"{"specversion":"1.0","id":"x","type":"t","source":"/s","data_base64":"%%%"}"#,
                &[]
            )
            .unwrap_err()
            .to_string(),
            "cloudevents structured: field `data_base64` is not valid base64: `%%%`"
        );
        assert!(decode(
            r#"{"specversion":"1.0","id":"x","type":"t","source":"/s","data_base64":7}"#,
            &[]
        )
        .is_err());

        // The module entry points directly.
        let garbage = message("orders", None, "", &[("ce_specversion", "1.0")]);
        assert!(decode_binary(&garbage, &Rules::default(), ingested_at()).is_err());
        assert!(
            decode_structured(&garbage, &json!("x"), &Rules::default(), ingested_at()).is_err()
        );
    }
}
