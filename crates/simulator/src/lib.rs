//! Traffic simulator for `sagascope demo` and the Kafka tests: runs the
//! sagas of the design documents continuously, with a product-event stream
//! that is no saga and some bad messages on the side, and produces them
//! through the real Kafka protocol (rdkafka). A service consumer group
//! (`service_consumer.rs`) reads part of it in bursts, so the demo has a
//! service's consumer-group lag to watch. Optionally, services dead-letter
//! a share of what they consume to `<topic>.DLT`, Spring style
//! (`dead_letters.rs`).

mod dead_letters;
mod ids;
mod message;
mod mock_kafka;
mod poison;
mod product_events;
mod render;
mod saga_plans;
mod service_consumer;
#[cfg(test)]
mod test_support;
mod topics;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

pub use dead_letters::{
    dlt_topic, maybe_dead_letter, spring_dead_letter, DeadLetterMessage, FailureReason,
    OriginalDelivery, DLT_SUFFIX, ORDER_SERVICE_GROUP,
};
pub use message::{
    Body, CloudEvent, CloudEventMode, OutboxRow, PlannedMessage, RenderedMessage, Traffic,
};
pub use mock_kafka::MockKafka;
pub use poison::{poison, PoisonKind, POISON_NESTING_DEPTH};
pub use product_events::{product_event, PRODUCT_EVENT_TYPES};
pub use saga_plans::{PlannedOutcome, SagaKind, SagaPlan};
pub use service_consumer::{ServiceConsumer, ServiceConsumerConfig, PAYMENT_SERVICE_GROUP};
pub use topics::{
    ALL_TOPICS, CHARACTER_TOPIC, DLT_TOPICS, IMAGE_TOPIC, MY_TOPIC, PAYMENT_EVENTS_TOPIC,
    PRODUCT_EVENTS_TOPIC, SAGA_STATE_TOPIC, SCAN_TOPIC, SHOP_OUTBOX_CDC_TOPIC,
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
        })
    }

    /// Dead-letters this share of the payment and stock events to their
    /// `.DLT` topics ([`DLT_TOPICS`] must exist, or be auto-created).
    pub fn with_dead_letter_ratio(mut self, ratio: f64) -> Simulator {
        self.dead_letter_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    /// Produces one message (a tombstone when it has no value) and waits
    /// for the broker's ack.
    pub async fn produce(&self, message: &RenderedMessage) -> Result<(), SimulatorError> {
        self.send(message).await.map(|_| ())
    }

    /// Produces a dead letter (binary headers, its own timestamp) and waits
    /// for the ack.
    pub async fn produce_dead_letter(
        &self,
        message: &DeadLetterMessage,
    ) -> Result<(), SimulatorError> {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_slice()),
            });
        }
        let mut record = FutureRecord::<str, [u8]>::to(&message.topic)
            .key(message.key.as_str())
            .headers(headers)
            .timestamp(message.timestamp_ms);
        if let Some(value) = &message.value {
            record = record.payload(value.as_slice());
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| SimulatorError::Kafka(error))?;
        Ok(())
    }

    /// Produces `planned` (rendered as `message`), then, at the dead-letter
    /// ratio, the dead letter its consuming service makes of it.
    async fn produce_planned(
        &self,
        planned: &PlannedMessage,
        message: &RenderedMessage,
        at: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Result<(), SimulatorError> {
        let delivery = self.send(message).await?;
        // The original's time as the service saw it: the produce time live,
        // the planned past for the demo's history (whose Kafka timestamps
        // are all "now").
        let delivered = OriginalDelivery {
            partition: delivery.partition,
            offset: delivery.offset,
            timestamp_ms: at.timestamp_millis(),
        };
        if let Some(letter) = maybe_dead_letter(
            planned,
            message,
            &delivered,
            at,
            self.dead_letter_ratio,
            rng,
        ) {
            self.produce_dead_letter(&letter).await?;
        }
        Ok(())
    }

    async fn send(&self, message: &RenderedMessage) -> Result<Delivery, SimulatorError> {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::<str, [u8]>::to(message.topic)
            .key(message.key.as_str())
            .headers(headers);
        if let Some(value) = &message.value {
            record = record.payload(value.as_slice());
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| SimulatorError::Kafka(error))
    }

    /// Produces a whole plan at once, with event times `base + delay`, for
    /// tests that need the traffic without waiting for it.
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

    async fn produce_now(
        &self,
        trace_id: &str,
        messages: &[PlannedMessage],
        base: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Result<(), SimulatorError> {
        for (index, message) in messages.iter().enumerate() {
            let at = base + chrono::Duration::milliseconds(message.delay_ms as i64);
            let rendered = render::render(message, trace_id, index, at, rng);
            self.produce_planned(message, &rendered, at, rng).await?;
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
    }

    /// Plays `traffic` in real time on its own task.
    fn start(&self, traffic: Traffic, rng: &mut StdRng, shutdown: &watch::Receiver<bool>) {
        let rng = StdRng::seed_from_u64(rng.random());
        tokio::spawn(self.clone().play(traffic, rng, shutdown.clone()));
    }

    /// Plays one saga or other traffic, each message stamped when produced.
    async fn play(self, traffic: Traffic, mut rng: StdRng, shutdown: watch::Receiver<bool>) {
        let start = tokio::time::Instant::now();
        for (index, message) in traffic.messages.iter().enumerate() {
            tokio::time::sleep_until(start + Duration::from_millis(message.delay_ms)).await;
            if *shutdown.borrow() {
                return;
            }
            let at = Utc::now();
            let rendered = traffic.render(index, at, &mut rng);
            if let Err(error) = self.produce_planned(message, &rendered, at, &mut rng).await {
                tracing::warn!(%error, trace_id = %traffic.trace_id, "simulator could not produce");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::consumer::{Consumer, StreamConsumer};
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
