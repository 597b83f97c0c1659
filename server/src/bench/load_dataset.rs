//! `sagascope bench load`: a large dataset, quickly, for the API figures.
//! Orchestrated sagas are generated as the saga-state decoder would emit
//! their events (status, step, context ids as business keys, trace context,
//! Kafka coordinates, publish and ingest delays) and placed by the
//! decoder's own correlation (`Decoder::interpret`); about one saga in ten
//! (`--dead-letter-share`) has a Spring dead letter of its failing event,
//! and a share of the traces (`--span-share`) has the services' spans.
//! Start times are spread evenly over the last `--hours`, in saga order.
//!
//! The sagas go through the store's benchmark loader by default
//! (`BulkLoader`: `COPY` of events and keys, the ingest's own code for
//! sagas, rollups and dead-letter links), or through `Store::write_batch`
//! with `--through write-batch`; both store the same rows (a test loads
//! the same sagas both ways and compares every table). Dead letters go
//! through the ingest's batch write after their sagas (so they are linked
//! as real ones are), spans through `Store::insert_spans`. Each writer has
//! its own generator thread and a contiguous range of the sagas.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sagascope_domain::{
    decode_dead_letter, micros, DeadLetter, Decoder, GenericDeadLetterFields, KafkaCoords,
    RawMessage, SagaEvent,
};
use sagascope_model::{
    Header, Phase, SpanAttribute, SpanEventView, SpanKind, SpanStatus, SpanView,
};
use sagascope_store::{Backend, BulkLoader, IngestBatch, Store};
use serde_json::json;
use tokio::sync::mpsc;

use super::load_average::{self, LoadAverage};
use super::{
    count_rows, group_digits, open_store, per_second, rate_text, reset_tables, CpuMeter, Report,
};

/// The issue's target: 10 M events in at most 5 minutes, end to end.
const TARGET_EVENTS_PER_SECOND: f64 = 10_000_000.0 / 300.0;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// postgres://… to load into (added to what it holds, unless --reset);
    /// sqlite://… with --through write-batch.
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
    /// Events per write (whole sagas): one `BulkLoader::load_sagas` or
    /// `write_batch` call.
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: usize,
    /// Concurrent writers, each with its own generator thread and range of
    /// sagas.
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// How the sagas' events are written: `bulk` (the store's benchmark
    /// loader: COPY + the ingest's saga, rollup and link code) or
    /// `write-batch` (the ingest's batch write; slower).
    #[arg(long, value_enum, default_value_t = Through::Bulk)]
    pub through: Through,
    /// Dead letters per saga (0.1: 100,000 at the default size), from
    /// failed sagas first; each is a Spring DLT copy of a saga's failing
    /// event, linked to its saga.
    #[arg(long, default_value_t = 0.1)]
    pub dead_letter_share: f64,
    /// Share of the sagas whose trace has spans (a root span and up to four
    /// service spans, one per event they produced).
    #[arg(long, default_value_t = 0.1)]
    pub span_share: f64,
    /// Empty every sagascope table of the database first.
    #[arg(long)]
    pub reset: bool,
    /// Seed of the generated sagas.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the indexes of events, sagas and keys during a bulk load into
    /// an empty database, instead of building them once at the end (the
    /// default there, as `pg_restore` does: the plain indexes, and the
    /// primary keys of the tables only COPY writes; into a non-empty
    /// database every index is kept).
    #[arg(long)]
    pub keep_indexes: bool,
}

/// The write path of the sagas' events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Through {
    Bulk,
    WriteBatch,
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

/// What a failing consumer threw, as Spring writes it to the DLT: a few
/// kinds, so the DLQ has several failure groups.
const EXCEPTIONS: [(&str, &str); 4] = [
    (
        "java.net.SocketTimeoutException",
        "Read timed out after 30000 ms",
    ),
    (
        "org.springframework.dao.DataIntegrityViolationException",
        "duplicate key value violates unique constraint \"payments_pkey\"",
    ),
    (
        "com.fasterxml.jackson.databind.exc.MismatchedInputException",
        "Cannot deserialize value of type `java.math.BigDecimal` from String \"n/a\"",
    ),
    (
        "java.lang.IllegalStateException",
        "Insufficient stock for the reserved items",
    ),
];

/// Sagas whose outcome involves a failed step or a timeout: the ones a
/// consumer dead-letters first.
const FAILING_SHARE: f64 = 0.16;

/// One writer's share of the generated data: whole sagas, with their dead
/// letters and spans.
#[derive(Debug, Clone, Default)]
struct GeneratedBatch {
    events: Vec<SagaEvent>,
    dead_letters: Vec<DeadLetter>,
    spans: Vec<SpanView>,
    sagas: u64,
}

/// Generates sagas by global number (the same number always gives the
/// same ids and coordinates, whichever writer generates it).
struct Generator {
    rng: StdRng,
    decoder: Decoder,
    nonce: String,
    now: DateTime<Utc>,
    window_ms: i64,
    /// Sagas of the whole run (start times spread over the window by
    /// number).
    total_sagas: u64,
    events_per_saga: u64,
    extra_events: u64,
    dead_letter_share: f64,
    span_share: f64,
    /// The next free offset per (DLQ topic, partition) when the run
    /// started: a second load into the same database adds dead letters
    /// instead of repeating the first one's ids.
    dlq_offsets: HashMap<(String, i32), i64>,
}

impl Generator {
    fn saga_events(&mut self, index: u64, out: &mut GeneratedBatch) {
        let first = out.events.len();
        let count = self.events_per_saga + u64::from(index < self.extra_events);
        let count = usize::try_from(count.max(1)).unwrap_or(usize::MAX);
        let shape = &SHAPES[(index % SHAPES.len() as u64) as usize];
        let outcome = Outcome::random(&mut self.rng);
        let saga_id = format!("ld{}-{index:08}", self.nonce);
        // Sagas start in the order of their numbers, spread evenly over
        // the window (as traffic arrives), so each batch covers a short
        // stretch of time: its rollup buckets are few, and the time-ordered
        // indexes are appended to rather than written all over.
        let span_ms = (self.window_ms - 120_000).max(1);
        let offset_ms = i64::try_from(
            u128::from(index) * span_ms as u128 / u128::from(self.total_sagas.max(1)),
        )
        .unwrap_or(0);
        let mut at = self.now - chrono::Duration::milliseconds(self.window_ms)
            + chrono::Duration::milliseconds(offset_ms + self.rng.random_range(0..1_000));
        // Trace ids lead with the start second (as AWS X-Ray's do), order
        // ids count up: their search keys are appended, like the events'.
        let trace_id = format!("{:08x}{}", at.timestamp() as u32, hex(&mut self.rng, 12));
        let order_id = format!("ord-{}-{index:08}", self.nonce);
        let customer_id = format!("cus-{:06}", self.rng.random_range(0..200_000));
        let amount = self.rng.random_range(500..50_000);
        let mut business_keys = vec![customer_id.clone(), order_id.clone()];
        business_keys.sort();
        let request_id = format!("req-{}", &trace_id[20..]);
        // Offsets by global number: per partition increasing, whichever
        // writer generates the saga.
        let partition = (index % 3) as i32;
        let first_offset = i64::try_from((index / 3) * (self.events_per_saga + 1)).unwrap_or(0);
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
                    partition,
                    offset: first_offset + i as i64,
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
            out.events.push(self.decoder.interpret(event));
        }
        let saga = &out.events[first..];
        let failing = outcome != Outcome::Completed && outcome != Outcome::Running;
        // From failed sagas first, the rest (if the share is larger) from
        // the others: `dead_letter_share` per saga on average.
        let chance = if failing {
            (self.dead_letter_share / FAILING_SHARE).min(1.0)
        } else {
            ((self.dead_letter_share - FAILING_SHARE) / (1.0 - FAILING_SHARE)).max(0.0)
        };
        if self.rng.random_bool(chance.clamp(0.0, 1.0)) {
            let letter = self.dead_letter(index, shape.saga_type, saga);
            out.dead_letters.push(letter);
        }
        if self.rng.random_bool(self.span_share.clamp(0.0, 1.0)) {
            let spans = self.spans(shape.saga_type, saga);
            out.spans.extend(spans);
        }
        out.sagas += 1;
    }

    /// The Spring DLT copy of the saga's failing event (its last event when
    /// none failed), dead-lettered 1–30 s after it by the saga type's
    /// service.
    fn dead_letter(&mut self, index: u64, saga_type: &str, saga: &[SagaEvent]) -> DeadLetter {
        let failed = saga
            .iter()
            .find(|e| e.phase.is_failure())
            .or(saga.last())
            .expect("a saga has events");
        let (class, message) = EXCEPTIONS[self.rng.random_range(0..EXCEPTIONS.len())];
        let group = format!("{saga_type}-service");
        let topic = format!("saga.state.{group}.DLT");
        let partition = (index % 3) as i32;
        let offset = self
            .dlq_offsets
            .get(&(topic.clone(), partition))
            .copied()
            .unwrap_or(0)
            + i64::try_from(index / 3).unwrap_or(0);
        let original_ms = failed
            .published_at
            .unwrap_or(failed.occurred_at)
            .timestamp_millis();
        let failed_at = failed.ingested_at
            + chrono::Duration::milliseconds(self.rng.random_range(1_000..30_000));
        let mut headers: Vec<(String, Option<Vec<u8>>)> = failed
            .headers
            .iter()
            .map(|h| (h.key.clone(), Some(h.value.clone().into_bytes())))
            .collect();
        let mut add = |name: &str, value: Vec<u8>| headers.push((name.to_string(), Some(value)));
        add(
            "kafka_dlt-original-topic",
            failed.coords.topic.clone().into_bytes(),
        );
        add(
            "kafka_dlt-original-partition",
            failed.coords.partition.to_be_bytes().to_vec(),
        );
        add(
            "kafka_dlt-original-offset",
            failed.coords.offset.to_be_bytes().to_vec(),
        );
        add(
            "kafka_dlt-original-timestamp",
            original_ms.to_be_bytes().to_vec(),
        );
        add("kafka_dlt-original-timestamp-type", b"CreateTime".to_vec());
        add("kafka_dlt-original-consumer-group", group.into_bytes());
        add("kafka_dlt-exception-fqcn", class.as_bytes().to_vec());
        add("kafka_dlt-exception-message", message.as_bytes().to_vec());
        add(
            "kafka_dlt-exception-stacktrace",
            format!(
                "{class}: {message}\n\tat com.shop.{saga_type}.Listener.on(Listener.java:42)\n\tat org.springframework.kafka.listener.KafkaMessageListenerContainer.doInvokeRecordListener(KafkaMessageListenerContainer.java:2919)"
            )
            .into_bytes(),
        );
        let raw = RawMessage {
            coords: KafkaCoords {
                topic,
                partition,
                offset,
            },
            key: failed.explicit_saga_id.clone().map(String::into_bytes),
            value: Some(failed.payload.to_string().into_bytes()),
            headers,
            timestamp: Some(failed_at),
        };
        decode_dead_letter(&raw, &GenericDeadLetterFields::default())
    }

    /// The saga's trace as the services export it: a root span over the
    /// whole saga and a consumer span per event of the first four (the span
    /// each event names), failing where the event failed.
    fn spans(&mut self, saga_type: &str, saga: &[SagaEvent]) -> Vec<SpanView> {
        let (Some(first), Some(last)) = (saga.first(), saga.last()) else {
            return Vec::new();
        };
        let Some(trace_id) = first.trace_id.clone() else {
            return Vec::new();
        };
        let root_id = hex(&mut self.rng, 8);
        let start = first.occurred_at - chrono::Duration::milliseconds(5);
        let end = last.ingested_at;
        let mut spans = vec![SpanView {
            trace_id: trace_id.clone(),
            span_id: root_id.clone(),
            parent_span_id: None,
            name: format!("{saga_type} saga"),
            service: format!("{saga_type}-orchestrator"),
            kind: SpanKind::Internal,
            start,
            end,
            duration_us: (micros(end) - micros(start)).max(0),
            status: SpanStatus::Unset,
            status_message: None,
            attributes: vec![SpanAttribute {
                key: "saga.id".into(),
                value: first.saga_id.clone(),
            }],
            events: Vec::new(),
        }];
        for event in saga.iter().take(4) {
            let start = event.occurred_at;
            let end = start + chrono::Duration::milliseconds(self.rng.random_range(3..60));
            let failed = event.phase.is_failure();
            spans.push(SpanView {
                trace_id: trace_id.clone(),
                span_id: event
                    .span_id
                    .clone()
                    .unwrap_or_else(|| hex(&mut self.rng, 8)),
                parent_span_id: Some(root_id.clone()),
                name: format!("{} process", event.step.as_deref().unwrap_or("saga")),
                service: format!("{saga_type}-service"),
                kind: SpanKind::Consumer,
                start,
                end,
                duration_us: (micros(end) - micros(start)).max(0),
                status: if failed {
                    SpanStatus::Error
                } else {
                    SpanStatus::Ok
                },
                status_message: event.error.clone(),
                attributes: vec![
                    SpanAttribute {
                        key: "messaging.destination.name".into(),
                        value: event.coords.topic.clone(),
                    },
                    SpanAttribute {
                        key: "messaging.kafka.offset".into(),
                        value: event.coords.offset.to_string(),
                    },
                ],
                events: if failed {
                    vec![SpanEventView {
                        name: "exception".into(),
                        at: end,
                        attributes: vec![SpanAttribute {
                            key: "exception.message".into(),
                            value: event.error.clone().unwrap_or_default(),
                        }],
                    }]
                } else {
                    Vec::new()
                },
            });
        }
        spans
    }

    /// Sagas `range` in batches of about `batch_size` events, each saga
    /// whole in one batch, handed to `send` until it refuses.
    fn generate(
        &mut self,
        range: std::ops::Range<u64>,
        batch_size: usize,
        mut send: impl FnMut(GeneratedBatch) -> bool,
    ) {
        let mut batch = GeneratedBatch::default();
        for index in range.clone() {
            self.saga_events(index, &mut batch);
            let full = batch.events.len() >= batch_size || index + 1 == range.end;
            if full && !send(std::mem::take(&mut batch)) {
                return;
            }
        }
    }
}

/// Where one writer writes: the store, and the bulk loader unless the
/// sagas go through `write_batch`.
#[derive(Clone)]
struct Sink {
    store: Store,
    bulk: Option<BulkLoader>,
    /// Set while the keys of `correlation_keys` and `saga_keys` are
    /// deferred: the dead letters wait here and are written after the keys
    /// are rebuilt. Linking a dead letter looks its saga up in those two
    /// tables, and without their keys every lookup is a sequential scan of
    /// everything loaded so far (a load that slows as it grows).
    held_dead_letters: Option<Arc<std::sync::Mutex<Vec<DeadLetter>>>>,
}

impl Sink {
    /// Writes a batch: the sagas' events, then their dead letters through
    /// the ingest's batch write (after the sagas, so they are linked; or
    /// held for later, see `held_dead_letters`), then the spans.
    async fn write(&self, batch: &GeneratedBatch) -> anyhow::Result<()> {
        match &self.bulk {
            Some(bulk) => {
                retry("bulk load", || async {
                    bulk.load_sagas(&batch.events).await.map(|_| ())
                })
                .await?
            }
            None => {
                let events = IngestBatch {
                    group_id: GROUP_ID.into(),
                    events: batch.events.clone(),
                    ..Default::default()
                };
                retry("write_batch", || async {
                    self.store.write_batch(&events).await.map(|_| ())
                })
                .await?
            }
        }
        if let Some(held) = &self.held_dead_letters {
            held.lock()
                .expect("held dead letters")
                .extend(batch.dead_letters.iter().cloned());
        } else {
            self.write_dead_letters(&batch.dead_letters).await?;
        }
        if !batch.spans.is_empty() {
            retry("insert_spans", || async {
                self.store.insert_spans(&batch.spans).await.map(|_| ())
            })
            .await?;
        }
        Ok(())
    }

    /// Dead letters through the ingest's batch write, which links each to
    /// its saga.
    async fn write_dead_letters(&self, dead_letters: &[DeadLetter]) -> anyhow::Result<()> {
        for chunk in dead_letters.chunks(DEAD_LETTER_BATCH) {
            let letters = IngestBatch {
                group_id: GROUP_ID.into(),
                dead_letters: chunk.to_vec(),
                ..Default::default()
            };
            retry("write_batch (dead letters)", || async {
                self.store.write_batch(&letters).await.map(|_| ())
            })
            .await?;
        }
        Ok(())
    }
}

const GROUP_ID: &str = "sagascope-bench-load";

/// Dead letters per `write_batch` when they are written after the load.
const DEAD_LETTER_BATCH: usize = 2_000;

/// A write is one transaction (two for the bulk loader, the first
/// committed only if the second can be): a failed one (deadlock,
/// serialization) is rolled back whole and can simply be written again.
async fn retry<F, Fut>(what: &str, mut write: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sagascope_store::Result<()>>,
{
    let mut attempt = 0;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            // Sagas already stored: writing them again cannot succeed.
            Err(error) if refused(&error) => {
                return Err(error).with_context(|| format!("{what} refused"))
            }
            Err(error) if attempt < 5 => {
                attempt += 1;
                eprintln!("{what} failed (attempt {attempt}), retrying: {error}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => return Err(error).with_context(|| format!("{what} failed 6 times")),
        }
    }
}

/// The bulk loader's refusals: its own checks, and a unique index that
/// found a row already stored.
fn refused(error: &sagascope_store::StoreError) -> bool {
    match error {
        sagascope_store::StoreError::BulkLoad(_) => true,
        sagascope_store::StoreError::Database(sqlx::Error::Database(db)) => {
            db.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

/// The next free offset of every DLQ partition that holds dead letters.
async fn stored_dlq_offsets(store: &Store) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT dlq_topic, dlq_partition, MAX(dlq_offset) + 1 FROM dead_letters GROUP BY dlq_topic, dlq_partition",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, next)| ((topic, i32::try_from(partition).unwrap_or(0)), next))
        .collect())
}

/// Totals across the writers.
#[derive(Default)]
struct Done {
    events: AtomicU64,
    sagas: AtomicU64,
    dead_letters: AtomicU64,
    spans: AtomicU64,
}

impl Done {
    fn add(&self, batch: &GeneratedBatch) {
        self.events
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        self.sagas.fetch_add(batch.sagas, Ordering::Relaxed);
        self.dead_letters
            .fetch_add(batch.dead_letters.len() as u64, Ordering::Relaxed);
        self.spans
            .fetch_add(batch.spans.len() as u64, Ordering::Relaxed);
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    // COPY is Postgres's; SQLite is loaded through the ingest's batch write.
    if args.through == Through::Bulk && Backend::from_url(&args.database_url)? == Backend::Sqlite {
        anyhow::bail!(
            "the bulk loader (COPY) needs Postgres: load SQLite with --through write-batch"
        );
    }
    anyhow::ensure!(args.sagas > 0, "--sagas must be at least 1");
    anyhow::ensure!(
        args.events >= args.sagas,
        "--events must be at least --sagas (every saga has an event)"
    );
    for (name, share) in [
        ("--dead-letter-share", args.dead_letter_share),
        ("--span-share", args.span_share),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&share),
            "{name} must be between 0 and 1"
        );
    }
    let store = open_store(&args.database_url).await?;
    if args.reset {
        reset_tables(&store).await?;
    }
    let events_before = count_rows(&store, "events").await? as u64;
    let writers = args.writers.max(1);
    let bulk = match args.through {
        Through::Bulk => Some(store.bulk_loader(writers as u32).await?),
        Through::WriteBatch => None,
    };
    // A loader killed before it rebuilt the indexes it deferred left them
    // for this one.
    if let Some(bulk) = &bulk {
        let rebuilt = bulk.rebuild_deferred_indexes().await?;
        if !rebuilt.is_empty() {
            println!(
                "rebuilt {} index(es) an interrupted load had deferred: {}",
                rebuilt.len(),
                rebuilt.join(", ")
            );
        }
    }
    let deferred = match &bulk {
        Some(bulk) if events_before == 0 && !args.keep_indexes => {
            bulk.defer_secondary_indexes().await?
        }
        _ => Vec::new(),
    };
    let held_dead_letters = (!deferred.is_empty()).then(Arc::default);
    let sink = Sink {
        store: store.clone(),
        bulk: bulk.clone(),
        held_dead_letters: held_dead_letters.clone(),
    };

    let mut seed_rng = StdRng::seed_from_u64(args.seed);
    let now = Utc::now();
    // Ids of a later load into the same database never repeat this one's
    // (the bulk loader would refuse them): the start second is in them.
    let nonce = format!("{:x}{:02x}", now.timestamp(), seed_rng.random::<u8>());
    let dlq_offsets = stored_dlq_offsets(&store).await?;
    let batch_size = args.batch_size.max(1);

    let done = Arc::new(Done::default());
    let started = Instant::now();
    let cpu = CpuMeter::start();
    let mut generators = Vec::new();
    let mut tasks = Vec::new();
    for w in 0..writers as u64 {
        let range = (args.sagas * w / writers as u64)..(args.sagas * (w + 1) / writers as u64);
        let mut generator = Generator {
            rng: StdRng::seed_from_u64(seed_rng.random()),
            decoder: Decoder::default(),
            nonce: nonce.clone(),
            now,
            window_ms: i64::from(args.hours.max(1)) * 3_600_000,
            total_sagas: args.sagas,
            events_per_saga: args.events / args.sagas,
            extra_events: args.events % args.sagas,
            dead_letter_share: args.dead_letter_share,
            span_share: args.span_share,
            dlq_offsets: dlq_offsets.clone(),
        };
        let (tx, mut rx) = mpsc::channel::<GeneratedBatch>(2);
        generators.push(
            std::thread::Builder::new()
                .name(format!("bench-load-generator-{w}"))
                .spawn(move || {
                    generator.generate(range, batch_size, |b| tx.blocking_send(b).is_ok())
                })
                .context("cannot start a generator thread")?,
        );
        let sink = sink.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                sink.write(&batch).await?;
                done.add(&batch);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    let progress = {
        let done = done.clone();
        let total = args.events;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let events = done.events.load(Ordering::Relaxed);
                let elapsed = started.elapsed();
                let rate = per_second(events, elapsed);
                let eta = (total.saturating_sub(events)) as f64 / rate.max(1.0);
                println!(
                    "loaded {}/{} events ({:.1}%), {} sagas, {} dead letters, {} spans, {} events/s, ~{:.0} s to go, {}",
                    group_digits(events),
                    group_digits(total),
                    events as f64 * 100.0 / total as f64,
                    group_digits(done.sagas.load(Ordering::Relaxed)),
                    group_digits(done.dead_letters.load(Ordering::Relaxed)),
                    group_digits(done.spans.load(Ordering::Relaxed)),
                    group_digits(rate.round() as u64),
                    eta,
                    load_average::now_text()
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
    let write_elapsed = started.elapsed();
    let write_load = LoadAverage::now();
    let cpu_text = cpu.text(store.backend());
    // Rebuilt even after a failure, so the database keeps its schema.
    let index_started = Instant::now();
    if !deferred.is_empty() {
        println!(
            "building the {} deferred indexes ({}) …",
            deferred.len(),
            deferred.join(", ")
        );
    }
    if let Some(bulk) = &bulk {
        bulk.rebuild_deferred_indexes()
            .await
            .context("rebuilding the deferred indexes")?;
    }
    let index_elapsed = index_started.elapsed();
    let index_load = LoadAverage::now();
    if let Some(error) = failure {
        return Err(error.context("loading failed"));
    }
    // The dead letters held back while the keys were deferred, now that
    // linking them is an index lookup.
    let held_started = Instant::now();
    let held = held_dead_letters
        .map(|held| std::mem::take(&mut *held.lock().expect("held dead letters")))
        .unwrap_or_default();
    if !held.is_empty() {
        println!(
            "writing the {} dead letters held back until the keys were built …",
            group_digits(held.len() as u64)
        );
        sink.write_dead_letters(&held).await?;
    }
    let held_elapsed = held_started.elapsed();
    let held_load = LoadAverage::now();
    for generator in generators {
        let _ = generator.join();
    }

    println!("analyzing the tables …");
    let analyze_started = Instant::now();
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    let analyze_elapsed = analyze_started.elapsed();
    let elapsed = started.elapsed();
    let end_load = LoadAverage::now();
    if let Some(bulk) = &bulk {
        bulk.close().await;
    }
    let events_after = count_rows(&store, "events").await? as u64;
    let sagas_after = count_rows(&store, "sagas").await? as u64;
    let dead_letters_after = count_rows(&store, "dead_letters").await? as u64;
    let spans_after = count_rows(&store, "spans").await? as u64;
    store.close().await;

    let loaded = done.events.load(Ordering::Relaxed);
    let sagas = done.sagas.load(Ordering::Relaxed);
    let mut report = Report::default();
    report.info("events written", group_digits(loaded));
    report.info("sagas written", group_digits(sagas));
    report.info(
        "dead letters written",
        group_digits(done.dead_letters.load(Ordering::Relaxed)),
    );
    report.info(
        "spans written",
        group_digits(done.spans.load(Ordering::Relaxed)),
    );
    report
        .info(
            "write time",
            format!("{:.1} s", write_elapsed.as_secs_f64()),
        )
        .under(write_load);
    if !deferred.is_empty() {
        report
            .info(
                "deferred indexes built afterwards",
                format!(
                    "{:.1} s ({} indexes)",
                    index_elapsed.as_secs_f64(),
                    deferred.len()
                ),
            )
            .under(index_load);
    }
    if !held.is_empty() {
        report
            .info(
                "dead letters written after the keys were built",
                format!(
                    "{:.1} s ({})",
                    held_elapsed.as_secs_f64(),
                    group_digits(held.len() as u64)
                ),
            )
            .under(held_load);
    }
    report
        .info(
            "ANALYZE afterwards",
            format!("{:.1} s", analyze_elapsed.as_secs_f64()),
        )
        .under(end_load);
    report
        .info(
            "load time, end to end",
            format!("{:.1} s", elapsed.as_secs_f64()),
        )
        .under(end_load);
    let rate = per_second(loaded, elapsed);
    report
        .check(
            "load rate end to end (events/s, index builds and ANALYZE included)",
            rate_text(loaded, elapsed),
            format!(
                "≥ {}/s (10 M in ≤ 5 min)",
                group_digits(TARGET_EVENTS_PER_SECOND.ceil() as u64)
            ),
            rate >= TARGET_EVENTS_PER_SECOND,
        )
        .under(end_load);
    report
        .info("load rate (sagas/s)", rate_text(sagas, elapsed))
        .under(end_load);
    report
        .info("CPU cores while writing", cpu_text)
        .under(write_load);
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
    report.info(
        "dead letters in the database",
        group_digits(dead_letters_after),
    );
    report.info("spans in the database", group_digits(spans_after));
    report.note(format!(
        "through {}, {} writers (each with its own generator thread), batches of ~{} events, \
         start times over the last {} h, {} dead letters per saga, spans for {} of the traces",
        match args.through {
            Through::Bulk => "the bulk loader (COPY)",
            Through::WriteBatch => "write_batch",
        },
        writers,
        batch_size,
        args.hours,
        args.dead_letter_share,
        args.span_share
    ));
    report.print("sagascope bench load");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    fn generator(dead_letter_share: f64, span_share: f64) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(1),
            decoder: Decoder::default(),
            nonce: "t".into(),
            now: Utc::now(),
            window_ms: 3_600_000,
            total_sagas: 300,
            events_per_saga: 10,
            extra_events: 0,
            dead_letter_share,
            span_share,
            dlq_offsets: HashMap::new(),
        }
    }

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
        let mut generator = generator(0.0, 0.0);
        let mut batch = GeneratedBatch::default();
        generator.saga_events(0, &mut batch);
        generator.saga_events(1, &mut batch);
        let events = &batch.events;
        assert_eq!(events.len(), 20);
        assert_eq!(batch.sagas, 2);
        assert!(batch.dead_letters.is_empty() && batch.spans.is_empty());
        assert_eq!(events[0].saga_id, "ldt-00000000");
        assert_eq!(events[0].correlation_keys, vec!["saga:ldt-00000000"]);
        assert_eq!(events[10].event_id, "ldt-00000001-0");
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), 20);
        assert!(events
            .windows(2)
            .take(9)
            .all(|w| w[0].occurred_at < w[1].occurred_at));
        // Per partition, offsets increase from one saga to the next.
        assert_eq!(events[0].coords.partition, 0);
        assert_eq!(events[10].coords.partition, 1);
    }

    #[test]
    fn dead_letters_name_their_saga_and_spans_their_trace() {
        let mut generator = generator(1.0, 1.0);
        let mut batch = GeneratedBatch::default();
        for index in 0..30 {
            generator.saga_events(index, &mut batch);
        }
        assert_eq!(batch.dead_letters.len(), 30, "a share of 1: one per saga");
        let ids: std::collections::HashSet<_> = batch
            .dead_letters
            .iter()
            .map(sagascope_store::dead_letter_id)
            .collect();
        assert_eq!(ids.len(), 30, "dead letter ids are unique");
        for letter in &batch.dead_letters {
            assert_eq!(letter.format.as_str(), "spring");
            let saga = letter
                .saga_id
                .as_deref()
                .expect("the payload names the saga");
            let event = batch
                .events
                .iter()
                .find(|e| e.saga_id == saga)
                .expect("a generated saga");
            assert_eq!(letter.trace_id, event.trace_id);
            assert!(letter.exception_class.is_some() && letter.original.is_some());
        }
        let traces: std::collections::HashSet<_> =
            batch.spans.iter().map(|s| s.trace_id.as_str()).collect();
        assert_eq!(traces.len(), 30);
        assert!(batch.spans.iter().all(|s| s.end >= s.start));
    }

    /// Every row of every table, as text in a stable order, without the
    /// columns that hold the time of writing.
    async fn table_rows(url: &str) -> Vec<(String, Vec<String>)> {
        const VOLATILE: [(&str, &str); 3] = [
            ("dead_letters", "ingested_at_us"),
            ("dead_letters", "state_changed_at_us"),
            ("spans", "received_at_us"),
        ];
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename <> '_sqlx_migrations' ORDER BY tablename",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut out = Vec::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table.as_str())
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let kept: Vec<String> = columns
                .into_iter()
                .filter(|c| !VOLATILE.contains(&(table.as_str(), c.as_str())))
                .map(|c| format!("\"{c}\""))
                .collect();
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT ROW({})::text AS r FROM \"{table}\" ORDER BY r",
                kept.join(", ")
            ))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            out.push((table, rows));
        }
        out
    }

    /// The bulk loader stores what the ingest's batch write stores: the
    /// same generated sagas (with dead letters and spans) written both ways
    /// into two fresh databases give the same rows in every table.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bulk_loader_stores_what_write_batch_stores() {
        let mut generator = generator(0.3, 0.3);
        generator.events_per_saga = 7;
        generator.extra_events = 100;
        let mut batches = Vec::new();
        generator.generate(0..300, 500, |batch| {
            batches.push(batch);
            true
        });
        assert!(batches.len() > 3, "several batches");

        let reference = sagascope_store::test_support::fresh_postgres_store().await;
        let bulk_store = sagascope_store::test_support::fresh_postgres_store().await;
        let reference_sink = Sink {
            store: reference.clone(),
            bulk: None,
            held_dead_letters: None,
        };
        let bulk_sink = Sink {
            store: bulk_store.clone(),
            bulk: Some(bulk_store.bulk_loader(2).await.unwrap()),
            held_dead_letters: None,
        };
        for batch in &batches {
            reference_sink.write(batch).await.unwrap();
            bulk_sink.write(batch).await.unwrap();
        }

        let expected = table_rows(reference.postgres_url().unwrap()).await;
        let actual = table_rows(bulk_store.postgres_url().unwrap()).await;
        let count = |rows: &[(String, Vec<String>)], table: &str| {
            rows.iter()
                .find(|(t, _)| t == table)
                .map_or(0, |(_, r)| r.len())
        };
        assert_eq!(count(&expected, "events"), 300 * 7 + 100);
        assert_eq!(count(&expected, "sagas"), 300);
        for table in [
            "saga_keys",
            "correlation_keys",
            "saga_rollups",
            "dead_letters",
            "spans",
        ] {
            assert!(count(&expected, table) > 0, "{table} has rows");
        }
        let linked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dead_letters WHERE linked_saga_id IS NOT NULL",
        )
        .fetch_one(bulk_store.pool())
        .await
        .unwrap();
        assert_eq!(
            linked as usize,
            count(&expected, "dead_letters"),
            "every dead letter is linked"
        );
        assert_eq!(expected.len(), actual.len());
        for ((table, want), (_, got)) in expected.iter().zip(&actual) {
            assert_eq!(want.len(), got.len(), "rows of {table}");
            for (w, g) in want.iter().zip(got) {
                assert_eq!(w, g, "a row of {table}");
            }
        }

        // The bulk loader refuses sagas already stored, and leaves nothing.
        let again = bulk_sink.write(&batches[0]).await;
        assert!(again.is_err(), "a second load of the same sagas is refused");
        assert_eq!(table_rows(bulk_store.postgres_url().unwrap()).await, actual);
        bulk_store.close().await;
        reference.close().await;
    }
}
