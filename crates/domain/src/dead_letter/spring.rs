//! Spring Kafka's `DeadLetterPublishingRecoverer` headers (`kafka_dlt-*`).
//! Spring writes the original partition as a Java int and offset and
//! timestamp as Java longs (big-endian bytes); bridges that copy headers as
//! text write decimals instead, so both are read.

use super::{
    first_header, has_header_prefix, last_header, parse_epoch_millis, parse_offset,
    parse_partition, text, Failure, OriginalCoords,
};
use crate::saga_event::RawMessage;

pub(super) const PREFIX: &str = "kafka_dlt-";
pub(super) const ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
pub(super) const ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
pub(super) const ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
pub(super) const ORIGINAL_TIMESTAMP: &str = "kafka_dlt-original-timestamp";
pub(super) const ORIGINAL_CONSUMER_GROUP: &str = "kafka_dlt-original-consumer-group";
/// Exception headers for a failure of the value (the listener threw, or the
/// value did not deserialize).
const VALUE_EXCEPTION: &str = "kafka_dlt-exception-";
/// Exception headers Spring writes instead when the key did not deserialize.
const KEY_EXCEPTION: &str = "kafka_dlt-key-exception-";
/// Spring wraps whatever the listener threw in this; the class says nothing
/// about the failure, its cause does.
const LISTENER_WRAPPER: &str = "ListenerExecutionFailedException";

pub(super) fn is_spring(message: &RawMessage) -> bool {
    has_header_prefix(message, PREFIX)
}

pub(super) fn read(message: &RawMessage) -> Failure {
    let original = first_header(message, ORIGINAL_TOPIC)
        .and_then(text)
        .map(|topic| OriginalCoords {
            topic,
            partition: first_header(message, ORIGINAL_PARTITION).and_then(parse_partition),
            offset: first_header(message, ORIGINAL_OFFSET).and_then(parse_offset),
            timestamp: first_header(message, ORIGINAL_TIMESTAMP).and_then(parse_epoch_millis),
            consumer_group: first_header(message, ORIGINAL_CONSUMER_GROUP).and_then(text),
        });
    let value = Exception::read(message, VALUE_EXCEPTION);
    let exception = if value.is_empty() {
        Exception::read(message, KEY_EXCEPTION)
    } else {
        value
    };
    let exception_class = match (exception.fqcn, exception.cause_fqcn) {
        (Some(fqcn), Some(cause)) if simple_name(&fqcn) == LISTENER_WRAPPER => Some(cause),
        (fqcn, cause) => fqcn.or(cause),
    };
    Failure {
        original,
        exception_class,
        exception_message: exception.message,
        stacktrace: exception.stacktrace,
    }
}

fn simple_name(fqcn: &str) -> &str {
    fqcn.rsplit(['.', '$']).next().unwrap_or(fqcn)
}

/// One set of exception headers (value or key).
struct Exception {
    fqcn: Option<String>,
    cause_fqcn: Option<String>,
    message: Option<String>,
    stacktrace: Option<String>,
}

impl Exception {
    fn read(message: &RawMessage, prefix: &str) -> Exception {
        let field = |name: &str| last_header(message, &format!("{prefix}{name}")).and_then(text);
        Exception {
            fqcn: field("fqcn"),
            cause_fqcn: field("cause-fqcn"),
            message: field("message"),
            stacktrace: field("stacktrace"),
        }
    }

    fn is_empty(&self) -> bool {
        self.fqcn.is_none()
            && self.cause_fqcn.is_none()
            && self.message.is_none()
            && self.stacktrace.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use chrono::TimeZone;

    const STACKTRACE: &str = "org.springframework.kafka.listener.ListenerExecutionFailedException: Listener method 'public void com.shop.payment.PaymentListener.onOrderPlaced(java.lang.String)' threw exception\n\tat org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.decorateException(KafkaMessageListenerContainer.java:2996)\nCaused by: com.shop.payment.CardDeclinedException: Card declined for order 1001 (auth 9f8e7d6c5b4a)\n\tat com.shop.payment.PaymentListener.onOrderPlaced(PaymentListener.java:57)\n";
    const MESSAGE: &str = "Listener method 'public void com.shop.payment.PaymentListener.onOrderPlaced(java.lang.String)' threw exception; Card declined for order 1001 (auth 9f8e7d6c5b4a)";

    fn spring_headers<'a>(
        partition: &'a [u8],
        offset: &'a [u8],
        timestamp: &'a [u8],
    ) -> Vec<(&'a str, &'a [u8])> {
        vec![
            ("id", b"evt-1001-3"),
            ("type", b"OrderPlaced"),
            (
                "traceparent",
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "kafka_dlt-exception-fqcn",
                b"org.springframework.kafka.listener.ListenerExecutionFailedException",
            ),
            (
                "kafka_dlt-exception-cause-fqcn",
                b"com.shop.payment.CardDeclinedException",
            ),
            ("kafka_dlt-exception-message", MESSAGE.as_bytes()),
            ("kafka_dlt-exception-stacktrace", STACKTRACE.as_bytes()),
            ("kafka_dlt-original-topic", b"events.order"),
            ("kafka_dlt-original-partition", partition),
            ("kafka_dlt-original-offset", offset),
            ("kafka_dlt-original-timestamp", timestamp),
            ("kafka_dlt-original-timestamp-type", b"CreateTime"),
            ("kafka_dlt-original-consumer-group", b"payment-service"),
        ]
    }

    fn expected(message: &RawMessage) -> DeadLetter {
        DeadLetter {
            format: DeadLetterFormat::Spring,
            original: Some(OriginalCoords {
                topic: "events.order".into(),
                partition: Some(3),
                offset: Some(1_024),
                timestamp: Some(chrono::Utc.timestamp_millis_opt(1_763_719_200_123).unwrap()),
                consumer_group: Some("payment-service".into()),
            }),
            exception_class: Some("com.shop.payment.CardDeclinedException".into()),
            exception_message: Some(MESSAGE.into()),
            stacktrace: Some(STACKTRACE.trim().into()),
            failure_group: "events.order|com.shop.payment.CardDeclinedException|Listener method '<s>' threw exception; Card declined for order <n> (auth <hex>)".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            event_id: Some("evt-1001-3".into()),
            event_type: Some("OrderPlaced".into()),
            saga_id: Some("ord-7f3a".into()),
            ..unknown(message)
        }
    }

    const VALUE: &[u8] = br#"{"saga_id":"ord-7f3a","order_id":"ORD-1001","total":42.5}"#;

    #[test]
    fn binary_ints_and_longs_as_spring_writes_them() {
        let partition = 3_i32.to_be_bytes();
        let offset = 1_024_i64.to_be_bytes();
        let timestamp = 1_763_719_200_123_i64.to_be_bytes();
        let message = dlq_message(
            Some(VALUE),
            &spring_headers(&partition, &offset, &timestamp),
        );
        assert_eq!(decode(&message), expected(&message));
    }

    #[test]
    fn decimal_text_as_bridges_write_it() {
        let message = dlq_message(
            Some(VALUE),
            &spring_headers(b"3", b" 1024 ", b"1763719200123"),
        );
        assert_eq!(decode(&message), expected(&message));
    }

    #[test]
    fn the_first_origin_and_the_latest_failure_win() {
        let message = dlq_message(
            None,
            &[
                ("kafka_dlt-original-topic", b"orders"),
                ("kafka_dlt-original-offset", &7_i64.to_be_bytes()),
                (
                    "kafka_dlt-exception-fqcn",
                    b"java.lang.IllegalStateException",
                ),
                ("kafka_dlt-exception-message", b"first failure"),
                ("kafka_dlt-original-topic", b"orders-retry-0"),
                ("kafka_dlt-original-offset", &2_i64.to_be_bytes()),
                (
                    "kafka_dlt-exception-fqcn",
                    b"java.lang.IllegalArgumentException",
                ),
                ("kafka_dlt-exception-message", b"second failure"),
            ],
        );
        let letter = decode(&message);
        let original = letter.original.unwrap();
        assert_eq!(
            (original.topic.as_str(), original.offset),
            ("orders", Some(7))
        );
        assert_eq!(
            letter.exception_class.as_deref(),
            Some("java.lang.IllegalArgumentException")
        );
        assert_eq!(letter.exception_message.as_deref(), Some("second failure"));
    }

    #[test]
    fn key_deserialization_failures_use_the_key_exception_headers() {
        let message = dlq_message(
            Some(VALUE),
            &[
                ("kafka_dlt-original-topic", b"events.order"),
                ("kafka_dlt-original-partition", &0_i32.to_be_bytes()),
                ("kafka_dlt-key-exception-fqcn", b"org.springframework.kafka.support.serializer.DeserializationException"),
                ("kafka_dlt-key-exception-message", b"failed to deserialize; nested exception is java.lang.NumberFormatException: For input string: \"ORD-1001\""),
                ("kafka_dlt-key-exception-stacktrace", b"org.springframework.kafka.support.serializer.DeserializationException: failed to deserialize"),
            ],
        );
        let letter = decode(&message);
        assert_eq!(
            letter.failure_group,
            "events.order|org.springframework.kafka.support.serializer.DeserializationException|failed to deserialize; nested exception is java.lang.NumberFormatException: For input string: '<s>'"
        );
        assert_eq!(letter.original.unwrap().partition, Some(0));
        assert!(letter.stacktrace.is_some());
    }

    #[test]
    fn the_listener_wrapper_stays_without_a_cause() {
        let message = dlq_message(
            None,
            &[(
                "kafka_dlt-exception-fqcn",
                b"org.springframework.kafka.listener.ListenerExecutionFailedException",
            )],
        );
        let letter = decode(&message);
        assert_eq!(letter.format, DeadLetterFormat::Spring);
        assert_eq!(letter.original, None);
        assert_eq!(
            letter.failure_group,
            "-|org.springframework.kafka.listener.ListenerExecutionFailedException|-"
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_null_values_absent() {
        let mut message = dlq_message(None, &[("KAFKA_DLT-ORIGINAL-TOPIC", b"orders")]);
        message
            .headers
            .push(("kafka_dlt-exception-message".into(), None));
        let letter = decode(&message);
        assert_eq!(letter.format, DeadLetterFormat::Spring);
        assert_eq!(letter.original.unwrap().topic, "orders");
        assert_eq!(letter.exception_message, None);
    }
}
