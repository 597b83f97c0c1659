//! Traffic simulator for `sagascope demo` and the Kafka tests: runs the
//! sagas of the design documents continuously, with a product-event stream
//! that is no saga and some bad messages on the side, and produces them
//! through the real Kafka protocol (rdkafka). A service consumer group
//! (`service_consumer.rs`) reads part of it in bursts, so the demo has a
//! service's consumer-group lag to watch. Optionally, services dead-letter
//! a share of what they consume to `<topic>.DLT`, Spring style
//! (`dead_letters.rs`); the saga then waits (`parked_sagas.rs`) until the
//! dead letter is re-driven and the demo's retry consumer
//! (`retry_consumer.rs`) processes the copy.
//!
//! With a [`SpanExport`], the simulated services also emit the spans they
//! would have produced, with each saga's trace id (`spans_of_saga.rs`),
//! exported as OTLP/HTTP JSON in the background (`span_export.rs`).

mod dead_letters;
mod ids;
mod kafka_records;
mod message;
mod mock_kafka;
mod otlp_json;
mod parked_sagas;
mod poison;
mod product_events;
mod relay_delay;
mod render;
mod retry_consumer;
mod saga_plans;
mod service_consumer;
mod span_export;
mod span_shapes;
mod spans_of_saga;
#[cfg(test)]
mod test_support;
mod topics;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;

use crate::relay_delay::{kafka_timestamp_ms, relay_delay_ms};
use crate::span_export::SpanSink;

pub use dead_letters::{
    dlt_topic, failed_again_dead_letter, failed_again_headers, maybe_dead_letter,
    spring_dead_letter, ConsumedRecord, DeadLetterMessage, FailureReason, OriginalDelivery,
    DLT_SUFFIX, ORDER_SERVICE_GROUP,
};
pub use kafka_records::{dead_letter_record, message_record};
pub use message::{
    Body, CloudEvent, CloudEventMode, OutboxRow, PlannedMessage, RenderedMessage, Traffic,
};
pub use mock_kafka::MockKafka;
pub use otlp_json::{encode_otlp_json, DEPLOYMENT_ENVIRONMENT, SCOPE_NAME};
pub use parked_sagas::{ParkedSaga, ParkedSagas, ParkingKey, DEFAULT_PARKED_SAGAS_CAPACITY};
pub use poison::{poison, PoisonKind, POISON_NESTING_DEPTH};
pub use product_events::{product_event, PRODUCT_EVENT_TYPES};
pub use retry_consumer::{
    redrive_of, retry_succeeds, Redrive, RedriveOutcome, RetryConsumer, RetryConsumerConfig,
    DEMO_RETRY_SUCCESS_RATIO, RETRY_CONSUMER_GROUP,
};
pub use saga_plans::{PlannedOutcome, SagaKind, SagaPlan};
pub use service_consumer::{ServiceConsumer, ServiceConsumerConfig, PAYMENT_SERVICE_GROUP};
pub use span_export::{
    SpanExport, SpanExportStats, BATCH_INTERVAL, MAX_BATCH_SPANS, SPAN_QUEUE_CAPACITY,
};
pub use span_shapes::{
    parse_traceparent, span_id, AttributeValue, SimulatedSpan, SimulatedSpanEvent,
    SimulatedSpanKind, SpanRole,
};
pub use spans_of_saga::{
    redelivery_span_id, spans_of_saga, Before, Produced, Redelivery, SagaTrace,
};
pub use topics::{
    ALL_TOPICS, CHARACTER_TOPIC, DEAD_LETTERED_TOPICS, DLT_TOPICS, IMAGE_TOPIC, MY_TOPIC,
    PAYMENT_EVENTS_TOPIC, PRODUCT_EVENTS_TOPIC, SAGA_STATE_TOPIC, SCAN_TOPIC,
    SHOP_OUTBOX_CDC_TOPIC,
};

/// Classification rules for the demo's choreographed saga: the example
/// rules file at the repository root.
pub const DEMO_RULES: &str = include_str!("../../../rules.example.toml");

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("kafka producer: {0}")]
    Kafka(#[from] KafkaError),
}

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub brokers: String,
    /// Target message rate across all sagas.
    pub events_per_second: f64,
    /// Probability that a saga start is accompanied by bad traffic (one
    /// [`PoisonKind`], chosen at random).
    pub poison_ratio: f64,
    pub seed: u64,
}

/// Average messages per saga start across the mix (sagas of every kind
/// plus the product events started alongside), to turn an event rate into
/// a saga start rate.
const AVERAGE_MESSAGES_PER_SAGA: f64 = 7.3;

/// Product events per saga start: a steady side stream that is no saga.
const PRODUCT_EVENTS_PER_SAGA: f64 = 1.0 / 3.0;

/// The demo's share of payment and stock events that their consuming
/// service dead-letters.
pub const DEMO_DEAD_LETTER_RATIO: f64 = 0.02;

#[derive(Clone)]
pub struct Simulator {
    producer: FutureProducer,
    config: SimulatorConfig,
    /// Share of payment and stock events dead-lettered (0: none, the
    /// default, so callers need no DLT topics).
    dead_letter_ratio: f64,
    /// Sagas held up by a dead letter, shared by every clone (and the
    /// retry consumer that resumes them).
    parked: ParkedSagas,
    /// Where the services' spans go; None: no spans are made.
    spans: Option<SpanSink>,
}

/// One message of a saga being produced, with what the saga needs to hold
/// its rest back when the message is dead-lettered.
struct Step<'a> {
    trace_id: &'a str,
    messages: &'a [PlannedMessage],
    index: usize,
    /// The event time the message was rendered with.
    at: DateTime<Utc>,
    /// The Kafka timestamp to stamp (epoch ms); None: the producer's clock.
    kafka_timestamp_ms: Option<i64>,
    /// What led to it, for its spans.
    before: Before<'a>,
}

/// What became of one produced step.
struct StepOutcome {
    /// When it was dead-lettered: the first message the saga holds back.
    held_from: Option<usize>,
    produced: Produced,
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(Simulator {
            producer,
            config,
            dead_letter_ratio: 0.0,
            parked: ParkedSagas::default(),
            spans: None,
        })
    }

    /// Makes the simulated services emit their spans and exports them to
    /// `export` from a background task (started now, on the current Tokio
    /// runtime; stopped with a final flush when [`Simulator::run`] stops,
    /// or by [`Simulator::stop_span_export`]). Clones share the exporter.
    pub fn with_span_export(mut self, export: SpanExport) -> Simulator {
        self.spans = Some(SpanSink::start(export));
        self
    }

    /// What the span exporter has done so far; None without one.
    pub fn span_export_stats(&self) -> Option<SpanExportStats> {
        self.spans.as_ref().map(SpanSink::stats)
    }

    /// Flushes what is queued and stops the span exporter (for every
    /// clone); spans made afterwards are dropped.
    pub async fn stop_span_export(&self) {
        if let Some(spans) = &self.spans {
            spans.shutdown().await;
        }
    }

    /// Queues the spans `make` builds, if spans are exported at all.
    pub(crate) fn export_spans(&self, make: impl FnOnce() -> Vec<SimulatedSpan>) {
        if let Some(sink) = &self.spans {
            sink.send(make());
        }
    }

    /// The sagas held up by a dead letter (shared by all clones).
    pub fn parked_sagas(&self) -> &ParkedSagas {
        &self.parked
    }

    /// Dead-letters this share of the payment and stock events to their
    /// `.DLT` topics ([`DLT_TOPICS`] must exist, or be auto-created). The
    /// saga of a dead-lettered message stops there and is parked (see
    /// [`Simulator::parked_sagas`]) until a [`RetryConsumer`] resumes it.
    pub fn with_dead_letter_ratio(mut self, ratio: f64) -> Simulator {
        self.dead_letter_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    /// Produces one message (a tombstone when it has no value) and waits
    /// for the broker's ack.
    pub async fn produce(&self, message: &RenderedMessage) -> Result<(), SimulatorError> {
        self.send(message, None).await.map(|_| ())
    }

    /// Produces a dead letter (binary headers, its own timestamp) and waits
    /// for the ack.
    pub async fn produce_dead_letter(
        &self,
        message: &DeadLetterMessage,
    ) -> Result<(), SimulatorError> {
        self.producer
            .send(dead_letter_record(message), Duration::from_secs(10))
            .await
            .map_err(|(error, _)| SimulatorError::Kafka(error))?;
        Ok(())
    }

    /// Produces step `step` (rendered as `message`), then, at the
    /// dead-letter ratio, the dead letter its consuming service makes of
    /// it. Returns, when it was dead-lettered, the index of the first
    /// message the saga now holds back (parked before the dead letter is
    /// produced, so a re-drive always finds it).
    async fn produce_step(
        &self,
        step: Step<'_>,
        message: &RenderedMessage,
        rng: &mut StdRng,
    ) -> Result<StepOutcome, SimulatorError> {
        let delivery = self.send(message, step.kafka_timestamp_ms).await?;
        let produced = Produced {
            index: step.index,
            at: step.at,
            partition: Some(delivery.partition),
            offset: Some(delivery.offset),
        };
        let trace = match &self.spans {
            Some(_) => SagaTrace::of(step.trace_id, step.messages),
            None => None,
        };
        if let Some(trace) = &trace {
            if step.messages[step.index].is_event() {
                self.export_spans(|| trace.on_publish(&produced, step.before));
            }
        }
        // The original's time as the service saw it: its Kafka timestamp
        // when stamped (the history), else its event time, the produce
        // time live.
        let seen_at = step
            .kafka_timestamp_ms
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(step.at);
        let delivered = OriginalDelivery {
            partition: delivery.partition,
            offset: delivery.offset,
            timestamp_ms: seen_at.timestamp_millis(),
        };
        let planned = &step.messages[step.index];
        let Some(letter) = maybe_dead_letter(
            planned,
            message,
            &delivered,
            seen_at,
            self.dead_letter_ratio,
            rng,
        ) else {
            return Ok(StepOutcome {
                held_from: None,
                produced,
            });
        };
        let held_from = self.hold_back(&step, message);
        self.produce_dead_letter(&letter).await?;
        if let Some(trace) = &trace {
            self.export_spans(|| trace.on_dead_letter(&produced, seen_at, &letter));
        }
        Ok(StepOutcome {
            held_from: Some(held_from),
            produced,
        })
    }

    /// The spans of the last message's processing, once a saga has
    /// produced its last message.
    fn export_end_spans(&self, trace_id: &str, messages: &[PlannedMessage], last: &Produced) {
        self.export_spans(|| {
            SagaTrace::of(trace_id, messages)
                .map(|trace| trace.on_end(last))
                .unwrap_or_default()
        });
    }

    /// Parks the rest of a saga whose message `step.index` (rendered as
    /// `dead_lettered`) was dead-lettered; returns the first held index.
    fn hold_back(&self, step: &Step<'_>, dead_lettered: &RenderedMessage) -> usize {
        let held_from = first_held_index(step.messages, step.index);
        if held_from < step.messages.len() {
            let key = ParkingKey::new(
                dead_lettered.topic,
                dead_lettered.key.as_bytes(),
                dead_lettered.value.as_deref(),
            );
            self.parked.park(
                key,
                ParkedSaga {
                    traffic: Traffic {
                        trace_id: step.trace_id.to_string(),
                        messages: step.messages.to_vec(),
                    },
                    resume_at: held_from,
                    failed_delay_ms: step.messages[step.index].delay_ms,
                },
            );
        }
        held_from
    }

    async fn send(
        &self,
        message: &RenderedMessage,
        kafka_timestamp_ms: Option<i64>,
    ) -> Result<Delivery, SimulatorError> {
        let mut record = message_record(message);
        if let Some(timestamp_ms) = kafka_timestamp_ms {
            record = record.timestamp(timestamp_ms);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| SimulatorError::Kafka(error))
    }

    /// Produces a whole plan at once, with event times `base + delay`, for
    /// tests that need the traffic without waiting for it (and the demo's
    /// history). With a dead-letter ratio, it may stop at a dead letter.
    pub async fn produce_plan_now(
        &self,
        plan: &SagaPlan,
        base: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Result<(), SimulatorError> {
        self.produce_now(&plan.trace_id, &plan.messages, base, rng)
            .await
    }

    /// Produces traffic (a product event, poison) at once, like
    /// [`Simulator::produce_plan_now`].
    pub async fn produce_traffic_now(
        &self,
        traffic: &Traffic,
        base: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Result<(), SimulatorError> {
        self.produce_now(&traffic.trace_id, &traffic.messages, base, rng)
            .await
    }

    /// Produces one random kind of bad traffic at once (for tests and the
    /// demo's ingest-errors page).
    pub async fn produce_poison(&self, rng: &mut StdRng) -> Result<(), SimulatorError> {
        self.produce_traffic_now(&poison(rng), Utc::now(), rng)
            .await
    }

    /// Produces messages with event times `base + delay`, each stamped in
    /// Kafka at its event time plus a relay delay (`relay_delay.rs`). A
    /// dead-lettered message holds the rest back, as live.
    async fn produce_now(
        &self,
        trace_id: &str,
        messages: &[PlannedMessage],
        base: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Result<(), SimulatorError> {
        let now = Utc::now();
        let mut held_from = messages.len();
        let mut dead_lettered = false;
        let mut previous: Option<Produced> = None;
        for (index, message) in messages.iter().enumerate() {
            if index >= held_from {
                break;
            }
            let at = base + chrono::Duration::milliseconds(message.delay_ms as i64);
            let rendered = render::render(message, trace_id, index, at, rng);
            let step = Step {
                trace_id,
                messages,
                index,
                at,
                kafka_timestamp_ms: Some(kafka_timestamp_ms(
                    at,
                    relay_delay_ms(trace_id, index),
                    now,
                )),
                before: previous.as_ref().map_or(Before::Start, Before::Previous),
            };
            let outcome = self.produce_step(step, &rendered, rng).await?;
            if message.is_event() {
                previous = Some(outcome.produced);
            }
            if let Some(held) = outcome.held_from {
                held_from = held;
                dead_lettered = true;
            }
        }
        if let (false, Some(last)) = (dead_lettered, &previous) {
            self.export_end_spans(trace_id, messages, last);
        }
        Ok(())
    }

    /// Starts sagas in real time, with product events and (at
    /// `poison_ratio`) bad traffic alongside, until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        let sagas_per_second =
            (self.config.events_per_second / AVERAGE_MESSAGES_PER_SAGA).max(0.05);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / sagas_per_second));
        tracing::info!(
            events_per_second = self.config.events_per_second,
            "simulator started"
        );
        loop {
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { break },
                _ = ticker.tick() => {
                    let plan = SagaPlan::random(SagaKind::random(&mut rng), &mut rng);
                    self.start(plan.into(), &mut rng, &shutdown);
                    if rng.random::<f64>() < PRODUCT_EVENTS_PER_SAGA {
                        self.start(product_event(&mut rng), &mut rng, &shutdown);
                    }
                    if rng.random::<f64>() < self.config.poison_ratio {
                        self.start(poison(&mut rng), &mut rng, &shutdown);
                    }
                }
            }
        }
        tracing::info!("simulator stopped");
        self.stop_span_export().await;
    }

    /// Plays `traffic` in real time on its own task.
    fn start(&self, traffic: Traffic, rng: &mut StdRng, shutdown: &watch::Receiver<bool>) {
        let rng = StdRng::seed_from_u64(rng.random());
        tokio::spawn(
            self.clone()
                .play(traffic, Resume::default(), rng, shutdown.clone()),
        );
    }

    /// Goes on with a parked saga in real time from now, on its own task:
    /// its held messages keep their planned spacing after the message
    /// that was dead-lettered. Returns how many messages it will produce
    /// (fewer if one of them is dead-lettered in turn).
    /// `redelivery` is the processing of the re-driven copy the saga goes
    /// on under (for its spans).
    pub(crate) fn resume(
        &self,
        parked: ParkedSaga,
        redelivery: Redelivery,
        rng: StdRng,
        shutdown: watch::Receiver<bool>,
    ) -> usize {
        let held = parked.traffic.messages.len() - parked.resume_at;
        tokio::spawn(self.clone().play(
            parked.traffic,
            Resume {
                first: parked.resume_at,
                base_delay_ms: parked.failed_delay_ms,
                redelivery: Some(redelivery),
            },
            rng,
            shutdown,
        ));
        held
    }

    /// Plays one saga or other traffic from message `first` on, message
    /// `i` at `delay_ms(i) - base_delay_ms` from now, each stamped when
    /// produced.
    async fn play(
        self,
        traffic: Traffic,
        resume: Resume,
        mut rng: StdRng,
        shutdown: watch::Receiver<bool>,
    ) {
        let start = tokio::time::Instant::now();
        let mut held_from = traffic.messages.len();
        let mut dead_lettered = false;
        let mut previous: Option<Produced> = None;
        let messages = traffic.messages.iter().enumerate().skip(resume.first);
        for (index, message) in messages {
            if index >= held_from {
                break;
            }
            let wait = message.delay_ms.saturating_sub(resume.base_delay_ms);
            tokio::time::sleep_until(start + Duration::from_millis(wait)).await;
            if *shutdown.borrow() {
                return;
            }
            let at = Utc::now();
            let rendered = traffic.render(index, at, &mut rng);
            let before = match (&previous, &resume.redelivery) {
                (Some(previous), _) => Before::Previous(previous),
                (None, Some(redelivery)) => Before::Redelivered(redelivery),
                (None, None) => Before::Start,
            };
            let step = Step {
                trace_id: &traffic.trace_id,
                messages: &traffic.messages,
                index,
                at,
                kafka_timestamp_ms: None,
                before,
            };
            match self.produce_step(step, &rendered, &mut rng).await {
                Ok(outcome) => {
                    if message.is_event() {
                        previous = Some(outcome.produced);
                    }
                    if let Some(held) = outcome.held_from {
                        held_from = held;
                        dead_lettered = true;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, trace_id = %traffic.trace_id, "simulator could not produce")
                }
            }
        }
        if let (false, Some(last)) = (dead_lettered, &previous) {
            self.export_end_spans(&traffic.trace_id, &traffic.messages, last);
        }
    }
}

/// Where [`Simulator::play`] starts: message `first`, its delays counted
/// from `base_delay_ms`, under the processing of a re-driven copy when it
/// resumes a parked saga.
#[derive(Default)]
struct Resume {
    first: usize,
    base_delay_ms: u64,
    redelivery: Option<Redelivery>,
}

/// After message `failed` of `messages` was dead-lettered, the first one
/// the saga holds back: the next, unless the outbox relay's delete and
/// tombstone of the captured row follow (same key, no events): the relay
/// sends those whatever became of the consumer.
fn first_held_index(messages: &[PlannedMessage], failed: usize) -> usize {
    let key = &messages[failed].key;
    let relay_cleanup = messages[failed + 1..]
        .iter()
        .take_while(|m| !m.is_event() && m.key == *key && m.topic == messages[failed].topic)
        .count();
    failed + 1 + relay_cleanup
}

#[cfg(test)]
mod tests {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, OwnedMessage};
    use rdkafka::{Message, Offset, TopicPartitionList};

    use super::*;

    /// Debezium's tombstones must reach Kafka as null values, not empty
    /// ones: only a null value is a tombstone to consumers (and to
    /// sagascope's decoder).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tombstones_are_produced_with_a_null_value() {
        let kafka = MockKafka::start(1, &ALL_TOPICS, 1).unwrap();
        let simulator = Simulator::new(SimulatorConfig {
            brokers: kafka.bootstrap_servers().to_string(),
            events_per_second: 0.0,
            poison_ratio: 0.0,
            seed: 1,
        })
        .unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let plan = loop {
            let plan = SagaPlan::random(SagaKind::OrderChoreography, &mut rng);
            if plan.messages.iter().any(|m| m.body == Body::Tombstone) {
                break plan;
            }
        };
        simulator
            .produce_plan_now(&plan, Utc::now(), &mut rng)
            .await
            .unwrap();
        let expected: Vec<bool> = plan
            .messages
            .iter()
            .filter(|m| m.topic == SHOP_OUTBOX_CDC_TOPIC)
            .map(|m| m.body == Body::Tombstone)
            .collect();

        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .set("group.id", "simulator-test")
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(SHOP_OUTBOX_CDC_TOPIC, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&partitions).unwrap();
        let mut tombstones = Vec::new();
        while tombstones.len() < expected.len() {
            let message = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
                .await
                .expect("all CDC messages arrive")
                .unwrap();
            tombstones.push(message.payload().is_none());
        }
        assert_eq!(tombstones, expected);
    }

    /// A history saga is stamped in Kafka at its event times plus a relay
    /// delay, its dead letter after the original's timestamp, and it stops
    /// at the dead-lettered stock event (the relay's delete and tombstone
    /// of that row still follow).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn history_is_stamped_at_event_time_and_held_up_by_its_dead_letter() {
        let topics = [SHOP_OUTBOX_CDC_TOPIC, PAYMENT_EVENTS_TOPIC, DLT_TOPICS[1]];
        let kafka = MockKafka::start(1, &topics, 1).unwrap();
        let simulator = Simulator::new(SimulatorConfig {
            brokers: kafka.bootstrap_servers().to_string(),
            events_per_second: 0.0,
            poison_ratio: 0.0,
            seed: 1,
        })
        .unwrap()
        .with_dead_letter_ratio(1.0);
        let mut rng = StdRng::seed_from_u64(9);
        let plan = SagaPlan::with_outcome(
            SagaKind::OrderChoreography,
            PlannedOutcome::Completed,
            &mut rng,
        );
        let base = Utc::now() - chrono::Duration::minutes(20);
        simulator
            .produce_plan_now(&plan, base, &mut rng)
            .await
            .unwrap();

        // The first stock event is the first a service dead-letters.
        let stock = plan
            .messages
            .iter()
            .position(
                |m| matches!(&m.body, Body::CdcInsert { row, .. } if row.aggregate_type == "Stock"),
            )
            .unwrap();
        let held_from = first_held_index(&plan.messages, stock);
        let originals = read(kafka.bootstrap_servers(), SHOP_OUTBOX_CDC_TOPIC, held_from).await;
        for (index, message) in originals.iter().enumerate() {
            let event_ms = base.timestamp_millis() + plan.messages[index].delay_ms as i64;
            assert_eq!(
                message.timestamp().to_millis(),
                Some(event_ms + relay_delay_ms(&plan.trace_id, index)),
                "message {index}"
            );
        }
        assert_eq!(simulator.parked_sagas().len(), 1);

        let letter = &read(kafka.bootstrap_servers(), DLT_TOPICS[1], 1).await[0];
        let original_ms = originals[stock].timestamp().to_millis().unwrap();
        let header = |name: &str| {
            letter
                .headers()
                .unwrap()
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .unwrap()
                .to_vec()
        };
        assert_eq!(
            header("kafka_dlt-original-timestamp"),
            original_ms.to_be_bytes()
        );
        assert_eq!(
            header("kafka_dlt-original-offset"),
            (stock as i64).to_be_bytes()
        );
        let failed_ms = letter.timestamp().to_millis().unwrap();
        assert!(
            failed_ms > original_ms && failed_ms < original_ms + 10_000,
            "{failed_ms} after {original_ms}"
        );
    }

    /// The first `count` messages of `topic`/0.
    async fn read(brokers: &str, topic: &str, count: usize) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "simulator-test")
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&partitions).unwrap();
        let mut messages = Vec::new();
        while messages.len() < count {
            let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("{topic}: only {} of {count}", messages.len()))
                .unwrap();
            messages.push(message.detach());
        }
        messages
    }

    #[test]
    fn a_dead_letter_holds_back_the_rest_but_the_relay_cleanup_of_its_row() {
        let message = |key: &str, body: Body| PlannedMessage {
            delay_ms: 0,
            topic: SHOP_OUTBOX_CDC_TOPIC,
            key: key.into(),
            body,
        };
        let row = OutboxRow {
            id: "r1".into(),
            aggregate_type: "Stock",
            aggregate_id: "ord-1".into(),
            event_type: "StockReserved".into(),
            payload: serde_json::json!({}),
        };
        let insert = |key: &str| {
            message(
                key,
                Body::CdcInsert {
                    row: row.clone(),
                    with_schema: false,
                },
            )
        };
        let delete = |key: &str| {
            message(
                key,
                Body::CdcDelete {
                    row: row.clone(),
                    with_schema: false,
                    inserted_ms_ago: 5,
                },
            )
        };
        let cleaned_up = [
            insert("a"),
            delete("a"),
            message("a", Body::Tombstone),
            insert("b"),
        ];
        assert_eq!(first_held_index(&cleaned_up, 0), 3);
        // Another row's delete waits; so does anything after the last.
        let other = [insert("a"), delete("b"), insert("b")];
        assert_eq!(first_held_index(&other, 0), 1);
        assert_eq!(first_held_index(&other, 2), 3);
    }

    /// The run loop's mix, sampled: sagas of every kind, product events
    /// and no poison.
    #[test]
    fn average_messages_per_saga_matches_the_mix() {
        let mut rng = StdRng::seed_from_u64(5);
        let starts = 20_000;
        let messages: usize = (0..starts)
            .map(|_| {
                SagaPlan::random(SagaKind::random(&mut rng), &mut rng)
                    .messages
                    .len()
            })
            .sum();
        let average = messages as f64 / starts as f64 + PRODUCT_EVENTS_PER_SAGA;
        assert!(
            (average - AVERAGE_MESSAGES_PER_SAGA).abs() < 0.3,
            "measured {average}"
        );
    }
}
