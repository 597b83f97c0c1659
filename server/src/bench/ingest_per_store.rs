//! Steps 3–5 of `sagascope bench ingest` on one store (`ingest_rate.rs`
//! runs steps 1–2 once for all): the raw baseline of the same rows, the
//! store-only rate, the real ingest from the mock cluster, and their
//! figures with the verdicts against the store's targets.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sagascope_domain::{Decoder, Rules, SagaEvent};
use sagascope_ingest::{IngestConfig, Ingestor};
use sagascope_simulator::{MockKafka, ALL_TOPICS, DEMO_RULES};
use sagascope_store::{Backend, IngestBatch, Store};
use tokio::sync::{broadcast, watch};

use super::ingest_rate::{IngestArgs, Target};
use super::load_average::{self, LoadAverage};
use super::raw_rows::RawRate;
use super::{
    copy_rate, count_rows, group_digits, per_second, pg_connect, rate_text, reset_tables,
    sqlite_insert_rate, CpuMeter, Report,
};

/// Postgres, the whole path (projections and rollups included), on a
/// quiet 2-core machine: as a share of raw COPY in the same run, and
/// absolute.
const POSTGRES_TARGET_RATIO: f64 = 0.25;
const POSTGRES_TARGET_QUIET: f64 = 75_000.0;
/// Postgres, whatever the load (the report says which it was).
const POSTGRES_TARGET_FLOOR: f64 = 50_000.0;
/// SQLite, the embedded default.
const SQLITE_TARGET: f64 = 30_000.0;

/// What every store's phases share: the decoded events and the cluster
/// holding their messages.
pub struct Shared<'a> {
    pub args: &'a IngestArgs,
    pub events: &'a [SagaEvent],
    pub total_messages: u64,
    pub kafka: &'a MockKafka,
}

/// Steps 3–5 on one store, its figures into `report`. Returns how long
/// the consumer-group join took, for the notes.
pub async fn measure(
    shared: &Shared<'_>,
    target: &Target,
    store: &Store,
    report: &mut Report,
) -> anyhow::Result<String> {
    let name = target.backend.name();
    let events = shared.events;
    let batch_size = shared.args.batch_size.max(1);
    println!(
        "{name}: {} ({})",
        sagascope_store::redact_url(&target.url),
        load_average::now_text()
    );

    // 3. The raw baseline of the same rows.
    let (raw, raw_name): (RawRate, &str) = match target.backend {
        Backend::Postgres => {
            let mut pg = pg_connect(&target.url).await?;
            (copy_rate::measure(&mut pg, events).await?, "raw COPY")
        }
        Backend::Sqlite => (
            sqlite_insert_rate::measure(&target.url, events).await?,
            "raw INSERT",
        ),
    };
    let raw_load = LoadAverage::now();
    println!(
        "{name} {raw_name}: {} rows ({:.0} MB) at {} (load {})",
        group_digits(raw.rows),
        raw.bytes as f64 / 1e6,
        rate_text(raw.rows, raw.elapsed),
        load_average::text(raw_load)
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
    let store_cpu = cpu.text(target.backend);
    let store_load = LoadAverage::now();
    drop(batches);
    let store_stored = count_rows(store, "events").await? as u64;
    println!(
        "{name} store only: {} events at {} (load {})",
        group_digits(store_stored),
        rate_text(store_stored, store_elapsed),
        load_average::text(store_load)
    );
    reset_tables(store).await?;

    // 5. The real path: Kafka → Ingestor → store.
    let ingest = ingest_all(shared, target.backend, store).await?;
    let ingest_load = LoadAverage::now();
    let in_store = count_rows(store, "events").await? as u64;
    let errors = count_rows(store, "ingest_errors").await? as u64;
    let sagas = count_rows(store, "sagas").await? as u64;
    let sustained = per_second(ingest.sustained_events, ingest.sustained);
    let raw_rate = per_second(raw.rows, raw.elapsed);
    let ratio = sustained / raw_rate.max(1e-9);
    println!(
        "{name} ingest: {} events sustained at {} = {ratio:.2} × {raw_name} (load {})",
        group_digits(ingest.sustained_events),
        rate_text(ingest.sustained_events, ingest.sustained),
        load_average::text(ingest_load)
    );

    let sustained_text = rate_text(ingest.sustained_events, ingest.sustained);
    let ratio_name = format!("{name}: ingest ÷ {raw_name}");
    match target.backend {
        Backend::Postgres => {
            report
                .check(
                    ratio_name,
                    format!("{ratio:.2}"),
                    format!("≥ {POSTGRES_TARGET_RATIO}"),
                    ratio >= POSTGRES_TARGET_RATIO,
                )
                .under(ingest_load);
            report
                .check(
                    format!("{name}: ingest sustained, quiet machine"),
                    sustained_text.clone(),
                    format!("≥ {}/s", group_digits(POSTGRES_TARGET_QUIET as u64)),
                    sustained >= POSTGRES_TARGET_QUIET,
                )
                .under(ingest_load);
            report
                .check(
                    format!("{name}: ingest sustained, any load"),
                    sustained_text,
                    format!("≥ {}/s", group_digits(POSTGRES_TARGET_FLOOR as u64)),
                    sustained >= POSTGRES_TARGET_FLOOR,
                )
                .under(ingest_load);
        }
        Backend::Sqlite => {
            report
                .info(ratio_name, format!("{ratio:.2}"))
                .under(ingest_load);
            report
                .check(
                    format!("{name}: ingest sustained"),
                    sustained_text,
                    format!("≥ {}/s", group_digits(SQLITE_TARGET as u64)),
                    sustained >= SQLITE_TARGET,
                )
                .under(ingest_load);
        }
    }
    report
        .info(
            format!("{name}: {raw_name}, same rows (rows/s)"),
            rate_text(raw.rows, raw.elapsed),
        )
        .under(raw_load);
    report
        .info(
            format!("{name}: store only, write_batch (events/s)"),
            rate_text(store_stored, store_elapsed),
        )
        .under(store_load);
    report.info(
        format!("{name}: ingest from start incl. group join"),
        rate_text(ingest.events, ingest.total),
    );
    report.info(format!("{name}: CPU cores, ingest sustained"), ingest.cpu);
    report.info(format!("{name}: CPU cores, store only"), store_cpu);
    report.info(
        format!("{name}: events stored / expected"),
        format!(
            "{} / {}",
            group_digits(in_store),
            group_digits(events.len() as u64)
        ),
    );
    report.info(
        format!("{name}: sagas and streams / ingest errors / batches"),
        format!(
            "{} / {} / {}",
            group_digits(sagas),
            group_digits(errors),
            group_digits(ingest.batches)
        ),
    );
    if in_store != events.len() as u64 {
        report.note(format!(
            "MISMATCH ({name}): the store does not hold exactly the decoded events"
        ));
    }
    Ok(format!("{:.1} s on {name}", ingest.join.as_secs_f64()))
}

/// What the real ingest of the produced traffic measured.
struct IngestRun {
    /// Events stored, all and after the first committed batch.
    events: u64,
    sustained_events: u64,
    /// From the start, and from the first committed batch, to the last.
    total: Duration,
    sustained: Duration,
    /// Start → first committed batch: the consumer group's join.
    join: Duration,
    batches: u64,
    cpu: String,
}

/// Runs an `Ingestor` (a consumer group of its own) over every produced
/// message into `store`.
async fn ingest_all(
    shared: &Shared<'_>,
    backend: Backend,
    store: &Store,
) -> anyhow::Result<IngestRun> {
    let mut config = IngestConfig::new(
        shared.kafka.bootstrap_servers(),
        ALL_TOPICS.iter().map(|t| t.to_string()).collect(),
        format!("sagascope-bench-{}-{}", std::process::id(), backend.name()),
    );
    config.batch_size = shared.args.batch_size.max(1);
    config.batch_linger = Duration::from_millis(shared.args.batch_linger_ms);
    config.session_timeout = Duration::from_secs(6);
    let (live, _) = broadcast::channel(4096);
    let decoder = Decoder::new(Rules::parse(DEMO_RULES)?);
    let ingestor = Ingestor::new(config, store.clone(), decoder, live)?;
    let status = ingestor.status();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let total_messages = shared.total_messages;
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
                "{} ingest: {}/{} messages, {} events stored ({})",
                backend.name(),
                group_digits(done),
                group_digits(total_messages),
                group_digits(stored_events),
                load_average::now_text()
            );
        }
    }
    let ended = Instant::now();
    let cpu = cpu.text(backend);
    let events = status.events.load(Ordering::Relaxed);
    let batches = status.batches.load(Ordering::Relaxed);
    let _ = shutdown.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    let (first_at, events_before) = first_batch.unwrap_or((started, 0));
    Ok(IngestRun {
        events,
        sustained_events: events.saturating_sub(events_before),
        total: ended - started,
        sustained: ended - first_at,
        join: first_at - started,
        batches,
        cpu,
    })
}
