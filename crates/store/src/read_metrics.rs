//! The overview's figures for a window, read from the rollups only (never
//! the raw events): outcome counts and rates per saga type with their
//! sparkline points, per-step counts and durations, duration and lag
//! percentiles, events and ingest errors per topic.
//!
//! A window is a bounded number of time buckets of one grain
//! (`MetricsWindow::grain_seconds`), each table one index range (the keys
//! start with grain and bucket). Closed buckets come from the cache
//! (`rollup_cache.rs`); the others are read in one range per table, the
//! four tables concurrently, the rows per bucket, and everything else
//! (window totals, chart points, lag percentiles per point) is summed here.

use std::collections::BTreeMap;
use std::sync::Arc;

use sagascope_domain::histogram::percentiles;
use sagascope_domain::{from_micros, micros};
use sagascope_model::{
    ratio, IngestHealth, IngestPoint, LagPoint, LagStats, MetricsWindow, OutcomeCounts,
    Percentiles, RatePoint, SagaTypeMetrics, StepMetrics, Timestamp, TopicLag,
};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::rollup_cache::BucketRows;
use crate::window_sums::WindowSums;
use crate::{Result, Store};
/// What the store knows of a window; the overview adds what lives in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowMetrics {
    pub from: Timestamp,
    pub to: Timestamp,
    pub totals: OutcomeCounts,
    pub saga_types: Vec<SagaTypeMetrics>,
    pub topics: Vec<TopicLag>,
    pub ingest: IngestHealth,
}

/// One time bucket of a window: its start, whether it is closed (ended
/// by now and by the clock: from the cache), its rows.
struct WindowBucket {
    start: i64,
    closed: bool,
    rows: Arc<BucketRows>,
}

impl Store {
    /// `now` ends the window (see `MetricsWindow::bounds_us`).
    #[tracing::instrument(skip(self), err)]
    pub async fn window_metrics(
        &self,
        window: MetricsWindow,
        now: Timestamp,
    ) -> Result<WindowMetrics> {
        let (from, to) = window.bounds_us(micros(now));
        let grain = window.grain_seconds();
        let point_us = window.point_seconds() * 1_000_000;
        let points = usize::try_from(window.seconds() / window.point_seconds()).unwrap_or(1);
        let point_at = |i: usize| from_micros(from + i as i64 * point_us);
        let point_of = |bucket: i64| {
            usize::try_from((bucket - from) / point_us)
                .unwrap_or(0)
                .min(points - 1)
        };
        // Per-second rates divide by the part of the window that has passed.
        let elapsed_s = ((micros(now).min(to) - from) as f64 / 1e6).max(1.0);

        let buckets = self.window_buckets(grain, from, to, micros(now)).await?;

        // The window's sum, kept while all its buckets stay the same cache
        // entries (no batch touched them, none expired); else the closed
        // buckets' sum, kept while they stay the same entries, with the
        // open bucket(s) on top.
        let key = (grain, from, to);
        let all: Vec<Arc<BucketRows>> = buckets.iter().map(|b| b.rows.clone()).collect();
        let sums = match self.window_sums.get(key, &all) {
            Some(sums) => sums,
            None => {
                let empty_points: Vec<IngestPoint> = (0..points)
                    .map(|i| IngestPoint {
                        at: point_at(i),
                        events: 0,
                        errors: 0,
                    })
                    .collect();
                let closed: Vec<Arc<BucketRows>> = buckets
                    .iter()
                    .filter(|b| b.closed)
                    .map(|b| b.rows.clone())
                    .collect();
                let closed_sums = match self.closed_sums.get(key, &closed) {
                    Some(sums) => sums,
                    None => {
                        let mut sums = WindowSums::new(empty_points);
                        for bucket in buckets.iter().filter(|b| b.closed) {
                            sums.add(point_of(bucket.start), &bucket.rows);
                        }
                        let sums = Arc::new(sums);
                        self.closed_sums.put(key, closed, sums.clone());
                        sums
                    }
                };
                let open: Vec<&WindowBucket> = buckets
                    .iter()
                    .filter(|b| !b.closed && !b.rows.is_empty())
                    .collect();
                let sums = if open.is_empty() {
                    closed_sums
                } else {
                    let mut sums = WindowSums::clone(&closed_sums);
                    for bucket in open {
                        sums.add(point_of(bucket.start), &bucket.rows);
                    }
                    Arc::new(sums)
                };
                self.window_sums.put(key, all, sums.clone());
                sums
            }
        };
        let WindowSums {
            by_type,
            steps: step_sums,
            histograms,
            lag_points,
            topic_events,
            ingest_points,
            events,
            errors,
        } = &*sums;
        let (events, errors) = (*events, *errors);

        let steps: BTreeMap<&(String, String), &(i64, i64)> =
            step_sums.iter().filter(|(_, (n, _))| *n > 0).collect();
        let values = |h: &BTreeMap<i64, i64>| -> Vec<(i64, i64)> {
            h.iter().map(|(v, n)| (*v, *n)).collect()
        };
        let percentiles_of = |series: &str, subject: &str, detail: &str| -> Percentiles {
            histograms
                .get(&(series.to_string(), subject.to_string(), detail.to_string()))
                .map(|h| percentiles(&values(h)))
                .unwrap_or_default()
        };
        let mut totals = OutcomeCounts::default();
        let saga_types = by_type
            .iter()
            .filter(|(_, (counts, _))| counts.started > 0)
            .map(|(saga_type, (counts, series))| {
                let counts = *counts;
                totals.add(&counts);
                let mut type_steps: Vec<StepMetrics> = steps
                    .iter()
                    .filter(|((t, _), _)| t == saga_type)
                    .map(|((_, step), (n, f))| StepMetrics {
                        step: step.to_string(),
                        executions: *n,
                        failures: *f,
                        failure_rate: ratio(*f, *n),
                        duration: percentiles_of("step", saga_type, step),
                    })
                    .collect();
                type_steps.sort_by(|a, b| {
                    b.duration
                        .p95_ms
                        .cmp(&a.duration.p95_ms)
                        .then_with(|| a.step.cmp(&b.step))
                });
                SagaTypeMetrics {
                    failure_rate: counts.failure_rate(),
                    compensation_rate: counts.compensation_rate(),
                    duration: percentiles_of("saga", saga_type, ""),
                    throughput_per_min: counts.started as f64 / (elapsed_s / 60.0),
                    series: series
                        .iter()
                        .enumerate()
                        .map(|(i, c)| RatePoint {
                            at: point_at(i),
                            started: c.started,
                            finished: c.finished,
                            failed: c.failed,
                            began_compensating: c.began_compensating,
                            failure_rate: c.failure_rate(),
                            compensation_rate: c.compensation_rate(),
                        })
                        .collect(),
                    steps: type_steps,
                    level: Default::default(),
                    counts,
                    saga_type: saga_type.to_string(),
                }
            })
            .collect();

        let mut lag_topics: Vec<String> = topic_events.keys().cloned().collect();
        for (series, subject, _) in histograms.keys() {
            if series.ends_with("_lag") && !lag_topics.iter().any(|t| t == subject) {
                lag_topics.push(subject.to_string());
            }
        }
        lag_topics.sort();
        let topics = lag_topics
            .into_iter()
            .map(|topic| {
                let point_of_series = |series: &str, i: usize| {
                    lag_points
                        .get(&(series.to_string(), topic.clone(), i))
                        .map(|h| percentiles(&values(h)))
                        .unwrap_or_default()
                };
                let point_stats = |i: usize| LagStats {
                    relay: point_of_series("relay_lag", i),
                    consumer: point_of_series("consumer_lag", i),
                    catchup: point_of_series("catchup_lag", i),
                };
                TopicLag {
                    events: topic_events.get(&topic).copied().unwrap_or_default(),
                    lag: LagStats {
                        relay: percentiles_of("relay_lag", &topic, ""),
                        consumer: percentiles_of("consumer_lag", &topic, ""),
                        catchup: percentiles_of("catchup_lag", &topic, ""),
                    },
                    series: (0..points)
                        .map(|i| LagPoint {
                            at: point_at(i),
                            lag: point_stats(i),
                        })
                        .collect(),
                    level: Default::default(),
                    topic,
                }
            })
            .collect();
        let ingest_points = ingest_points.clone();

        Ok(WindowMetrics {
            from: from_micros(from),
            to: from_micros(to),
            totals,
            saga_types,
            topics,
            ingest: IngestHealth {
                state: String::new(),
                reason: None,
                events_per_second: events as f64 / elapsed_s,
                errors_per_second: errors as f64 / elapsed_s,
                events,
                errors,
                own_lag: None,
                catchup: None,
                series: ingest_points,
            },
        })
    }

    /// The rollup rows of each bucket of `[from, to)` at `grain`, in time
    /// order: from the cache when it has them, the rest from the database
    /// in one range per table; buckets read are cached, empty ones too
    /// (closed ones, ended by `now_us` and by the clock, for longer).
    async fn window_buckets(
        &self,
        grain: i64,
        from: i64,
        to: i64,
        now_us: i64,
    ) -> Result<Vec<WindowBucket>> {
        let grain_us = grain * 1_000_000;
        let starts: Vec<i64> = std::iter::successors(Some(from), |b| Some(b + grain_us))
            .take_while(|b| *b < to)
            .collect();
        let closed_by = now_us.min(micros(chrono::Utc::now()));
        let closed = |bucket: i64| bucket + grain_us <= closed_by;
        let mut found = self
            .rollup_cache
            .get_many(starts.iter().map(|b| (grain, *b)));
        let missing: Vec<i64> = starts
            .iter()
            .copied()
            .filter(|b| !found.contains_key(&(grain, *b)))
            .collect();
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            // Before the read: an invalidation after it means the rows may
            // be older than a commit, and they are not cached.
            let ticket = self.rollup_cache.ticket();
            let mut read = self
                .read_rollup_buckets(grain, *first, last + grain_us)
                .await?;
            let (mut closed_rows, mut open_rows) = (Vec::new(), Vec::new());
            for bucket in missing {
                let rows = Arc::new(read.remove(&bucket).unwrap_or_default());
                if closed(bucket) {
                    closed_rows.push(((grain, bucket), rows.clone()));
                } else {
                    open_rows.push(((grain, bucket), rows.clone()));
                }
                found.insert((grain, bucket), rows);
            }
            self.rollup_cache.put(ticket, closed_rows);
            self.rollup_cache.put_open(ticket, open_rows);
        }
        Ok(starts
            .into_iter()
            .map(|start| WindowBucket {
                start,
                closed: closed(start),
                rows: found.remove(&(grain, start)).unwrap_or_default(),
            })
            .collect())
    }

    /// The non-zero rollup rows of `[from, to)` at `grain`, per bucket: one
    /// index range of each table (keyed grain, bucket, …), the four read
    /// concurrently on the pool.
    async fn read_rollup_buckets(
        &self,
        grain: i64,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<i64, BucketRows>> {
        let range = |sql: &'static str| async move {
            let rows = sqlx::query(sql)
                .bind(grain)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
            Ok::<Vec<AnyRow>, crate::StoreError>(rows)
        };
        let (sagas, steps, topics, histograms) = tokio::try_join!(
            range(
                "SELECT bucket_start_us, saga_type, status, sagas, began_compensating FROM saga_rollups \
                 WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 AND (sagas <> 0 OR began_compensating <> 0)"
            ),
            range(
                "SELECT bucket_start_us, saga_type, step, executions, failures FROM step_rollups \
                 WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 AND (executions <> 0 OR failures <> 0)"
            ),
            range(
                "SELECT bucket_start_us, topic, events, errors FROM topic_rollups \
                 WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3"
            ),
            range(
                "SELECT bucket_start_us, series, subject, detail, value_ms, n FROM histograms \
                 WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 AND n <> 0"
            ),
        )?;
        let mut buckets: BTreeMap<i64, BucketRows> = BTreeMap::new();
        for row in &sagas {
            let entry = (
                row.try_get("saga_type")?,
                row.try_get("status")?,
                row.try_get("sagas")?,
                row.try_get("began_compensating")?,
            );
            bucket_of(&mut buckets, row)?.sagas.push(entry);
        }
        for row in &steps {
            let entry = (
                row.try_get("saga_type")?,
                row.try_get("step")?,
                row.try_get("executions")?,
                row.try_get("failures")?,
            );
            bucket_of(&mut buckets, row)?.steps.push(entry);
        }
        for row in &topics {
            let entry = (
                row.try_get("topic")?,
                row.try_get("events")?,
                row.try_get("errors")?,
            );
            bucket_of(&mut buckets, row)?.topics.push(entry);
        }
        for row in &histograms {
            let entry = (
                row.try_get("series")?,
                row.try_get("subject")?,
                row.try_get("detail")?,
                row.try_get("value_ms")?,
                row.try_get("n")?,
            );
            bucket_of(&mut buckets, row)?.histograms.push(entry);
        }
        Ok(buckets)
    }
}

fn bucket_of<'a>(
    buckets: &'a mut BTreeMap<i64, BucketRows>,
    row: &AnyRow,
) -> Result<&'a mut BucketRows> {
    Ok(buckets.entry(row.try_get("bucket_start_us")?).or_default())
}
