//! Retention on Postgres and SQLite: what goes (ended and stalled sagas
//! quiet since before the cutoff, with their events and keys; closed dead
//! letters; ingest errors), what stays (a saga that ended just after the
//! cutoff, running sagas, open dead letters, the rollups behind the
//! overview's historic counts), and that a batch never exceeds its size.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sagascope_domain::{KafkaCoords, SagaEvent};
use sagascope_model::{MetricsWindow, Phase};
use sagascope_store::{IngestBatch, NewIngestError, SagaRetentionBatch, StallPolicy, Store};
use sqlx::Row;

sagascope_store::on_both_stores!(
    ended_and_stalled_sagas_before_the_cutoff_go_with_their_events_and_keys,
    batches_are_bounded_and_repeat_until_nothing_is_left,
    rollups_and_the_overview_history_are_unchanged,
    open_dead_letters_stay_closed_old_ones_go,
    ingest_errors_before_the_cutoff_go,
);

/// 2026-11-21T10:00:00Z: "now" of these tests.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
}

/// 30 days of retention.
fn cutoff() -> DateTime<Utc> {
    now() - Duration::days(30)
}

fn event(saga: &str, n: usize, at: DateTime<Utc>, phase: Phase) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga}-{n}"),
        saga_id: saga.to_string(),
        explicit_saga_id: Some(saga.to_string()),
        rule_classified: false,
        correlation_rank: 0,
        correlation_keys: vec![format!("saga:{saga}")],
        saga_type: Some("order".to_string()),
        step: Some("Reserve".to_string()),
        phase,
        event_type: phase.as_str().to_string(),
        trace_id: Some(format!("trace-{saga}")),
        span_id: None,
        request_id: None,
        business_keys: vec![],
        occurred_at: at,
        published_at: Some(at),
        ingested_at: at,
        source_type: None,
        source_id: None,
        coords: KafkaCoords {
            topic: "saga.state".to_string(),
            partition: 0,
            offset: n as i64,
        },
        headers: vec![],
        payload: serde_json::json!({ "saga": saga }),
        error: None,
    }
}

/// A saga started at `start` whose last event is at `last`: completed
/// there when `ends`, else still running.
fn saga(id: &str, start: DateTime<Utc>, last: DateTime<Utc>, ends: bool) -> Vec<SagaEvent> {
    vec![
        event(id, 0, start, Phase::SagaStarted),
        event(
            id,
            1,
            last,
            if ends {
                Phase::SagaCompleted
            } else {
                Phase::StepStarted
            },
        ),
    ]
}

async fn write(store: &Store, events: Vec<SagaEvent>) {
    store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            events,
            ..IngestBatch::default()
        })
        .await
        .unwrap();
}

async fn count(store: &Store, sql: &str, saga: &str) -> i64 {
    sqlx::query(sql)
        .bind(saga.to_string())
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

/// Rows of `events`, `saga_keys`, `correlation_keys` and `sagas` of one saga.
async fn rows_of(store: &Store, saga: &str) -> [i64; 4] {
    [
        count(
            store,
            "SELECT COUNT(*) FROM events WHERE saga_id = $1",
            saga,
        )
        .await,
        count(
            store,
            "SELECT COUNT(*) FROM saga_keys WHERE saga_id = $1",
            saga,
        )
        .await,
        count(
            store,
            "SELECT COUNT(*) FROM correlation_keys WHERE saga_id = $1",
            saga,
        )
        .await,
        count(store, "SELECT COUNT(*) FROM sagas WHERE saga_id = $1", saga).await,
    ]
}

async fn stall_sweep(store: &Store) {
    let policy = StallPolicy {
        default_timeout: std::time::Duration::from_secs(3600),
        per_type: vec![],
    };
    store.mark_stalled(&policy, now()).await.unwrap();
}

async fn ended_and_stalled_sagas_before_the_cutoff_go_with_their_events_and_keys(store: &Store) {
    let old = cutoff() - Duration::days(10);
    let mut events = saga("ended-old", old, cutoff() - Duration::seconds(1), true);
    // Ended a millisecond after the cutoff: stays.
    events.extend(saga(
        "ended-after-cutoff",
        old,
        cutoff() + Duration::milliseconds(1),
        true,
    ));
    // Quiet since long before the cutoff, stalled by the sweep: goes.
    events.extend(saga("stalled-old", old, old + Duration::seconds(5), false));
    // Running and recent: stays (the stall sweep leaves it running).
    events.extend(saga(
        "running-recent",
        now() - Duration::minutes(10),
        now() - Duration::minutes(1),
        false,
    ));
    write(store, events).await;
    stall_sweep(store).await;
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM sagas WHERE saga_id = $1 AND status = 'stalled'",
            "stalled-old"
        )
        .await,
        1
    );
    // Old but still running (no sweep has marked it): stays.
    write(
        store,
        saga("running-old", old, old + Duration::seconds(5), false),
    )
    .await;
    for saga in ["ended-old", "stalled-old"] {
        let [events, keys, correlation, sagas] = rows_of(store, saga).await;
        assert!(events == 2 && keys >= 1 && correlation == 1 && sagas == 1);
    }

    let removed = store
        .delete_sagas_ended_before(cutoff(), 1000)
        .await
        .unwrap();
    assert_eq!(
        removed,
        SagaRetentionBatch {
            sagas: 2,
            events: 4
        }
    );
    for saga in ["ended-old", "stalled-old"] {
        assert_eq!(rows_of(store, saga).await, [0, 0, 0, 0], "{saga}");
    }
    for saga in ["ended-after-cutoff", "running-old", "running-recent"] {
        let [events, keys, correlation, sagas] = rows_of(store, saga).await;
        assert_eq!((events, sagas, correlation), (2, 1, 1), "{saga}");
        assert!(keys >= 1, "{saga}");
    }
    assert!(store.saga_detail("ended-old").await.unwrap().is_none());
    assert!(store
        .saga_detail("ended-after-cutoff")
        .await
        .unwrap()
        .is_some());
    // Nothing more to do.
    assert_eq!(
        store
            .delete_sagas_ended_before(cutoff(), 1000)
            .await
            .unwrap(),
        SagaRetentionBatch::default()
    );
}

async fn batches_are_bounded_and_repeat_until_nothing_is_left(store: &Store) {
    const BATCH: u32 = 5;
    let old = cutoff() - Duration::days(3);
    let mut events = Vec::new();
    for i in 0..=BATCH {
        let start = old + Duration::seconds(i64::from(i));
        events.extend(saga(
            &format!("old-{i}"),
            start,
            start + Duration::seconds(1),
            true,
        ));
    }
    write(store, events).await;
    let first = store
        .delete_sagas_ended_before(cutoff(), BATCH)
        .await
        .unwrap();
    assert_eq!(
        first,
        SagaRetentionBatch {
            sagas: u64::from(BATCH),
            events: 2 * u64::from(BATCH)
        }
    );
    // Oldest first: the youngest of the N + 1 is left for the second batch.
    assert_eq!(
        rows_of(store, &format!("old-{BATCH}")).await[3],
        1,
        "oldest first"
    );
    let second = store
        .delete_sagas_ended_before(cutoff(), BATCH)
        .await
        .unwrap();
    assert_eq!(
        second,
        SagaRetentionBatch {
            sagas: 1,
            events: 2
        }
    );
    let third = store
        .delete_sagas_ended_before(cutoff(), BATCH)
        .await
        .unwrap();
    assert_eq!(third, SagaRetentionBatch::default());
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM sagas WHERE saga_id <> $1", "").await,
        0
    );
}

/// Every rollup row, as text, in a fixed order.
async fn rollup_rows(store: &Store) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT grain_s, bucket_start_us, saga_type, status, sagas, began_compensating FROM saga_rollups ORDER BY 1, 2, 3, 4",
        "SELECT grain_s, bucket_start_us, saga_type, step, executions, failures FROM step_rollups ORDER BY 1, 2, 3, 4",
        "SELECT grain_s, bucket_start_us, topic, '', events, errors FROM topic_rollups ORDER BY 1, 2, 3",
        "SELECT grain_s, bucket_start_us, series || '|' || subject || '|' || detail, '', value_ms, n FROM histograms ORDER BY 1, 2, 3, 5",
    ] {
        for row in sqlx::query(sql).fetch_all(store.pool()).await.unwrap() {
            rows.push(format!(
                "{}/{}/{}/{}/{}/{}",
                row.get::<i64, _>(0),
                row.get::<i64, _>(1),
                row.get::<String, _>(2),
                row.get::<String, _>(3),
                row.get::<i64, _>(4),
                row.get::<i64, _>(5)
            ));
        }
    }
    rows
}

async fn rollups_and_the_overview_history_are_unchanged(store: &Store) {
    let old = cutoff() - Duration::days(2);
    let mut events = Vec::new();
    for i in 0..4 {
        let start = old + Duration::minutes(i);
        events.extend(saga(
            &format!("done-{i}"),
            start,
            start + Duration::seconds(2),
            true,
        ));
    }
    events.extend(saga("quiet", old, old + Duration::seconds(3), false));
    events.extend(saga(
        "recent",
        now() - Duration::minutes(5),
        now() - Duration::minutes(4),
        true,
    ));
    write(store, events).await;
    stall_sweep(store).await;
    let history_at = old + Duration::days(1);
    let rollups = store
        .window_metrics(MetricsWindow::Days7, history_at)
        .await
        .unwrap();
    let recent = store
        .window_metrics(MetricsWindow::Hour1, now())
        .await
        .unwrap();
    assert_eq!(rollups.totals.started, 5, "{:?}", rollups.totals);
    assert_eq!(rollups.totals.completed, 4);
    assert_eq!(rollups.totals.stalled, 1);
    let rows = rollup_rows(store).await;
    assert!(!rows.is_empty());

    let removed = store.delete_sagas_ended_before(cutoff(), 2).await.unwrap();
    assert_eq!(removed.sagas, 2);
    while store
        .delete_sagas_ended_before(cutoff(), 2)
        .await
        .unwrap()
        .sagas
        > 0
    {}
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM sagas WHERE saga_id <> $1", "").await,
        1,
        "only the recent saga is left"
    );
    assert_eq!(rollup_rows(store).await, rows, "rollup rows unchanged");
    assert_eq!(
        store
            .window_metrics(MetricsWindow::Days7, history_at)
            .await
            .unwrap(),
        rollups,
        "the overview of the removed sagas' week is unchanged"
    );
    assert_eq!(
        store
            .window_metrics(MetricsWindow::Hour1, now())
            .await
            .unwrap(),
        recent
    );
}

/// A dead letter row in `state`, dead-lettered at `at`.
async fn insert_dead_letter(store: &Store, id: &str, state: &str, at: DateTime<Utc>) {
    let at_us = at.timestamp_micros();
    sqlx::query(
        "INSERT INTO dead_letters (id, dlq_topic, dlq_partition, dlq_offset, dead_lettered_at_us, ingested_at_us, \
         format, headers, failure_group, linked_saga_id, state, state_changed_at_us) \
         VALUES ($1, 'orders.DLT', 0, 0, $2, $2, 'unknown', '[]', 'orders|x|y', 'ended-old', $3, $2)",
    )
    .bind(id.to_string())
    .bind(at_us)
    .bind(state.to_string())
    .execute(store.pool())
    .await
    .unwrap();
}

async fn open_dead_letters_stay_closed_old_ones_go(store: &Store) {
    let old = cutoff() - Duration::days(1);
    let young = cutoff() + Duration::seconds(1);
    for state in [
        "new",
        "retry_requested",
        "retried",
        "resolved",
        "failed_again",
        "discarded",
    ] {
        insert_dead_letter(store, &format!("old-{state}"), state, old).await;
        insert_dead_letter(store, &format!("young-{state}"), state, young).await;
    }
    // The saga they link to goes first; the links do not keep it, nor
    // does its going take the open ones.
    write(
        store,
        saga("ended-old", old, cutoff() - Duration::hours(1), true),
    )
    .await;
    assert_eq!(
        store
            .delete_sagas_ended_before(cutoff(), 100)
            .await
            .unwrap()
            .sagas,
        1
    );
    assert_eq!(
        store
            .delete_closed_dead_letters_before(cutoff(), 3)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .delete_closed_dead_letters_before(cutoff(), 3)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_closed_dead_letters_before(cutoff(), 3)
            .await
            .unwrap(),
        0
    );
    let left: Vec<String> = sqlx::query("SELECT id FROM dead_letters ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("id"))
        .collect();
    assert_eq!(
        left,
        [
            "old-new",
            "old-retry_requested",
            "young-discarded",
            "young-failed_again",
            "young-new",
            "young-resolved",
            "young-retried",
            "young-retry_requested",
        ]
    );
}

async fn ingest_errors_before_the_cutoff_go(store: &Store) {
    let error = |offset: i64, at: DateTime<Utc>| NewIngestError {
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset,
        },
        reason: "expected value".into(),
        first_bytes: "{".into(),
        key: None,
        published_at: None,
        ingested_at: at,
    };
    store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            errors: vec![
                error(1, cutoff() - Duration::days(1)),
                error(2, cutoff() - Duration::seconds(1)),
                error(3, cutoff()),
                error(4, now()),
            ],
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    let topic_rollups = rollup_rows(store).await;
    assert_eq!(
        store
            .delete_ingest_errors_before(cutoff(), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_ingest_errors_before(cutoff(), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_ingest_errors_before(cutoff(), 10)
            .await
            .unwrap(),
        0
    );
    let offsets: Vec<i64> = store
        .ingest_errors(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.offset)
        .collect::<Vec<_>>();
    let mut offsets = offsets;
    offsets.sort();
    assert_eq!(offsets, [3, 4], "the one at the cutoff stays");
    assert_eq!(rollup_rows(store).await, topic_rollups);
}
