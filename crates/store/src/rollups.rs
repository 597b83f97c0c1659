//! Maintaining the rollups inside the write transactions. A batch collects
//! signed changes in a [`RollupDelta`] (a saga's old fact out, its new fact
//! in; new events' lag; new ingest errors) and applies them with one upsert
//! per table and chunk, in key order so concurrent replicas cannot deadlock.
//! Each key of a batch is upserted once: the delta sums the batch first.
//! The (grain, bucket) keys a delta touches are invalidated in the
//! overview's cache of closed buckets (`rollup_cache.rs`).

use std::collections::{BTreeMap, BTreeSet};

use sagascope_domain::histogram::value_bucket;
use sagascope_domain::{micros, SagaEvent, SagaFact};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Transaction};

use crate::{bulk_rows, Result, Store};

/// The grains written, one per window size (`MetricsWindow::grain_seconds`):
/// 1 min (15 m, 1 h), 10 min (6 h), 1 h (24 h), 6 h (7 d).
pub(crate) const GRAINS_S: [i64; 4] = [60, 600, 3600, 6 * 3600];
const ROWS_PER_STATEMENT: usize = 500;

pub(crate) fn bucket_start(at_us: i64, grain_s: i64) -> i64 {
    let grain_us = grain_s * 1_000_000;
    at_us.div_euclid(grain_us) * grain_us
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

#[derive(Debug, Default)]
pub(crate) struct RollupDelta {
    /// (grain, bucket, saga type, status) → (sagas, began compensating)
    sagas: BTreeMap<(i64, i64, String, &'static str), (i64, i64)>,
    /// (grain, bucket, saga type, step) → (executions, failures)
    steps: BTreeMap<(i64, i64, String, String), (i64, i64)>,
    /// (grain, bucket, topic) → (events, errors)
    topics: BTreeMap<(i64, i64, String), (i64, i64)>,
    /// (grain, bucket, series, subject, detail, value) → n: the table's
    /// key order (time first), which is the upserts' order.
    histograms: BTreeMap<(i64, i64, &'static str, String, String, i64), i64>,
}

impl RollupDelta {
    /// Replaces a saga's contribution: `old` out, `new` in.
    pub(crate) fn change(&mut self, old: Option<&SagaFact>, new: Option<&SagaFact>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.saga(old, -1);
        }
        if let Some(new) = new {
            self.saga(new, 1);
        }
    }

    fn saga(&mut self, fact: &SagaFact, sign: i64) {
        for grain in GRAINS_S {
            let bucket = bucket_start(fact.started_us, grain);
            let counts = self
                .sagas
                .entry((grain, bucket, fact.saga_type.clone(), fact.status.as_str()))
                .or_default();
            counts.0 += sign;
            counts.1 += sign * i64::from(fact.began_compensating);
            if let Some(ms) = fact.duration_ms {
                *self
                    .histograms
                    .entry((
                        grain,
                        bucket,
                        "saga",
                        fact.saga_type.clone(),
                        String::new(),
                        value_bucket(ms),
                    ))
                    .or_default() += sign;
            }
            for step in &fact.steps {
                let counts = self
                    .steps
                    .entry((grain, bucket, fact.saga_type.clone(), step.step.clone()))
                    .or_default();
                counts.0 += sign;
                counts.1 += sign * i64::from(step.failed);
                *self
                    .histograms
                    .entry((
                        grain,
                        bucket,
                        "step",
                        fact.saga_type.clone(),
                        step.step.clone(),
                        value_bucket(step.duration_ms),
                    ))
                    .or_default() += sign;
            }
        }
    }

    /// A newly stored event: counted on its topic by ingest time; its relay
    /// lag (Kafka time − occurred) and consumer lag (ingested − Kafka
    /// time) by Kafka time, when the message had a Kafka timestamp. The
    /// ingested − Kafka time of a backlog message (already in Kafka when
    /// the consumer got its partition) is the catch-up's, `catchup_lag`:
    /// kept apart so that history read at start never counts as delay.
    pub(crate) fn event(&mut self, event: &SagaEvent, backlog: bool) {
        let topic = &event.coords.topic;
        let ingested = micros(event.ingested_at);
        let waited_series = if backlog {
            "catchup_lag"
        } else {
            "consumer_lag"
        };
        for grain in GRAINS_S {
            self.topics
                .entry((grain, bucket_start(ingested, grain), topic.clone()))
                .or_default()
                .0 += 1;
            if let Some(published) = event.published_at.map(micros) {
                let bucket = bucket_start(published, grain);
                let relay = (published - micros(event.occurred_at)) / 1000;
                let waited = (ingested - published) / 1000;
                for (series, ms) in [("relay_lag", relay), (waited_series, waited)] {
                    *self
                        .histograms
                        .entry((
                            grain,
                            bucket,
                            series,
                            topic.clone(),
                            String::new(),
                            value_bucket(ms),
                        ))
                        .or_default() += 1;
                }
            }
        }
    }

    /// The (grain, bucket start) keys this delta changes: what a writer
    /// invalidates in the cache of closed buckets after its commit.
    pub(crate) fn buckets(&self) -> BTreeSet<(i64, i64)> {
        let mut keys = BTreeSet::new();
        keys.extend(self.sagas.keys().map(|k| (k.0, k.1)));
        keys.extend(self.steps.keys().map(|k| (k.0, k.1)));
        keys.extend(self.topics.keys().map(|k| (k.0, k.1)));
        keys.extend(self.histograms.keys().map(|k| (k.0, k.1)));
        keys
    }

    /// A newly stored ingest error, by ingest time.
    pub(crate) fn error(&mut self, topic: &str, ingested_us: i64) {
        for grain in GRAINS_S {
            self.topics
                .entry((grain, bucket_start(ingested_us, grain), topic.to_string()))
                .or_default()
                .1 += 1;
        }
    }
}

impl Store {
    pub(crate) async fn apply_rollups(
        &self,
        tx: &mut Transaction<'_, Any>,
        delta: RollupDelta,
    ) -> Result<()> {
        // Before the write, conservatively: what is cached of these buckets
        // goes now. This alone is not enough (a reader may cache the
        // pre-commit rows again before the commit), so the writer also
        // invalidates after its commit (`RollupCache::invalidate`); a caller
        // that does not (a bulk load) leaves such a copy for at most the
        // cache's TTL.
        self.rollup_cache.invalidate(&delta.buckets());
        let sagas: Vec<_> = delta
            .sagas
            .into_iter()
            .filter(|(_, (a, b))| *a != 0 || *b != 0)
            .collect();
        for chunk in sagas.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO saga_rollups (grain_s, bucket_start_us, saga_type, status, sagas, began_compensating) VALUES {} \
                 ON CONFLICT (grain_s, bucket_start_us, saga_type, status) DO UPDATE SET \
                 sagas = saga_rollups.sagas + excluded.sagas, \
                 began_compensating = saga_rollups.began_compensating + excluded.began_compensating",
                bulk_rows(tx, chunk.len(), 6)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for ((grain, bucket, saga_type, status), (n, comp)) in chunk {
                query = query
                    .bind(*grain)
                    .bind(*bucket)
                    .bind(saga_type.clone())
                    .bind(*status)
                    .bind(*n)
                    .bind(*comp);
            }
            query.execute(&mut **tx).await?;
        }
        let steps: Vec<_> = delta
            .steps
            .into_iter()
            .filter(|(_, (a, b))| *a != 0 || *b != 0)
            .collect();
        for chunk in steps.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO step_rollups (grain_s, bucket_start_us, saga_type, step, executions, failures) VALUES {} \
                 ON CONFLICT (grain_s, bucket_start_us, saga_type, step) DO UPDATE SET \
                 executions = step_rollups.executions + excluded.executions, \
                 failures = step_rollups.failures + excluded.failures",
                bulk_rows(tx, chunk.len(), 6)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for ((grain, bucket, saga_type, step), (n, failed)) in chunk {
                query = query
                    .bind(*grain)
                    .bind(*bucket)
                    .bind(saga_type.clone())
                    .bind(step.clone())
                    .bind(*n)
                    .bind(*failed);
            }
            query.execute(&mut **tx).await?;
        }
        let topics: Vec<_> = delta.topics.into_iter().collect();
        for chunk in topics.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO topic_rollups (grain_s, bucket_start_us, topic, events, errors) VALUES {} \
                 ON CONFLICT (grain_s, bucket_start_us, topic) DO UPDATE SET \
                 events = topic_rollups.events + excluded.events, errors = topic_rollups.errors + excluded.errors",
                bulk_rows(tx, chunk.len(), 5)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for ((grain, bucket, topic), (events, errors)) in chunk {
                query = query
                    .bind(*grain)
                    .bind(*bucket)
                    .bind(topic.clone())
                    .bind(*events)
                    .bind(*errors);
            }
            query.execute(&mut **tx).await?;
        }
        let histograms: Vec<_> = delta
            .histograms
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .collect();
        for chunk in histograms.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO histograms (grain_s, bucket_start_us, series, subject, detail, value_ms, n) VALUES {} \
                 ON CONFLICT (grain_s, bucket_start_us, series, subject, detail, value_ms) DO UPDATE SET n = histograms.n + excluded.n",
                bulk_rows(tx, chunk.len(), 7)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for ((grain, bucket, series, subject, detail, value), n) in chunk {
                query = query
                    .bind(*grain)
                    .bind(*bucket)
                    .bind(*series)
                    .bind(subject.clone())
                    .bind(detail.clone())
                    .bind(*value)
                    .bind(*n);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}
