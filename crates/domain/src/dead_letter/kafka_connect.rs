//! Kafka Connect's dead-letter context headers (`__connect.errors.*`,
//! written when `errors.deadletterqueue.context.headers.enable=true`).
//! Connect writes partition and offset as decimal text; the shared integer
//! reader also accepts binary in case a bridge re-encoded them.

use super::{
    first_header, has_header_prefix, last_header, parse_offset, parse_partition, text, Failure,
    OriginalCoords,
};
use crate::saga_event::RawMessage;

pub(super) const PREFIX: &str = "__connect.errors.";
const TOPIC: &str = "__connect.errors.topic";
const PARTITION: &str = "__connect.errors.partition";
const OFFSET: &str = "__connect.errors.offset";
const CONNECTOR_NAME: &str = "__connect.errors.connector.name";
const EXCEPTION_CLASS: &str = "__connect.errors.exception.class.name";
const EXCEPTION_MESSAGE: &str = "__connect.errors.exception.message";
const EXCEPTION_STACKTRACE: &str = "__connect.errors.exception.stacktrace";
// `task.id`, `stage` and `class.name` (the converter or transformation that
// failed) have no field of their own; they stay visible in the headers.

pub(super) fn is_connect(message: &RawMessage) -> bool {
    has_header_prefix(message, PREFIX)
}

pub(super) fn read(message: &RawMessage) -> Failure {
    let original = first_header(message, TOPIC)
        .and_then(text)
        .map(|topic| OriginalCoords {
            topic,
            partition: first_header(message, PARTITION).and_then(parse_partition),
            offset: first_header(message, OFFSET).and_then(parse_offset),
            // Connect does not record the original message's timestamp.
            timestamp: None,
            // Connect does not name the consumer group either. A sink
            // connector's group is `connect-<name>` unless overridden
            // (`consumer.override.group.id`), so the connector name is the
            // one reliable identity of "who failed on it"; it is shown as
            // is rather than guessing the group.
            consumer_group: first_header(message, CONNECTOR_NAME).and_then(text),
        });
    Failure {
        original,
        exception_class: last_header(message, EXCEPTION_CLASS).and_then(text),
        exception_message: last_header(message, EXCEPTION_MESSAGE).and_then(text),
        stacktrace: last_header(message, EXCEPTION_STACKTRACE).and_then(text),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

    const STACKTRACE: &str = "org.apache.kafka.connect.errors.DataException: Converting byte[] to Kafka Connect data failed due to serialization error: \n\tat org.apache.kafka.connect.json.JsonConverter.toConnectData(JsonConverter.java:333)\nCaused by: org.apache.kafka.common.errors.SerializationException: com.fasterxml.jackson.core.JsonParseException: Unexpected character ('}' (code 125)): was expecting double-quote to start field name";

    #[test]
    fn a_sink_connector_dead_letter() {
        let value = br#"{"saga_id":"ord-7f3a","order_id":"ORD-1001",}"#;
        let message = dlq_message(
            Some(value),
            &[
                ("__connect.errors.topic", b"events.order"),
                ("__connect.errors.partition", b"5"),
                ("__connect.errors.offset", b"88213"),
                ("__connect.errors.connector.name", b"orders-jdbc-sink"),
                ("__connect.errors.task.id", b"0"),
                ("__connect.errors.stage", b"VALUE_CONVERTER"),
                (
                    "__connect.errors.class.name",
                    b"org.apache.kafka.connect.json.JsonConverter",
                ),
                (
                    "__connect.errors.exception.class.name",
                    b"org.apache.kafka.connect.errors.DataException",
                ),
                (
                    "__connect.errors.exception.message",
                    b"Converting byte[] to Kafka Connect data failed due to serialization error: ",
                ),
                (
                    "__connect.errors.exception.stacktrace",
                    STACKTRACE.as_bytes(),
                ),
                ("saga_id", b"ord-7f3a"),
            ],
        );
        assert_eq!(
            decode(&message),
            DeadLetter {
                format: DeadLetterFormat::KafkaConnect,
                original: Some(OriginalCoords {
                    topic: "events.order".into(),
                    partition: Some(5),
                    offset: Some(88_213),
                    timestamp: None,
                    consumer_group: Some("orders-jdbc-sink".into()),
                }),
                exception_class: Some("org.apache.kafka.connect.errors.DataException".into()),
                exception_message: Some(
                    "Converting byte[] to Kafka Connect data failed due to serialization error:"
                        .into()
                ),
                stacktrace: Some(STACKTRACE.into()),
                failure_group: "events.order|org.apache.kafka.connect.errors.DataException|Converting byte[] to Kafka Connect data failed due to serialization error:".into(),
                // The value is not valid JSON (trailing comma): the header
                // still links it.
                saga_id: Some("ord-7f3a".into()),
                ..unknown(&message)
            }
        );
    }

    #[test]
    fn spring_headers_win_over_connect_headers() {
        let message = dlq_message(
            None,
            &[
                ("__connect.errors.topic", b"from-connect"),
                ("kafka_dlt-original-topic", b"from-spring"),
            ],
        );
        let letter = decode(&message);
        assert_eq!(letter.format, DeadLetterFormat::Spring);
        assert_eq!(letter.original.unwrap().topic, "from-spring");
    }

    #[test]
    fn unreadable_coordinates_are_absent_not_fatal() {
        let message = dlq_message(
            None,
            &[
                ("__connect.errors.topic", b"events.order"),
                ("__connect.errors.partition", b"five"),
                ("__connect.errors.offset", b"-1"),
            ],
        );
        let original = decode(&message).original.unwrap();
        assert_eq!((original.partition, original.offset), (None, None));
    }
}
