//! `sagascope bench ingest`: how fast the real ingest path stores events
//! (consume from Kafka, decode, place, project, roll up, commit), printed
//! next to what the same machine does without sagascope in the way:
//!
//! 1. the demo's traffic is rendered and produced to the mock cluster;
//! 2. decode-only: `Decoder::decode` over the same messages, no store;
//! 3. raw COPY of the decoded events into a scratch table;
//! 4. store-only: `Store::write_batch` of the decoded events, no Kafka
//!    (then the tables are emptied again);
//! 5. the real thing: `Ingestor` from the mock cluster into the store,
//!    timed until the last message is committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sagascope_domain::{Decoder, KafkaCoords, Rules, SagaEvent};
use sagascope_ingest::{IngestConfig, Ingestor};
use sagascope_simulator::{MockKafka, ALL_TOPICS, DEMO_RULES};
use sagascope_store::IngestBatch;
use tokio::sync::{broadcast, watch};

use super::{
    copy_rate, count_rows, group_digits, open_store, per_second, pg_connect, rate_text,
    require_postgres, reset_tables, traffic, CpuMeter, Report,
};

/// The target for the whole path, projections and rollups included.
const TARGET_EVENTS_PER_SECOND: f64 = 50_000.0;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// postgres://… of a scratch database: it must hold no events (or give
    /// --reset), and is emptied between the phases.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Events to produce and ingest (messages that are no events, such as
    /// Debezium deletes, come on top).
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Ingest batch size (messages per store transaction).
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Ingest batch linger, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub batch_linger_ms: u64,
    /// Partitions per topic on the mock cluster, at least (more when a
    /// topic's messages would not fit in the mock broker's retention).
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Empty every sagascope table of the database first.
    #[arg(long)]
    pub reset: bool,
    /// Seed of the simulated traffic.
    #[arg(long, default_value_t = 4)]
    pub seed: u64,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    require_postgres(&args.database_url, "ingest")?;
    let store = open_store(&args.database_url).await?;
    let mut pg = pg_connect(&args.database_url).await?;
    if args.reset {
        reset_tables(&mut pg).await?;
    }
    let stored = count_rows(&mut pg, "events").await?;
    anyhow::ensure!(
        stored == 0,
        "the database already holds {stored} events; the ingest benchmark needs an empty one \
         (give --reset to empty it, or use a scratch database)"
    );
    let batch_size = args.batch_size.max(1);
    let mut report = Report::default();

    // 1. Traffic, produced before the ingest starts.
    let started = Instant::now();
    let messages = traffic::history(args.events, args.seed);
    let event_messages = messages.iter().filter(|m| m.is_event).count();
    println!(
        "rendered {} messages ({} events) in {:.1} s",
        group_digits(messages.len() as u64),
        group_digits(event_messages as u64),
        started.elapsed().as_secs_f64()
    );
    let partitions = partitions_for(&messages, args.partitions);
    let kafka = MockKafka::start(1, &ALL_TOPICS, partitions)
        .context("cannot start the mock Kafka cluster")?;
    let producer = traffic::producer(kafka.bootstrap_servers(), 20)?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(messages.len());
    for message in &messages {
        deliveries.push(traffic::send(&producer, &message.message).await?);
    }
    traffic::acked(deliveries).await?;
    let produce_elapsed = started.elapsed();
    drop(producer);
    println!(
        "produced them to the mock cluster ({partitions} partitions per topic) at {}",
        rate_text(messages.len() as u64, produce_elapsed)
    );

    // 2. Decode only, one thread (the ingest decodes on one task too).
    let decoder = Decoder::new(Rules::parse(DEMO_RULES)?);
    let now = chrono::Utc::now();
    let mut offsets: HashMap<(&str, i32), i64> = HashMap::new();
    let raw: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let partition = i32::try_from(i).unwrap_or_default() % partitions;
            let offset = offsets.entry((m.message.topic, partition)).or_default();
            *offset += 1;
            let coords = KafkaCoords {
                topic: m.message.topic.to_string(),
                partition,
                offset: *offset - 1,
            };
            traffic::raw_message(&m.message, coords, now)
        })
        .collect();
    drop(messages);
    let started = Instant::now();
    let mut events: Vec<SagaEvent> = Vec::with_capacity(raw.len());
    let mut not_events = 0u64;
    for message in &raw {
        match decoder.decode(message, now) {
            Ok(event) => events.push(event),
            Err(_) => not_events += 1,
        }
    }
    let decode_elapsed = started.elapsed();
    drop(raw);
    println!(
        "decode only: {} events ({} messages were no events) at {}",
        group_digits(events.len() as u64),
        not_events,
        rate_text(events.len() as u64, decode_elapsed)
    );

    // 3. Raw COPY of the same rows.
    let copy = copy_rate::measure(&mut pg, &events).await?;
    println!(
        "raw COPY: {} rows ({:.0} MB) at {}",
        group_digits(copy.rows),
        copy.bytes as f64 / 1e6,
        rate_text(copy.rows, copy.elapsed)
    );

    // 4. Store only: the decoded events in ingest-sized batches.
    let batches: Vec<IngestBatch> = events
        .chunks(batch_size)
        .map(|chunk| IngestBatch {
            group_id: "sagascope-bench-store-only".into(),
            events: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    let started = Instant::now();
    let cpu = CpuMeter::start();
    for batch in &batches {
        store.write_batch(batch).await?;
    }
    let store_elapsed = started.elapsed();
    let store_cpu = cpu.text();
    drop(batches);
    let store_stored = count_rows(&mut pg, "events").await?;
    println!(
        "store only: {} events at {}",
        group_digits(store_stored as u64),
        rate_text(store_stored as u64, store_elapsed)
    );
    reset_tables(&mut pg).await?;

    // 5. The real path: Kafka → Ingestor → store.
    crate::http::prometheus();
    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        ALL_TOPICS.iter().map(|t| t.to_string()).collect(),
        format!("sagascope-bench-{}", std::process::id()),
    );
    config.batch_size = batch_size;
    config.batch_linger = Duration::from_millis(args.batch_linger_ms);
    config.session_timeout = Duration::from_secs(6);
    let (live, _) = broadcast::channel(4096);
    let ingestor = Ingestor::new(config, store.clone(), decoder, live)?;
    let status = ingestor.status();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let total_messages = (events.len() as u64) + not_events;
    let started = Instant::now();
    let mut cpu = CpuMeter::start();
    let task = tokio::spawn(ingestor.run(shutdown_rx));
    let mut first_batch: Option<(Instant, u64)> = None;
    let mut last_progress = (Instant::now(), 0u64);
    let mut last_print = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let done = status.messages.load(Ordering::Relaxed);
        let stored_events = status.events.load(Ordering::Relaxed);
        if first_batch.is_none() && done > 0 {
            first_batch = Some((Instant::now(), stored_events));
            cpu = CpuMeter::start();
        }
        if done >= total_messages {
            break;
        }
        if done != last_progress.1 {
            last_progress = (Instant::now(), done);
        } else if last_progress.0.elapsed() > Duration::from_secs(60) {
            let _ = shutdown.send(true);
            anyhow::bail!(
                "the ingest made no progress for 60 s ({done} of {total_messages} messages)"
            );
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            println!(
                "ingest: {}/{} messages, {} events stored",
                group_digits(done),
                group_digits(total_messages),
                group_digits(stored_events)
            );
        }
    }
    let ended = Instant::now();
    let ingest_cpu = cpu.text();
    let ingest_events = status.events.load(Ordering::Relaxed);
    let batches = status.batches.load(Ordering::Relaxed);
    let _ = shutdown.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    let in_store = count_rows(&mut pg, "events").await? as u64;
    let errors = count_rows(&mut pg, "ingest_errors").await? as u64;
    let sagas = count_rows(&mut pg, "sagas").await? as u64;
    store.close().await;
    drop(kafka);

    let total_elapsed = ended - started;
    let (first_at, events_before) = first_batch.unwrap_or((started, 0));
    let sustained_elapsed = ended - first_at;
    let sustained_events = ingest_events.saturating_sub(events_before);
    let sustained = per_second(sustained_events, sustained_elapsed);

    report.check(
        "ingest, sustained (events/s)",
        rate_text(sustained_events, sustained_elapsed),
        format!("≥ {}/s", group_digits(TARGET_EVENTS_PER_SECOND as u64)),
        sustained >= TARGET_EVENTS_PER_SECOND,
    );
    report.info(
        "ingest, from start incl. group join",
        rate_text(ingest_events, total_elapsed),
    );
    report.info(
        "raw COPY, same rows (rows/s)",
        rate_text(copy.rows, copy.elapsed),
    );
    report.info(
        "decode only, 1 thread (events/s)",
        rate_text(events.len() as u64, decode_elapsed),
    );
    report.info(
        "store only, write_batch (events/s)",
        rate_text(store_stored as u64, store_elapsed),
    );
    report.info("CPU cores, ingest sustained", ingest_cpu);
    report.info("CPU cores, store only", store_cpu);
    report.info(
        "produce to mock cluster (msgs/s)",
        rate_text(total_messages, produce_elapsed),
    );
    report.info(
        "events stored / expected",
        format!(
            "{} / {}",
            group_digits(in_store),
            group_digits(events.len() as u64)
        ),
    );
    report.info("sagas and streams", group_digits(sagas));
    report.info("ingest errors", group_digits(errors));
    report.info("batches", group_digits(batches));
    report.note(format!(
        "{} messages, batch size {batch_size}, linger {} ms, {} partitions per topic; \
         sustained = first committed batch → last (the consumer-group join before it took {:.1} s)",
        group_digits(total_messages),
        args.batch_linger_ms,
        partitions,
        (first_at - started).as_secs_f64()
    ));
    if in_store != events.len() as u64 {
        report.note("MISMATCH: the store does not hold exactly the decoded events");
    }
    report.print("sagascope bench ingest");
    Ok(())
}

/// librdkafka's mock broker keeps at most 5 MiB per partition and drops
/// the oldest messages beyond that, so pre-produced traffic must be spread
/// over enough partitions to stay whole until consumed (3 MiB each, for
/// the log's own overhead).
fn partitions_for(messages: &[traffic::Simulated], at_least: i32) -> i32 {
    const PER_PARTITION: u64 = 3 * 1024 * 1024;
    let mut bytes: HashMap<&str, u64> = HashMap::new();
    for m in messages {
        let size = m.message.key.len()
            + m.message.value.as_ref().map_or(0, Vec::len)
            + m.message
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        *bytes.entry(m.message.topic).or_default() += size as u64;
    }
    let needed = bytes
        .values()
        .max()
        .copied()
        .unwrap_or(0)
        .div_ceil(PER_PARTITION);
    i32::try_from(needed)
        .unwrap_or(i32::MAX)
        .max(at_least)
        .max(1)
}
