//! `sagascope bench live`: produce → visible on `/api/v1/stream` at
//! steady event rates. The mock cluster, the ingest and the server run in
//! this process, as `serve` runs them; one SSE client subscribes
//! (`live_stream.rs`), then the demo's traffic is produced at each rate of
//! the ramp (`live_ramp.rs`) for `--seconds`, and the step's last events
//! are waited for before the next one starts, so each step starts without
//! a backlog. Each event's latency runs from the produce call to its
//! `event` message on the stream, matched by its Kafka coordinates (from
//! the delivery report). The process's RSS is sampled every second; each
//! step reports its own peak.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use sagascope_domain::{Decoder, Rules, Thresholds};
use sagascope_ingest::IngestConfig;
use sagascope_simulator::{MockKafka, ALL_TOPICS, DEMO_RULES};
use sagascope_store::{Backend, StallPolicy};
use tokio::sync::{mpsc, Mutex};

use super::live_ramp::{self, Step};
use super::live_stream::{self, Coords, Seen};
use super::load_average::{self, LoadAverage};
use super::{
    count_rows, fresh_sqlite_url, group_digits, mib, open_store, remove_files, reset_tables,
    traffic, CpuMeter, Report, RssSampler,
};
use crate::run;

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// postgres://… or sqlite://PATH; default: a fresh SQLite file in the
    /// temporary directory. The database must hold no events of an
    /// earlier Kafka run (ids of saga-state events are their Kafka
    /// coordinates, which a new mock cluster reuses): give --reset then.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Steady rates to step through, in events/s, comma-separated; run
    /// lowest first, the ramp stops at the first step whose p99 reaches
    /// 1 s or that misses events. One rate makes a single steady run.
    #[arg(
        long,
        alias = "events-per-second",
        value_delimiter = ',',
        default_values_t = [2_500u64, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000]
    )]
    pub rates: Vec<u64>,
    /// Measured seconds of steady production per step.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Seconds to wait after a step's production for its last events on
    /// the stream; those not there by then count as missing.
    #[arg(long, default_value_t = 15)]
    pub drain_seconds: u64,
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
    /// Empty every sagascope table of the database first.
    #[arg(long)]
    pub reset: bool,
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
}

/// A produced message awaiting its delivery report.
struct InFlight {
    sent: Instant,
    topic: &'static str,
    measured: bool,
    delivery: DeliveryFuture,
}

/// Send instants of the measured events, by the coordinates their
/// delivery reports gave.
type SentAt = Arc<Mutex<HashMap<Coords, Instant>>>;

/// The producing side and the bookkeeping that outlive one step.
struct Producing {
    producer: FutureProducer,
    source: traffic::TrafficSource,
    in_flight: mpsc::UnboundedSender<InFlight>,
    /// Messages handed to the collector, and those it has settled.
    flights: u64,
    settled: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    sent_at: SentAt,
    seen: Arc<Mutex<Seen>>,
    produced_bytes: u64,
}

impl Producing {
    /// Produces the next message of the traffic; true if it is an event.
    async fn send_next(&mut self, measured: bool) -> anyhow::Result<bool> {
        let message = self.source.next_at(chrono::Utc::now());
        let sent = Instant::now();
        let delivery = traffic::send(&self.producer, &message.message).await?;
        self.produced_bytes += message.message.value.as_ref().map_or(0, |v| v.len() as u64)
            + message
                .message
                .headers
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
        self.flights += 1;
        let _ = self.in_flight.send(InFlight {
            sent,
            topic: message.message.topic,
            measured: measured && message.is_event,
            delivery,
        });
        Ok(message.is_event)
    }

    /// Waits until every message sent so far has its delivery report (the
    /// producer's message timeout is 60 s).
    async fn settle(&self) {
        let started = Instant::now();
        while self.settled.load(Ordering::Relaxed) < self.flights
            && started.elapsed() < Duration::from_secs(70)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every measured event has arrived, or `limit`.
    async fn drain(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let all_there = {
                let sent = self.sent_at.lock().await;
                let seen = self.seen.lock().await;
                sent.keys().all(|k| seen.arrivals.contains_key(k))
            };
            if all_there || started.elapsed() > limit {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Turns delivery reports into send instants by coordinates.
fn collect_deliveries(
    mut in_flight: mpsc::UnboundedReceiver<InFlight>,
    sent_at: SentAt,
    settled: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(flight) = in_flight.recv().await {
            match flight.delivery.await {
                Ok(Ok(delivery)) if flight.measured => {
                    if let Some(topic) = live_stream::topic_index(flight.topic) {
                        sent_at
                            .lock()
                            .await
                            .insert((topic, delivery.partition, delivery.offset), flight.sent);
                    }
                }
                Ok(Ok(_)) => {}
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            settled.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// One step: `rate` events/s for `duration`, then its last events waited
/// for (at most `drain`), then its figures. The send and arrival records
/// are emptied for the next step.
async fn run_step(
    producing: &mut Producing,
    rss: &RssSampler,
    backend: Backend,
    rate: u64,
    duration: Duration,
    drain: Duration,
) -> anyhow::Result<Step> {
    {
        let mut seen = producing.seen.lock().await;
        // Late arrivals of the warm-up, and the previous step's counts.
        *seen = Seen::default();
    }
    let failed_before = producing.failed.load(Ordering::Relaxed);
    rss.restart();
    let mut produced = 0u64;
    let started = Instant::now();
    let cpu = CpuMeter::start();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut last_print = Instant::now();
    while started.elapsed() < duration {
        tick.tick().await;
        let due = (rate as f64 * started.elapsed().as_secs_f64()) as u64;
        while produced < due {
            produced += u64::from(producing.send_next(true).await?);
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let arrived = producing.seen.lock().await.arrivals.len();
            println!(
                "  {:.0} s: {} events produced, {} seen on the stream, RSS {} ({})",
                started.elapsed().as_secs_f64(),
                group_digits(produced),
                group_digits(arrived as u64),
                mib(super::rss_bytes().unwrap_or(0)),
                load_average::now_text()
            );
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu.text(backend);
    producing.settle().await;
    producing.drain(drain).await;

    let sent = std::mem::take(&mut *producing.sent_at.lock().await);
    let seen = std::mem::take(&mut *producing.seen.lock().await);
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(coords, sent)| {
            seen.arrivals
                .get(coords)
                .map(|at| at.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort_unstable();
    Ok(Step {
        rate,
        produced,
        elapsed,
        missing: (sent.len() - latencies.len()) as u64,
        latencies,
        failed_deliveries: producing.failed.load(Ordering::Relaxed) - failed_before,
        lagged_messages: seen.lagged_messages,
        peak_rss: rss.max_bytes(),
        cpu,
        load: LoadAverage::now(),
    })
}

pub async fn run(args: LiveArgs) -> anyhow::Result<()> {
    let rates = live_ramp::ramp(&args.rates);
    anyhow::ensure!(!rates.is_empty(), "--rates needs at least one rate above 0");
    let rss = RssSampler::start();
    let (url, scratch_files) = match &args.database_url {
        Some(url) => (url.clone(), Vec::new()),
        None => fresh_sqlite_url("live"),
    };
    let backend = Backend::from_url(&url)?;
    let store = open_store(&url).await?;
    if args.reset {
        reset_tables(&store).await?;
    }
    let offsets = count_rows(&store, "consumer_offsets").await?;
    anyhow::ensure!(
        offsets == 0,
        "the database holds events of an earlier Kafka run, whose ids a new mock cluster \
         would repeat: give --reset, or use a scratch database"
    );

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
    let reader = tokio::spawn(live_stream::read_stream(
        response,
        seen.clone(),
        any_event.clone(),
        stop_reading.clone(),
    ));

    let sent_at: SentAt = Arc::default();
    let (in_flight_tx, in_flight_rx) = mpsc::unbounded_channel::<InFlight>();
    let settled = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let collector = collect_deliveries(
        in_flight_rx,
        sent_at.clone(),
        settled.clone(),
        failed.clone(),
    );
    let mut producing = Producing {
        producer: traffic::producer(kafka.bootstrap_servers(), args.producer_linger_ms)?,
        source: traffic::TrafficSource::new(args.seed, 200),
        in_flight: in_flight_tx,
        flights: 0,
        settled,
        failed,
        sent_at,
        seen,
        produced_bytes: 0,
    };

    // Warm-up: a trickle until the ingest has joined its group and the
    // first event is on the stream; not measured.
    println!("waiting for the ingest to join its consumer group …");
    let warmup_started = Instant::now();
    while !any_event.load(Ordering::Relaxed) {
        anyhow::ensure!(
            warmup_started.elapsed() < Duration::from_secs(60),
            "no event reached the stream within 60 s"
        );
        producing.send_next(false).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ingest live after {:.1} s",
        warmup_started.elapsed().as_secs_f64()
    );

    // The ramp, until the first step that misses.
    let duration = Duration::from_secs(args.seconds.max(1));
    let drain = Duration::from_secs(args.drain_seconds);
    let mut steps: Vec<Step> = Vec::new();
    for (i, &rate) in rates.iter().enumerate() {
        println!(
            "step {}/{}: {} events/s for {} s ({}) …",
            i + 1,
            rates.len(),
            group_digits(rate),
            duration.as_secs(),
            load_average::now_text()
        );
        let step = run_step(&mut producing, &rss, backend, rate, duration, drain).await?;
        println!(
            "step {}/{}: p99 {}, {} missing, peak RSS {} (load {}): {}",
            i + 1,
            rates.len(),
            super::ms_text(step.p99()),
            group_digits(step.missing),
            mib(step.peak_rss),
            load_average::text(step.load),
            step.miss().unwrap_or("held")
        );
        let missed = step.miss().is_some();
        steps.push(step);
        if missed {
            break;
        }
    }

    let Producing {
        producer,
        in_flight,
        produced_bytes,
        ..
    } = producing;
    drop(in_flight);
    drop(producer);
    let _ = collector.await;
    stop_reading.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let ingest_batches = running
        .state
        .ingest
        .as_ref()
        .map_or(0, |s| s.batches.load(Ordering::Relaxed));
    running.shutdown().await;
    drop(kafka);
    remove_files(&scratch_files);

    live_ramp::print_steps(&steps);
    let answer = live_ramp::answer(&steps);
    let mut report = Report::default();
    report.info(
        "highest steady rate with p99 < 1 s (events/s)",
        live_ramp::highest_steady(&steps).map_or("none".to_string(), group_digits),
    );
    live_ramp::report_target(&mut report, &steps, &rates);
    report.info("RSS once started, before traffic", mib(rss_at_start));
    report.info(
        "bytes produced (the in-process broker keeps ≤ 5 MiB per partition)",
        format!("{:.0} MB", produced_bytes as f64 / 1e6),
    );
    report.info("ingest batches", group_digits(ingest_batches));
    report.note(format!(
        "store {}; ingest batch {} / linger {} ms; producer linger {} ms; {} s per step, then \
         up to {} s for its last events",
        sagascope_store::redact_url(&url),
        args.batch_size,
        args.batch_linger_ms,
        args.producer_linger_ms,
        duration.as_secs(),
        drain.as_secs()
    ));
    report.note(
        "the RSS includes the producer, the mock broker holding the produced messages and \
         this benchmark's send/arrival records of the step",
    );
    report.print("sagascope bench live");
    println!("{answer}");
    Ok(())
}
