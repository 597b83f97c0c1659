//! `sagascope bench load`: a large dataset, quickly, for the API figures.
//! Orchestrated sagas are generated as the saga-state decoder would emit
//! their events (status, step, context ids as business keys, trace context,
//! Kafka coordinates, publish and ingest delays), placed by the decoder's
//! own correlation (`Decoder::interpret`), and written through
//! `Store::write_batch` in large batches by several writers on disjoint
//! sagas, so sagas, search keys and rollups are exactly what the ingest
//! makes of such events. Start times are spread over the last `--hours`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sagascope_domain::{Decoder, KafkaCoords, SagaEvent};
use sagascope_model::{Header, Phase};
use sagascope_store::{Backend, IngestBatch, Store};
use serde_json::json;
use tokio::sync::{mpsc, Mutex};

use super::{
    count_rows, group_digits, open_store, per_second, pg_connect, rate_text, require_postgres,
    reset_tables, CpuMeter, Report,
};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// postgres://… to load into (added to what it holds, unless --reset).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Events in total.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Sagas in total; each gets events / sagas events (± 1).
    #[arg(long, default_value_t = 1_000_000)]
    pub sagas: u64,
    /// Saga start times are spread over this many hours before now.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Events per `write_batch` call (whole sagas).
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: usize,
    /// Concurrent writers (each batch holds sagas no other batch touches).
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Empty every sagascope table of the database first.
    #[arg(long)]
    pub reset: bool,
    /// Seed of the generated sagas.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

struct Shape {
    saga_type: &'static str,
    steps: &'static [&'static str],
}

const SHAPES: [Shape; 4] = [
    Shape {
        saga_type: "order",
        steps: &["ReserveStock", "AuthorizePayment", "ShipOrder", "Complete"],
    },
    Shape {
        saga_type: "chat_message",
        steps: &["StoreMessage", "ModerateContent", "DeliverMessage"],
    },
    Shape {
        saga_type: "payment",
        steps: &["ValidateCard", "ChargeCard", "IssueReceipt"],
    },
    Shape {
        saga_type: "shipment",
        steps: &["AllocateParcel", "BookCarrier", "NotifyCustomer", "Deliver"],
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    Compensated,
    CompensationFailed,
    TimedOut,
    Running,
}

impl Outcome {
    /// Mostly successes, as in production.
    fn random(rng: &mut StdRng) -> Outcome {
        match rng.random_range(0..100) {
            0..80 => Outcome::Completed,
            80..86 => Outcome::Failed,
            86..92 => Outcome::Compensated,
            92..94 => Outcome::CompensationFailed,
            94..96 => Outcome::TimedOut,
            _ => Outcome::Running,
        }
    }
}

/// One event of a generated saga: its saga-state status and step.
type Beat = (&'static str, Option<&'static str>);

fn status_phase(status: &str) -> Phase {
    match status {
        "STARTED" => Phase::SagaStarted,
        "RUNNING" => Phase::StepStarted,
        "STEP_COMPLETED" => Phase::StepSucceeded,
        "STEP_FAILED" => Phase::StepFailed,
        "COMPENSATING_STEP" => Phase::CompensationStarted,
        "STEP_COMPENSATED" => Phase::StepCompensated,
        "COMPENSATION_FAILED" => Phase::CompensationFailed,
        "COMPENSATED" => Phase::SagaCompensated,
        "COMPLETED" => Phase::SagaCompleted,
        "FAILED" => Phase::SagaFailed,
        "TIMED_OUT" => Phase::SagaTimedOut,
        _ => Phase::Event,
    }
}

/// Exactly `count` (≥ 1) transitions of a saga that ends as `outcome`:
/// started, steps run and succeed in turn, then the ending (as much of it
/// as fits).
fn beats(shape: &Shape, outcome: Outcome, count: usize) -> Vec<Beat> {
    let steps = shape.steps;
    let failing = steps[1 % steps.len()];
    let undone = steps[0];
    let ending: Vec<Beat> = match outcome {
        Outcome::Completed => vec![("COMPLETED", None)],
        Outcome::Failed => vec![
            ("RUNNING", Some(failing)),
            ("STEP_FAILED", Some(failing)),
            ("FAILED", None),
        ],
        Outcome::Compensated => vec![
            ("RUNNING", Some(failing)),
            ("STEP_FAILED", Some(failing)),
            ("COMPENSATING_STEP", Some(undone)),
            ("STEP_COMPENSATED", Some(undone)),
            ("COMPENSATED", None),
        ],
        Outcome::CompensationFailed => vec![
            ("RUNNING", Some(failing)),
            ("STEP_FAILED", Some(failing)),
            ("COMPENSATING_STEP", Some(undone)),
            ("COMPENSATION_FAILED", Some(undone)),
        ],
        Outcome::TimedOut => vec![("RUNNING", Some(failing)), ("TIMED_OUT", None)],
        Outcome::Running => vec![],
    };
    let mut out: Vec<Beat> = Vec::with_capacity(count);
    out.push(("STARTED", None));
    let middle = count.saturating_sub(1 + ending.len());
    for i in 0..middle {
        let step = steps[(i / 2) % steps.len()];
        out.push(if i % 2 == 0 {
            ("RUNNING", Some(step))
        } else {
            ("STEP_COMPLETED", Some(step))
        });
    }
    let room = count.saturating_sub(out.len());
    // When the saga is short, keep the end of the ending (its outcome).
    out.extend(ending[ending.len().saturating_sub(room)..].iter().copied());
    out.truncate(count.max(1));
    out
}

fn hex(rng: &mut StdRng, bytes: usize) -> String {
    let value: u128 = rng.random();
    let text = format!("{value:032x}");
    text[..bytes * 2].to_string()
}

/// Generates sagas `from..to` (global numbering) into batches of about
/// `batch_size` events, each saga whole in one batch.
struct Generator {
    rng: StdRng,
    decoder: Decoder,
    nonce: String,
    now: DateTime<Utc>,
    window_ms: i64,
    events_per_saga: u64,
    extra_events: u64,
    offsets: [i64; 3],
}

impl Generator {
    fn saga_events(&mut self, index: u64, out: &mut Vec<SagaEvent>) {
        let count = self.events_per_saga + u64::from(index < self.extra_events);
        let count = usize::try_from(count.max(1)).unwrap_or(usize::MAX);
        let shape = &SHAPES[(index % SHAPES.len() as u64) as usize];
        let outcome = Outcome::random(&mut self.rng);
        let saga_id = format!("ld{}-{index:08}", self.nonce);
        let trace_id = hex(&mut self.rng, 16);
        let order_id = format!("ord-{}", hex(&mut self.rng, 6));
        let customer_id = format!("cus-{:06}", self.rng.random_range(0..200_000));
        let amount = self.rng.random_range(500..50_000);
        let mut business_keys = vec![customer_id.clone(), order_id.clone()];
        business_keys.sort();
        let request_id = format!("req-{}", &trace_id[..12]);
        let mut at = self.now
            - chrono::Duration::milliseconds(self.rng.random_range(120_000..self.window_ms));
        let partition = (index % 3) as usize;
        for (i, (status, step)) in beats(shape, outcome, count).into_iter().enumerate() {
            // Mostly quick transitions, sometimes a slow step.
            let gap = if self.rng.random_range(0..50) == 0 {
                self.rng.random_range(2_000..20_000)
            } else {
                self.rng.random_range(40..400)
            };
            at += chrono::Duration::milliseconds(gap);
            let published = at + chrono::Duration::milliseconds(self.rng.random_range(2..40));
            let ingested =
                published + chrono::Duration::milliseconds(self.rng.random_range(5..250));
            let phase = status_phase(status);
            let error = phase
                .is_failure()
                .then(|| format!("{} failed: upstream answered 503", step.unwrap_or("saga")));
            let span_id = hex(&mut self.rng, 8);
            let mut payload = json!({
                "saga_type": shape.saga_type,
                "saga_id": saga_id,
                "status": status,
                "context_data": {
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "amount_cents": amount,
                    "currency": "EUR",
                },
                "timestamp": at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            });
            if let Some(step) = step {
                payload["step"] = json!(step);
            }
            if let Some(error) = &error {
                payload["error"] = json!(error);
            }
            let offset = self.offsets[partition];
            self.offsets[partition] += 1;
            let event = SagaEvent {
                event_id: format!("{saga_id}-{i}"),
                saga_id: saga_id.clone(),
                explicit_saga_id: Some(saga_id.clone()),
                rule_classified: false,
                correlation_rank: 0,
                correlation_keys: Vec::new(),
                saga_type: Some(shape.saga_type.to_string()),
                step: step.map(str::to_string),
                phase,
                event_type: status.to_string(),
                trace_id: Some(trace_id.clone()),
                span_id: Some(span_id.clone()),
                request_id: Some(request_id.clone()),
                business_keys: business_keys.clone(),
                occurred_at: at,
                published_at: Some(published),
                ingested_at: ingested,
                source_type: None,
                source_id: None,
                coords: KafkaCoords {
                    topic: "saga.state".into(),
                    partition: partition as i32,
                    offset,
                },
                headers: vec![
                    Header {
                        key: "traceparent".into(),
                        value: format!("00-{trace_id}-{span_id}-01"),
                    },
                    Header {
                        key: "request_id".into(),
                        value: request_id.clone(),
                    },
                ],
                payload,
                error,
            };
            out.push(self.decoder.interpret(event));
        }
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    require_postgres(&args.database_url, "load")?;
    anyhow::ensure!(args.sagas > 0, "--sagas must be at least 1");
    anyhow::ensure!(
        args.events >= args.sagas,
        "--events must be at least --sagas (every saga has an event)"
    );
    let store = open_store(&args.database_url).await?;
    let mut pg = pg_connect(&args.database_url).await?;
    if args.reset {
        reset_tables(&store).await?;
    }
    let events_before = count_rows(&store, "events").await? as u64;

    let writers = args.writers.max(1);
    let (tx, rx) = mpsc::channel::<(IngestBatch, u64)>(writers * 2);
    let mut seed_rng = StdRng::seed_from_u64(args.seed);
    let nonce = format!(
        "{:04x}",
        seed_rng.random::<u16>() ^ (std::process::id() as u16)
    );
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(seed_rng.random()),
        decoder: Decoder::default(),
        nonce,
        now: Utc::now(),
        window_ms: i64::from(args.hours.max(1)) * 3_600_000,
        events_per_saga: args.events / args.sagas,
        extra_events: args.events % args.sagas,
        offsets: [0; 3],
    };
    let batch_size = args.batch_size.max(1);
    let total_sagas = args.sagas;
    let generate = std::thread::Builder::new()
        .name("bench-load-generator".into())
        .spawn(move || {
            let mut events = Vec::with_capacity(batch_size + 64);
            let mut sagas = 0u64;
            for index in 0..total_sagas {
                generator.saga_events(index, &mut events);
                sagas += 1;
                if events.len() >= batch_size || index + 1 == total_sagas {
                    let batch = IngestBatch {
                        group_id: "sagascope-bench-load".into(),
                        events: std::mem::replace(&mut events, Vec::with_capacity(batch_size + 64)),
                        ..Default::default()
                    };
                    if tx.blocking_send((batch, sagas)).is_err() {
                        return;
                    }
                    sagas = 0;
                }
            }
        })
        .context("cannot start the generator thread")?;

    let done_events = Arc::new(AtomicU64::new(0));
    let done_sagas = Arc::new(AtomicU64::new(0));
    let rx = Arc::new(Mutex::new(rx));
    let started = Instant::now();
    let cpu = CpuMeter::start();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let rx = rx.clone();
        let store = store.clone();
        let done_events = done_events.clone();
        let done_sagas = done_sagas.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some((batch, sagas)) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                write_with_retry(&store, &batch).await?;
                done_events.fetch_add(batch.events.len() as u64, Ordering::Relaxed);
                done_sagas.fetch_add(sagas, Ordering::Relaxed);
            }
        }));
    }
    let progress = {
        let done_events = done_events.clone();
        let done_sagas = done_sagas.clone();
        let total = args.events;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let events = done_events.load(Ordering::Relaxed);
                let elapsed = started.elapsed();
                let rate = per_second(events, elapsed);
                let eta = (total.saturating_sub(events)) as f64 / rate.max(1.0);
                println!(
                    "loaded {}/{} events ({:.1}%), {} sagas, {} events/s, ~{:.0} s to go",
                    group_digits(events),
                    group_digits(total),
                    events as f64 * 100.0 / total as f64,
                    group_digits(done_sagas.load(Ordering::Relaxed)),
                    group_digits(rate.round() as u64),
                    eta
                );
            }
        })
    };
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(join) => failure = failure.or(Some(anyhow::anyhow!("writer panicked: {join}"))),
        }
    }
    progress.abort();
    if let Some(error) = failure {
        return Err(error.context("loading failed"));
    }
    let _ = generate.join();
    let elapsed = started.elapsed();
    let cpu_text = cpu.text(Backend::Postgres);
    let loaded = done_events.load(Ordering::Relaxed);

    println!("analyzing the tables …");
    let analyze_started = Instant::now();
    sqlx::query("ANALYZE").execute(&mut pg).await?;
    let analyze_elapsed = analyze_started.elapsed();
    let events_after = count_rows(&store, "events").await? as u64;
    let sagas_after = count_rows(&store, "sagas").await? as u64;
    store.close().await;

    let mut report = Report::default();
    report.info("events written", group_digits(loaded));
    report.info(
        "sagas written",
        group_digits(done_sagas.load(Ordering::Relaxed)),
    );
    report.info("load time", format!("{:.1} s", elapsed.as_secs_f64()));
    report.info("load rate (events/s)", rate_text(loaded, elapsed));
    report.info(
        "load rate (sagas/s)",
        rate_text(done_sagas.load(Ordering::Relaxed), elapsed),
    );
    report.info("CPU cores while loading", cpu_text);
    report.info(
        "ANALYZE afterwards",
        format!("{:.1} s", analyze_elapsed.as_secs_f64()),
    );
    report.info(
        "events in the database",
        format!(
            "{} (+{})",
            group_digits(events_after),
            group_digits(events_after.saturating_sub(events_before))
        ),
    );
    report.info(
        "sagas and streams in the database",
        group_digits(sagas_after),
    );
    report.note(format!(
        "{} writers, batches of ~{} events, start times over the last {} h",
        writers, batch_size, args.hours
    ));
    report.print("sagascope bench load");
    Ok(())
}

/// A batch is one transaction: a failed one (deadlock, serialization) is
/// rolled back whole and can simply be written again.
async fn write_with_retry(store: &Store, batch: &IngestBatch) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match store.write_batch(batch).await {
            Ok(_) => return Ok(()),
            Err(error) if attempt < 5 => {
                attempt += 1;
                eprintln!("write failed (attempt {attempt}), retrying: {error}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => return Err(error).context("write_batch failed 6 times"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_have_the_asked_length_and_end_with_the_outcome() {
        let shape = &SHAPES[0];
        for count in 1..14 {
            for outcome in [
                Outcome::Completed,
                Outcome::Failed,
                Outcome::Compensated,
                Outcome::CompensationFailed,
                Outcome::TimedOut,
                Outcome::Running,
            ] {
                let beats = beats(shape, outcome, count);
                assert_eq!(beats.len(), count, "{outcome:?} {count}");
                assert_eq!(beats[0].0, "STARTED");
                if count >= 6 {
                    let last = beats.last().unwrap().0;
                    let expected = match outcome {
                        Outcome::Completed => "COMPLETED",
                        Outcome::Failed => "FAILED",
                        Outcome::Compensated => "COMPENSATED",
                        Outcome::CompensationFailed => "COMPENSATION_FAILED",
                        Outcome::TimedOut => "TIMED_OUT",
                        Outcome::Running => continue,
                    };
                    assert_eq!(last, expected, "{outcome:?} {count}");
                }
            }
        }
    }

    #[test]
    fn generated_events_are_placed_like_decoded_ones() {
        let mut generator = Generator {
            rng: StdRng::seed_from_u64(1),
            decoder: Decoder::default(),
            nonce: "t".into(),
            now: Utc::now(),
            window_ms: 3_600_000,
            events_per_saga: 10,
            extra_events: 0,
            offsets: [0; 3],
        };
        let mut events = Vec::new();
        generator.saga_events(0, &mut events);
        generator.saga_events(1, &mut events);
        assert_eq!(events.len(), 20);
        assert_eq!(events[0].saga_id, "ldt-00000000");
        assert_eq!(events[0].correlation_keys, vec!["saga:ldt-00000000"]);
        assert_eq!(events[10].event_id, "ldt-00000001-0");
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), 20);
        assert!(events
            .windows(2)
            .take(9)
            .all(|w| w[0].occurred_at < w[1].occurred_at));
    }
}
