//! `sagascope bench live`: produce → visible on `/api/v1/stream` at a
//! steady event rate. The mock cluster, the ingest and the server run in
//! this process, as `serve` runs them; one SSE client subscribes, then the
//! demo's traffic is produced at `--events-per-second`. Each event's
//! latency runs from the produce call to its `event` message on the
//! stream, matched by its Kafka coordinates (from the delivery report).
//! The process's RSS is sampled every second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::producer::DeliveryFuture;
use sagascope_domain::{Decoder, Rules, Thresholds};
use sagascope_ingest::IngestConfig;
use sagascope_simulator::{MockKafka, ALL_TOPICS, DEMO_RULES};
use sagascope_store::{Backend, StallPolicy};
use serde::Deserialize;
use tokio::sync::{mpsc, Mutex};

use super::{
    count_rows, group_digits, mib, ms_text, open_store, percentile, pg_connect, rate_text,
    reset_tables, traffic, CpuMeter, Report, RssSampler,
};
use crate::run;

const TARGET_P99: Duration = Duration::from_secs(1);
const TARGET_RSS_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// postgres://… (or sqlite://…); default: a fresh SQLite file in the
    /// temporary directory. A Postgres database must hold no events of an
    /// earlier Kafka run (ids of saga-state events are their Kafka
    /// coordinates, which a new mock cluster reuses): give --reset then.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(long, default_value_t = 5000.0)]
    pub events_per_second: f64,
    /// Measured seconds of steady production.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Ingest batch size (the `serve` default).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Ingest batch linger in milliseconds (the `serve` default).
    #[arg(long, default_value_t = 100)]
    pub batch_linger_ms: u64,
    /// Producer linger in milliseconds (the simulator's).
    #[arg(long, default_value_t = 5)]
    pub producer_linger_ms: u32,
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Empty every sagascope table of a Postgres database first.
    #[arg(long)]
    pub reset: bool,
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
}

type Coords = (String, i32, i64);

/// The part of a stream `event` message needed to match it.
#[derive(Deserialize)]
struct StreamEvent {
    event: EventCoords,
}

#[derive(Deserialize)]
struct EventCoords {
    topic: String,
    partition: i64,
    offset: i64,
}

/// What the SSE client saw.
#[derive(Default)]
struct Seen {
    arrivals: HashMap<Coords, Instant>,
    lagged_notices: u64,
    lagged_messages: u64,
}

/// Reads the stream until `stop`, recording when each event arrived.
async fn read_stream(
    mut response: reqwest::Response,
    seen: Arc<Mutex<Seen>>,
    any_event: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut buffer: Vec<u8> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Err(_quiet) => continue,
            Ok(chunk) => chunk.context("the stream broke")?,
        };
        let Some(chunk) = chunk else { break };
        let arrived = Instant::now();
        buffer.extend_from_slice(&chunk);
        let mut seen = seen.lock().await;
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let frame = String::from_utf8_lossy(&frame);
            let mut kind = "";
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            match kind {
                "event" => {
                    if let Ok(message) = serde_json::from_str::<StreamEvent>(&data) {
                        let e = message.event;
                        let partition = i32::try_from(e.partition).unwrap_or_default();
                        seen.arrivals
                            .entry((e.topic, partition, e.offset))
                            .or_insert(arrived);
                        any_event.store(true, Ordering::Relaxed);
                    }
                }
                "lagged" => {
                    seen.lagged_notices += 1;
                    seen.lagged_messages += data.trim().parse::<u64>().unwrap_or(0);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A produced message awaiting its delivery report.
struct InFlight {
    sent: Instant,
    topic: &'static str,
    measured: bool,
    delivery: DeliveryFuture,
}

pub async fn run(args: LiveArgs) -> anyhow::Result<()> {
    let rss = RssSampler::start();
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            let path = std::env::temp_dir()
                .join(format!("sagascope-bench-live-{}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            format!("sqlite://{}", path.display())
        }
    };
    let backend = Backend::from_url(&url)?;
    if backend == Backend::Postgres {
        let mut pg = pg_connect(&url).await?;
        open_store(&url).await?.close().await;
        if args.reset {
            reset_tables(&mut pg).await?;
        }
        let offsets = count_rows(&mut pg, "consumer_offsets").await?;
        anyhow::ensure!(
            offsets == 0,
            "the database holds events of an earlier Kafka run, whose ids a new mock cluster \
             would repeat: give --reset, or use a scratch database"
        );
    }
    let store = open_store(&url).await?;

    let kafka = MockKafka::start(1, &ALL_TOPICS, args.partitions)
        .context("cannot start the mock Kafka cluster")?;
    let rules = Rules::parse(DEMO_RULES)?;
    let policy = StallPolicy {
        default_timeout: Duration::from_secs(300),
        per_type: rules
            .timeouts()
            .iter()
            .map(|(t, d)| (t.clone(), *d))
            .collect(),
    };
    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        ALL_TOPICS.iter().map(|t| t.to_string()).collect(),
        "sagascope-bench-live",
    );
    config.batch_size = args.batch_size.max(1);
    config.batch_linger = Duration::from_millis(args.batch_linger_ms);
    config.session_timeout = Duration::from_secs(6);
    let running = run::start(
        store,
        Some((config, Decoder::new(rules))),
        "127.0.0.1:0".parse()?,
        &args.site_root,
        Thresholds::default(),
    )
    .await?;
    running.sweep_stalls(policy);
    let rss_at_start = super::rss_bytes().unwrap_or(0);

    // The SSE subscriber.
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{}/api/v1/stream", running.addr))
        .send()
        .await?
        .error_for_status()?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let any_event = Arc::new(AtomicBool::new(false));
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_stream(
        response,
        seen.clone(),
        any_event.clone(),
        stop_reading.clone(),
    ));

    // Delivery reports → send instants by coordinates.
    let sent_at: Arc<Mutex<HashMap<Coords, Instant>>> = Arc::default();
    let (in_flight_tx, mut in_flight_rx) = mpsc::unbounded_channel::<InFlight>();
    let failed_deliveries = Arc::new(AtomicU64::new(0));
    let collector = {
        let sent_at = sent_at.clone();
        let failed = failed_deliveries.clone();
        tokio::spawn(async move {
            while let Some(flight) = in_flight_rx.recv().await {
                match flight.delivery.await {
                    Ok(Ok(delivery)) if flight.measured => {
                        sent_at.lock().await.insert(
                            (
                                flight.topic.to_string(),
                                delivery.partition,
                                delivery.offset,
                            ),
                            flight.sent,
                        );
                    }
                    Ok(Ok(_)) => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let producer = traffic::producer(kafka.bootstrap_servers(), args.producer_linger_ms)?;
    let mut source = traffic::TrafficSource::new(args.seed, 200);
    let mut produced_bytes = 0u64;

    // Warm-up: a trickle until the ingest has joined its group and the
    // first event is on the stream; not measured.
    println!("waiting for the ingest to join its consumer group …");
    let warmup_started = Instant::now();
    while !any_event.load(Ordering::Relaxed) {
        anyhow::ensure!(
            warmup_started.elapsed() < Duration::from_secs(60),
            "no event reached the stream within 60 s"
        );
        let message = source.next_at(chrono::Utc::now());
        let delivery = traffic::send(&producer, &message.message).await?;
        let _ = in_flight_tx.send(InFlight {
            sent: Instant::now(),
            topic: message.message.topic,
            measured: false,
            delivery,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ingest live after {:.1} s; producing {} events/s for {} s …",
        warmup_started.elapsed().as_secs_f64(),
        args.events_per_second,
        args.seconds
    );

    // Steady production, measured.
    let mut events_sent = 0u64;
    let mut messages_sent = 0u64;
    let started = Instant::now();
    let cpu = CpuMeter::start();
    let duration = Duration::from_secs(args.seconds.max(1));
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut last_print = Instant::now();
    while started.elapsed() < duration {
        tick.tick().await;
        let due = (args.events_per_second * started.elapsed().as_secs_f64()) as u64;
        while events_sent < due {
            let message = source.next_at(chrono::Utc::now());
            let sent = Instant::now();
            let delivery = traffic::send(&producer, &message.message).await?;
            produced_bytes += message.message.value.as_ref().map_or(0, |v| v.len() as u64)
                + message
                    .message
                    .headers
                    .iter()
                    .map(|(k, v)| (k.len() + v.len()) as u64)
                    .sum::<u64>();
            messages_sent += 1;
            events_sent += u64::from(message.is_event);
            let _ = in_flight_tx.send(InFlight {
                sent,
                topic: message.message.topic,
                measured: message.is_event,
                delivery,
            });
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let arrived = seen.lock().await.arrivals.len();
            println!(
                "{:.0} s: {} events produced, {} seen on the stream, RSS {}",
                started.elapsed().as_secs_f64(),
                group_digits(events_sent),
                group_digits(arrived as u64),
                mib(super::rss_bytes().unwrap_or(0))
            );
        }
    }
    let produce_elapsed = started.elapsed();
    let cpu_text = cpu.text();
    drop(in_flight_tx);
    drop(producer);
    let _ = collector.await;

    // Drain: wait until every measured event arrived, or 15 s.
    let drain_started = Instant::now();
    loop {
        let expected = sent_at.lock().await.len();
        let seen_now = {
            let sent = sent_at.lock().await;
            let seen = seen.lock().await;
            sent.keys()
                .filter(|k| seen.arrivals.contains_key(*k))
                .count()
        };
        if seen_now >= expected || drain_started.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_reading.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let max_rss = rss.max_bytes();
    let ingest_batches = running
        .state
        .ingest
        .as_ref()
        .map_or(0, |s| s.batches.load(Ordering::Relaxed));
    running.shutdown().await;
    drop(kafka);

    let sent = sent_at.lock().await;
    let seen = seen.lock().await;
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(coords, sent)| {
            seen.arrivals
                .get(coords)
                .map(|at| at.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort_unstable();
    let missing = (sent.len() - latencies.len()) as u64;
    let p99 = percentile(&latencies, 99.0);

    let mut report = Report::default();
    report.info(
        "events produced (rate achieved)",
        format!(
            "{} ({})",
            group_digits(events_sent),
            rate_text(events_sent, produce_elapsed)
        ),
    );
    report.info("messages produced", group_digits(messages_sent));
    report.info(
        "events seen on the stream",
        group_digits(latencies.len() as u64),
    );
    report.info("latency p50", ms_text(percentile(&latencies, 50.0)));
    report.info("latency p95", ms_text(percentile(&latencies, 95.0)));
    report.check(
        "latency p99 (produce → SSE)",
        ms_text(p99),
        format!("< {}", ms_text(TARGET_P99)),
        !latencies.is_empty() && p99 < TARGET_P99,
    );
    report.info(
        "latency max",
        ms_text(latencies.last().copied().unwrap_or_default()),
    );
    report.check(
        "events missing on the stream",
        group_digits(missing),
        "0",
        missing == 0,
    );
    report.info(
        "stream 'lagged' notices (messages dropped)",
        format!("{} ({})", seen.lagged_notices, seen.lagged_messages),
    );
    report.check(
        "max RSS of this process",
        mib(max_rss),
        format!("< {}", mib(TARGET_RSS_BYTES)),
        max_rss < TARGET_RSS_BYTES,
    );
    report.info("RSS once started, before traffic", mib(rss_at_start));
    report.info(
        "bytes produced (held by the in-process broker)",
        format!("{:.0} MB", produced_bytes as f64 / 1e6),
    );
    report.info("ingest batches", group_digits(ingest_batches));
    report.info("CPU cores while producing", cpu_text);
    let failed = failed_deliveries.load(Ordering::Relaxed);
    if failed > 0 {
        report.info("failed deliveries", group_digits(failed));
    }
    report.note(format!(
        "store {}; ingest batch {} / linger {} ms; producer linger {} ms; the RSS includes \
         the producer and the mock broker holding every produced message",
        sagascope_store::redact_url(&url),
        args.batch_size,
        args.batch_linger_ms,
        args.producer_linger_ms
    ));
    report.print("sagascope bench live");
    Ok(())
}
