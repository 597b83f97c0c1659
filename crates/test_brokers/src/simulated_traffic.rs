//! The demo's traffic produced to a broker for the process and broker fault
//! tests: sagas of every kind in every input format, product events, a few
//! malformed messages, Debezium deletes and tombstones, and the Spring dead
//! letters a service makes of some of them — with the coordinates the broker
//! acknowledged, split into what sagascope must store and what it only reads.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sagascope_simulator::{
    maybe_dead_letter, poison, product_event, Body, OriginalDelivery, PlannedMessage,
    RenderedMessage, SagaKind, SagaPlan, Traffic,
};

/// Share of traffic starts that are malformed messages (ingest errors).
const POISON_RATIO: f64 = 0.005;
/// Share of payment and stock events a simulated service dead-letters.
const DEAD_LETTER_RATIO: f64 = 0.01;
/// Product events per traffic start, as in the simulator's mix.
const PRODUCT_EVENT_RATIO: f64 = 0.25;
/// Sagas in flight at once, so each partition interleaves many of them.
const CONCURRENT_TRAFFIC: usize = 64;
/// Produced per round of acks; the dead letters of a round follow it.
const PRODUCE_CHUNK: usize = 5_000;

/// A partition's coordinates of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// What the broker acknowledged.
#[derive(Debug, Default)]
pub struct Produced {
    /// Must be stored once each: events, ingest errors, dead letters.
    pub stored: HashSet<Coord>,
    /// Debezium deletes and tombstones: consumed, never stored.
    pub ignored: HashSet<Coord>,
    /// The offset after the last message, per (topic, partition).
    pub ends: BTreeMap<(String, i32), i64>,
    pub malformed: usize,
    pub dead_letters: usize,
}

impl Produced {
    fn note(&mut self, coord: Coord, stored: bool) {
        let end = self
            .ends
            .entry((coord.topic.clone(), coord.partition))
            .or_default();
        *end = (*end).max(coord.offset + 1);
        if stored {
            self.stored.insert(coord);
        } else {
            self.ignored.insert(coord);
        }
    }

    /// Adds what a later run of the producer acknowledged.
    pub fn extend(&mut self, later: Produced) {
        for coord in later.stored {
            self.note(coord, true);
        }
        for coord in later.ignored {
            self.note(coord, false);
        }
        self.malformed += later.malformed;
        self.dead_letters += later.dead_letters;
    }

    /// Messages acknowledged in all.
    pub fn len(&self) -> usize {
        self.stored.len() + self.ignored.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The traffic's sagas interleaved the way concurrent services produce it.
struct TrafficMix {
    rng: StdRng,
    active: Vec<(Traffic, usize)>,
}

/// One message to produce, with its plan (which says whether sagascope
/// stores it and whether a service may dead-letter it).
struct Outgoing {
    planned: PlannedMessage,
    rendered: RenderedMessage,
}

impl Outgoing {
    /// Debezium deletes and tombstones are read and skipped, not stored.
    fn is_stored(&self) -> bool {
        !matches!(self.planned.body, Body::CdcDelete { .. } | Body::Tombstone)
    }
}

impl TrafficMix {
    fn new(seed: u64) -> TrafficMix {
        TrafficMix {
            rng: StdRng::seed_from_u64(seed),
            active: Vec::new(),
        }
    }

    fn next(&mut self) -> Outgoing {
        while self.active.len() < CONCURRENT_TRAFFIC {
            let rng = &mut self.rng;
            let traffic = if rng.random::<f64>() < POISON_RATIO {
                poison(rng)
            } else if rng.random::<f64>() < PRODUCT_EVENT_RATIO {
                product_event(rng)
            } else {
                SagaPlan::random(SagaKind::random(rng), rng).into()
            };
            self.active.push((traffic, 0));
        }
        let slot = self.rng.random_range(0..self.active.len());
        let (traffic, index) = &mut self.active[slot];
        let planned = traffic.messages[*index].clone();
        let rendered = traffic.render(*index, Utc::now(), &mut self.rng);
        *index += 1;
        if *index == traffic.messages.len() {
            self.active.swap_remove(slot);
        }
        Outgoing { planned, rendered }
    }
}

/// How much traffic, how fast.
#[derive(Debug, Clone, Copy)]
pub struct TrafficPlan {
    /// Replays the same traffic.
    pub seed: u64,
    /// Messages to the saga topics (dead letters come on top).
    pub messages: usize,
    pub per_second: f64,
}

/// Produces `plan.messages` messages at `plan.per_second` (the simulator's
/// topics must exist), and after each round the dead letters its services
/// make of it, counting acknowledged messages in `acked` as it goes.
pub async fn produce_traffic(
    bootstrap: String,
    plan: TrafficPlan,
    acked: Arc<AtomicUsize>,
) -> anyhow::Result<Produced> {
    // Idempotent: a retried send must not leave a second copy at an
    // offset this test never heard of.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "60000")
        .create()
        .context("cannot create the producer")?;
    let mut mix = TrafficMix::new(plan.seed);
    let mut dead_letter_rng = StdRng::seed_from_u64(plan.seed ^ 0x646c_7421);
    let mut produced = Produced::default();
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    while sent < plan.messages {
        let round = PRODUCE_CHUNK
            .min((plan.per_second as usize).max(1))
            .min(plan.messages - sent);
        let mut pending = Vec::with_capacity(round);
        for _ in 0..round {
            let outgoing = mix.next();
            let delivery = send(&producer, &outgoing.rendered).await?;
            pending.push((delivery, outgoing));
        }
        sent += pending.len();
        let mut letters = Vec::new();
        for (delivery, outgoing) in pending {
            let delivery = acknowledged(delivery).await?;
            let coord = Coord {
                topic: outgoing.rendered.topic.to_string(),
                partition: delivery.partition,
                offset: delivery.offset,
            };
            produced.malformed += usize::from(matches!(outgoing.planned.body, Body::Raw { .. }));
            produced.note(coord, outgoing.is_stored());
            acked.fetch_add(1, Ordering::Relaxed);
            let original = OriginalDelivery {
                partition: delivery.partition,
                offset: delivery.offset,
                timestamp_ms: delivery
                    .timestamp
                    .to_millis()
                    .unwrap_or_else(|| Utc::now().timestamp_millis()),
            };
            letters.extend(maybe_dead_letter(
                &outgoing.planned,
                &outgoing.rendered,
                &original,
                Utc::now(),
                DEAD_LETTER_RATIO,
                &mut dead_letter_rng,
            ));
        }
        for letter in letters {
            let record = sagascope_simulator::dead_letter_record(&letter);
            let delivery = acknowledged(enqueue(&producer, record).await?).await?;
            let coord = Coord {
                topic: letter.topic.clone(),
                partition: delivery.partition,
                offset: delivery.offset,
            };
            produced.note(coord, true);
            produced.dead_letters += 1;
            acked.fetch_add(1, Ordering::Relaxed);
        }
        let due = started + Duration::from_secs_f64(sent as f64 / plan.per_second);
        tokio::time::sleep_until(due).await;
    }
    Ok(produced)
}

/// Enqueues a rendered simulator message.
async fn send(
    producer: &FutureProducer,
    message: &RenderedMessage,
) -> anyhow::Result<DeliveryFuture> {
    enqueue(producer, sagascope_simulator::message_record(message)).await
}

/// Hands a record to librdkafka, waiting while its queue is full.
async fn enqueue(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, str, [u8]>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(error).context("cannot produce"),
        }
    }
}

async fn acknowledged(delivery: DeliveryFuture) -> anyhow::Result<Delivery> {
    match delivery.await {
        Ok(Ok(delivery)) => Ok(delivery),
        Ok(Err((error, _))) => Err(error).context("the broker refused a message"),
        Err(_canceled) => anyhow::bail!("the producer dropped a message"),
    }
}
