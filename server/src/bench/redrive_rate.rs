//! `sagascope bench redrive`: how fast one bulk retry re-drives dead
//! letters — claimed in the store, produced with the idempotent producer
//! (`acks=all`) to the in-process mock cluster, acked, and recorded
//! (attempts, states, job counters) — with the job runner of the server,
//! without throttle:
//!
//! 1. N Spring-style dead letters are written through the ingest's batch
//!    write (a DLQ topic of their own per run, so a database may be
//!    reused);
//! 2. one bulk job is created for that topic, released to the runner, and
//!    timed from release until it is completed;
//! 3. the rate is compared with the target, with each chunk's latency
//!    (claim → produce all → acks → record) as p50/p99, and checked: every
//!    dead letter `retried`, every copy on the target topic.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sagascope_domain::{decode_dead_letter, GenericDeadLetterFields, KafkaCoords, RawMessage};
use sagascope_model::{DlqQuery, RetryJobState};
use sagascope_redrive::{
    default_chunk_size, BulkRetryCommand, CreatedJob, RedriveConfig, RedriveService,
};
use sagascope_simulator::MockKafka;
use sagascope_store::{IngestBatch, RETRY_CHUNK};
use tokio::sync::{mpsc, watch};

use super::{group_digits, ms_text, open_store, per_second, percentile, rate_text, Report};

/// The issue's target: dead letters re-driven per second.
const TARGET_PER_SECOND: f64 = 5_000.0;
/// The topic the copies go to (the dead letters' original topic).
const TARGET_TOPIC: &str = "bench.orders";
/// Dead letters per store write while loading.
const LOAD_BATCH: usize = 2_000;

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// postgres://… or sqlite://PATH; default: a new SQLite file in the
    /// temporary directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Dead letters to load and re-drive.
    #[arg(long, default_value_t = 50_000)]
    pub dead_letters: usize,
    /// Partitions of the target topic on the mock cluster.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Dead letters per chunk of the job (at most 1,000; default: the
    /// server's for the store: 500 on SQLite, 1,000 on Postgres).
    #[arg(long)]
    pub chunk_size: Option<usize>,
}

/// A Spring Kafka DLT message of an order event: ~0.4 KB with headers.
fn dead_letter_message(dlq_topic: &str, n: usize, base_ms: i64) -> RawMessage {
    let offset = i64::try_from(n).unwrap_or(i64::MAX);
    let headers: Vec<(String, Option<Vec<u8>>)> = [
        (
            "traceparent",
            format!("00-{:032x}-{:016x}-01", n + 1, n + 1).into_bytes(),
        ),
        ("id", format!("evt-{n}").into_bytes()),
        ("type", b"OrderPaymentRequested".to_vec()),
        (
            "kafka_dlt-exception-fqcn",
            b"java.net.SocketTimeoutException".to_vec(),
        ),
        (
            "kafka_dlt-exception-message",
            b"Read timed out after 30000 ms".to_vec(),
        ),
        ("kafka_dlt-original-topic", TARGET_TOPIC.as_bytes().to_vec()),
        (
            "kafka_dlt-original-partition",
            i32::try_from(n % 3).unwrap_or(0).to_be_bytes().to_vec(),
        ),
        ("kafka_dlt-original-offset", offset.to_be_bytes().to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v)))
    .collect();
    RawMessage {
        coords: KafkaCoords {
            topic: dlq_topic.to_string(),
            partition: 0,
            offset,
        },
        key: Some(format!("ORD-{n:08}").into_bytes()),
        value: Some(
            format!(
                r#"{{"order_id":"ORD-{n:08}","customer_id":"C-{}","amount":{}.50,"currency":"EUR","items":[{{"sku":"SKU-{}","qty":2}}]}}"#,
                n % 997,
                n % 500,
                n % 101
            )
            .into_bytes(),
        ),
        headers,
        timestamp: chrono::DateTime::from_timestamp_millis(base_ms + offset),
    }
}

pub async fn run(args: RedriveArgs) -> anyhow::Result<()> {
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!(
                "sagascope-bench-redrive-{}",
                chrono::Utc::now().timestamp_millis()
            ));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            format!("sqlite://{}", dir.join("read-model.db").display())
        }
    };
    let store = open_store(&url).await?;
    let total = args.dead_letters.max(1);
    let mut report = Report::default();
    report.info("store", store.backend().name());

    // 1. The dead letters, through the ingest's write path.
    let run_tag = chrono::Utc::now().timestamp_millis();
    let dlq_topic = format!("bench.redrive.{run_tag}.DLT");
    let base_ms = run_tag - i64::try_from(total).unwrap_or(0);
    let started = Instant::now();
    let generic = GenericDeadLetterFields::default();
    for first in (0..total).step_by(LOAD_BATCH) {
        let dead_letters = (first..(first + LOAD_BATCH).min(total))
            .map(|n| decode_dead_letter(&dead_letter_message(&dlq_topic, n, base_ms), &generic))
            .collect();
        store
            .write_batch(&IngestBatch {
                group_id: "bench-redrive".into(),
                dead_letters,
                ..Default::default()
            })
            .await
            .context("loading the dead letters failed")?;
    }
    report.info(
        "dead letters loaded (ingest batch write)",
        format!(
            "{} in {:.1} s ({})",
            group_digits(total as u64),
            started.elapsed().as_secs_f64(),
            rate_text(total as u64, started.elapsed())
        ),
    );

    // 2. One bulk job, run by the server's job runner.
    let kafka = MockKafka::start(1, &[TARGET_TOPIC], args.partitions.max(1))
        .context("cannot start the in-process Kafka cluster")?;
    let (timings_tx, mut timings_rx) = mpsc::unbounded_channel();
    let mut config = RedriveConfig::new(kafka.bootstrap_servers());
    let chunk_size = args
        .chunk_size
        .unwrap_or_else(|| default_chunk_size(store.backend()))
        .clamp(1, RETRY_CHUNK);
    config.chunk_size = Some(chunk_size);
    let service = RedriveService::with_chunk_timings(store.clone(), config, timings_tx)?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let background = service.start(shutdown_rx);
    let query = DlqQuery {
        topic: Some(dlq_topic.clone()),
        ..DlqQuery::default()
    };
    let filter = format!("topic={dlq_topic}");
    let job = match service
        .create_job(BulkRetryCommand {
            query: &query,
            filter: &filter,
            actor: "bench",
            reason: "sagascope bench redrive",
            canary: false,
            canary_wait_s: None,
            throttle_per_s: None,
            expected_count: Some(total as u64),
            idempotency_key: None,
        })
        .await?
    {
        CreatedJob::New(job) | CreatedJob::Replayed(job) => job,
    };
    let started = Instant::now();
    service.release_job(&job.id).await?;
    let done = loop {
        let view = store
            .retry_job(&job.id)
            .await?
            .context("the job vanished")?;
        if !view.state.is_active() {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    let _ = shutdown.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(60), background).await;

    // 3. The figures, and what they stand for.
    let mut chunks = Vec::new();
    while let Ok(timing) = timings_rx.try_recv() {
        chunks.push(timing.elapsed);
    }
    chunks.sort();
    report.check(
        "re-driven (claimed, produced, acked, recorded)",
        rate_text(done.produced, elapsed),
        "≥ 5,000/s",
        done.state == RetryJobState::Completed
            && per_second(done.produced, elapsed) >= TARGET_PER_SECOND,
    );
    report.info(
        format!("job {} (produced/failed/skipped)", done.state.as_str()),
        format!(
            "{}/{}/{} in {:.2} s",
            group_digits(done.produced),
            done.failed,
            done.skipped,
            elapsed.as_secs_f64()
        ),
    );
    report.info(
        format!("chunk latency p50 ({chunk_size} per chunk)"),
        ms_text(percentile(&chunks, 50.0)),
    );
    report.info(
        format!("chunk latency p99 ({} chunks)", chunks.len()),
        ms_text(percentile(&chunks, 99.0)),
    );
    let on_topic = high_watermarks(kafka.bootstrap_servers(), args.partitions.max(1))?;
    let left = store.bulk_retry_preview(&query).await?.count;
    report.note(format!(
        "{on_topic} copies on {TARGET_TOPIC}; {left} dead letters of the run left retryable"
    ));
    if on_topic != done.produced || left != 0 || done.produced != total as u64 {
        report.note("MISMATCH: not every dead letter was re-driven exactly once");
    }
    report.note("the mock cluster runs in this process and shares its CPUs");
    report.print("sagascope bench redrive");
    // The producer goes before the cluster it talks to.
    drop(service);
    drop(kafka);
    Ok(())
}

/// Sum of the target topic's high watermarks: copies acked on it.
fn high_watermarks(brokers: &str, partitions: i32) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-redrive-watermarks")
        .create()?;
    let mut sum = 0;
    for partition in 0..partitions {
        let (_, high) =
            consumer.fetch_watermarks(TARGET_TOPIC, partition, Duration::from_secs(10))?;
        sum += u64::try_from(high).unwrap_or(0);
    }
    Ok(sum)
}
