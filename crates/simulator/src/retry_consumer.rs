//! The demo's services processing re-driven dead letters. When an operator
//! retries a dead letter, sagascope produces its key, value and headers to
//! the original topic with `x-retry-of: {dead letter id}` and
//! `x-retry-count: {n}`. This consumer, in a group of its own, reads the
//! topics whose messages the services dead-letter, ignores everything
//! without `x-retry-of`, and plays the consuming service on the re-driven
//! copy: mostly it succeeds, and the saga the dead letter held up goes on
//! (sagascope then sees the retry resolve); otherwise it fails again and
//! dead-letters the copy once more, Spring style, with the re-drive headers
//! carried along, so sagascope sees the retry come back.

use std::time::Duration;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::Message;
use sagascope_model::{RETRY_COUNT_HEADER, RETRY_OF_HEADER};
use tokio::sync::watch;

use crate::dead_letters::{failed_again_dead_letter, ConsumedRecord, OriginalDelivery};
use crate::message::PlannedMessage;
use crate::parked_sagas::ParkingKey;
use crate::span_shapes::parse_traceparent;
use crate::spans_of_saga::{redelivery_spans, Redelivery, RedeliveryEnd};
use crate::topics::DEAD_LETTERED_TOPICS;
use crate::{Simulator, SimulatorError};

/// The consumer group of the demo's re-drive processing.
pub const RETRY_CONSUMER_GROUP: &str = "shop-redrive-consumer";

/// The demo's share of re-driven messages processed successfully: most
/// failures were transient (a timeout, a duplicate since cleaned up).
pub const DEMO_RETRY_SUCCESS_RATIO: f64 = 0.85;

/// Pause after a consume error other than a missing topic, so a broken
/// connection does not spin.
const CONSUME_ERROR_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RetryConsumerConfig {
    pub brokers: String,
    pub group_id: String,
    /// Where re-driven copies arrive: the original topics.
    pub topics: Vec<String>,
    /// Share of re-driven messages processed successfully (0 to 1).
    pub success_ratio: f64,
    /// Seeds the success draws, failure reasons and resumed sagas.
    pub seed: u64,
}

impl RetryConsumerConfig {
    /// The demo's: the topics the simulated services dead-letter, 85 %
    /// success.
    pub fn demo(brokers: impl Into<String>, seed: u64) -> RetryConsumerConfig {
        RetryConsumerConfig {
            brokers: brokers.into(),
            group_id: RETRY_CONSUMER_GROUP.into(),
            topics: DEAD_LETTERED_TOPICS.iter().map(|t| t.to_string()).collect(),
            success_ratio: DEMO_RETRY_SUCCESS_RATIO,
            seed,
        }
    }
}

/// A re-drive, as its headers name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// `{dlq topic}/{partition}/{offset}` of the dead letter re-driven.
    pub dead_letter_id: String,
    /// Which re-drive this is (1 for the first), when the header parses.
    pub retry_count: Option<u32>,
}

/// The re-drive a message's headers name, None for ordinary traffic. Like
/// sagascope's decoder, the last non-null, non-blank `x-retry-of` wins
/// (names compared case-insensitively), and `x-retry-count` likewise.
pub fn redrive_of(headers: &[(String, Option<Vec<u8>>)]) -> Option<Redrive> {
    let last_text = |name: &str| {
        headers
            .iter()
            .rev()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .filter_map(|(_, value)| value.as_deref())
            .map(|bytes| String::from_utf8_lossy(bytes).trim().to_string())
            .find(|text| !text.is_empty())
    };
    Some(Redrive {
        dead_letter_id: last_text(RETRY_OF_HEADER)?,
        retry_count: last_text(RETRY_COUNT_HEADER).and_then(|n| n.parse().ok()),
    })
}

/// Whether the service processes a re-driven message this time: `draw`
/// is uniform in [0, 1), so it succeeds with probability `success_ratio`.
pub fn retry_succeeds(draw: f64, success_ratio: f64) -> bool {
    draw < success_ratio
}

/// What the retry consumer did with a re-driven message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveOutcome {
    /// Processed; the saga it held up goes on with this many messages.
    Resumed { held_messages: usize },
    /// Processed; no saga waited on it (parked before a restart, evicted,
    /// or the dead letter was the saga's last step).
    Succeeded,
    /// Failed again: dead-lettered anew, the saga stays parked.
    FailedAgain,
}

pub struct RetryConsumer {
    consumer: StreamConsumer,
    simulator: Simulator,
    config: RetryConsumerConfig,
}

/// A consumed message, copied out of the consumer's buffer.
struct Received {
    topic: String,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    delivered: OriginalDelivery,
}

impl Received {
    fn of(message: &BorrowedMessage<'_>) -> Received {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Received {
            topic: message.topic().to_string(),
            key: message.key().unwrap_or_default().to_vec(),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            delivered: OriginalDelivery {
                partition: message.partition(),
                offset: message.offset(),
                timestamp_ms: message
                    .timestamp()
                    .to_millis()
                    .unwrap_or_else(|| Utc::now().timestamp_millis()),
            },
        }
    }
}

impl RetryConsumer {
    /// Creates the consumer and subscribes it; resumed sagas and new dead
    /// letters go through `simulator` (whose parked sagas it resumes).
    pub fn new(
        config: RetryConsumerConfig,
        simulator: &Simulator,
    ) -> Result<RetryConsumer, SimulatorError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            // From the start: a re-drive produced while the group is still
            // joining must not be skipped (everything else is ignored).
            .set("auto.offset.reset", "earliest")
            // Offsets stored once a message is handled, committed in the
            // background.
            .set("enable.auto.offset.store", "false")
            .set("session.timeout.ms", "10000")
            .create()?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(RetryConsumer {
            consumer,
            simulator: simulator.clone(),
            config,
        })
    }

    /// Handles re-driven messages until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        tracing::info!(group = %self.config.group_id, topics = ?self.config.topics, "retry consumer started");
        while !*shutdown.borrow() {
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        let received = Received::of(&message);
                        self.handle(&received, &mut rng, &shutdown).await;
                        if let Err(error) = self.consumer.store_offset_from_message(&message) {
                            tracing::warn!(%error, "retry consumer could not store an offset");
                        }
                    }
                    // A topic not created yet: nothing to re-drive there.
                    Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                    Err(error) => {
                        tracing::warn!(%error, "retry consumer could not consume");
                        tokio::time::sleep(CONSUME_ERROR_PAUSE).await;
                    }
                },
            }
        }
        tracing::info!(group = %self.config.group_id, "retry consumer stopped");
    }

    /// Plays the service on one message; None when it is no re-drive.
    async fn handle(
        &self,
        received: &Received,
        rng: &mut StdRng,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<RedriveOutcome> {
        let redrive = redrive_of(&received.headers)?;
        let started_at = Utc::now();
        let key = ParkingKey::new(&received.topic, &received.key, received.value.as_deref());
        let redelivery = |index: usize| Redelivery {
            index,
            started_at,
            retry_count: redrive.retry_count.unwrap_or(1),
            dead_letter_id: redrive.dead_letter_id.clone(),
        };
        let outcome = if retry_succeeds(rng.random(), self.config.success_ratio) {
            match self.simulator.parked_sagas().take(&key) {
                Some(parked) => {
                    let resumed_rng = StdRng::seed_from_u64(rng.random());
                    // The dead-lettered message: the last event before the
                    // held ones.
                    let index = parked.traffic.messages[..parked.resume_at]
                        .iter()
                        .rposition(PlannedMessage::is_event)
                        .unwrap_or(0);
                    let held_messages = self.simulator.resume(
                        parked,
                        redelivery(index),
                        resumed_rng,
                        shutdown.clone(),
                    );
                    RedriveOutcome::Resumed { held_messages }
                }
                None => {
                    self.export_redelivery_spans(
                        received,
                        &redelivery(0),
                        RedeliveryEnd::Succeeded(Utc::now()),
                    );
                    RedriveOutcome::Succeeded
                }
            }
        } else {
            // The saga stays parked under the same key: the next re-drive
            // of the new dead letter carries the same bytes to this topic.
            let record = ConsumedRecord {
                topic: &received.topic,
                key: &received.key,
                value: received.value.as_deref(),
                headers: &received.headers,
                delivered: &received.delivered,
            };
            let letter = failed_again_dead_letter(record, Utc::now(), rng);
            if let Err(error) = self.simulator.produce_dead_letter(&letter).await {
                tracing::warn!(%error, dead_letter_id = %redrive.dead_letter_id, "retry consumer could not dead-letter a failed re-drive");
            }
            self.export_redelivery_spans(
                received,
                &redelivery(0),
                RedeliveryEnd::FailedAgain(&letter),
            );
            RedriveOutcome::FailedAgain
        };
        tracing::info!(
            dead_letter_id = %redrive.dead_letter_id,
            retry_count = ?redrive.retry_count,
            topic = %received.topic,
            outcome = ?outcome,
            "re-driven message handled"
        );
        Some(outcome)
    }

    /// The spans of processing a re-driven copy no saga resumes under,
    /// under the span its `traceparent` names (the original's publish).
    fn export_redelivery_spans(
        &self,
        received: &Received,
        redelivery: &Redelivery,
        ending: RedeliveryEnd<'_>,
    ) {
        let traceparent = received
            .headers
            .iter()
            .rev()
            .filter(|(key, _)| {
                key.eq_ignore_ascii_case("traceparent")
                    || key.eq_ignore_ascii_case("ce_traceparent")
            })
            .filter_map(|(_, value)| parse_traceparent(&String::from_utf8_lossy(value.as_deref()?)))
            .next();
        let Some((trace_id, parent_span_id)) = traceparent else {
            return;
        };
        self.simulator.export_spans(|| {
            redelivery_spans(
                &trace_id,
                &parent_span_id,
                &received.topic,
                redelivery,
                ending,
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Instant;

    use rdkafka::consumer::BaseConsumer;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::{Offset, TopicPartitionList};

    use super::*;
    use crate::saga_plans::{PlannedOutcome, SagaKind, SagaPlan};
    use crate::topics::{DLT_TOPICS, PAYMENT_EVENTS_TOPIC, SHOP_OUTBOX_CDC_TOPIC};
    use crate::{MockKafka, SimulatorConfig};

    fn headers(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<Vec<u8>>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn only_messages_naming_a_dead_letter_are_redrives() {
        assert_eq!(
            redrive_of(&headers(&[("traceparent", Some("00-abc-def-01"))])),
            None
        );
        assert_eq!(redrive_of(&headers(&[("x-retry-of", Some("  "))])), None);
        assert_eq!(
            redrive_of(&headers(&[
                ("X-Retry-Of", Some("payments.events.DLT/0/3")),
                ("x-retry-count", Some("2")),
            ])),
            Some(Redrive {
                dead_letter_id: "payments.events.DLT/0/3".into(),
                retry_count: Some(2),
            })
        );
    }

    #[test]
    fn the_last_redrive_header_wins() {
        let redrive = redrive_of(&headers(&[
            ("x-retry-of", Some("payments.events.DLT/0/3")),
            ("x-retry-count", Some("1")),
            ("x-retry-of", Some("payments.events.DLT/2/40")),
            ("x-retry-count", Some("two")),
            ("x-retry-of", None),
        ]))
        .unwrap();
        assert_eq!(redrive.dead_letter_id, "payments.events.DLT/2/40");
        assert_eq!(redrive.retry_count, None, "an unreadable count is none");
    }

    #[test]
    fn retries_succeed_at_the_ratio() {
        assert!(!retry_succeeds(0.0, 0.0));
        assert!(retry_succeeds(0.999_999, 1.0));
        assert!(retry_succeeds(0.84, DEMO_RETRY_SUCCESS_RATIO));
        assert!(!retry_succeeds(0.85, DEMO_RETRY_SUCCESS_RATIO));
        let mut rng = StdRng::seed_from_u64(12);
        let succeeded = (0..10_000)
            .filter(|_| retry_succeeds(rng.random(), DEMO_RETRY_SUCCESS_RATIO))
            .count();
        assert!((8_200..8_800).contains(&succeeded), "{succeeded}");
    }

    /// A choreographed order saga, a cluster with its topics (one
    /// partition each), a simulator that dead-letters every payment and
    /// stock event, and one sharing its parked sagas that dead-letters
    /// nothing (for the retry consumer, so resumed sagas run to the end).
    struct Setup {
        kafka: MockKafka,
        plan: SagaPlan,
        dead_lettering: Simulator,
        resuming: Simulator,
    }

    fn setup(seed: u64) -> Setup {
        let topics: Vec<&str> = [SHOP_OUTBOX_CDC_TOPIC, PAYMENT_EVENTS_TOPIC]
            .into_iter()
            .chain(DLT_TOPICS)
            .collect();
        let kafka = MockKafka::start(1, &topics, 1).unwrap();
        let resuming = Simulator::new(SimulatorConfig {
            brokers: kafka.bootstrap_servers().to_string(),
            events_per_second: 0.0,
            poison_ratio: 0.0,
            seed,
        })
        .unwrap();
        let dead_lettering = resuming.clone().with_dead_letter_ratio(1.0);
        let mut rng = StdRng::seed_from_u64(seed);
        let plan = SagaPlan::with_outcome(
            SagaKind::OrderChoreography,
            PlannedOutcome::Completed,
            &mut rng,
        );
        Setup {
            kafka,
            plan,
            dead_lettering,
            resuming,
        }
    }

    fn reader(brokers: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "retry-consumer-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    }

    /// Messages `from..` of `topic`/0, read until there are `count`.
    fn read(brokers: &str, topic: &str, from: i64, count: usize) -> Vec<Received> {
        let consumer = reader(brokers);
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(topic, 0, Offset::Offset(from))
            .unwrap();
        consumer.assign(&partitions).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut messages = Vec::new();
        while messages.len() < count {
            assert!(
                Instant::now() < deadline,
                "only {} of {count} messages on {topic}",
                messages.len()
            );
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                messages.push(Received::of(&message.unwrap()));
            }
        }
        messages
    }

    /// The high watermark of `topic`/0: how many messages it holds.
    fn high_watermark(brokers: &str, topic: &str) -> i64 {
        reader(brokers)
            .fetch_watermarks(topic, 0, Duration::from_secs(10))
            .unwrap()
            .1
    }

    /// What sagascope's retry does with dead letter `letter` (at `offset`
    /// of its DLT topic): key, value and headers to the original topic,
    /// without `kafka_dlt-*`, with the re-drive headers.
    async fn redrive_by_hand(brokers: &str, letter: &Received, offset: i64, retry_count: u32) {
        let original_topic = letter.topic.strip_suffix(".DLT").unwrap().to_string();
        let mut headers = OwnedHeaders::new();
        for (key, value) in &letter.headers {
            if !key.starts_with("kafka_dlt-") {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
        }
        let retry_of = format!("{}/0/{offset}", letter.topic);
        let count = retry_count.to_string();
        headers = headers
            .insert(Header {
                key: RETRY_OF_HEADER,
                value: Some(retry_of.as_bytes()),
            })
            .insert(Header {
                key: RETRY_COUNT_HEADER,
                value: Some(count.as_bytes()),
            });
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        let mut record = FutureRecord::<[u8], [u8]>::to(&original_topic)
            .key(letter.key.as_slice())
            .headers(headers);
        if let Some(value) = &letter.value {
            record = record.payload(value.as_slice());
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap();
    }

    /// Produces the plan with every eligible message dead-lettered: the
    /// saga stops at its first stock event. Returns the dead letter and
    /// how many of the plan's messages were produced.
    async fn park_the_saga(setup: &Setup) -> (Received, usize) {
        let mut rng = StdRng::seed_from_u64(2);
        setup
            .dead_lettering
            .produce_plan_now(&setup.plan, Utc::now(), &mut rng)
            .await
            .unwrap();
        let brokers = setup.kafka.bootstrap_servers();
        // Acked before produce_plan_now returned: the watermarks are exact.
        let produced = (high_watermark(brokers, SHOP_OUTBOX_CDC_TOPIC)
            + high_watermark(brokers, PAYMENT_EVENTS_TOPIC)) as usize;
        assert!(
            produced < setup.plan.messages.len(),
            "the saga is held up: {produced} of {}",
            setup.plan.messages.len()
        );
        assert_eq!(setup.resuming.parked_sagas().len(), 1);
        let letters = read(brokers, "dbserver1.shop.outbox.DLT", 0, 1);
        assert_eq!(high_watermark(brokers, "payments.events.DLT"), 0);
        (letters.into_iter().next().unwrap(), produced)
    }

    fn trace_ids(messages: &[Received]) -> HashSet<String> {
        messages
            .iter()
            .filter_map(|m| {
                let (_, value) = m.headers.iter().find(|(k, _)| k == "traceparent")?;
                let text = String::from_utf8(value.clone()?).ok()?;
                Some(text.split('-').nth(1)?.to_string())
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_successful_redrive_resumes_the_parked_saga() {
        let setup = setup(41);
        let brokers = setup.kafka.bootstrap_servers().to_string();
        let (letter, produced) = park_the_saga(&setup).await;

        let config = RetryConsumerConfig {
            success_ratio: 1.0,
            ..RetryConsumerConfig::demo(brokers.clone(), 7)
        };
        let consumer = RetryConsumer::new(config, &setup.resuming).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(consumer.run(stop_rx));
        redrive_by_hand(&brokers, &letter, 0, 1).await;

        // The rest of the saga follows the re-driven copy.
        let planned = |topic: &str| {
            setup
                .plan
                .messages
                .iter()
                .filter(|m| m.topic == topic)
                .count()
        };
        let outbox = read(
            &brokers,
            SHOP_OUTBOX_CDC_TOPIC,
            0,
            planned(SHOP_OUTBOX_CDC_TOPIC) + 1,
        );
        let payments = read(
            &brokers,
            PAYMENT_EVENTS_TOPIC,
            0,
            planned(PAYMENT_EVENTS_TOPIC),
        );
        assert!(produced < outbox.len() + payments.len());
        assert_eq!(
            trace_ids(&outbox).union(&trace_ids(&payments)).count(),
            1,
            "one saga's messages"
        );
        assert!(trace_ids(&outbox).contains(&setup.plan.trace_id));
        let last = setup.plan.messages.last().unwrap();
        let tail = if last.topic == PAYMENT_EVENTS_TOPIC {
            &payments
        } else {
            &outbox
        };
        assert_eq!(tail.last().unwrap().key, last.key.as_bytes());
        assert!(setup.resuming.parked_sagas().is_empty());
        // Nothing failed again.
        assert_eq!(high_watermark(&brokers, "dbserver1.shop.outbox.DLT"), 1);

        stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_redrive_is_dead_lettered_again_with_its_retry_headers() {
        let setup = setup(43);
        let brokers = setup.kafka.bootstrap_servers().to_string();
        let (letter, _) = park_the_saga(&setup).await;
        let copy_offset = high_watermark(&brokers, SHOP_OUTBOX_CDC_TOPIC);

        let config = RetryConsumerConfig {
            success_ratio: 0.0,
            ..RetryConsumerConfig::demo(brokers.clone(), 7)
        };
        let consumer = RetryConsumer::new(config, &setup.resuming).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(consumer.run(stop_rx));
        redrive_by_hand(&brokers, &letter, 0, 1).await;

        let again = read(&brokers, "dbserver1.shop.outbox.DLT", 1, 1)
            .pop()
            .unwrap();
        let header = |name: &str| -> Vec<Vec<u8>> {
            again
                .headers
                .iter()
                .filter(|(k, _)| k == name)
                .filter_map(|(_, v)| v.clone())
                .collect()
        };
        assert_eq!(
            header(RETRY_OF_HEADER),
            [b"dbserver1.shop.outbox.DLT/0/0".to_vec()]
        );
        assert_eq!(header(RETRY_COUNT_HEADER), [b"1".to_vec()]);
        assert_eq!(
            header("kafka_dlt-original-topic"),
            [SHOP_OUTBOX_CDC_TOPIC.as_bytes().to_vec()]
        );
        // The origin is the re-driven copy's own place.
        assert_eq!(
            header("kafka_dlt-original-offset"),
            [copy_offset.to_be_bytes().to_vec()]
        );
        assert_eq!(header("kafka_dlt-exception-message").len(), 1);
        assert_eq!(
            header("kafka_dlt-original-consumer-group"),
            [crate::PAYMENT_SERVICE_GROUP.as_bytes().to_vec()]
        );
        assert_eq!((&again.key, &again.value), (&letter.key, &letter.value));

        // The saga still waits, under the same key, for the next retry.
        assert!(setup.resuming.parked_sagas().contains(&ParkingKey::new(
            SHOP_OUTBOX_CDC_TOPIC,
            &letter.key,
            letter.value.as_deref()
        )));

        stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    }
}
