//! Traffic simulator for `sagascope demo` and the Kafka tests: runs the
//! sagas of the design documents continuously and produces their messages
//! through the real Kafka protocol (rdkafka).

mod mock_kafka;
mod saga_plans;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

pub use mock_kafka::MockKafka;
pub use saga_plans::{
    poison_message, Body, PlannedMessage, PlannedOutcome, RenderedMessage, SagaKind, SagaPlan,
    ALL_TOPICS, CHARACTER_TOPIC, IMAGE_TOPIC, MY_TOPIC, SAGA_STATE_TOPIC, SCAN_TOPIC,
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
    /// Probability that a saga start is accompanied by a poison message.
    pub poison_ratio: f64,
    pub seed: u64,
}

/// Average messages per saga across the mix below, to turn an event rate
/// into a saga start rate.
const AVERAGE_MESSAGES_PER_SAGA: f64 = 8.0;

#[derive(Clone)]
pub struct Simulator {
    producer: FutureProducer,
    config: SimulatorConfig,
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(Simulator { producer, config })
    }

    /// Produces one message and waits for the broker's ack.
    pub async fn produce(&self, message: &RenderedMessage) -> Result<(), SimulatorError> {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let record = FutureRecord::to(message.topic)
            .key(&message.key)
            .payload(&message.value)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| SimulatorError::Kafka(error))?;
        Ok(())
    }

    /// Produces a whole plan at once, with event times `base + delay`, for
    /// tests that need the traffic without waiting for it.
    pub async fn produce_plan_now(
        &self,
        plan: &SagaPlan,
        base: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Result<(), SimulatorError> {
        for (index, message) in plan.messages.iter().enumerate() {
            let at = base + chrono::Duration::milliseconds(message.delay_ms as i64);
            self.produce(&plan.render(index, at, rng)).await?;
        }
        Ok(())
    }

    /// Produces a poison message (for tests and the demo's ingest-errors page).
    pub async fn produce_poison(&self, rng: &mut StdRng) -> Result<(), SimulatorError> {
        let plan = SagaPlan {
            kind: SagaKind::Order,
            saga_id: String::new(),
            trace_id: format!("{:032x}", rng.random::<u128>() | 1),
            outcome: PlannedOutcome::Failed,
            messages: vec![poison_message(rng)],
        };
        self.produce(&plan.render(0, Utc::now(), rng)).await
    }

    /// Starts sagas in real time until `shutdown` turns true.
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
                    let kind = match rng.random_range(0..100) {
                        0..45 => SagaKind::Order,
                        45..80 => SagaKind::ScanReward,
                        _ => SagaKind::ChatMessage,
                    };
                    let plan = SagaPlan::random(kind, &mut rng);
                    let saga_rng = StdRng::seed_from_u64(rng.random());
                    tokio::spawn(self.clone().play(plan, saga_rng, shutdown.clone()));
                    if rng.random::<f64>() < self.config.poison_ratio {
                        if let Err(error) = self.produce_poison(&mut rng).await {
                            tracing::warn!(%error, "simulator could not produce");
                        }
                    }
                }
            }
        }
        tracing::info!("simulator stopped");
    }

    /// Plays one saga in real time, each message stamped when produced.
    async fn play(self, plan: SagaPlan, mut rng: StdRng, shutdown: watch::Receiver<bool>) {
        let start = tokio::time::Instant::now();
        for (index, message) in plan.messages.iter().enumerate() {
            tokio::time::sleep_until(start + Duration::from_millis(message.delay_ms)).await;
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self
                .produce(&plan.render(index, Utc::now(), &mut rng))
                .await
            {
                tracing::warn!(%error, saga_id = %plan.saga_id, "simulator could not produce");
            }
        }
    }
}
