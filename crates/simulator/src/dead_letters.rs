//! Services of the demo that give up on a message dead-letter it, the way
//! Spring Kafka's `DeadLetterPublishingRecoverer` does: the original key,
//! value and headers (traceparent included) go to `<topic>.DLT`, followed
//! by the `kafka_dlt-*` headers — origin as big-endian Java ints and longs,
//! the failing consumer group, exception classes, message and stack trace.
//! A few realistic failure reasons recur, so the DLQ's failure groups mean
//! something.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::Rng;

use crate::ids::uuid;
use crate::message::{Body, PlannedMessage, RenderedMessage};
use crate::service_consumer::PAYMENT_SERVICE_GROUP;
use crate::topics::{PAYMENT_EVENTS_TOPIC, SHOP_OUTBOX_CDC_TOPIC};

/// Spring Kafka's default dead-letter topic suffix.
pub const DLT_SUFFIX: &str = ".DLT";

/// The consumer group of the demo's order service, which reads the payment
/// service's events.
pub const ORDER_SERVICE_GROUP: &str = "shop-order-service";

/// The dead-letter topic Spring derives from a topic.
pub fn dlt_topic(topic: &str) -> String {
    format!("{topic}{DLT_SUFFIX}")
}

/// Why a simulated service gave up on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The payment service inserts a payment twice (a redelivered
    /// `StockReserved`): a unique constraint violation.
    DuplicatePayment,
    /// A database statement ran into the statement timeout.
    StatementTimeout,
    /// The value does not deserialize (an amount in a locale format).
    Deserialization,
}

impl FailureReason {
    pub const ALL: [FailureReason; 3] = [
        FailureReason::DuplicatePayment,
        FailureReason::StatementTimeout,
        FailureReason::Deserialization,
    ];
}

/// The exception a failure reason produces, as Spring reports it.
struct Exception {
    fqcn: &'static str,
    cause_fqcn: Option<&'static str>,
    message: String,
    stacktrace: String,
}

const LISTENER_FAILED: &str = "org.springframework.kafka.listener.ListenerExecutionFailedException";

/// Who consumes the original message: (listener method, consumer group).
struct Listener {
    method: &'static str,
    group: &'static str,
}

fn exception(reason: FailureReason, listener: &Listener, rng: &mut StdRng) -> Exception {
    // The listener's exception wraps the real one. Like services that set
    // the message header from the root cause, the message is the cause's
    // (the wrapper's text, a method signature, would drown the failure
    // group); the classes and the stack trace show the wrapping.
    let wrapped = |cause: &'static str, text: String, frame: &str| {
        let outer = format!(
            "Listener method '{}' threw exception; nested exception is {cause}: {text}",
            listener.method
        );
        Exception {
            fqcn: LISTENER_FAILED,
            cause_fqcn: Some(cause),
            stacktrace: format!(
                "{LISTENER_FAILED}: {outer}\n\
                 \tat org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.decorateException(KafkaMessageListenerContainer.java:2996)\n\
                 \tat org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.doInvokeOnMessage(KafkaMessageListenerContainer.java:2903)\n\
                 Caused by: {cause}: {text}\n\
                 \tat {frame}\n\
                 \tat org.springframework.transaction.support.TransactionTemplate.execute(TransactionTemplate.java:140)\n\
                 \t... 14 more"
            ),
            message: text,
        }
    };
    match reason {
        FailureReason::DuplicatePayment => wrapped(
            "org.springframework.dao.DataIntegrityViolationException",
            format!(
                "duplicate key value violates unique constraint \"payments_pkey\" Detail: Key (id)=({}) already exists.",
                uuid(rng)
            ),
            "com.shop.payment.PaymentRepository.insert(PaymentRepository.java:61)",
        ),
        FailureReason::StatementTimeout => wrapped(
            "org.springframework.dao.QueryTimeoutException",
            "PreparedStatementCallback; SQL [update orders set status = ?, updated_at = now() where id = ?]; ERROR: canceling statement due to statement timeout".to_string(),
            "com.shop.order.OrderRepository.updateStatus(OrderRepository.java:88)",
        ),
        FailureReason::Deserialization => {
            let amount = format!("{},{:02}", rng.random_range(5..500), rng.random_range(0..100));
            let message = format!(
                "failed to deserialize; nested exception is com.fasterxml.jackson.databind.exc.InvalidFormatException: Cannot deserialize value of type `java.math.BigDecimal` from String \"{amount}\": not a valid representation"
            );
            Exception {
                fqcn: "org.springframework.kafka.support.serializer.DeserializationException",
                cause_fqcn: Some("com.fasterxml.jackson.databind.exc.InvalidFormatException"),
                stacktrace: format!(
                    "org.springframework.kafka.support.serializer.DeserializationException: {message}\n\
                     \tat org.springframework.kafka.support.serializer.ErrorHandlingDeserializer.deserializationException(ErrorHandlingDeserializer.java:216)\n\
                     Caused by: com.fasterxml.jackson.databind.exc.InvalidFormatException: Cannot deserialize value of type `java.math.BigDecimal` from String \"{amount}\"\n\
                     \tat com.fasterxml.jackson.databind.DeserializationContext.weirdStringException(DeserializationContext.java:1991)"
                ),
                message,
            }
        }
    }
}

/// The service that consumes `message` and the ways it fails on it; None
/// for messages no simulated service dead-letters: payment events (read by
/// the order service) and stock events (read by the payment service).
fn consumer_of(message: &PlannedMessage) -> Option<(Listener, &'static [FailureReason])> {
    match (&message.body, message.topic) {
        (Body::CloudEvent { .. }, PAYMENT_EVENTS_TOPIC) => listener_of_topic(PAYMENT_EVENTS_TOPIC),
        (Body::CdcInsert { row, .. }, SHOP_OUTBOX_CDC_TOPIC) if row.aggregate_type == "Stock" => {
            listener_of_topic(SHOP_OUTBOX_CDC_TOPIC)
        }
        _ => None,
    }
}

/// The service listening on `topic` (among those whose messages the demo
/// dead-letters) and the ways it fails.
fn listener_of_topic(topic: &str) -> Option<(Listener, &'static [FailureReason])> {
    match topic {
        PAYMENT_EVENTS_TOPIC => Some((
            Listener {
                method: "public void com.shop.order.PaymentEventsListener.onPaymentEvent(org.apache.kafka.clients.consumer.ConsumerRecord<java.lang.String, com.shop.order.PaymentEvent>)",
                group: ORDER_SERVICE_GROUP,
            },
            &[FailureReason::Deserialization, FailureReason::StatementTimeout],
        )),
        SHOP_OUTBOX_CDC_TOPIC => Some((
            Listener {
                method: "public void com.shop.payment.StockEventsListener.onStockEvent(org.apache.kafka.clients.consumer.ConsumerRecord<java.lang.String, java.lang.String>)",
                group: PAYMENT_SERVICE_GROUP,
            },
            &[FailureReason::DuplicatePayment, FailureReason::StatementTimeout],
        )),
        _ => None,
    }
}

/// The listener of a topic no simulated service is known to consume.
const ANY_LISTENER: Listener = Listener {
    method: "public void com.shop.Listener.on(org.apache.kafka.clients.consumer.ConsumerRecord)",
    group: ORDER_SERVICE_GROUP,
};

/// Where the original message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalDelivery {
    pub partition: i32,
    pub offset: i64,
    /// The original's timestamp, epoch milliseconds.
    pub timestamp_ms: i64,
}

/// A message for a dead-letter topic: headers are bytes, since Spring
/// writes numbers as binary.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterMessage {
    pub topic: String,
    pub key: String,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The DLT record's timestamp: when the service gave up.
    pub timestamp_ms: i64,
}

/// The Spring DLT copy of `original`, which consumer group `group` failed
/// on for `reason` at `failed_at`.
pub fn spring_dead_letter(
    original: &RenderedMessage,
    delivered: &OriginalDelivery,
    reason: FailureReason,
    failed_at: DateTime<Utc>,
    rng: &mut StdRng,
) -> DeadLetterMessage {
    with_listener(original, delivered, reason, &ANY_LISTENER, failed_at, rng)
}

fn with_listener(
    original: &RenderedMessage,
    delivered: &OriginalDelivery,
    reason: FailureReason,
    listener: &Listener,
    failed_at: DateTime<Utc>,
    rng: &mut StdRng,
) -> DeadLetterMessage {
    let mut headers: Vec<(String, Vec<u8>)> = original
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let failure = exception(reason, listener, rng);
    headers.extend(spring_failure_headers(
        original.topic,
        delivered,
        listener,
        failure,
    ));
    DeadLetterMessage {
        topic: dlt_topic(original.topic),
        key: original.key.clone(),
        value: original.value.clone(),
        headers,
        timestamp_ms: failed_at.timestamp_millis(),
    }
}

/// The `kafka_dlt-*` headers Spring adds after the record's own: where the
/// record came from (numbers as big-endian Java ints and longs), who
/// failed on it and how.
fn spring_failure_headers(
    original_topic: &str,
    delivered: &OriginalDelivery,
    listener: &Listener,
    failure: Exception,
) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(10);
    let mut add = |name: &str, value: Vec<u8>| headers.push((name.to_string(), value));
    add(
        "kafka_dlt-original-topic",
        original_topic.as_bytes().to_vec(),
    );
    add(
        "kafka_dlt-original-partition",
        delivered.partition.to_be_bytes().to_vec(),
    );
    add(
        "kafka_dlt-original-offset",
        delivered.offset.to_be_bytes().to_vec(),
    );
    add(
        "kafka_dlt-original-timestamp",
        delivered.timestamp_ms.to_be_bytes().to_vec(),
    );
    add("kafka_dlt-original-timestamp-type", b"CreateTime".to_vec());
    add(
        "kafka_dlt-original-consumer-group",
        listener.group.as_bytes().to_vec(),
    );
    add("kafka_dlt-exception-fqcn", failure.fqcn.as_bytes().to_vec());
    if let Some(cause) = failure.cause_fqcn {
        add("kafka_dlt-exception-cause-fqcn", cause.as_bytes().to_vec());
    }
    add("kafka_dlt-exception-message", failure.message.into_bytes());
    add(
        "kafka_dlt-exception-stacktrace",
        failure.stacktrace.into_bytes(),
    );
    headers
}

/// Headers Spring's recoverer strips from a record before adding its own
/// (`stripPreviousExceptionHeaders`, the default since Spring Kafka 3.0):
/// a record that fails again describes only its latest failure.
const PREVIOUS_EXCEPTION_HEADER_PREFIX: &str = "kafka_dlt-exception-";

/// The headers of a record that fails again, as Spring's recoverer carries
/// them over to the new dead letter: all of the record's own, in order
/// (so a re-drive's `x-retry-of` and `x-retry-count` travel along, and any
/// earlier `kafka_dlt-original-*` stay first, naming the first origin),
/// except previous exception headers; the fresh `kafka_dlt-*` set follows.
/// Null-valued headers are left out: a dead letter's headers are bytes.
pub fn failed_again_headers(
    record_headers: &[(String, Option<Vec<u8>>)],
    fresh_failure_headers: Vec<(String, Vec<u8>)>,
) -> Vec<(String, Vec<u8>)> {
    let previous_failure = |name: &str| {
        name.get(..PREVIOUS_EXCEPTION_HEADER_PREFIX.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(PREVIOUS_EXCEPTION_HEADER_PREFIX))
    };
    record_headers
        .iter()
        .filter(|(name, _)| !previous_failure(name))
        .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
        .chain(fresh_failure_headers)
        .collect()
}

/// A message as a consuming service read it off Kafka (a re-driven copy
/// of a dead letter, for the demo's retry consumer).
#[derive(Debug, Clone, Copy)]
pub struct ConsumedRecord<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(String, Option<Vec<u8>>)],
    pub delivered: &'a OriginalDelivery,
}

/// The dead letter the service consuming `record`'s topic makes of it when
/// it fails on it again at `failed_at`, for one of the reasons that
/// service fails for.
pub fn failed_again_dead_letter(
    record: ConsumedRecord<'_>,
    failed_at: DateTime<Utc>,
    rng: &mut StdRng,
) -> DeadLetterMessage {
    let (listener, reasons) =
        listener_of_topic(record.topic).unwrap_or((ANY_LISTENER, &FailureReason::ALL));
    let reason = reasons[rng.random_range(0..reasons.len())];
    let failure = exception(reason, &listener, rng);
    let fresh = spring_failure_headers(record.topic, record.delivered, &listener, failure);
    DeadLetterMessage {
        topic: dlt_topic(record.topic),
        // Kafka keys are bytes; the simulator's are all text.
        key: String::from_utf8_lossy(record.key).into_owned(),
        value: record.value.map(<[u8]>::to_vec),
        headers: failed_again_headers(record.headers, fresh),
        timestamp_ms: failed_at.timestamp_millis(),
    }
}

/// With probability `ratio`, the dead letter a service makes of `planned`
/// (rendered as `original`, delivered as `delivered`), a few seconds of
/// retries after `at` but never in the future. Draws from `rng` only when
/// `ratio` > 0, so seeded traffic without dead letters stays the same.
pub fn maybe_dead_letter(
    planned: &PlannedMessage,
    original: &RenderedMessage,
    delivered: &OriginalDelivery,
    at: DateTime<Utc>,
    ratio: f64,
    rng: &mut StdRng,
) -> Option<DeadLetterMessage> {
    if ratio <= 0.0 {
        return None;
    }
    let (listener, reasons) = consumer_of(planned)?;
    if rng.random::<f64>() >= ratio {
        return None;
    }
    let reason = reasons[rng.random_range(0..reasons.len())];
    let retries = chrono::Duration::milliseconds(rng.random_range(2_000..9_000));
    let failed_at = (at + retries).min(Utc::now());
    Some(with_listener(
        original, delivered, reason, &listener, failed_at, rng,
    ))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::{PlannedOutcome, SagaKind, SagaPlan};

    fn delivered() -> OriginalDelivery {
        OriginalDelivery {
            partition: 2,
            offset: 1_024,
            timestamp_ms: 1_763_719_200_123,
        }
    }

    #[test]
    fn spring_headers_follow_the_original_ones_with_binary_numbers() {
        let mut rng = StdRng::seed_from_u64(3);
        let original = RenderedMessage {
            topic: PAYMENT_EVENTS_TOPIC,
            key: "ORD-1".into(),
            value: Some(b"{\"amount\":\"12,50\"}".to_vec()),
            headers: vec![("traceparent".into(), "00-abc-def-01".into())],
        };
        let at = Utc::now();
        let letter = spring_dead_letter(
            &original,
            &delivered(),
            FailureReason::Deserialization,
            at,
            &mut rng,
        );
        assert_eq!(letter.topic, "payments.events.DLT");
        assert_eq!(
            (letter.key.as_str(), &letter.value),
            ("ORD-1", &original.value)
        );
        assert_eq!(letter.timestamp_ms, at.timestamp_millis());
        assert_eq!(
            letter.headers[0],
            ("traceparent".into(), b"00-abc-def-01".to_vec())
        );
        let header = |name: &str| {
            letter
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("kafka_dlt-original-partition"), 2_i32.to_be_bytes());
        assert_eq!(header("kafka_dlt-original-offset"), 1_024_i64.to_be_bytes());
        assert_eq!(
            header("kafka_dlt-original-timestamp"),
            1_763_719_200_123_i64.to_be_bytes()
        );
        assert_eq!(header("kafka_dlt-original-topic"), b"payments.events");
        assert!(String::from_utf8(header("kafka_dlt-exception-message"))
            .unwrap()
            .starts_with("failed to deserialize"));
    }

    fn with_values(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<Vec<u8>>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    /// Spring keeps a failing record's headers (the re-drive marks among
    /// them) but strips its previous exception headers: the fresh ones
    /// alone describe the failure, and they come last.
    #[test]
    fn a_record_failing_again_keeps_its_headers_but_not_its_old_failure() {
        let record = with_values(&[
            ("traceparent", Some("00-abc-def-01")),
            ("kafka_dlt-original-topic", Some("payments.events")),
            ("kafka_dlt-exception-message", Some("the first failure")),
            ("KAFKA_DLT-EXCEPTION-FQCN", Some("com.shop.OldException")),
            ("x-retry-of", Some("payments.events.DLT/0/7")),
            ("x-retry-count", Some("2")),
            ("no-value", None),
        ]);
        let fresh = vec![(
            "kafka_dlt-exception-message".to_string(),
            b"the latest failure".to_vec(),
        )];
        let headers = failed_again_headers(&record, fresh);
        let names: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        assert_eq!(
            names,
            [
                ("traceparent", b"00-abc-def-01".as_slice()),
                ("kafka_dlt-original-topic", b"payments.events"),
                ("x-retry-of", b"payments.events.DLT/0/7"),
                ("x-retry-count", b"2"),
                ("kafka_dlt-exception-message", b"the latest failure"),
            ]
        );
    }

    #[test]
    fn a_redriven_payment_event_fails_again_in_the_order_service() {
        let mut rng = StdRng::seed_from_u64(5);
        let record_headers = with_values(&[
            ("traceparent", Some("00-abc-def-01")),
            ("x-retry-of", Some("payments.events.DLT/1/12")),
            ("x-retry-count", Some("1")),
        ]);
        let value = b"{\"amount\":\"12,50\"}".to_vec();
        let record = ConsumedRecord {
            topic: PAYMENT_EVENTS_TOPIC,
            key: b"ord-1",
            value: Some(&value),
            headers: &record_headers,
            delivered: &delivered(),
        };
        let at = Utc::now();
        let letter = failed_again_dead_letter(record, at, &mut rng);
        assert_eq!(letter.topic, "payments.events.DLT");
        assert_eq!(
            (letter.key.as_str(), letter.value.as_deref()),
            ("ord-1", Some(value.as_slice()))
        );
        assert_eq!(letter.timestamp_ms, at.timestamp_millis());
        assert_eq!(
            &letter.headers[..3],
            &[
                ("traceparent".to_string(), b"00-abc-def-01".to_vec()),
                (
                    "x-retry-of".to_string(),
                    b"payments.events.DLT/1/12".to_vec()
                ),
                ("x-retry-count".to_string(), b"1".to_vec()),
            ]
        );
        let header = |name: &str| {
            letter
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("kafka_dlt-original-offset"), 1_024_i64.to_be_bytes());
        assert_eq!(
            header("kafka_dlt-original-consumer-group"),
            ORDER_SERVICE_GROUP.as_bytes()
        );
        let cause = String::from_utf8(header("kafka_dlt-exception-cause-fqcn")).unwrap();
        assert!(
            cause.contains("InvalidFormatException") || cause.contains("QueryTimeoutException"),
            "{cause}"
        );
    }

    #[test]
    fn payment_and_stock_events_are_dead_lettered_at_the_ratio() {
        let mut rng = StdRng::seed_from_u64(8);
        let (mut eligible, mut dead) = (0, 0);
        let mut reasons = std::collections::HashSet::new();
        for _ in 0..400 {
            let plan = SagaPlan::random(SagaKind::OrderChoreography, &mut rng);
            for (index, planned) in plan.messages.iter().enumerate() {
                let rendered = plan.render(index, Utc::now(), &mut rng);
                eligible += usize::from(consumer_of(planned).is_some());
                if let Some(letter) =
                    maybe_dead_letter(planned, &rendered, &delivered(), Utc::now(), 0.1, &mut rng)
                {
                    dead += 1;
                    assert_eq!(letter.value, rendered.value, "the original bytes");
                    let message = letter
                        .headers
                        .iter()
                        .find(|(k, _)| k == "kafka_dlt-exception-cause-fqcn")
                        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                        .unwrap();
                    reasons.insert(message);
                }
            }
        }
        assert!(eligible > 500, "{eligible}");
        let share = dead as f64 / eligible as f64;
        assert!((0.06..0.14).contains(&share), "{share}");
        assert_eq!(reasons.len(), 3, "{reasons:?}");

        // Other traffic, or a ratio of 0, never: and draws nothing.
        let order = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
        let rendered = order.render(0, Utc::now(), &mut rng);
        assert!(maybe_dead_letter(
            &order.messages[0],
            &rendered,
            &delivered(),
            Utc::now(),
            1.0,
            &mut rng
        )
        .is_none());
        let plan = SagaPlan::random(SagaKind::OrderChoreography, &mut rng);
        let mut after = rng.clone();
        for planned in &plan.messages {
            assert!(maybe_dead_letter(
                planned,
                &rendered,
                &delivered(),
                Utc::now(),
                0.0,
                &mut after
            )
            .is_none());
        }
        assert_eq!(after.random::<u64>(), rng.random::<u64>());
    }
}
