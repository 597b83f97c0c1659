//! The overview's figures for a window, read from the rollups only (never
//! the raw events): outcome counts and rates per saga type with their
//! sparkline points, per-step counts and durations, duration and lag
//! percentiles, events and ingest errors per topic.

use std::collections::BTreeMap;

use sagascope_domain::histogram::percentiles;
use sagascope_domain::{from_micros, micros};
use sagascope_model::{
    ratio, IngestHealth, IngestPoint, LagPoint, LagStats, MetricsWindow, OutcomeCounts,
    Percentiles, RatePoint, SagaStatus, SagaTypeMetrics, StepMetrics, Timestamp, TopicLag,
};
use sqlx::Row;

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

fn count_status(counts: &mut OutcomeCounts, status: &str, n: i64, compensating: i64) {
    counts.started += n;
    counts.began_compensating += compensating;
    match SagaStatus::parse(status) {
        Some(SagaStatus::Running | SagaStatus::Compensating) => counts.running += n,
        Some(SagaStatus::Stalled) => counts.stalled += n,
        Some(SagaStatus::Completed) => counts.completed += n,
        Some(SagaStatus::Failed) => counts.failed += n,
        Some(SagaStatus::Compensated) => counts.compensated += n,
        Some(SagaStatus::CompensationFailed) => counts.compensation_failed += n,
        Some(SagaStatus::TimedOut) => counts.timed_out += n,
        None => {}
    }
    if SagaStatus::parse(status).is_some_and(SagaStatus::is_finished) {
        counts.finished += n;
    }
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
        let point_of = |p: i64| usize::try_from(p).unwrap_or(0).min(points - 1);
        // Per-second rates divide by the part of the window that has passed.
        let elapsed_s = ((micros(now).min(to) - from) as f64 / 1e6).max(1.0);

        // Outcomes per type, status and chart point.
        let rows = sqlx::query(
            "SELECT saga_type, status, (bucket_start_us - $2) / $4 AS point, CAST(SUM(sagas) AS BIGINT) AS n, CAST(SUM(began_compensating) AS BIGINT) AS c \
             FROM saga_rollups WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 \
             GROUP BY saga_type, status, (bucket_start_us - $2) / $4",
        )
        .bind(grain)
        .bind(from)
        .bind(to)
        .bind(point_us)
        .fetch_all(&self.pool)
        .await?;
        let mut by_type: BTreeMap<String, (OutcomeCounts, Vec<OutcomeCounts>)> = BTreeMap::new();
        for row in &rows {
            let saga_type: String = row.try_get("saga_type")?;
            let status: String = row.try_get("status")?;
            let point: i64 = row.try_get("point")?;
            let n: i64 = row.try_get("n")?;
            let c: i64 = row.try_get("c")?;
            let entry = by_type.entry(saga_type).or_insert_with(|| {
                (
                    OutcomeCounts::default(),
                    vec![OutcomeCounts::default(); points],
                )
            });
            count_status(&mut entry.0, &status, n, c);
            count_status(&mut entry.1[point_of(point)], &status, n, c);
        }

        // Steps per type.
        let rows = sqlx::query(
            "SELECT saga_type, step, CAST(SUM(executions) AS BIGINT) AS n, CAST(SUM(failures) AS BIGINT) AS f FROM step_rollups \
             WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 GROUP BY saga_type, step",
        )
        .bind(grain)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut steps: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            if n > 0 {
                steps.insert(
                    (row.try_get("saga_type")?, row.try_get("step")?),
                    (n, row.try_get("f")?),
                );
            }
        }

        // Histograms over the whole window, and lag per chart point.
        let rows = sqlx::query(
            "SELECT series, subject, detail, value_ms, CAST(SUM(n) AS BIGINT) AS n FROM histograms \
             WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 \
             GROUP BY series, subject, detail, value_ms",
        )
        .bind(grain)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut histograms: BTreeMap<(String, String, String), Vec<(i64, i64)>> = BTreeMap::new();
        for row in &rows {
            histograms
                .entry((
                    row.try_get("series")?,
                    row.try_get("subject")?,
                    row.try_get("detail")?,
                ))
                .or_default()
                .push((row.try_get("value_ms")?, row.try_get("n")?));
        }
        let rows = sqlx::query(
            "SELECT series, subject, (bucket_start_us - $2) / $4 AS point, value_ms, CAST(SUM(n) AS BIGINT) AS n FROM histograms \
             WHERE grain_s = $1 AND series IN ('relay_lag', 'consumer_lag', 'catchup_lag') AND bucket_start_us >= $2 AND bucket_start_us < $3 \
             GROUP BY series, subject, (bucket_start_us - $2) / $4, value_ms",
        )
        .bind(grain)
        .bind(from)
        .bind(to)
        .bind(point_us)
        .fetch_all(&self.pool)
        .await?;
        let mut lag_points: BTreeMap<(String, String, i64), Vec<(i64, i64)>> = BTreeMap::new();
        for row in &rows {
            lag_points
                .entry((
                    row.try_get("series")?,
                    row.try_get("subject")?,
                    row.try_get("point")?,
                ))
                .or_default()
                .push((row.try_get("value_ms")?, row.try_get("n")?));
        }

        // Events and errors per topic and point.
        let rows = sqlx::query(
            "SELECT topic, (bucket_start_us - $2) / $4 AS point, CAST(SUM(events) AS BIGINT) AS e, CAST(SUM(errors) AS BIGINT) AS x FROM topic_rollups \
             WHERE grain_s = $1 AND bucket_start_us >= $2 AND bucket_start_us < $3 \
             GROUP BY topic, (bucket_start_us - $2) / $4",
        )
        .bind(grain)
        .bind(from)
        .bind(to)
        .bind(point_us)
        .fetch_all(&self.pool)
        .await?;
        let mut topic_events: BTreeMap<String, i64> = BTreeMap::new();
        let mut ingest_points: Vec<IngestPoint> = (0..points)
            .map(|i| IngestPoint {
                at: point_at(i),
                events: 0,
                errors: 0,
            })
            .collect();
        let (mut events, mut errors) = (0, 0);
        for row in &rows {
            let topic: String = row.try_get("topic")?;
            let point: i64 = row.try_get("point")?;
            let e: i64 = row.try_get("e")?;
            let x: i64 = row.try_get("x")?;
            *topic_events.entry(topic).or_default() += e;
            ingest_points[point_of(point)].events += e;
            ingest_points[point_of(point)].errors += x;
            events += e;
            errors += x;
        }

        let percentiles_of = |series: &str, subject: &str, detail: &str| -> Percentiles {
            histograms
                .get(&(series.to_string(), subject.to_string(), detail.to_string()))
                .map(|h| percentiles(h))
                .unwrap_or_default()
        };
        let mut totals = OutcomeCounts::default();
        let saga_types = by_type
            .into_iter()
            .filter(|(_, (counts, _))| counts.started > 0)
            .map(|(saga_type, (counts, series))| {
                totals.add(&counts);
                let mut type_steps: Vec<StepMetrics> = steps
                    .iter()
                    .filter(|((t, _), _)| *t == saga_type)
                    .map(|((_, step), (n, f))| StepMetrics {
                        step: step.clone(),
                        executions: *n,
                        failures: *f,
                        failure_rate: ratio(*f, *n),
                        duration: percentiles_of("step", &saga_type, step),
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
                    duration: percentiles_of("saga", &saga_type, ""),
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
                    saga_type,
                }
            })
            .collect();

        let mut lag_topics: Vec<String> = topic_events.keys().cloned().collect();
        for (series, subject, _) in histograms.keys() {
            if series.ends_with("_lag") && !lag_topics.contains(subject) {
                lag_topics.push(subject.clone());
            }
        }
        lag_topics.sort();
        let topics = lag_topics
            .into_iter()
            .map(|topic| {
                let point_of_series = |series: &str, i: usize| {
                    lag_points
                        .get(&(series.to_string(), topic.clone(), i as i64))
                        .map(|h| percentiles(h))
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
}
