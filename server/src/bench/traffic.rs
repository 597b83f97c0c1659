//! Simulated traffic for the Kafka scenarios: the demo's mix (every saga
//! kind, product events beside them, no poison) rendered exactly as the
//! simulator produces it, and a producer that does not wait for each ack.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use sagascope_domain::{KafkaCoords, RawMessage};
use sagascope_simulator::{product_event, RenderedMessage, SagaKind, SagaPlan, Traffic};

/// Product events per saga start, as in the simulator's run loop.
const PRODUCT_EVENTS_PER_SAGA: f64 = 1.0 / 3.0;

/// A rendered message and whether sagascope stores it as an event
/// (Debezium deletes and tombstones are not events).
pub struct Simulated {
    pub message: RenderedMessage,
    pub is_event: bool,
}

/// An endless supply of the demo's traffic: sagas of every kind
/// interleaved with each other (up to `concurrent` in flight) and with
/// product events.
pub struct TrafficSource {
    rng: StdRng,
    active: Vec<(Traffic, usize)>,
    concurrent: usize,
}

impl TrafficSource {
    pub fn new(seed: u64, concurrent: usize) -> TrafficSource {
        TrafficSource {
            rng: StdRng::seed_from_u64(seed),
            active: Vec::new(),
            concurrent: concurrent.max(1),
        }
    }

    /// The next message, rendered as produced at `at`.
    pub fn next_at(&mut self, at: DateTime<Utc>) -> Simulated {
        while self.active.len() < self.concurrent {
            let plan = SagaPlan::random(SagaKind::random(&mut self.rng), &mut self.rng);
            self.active.push((plan.into(), 0));
            if self.rng.random::<f64>() < PRODUCT_EVENTS_PER_SAGA {
                self.active.push((product_event(&mut self.rng), 0));
            }
        }
        let slot = self.rng.random_range(0..self.active.len());
        let (traffic, index) = &mut self.active[slot];
        let message = &traffic.messages[*index];
        let is_event = message.is_event();
        let rendered = traffic.render(*index, at, &mut self.rng);
        *index += 1;
        if *index == traffic.messages.len() {
            self.active.swap_remove(slot);
        }
        Simulated {
            message: rendered,
            is_event,
        }
    }
}

/// Messages until `events` of them are events, with event times spread
/// over the last hour (a saga's messages keep their planned delays).
pub fn history(events: usize, seed: u64) -> Vec<Simulated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    let mut out = Vec::with_capacity(events + events / 4);
    let mut event_count = 0;
    while event_count < events {
        let traffic: Traffic = if rng.random::<f64>() < PRODUCT_EVENTS_PER_SAGA / 2.0 {
            product_event(&mut rng)
        } else {
            SagaPlan::random(SagaKind::random(&mut rng), &mut rng).into()
        };
        let base = now - chrono::Duration::milliseconds(rng.random_range(60_000..3_600_000));
        for (index, planned) in traffic.messages.iter().enumerate() {
            let at = base + chrono::Duration::milliseconds(planned.delay_ms as i64);
            let is_event = planned.is_event();
            event_count += usize::from(is_event);
            out.push(Simulated {
                message: traffic.render(index, at, &mut rng),
                is_event,
            });
        }
    }
    out
}

/// The message as the ingest's consumer would hand it over, at synthetic
/// coordinates.
pub fn raw_message(
    message: &RenderedMessage,
    coords: KafkaCoords,
    at: DateTime<Utc>,
) -> RawMessage {
    RawMessage {
        coords,
        key: Some(message.key.as_bytes().to_vec()),
        value: message.value.clone(),
        headers: message
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.as_bytes().to_vec())))
            .collect(),
        timestamp: Some(at),
    }
}

pub fn producer(brokers: &str, linger_ms: u32) -> anyhow::Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger_ms.to_string())
        // Record batches well below the consumer's max.partition.fetch.bytes
        // (1 MiB): librdkafka's mock broker loses messages of larger ones.
        .set("batch.size", "262144")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000")
        .create()
        .context("cannot create the Kafka producer")
}

/// Enqueues one message without waiting for its ack (waits only while
/// librdkafka's queue is full).
pub async fn send(
    producer: &FutureProducer,
    message: &RenderedMessage,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        match producer.send_result(sagascope_simulator::message_record(message)) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(error).context("cannot produce"),
        }
    }
}

/// Waits for the acks of `deliveries`; the first failure is the error.
pub async fn acked(deliveries: Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error).context("the broker refused a message"),
            Err(_canceled) => anyhow::bail!("the producer dropped a message"),
        }
    }
    Ok(())
}
