//! One ingest batch = one transaction: new events (idempotent on event_id),
//! the projections of the sagas they touch, search keys, ingest errors and
//! the consumer offsets. Kafka offsets are committed only after this returns.

use std::collections::{BTreeSet, HashMap, HashSet};

use sagascope_domain::{micros, DeadLetter, KafkaCoords, SagaEvent, SagaProjection};
use sagascope_model::{
    DeadLetterSummary, IngestErrorView, SagaStatus, SagaSummary, TimelineEvent, Timestamp,
};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::place_events::Placement;
use crate::rollups::RollupDelta;
use crate::{bulk_placeholders, bulk_rows, Result, Store};

/// Rows per INSERT statement: 19 columns × 400 stays far below the bind
/// limits of both SQLite (32 766) and Postgres (65 535).
const ROWS_PER_STATEMENT: usize = 400;

#[derive(Debug, Clone, PartialEq)]
pub struct NewIngestError {
    pub coords: KafkaCoords,
    pub reason: String,
    pub first_bytes: String,
    pub key: Option<String>,
    pub published_at: Option<Timestamp>,
    pub ingested_at: Timestamp,
}

/// The next offset to consume on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    pub group_id: String,
    pub events: Vec<SagaEvent>,
    pub errors: Vec<NewIngestError>,
    /// Messages of the DLQ topics (never decoded as events).
    pub dead_letters: Vec<DeadLetter>,
    pub offsets: Vec<PartitionOffset>,
    /// The consumer's catch-up, per partition: offsets below `next_offset`
    /// were already in Kafka when the consumer got the partition (at start,
    /// after a restart or a rebalance: see `sagascope_ingest`'s catch-up).
    /// Their ingest − Kafka time is history, not delay: it goes to the
    /// `catchup_lag` series, never to `consumer_lag` (which the thresholds
    /// watch). A partition not listed has no backlog. Offsets, idempotence
    /// and everything else are the same for backlog and new messages.
    pub backlog: Vec<PartitionOffset>,
}

impl IngestBatch {
    /// Whether a message was backlog (see [`IngestBatch::backlog`]).
    pub fn is_backlog(&self, coords: &KafkaCoords) -> bool {
        self.backlog.iter().any(|b| {
            b.partition == coords.partition
                && coords.offset < b.next_offset
                && b.topic == coords.topic
        })
    }
}

/// A saga whose status the batch changed (for outcome metrics). Sagas
/// rebuilt by a merge are left out, so nothing is counted twice.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaTransition {
    pub saga_type: String,
    /// None for a saga the batch started.
    pub from: Option<SagaStatus>,
    pub to: SagaStatus,
    /// Start to end, once it ended.
    pub duration_ms: Option<i64>,
    /// Its first compensation event came in this batch.
    pub began_compensating: bool,
    /// The saga's steps, when the batch finished it.
    pub steps: Vec<sagascope_domain::StepFact>,
}

/// What the batch changed, for the live stream and the metrics.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    pub new_events: Vec<TimelineEvent>,
    pub sagas: Vec<SagaSummary>,
    pub errors: Vec<IngestErrorView>,
    /// Events whose id was already stored (redelivery after a restart).
    pub duplicates: usize,
    /// (old saga id, the saga it was merged into).
    pub merged: Vec<(String, String)>,
    pub transitions: Vec<SagaTransition>,
    /// Dead letters stored for the first time (redeliveries left out).
    pub dead_letters: Vec<DeadLetterSummary>,
    /// Dead letters and ingest errors stored at coordinates that already
    /// held a different message (a recreated topic): kept beside it.
    pub reused_coordinates: Vec<KafkaCoords>,
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

pub fn timeline_event(event: &SagaEvent) -> TimelineEvent {
    TimelineEvent {
        event_id: event.event_id.clone(),
        saga_id: event.saga_id.clone(),
        phase: event.phase,
        step: event.step.clone(),
        event_type: event.event_type.clone(),
        occurred_at: event.occurred_at,
        published_at: event.published_at,
        ingested_at: event.ingested_at,
        topic: event.coords.topic.clone(),
        partition: i64::from(event.coords.partition),
        offset: event.coords.offset,
        trace_id: event.trace_id.clone(),
        span_id: event.span_id.clone(),
        headers: event.headers.clone(),
        payload: event.payload.clone(),
        error: event.error.clone(),
    }
}

impl Store {
    #[tracing::instrument(skip_all, fields(events = batch.events.len(), errors = batch.errors.len(), backend = self.backend.name()))]
    pub async fn write_batch(&self, batch: &IngestBatch) -> Result<BatchOutcome> {
        let mut tx = self.begin_write().await?;

        // Keep the first copy of an id repeated inside the batch.
        let mut seen = HashSet::new();
        let mut unique: Vec<SagaEvent> = batch
            .events
            .iter()
            .filter(|e| seen.insert(e.event_id.as_str()))
            .cloned()
            .collect();
        let t0 = std::time::Instant::now();
        let placement = self.place_events(&mut tx, &mut unique).await?;
        let t1 = std::time::Instant::now();
        let inserted = self.insert_events(&mut tx, &unique).await?;
        let t2 = std::time::Instant::now();
        let new_events: Vec<&SagaEvent> = unique
            .iter()
            .filter(|e| inserted.contains(&e.event_id))
            .collect();
        let mut rollups = RollupDelta::default();
        for event in &new_events {
            rollups.event(event, batch.is_backlog(&event.coords));
        }
        let projected = self
            .project_and_write_sagas(&mut tx, &new_events, &placement, &mut rollups, true)
            .await?;
        let sagas = projected.sagas;
        let t3 = std::time::Instant::now();
        self.insert_search_keys(&mut tx, projected.keys, &placement)
            .await?;
        // After the sagas, so dead letters link to this batch's sagas too.
        let touched: BTreeSet<String> = sagas.iter().map(|p| p.saga_id.clone()).collect();
        self.relink_dead_letters(&mut tx, &new_events, &placement.merged, &touched)
            .await?;
        let dead_letters = self
            .insert_dead_letters(&mut tx, &batch.dead_letters, chrono::Utc::now())
            .await?;
        let t5 = std::time::Instant::now();

        let mut all_errors = batch.errors.clone();
        all_errors.extend(
            self.conflicting_duplicates(&mut tx, &batch.events, &inserted)
                .await?,
        );
        let (errors, mut reused_coordinates) =
            self.insert_ingest_errors(&mut tx, &all_errors).await?;
        reused_coordinates.extend(
            dead_letters
                .iter()
                .filter(|l| crate::is_reused_coordinates_id(&l.id))
                .map(|l| KafkaCoords {
                    topic: l.dlq_topic.clone(),
                    partition: i32::try_from(l.dlq_partition).unwrap_or_default(),
                    offset: l.dlq_offset,
                }),
        );
        for error in &errors {
            rollups.error(&error.topic, micros(error.ingested_at));
        }
        let t6 = std::time::Instant::now();
        let rollup_buckets = rollups.buckets();
        self.apply_rollups(&mut tx, rollups).await?;
        let t7 = std::time::Instant::now();
        // Where a batch spends its time (RUST_LOG=sagascope_store=debug).
        tracing::debug!(
            place_us = (t1 - t0).as_micros() as u64,
            insert_us = (t2 - t1).as_micros() as u64,
            project_and_write_sagas_us = (t3 - t2).as_micros() as u64,
            keys_us = (t5 - t3).as_micros() as u64,
            errors_us = (t6 - t5).as_micros() as u64,
            rollups_us = (t7 - t6).as_micros() as u64,
            "batch write phases"
        );

        self.store_offsets(&mut tx, &batch.group_id, &batch.offsets)
            .await?;

        tx.commit().await?;
        // The overview's cached buckets this batch changed (see
        // `rollup_cache.rs`: after the commit as well as before).
        self.rollup_cache.invalidate(&rollup_buckets);
        // Committed: the rows written are the truth now; merged-away ones
        // are gone.
        self.cache.put(projected.written);
        self.cache
            .forget(placement.merged.iter().map(|(old, _)| old.as_str()));
        Ok(BatchOutcome {
            duplicates: batch.events.len() - new_events.len(),
            new_events: new_events.into_iter().map(timeline_event).collect(),
            // Streams (groups without saga meaning) are not pushed as sagas.
            sagas: sagas
                .iter()
                .filter(|p| p.is_saga())
                .map(SagaProjection::summary)
                .collect(),
            merged: placement.merged,
            transitions: projected.transitions,
            errors,
            dead_letters,
            reused_coordinates,
        })
    }
}

impl Store {
    /// The next offset per partition, in the batch's transaction: the
    /// consumer starts each assigned partition here (the database, not
    /// Kafka, is the source of truth). Never moves an offset backwards.
    async fn store_offsets(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        group_id: &str,
        offsets: &[PartitionOffset],
    ) -> Result<()> {
        let now_us = micros(chrono::Utc::now());
        for chunk in offsets.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO consumer_offsets (group_id, topic, kafka_partition, next_offset, updated_at_us) VALUES {} \
                 ON CONFLICT (group_id, topic, kafka_partition) DO UPDATE SET \
                 next_offset = CASE WHEN excluded.next_offset > consumer_offsets.next_offset THEN excluded.next_offset ELSE consumer_offsets.next_offset END, \
                 updated_at_us = excluded.updated_at_us",
                bulk_rows(tx, chunk.len(), 5)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for offset in chunk {
                query = query
                    .bind(group_id.to_string())
                    .bind(offset.topic.clone())
                    .bind(i64::from(offset.partition))
                    .bind(offset.next_offset)
                    .bind(now_us);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Inserts events (idempotent on event_id); returns the ids that were new.
    pub(crate) async fn insert_events(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        events: &[SagaEvent],
    ) -> Result<HashSet<String>> {
        let mut inserted: HashSet<String> = HashSet::new();
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO events (event_id, saga_id, saga_type, step, phase, event_type, trace_id, span_id, request_id, \
                 occurred_at_us, published_at_us, ingested_at_us, source_type, source_id, topic, kafka_partition, kafka_offset, \
                 headers, payload, error, explicit_saga_id, rule_classified, business_keys) VALUES {} \
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                bulk_rows(tx, chunk.len(), 23)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for e in chunk {
                query = query
                    .bind(e.event_id.clone())
                    .bind(e.saga_id.clone())
                    .bind(e.saga_type.clone())
                    .bind(e.step.clone())
                    .bind(e.phase.as_str())
                    .bind(e.event_type.clone())
                    .bind(e.trace_id.clone())
                    .bind(e.span_id.clone())
                    .bind(e.request_id.clone())
                    .bind(micros(e.occurred_at))
                    .bind(e.published_at.map(micros))
                    .bind(micros(e.ingested_at))
                    .bind(e.source_type.clone())
                    .bind(e.source_id.clone())
                    .bind(e.coords.topic.clone())
                    .bind(i64::from(e.coords.partition))
                    .bind(e.coords.offset)
                    .bind(serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".into()))
                    .bind(e.payload.to_string())
                    .bind(e.error.clone())
                    .bind(e.explicit_saga_id.clone())
                    .bind(i64::from(e.rule_classified))
                    .bind(serde_json::to_string(&e.business_keys).unwrap_or_else(|_| "[]".into()));
            }
            for row in query.fetch_all(&mut **tx).await? {
                inserted.insert(row.try_get("event_id")?);
            }
        }
        Ok(inserted)
    }

    /// The events' search keys, plus the ids of merged-away instances (so
    /// they still find the saga they went into).
    pub(crate) async fn insert_search_keys(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        mut keys: Vec<SearchKey>,
        placement: &Placement,
    ) -> Result<()> {
        keys.extend(
            placement
                .merged
                .iter()
                .map(|(old, new)| (old.clone(), new.clone(), "merged")),
        );
        keys.sort();
        keys.dedup();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO saga_keys (search_key, saga_id, kind) VALUES {} ON CONFLICT (search_key, saga_id) DO NOTHING",
                bulk_rows(tx, chunk.len(), 3)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for (key, saga_id, kind) in chunk {
                query = query.bind(key.clone()).bind(saga_id.clone()).bind(*kind);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// (search key, saga id, kind).
pub(crate) type SearchKey = (String, String, &'static str);

/// Where the first copy of an event id came from, and what it said.
struct KeptCopy {
    coords: KafkaCoords,
    payload: String,
}

impl Store {
    /// Events whose id is already taken by a copy with a different body (not
    /// a redelivery: those come from the same coordinates). The first copy
    /// is kept; each later one is recorded as an ingest error so that the
    /// conflict is visible and counted rather than silently dropped.
    async fn conflicting_duplicates(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        events: &[SagaEvent],
        inserted: &HashSet<String>,
    ) -> Result<Vec<NewIngestError>> {
        // Only ids seen twice (in the batch, or stored before) can conflict;
        // the others' bodies are never serialised.
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for event in events {
            *copies.entry(event.event_id.as_str()).or_default() += 1;
        }
        let repeated = |e: &SagaEvent| {
            !inserted.contains(&e.event_id) || copies.get(e.event_id.as_str()) > Some(&1)
        };
        let mut kept: HashMap<&str, KeptCopy> = HashMap::new();
        for event in events
            .iter()
            .filter(|e| inserted.contains(&e.event_id) && repeated(e))
        {
            kept.entry(event.event_id.as_str())
                .or_insert_with(|| KeptCopy {
                    coords: event.coords.clone(),
                    payload: event.payload.to_string(),
                });
        }
        let mut stored_ids: Vec<&str> = events
            .iter()
            .map(|e| e.event_id.as_str())
            .filter(|id| !inserted.contains(*id))
            .collect();
        stored_ids.sort_unstable();
        stored_ids.dedup();
        for chunk in stored_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT event_id, topic, kafka_partition, kafka_offset, payload FROM events WHERE event_id IN ({})",
                bulk_placeholders(tx, chunk.len())
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&mut **tx).await? {
                let id: String = row.try_get("event_id")?;
                let Some(key) = chunk.iter().find(|c| **c == id) else {
                    continue;
                };
                let partition: i64 = row.try_get("kafka_partition")?;
                kept.insert(
                    key,
                    KeptCopy {
                        coords: KafkaCoords {
                            topic: row.try_get("topic")?,
                            partition: i32::try_from(partition).unwrap_or_default(),
                            offset: row.try_get("kafka_offset")?,
                        },
                        payload: row.try_get("payload")?,
                    },
                );
            }
        }
        let mut conflicts = Vec::new();
        for event in events.iter().filter(|e| repeated(e)) {
            let Some(first) = kept.get(event.event_id.as_str()) else {
                continue;
            };
            let body = event.payload.to_string();
            if first.coords != event.coords && first.payload != body {
                let c = &first.coords;
                conflicts.push(NewIngestError {
                    coords: event.coords.clone(),
                    reason: format!(
                        "duplicate event id `{}` with a different body: kept the first copy, from {}/{}/{}",
                        event.event_id, c.topic, c.partition, c.offset
                    ),
                    first_bytes: body.chars().take(256).collect(),
                    key: event.source_id.clone(),
                    published_at: event.published_at,
                    ingested_at: event.ingested_at,
                });
            }
        }
        Ok(conflicts)
    }
}
