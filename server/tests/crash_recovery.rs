//! Crash recovery against a real broker process (issue 14): a Tansu broker
//! runs as a child process, over 100,000 simulated messages (every input
//! format, a few malformed ones, a few Spring dead letters) are produced to
//! it, and the real `sagascope serve` binary ingests them while this test
//! SIGKILLs it at random moments and starts it again. Afterwards the store
//! must hold every produced (topic, partition, offset) exactly once — as an
//! event, an ingest error or a dead letter — and nothing else, and its
//! stored offsets must reach each partition's end (so the Debezium deletes
//! and tombstones, which sagascope reads but does not store, were consumed
//! too).
//!
//! Ignored in the plain test run: it needs `tansu` (TANSU_BIN, else PATH;
//! `scripts/setup.sh --tests` installs it) and is sized for a release
//! binary (SAGASCOPE_BIN, relative to the workspace root; scripts/test.sh
//! runs it after the release build). SAGASCOPE_CRASH_SEED replays a run's
//! traffic and kill delays (not the offsets the kills hit: ingest speed
//! varies from run to run).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sagascope_simulator::{
    maybe_dead_letter, poison, product_event, Body, OriginalDelivery, PlannedMessage,
    RenderedMessage, SagaKind, SagaPlan, Traffic, ALL_TOPICS, DLT_TOPICS,
};
use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::Store;
use sqlx::Row;

mod tansu_broker;
use tansu_broker::{free_port, Broker, KillOnDrop, WorkDir};

/// Messages produced to the saga topics (dead letters come on top).
const MESSAGES: usize = 100_000;
/// Partitions of every topic, so the consumer has many to track and commit.
const PARTITIONS: i32 = 3;
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
/// Production is paced (100,000 in 40 s) so that the first kills hit a
/// process that consumes while new messages arrive, the later ones a
/// process catching up on the backlog that piled up while it was down.
const PRODUCE_RATE_PER_SECOND: f64 = 2_500.0;
/// SIGKILLs, each at a random delay after a start.
const KILLS: usize = 5;
const KILL_DELAY_MS: std::ops::RangeInclusive<u64> = 200..=3_000;
/// How long the last start may take to store everything.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(150);
const GROUP_ID: &str = "sagascope-crash-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu and a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn sigkilled_ingest_loses_and_duplicates_nothing_on_sqlite() {
    let store = fresh_sqlite_store().await;
    let file = sqlite_file(&store).await;
    let url = format!("sqlite://{}", file.display());
    let outcome = crash_test(&store, &url, "SQLite").await;
    store.close().await;
    if outcome.is_ok() {
        // fresh_sqlite_store made a directory of its own for the file.
        if let Some(dir) = file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    outcome.unwrap_or_else(|failure| panic!("{failure}\nthe store is kept at {url}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu and a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn sigkilled_ingest_loses_and_duplicates_nothing_on_postgres() {
    let store = fresh_postgres_store().await;
    let url = store.postgres_url().unwrap().to_string();
    let outcome = crash_test(&store, &url, "Postgres").await;
    store.close().await;
    if outcome.is_ok() {
        drop_postgres_database(&url).await;
    }
    outcome.unwrap_or_else(|failure| panic!("{failure}\nthe store is kept at {url}"));
}

/// The whole scenario on one store; `Err` describes what went wrong (with
/// the seed), so the caller can keep the store for inspection.
async fn crash_test(store: &Store, database_url: &str, store_name: &str) -> Result<(), String> {
    let seed = crash_seed();
    println!("{store_name}: crash test seed {seed} (replay with SAGASCOPE_CRASH_SEED={seed})");
    let mut work = WorkDir::new(&format!("sagascope-crash-{seed}"));
    let outcome = scenario(store, database_url, store_name, seed, &work.path).await;
    if outcome.is_err() {
        work.keep = true;
    }
    outcome.map_err(|failure| {
        format!(
            "{failure}\nthe broker's and each sagascope's logs are kept in {}",
            work.path.display()
        )
    })
}

async fn scenario(
    store: &Store,
    database_url: &str,
    store_name: &str,
    seed: u64,
    work: &Path,
) -> Result<(), String> {
    let started = Instant::now();
    let broker = Broker::start(work).expect("the Tansu broker starts");
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    create_topics(&broker.bootstrap, &topics)
        .await
        .expect("the topics are created on Tansu");

    let acked = Arc::new(AtomicUsize::new(0));
    let producer = tokio::spawn(produce_traffic(
        broker.bootstrap.clone(),
        seed,
        acked.clone(),
    ));
    let sagascope = sagascope_bin();
    let rules = workspace_root().join("rules.example.toml");
    let start = |run: usize| {
        Sagascope::start(
            &sagascope,
            &broker.bootstrap,
            database_url,
            &rules,
            &work.join(format!("sagascope-{run}.log")),
        )
    };

    // Each start is SIGKILLed at a random delay after its first stored
    // batch, so every kill interrupts ingest (a kill before that, during
    // start-up or the group join, has nothing to lose), while the producer
    // keeps adding messages.
    let mut kill_delays = StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let mut kills_mid_ingest = 0;
    for kill in 1..=KILLS {
        let before = consumed(store).await;
        let mut process = start(kill);
        let first_batch = wait_for_first_batch(&mut process)
            .await
            .map_err(|failure| format!("seed {seed}, start {kill}: {failure}"))?;
        let delay = Duration::from_millis(kill_delays.random_range(KILL_DELAY_MS));
        tokio::time::sleep(delay).await;
        if let Some(status) = process.exited() {
            return Err(format!(
                "seed {seed}: sagascope exited by itself ({status}) before kill {kill}\n{}",
                process.log_tail()
            ));
        }
        process.kill();
        let killed_at = consumed(store).await;
        let produced = acked.load(Ordering::Relaxed);
        // Not all that was produced had been consumed: the process had
        // work in hand (rather than idling at the end of the topics).
        let mid_ingest = (killed_at as usize) < produced;
        kills_mid_ingest += usize::from(mid_ingest);
        println!(
            "{store_name}: start {kill} stored its first batch after {} ms, SIGKILLed {} ms later: {killed_at} messages consumed (+{} since its start), {produced} produced{}",
            first_batch.as_millis(),
            delay.as_millis(),
            killed_at - before,
            if mid_ingest { ", killed mid-ingest" } else { "" }
        );
    }
    let mut last = start(KILLS + 1);
    let restarted_at = Instant::now();

    let produced = tokio::time::timeout(Duration::from_secs(120), producer)
        .await
        .map_err(|_| format!("seed {seed}: producing took over 2 minutes"))?
        .expect("the producer task does not panic")
        .map_err(|error| format!("seed {seed}: producing failed: {error:#}"))?;
    wait_until_consumed(store, &produced.ends, &mut last, seed).await?;
    let caught_up = restarted_at.elapsed();
    last.kill();

    let stored = stored_coordinates(store).await;
    let report = compare(&produced, &stored);
    let elapsed = started.elapsed();
    println!(
        "{store_name}: {} messages produced ({} stored as rows: {} events, {} ingest errors, {} dead letters; {} deletes and tombstones consumed, not stored)",
        produced.stored.len() + produced.ignored.len(),
        produced.stored.len(),
        stored.events,
        stored.ingest_errors,
        stored.dead_letters,
        produced.ignored.len(),
    );
    println!(
        "{store_name}: {KILLS} SIGKILLs ({kills_mid_ingest} mid-ingest), {} starts; the last start stored the rest in {:.1} s; {:.1} s in all",
        KILLS + 1,
        caught_up.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if let Some(failure) = report {
        return Err(format!("seed {seed}, {store_name}: {failure}"));
    }
    // Sanity of the scenario itself: the traffic had each kind of row, and
    // at least one kill found the process with work in hand.
    if produced.malformed == 0 || produced.dead_letters == 0 || stored.ingest_errors == 0 {
        return Err(format!(
            "seed {seed}: the traffic lacked malformed messages ({}) or dead letters ({})",
            produced.malformed, produced.dead_letters
        ));
    }
    if kills_mid_ingest == 0 {
        return Err(format!(
            "seed {seed}: every kill found the process idle: this run proved nothing"
        ));
    }
    Ok(())
}

/// A partition's coordinates of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Coord {
    topic: String,
    partition: i32,
    offset: i64,
}

impl fmt::Display for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// What the broker acknowledged.
#[derive(Default)]
struct Produced {
    /// Must be stored once each: events, ingest errors, dead letters.
    stored: HashSet<Coord>,
    /// Debezium deletes and tombstones: consumed, never stored.
    ignored: HashSet<Coord>,
    /// The offset after the last message, per (topic, partition).
    ends: BTreeMap<(String, i32), i64>,
    malformed: usize,
    dead_letters: usize,
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
}

/// The demo's traffic (sagas of every kind in every input format, product
/// events, a few malformed messages), interleaved the way concurrent
/// services produce it.
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

/// Produces [`MESSAGES`] messages at [`PRODUCE_RATE_PER_SECOND`], and after
/// each chunk the dead letters its services make of it, counting acked
/// messages in `acked` as it goes.
async fn produce_traffic(
    bootstrap: String,
    seed: u64,
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
    let mut mix = TrafficMix::new(seed);
    let mut dead_letter_rng = StdRng::seed_from_u64(seed ^ 0x646c_7421);
    let mut produced = Produced::default();
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    while sent < MESSAGES {
        let mut pending = Vec::with_capacity(PRODUCE_CHUNK);
        for _ in 0..PRODUCE_CHUNK.min(MESSAGES - sent) {
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
            let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len());
            for (key, value) in &letter.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_slice()),
                });
            }
            let mut record = FutureRecord::<str, [u8]>::to(&letter.topic)
                .key(letter.key.as_str())
                .headers(headers)
                .timestamp(letter.timestamp_ms);
            if let Some(value) = &letter.value {
                record = record.payload(value.as_slice());
            }
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
        let due = started + Duration::from_secs_f64(sent as f64 / PRODUCE_RATE_PER_SECOND);
        tokio::time::sleep_until(due).await;
    }
    Ok(produced)
}

/// Enqueues a rendered simulator message.
async fn send(
    producer: &FutureProducer,
    message: &RenderedMessage,
) -> anyhow::Result<DeliveryFuture> {
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
    enqueue(producer, record).await
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

/// Creates `topics` with [`PARTITIONS`] partitions each and waits until the
/// broker's metadata shows all of them.
async fn create_topics(bootstrap: &str, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    for result in admin.create_topics(&new, &options).await? {
        if let Err((topic, code)) = result {
            anyhow::bail!("cannot create {topic}: {code}");
        }
    }
    let bootstrap = bootstrap.to_string();
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let metadata = client.fetch_metadata(None, Duration::from_secs(5))?;
            let complete = topics.iter().all(|name| {
                metadata.topics().iter().any(|t| {
                    t.name() == name
                        && t.error().is_none()
                        && t.partitions().len() == PARTITIONS as usize
                })
            });
            if complete {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the broker's metadata lacks some of {topics:?} after 20 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await?
}

/// Messages consumed so far by the test's group: offsets start at 0, so the
/// sum of the stored next offsets counts them.
async fn consumed(store: &Store) -> i64 {
    stored_offsets(store).await.values().sum()
}

/// The next offset per (topic, partition) that the store has recorded for
/// the test's group (moved forward in each batch's transaction).
async fn stored_offsets(store: &Store) -> BTreeMap<(String, i32), i64> {
    sqlx::query(
        "SELECT topic, kafka_partition, next_offset FROM consumer_offsets WHERE group_id = $1",
    )
    .bind(GROUP_ID)
    .fetch_all(store.pool())
    .await
    .expect("read consumer_offsets")
    .iter()
    .map(|row| {
        let partition: i64 = row.get("kafka_partition");
        (
            (row.get("topic"), i32::try_from(partition).unwrap()),
            row.get("next_offset"),
        )
    })
    .collect()
}

/// How long a start may take to store its first batch (connect, join
/// the group, get partitions assigned, read and write a batch).
const FIRST_BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until the process reports its first stored batch on `/readyz`
/// (`consumer.batches`); returns how long that took from now. Its own
/// count, not the store's: a commit the killed process had sent can still
/// land in Postgres after the kill.
async fn wait_for_first_batch(process: &mut Sagascope) -> Result<Duration, String> {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client");
    let readyz = format!("http://{}/readyz", process.listen);
    loop {
        // Refused until the process listens; any status carries the body.
        if let Ok(response) = client.get(&readyz).send().await {
            if let Ok(body) = response.json::<serde_json::Value>().await {
                if body["consumer"]["batches"].as_u64().unwrap_or(0) > 0 {
                    return Ok(started.elapsed());
                }
            }
        }
        if let Some(status) = process.exited() {
            return Err(format!(
                "sagascope exited by itself ({status}) before its first batch\n{}",
                process.log_tail()
            ));
        }
        if started.elapsed() >= FIRST_BATCH_TIMEOUT {
            return Err(format!(
                "sagascope stored nothing in {} s after its start\n{}",
                FIRST_BATCH_TIMEOUT.as_secs(),
                process.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most [`CATCH_UP_TIMEOUT`]) until the store's offsets reach
/// every partition's end; the running process must stay up meanwhile.
async fn wait_until_consumed(
    store: &Store,
    ends: &BTreeMap<(String, i32), i64>,
    process: &mut Sagascope,
    seed: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let offsets = stored_offsets(store).await;
        let behind: Vec<String> = ends
            .iter()
            .filter(|(partition, end)| offsets.get(*partition).copied().unwrap_or(0) < **end)
            .map(|((topic, partition), end)| {
                let at = offsets
                    .get(&(topic.clone(), *partition))
                    .copied()
                    .unwrap_or(0);
                format!("{topic}/{partition} at {at} of {end}")
            })
            .collect();
        if behind.is_empty() {
            let past_end: Vec<_> = offsets
                .iter()
                .filter(|(partition, next)| ends.get(*partition) != Some(*next))
                .collect();
            if past_end.is_empty() {
                return Ok(());
            }
            return Err(format!(
                "seed {seed}: stored offsets beyond what was produced: {past_end:?}"
            ));
        }
        if let Some(status) = process.exited() {
            return Err(format!(
                "seed {seed}: the last sagascope exited by itself ({status}); behind: {}\n{}",
                behind.join(", "),
                process.log_tail()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "seed {seed}: after {} s the store has not consumed everything; behind: {}\n{}",
                CATCH_UP_TIMEOUT.as_secs(),
                behind.join(", "),
                process.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every (topic, partition, offset) the store holds, with the table it is
/// in (a coordinate twice is listed twice).
struct Stored {
    rows: Vec<(Coord, &'static str)>,
    events: usize,
    ingest_errors: usize,
    dead_letters: usize,
}

async fn stored_coordinates(store: &Store) -> Stored {
    let tables = [
        (
            "events",
            "SELECT topic, kafka_partition, kafka_offset FROM events",
        ),
        (
            "ingest_errors",
            "SELECT topic, kafka_partition, kafka_offset FROM ingest_errors",
        ),
        (
            "dead_letters",
            "SELECT dlq_topic, dlq_partition, dlq_offset FROM dead_letters",
        ),
    ];
    let mut rows = Vec::new();
    let mut counts = [0; 3];
    for (count, (table, sql)) in counts.iter_mut().zip(tables) {
        for row in sqlx::query(sql).fetch_all(store.pool()).await.unwrap() {
            let partition: i64 = row.get(1);
            let coord = Coord {
                topic: row.get(0),
                partition: i32::try_from(partition).unwrap(),
                offset: row.get(2),
            };
            rows.push((coord, table));
            *count += 1;
        }
    }
    Stored {
        rows,
        events: counts[0],
        ingest_errors: counts[1],
        dead_letters: counts[2],
    }
}

/// None when the store holds exactly the coordinates it must, once each;
/// else what is missing, extra or stored twice (the first few of each).
fn compare(produced: &Produced, stored: &Stored) -> Option<String> {
    let mut tables: HashMap<&Coord, Vec<&str>> = HashMap::new();
    for (coord, table) in &stored.rows {
        tables.entry(coord).or_default().push(table);
    }
    let mut missing: Vec<&Coord> = produced
        .stored
        .iter()
        .filter(|c| !tables.contains_key(c))
        .collect();
    let mut extra: Vec<&Coord> = tables
        .keys()
        .copied()
        .filter(|c| !produced.stored.contains(*c))
        .collect();
    let mut twice: Vec<(&Coord, &Vec<&str>)> = tables
        .iter()
        .filter(|(_, t)| t.len() > 1)
        .map(|(c, t)| (*c, t))
        .collect();
    if missing.is_empty() && extra.is_empty() && twice.is_empty() {
        return None;
    }
    missing.sort();
    extra.sort();
    twice.sort();
    let first = |coords: &[&Coord]| {
        coords
            .iter()
            .take(20)
            .map(|c| {
                let ignored = if produced.ignored.contains(*c) {
                    " (a delete or tombstone)"
                } else {
                    ""
                };
                format!("{c}{ignored}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "{} missing [{}]; {} extra [{}]; {} stored twice [{}]",
        missing.len(),
        first(&missing),
        extra.len(),
        first(&extra),
        twice.len(),
        twice
            .iter()
            .take(20)
            .map(|(c, t)| format!("{c} in {}", t.join("+")))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// SAGASCOPE_CRASH_SEED, else a fresh one.
fn crash_seed() -> u64 {
    match std::env::var("SAGASCOPE_CRASH_SEED") {
        Ok(seed) => seed
            .trim()
            .parse()
            .expect("SAGASCOPE_CRASH_SEED is an unsigned integer"),
        Err(_) => rand::rng().random(),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ sits in the workspace")
        .to_path_buf()
}

/// SAGASCOPE_BIN (relative paths from the workspace root, where
/// scripts/test.sh runs; tests run in server/), else the binary Cargo built
/// for this test.
fn sagascope_bin() -> PathBuf {
    let bin = match std::env::var_os("SAGASCOPE_BIN") {
        Some(bin) => workspace_root().join(bin),
        None => PathBuf::from(env!("CARGO_BIN_EXE_sagascope")),
    };
    assert!(bin.is_file(), "no sagascope binary at {}", bin.display());
    bin
}

/// The file of the SQLite store (fresh_sqlite_store picks a temporary one).
async fn sqlite_file(store: &Store) -> PathBuf {
    let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_one(store.pool())
        .await
        .expect("SQLite names its database file");
    PathBuf::from(row.get::<String, _>(0))
}

/// Drops the database fresh_postgres_store created, through the same
/// server database it was created from.
async fn drop_postgres_database(url: &str) {
    let (_, name) = url.rsplit_once('/').unwrap();
    let admin_url = std::env::var("SAGASCOPE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let admin = Store::connect(&admin_url).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin.pool())
        .await;
    admin.close().await;
}

/// A port nobody listens on right now (bound and released at once).
/// One `sagascope serve` process, its output in `log`.
struct Sagascope {
    process: KillOnDrop,
    /// Its HTTP address (`/readyz` tells its ingest's progress).
    listen: SocketAddr,
    log: PathBuf,
}

impl Sagascope {
    fn start(
        bin: &Path,
        bootstrap: &str,
        database_url: &str,
        rules: &Path,
        log: &Path,
    ) -> Sagascope {
        let output = File::create(log).expect("create the sagascope log");
        let topics = ALL_TOPICS.join(",");
        let dlq_topics = DLT_TOPICS.join(",");
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(bin)
            .arg("serve")
            .args([
                "--brokers",
                bootstrap,
                "--topics",
                &topics,
                "--dlq-topics",
                &dlq_topics,
            ])
            .args(["--group-id", GROUP_ID, "--database-url", database_url])
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--rules")
            .arg(rules)
            // What is stored is the point here: nothing may be removed by age.
            .args(["--retention-events", "off"])
            .env("RUST_LOG", "info,sqlx=warn,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the log file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", bin.display()));
        Sagascope {
            process: KillOnDrop(child),
            listen,
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    fn kill(&mut self) {
        self.process.0.kill().expect("SIGKILL sagascope");
        self.process.0.wait().expect("reap sagascope");
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.0.try_wait().expect("poll sagascope")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- the last 40 lines of {} ---\n{tail}",
            self.log.display()
        )
    }
}
