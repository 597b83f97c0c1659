//! Dead letters (DESIGN.md, input format 5): messages on DLQ topics, decoded
//! into a [`DeadLetter`] that says where the message came from, why it
//! failed, which saga it belongs to, and keeps key, value and headers
//! byte-exact so an operator can re-drive it to the original topic.
//!
//! Decoding never fails: a DLQ message nobody understands is still a dead
//! letter ([`DeadLetterFormat::Unknown`]), because losing a dead letter is
//! worse than not understanding it. The format is detected per message:
//! Spring Kafka (`kafka_dlt-*` headers), else Kafka Connect
//! (`__connect.errors.*` headers), else the operator-configured generic form
//! ([`GenericDeadLetterFields`]), else unknown.

mod failure_group;
mod generic;
mod kafka_connect;
mod spring;

use sagascope_model::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decode::fields::{string_field, unwrap_json_string, TraceCandidates};
use crate::decode::parse_timestamp;
use crate::saga_event::{KafkaCoords, RawMessage};

pub use failure_group::{failure_group, normalise_message, MAX_NORMALISED_CHARS};
pub use generic::{GenericDeadLetterFields, GenericField};

/// Header a re-drive adds: the id of the dead letter it re-drove, so a
/// message that dead-letters again can be marked `failed_again`.
pub const RETRY_OF_HEADER: &str = "x-retry-of";
/// Header a re-drive adds: how many times this message was re-driven.
pub const RETRY_COUNT_HEADER: &str = "x-retry-count";

/// Values larger than this are not parsed for saga/trace linking or generic
/// pointers (they are still kept byte-exact): a DLQ can hold anything,
/// including messages that were dead-lettered for being too big.
pub const MAX_PAYLOAD_LOOKUP_BYTES: usize = 1024 * 1024;

/// Which convention the dead letter's metadata followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterFormat {
    /// Spring Kafka's `DeadLetterPublishingRecoverer` (`kafka_dlt-*`).
    Spring,
    /// Kafka Connect's `errors.deadletterqueue.context.headers.enable`
    /// (`__connect.errors.*`).
    KafkaConnect,
    /// The form configured in the `[dead_letter]` table of the rules.
    Generic,
    /// No known metadata: kept anyway, original coordinates unknown.
    Unknown,
}

impl DeadLetterFormat {
    /// The serde name, for storage columns and API filters.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterFormat::Spring => "spring",
            DeadLetterFormat::KafkaConnect => "kafka_connect",
            DeadLetterFormat::Generic => "generic",
            DeadLetterFormat::Unknown => "unknown",
        }
    }
}

/// Where the failed message was consumed from: the re-drive target. Only
/// built when the topic is known, since coordinates without a topic can
/// neither be re-driven nor shown meaningfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalCoords {
    pub topic: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// Kafka timestamp of the original message (Spring only).
    pub timestamp: Option<Timestamp>,
    /// The consumer group that failed on it (Spring), or the connector name
    /// (Kafka Connect).
    pub consumer_group: Option<String>,
}

/// One message of a dead-letter topic, understood as far as possible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where the dead letter itself sits.
    pub dlq: KafkaCoords,
    /// Kafka timestamp of the DLQ message (when it was dead-lettered).
    pub dlq_timestamp: Option<Timestamp>,
    pub format: DeadLetterFormat,
    /// Key, value and headers exactly as consumed: a re-drive produces these
    /// bytes, not a re-encoding of them.
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub original: Option<OriginalCoords>,
    /// The failing exception's class; Spring's listener wrapper is replaced
    /// by its cause, which is what engineers actually need to see.
    pub exception_class: Option<String>,
    pub exception_message: Option<String>,
    pub stacktrace: Option<String>,
    /// See [`failure_group`].
    pub failure_group: String,
    pub saga_id: Option<String>,
    pub trace_id: Option<String>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// From [`RETRY_OF_HEADER`]: set when a re-driven message failed again.
    pub retry_of: Option<String>,
    /// From [`RETRY_COUNT_HEADER`]; 0 when absent or unreadable.
    pub retry_count: u32,
}

/// What one format read from a message: origin and failure.
#[derive(Debug, Clone, Default, PartialEq)]
struct Failure {
    original: Option<OriginalCoords>,
    exception_class: Option<String>,
    exception_message: Option<String>,
    stacktrace: Option<String>,
}

/// Decodes one DLQ message. Never fails and never panics, whatever the
/// bytes: unknown metadata gives [`DeadLetterFormat::Unknown`].
pub fn decode_dead_letter(message: &RawMessage, generic: &GenericDeadLetterFields) -> DeadLetter {
    let payload = payload_json(message.value.as_deref());
    let (format, failure) = if spring::is_spring(message) {
        (DeadLetterFormat::Spring, spring::read(message))
    } else if kafka_connect::is_connect(message) {
        (DeadLetterFormat::KafkaConnect, kafka_connect::read(message))
    } else if let Some(failure) = generic::read(message, generic, payload.as_ref()) {
        (DeadLetterFormat::Generic, failure)
    } else {
        (DeadLetterFormat::Unknown, Failure::default())
    };
    let object = payload.as_ref().and_then(Value::as_object);
    let group = failure_group(
        failure.original.as_ref().map(|o| o.topic.as_str()),
        failure.exception_class.as_deref(),
        failure.exception_message.as_deref(),
    );
    DeadLetter {
        dlq: message.coords.clone(),
        dlq_timestamp: message.timestamp,
        format,
        key: message.key.clone(),
        value: message.value.clone(),
        headers: message.headers.clone(),
        original: failure.original,
        exception_class: failure.exception_class,
        exception_message: failure.exception_message,
        stacktrace: failure.stacktrace,
        failure_group: group,
        saga_id: saga_id(message, object),
        trace_id: trace_id(message, object),
        event_id: first_text(message, &["id", "ce_id", "event_id"])
            .or_else(|| object.and_then(|o| string_field(o, &["id", "event_id"]))),
        event_type: first_text(message, &["type", "ce_type", "eventType"])
            .or_else(|| object.and_then(|o| string_field(o, &["type", "eventType"]))),
        retry_of: last_header(message, RETRY_OF_HEADER).and_then(text),
        retry_count: last_header(message, RETRY_COUNT_HEADER)
            .and_then(parse_integer)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
    }
}

/// The saga the failed event belongs to: an explicit header, else the
/// payload. In the saga-state shape (a `status` next to the ids) `saga_id`
/// names the saga definition and `correlation_id` the instance, so there the
/// instance id wins, as in the saga-state decoder.
fn saga_id(message: &RawMessage, object: Option<&Map<String, Value>>) -> Option<String> {
    first_text(
        message,
        &["saga_id", "saga-id", "correlation_id", "ce_sagaid"],
    )
    .or_else(|| {
        let object = object?;
        if object.contains_key("status") {
            string_field(
                object,
                &["correlation_id", "correlationId", "saga_id", "sagaId"],
            )
        } else {
            string_field(
                object,
                &["saga_id", "sagaId", "correlation_id", "correlationId"],
            )
        }
    })
}

/// The trace id by the common rule (a valid `traceparent` header, then
/// trace-id headers, then payload fields), with the CloudEvents forms of
/// the distributed-tracing extension in between: a dead-lettered CloudEvent
/// keeps its trace in `ce_traceparent` (binary mode) or a `traceparent`
/// attribute (structured mode), and without it the saga link is lost.
fn trace_id(message: &RawMessage, object: Option<&Map<String, Value>>) -> Option<String> {
    let attribute = object
        .and_then(|o| o.get("traceparent"))
        .and_then(Value::as_str)
        .map(str::to_string);
    TraceCandidates::new()
        .traceparent("traceparent header", message.header("traceparent"))
        .traceparent("ce_traceparent header", message.header("ce_traceparent"))
        .traceparent("traceparent attribute", attribute)
        .trace_id_headers(message)
        .trace_id_fields("payload", object)
        .resolve()
        .trace_id
}

/// The value as JSON, if it is JSON and small enough; a JSON string that
/// holds JSON (Debezium outbox payloads) is unwrapped once.
fn payload_json(value: Option<&[u8]>) -> Option<Value> {
    let bytes = value.filter(|v| v.len() <= MAX_PAYLOAD_LOOKUP_BYTES)?;
    // serde_json refuses nesting deeper than 128, so hostile depth is an
    // error here, not a stack overflow.
    serde_json::from_slice(bytes).ok().map(unwrap_json_string)
}

/// The first of these headers that is present with non-blank text.
fn first_text(message: &RawMessage, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| message.header(name))
}

/// The first non-null value of a header (case-insensitive name). Origin
/// headers use the first: Spring appends a new set on every hop, so the
/// first names where the message was originally consumed.
fn first_header<'a>(message: &'a RawMessage, name: &str) -> Option<&'a [u8]> {
    message
        .headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .find_map(|(_, value)| value.as_deref())
}

/// The last non-null value of a header. Failure headers use the last: when
/// previous exception headers are kept, the last describes the latest
/// failure.
fn last_header<'a>(message: &'a RawMessage, name: &str) -> Option<&'a [u8]> {
    message
        .headers
        .iter()
        .rev()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .find_map(|(_, value)| value.as_deref())
}

fn has_header_prefix(message: &RawMessage, prefix: &str) -> bool {
    message.headers.iter().any(|(key, _)| {
        key.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    })
}

/// Header bytes as trimmed text (invalid UTF-8 replaced); blank is absent.
fn text(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// An integer header: 4 or 8 big-endian bytes (Spring writes Java ints and
/// longs raw) or decimal text (bridges and hand-written producers). Bytes
/// that read as printable text are text, whatever their length: "1234" or
/// "five" taken as a binary int would be a partition above 500 million or an
/// offset or timestamp above 2·10¹⁸, which no real message has, while real
/// binary values start with a zero byte (or 0xff when negative).
fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let printable = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.chars().all(|c| !c.is_control() || c.is_whitespace()));
    if let Some(text) = printable {
        return text.trim().parse().ok();
    }
    match *bytes {
        [a, b, c, d] => Some(i64::from(i32::from_be_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Some(i64::from_be_bytes([a, b, c, d, e, f, g, h])),
        _ => None,
    }
}

/// Kafka uses -1 for "unknown", so negative partitions are absent.
fn parse_partition(bytes: &[u8]) -> Option<i32> {
    parse_integer(bytes)
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 0)
}

fn parse_offset(bytes: &[u8]) -> Option<i64> {
    parse_integer(bytes).filter(|n| *n >= 0)
}

/// Epoch milliseconds (text or binary); as a courtesy to bridges, an ISO
/// time in text too. Negative (Kafka's "no timestamp") is absent.
fn parse_epoch_millis(bytes: &[u8]) -> Option<Timestamp> {
    match parse_integer(bytes) {
        Some(millis) if millis >= 0 => chrono::DateTime::from_timestamp_millis(millis),
        Some(_) => None,
        None => std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| parse_timestamp(&Value::String(t.to_string()))),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use chrono::TimeZone;

    pub const DLQ_TOPIC: &str = "orders.DLT";

    pub fn dlq_timestamp() -> Timestamp {
        chrono::Utc.timestamp_millis_opt(1_763_719_260_000).unwrap()
    }

    /// A DLQ message at `orders.DLT` 0/17 with these headers.
    pub fn dlq_message(value: Option<&[u8]>, headers: &[(&str, &[u8])]) -> RawMessage {
        RawMessage {
            coords: KafkaCoords {
                topic: DLQ_TOPIC.into(),
                partition: 0,
                offset: 17,
            },
            key: Some(b"ORD-1001".to_vec()),
            value: value.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_vec())))
                .collect(),
            timestamp: Some(dlq_timestamp()),
        }
    }

    /// What decoding `message` gives when nothing in it is understood; tests
    /// override the fields they expect with struct update syntax.
    pub fn unknown(message: &RawMessage) -> DeadLetter {
        DeadLetter {
            dlq: message.coords.clone(),
            dlq_timestamp: message.timestamp,
            format: DeadLetterFormat::Unknown,
            key: message.key.clone(),
            value: message.value.clone(),
            headers: message.headers.clone(),
            original: None,
            exception_class: None,
            exception_message: None,
            stacktrace: None,
            failure_group: "-|-|-".into(),
            saga_id: None,
            trace_id: None,
            event_id: None,
            event_type: None,
            retry_of: None,
            retry_count: 0,
        }
    }

    pub fn decode(message: &RawMessage) -> DeadLetter {
        decode_dead_letter(message, &GenericDeadLetterFields::default())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn a_message_without_known_headers_is_still_a_dead_letter() {
        let message = dlq_message(Some(b"not json at all"), &[("content-type", b"text/plain")]);
        assert_eq!(decode(&message), unknown(&message));

        let mut tombstone = dlq_message(None, &[]);
        tombstone.key = None;
        tombstone.timestamp = None;
        assert_eq!(decode(&tombstone), unknown(&tombstone));
    }

    #[test]
    fn a_non_utf8_value_is_kept_byte_exact() {
        let value: &[u8] = &[0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xfe, b'{', 0x80];
        let message = dlq_message(Some(value), &[("kafka_dlt-original-topic", b"orders")]);
        let letter = decode(&message);
        assert_eq!(letter.value.as_deref(), Some(value));
        assert_eq!(letter.format, DeadLetterFormat::Spring);
        assert_eq!(letter.saga_id, None);
        assert_eq!(letter.failure_group, "orders|-|-");
    }

    #[test]
    fn saga_trace_event_ids_and_type_from_headers() {
        let message = dlq_message(
            Some(br#"{"saga_id":"from-payload","trace_id":"22222222222222222222222222222222"}"#),
            &[
                ("saga-id", b"ord-7f3a"),
                (
                    "traceparent",
                    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ("trace_id", b"11111111111111111111111111111111"),
                ("ce_id", b"evt-42"),
                ("ce_type", b"com.shop.PaymentAuthorized"),
                ("x-retry-of", b"orders.DLT/0/3"),
                ("x-retry-count", b"2"),
            ],
        );
        assert_eq!(
            decode(&message),
            DeadLetter {
                saga_id: Some("ord-7f3a".into()),
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                event_id: Some("evt-42".into()),
                event_type: Some("com.shop.PaymentAuthorized".into()),
                retry_of: Some("orders.DLT/0/3".into()),
                retry_count: 2,
                ..unknown(&message)
            }
        );
    }

    #[test]
    fn saga_trace_event_ids_and_type_from_the_payload() {
        let message = dlq_message(
            Some(
                br#"{"sagaId":"ord-7f3a","traceId":"ABCDEF0123456789ABCDEF0123456789",
                    "id":"evt-7","eventType":"StockReserved","order_id":"ORD-1001"}"#,
            ),
            &[],
        );
        assert_eq!(
            decode(&message),
            DeadLetter {
                saga_id: Some("ord-7f3a".into()),
                trace_id: Some("abcdef0123456789abcdef0123456789".into()),
                event_id: Some("evt-7".into()),
                event_type: Some("StockReserved".into()),
                ..unknown(&message)
            }
        );

        // A Debezium outbox payload: a JSON string holding the JSON.
        let message = dlq_message(
            Some(br#""{\"correlationId\":\"ord-9\",\"type\":\"OrderPlaced\"}""#),
            &[],
        );
        let letter = decode(&message);
        assert_eq!(letter.saga_id.as_deref(), Some("ord-9"));
        assert_eq!(letter.event_type.as_deref(), Some("OrderPlaced"));
    }

    #[test]
    fn a_saga_state_payload_links_to_the_instance_not_the_definition() {
        let message = dlq_message(
            Some(br#"{"saga_id":"order_fulfillment","correlation_id":"ord-7f3a","status":"STEP_FAILED"}"#),
            &[],
        );
        assert_eq!(decode(&message).saga_id.as_deref(), Some("ord-7f3a"));
    }

    #[test]
    fn dead_lettered_cloudevents_keep_their_trace_and_saga_id() {
        let traceparent: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let binary = dlq_message(
            Some(br#"{"order_id":"ord-1"}"#),
            &[("ce_traceparent", traceparent), ("ce_sagaid", b"ord-7f3a")],
        );
        let letter = decode(&binary);
        assert_eq!(
            letter.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(letter.saga_id.as_deref(), Some("ord-7f3a"));
        let structured = dlq_message(
            Some(br#"{"specversion":"1.0","id":"e1","type":"PaymentAuthorized","source":"/pay","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{}}"#),
            &[],
        );
        assert_eq!(
            decode(&structured).trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn an_invalid_traceparent_is_ignored_for_the_next_candidate() {
        let message = dlq_message(
            Some(br#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#),
            &[
                (
                    "traceparent",
                    b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ),
                ("x-trace-id", b"not a trace id!"),
            ],
        );
        assert_eq!(
            decode(&message).trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let only_invalid = dlq_message(None, &[("traceparent", b"garbage")]);
        assert_eq!(decode(&only_invalid).trace_id, None);
    }

    #[test]
    fn payload_lookups_skip_huge_deep_and_non_object_values() {
        let mut huge = br#"{"saga_id":"ord-1","pad":""#.to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_PAYLOAD_LOOKUP_BYTES));
        huge.extend(br#""}"#);
        let message = dlq_message(Some(&huge), &[]);
        let letter = decode(&message);
        assert_eq!(letter.saga_id, None);
        assert_eq!(letter.value.as_deref(), Some(&huge[..]));

        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            decode(&dlq_message(Some(deep.as_bytes()), &[])).saga_id,
            None
        );
        assert_eq!(
            decode(&dlq_message(Some(br#"["saga_id"]"#), &[])).saga_id,
            None
        );
        assert_eq!(decode(&dlq_message(Some(b"42"), &[])).event_id, None);
    }

    #[test]
    fn retry_headers_take_the_latest_and_ignore_garbage() {
        let message = dlq_message(
            None,
            &[
                ("x-retry-of", b"orders.DLT/0/3"),
                ("x-retry-count", b"1"),
                ("x-retry-of", b"orders.DLT/0/9"),
                ("x-retry-count", b"2"),
            ],
        );
        let letter = decode(&message);
        assert_eq!(letter.retry_of.as_deref(), Some("orders.DLT/0/9"));
        assert_eq!(letter.retry_count, 2);
        for bad in [&b"-1"[..], b"lots", b"99999999999"] {
            let message = dlq_message(None, &[("x-retry-count", bad)]);
            assert_eq!(decode(&message).retry_count, 0);
        }
    }

    #[test]
    fn integers_as_text_or_big_endian_bytes() {
        assert_eq!(parse_integer(b" 42 "), Some(42));
        assert_eq!(parse_integer(&7_i32.to_be_bytes()), Some(7));
        assert_eq!(
            parse_integer(&1_763_719_200_000_i64.to_be_bytes()),
            Some(1_763_719_200_000)
        );
        // Four ASCII digits are text, not a 32-bit int.
        assert_eq!(parse_integer(b"1234"), Some(1234));
        assert_eq!(parse_integer(b"12345678"), Some(12_345_678));
        assert_eq!(parse_integer(b"five"), None);
        assert_eq!(parse_integer(b"1024\n"), Some(1024));
        assert_eq!(parse_integer(&[1, 2, 3]), None);
        assert_eq!(parse_integer(b""), None);
        assert_eq!(parse_partition(&(-1_i32).to_be_bytes()), None);
        assert_eq!(parse_partition(b"4294967296"), None);
        assert_eq!(parse_offset(&(-1_i64).to_be_bytes()), None);
        assert_eq!(parse_epoch_millis(&(-1_i64).to_be_bytes()), None);
        assert_eq!(
            parse_epoch_millis(b"2025-11-21T10:00:00Z"),
            parse_epoch_millis(b"1763719200000")
        );
    }

    #[test]
    fn formats_have_stable_names() {
        for format in [
            DeadLetterFormat::Spring,
            DeadLetterFormat::KafkaConnect,
            DeadLetterFormat::Generic,
            DeadLetterFormat::Unknown,
        ] {
            assert_eq!(
                serde_json::to_value(format).unwrap(),
                Value::String(format.as_str().into())
            );
        }
    }
}
