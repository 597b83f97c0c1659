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
        (Body::CloudEvent { .. }, PAYMENT_EVENTS_TOPIC) => Some((
            Listener {
                method: "public void com.shop.order.PaymentEventsListener.onPaymentEvent(org.apache.kafka.clients.consumer.ConsumerRecord<java.lang.String, com.shop.order.PaymentEvent>)",
                group: ORDER_SERVICE_GROUP,
            },
            &[FailureReason::Deserialization, FailureReason::StatementTimeout],
        )),
        (Body::CdcInsert { row, .. }, SHOP_OUTBOX_CDC_TOPIC) if row.aggregate_type == "Stock" => {
            Some((
                Listener {
                    method: "public void com.shop.payment.StockEventsListener.onStockEvent(org.apache.kafka.clients.consumer.ConsumerRecord<java.lang.String, java.lang.String>)",
                    group: PAYMENT_SERVICE_GROUP,
                },
                &[FailureReason::DuplicatePayment, FailureReason::StatementTimeout],
            ))
        }
        _ => None,
    }
}

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
    let listener = Listener {
        method:
            "public void com.shop.Listener.on(org.apache.kafka.clients.consumer.ConsumerRecord)",
        group: ORDER_SERVICE_GROUP,
    };
    with_listener(original, delivered, reason, &listener, failed_at, rng)
}

fn with_listener(
    original: &RenderedMessage,
    delivered: &OriginalDelivery,
    reason: FailureReason,
    listener: &Listener,
    failed_at: DateTime<Utc>,
    rng: &mut StdRng,
) -> DeadLetterMessage {
    let failure = exception(reason, listener, rng);
    let mut headers: Vec<(String, Vec<u8>)> = original
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let mut add = |name: &str, value: Vec<u8>| headers.push((name.to_string(), value));
    add(
        "kafka_dlt-original-topic",
        original.topic.as_bytes().to_vec(),
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
    DeadLetterMessage {
        topic: dlt_topic(original.topic),
        key: original.key.clone(),
        value: original.value.clone(),
        headers,
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
