//! One behaviour, two backends: every test here runs against a fresh
//! Postgres database and a fresh SQLite file (quickwit's metastore
//! test-suite pattern), from `sagascope_store::test_support`.

use chrono::{TimeZone, Utc};
use sagascope_domain::{Decoder, KafkaCoords, RawMessage, Rules, SagaEvent};
use sagascope_model::{Phase, SagaFilter, SagaStatus};
use sagascope_store::{CountedTable, IngestBatch, NewIngestError, PartitionOffset, Store};

// A test of both folders at once (not one per backend), in this binary
// rather than a test binary of its own.
#[path = "schema/migrations_in_step.rs"]
mod migrations_in_step;

sagascope_store::on_both_stores!(
    batch_writes_events_projection_and_offsets,
    redelivered_events_change_nothing,
    out_of_order_batches_reach_the_same_state,
    list_filters_search_and_keyset_paging,
    trace_view_spans_sagas,
    ingest_errors_are_kept_once_per_coordinate,
    a_different_ingest_error_at_reused_coordinates_is_kept_beside_the_first,
    duplicate_ids_with_different_bodies_keep_the_first_and_record_a_conflict,
    quiet_sagas_stall_per_type_and_resume,
    instances_sharing_a_key_merge_whatever_the_order,
    streams_that_are_not_sagas_are_kept_but_not_listed,
    reproject_applies_changed_rules_online,
    quiet_choreographies_end_with_their_inferred_outcome,
    choreographies_without_rules_fail_and_compensate_at_once,
    many_trace_ids_are_capped_in_the_projection_but_all_searchable,
    timeline_json_is_the_typed_detail_with_stored_json_passed_through,
    timeline_etag_changes_with_everything_the_timeline_shows,
    the_timeline_answers_without_a_generation_row,
);

fn event(saga: &str, n: i64, phase: Phase, step: Option<&str>) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga}-e{n}"),
        saga_id: saga.to_string(),
        explicit_saga_id: Some(saga.to_string()),
        rule_classified: false,
        correlation_rank: 0,
        correlation_keys: vec![],
        saga_type: Some(
            if saga.starts_with("chat") {
                "chat_message"
            } else {
                "order"
            }
            .to_string(),
        ),
        step: step.map(str::to_string),
        phase,
        event_type: phase.as_str().to_ascii_uppercase(),
        trace_id: Some(format!("trace-of-{saga}")),
        span_id: None,
        request_id: None,
        business_keys: vec![format!("O-{saga}")],
        occurred_at: Utc
            .timestamp_millis_opt(1_763_700_000_000 + n * 100)
            .unwrap(),
        published_at: Some(
            Utc.timestamp_millis_opt(1_763_700_000_050 + n * 100)
                .unwrap(),
        ),
        ingested_at: Utc.timestamp_millis_opt(1_763_700_009_000).unwrap(),
        source_type: None,
        source_id: None,
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset: n,
        },
        headers: vec![sagascope_model::Header {
            key: "traceparent".into(),
            value: "00-…".into(),
        }],
        payload: serde_json::json!({"note": "<script>alert(1)</script>", "n": n}),
        error: (phase == Phase::StepFailed).then(|| "card declined".to_string()),
    }
}

fn compensated_saga(saga: &str, base: i64) -> Vec<SagaEvent> {
    vec![
        event(saga, base, Phase::SagaStarted, None),
        event(saga, base + 1, Phase::StepSucceeded, Some("ReserveStock")),
        event(saga, base + 2, Phase::StepFailed, Some("AuthorizePayment")),
        event(
            saga,
            base + 3,
            Phase::CompensationStarted,
            Some("ReleaseStock"),
        ),
        event(saga, base + 4, Phase::StepCompensated, Some("ReleaseStock")),
        event(saga, base + 5, Phase::SagaCompensated, None),
    ]
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

async fn batch_writes_events_projection_and_offsets(store: &Store) {
    let mut b = batch(compensated_saga("ord-1", 0));
    b.offsets = vec![PartitionOffset {
        topic: "saga.state".into(),
        partition: 0,
        next_offset: 6,
    }];
    let outcome = store.write_batch(&b).await.unwrap();
    assert_eq!(outcome.new_events.len(), 6);
    assert_eq!(outcome.sagas.len(), 1);
    assert_eq!(outcome.sagas[0].status, SagaStatus::Compensated);

    let detail = store.saga_detail("ord-1").await.unwrap().unwrap();
    assert_eq!(detail.saga.status, SagaStatus::Compensated);
    assert_eq!(detail.saga.failed_step.as_deref(), Some("AuthorizePayment"));
    assert_eq!(detail.saga.failure_reason.as_deref(), Some("card declined"));
    assert_eq!(detail.saga.duration_ms, Some(500));
    assert_eq!(detail.saga.event_count, 6);
    let phases: Vec<Phase> = detail.events.iter().map(|e| e.phase).collect();
    assert_eq!(
        phases,
        compensated_saga("ord-1", 0)
            .iter()
            .map(|e| e.phase)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        detail.events[0].payload,
        serde_json::json!({"note": "<script>alert(1)</script>", "n": 0})
    );
    assert_eq!(detail.events[0].headers[0].key, "traceparent");
    assert_eq!(detail.events[2].error.as_deref(), Some("card declined"));

    // An older offset never moves the stored position back.
    let mut older = batch(vec![]);
    older.offsets = vec![PartitionOffset {
        topic: "saga.state".into(),
        partition: 0,
        next_offset: 3,
    }];
    store.write_batch(&older).await.unwrap();
    let progress = store.partition_progress("g").await.unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].next_offset, 6);
    assert!(store.saga_detail("missing").await.unwrap().is_none());
}

async fn redelivered_events_change_nothing(store: &Store) {
    let events = compensated_saga("ord-2", 0);
    store.write_batch(&batch(events.clone())).await.unwrap();
    let mut again = events.clone();
    again.extend(events.iter().take(2).cloned()); // duplicates inside one batch too
    let outcome = store.write_batch(&batch(again)).await.unwrap();
    assert_eq!(outcome.new_events.len(), 0);
    assert_eq!(outcome.duplicates, 8);
    assert!(outcome.sagas.is_empty());
    assert_eq!(store.count(CountedTable::Events).await.unwrap(), 6);
    assert_eq!(
        store
            .saga_detail("ord-2")
            .await
            .unwrap()
            .unwrap()
            .saga
            .event_count,
        6
    );
}

async fn out_of_order_batches_reach_the_same_state(store: &Store) {
    let mut events = compensated_saga("ord-3", 0);
    events.reverse();
    for e in &events {
        store.write_batch(&batch(vec![e.clone()])).await.unwrap();
    }
    let reversed = store.saga_detail("ord-3").await.unwrap().unwrap().saga;
    store
        .write_batch(&batch(compensated_saga("ord-4", 0)))
        .await
        .unwrap();
    let in_order = store.saga_detail("ord-4").await.unwrap().unwrap().saga;
    assert_eq!(reversed.status, in_order.status);
    assert_eq!(reversed.duration_ms, in_order.duration_ms);
    assert_eq!(reversed.failed_step, in_order.failed_step);
    assert_eq!(reversed.current_step, in_order.current_step);
}

async fn list_filters_search_and_keyset_paging(store: &Store) {
    let mut events = Vec::new();
    for i in 0..25 {
        let saga = format!("ord-{i:02}");
        events.push(event(&saga, i * 10, Phase::SagaStarted, None));
        if i % 5 == 0 {
            events.push(event(
                &saga,
                i * 10 + 1,
                Phase::SagaCompleted,
                Some("Complete"),
            ));
        }
    }
    events.push(event("chat-1", 500, Phase::SagaStarted, None));
    store.write_batch(&batch(events)).await.unwrap();

    let list = |filter: SagaFilter| async move {
        store.list_sagas(&filter.validate().unwrap()).await.unwrap()
    };
    let all = list(SagaFilter::default()).await;
    assert_eq!(all.items.len(), 26);
    assert_eq!(all.items[0].saga_id, "chat-1", "newest first");
    assert!(all.next_cursor.is_none());

    let completed = list(SagaFilter {
        status: Some("completed".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        completed
            .items
            .iter()
            .map(|s| s.saga_id.as_str())
            .collect::<Vec<_>>(),
        ["ord-20", "ord-15", "ord-10", "ord-05", "ord-00"]
    );
    let chats = list(SagaFilter {
        saga_type: Some("chat_message".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(chats.items.len(), 1);
    for q in ["ord-07", "trace-of-ord-07", "O-ord-07"] {
        let found = list(SagaFilter {
            q: Some(q.into()),
            ..Default::default()
        })
        .await;
        assert_eq!(found.items.len(), 1, "{q}");
        assert_eq!(found.items[0].saga_id, "ord-07");
    }
    let since = list(SagaFilter {
        since: Some("2025-11-21T04:40:23.500Z".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        since.items.len(),
        2,
        "{:?}",
        since
            .items
            .iter()
            .map(|s| (&s.saga_id, s.started_at))
            .collect::<Vec<_>>()
    );

    // Keyset paging visits every saga exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(SagaFilter {
            limit: Some("7".into()),
            cursor: cursor.clone(),
            ..Default::default()
        })
        .await;
        seen.extend(page.items.iter().map(|s| s.saga_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        all.items
            .iter()
            .map(|s| s.saga_id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(store.saga_types().await.unwrap(), ["chat_message", "order"]);
}

async fn trace_view_spans_sagas(store: &Store) {
    let mut first = compensated_saga("ord-5", 0);
    let mut second = vec![event("chat-5", 7, Phase::SagaStarted, None)];
    for e in first.iter_mut().chain(second.iter_mut()) {
        e.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    }
    first.append(&mut second);
    store.write_batch(&batch(first)).await.unwrap();
    let trace = store
        .trace("4BF92F3577B34DA6A3CE929D0E0E4736")
        .await
        .unwrap();
    assert_eq!(trace.events.len(), 7);
    assert_eq!(
        trace
            .sagas
            .iter()
            .map(|s| s.saga_id.as_str())
            .collect::<Vec<_>>(),
        ["ord-5", "chat-5"]
    );
    assert!(trace
        .events
        .windows(2)
        .all(|w| w[0].occurred_at <= w[1].occurred_at));
    assert!(store.trace("nothing").await.unwrap().events.is_empty());
}

async fn ingest_errors_are_kept_once_per_coordinate(store: &Store) {
    let error = NewIngestError {
        coords: KafkaCoords {
            topic: "events.scan".into(),
            partition: 1,
            offset: 99,
        },
        reason: "value is not valid JSON: EOF".into(),
        first_bytes: "{\"broken".into(),
        key: Some("k1".into()),
        published_at: None,
        ingested_at: Utc.timestamp_millis_opt(1_763_700_000_000).unwrap(),
    };
    let b = IngestBatch {
        group_id: "g".into(),
        events: vec![],
        errors: vec![error.clone()],
        dead_letters: vec![],
        offsets: vec![],
        backlog: vec![],
    };
    assert_eq!(store.write_batch(&b).await.unwrap().errors.len(), 1);
    assert_eq!(
        store.write_batch(&b).await.unwrap().errors.len(),
        0,
        "redelivery keeps one row"
    );
    let listed = store.ingest_errors(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].topic, "events.scan");
    assert_eq!((listed[0].partition, listed[0].offset), (1, 99));
    assert_eq!(listed[0].reason, "value is not valid JSON: EOF");
    assert_eq!(listed[0].key.as_deref(), Some("k1"));
}

/// Issue 21: after a topic is recreated, offsets start again at 0 and a
/// different poison message can arrive at stored coordinates. Both are
/// kept; redeliveries of either still keep one row each.
async fn a_different_ingest_error_at_reused_coordinates_is_kept_beside_the_first(store: &Store) {
    let first = NewIngestError {
        coords: KafkaCoords {
            topic: "events.scan".into(),
            partition: 1,
            offset: 99,
        },
        reason: "value is not valid JSON: EOF".into(),
        first_bytes: "{\"broken".into(),
        key: Some("k1".into()),
        published_at: Some(Utc.timestamp_millis_opt(1_763_700_000_000).unwrap()),
        ingested_at: Utc.timestamp_millis_opt(1_763_700_000_100).unwrap(),
    };
    let second = NewIngestError {
        first_bytes: "not json at all".into(),
        published_at: Some(Utc.timestamp_millis_opt(1_763_800_000_000).unwrap()),
        ingested_at: Utc.timestamp_millis_opt(1_763_800_000_100).unwrap(),
        ..first.clone()
    };
    let batch = |errors: Vec<NewIngestError>| IngestBatch {
        group_id: "g".into(),
        errors,
        ..Default::default()
    };
    assert_eq!(
        store
            .write_batch(&batch(vec![first.clone()]))
            .await
            .unwrap()
            .errors
            .len(),
        1
    );
    let outcome = store
        .write_batch(&batch(vec![second.clone()]))
        .await
        .unwrap();
    assert_eq!(outcome.errors.len(), 1, "the newcomer is kept");
    assert_eq!(outcome.reused_coordinates, vec![second.coords.clone()]);
    // Redeliveries, each alone and both in one batch; a reason worded
    // differently (changed rules) is still the same message.
    let reworded = NewIngestError {
        reason: "another wording".into(),
        ..second.clone()
    };
    for errors in [
        vec![first.clone()],
        vec![reworded],
        vec![second.clone(), first.clone()],
    ] {
        let again = store.write_batch(&batch(errors)).await.unwrap();
        assert!(again.errors.is_empty());
        assert!(again.reused_coordinates.is_empty());
    }
    let listed = store.ingest_errors(10).await.unwrap();
    let mut bodies: Vec<(i64, i64, &str)> = listed
        .iter()
        .map(|e| (e.partition, e.offset, e.first_bytes.as_str()))
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec![(1, 99, "not json at all"), (1, 99, "{\"broken")]
    );
}

async fn duplicate_ids_with_different_bodies_keep_the_first_and_record_a_conflict(store: &Store) {
    let first = event("ord-9", 0, Phase::SagaStarted, None);
    store
        .write_batch(&batch(vec![first.clone()]))
        .await
        .unwrap();

    // A redelivery (same coordinates, same body) is not a conflict.
    assert!(store
        .write_batch(&batch(vec![first.clone()]))
        .await
        .unwrap()
        .errors
        .is_empty());

    // The same id from elsewhere with another body: kept out, recorded.
    let mut impostor = first.clone();
    impostor.coords.offset = 500;
    impostor.payload = serde_json::json!({"note": "something else"});
    // And inside one batch: a new id twice with different bodies.
    let twin_a = event("ord-9", 1, Phase::StepStarted, Some("ReserveStock"));
    let mut twin_b = twin_a.clone();
    twin_b.coords.offset = 501;
    twin_b.payload = serde_json::json!({"n": "other"});
    let outcome = store
        .write_batch(&batch(vec![impostor, twin_a.clone(), twin_b]))
        .await
        .unwrap();
    assert_eq!(outcome.new_events.len(), 1);
    let mut reasons: Vec<(i64, String)> = outcome
        .errors
        .iter()
        .map(|e| (e.offset, e.reason.clone()))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, 500);
    assert!(reasons[0].1.starts_with("duplicate event id `ord-9-e0` with a different body: kept the first copy, from saga.state/0/0"), "{}", reasons[0].1);
    assert_eq!(reasons[1].0, 501);
    assert!(
        reasons[1].1.contains("from saga.state/0/1"),
        "{}",
        reasons[1].1
    );

    let detail = store.saga_detail("ord-9").await.unwrap().unwrap();
    assert_eq!(detail.events.len(), 2);
    assert_eq!(
        detail.events[0].payload, first.payload,
        "the first copy is kept"
    );
    assert_eq!(detail.events[1].payload, twin_a.payload);
}

async fn quiet_sagas_stall_per_type_and_resume(store: &Store) {
    use sagascope_store::StallPolicy;
    use std::time::Duration;
    // ord-s: last event at +100 ms; chat-s: at +200 ms; ord-done finished.
    let mut events = vec![
        event("ord-s", 0, Phase::SagaStarted, None),
        event("ord-s", 1, Phase::StepStarted, Some("AuthorizePayment")),
        event("chat-s", 2, Phase::SagaStarted, None),
    ];
    events.extend(compensated_saga("ord-done", 0));
    store.write_batch(&batch(events)).await.unwrap();
    let start = Utc.timestamp_millis_opt(1_763_700_000_000).unwrap();
    let policy = StallPolicy {
        default_timeout: Duration::from_secs(60),
        per_type: vec![("order".into(), Duration::from_secs(10))],
    };

    // 15 s later: only the order saga is past its 10 s timeout.
    let stalled = store
        .mark_stalled(&policy, start + chrono::Duration::seconds(15))
        .await
        .unwrap();
    assert_eq!(
        stalled
            .iter()
            .map(|s| (s.saga_id.as_str(), s.status))
            .collect::<Vec<_>>(),
        [("ord-s", SagaStatus::Stalled)]
    );
    // 61 s later: the chat saga passes the default timeout; nothing twice.
    let stalled = store
        .mark_stalled(&policy, start + chrono::Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(
        stalled
            .iter()
            .map(|s| s.saga_id.as_str())
            .collect::<Vec<_>>(),
        ["chat-s"]
    );

    let listed = store
        .list_sagas(
            &SagaFilter {
                status: Some("stalled".into()),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(
        store
            .saga_detail("ord-s")
            .await
            .unwrap()
            .unwrap()
            .saga
            .status,
        SagaStatus::Stalled
    );
    assert_eq!(
        store
            .saga_detail("ord-done")
            .await
            .unwrap()
            .unwrap()
            .saga
            .status,
        SagaStatus::Compensated
    );

    // Events resume: the stall clears.
    let outcome = store
        .write_batch(&batch(vec![event(
            "ord-s",
            3,
            Phase::StepSucceeded,
            Some("AuthorizePayment"),
        )]))
        .await
        .unwrap();
    assert_eq!(outcome.sagas[0].status, SagaStatus::Running);
    assert_eq!(
        store
            .saga_detail("ord-s")
            .await
            .unwrap()
            .unwrap()
            .saga
            .status,
        SagaStatus::Running
    );
}

// ---- correlation, merging and reprojection (issue 3) ----

const CHOREOGRAPHY_RULES: &str = r#"
[[saga]]
type = "order_choreography"
start = ["OrderCreated"]
correlate = ["saga_id", "trace_id", "/order_id"]
[saga.events]
StockReserved = { step = "ReserveStock", phase = "step_succeeded" }
PaymentFailed = { step = "AuthorizePayment", phase = "step_failed" }
StockReleased = { step = "ReserveStock", phase = "saga_compensated" }
[not_saga]
events = ["Product*"]
"#;

const T1: &str = "0af7651916cd43dd8448eb211c80319c";
const T2: &str = "1bf7651916cd43dd8448eb211c80319d";
const T3: &str = "2cf7651916cd43dd8448eb211c80319f";

/// A plain JSON domain event as a service would publish it.
fn raw(offset: i64, event_type: &str, trace: Option<&str>, order_id: &str) -> RawMessage {
    let value = serde_json::json!({
        "type": event_type,
        "id": format!("evt-{offset}"),
        "occurred_at": 1_763_700_000_000_i64 + offset * 100,
        "payload": {"order_id": order_id, "reason": "card declined"}
    });
    RawMessage {
        coords: KafkaCoords {
            topic: "shop.events".into(),
            partition: 0,
            offset,
        },
        key: Some(order_id.as_bytes().to_vec()),
        value: Some(value.to_string().into_bytes()),
        headers: trace
            .map(|t| {
                vec![(
                    "traceparent".to_string(),
                    Some(format!("00-{t}-00f067aa0ba902b7-01").into_bytes()),
                )]
            })
            .unwrap_or_default(),
        timestamp: Some(
            Utc.timestamp_millis_opt(1_763_700_000_050 + offset * 100)
                .unwrap(),
        ),
    }
}

/// One order saga whose payment service broke the trace (T2), and whose
/// last event has no trace at all: only `/order_id` ties them together.
fn broken_trace_order(decoder: &Decoder) -> Vec<SagaEvent> {
    [
        raw(1, "OrderCreated", Some(T2), "ord-1"),
        raw(2, "StockReserved", Some(T2), "ord-1"),
        raw(3, "PaymentFailed", Some(T1), "ord-1"),
        raw(4, "StockReleased", None, "ord-1"),
    ]
    .iter()
    .map(|m| {
        decoder
            .decode(m, Utc.timestamp_millis_opt(1_763_700_009_000).unwrap())
            .unwrap()
    })
    .collect()
}

async fn instances_sharing_a_key_merge_whatever_the_order(store: &Store) {
    let decoder = Decoder::new(Rules::parse(CHOREOGRAPHY_RULES).unwrap());
    let events = broken_trace_order(&decoder);
    // Arrival orders: one event per batch backwards, then two batches
    // that each hold a different instance until the second one lands.
    let orders: [Vec<Vec<usize>>; 3] = [
        vec![vec![3], vec![2], vec![1], vec![0]],
        vec![vec![0, 1], vec![3], vec![2]],
        vec![vec![2, 0, 3, 1]],
    ];
    let mut results = Vec::new();
    let mut merges = Vec::new();
    for (round, order) in orders.iter().enumerate() {
        let offset = round as i64 * 1000;
        for batch_indexes in order {
            let mut b = batch(
                batch_indexes
                    .iter()
                    .map(|i| {
                        let mut e = events[*i].clone();
                        // A fresh copy of the saga per round.
                        e.event_id = format!("{}-r{round}", e.event_id);
                        e.coords.offset += offset;
                        e
                    })
                    .collect(),
            );
            b.group_id = format!("g{round}");
            let outcome = store.write_batch(&b).await.unwrap();
            merges.extend(outcome.merged.clone());
            // Later copies find the keys already owned by T1 and join it
            // at once: no instance of their own, nothing to merge.
            if round > 0 {
                assert!(outcome.sagas.iter().all(|s| s.saga_id == T1));
                assert!(outcome.merged.is_empty());
            }
        }
        if round == 0 {
            // Backwards: StockReleased alone made instance `ord-1`, which
            // PaymentFailed (trace T1 + the same order id) then absorbed.
            assert_eq!(merges, vec![("ord-1".to_string(), T1.to_string())]);
        }
        let detail = store.saga_detail(T1).await.unwrap().expect("merged saga");
        assert_eq!(detail.saga.saga_id, T1, "lowest (rank, id) wins");
        results.push((
            detail.saga.status,
            detail.saga.saga_type.clone(),
            detail.saga.failed_step.clone(),
            detail.events.len(),
        ));
        // Clean up for the next round: this round's copy is one saga of 4
        // events per round so far.
        assert_eq!(detail.saga.event_count, 4 * (round as i64 + 1));
        let page = store
            .list_sagas(&SagaFilter::default().validate().unwrap())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "round {round}: {:?}", page.items);
        // The other trace and the order id both find it.
        for q in [T2, "ord-1"] {
            let found = store
                .list_sagas(
                    &SagaFilter {
                        q: Some(q.into()),
                        ..SagaFilter::default()
                    }
                    .validate()
                    .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(found.items.len(), 1, "{q}");
            assert_eq!(found.items[0].saga_id, T1);
        }
        if round == 0 {
            // Backwards arrival made `ord-1` an instance of its own first;
            // after the merge its id still leads to the saga.
            assert_eq!(
                store
                    .saga_detail("ord-1")
                    .await
                    .unwrap()
                    .unwrap()
                    .saga
                    .saga_id,
                T1
            );
        }
    }
    assert_eq!(
        results[0],
        (
            SagaStatus::Compensated,
            "order_choreography".to_string(),
            Some("AuthorizePayment".to_string()),
            4
        )
    );
    assert!(results
        .iter()
        .all(|r| r.0 == results[0].0 && r.1 == results[0].1 && r.2 == results[0].2));
}

async fn streams_that_are_not_sagas_are_kept_but_not_listed(store: &Store) {
    let decoder = Decoder::new(Rules::parse(CHOREOGRAPHY_RULES).unwrap());
    let product = decoder
        .decode(
            &raw(7, "ProductStockChanged", Some(T1), "ord-9"),
            Utc.timestamp_millis_opt(1_763_700_009_000).unwrap(),
        )
        .unwrap();
    let order = broken_trace_order(&decoder);
    let mut events = vec![product];
    events.extend(order);
    store.write_batch(&batch(events)).await.unwrap();
    let page = store
        .list_sagas(&SagaFilter::default().validate().unwrap())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].saga_type, "order_choreography");
    assert_eq!(
        store.saga_types().await.unwrap(),
        vec!["order_choreography".to_string()]
    );
    let trace = store.trace(T1).await.unwrap();
    assert!(trace
        .events
        .iter()
        .any(|e| e.event_type == "ProductStockChanged"));
    assert_eq!(
        trace.sagas.len(),
        1,
        "the product stream is not listed as a saga"
    );
}

async fn reproject_applies_changed_rules_online(store: &Store) {
    // Ingested without rules: two instances (one per trace) plus one with
    // no trace, none typed.
    let events = broken_trace_order(&Decoder::default());
    store.write_batch(&batch(events)).await.unwrap();
    let before = store
        .list_sagas(&SagaFilter::default().validate().unwrap())
        .await
        .unwrap();
    assert_eq!(before.items.len(), 3, "{:?}", before.items);

    let rules = Decoder::new(Rules::parse(CHOREOGRAPHY_RULES).unwrap());
    let mut seen = Vec::new();
    let report = store
        .reproject(&rules, 3, |p| seen.push(p.events_done))
        .await
        .unwrap();
    assert_eq!(report.events, 4);
    assert_eq!(seen, vec![3, 4], "progress per page");
    let after = store
        .list_sagas(&SagaFilter::default().validate().unwrap())
        .await
        .unwrap();
    assert_eq!(after.items.len(), 1, "{:?}", after.items);
    let saga = &after.items[0];
    assert_eq!(saga.saga_id, T1);
    assert_eq!(saga.saga_type, "order_choreography");
    assert_eq!(saga.status, SagaStatus::Compensated);
    assert_eq!(saga.event_count, 4);
    let detail = store.saga_detail(T1).await.unwrap().unwrap();
    assert_eq!(detail.events.len(), 4);
    assert_eq!(detail.events[0].phase, Phase::SagaStarted);
    assert!(detail.events.iter().all(|e| e.saga_id == T1));

    // Reprojecting again with the same rules changes nothing.
    store.reproject(&rules, 100, |_| {}).await.unwrap();
    let again = store.saga_detail(T1).await.unwrap().unwrap();
    assert_eq!(again.saga, detail.saga);
}

async fn quiet_choreographies_end_with_their_inferred_outcome(store: &Store) {
    // Without rules: T2 holds OrderCreated + StockReserved (a two-hop
    // choreography, nothing failed), T1 holds PaymentFailed, `ord-1` holds
    // StockReleased (a compensation), T3 a compensation still asked for.
    let mut events = broken_trace_order(&Decoder::default());
    events.extend(
        [raw(5, "ReleaseStockRequested", Some(T3), "ord-3")]
            .iter()
            .map(|m| {
                Decoder::default()
                    .decode(m, Utc.timestamp_millis_opt(1_763_700_009_000).unwrap())
                    .unwrap()
            }),
    );
    store.write_batch(&batch(events)).await.unwrap();
    // A failure and a compensation done end their sagas at once, by name:
    // not inferred, and nothing for the sweep.
    for (id, expected) in [
        (T1, SagaStatus::Failed),
        ("ord-1", SagaStatus::Compensated),
        (T2, SagaStatus::Running),
        (T3, SagaStatus::Compensating),
    ] {
        let saga = store.saga_detail(id).await.unwrap().unwrap().saga;
        assert_eq!(saga.status, expected, "{id}");
        assert!(!saga.status_inferred, "{id}");
    }
    let policy = sagascope_store::StallPolicy {
        default_timeout: std::time::Duration::from_secs(60),
        per_type: vec![],
    };
    let swept = store
        .mark_stalled(
            &policy,
            Utc.timestamp_millis_opt(1_763_700_100_000).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(swept.len(), 2, "{swept:?}");
    for (id, expected, inferred) in [
        (T2, SagaStatus::Completed, true),
        (T3, SagaStatus::Compensated, true),
        (T1, SagaStatus::Failed, false),
        ("ord-1", SagaStatus::Compensated, false),
    ] {
        let saga = store.saga_detail(id).await.unwrap().unwrap().saga;
        assert_eq!(saga.status, expected, "{id}");
        assert_eq!(saga.status_inferred, inferred, "{id}");
    }
    // With rules the same quiet saga has a declared end still to come.
    let typed = Decoder::new(Rules::parse(CHOREOGRAPHY_RULES).unwrap())
        .decode(
            &raw(
                50,
                "OrderCreated",
                Some("2cf7651916cd43dd8448eb211c80319e"),
                "ord-50",
            ),
            Utc.timestamp_millis_opt(1_763_700_009_000).unwrap(),
        )
        .unwrap();
    store.write_batch(&batch(vec![typed])).await.unwrap();
    store
        .mark_stalled(
            &policy,
            Utc.timestamp_millis_opt(1_763_700_100_000).unwrap(),
        )
        .await
        .unwrap();
    let saga = store
        .saga_detail("2cf7651916cd43dd8448eb211c80319e")
        .await
        .unwrap()
        .unwrap()
        .saga;
    assert_eq!(saga.status, SagaStatus::Stalled);
    assert!(!saga.status_inferred);
}

// ---- outcomes without a rules file (issue 13) ----

/// A Debezium EventRouter message of the outbox on `events.{aggregate}`,
/// correlated by its `trace_id` header alone.
fn event_router(offset: i64, aggregate: &str, event_type: &str, trace: &str) -> RawMessage {
    let occurred = Utc
        .timestamp_millis_opt(1_763_700_000_000 + offset * 100)
        .unwrap();
    RawMessage {
        coords: KafkaCoords {
            topic: format!("events.{aggregate}"),
            partition: 0,
            offset,
        },
        key: Some(b"ord-13".to_vec()),
        value: Some(
            serde_json::json!({"order_id": "ord-13", "reason": "card declined"})
                .to_string()
                .into_bytes(),
        ),
        headers: [
            ("id", format!("{trace}-{offset}")),
            ("type", event_type.to_string()),
            ("trace_id", trace.to_string()),
            ("created_at", occurred.to_rfc3339()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v.into_bytes())))
        .collect(),
        timestamp: Some(occurred + chrono::Duration::milliseconds(20)),
    }
}

async fn choreographies_without_rules_fail_and_compensate_at_once(store: &Store) {
    use sagascope_model::MetricsWindow;
    let decoder = Decoder::new(Rules::default());
    let write = |messages: Vec<RawMessage>| {
        let events: Vec<SagaEvent> = messages
            .iter()
            .map(|m| {
                decoder
                    .decode(m, Utc.timestamp_millis_opt(1_763_700_009_000).unwrap())
                    .unwrap()
            })
            .collect();
        async move { store.write_batch(&batch(events)).await.unwrap() }
    };
    let now = Utc.timestamp_millis_opt(1_763_700_010_000).unwrap();
    // (status, inferred, ended) of T1, then the overview's figures of
    // type `order`: (started, running, failed, compensated, completed,
    // finished, began compensating) and the failure rate.
    let status_of = |id: &'static str| async move {
        let saga = store.saga_detail(id).await.unwrap().unwrap().saga;
        (saga.status, saga.status_inferred, saga.ended_at.is_some())
    };
    let order_figures = || async move {
        let m = store
            .window_metrics(MetricsWindow::Hour1, now)
            .await
            .unwrap();
        let o = m
            .saga_types
            .iter()
            .find(|t| t.saga_type == "order")
            .expect("type order in the overview");
        let c = o.counts;
        (
            (
                c.started,
                c.running,
                c.failed,
                c.compensated,
                c.completed,
                c.finished,
                c.began_compensating,
            ),
            o.failure_rate,
        )
    };

    let outcome = write(vec![
        event_router(1, "order", "OrderCreated", T1),
        event_router(2, "stock", "StockReserved", T1),
    ])
    .await;
    assert_eq!(outcome.sagas[0].status, SagaStatus::Running);
    assert_eq!(order_figures().await, ((1, 1, 0, 0, 0, 0, 0), None));

    // The batch that carries the failure makes it failed, and the
    // overview counts it at once.
    let outcome = write(vec![event_router(3, "payment", "PaymentFailed", T1)]).await;
    assert_eq!(outcome.sagas[0].status, SagaStatus::Failed);
    assert_eq!(
        outcome.transitions[0].to,
        SagaStatus::Failed,
        "{:?}",
        outcome.transitions
    );
    assert_eq!(status_of(T1).await, (SagaStatus::Failed, false, true));
    let detail = store.saga_detail(T1).await.unwrap().unwrap();
    assert_eq!(detail.saga.saga_type, "order");
    assert_eq!(detail.saga.failed_step.as_deref(), Some("PaymentFailed"));
    assert_eq!(detail.saga.failure_reason.as_deref(), Some("card declined"));
    assert_eq!(detail.saga.duration_ms, Some(200));
    let failed = store
        .list_sagas(
            &SagaFilter {
                status: Some("failed".into()),
                ..SagaFilter::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(order_figures().await, ((1, 0, 1, 0, 0, 1, 0), Some(1.0)));

    write(vec![event_router(4, "order", "ReleaseStockRequested", T1)]).await;
    assert_eq!(
        status_of(T1).await,
        (SagaStatus::Compensating, false, false)
    );
    assert_eq!(order_figures().await, ((1, 1, 0, 0, 0, 0, 1), None));

    write(vec![event_router(5, "stock", "StockReleased", T1)]).await;
    assert_eq!(status_of(T1).await, (SagaStatus::Compensated, false, true));
    let phases: Vec<Phase> = store
        .saga_detail(T1)
        .await
        .unwrap()
        .unwrap()
        .events
        .iter()
        .map(|e| e.phase)
        .collect();
    assert_eq!(
        phases,
        [
            Phase::Event,
            Phase::Event,
            Phase::StepFailed,
            Phase::CompensationStarted,
            Phase::StepCompensated
        ]
    );
    assert_eq!(order_figures().await, ((1, 0, 0, 1, 0, 1, 1), Some(0.0)));

    // `{Type}Completed` ends another one as completed.
    write(vec![
        event_router(11, "order", "OrderCreated", T2),
        event_router(12, "payment", "PaymentAuthorized", T2),
        event_router(13, "order", "OrderCompleted", T2),
    ])
    .await;
    assert_eq!(status_of(T2).await, (SagaStatus::Completed, false, true));
    assert_eq!(order_figures().await, ((2, 0, 0, 1, 1, 2, 1), Some(0.0)));

    // A second failed one moves the failure rate as soon as it is written.
    write(vec![
        event_router(21, "order", "OrderCreated", T3),
        event_router(22, "payment", "PaymentDeclined", T3),
    ])
    .await;
    assert_eq!(status_of(T3).await, (SagaStatus::Failed, false, true));
    let (_, rate) = order_figures().await;
    assert_eq!(rate, Some(1.0 / 3.0));

    // Nothing left for the stall sweep: all three ended by their events.
    let policy = sagascope_store::StallPolicy {
        default_timeout: std::time::Duration::from_secs(60),
        per_type: vec![],
    };
    let swept = store
        .mark_stalled(&policy, now + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(swept.is_empty(), "{swept:?}");

    // Reprojection under the same (no) rules rebuilds the same outcomes.
    store.reproject(&decoder, 4, |_| {}).await.unwrap();
    assert_eq!(status_of(T1).await, (SagaStatus::Compensated, false, true));
    assert_eq!(status_of(T2).await, (SagaStatus::Completed, false, true));
    assert_eq!(status_of(T3).await, (SagaStatus::Failed, false, true));
    let (_, rate) = order_figures().await;
    assert_eq!(rate, Some(1.0 / 3.0));
}

/// A long-lived saga meets 60 trace ids and 60 business keys over three
/// batches (the largest first, so later ones evict): its summary lists the
/// 32 smallest of each and says there are more, and search still finds it
/// by every one of them, each stored once.
async fn many_trace_ids_are_capped_in_the_projection_but_all_searchable(store: &Store) {
    let events: Vec<SagaEvent> = (0..60)
        .map(|n| {
            let mut e = event("ord-long", n, Phase::StepSucceeded, Some("Poll"));
            e.trace_id = Some(format!("trace-{n:03}"));
            e.business_keys = vec![format!("K-{n:03}")];
            e
        })
        .collect();
    for chunk in events.chunks(20).rev() {
        store.write_batch(&batch(chunk.to_vec())).await.unwrap();
    }
    // Redelivered: nothing changes, no key is stored twice.
    store
        .write_batch(&batch(events[40..].to_vec()))
        .await
        .unwrap();

    let saga = store.saga_detail("ord-long").await.unwrap().unwrap().saga;
    let smallest: Vec<String> = (0..32).map(|n| format!("trace-{n:03}")).collect();
    assert_eq!(saga.trace_ids, smallest);
    assert!(saga.more_trace_ids);
    assert_eq!(saga.business_keys.len(), 32);
    assert_eq!(saga.business_keys[0], "K-000");
    assert!(saga.more_business_keys);
    assert_eq!(saga.event_count, 60);
    for q in ["trace-000", "trace-059", "K-045"] {
        let found = store
            .list_sagas(
                &SagaFilter {
                    q: Some(q.into()),
                    ..Default::default()
                }
                .validate()
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1, "{q}");
        assert_eq!(found.items[0].saga_id, "ord-long");
    }
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM saga_keys WHERE saga_id = 'ord-long'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(keys, 120, "60 trace ids and 60 business keys, once each");
}

/// Events whose stored JSON is awkward: nested, unicode, escapes, big and
/// fractional numbers, scalars as payloads, empty and odd headers.
fn odd_events(saga: &str) -> Vec<SagaEvent> {
    let payloads = [
        serde_json::json!({
            "nested": {"list": [1, [2, [3, {"deep": null}]], {"e": []}], "empty": {}},
            "unicode": "żółć ✓ 🦀 e\u{301} \u{2028}\u{2029} \u{7f}",
            "escapes": "quote \" backslash \\ slash / tab \t newline \n nul \u{0} bell \u{7}",
            "numbers": [0, -1, u64::MAX, i64::MIN, 0.1, 1.5e300, -2.5e-308, 12.0],
            "bools": [true, false],
            "key with \"quotes\" and \\ and 🦀": "v"
        }),
        serde_json::json!("just a string with \"quotes\" and 🦀"),
        serde_json::json!(null),
        serde_json::json!(""),
        serde_json::json!([]),
        serde_json::json!(-0.0),
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let n = i as i64;
            let phase = if i == 0 {
                Phase::SagaStarted
            } else {
                Phase::StepSucceeded
            };
            let mut e = event(saga, n, phase, (i > 0).then_some("Step \"ünïcode\""));
            e.payload = payload;
            e.headers = match i {
                0 => vec![],
                1 => vec![sagascope_model::Header {
                    key: "".into(),
                    value: "".into(),
                }],
                _ => vec![
                    sagascope_model::Header {
                        key: "x-ünï \"q\"".into(),
                        value: "line\nbreak \\ \u{0} 🦀".into(),
                    },
                    sagascope_model::Header {
                        key: "x-ünï \"q\"".into(),
                        value: "a repeated key".into(),
                    },
                ],
            };
            if i == 2 {
                e.published_at = None;
                e.trace_id = None;
                e.span_id = Some("00f067aa0ba902b7".into());
                e.error = Some("failed: \"x\" \\ y\n🦀".into());
            }
            // Two events at the same time: the id breaks the tie.
            if i == 4 {
                e.occurred_at = Utc.timestamp_millis_opt(1_763_700_000_000 + 300).unwrap();
            }
            e
        })
        .collect()
}

/// What the API body must equal: the typed detail through serde.
async fn assert_json_equals_detail(store: &Store, id: &str) -> String {
    let json = store
        .saga_timeline_json(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no timeline for {id}"));
    let detail = store.saga_detail(id).await.unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_str(&json.body)
        .unwrap_or_else(|e| panic!("body of {id} is not JSON ({e}): {}", json.body));
    assert_eq!(body, serde_json::to_value(&detail).unwrap(), "{id}");
    // The body parses back into the API shape, too.
    let typed: sagascope_model::SagaDetail = serde_json::from_str(&json.body).unwrap();
    assert_eq!(typed, detail, "{id}");
    assert_eq!(
        store.saga_timeline_etag(id).await.unwrap(),
        Some(json.etag.clone()),
        "{id}: the lone ETag query agrees with the body's"
    );
    json.etag
}

async fn timeline_json_is_the_typed_detail_with_stored_json_passed_through(store: &Store) {
    store
        .write_batch(&batch(odd_events("ord-odd")))
        .await
        .unwrap();
    store
        .write_batch(&batch(compensated_saga("ord-plain", 0)))
        .await
        .unwrap();
    let odd = store.saga_detail("ord-odd").await.unwrap().unwrap();
    assert_eq!(odd.events.len(), 6);
    assert_eq!(odd.events[0].payload["numbers"][2], u64::MAX);
    assert!(odd.events[0].headers.is_empty());
    let order: Vec<&str> = odd.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        order,
        [
            "ord-odd-e0",
            "ord-odd-e1",
            "ord-odd-e2",
            "ord-odd-e3",
            "ord-odd-e4",
            "ord-odd-e5"
        ],
        "timeline order: event time, then id"
    );
    assert_json_equals_detail(store, "ord-odd").await;
    assert_json_equals_detail(store, "ord-plain").await;

    // A merged id answers with the winner's timeline, and its ETag.
    let decoder = Decoder::new(Rules::parse(CHOREOGRAPHY_RULES).unwrap());
    let events = broken_trace_order(&decoder);
    for i in [3, 2, 1, 0] {
        store
            .write_batch(&batch(vec![events[i].clone()]))
            .await
            .unwrap();
    }
    let winner = assert_json_equals_detail(store, T1).await;
    let by_merged_id = assert_json_equals_detail(store, "ord-1").await;
    assert_eq!(by_merged_id, winner);
    let json = store.saga_timeline_json("ord-1").await.unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(body["saga_id"], T1);
    assert_eq!(body["events"].as_array().unwrap().len(), 4);

    assert!(store.saga_timeline_json("missing").await.unwrap().is_none());
    assert!(store.saga_timeline_etag("missing").await.unwrap().is_none());
}

/// A database whose one-row generation table was emptied (the benchmark
/// loader's reset truncates every table) still serves timelines: every
/// timeline read answered 500 on such a database.
async fn the_timeline_answers_without_a_generation_row(store: &Store) {
    let events = vec![
        event("ord-g", 0, Phase::SagaStarted, None),
        event("ord-g", 1, Phase::StepStarted, Some("AuthorizePayment")),
    ];
    store.write_batch(&batch(events)).await.unwrap();
    sqlx::query("DELETE FROM read_model_generation")
        .execute(store.pool())
        .await
        .unwrap();
    let detail = store.saga_detail("ord-g").await.unwrap().unwrap();
    assert_eq!(detail.events.len(), 2);
    let json = store.saga_timeline_json("ord-g").await.unwrap().unwrap();
    assert!(json.body.contains("ord-g"));
    assert_eq!(
        store.saga_timeline_etag("ord-g").await.unwrap(),
        Some(json.etag)
    );
}

async fn timeline_etag_changes_with_everything_the_timeline_shows(store: &Store) {
    use sagascope_store::StallPolicy;
    use std::time::Duration;
    let etag =
        |id: &'static str| async move { store.saga_timeline_etag(id).await.unwrap().unwrap() };
    let started = vec![
        event("ord-e", 0, Phase::SagaStarted, None),
        event("ord-e", 1, Phase::StepStarted, Some("AuthorizePayment")),
    ];
    store.write_batch(&batch(started.clone())).await.unwrap();
    let first = etag("ord-e").await;
    assert!(first.starts_with('"') && first.ends_with('"'), "{first}");
    assert_eq!(etag("ord-e").await, first, "unchanged: same ETag");
    store.write_batch(&batch(started)).await.unwrap();
    assert_eq!(etag("ord-e").await, first, "a redelivery changes nothing");

    // A new event.
    store
        .write_batch(&batch(vec![event(
            "ord-e",
            2,
            Phase::StepSucceeded,
            Some("AuthorizePayment"),
        )]))
        .await
        .unwrap();
    let with_event = etag("ord-e").await;
    assert_ne!(with_event, first);

    // The stall sweep changes the status only.
    let policy = StallPolicy {
        default_timeout: Duration::from_secs(10),
        per_type: vec![],
    };
    let stalled = store
        .mark_stalled(
            &policy,
            Utc.timestamp_millis_opt(1_763_700_000_000).unwrap() + chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    assert_eq!(stalled.len(), 1);
    let after_sweep = etag("ord-e").await;
    assert_ne!(after_sweep, with_event);

    // A reprojection rebuilds every row from version 1.
    store
        .reproject(&Decoder::default(), 100, |_| {})
        .await
        .unwrap();
    let after_reproject = etag("ord-e").await;
    assert_ne!(after_reproject, after_sweep);
    assert_ne!(after_reproject, first);
    assert_json_equals_detail(store, "ord-e").await;

    // A merge: the loser's id now shows the winner, under the winner's ETag.
    let decoder = Decoder::new(Rules::parse(CHOREOGRAPHY_RULES).unwrap());
    let events = broken_trace_order(&decoder);
    store
        .write_batch(&batch(vec![events[3].clone()]))
        .await
        .unwrap();
    let loser_alone = etag("ord-1").await;
    for i in [2, 1, 0] {
        store
            .write_batch(&batch(vec![events[i].clone()]))
            .await
            .unwrap();
    }
    let merged = etag("ord-1").await;
    assert_ne!(merged, loser_alone);
    assert_eq!(merged, etag(T1).await);
}
