//! The overview's figures from the rollups, on fixed inputs whose rates,
//! percentiles and lag are computed by hand, against Postgres and SQLite.
//! Also: the rollups stay equal to a recount of the sagas through
//! out-of-order delivery, redelivery, merges, stalls and reprojection.

use chrono::{DateTime, TimeZone, Utc};
use sagascope_domain::{Decoder, KafkaCoords, Rules, SagaEvent};
use sagascope_model::{MetricsWindow, Percentiles, Phase};
use sagascope_store::{IngestBatch, NewIngestError, PartitionOffset, StallPolicy, Store};
use sqlx::Row;

sagascope_store::on_both_stores!(
    overview_figures_match_hand_computed_values,
    rollups_equal_a_recount_through_reorders_merges_stalls_and_reproject,
    backlog_counts_as_catch_up_never_as_consumer_lag,
    two_writers_of_one_saga_merge_through_compare_and_set,
    the_cache_of_closed_buckets_gives_the_database_figures_and_sees_new_batches,
    expired_rollups_go_in_bounded_batches_and_windows_ending_now_keep_theirs,
);

/// 2026-11-21T10:00:00Z.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
}

fn ms(at: DateTime<Utc>, offset_ms: i64) -> DateTime<Utc> {
    at + chrono::Duration::milliseconds(offset_ms)
}

struct Spec<'a> {
    saga: &'a str,
    saga_type: &'a str,
    start: DateTime<Utc>,
    topic: &'a str,
    relay_ms: i64,
    consumer_ms: i64,
}

impl Spec<'_> {
    fn event(&self, n: usize, at_ms: i64, phase: Phase, step: Option<&str>) -> SagaEvent {
        let occurred = ms(self.start, at_ms);
        let published = ms(occurred, self.relay_ms);
        SagaEvent {
            event_id: format!("{}-{n}", self.saga),
            saga_id: self.saga.to_string(),
            explicit_saga_id: Some(self.saga.to_string()),
            rule_classified: false,
            correlation_rank: 0,
            correlation_keys: vec![],
            saga_type: Some(self.saga_type.to_string()),
            step: step.map(str::to_string),
            phase,
            event_type: phase.as_str().to_string(),
            trace_id: Some(format!("trace-{}", self.saga)),
            span_id: None,
            request_id: None,
            business_keys: vec![],
            occurred_at: occurred,
            published_at: Some(published),
            ingested_at: ms(published, self.consumer_ms),
            source_type: None,
            source_id: None,
            coords: KafkaCoords {
                topic: self.topic.to_string(),
                partition: 0,
                offset: 0,
            },
            headers: vec![],
            payload: serde_json::json!({}),
            error: None,
        }
    }

    /// Reserve (300 ms), Pay (400 ms, ok or failed), then the end at
    /// `end_ms`; a compensated saga runs ReleaseStock (500 ms) first.
    fn saga(&self, end: Option<(Phase, i64)>) -> Vec<SagaEvent> {
        let mut events = vec![
            self.event(0, 0, Phase::SagaStarted, None),
            self.event(1, 100, Phase::StepStarted, Some("Reserve")),
        ];
        let Some((end_phase, end_ms)) = end else {
            return events;
        };
        events.push(self.event(2, 400, Phase::StepSucceeded, Some("Reserve")));
        events.push(self.event(3, 500, Phase::StepStarted, Some("Pay")));
        let pay = if end_phase == Phase::SagaCompleted {
            Phase::StepSucceeded
        } else {
            Phase::StepFailed
        };
        events.push(self.event(4, 900, pay, Some("Pay")));
        if end_phase == Phase::SagaCompensated {
            events.push(self.event(5, 1000, Phase::CompensationStarted, Some("ReleaseStock")));
            events.push(self.event(6, 1500, Phase::StepCompensated, Some("ReleaseStock")));
        }
        events.push(self.event(7, end_ms, end_phase, None));
        events
    }
}

fn order(saga: &str, start: DateTime<Utc>) -> Spec<'_> {
    Spec {
        saga,
        saga_type: "order",
        start,
        topic: "saga.state",
        relay_ms: 50,
        consumer_ms: 200,
    }
}

fn fixture() -> Vec<SagaEvent> {
    let mut events = Vec::new();
    events.extend(order("o1", t0()).saga(Some((Phase::SagaCompleted, 1000))));
    events.extend(order("o2", ms(t0(), 60_000)).saga(Some((Phase::SagaCompleted, 2000))));
    events.extend(order("o3", ms(t0(), 120_000)).saga(Some((Phase::SagaFailed, 3000))));
    events.extend(order("o4", ms(t0(), 180_000)).saga(Some((Phase::SagaCompensated, 4000))));
    events.extend(order("o5", ms(t0(), 240_000)).saga(None));
    // Two hours earlier: only in the 6 h window.
    events.extend(order("o6", ms(t0(), -2 * 3600 * 1000)).saga(Some((Phase::SagaCompleted, 5000))));
    let chat = Spec {
        saga: "c1",
        saga_type: "chat_message",
        start: ms(t0(), 300_000),
        topic: "chat.events",
        relay_ms: 7000,
        consumer_ms: 100,
    };
    events.extend(chat.saga(Some((Phase::SagaCompleted, 600))));
    events
}

fn batch(events: Vec<SagaEvent>) -> IngestBatch {
    IngestBatch {
        group_id: "g".into(),
        events,
        errors: vec![],
        dead_letters: vec![],
        offsets: vec![],
        backlog: vec![],
    }
}

fn pct(count: i64, p50: i64, p95: i64, p99: i64, max: i64) -> Percentiles {
    Percentiles {
        count,
        p50_ms: Some(p50),
        p95_ms: Some(p95),
        p99_ms: Some(p99),
        max_ms: Some(max),
    }
}

async fn overview_figures_match_hand_computed_values(store: &Store) {
    let mut b = batch(fixture());
    b.errors.push(NewIngestError {
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset: 99,
        },
        reason: "expected value".into(),
        first_bytes: "{".into(),
        key: None,
        published_at: None,
        ingested_at: ms(t0(), 10_000),
    });
    store.write_batch(&b).await.unwrap();
    let now = ms(t0(), 30 * 60_000); // 10:30:00

    // 1 h window: 09:31 .. 10:31, minute grain.
    let m = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    assert_eq!(
        m.from,
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 31, 0).unwrap()
    );
    assert_eq!(m.to, Utc.with_ymd_and_hms(2026, 11, 21, 10, 31, 0).unwrap());
    let types: Vec<&str> = m.saga_types.iter().map(|t| t.saga_type.as_str()).collect();
    assert_eq!(types, ["chat_message", "order"]);
    let o = &m.saga_types[1];
    let c = &o.counts;
    assert_eq!(
        (
            c.started,
            c.running,
            c.completed,
            c.failed,
            c.compensated,
            c.finished,
            c.began_compensating
        ),
        (5, 1, 2, 1, 1, 4, 1)
    );
    assert_eq!(o.failure_rate, Some(0.25));
    assert_eq!(o.compensation_rate, Some(0.25));
    // Durations 1, 2, 3, 4 s: nearest rank p50 = 2nd, p95 = p99 = 4th.
    assert_eq!(o.duration, pct(4, 2000, 4000, 4000, 4000));
    // 5 started over the 59 minutes from 09:31 to 10:30.
    assert!((o.throughput_per_min - 5.0 / 59.0).abs() < 1e-9);
    // Sparkline points of 2 min from 09:31: 10:00 (o1) is point 14, 10:01
    // and 10:02 (o2 completed, o3 failed) point 15, 10:03 and 10:04 (o4
    // compensated, o5 running) point 16.
    let started: Vec<i64> = o.series.iter().map(|p| p.started).collect();
    assert_eq!(started.len(), 30);
    assert_eq!(&started[14..17], [1, 2, 2]);
    assert_eq!(started.iter().sum::<i64>(), 5);
    assert_eq!(o.series[15].failure_rate, Some(0.5));
    assert_eq!(o.series[15].compensation_rate, Some(0.0));
    assert_eq!(o.series[16].compensation_rate, Some(1.0));
    assert_eq!(o.series[13].failure_rate, None);
    // Steps, slowest p95 first: ReleaseStock 500, Pay 400, Reserve 300
    // (o5's lone Reserve event took 100 ms since its start).
    // (step, executions, failures, p50, p95)
    type StepFigures<'a> = (&'a str, i64, i64, Option<i64>, Option<i64>);
    let steps: Vec<StepFigures> = o
        .steps
        .iter()
        .map(|s| {
            (
                s.step.as_str(),
                s.executions,
                s.failures,
                s.duration.p50_ms,
                s.duration.p95_ms,
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("ReleaseStock", 1, 0, Some(500), Some(500)),
            ("Pay", 4, 2, Some(400), Some(400)),
            ("Reserve", 5, 0, Some(300), Some(300)),
        ]
    );
    assert_eq!(o.steps[1].failure_rate, Some(0.5));
    assert_eq!(m.totals.started, 6);
    assert_eq!(m.totals.finished, 5);

    // Lag: saga.state relay 50 ms, consumer 200 ms (o1–o5: 28 events);
    // chat.events relay 7 s, consumer 100 ms (6 events).
    let lag: Vec<(&str, i64, Percentiles, Percentiles)> = m
        .topics
        .iter()
        .map(|t| (t.topic.as_str(), t.events, t.lag.relay, t.lag.consumer))
        .collect();
    assert_eq!(
        lag,
        [
            (
                "chat.events",
                6,
                pct(6, 7000, 7000, 7000, 7000),
                pct(6, 100, 100, 100, 100)
            ),
            (
                "saga.state",
                28,
                pct(28, 50, 50, 50, 50),
                pct(28, 200, 200, 200, 200)
            ),
        ]
    );
    assert_eq!(m.ingest.events, 34);
    assert_eq!(m.ingest.errors, 1);
    assert!((m.ingest.events_per_second - 34.0 / 3540.0).abs() < 1e-9);

    // 6 h window: o6 joins (completed in 5 s).
    let m = store
        .window_metrics(MetricsWindow::Hours6, now)
        .await
        .unwrap();
    let o = m
        .saga_types
        .iter()
        .find(|t| t.saga_type == "order")
        .unwrap();
    assert_eq!(
        (o.counts.started, o.counts.completed, o.counts.finished),
        (6, 3, 5)
    );
    assert_eq!(o.failure_rate, Some(0.2));
    // 1..5 s: p50 = 3rd, p95 = 5th.
    assert_eq!(o.duration, pct(5, 3000, 5000, 5000, 5000));

    // 15 min window (10:16 .. 10:31): nothing started.
    let m = store
        .window_metrics(MetricsWindow::Minutes15, now)
        .await
        .unwrap();
    assert!(m.saga_types.is_empty());
    // 24 h window reads the hour rollups and sees the same sagas.
    let m = store
        .window_metrics(MetricsWindow::Hours24, now)
        .await
        .unwrap();
    assert_eq!(m.totals.started, 7);
}

/// The window totals of 7 d against a count of the saga rows.
async fn assert_rollups_match_sagas(store: &Store, now: DateTime<Utc>, context: &str) {
    let m = store
        .window_metrics(MetricsWindow::Days7, now)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT saga_type, status, COUNT(*) AS n FROM sagas WHERE kind = 'saga' GROUP BY saga_type, status ORDER BY saga_type, status",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut recount: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.get("saga_type"), r.get("status"), r.get("n")))
        .collect();
    recount.sort();
    let total: i64 = recount.iter().map(|r| r.2).sum();
    assert_eq!(
        m.totals.started, total,
        "{context}: {recount:?} vs {:?}",
        m.totals
    );
    for (saga_type, status, n) in &recount {
        let t = m
            .saga_types
            .iter()
            .find(|t| &t.saga_type == saga_type)
            .unwrap();
        let got = match status.as_str() {
            "completed" => t.counts.completed,
            "failed" => t.counts.failed,
            "compensated" => t.counts.compensated,
            "stalled" => t.counts.stalled,
            "running" | "compensating" => t.counts.running,
            other => panic!("unexpected status {other}"),
        };
        assert!(got >= *n, "{context}: {saga_type}/{status}: {got} < {n}");
    }
}

async fn rollups_equal_a_recount_through_reorders_merges_stalls_and_reproject(store: &Store) {
    let now = ms(t0(), 30 * 60_000);
    // Reverse order, in three batches, with a redelivery of the first.
    let mut events = fixture();
    events.reverse();
    let chunks: Vec<Vec<SagaEvent>> = events.chunks(12).map(<[SagaEvent]>::to_vec).collect();
    for chunk in &chunks {
        store.write_batch(&batch(chunk.clone())).await.unwrap();
    }
    store.write_batch(&batch(chunks[0].clone())).await.unwrap();
    assert_rollups_match_sagas(store, now, "reordered").await;
    let in_order = store
        .window_metrics(MetricsWindow::Hours6, now)
        .await
        .unwrap();
    let o = in_order
        .saga_types
        .iter()
        .find(|t| t.saga_type == "order")
        .unwrap();
    assert_eq!(o.duration, pct(5, 3000, 5000, 5000, 5000));
    assert_eq!(
        (
            o.counts.started,
            o.counts.running,
            o.counts.began_compensating
        ),
        (6, 1, 1)
    );

    // o5 goes quiet: stalled moves it from running to stalled.
    let policy = StallPolicy {
        default_timeout: std::time::Duration::from_secs(60),
        per_type: vec![],
    };
    store.mark_stalled(&policy, now).await.unwrap();
    let m = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    let o = m
        .saga_types
        .iter()
        .find(|t| t.saga_type == "order")
        .unwrap();
    assert_eq!(
        (o.counts.running, o.counts.stalled, o.counts.started),
        (0, 1, 5)
    );
    assert_rollups_match_sagas(store, now, "stalled").await;

    // Two instances that turn out to be one (a shared key): one saga.
    // Reprojection correlates them by their trace under the default rules.
    let mut a = order("m-a", ms(t0(), 600_000)).event(0, 0, Phase::SagaStarted, None);
    a.trace_id = Some("shared".into());
    a.explicit_saga_id = None;
    a.correlation_rank = 1;
    a.correlation_keys = vec!["trace:shared".into(), "aggregate:order:A".into()];
    let mut b = order("m-b", ms(t0(), 600_000)).event(1, 100, Phase::StepStarted, Some("Reserve"));
    b.trace_id = Some("shared".into());
    b.explicit_saga_id = None;
    b.correlation_rank = 1;
    b.correlation_keys = vec!["aggregate:order:B".into()];
    store.write_batch(&batch(vec![a])).await.unwrap();
    store.write_batch(&batch(vec![b.clone()])).await.unwrap();
    let before = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    assert_eq!(before.totals.started, 8, "two instances so far");
    let mut joiner = b.clone();
    joiner.event_id = "m-b-2".into();
    joiner.phase = Phase::StepSucceeded;
    joiner.occurred_at = ms(joiner.occurred_at, 300);
    joiner.correlation_keys = vec!["aggregate:order:B".into(), "trace:shared".into()];
    let outcome = store.write_batch(&batch(vec![joiner])).await.unwrap();
    assert_eq!(outcome.merged.len(), 1);
    let after = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    assert_eq!(after.totals.started, 7, "merged into one");
    assert_rollups_match_sagas(store, now, "merged").await;

    // Reprojection rebuilds the saga rollups to the same figures.
    let before = store
        .window_metrics(MetricsWindow::Hours6, now)
        .await
        .unwrap();
    store
        .reproject(&Decoder::new(Rules::default()), 7, |_| {})
        .await
        .unwrap();
    assert_rollups_match_sagas(store, now, "reprojected").await;
    let after = store
        .window_metrics(MetricsWindow::Hours6, now)
        .await
        .unwrap();
    // Reprojection recomputes statuses from the events: the stall sweep's
    // `stalled` goes back to running until the next sweep.
    let mut expected = before.totals;
    expected.running += expected.stalled;
    expected.stalled = 0;
    assert_eq!(after.totals, expected);
    assert_eq!(
        after.topics, before.topics,
        "lag rollups belong to the events"
    );
}

/// Events numbered as consecutive offsets of partition 0 from `first`.
fn at_offsets(mut events: Vec<SagaEvent>, first: i64) -> Vec<SagaEvent> {
    for (i, event) in events.iter_mut().enumerate() {
        event.coords.offset = first + i as i64;
    }
    events
}

fn next_offset(topic: &str, next_offset: i64) -> PartitionOffset {
    PartitionOffset {
        topic: topic.into(),
        partition: 0,
        next_offset,
    }
}

/// The start-up catch-up: the events of messages that were already in
/// Kafka when the consumer got the partition (below the batch's backlog
/// bound) add their ingested − Kafka time to the catch-up, never to the
/// consumer lag that the thresholds watch; the messages after them, in the
/// same batch or later ones, are consumer lag as before. Events, counts
/// and offsets are stored alike, and a redelivery changes nothing.
async fn backlog_counts_as_catch_up_never_as_consumer_lag(store: &Store) {
    // History read at start: 1,700,000 ms (28 min 20 s) between Kafka and
    // the ingest. Two sagas of 6 events: offsets 0..12.
    let history = |saga, start| Spec {
        saga,
        saga_type: "order",
        start,
        topic: "saga.state",
        relay_ms: 50,
        consumer_ms: 1_700_000,
    };
    let mut events = history("h1", t0()).saga(Some((Phase::SagaCompleted, 1000)));
    events.extend(history("h2", ms(t0(), 60_000)).saga(Some((Phase::SagaCompleted, 1000))));
    let mut events = at_offsets(events, 0);
    assert_eq!(events.len(), 12);
    // Produced after the start, in the same batch: offsets 12..18.
    let fresh = order("n1", ms(t0(), 28 * 60_000)).saga(Some((Phase::SagaCompleted, 1000)));
    events.extend(at_offsets(fresh, 12));
    let first = IngestBatch {
        events,
        offsets: vec![next_offset("saga.state", 18)],
        backlog: vec![next_offset("saga.state", 12)],
        ..batch(vec![])
    };
    assert!(first.is_backlog(&first.events[11].coords));
    assert!(!first.is_backlog(&first.events[12].coords));
    store.write_batch(&first).await.unwrap();
    // A later batch, no backlog: consumer lag 300 ms. Offsets 18..24.
    let mut later = Spec {
        consumer_ms: 300,
        ..order("n2", ms(t0(), 29 * 60_000))
    }
    .saga(Some((Phase::SagaCompleted, 1000)));
    later = at_offsets(later, 18);
    store
        .write_batch(&IngestBatch {
            offsets: vec![next_offset("saga.state", 24)],
            ..batch(later)
        })
        .await
        .unwrap();

    let now = ms(t0(), 30 * 60_000);
    let check = |m: &sagascope_store::WindowMetrics| {
        assert_eq!(m.topics.len(), 1);
        let t = &m.topics[0];
        assert_eq!((t.topic.as_str(), t.events), ("saga.state", 24));
        assert_eq!(t.lag.relay, pct(24, 50, 50, 50, 50));
        // 200 ms ×6 then 300 ms ×6: p50 = 6th, p95 = p99 = 12th.
        assert_eq!(t.lag.consumer, pct(12, 200, 300, 300, 300));
        assert_eq!(
            t.lag.catchup,
            pct(12, 1_700_000, 1_700_000, 1_700_000, 1_700_000)
        );
        let points: i64 = t.series.iter().map(|p| p.lag.catchup.count).sum();
        assert_eq!(points, 12);
        let points: i64 = t.series.iter().map(|p| p.lag.consumer.count).sum();
        assert_eq!(points, 12);
        assert_eq!(m.totals.started, 4);
        assert_eq!(m.ingest.events, 24);
    };
    let m = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    check(&m);

    // The offsets moved as for any batch.
    let next: i64 = sqlx::query(
        "SELECT next_offset FROM consumer_offsets WHERE group_id = 'g' AND topic = 'saga.state' AND kafka_partition = 0",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
    .get("next_offset");
    assert_eq!(next, 24);

    // Redelivered after a restart (now below nobody's bound): duplicates,
    // no figure moves.
    let again = IngestBatch {
        backlog: vec![],
        ..first
    };
    let outcome = store.write_batch(&again).await.unwrap();
    assert_eq!((outcome.duplicates, outcome.new_events.len()), (18, 0));
    let m = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    check(&m);
}

/// Two handles on one database (two replicas: each has its own projection
/// cache) write one saga's events alternately, with the stall sweep in
/// between: every write that started from a stale cached row is detected
/// by the version compare-and-set, re-read and merged again, so the saga
/// ends with all its events and the rollups equal a recount.
async fn two_writers_of_one_saga_merge_through_compare_and_set(store: &Store) {
    let other = sagascope_store::test_support::another_handle(store).await;
    let spec = order("split", t0());
    let e = |n, at_ms, phase, step| spec.event(n, at_ms, phase, step);
    // Replica A starts the saga (it is cached in A now).
    store
        .write_batch(&batch(vec![e(0, 0, Phase::SagaStarted, None)]))
        .await
        .unwrap();
    // Replica B writes the next step: A's cached copy is stale.
    other
        .write_batch(&batch(vec![e(1, 100, Phase::StepStarted, Some("Reserve"))]))
        .await
        .unwrap();
    let (hits_before, _) = store.projection_cache_counts();
    store
        .write_batch(&batch(vec![e(
            2,
            200,
            Phase::StepSucceeded,
            Some("Reserve"),
        )]))
        .await
        .unwrap();
    assert_eq!(
        store.projection_cache_counts().0,
        hits_before + 1,
        "A wrote from its (stale) cached copy"
    );
    // The stall sweep marks it (a third writer of the row), then B ends it
    // from its own stale copy.
    let later = ms(t0(), 3_600_000);
    let policy = StallPolicy {
        default_timeout: std::time::Duration::from_secs(60),
        per_type: vec![],
    };
    assert_eq!(store.mark_stalled(&policy, later).await.unwrap().len(), 1);
    other
        .write_batch(&batch(vec![e(3, 300, Phase::SagaCompleted, None)]))
        .await
        .unwrap();

    for handle in [store, &other] {
        let detail = handle.saga_detail("split").await.unwrap().unwrap();
        assert_eq!(detail.events.len(), 4);
        assert_eq!(detail.saga.status, sagascope_model::SagaStatus::Completed);
        assert_eq!(
            detail.saga.event_count, 4,
            "the projection merged every event"
        );
    }
    let m = store
        .window_metrics(MetricsWindow::Days7, later)
        .await
        .unwrap();
    let o = m
        .saga_types
        .iter()
        .find(|t| t.saga_type == "order")
        .unwrap();
    assert_eq!(
        (
            o.counts.started,
            o.counts.completed,
            o.counts.running,
            o.counts.stalled
        ),
        (1, 1, 0, 0)
    );
    assert_rollups_match_sagas(store, later, "two writers").await;
    other.close().await;
}

/// Every window, read twice by one handle (the second time its closed
/// buckets come from the cache), equals the read of a handle with an empty
/// cache (the database); a batch written after those reads, into closed
/// buckets of every grain, is in the next read of the first handle (the
/// write invalidated what it changed), which again equals the database.
async fn the_cache_of_closed_buckets_gives_the_database_figures_and_sees_new_batches(
    store: &Store,
) {
    store.write_batch(&batch(fixture())).await.unwrap();
    let now = ms(t0(), 30 * 60_000);
    let mut first = Vec::new();
    for window in MetricsWindow::ALL {
        let from_db = store.window_metrics(window, now).await.unwrap();
        let (hits, _) = store.rollup_cache_counts();
        let cached = store.window_metrics(window, now).await.unwrap();
        assert!(
            store.rollup_cache_counts().0 > hits,
            "{window:?}: the second read used the cache"
        );
        assert_eq!(cached, from_db, "{window:?}");
        let fresh = sagascope_store::test_support::another_handle(store).await;
        assert_eq!(
            fresh.window_metrics(window, now).await.unwrap(),
            from_db,
            "{window:?}: a handle without a cache reads the same"
        );
        fresh.close().await;
        first.push(from_db.totals.started);
    }
    assert_eq!(first, [0, 6, 7, 7, 7], "15m, 1h, 6h, 24h, 7d");

    // Sagas starting in closed buckets: 10:05 (closed at the 1 min and
    // 10 min grains), 07:00 (closed at 1 h) and a day earlier (closed at
    // 6 h); and a saga of the cached 10:00 minute ends (a status change).
    let mut events = order("late-1", ms(t0(), 5 * 60_000)).saga(Some((Phase::SagaCompleted, 900)));
    events.extend(order("late-2", ms(t0(), -3 * 3_600_000)).saga(None));
    events.extend(order("late-3", ms(t0(), -24 * 3_600_000)).saga(Some((Phase::SagaFailed, 2000))));
    events.push(order("o5", ms(t0(), 240_000)).event(7, 1200, Phase::SagaCompleted, None));
    store.write_batch(&batch(events)).await.unwrap();
    let fresh = sagascope_store::test_support::another_handle(store).await;
    let mut after = Vec::new();
    for window in MetricsWindow::ALL {
        let m = store.window_metrics(window, now).await.unwrap();
        assert_eq!(
            m,
            fresh.window_metrics(window, now).await.unwrap(),
            "{window:?}: invalidated by the batch"
        );
        after.push((m.totals.started, m.totals.running));
    }
    fresh.close().await;
    // o5 completed; late-2 is running where the window reaches it.
    assert_eq!(after, [(0, 0), (7, 0), (9, 1), (9, 1), (10, 1)]);
}

/// Rollup rows no window ending now reads go, in batches of at most the
/// batch size; what the windows ending now read stays unchanged.
async fn expired_rollups_go_in_bounded_batches_and_windows_ending_now_keep_theirs(store: &Store) {
    store.write_batch(&batch(fixture())).await.unwrap();
    let now = ms(t0(), 30 * 60_000);
    let mut before = Vec::new();
    for window in MetricsWindow::ALL {
        before.push(store.window_metrics(window, now).await.unwrap());
    }
    let rows = |grain: i64| async move {
        let mut total = 0i64;
        for table in [
            "saga_rollups",
            "step_rollups",
            "topic_rollups",
            "histograms",
        ] {
            let n: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE grain_s = $1"
            ))
            .bind(grain)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("n");
            total += n;
        }
        total
    };
    let minute_rows = rows(60).await;
    // o6 (08:00) is older than the 2 h kept at the minute grain.
    let old_minute_rows: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM saga_rollups WHERE grain_s = 60 AND bucket_start_us < $1",
    )
    .bind(ms(now, -2 * 3_600_000).timestamp_micros())
    .fetch_one(store.pool())
    .await
    .unwrap()
    .get("n");
    assert!(old_minute_rows > 0);
    let coarse = [rows(600).await, rows(3600).await, rows(21600).await];

    let mut removed = 0;
    let mut batches = 0;
    loop {
        let n = store.delete_expired_rollups(now, 3).await.unwrap();
        assert!(n <= 3, "a batch removes at most its size: {n}");
        removed += n;
        batches += 1;
        if n < 3 {
            break;
        }
    }
    assert!(batches > 1, "several batches of 3");
    assert!(removed > 0);
    assert_eq!(rows(60).await, minute_rows - removed as i64);
    assert_eq!(
        [rows(600).await, rows(3600).await, rows(21600).await],
        coarse,
        "the coarser grains are still within their span"
    );
    for (window, before) in MetricsWindow::ALL.into_iter().zip(&before) {
        assert_eq!(
            &store.window_metrics(window, now).await.unwrap(),
            before,
            "{window:?} ending now reads what it read"
        );
    }
    assert_eq!(store.delete_expired_rollups(now, 3).await.unwrap(), 0);

    // Ten days on, every grain has aged out.
    let later = ms(now, 10 * 86_400_000);
    while store.delete_expired_rollups(later, 1000).await.unwrap() == 1000 {}
    for grain in [60, 600, 3600, 21600] {
        assert_eq!(rows(grain).await, 0, "grain {grain}");
    }
    let m = store
        .window_metrics(MetricsWindow::Days7, now)
        .await
        .unwrap();
    assert_eq!(m.totals.started, 0, "the cache was cleared too");
}
