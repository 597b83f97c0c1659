//! Spans received over OTLP, on both backends (the suite macro of
//! store_suite.rs): idempotent upserts, a trace read in waterfall order
//! with its limit, a saga's trace ids, and bounded deletes — all spans past
//! an age, and sooner those of traces that no saga has.

use chrono::{Duration, TimeZone, Utc};
use sagascope_domain::{KafkaCoords, SagaEvent};
use sagascope_model::{
    Phase, SpanAttribute, SpanEventView, SpanKind, SpanStatus, SpanView, Timestamp,
};
use sagascope_store::{IngestBatch, Store};

sagascope_store::on_both_stores!(
    spans_are_upserted_once_and_read_in_waterfall_order,
    a_trace_read_stops_at_its_limit,
    a_sagas_trace_ids_come_from_its_events,
    old_spans_are_deleted_in_bounded_batches,
    spans_of_traces_no_saga_has_go_after_the_window,
    a_sweep_from_where_the_last_one_stopped_reads_only_newer_spans,
);

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_B: &str = "5b8efff798038103d269b633813fc60c";

fn at(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(1_763_700_000_000 + ms).unwrap()
}

fn span(trace: &str, n: u32, start_ms: i64) -> SpanView {
    SpanView {
        trace_id: trace.into(),
        span_id: format!("{n:016x}"),
        parent_span_id: (n > 1).then(|| format!("{:016x}", 1)),
        name: format!("op {n}"),
        service: "payments".into(),
        kind: SpanKind::Server,
        start: at(start_ms),
        end: at(start_ms + 250),
        duration_us: 250_000,
        status: if n == 2 {
            SpanStatus::Error
        } else {
            SpanStatus::Unset
        },
        status_message: (n == 2).then(|| "card <declined>".to_string()),
        attributes: vec![SpanAttribute {
            key: "http.route".into(),
            value: "/orders/{id}".into(),
        }],
        events: vec![SpanEventView {
            name: "exception".into(),
            at: at(start_ms + 10),
            attributes: vec![SpanAttribute {
                key: "exception.message".into(),
                value: "\"quoted\" & <b>".into(),
            }],
        }],
    }
}

fn event(saga: &str, n: i64, trace: &str) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga}-e{n}"),
        saga_id: saga.to_string(),
        explicit_saga_id: Some(saga.to_string()),
        rule_classified: false,
        correlation_rank: 0,
        correlation_keys: vec![],
        saga_type: Some("order".into()),
        step: None,
        phase: if n == 0 {
            Phase::SagaStarted
        } else {
            Phase::StepSucceeded
        },
        event_type: "OrderEvent".into(),
        trace_id: Some(trace.to_string()),
        span_id: None,
        request_id: None,
        business_keys: vec![],
        occurred_at: at(n * 100),
        published_at: None,
        ingested_at: at(9_000),
        source_type: None,
        source_id: None,
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset: n,
        },
        headers: vec![],
        payload: serde_json::json!({ "n": n }),
        error: None,
    }
}

async fn write_events(store: &Store, events: Vec<SagaEvent>) {
    store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            events,
            errors: vec![],
            dead_letters: vec![],
            offsets: vec![],
            backlog: vec![],
        })
        .await
        .unwrap();
}

async fn spans_are_upserted_once_and_read_in_waterfall_order(store: &Store) {
    let spans = vec![
        span(TRACE_A, 3, 30),
        span(TRACE_A, 1, 0),
        span(TRACE_A, 2, 10),
    ];
    assert_eq!(store.insert_spans(&spans).await.unwrap(), 3);
    // Sent again (an exporter's retry), plus a repeat inside one request.
    let mut again = spans.clone();
    again.push(span(TRACE_A, 3, 30));
    assert_eq!(store.insert_spans(&again).await.unwrap(), 3);
    assert_eq!(store.insert_spans(&[]).await.unwrap(), 0);

    let (read, truncated) = store.trace_spans(TRACE_A, 100).await.unwrap();
    assert!(!truncated);
    let names: Vec<&str> = read.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["op 1", "op 2", "op 3"]);
    assert_eq!(read[1], span(TRACE_A, 2, 10), "every field round trips");
    let (other, _) = store.trace_spans(TRACE_B, 100).await.unwrap();
    assert!(other.is_empty());
    // Upper case asks for the same trace.
    let (upper, _) = store
        .trace_spans(&TRACE_A.to_uppercase(), 100)
        .await
        .unwrap();
    assert_eq!(upper.len(), 3);
}

async fn a_trace_read_stops_at_its_limit(store: &Store) {
    let spans: Vec<SpanView> = (1..=5).map(|n| span(TRACE_A, n, i64::from(n))).collect();
    store.insert_spans(&spans).await.unwrap();
    let (read, truncated) = store.trace_spans(TRACE_A, 2).await.unwrap();
    assert!(truncated);
    assert_eq!(read, spans[..2].to_vec());
    let (read, truncated) = store.trace_spans(TRACE_A, 5).await.unwrap();
    assert!(!truncated);
    assert_eq!(read.len(), 5);
}

async fn a_sagas_trace_ids_come_from_its_events(store: &Store) {
    write_events(
        store,
        vec![
            event("ord-1", 2, TRACE_A),
            event("ord-1", 0, TRACE_B),
            event("ord-1", 1, TRACE_A),
        ],
    )
    .await;
    assert_eq!(
        store.saga_trace_ids("ord-1").await.unwrap(),
        Some(vec![TRACE_B.to_string(), TRACE_A.to_string()])
    );
    assert_eq!(store.saga_trace_ids("nope").await.unwrap(), None);
}

async fn old_spans_are_deleted_in_bounded_batches(store: &Store) {
    let spans: Vec<SpanView> = (1..=5).map(|n| span(TRACE_A, n, i64::from(n))).collect();
    store.insert_spans(&spans).await.unwrap();
    // Received just now: nothing is older than an hour ago.
    let hour_ago = Utc::now() - Duration::hours(1);
    assert_eq!(store.delete_spans_before(hour_ago, 2).await.unwrap(), 0);
    let later = Utc::now() + Duration::seconds(1);
    let mut batches = Vec::new();
    loop {
        let deleted = store.delete_spans_before(later, 2).await.unwrap();
        batches.push(deleted);
        if deleted == 0 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0]);
    assert!(store.trace_spans(TRACE_A, 10).await.unwrap().0.is_empty());
}

async fn spans_of_traces_no_saga_has_go_after_the_window(store: &Store) {
    write_events(store, vec![event("ord-1", 0, TRACE_A)]).await;
    let mut spans: Vec<SpanView> = (1..=3).map(|n| span(TRACE_A, n, 0)).collect();
    spans.extend((1..=3).map(|n| span(TRACE_B, n, 0)));
    store.insert_spans(&spans).await.unwrap();

    // Within the window nothing goes.
    let window_start = Utc::now() - Duration::minutes(15);
    assert_eq!(
        store
            .delete_unmatched_spans_before(window_start, 100)
            .await
            .unwrap(),
        0
    );
    // Past it, only the spans of the trace no saga has, in bounded batches.
    let later = Utc::now() + Duration::seconds(1);
    assert_eq!(
        store.delete_unmatched_spans_before(later, 2).await.unwrap(),
        2
    );
    assert_eq!(
        store.delete_unmatched_spans_before(later, 2).await.unwrap(),
        1
    );
    assert_eq!(
        store.delete_unmatched_spans_before(later, 2).await.unwrap(),
        0
    );
    assert_eq!(store.trace_spans(TRACE_A, 10).await.unwrap().0.len(), 3);
    assert!(store.trace_spans(TRACE_B, 10).await.unwrap().0.is_empty());
}

/// A sweep that has checked up to a time reads only the spans received
/// since: an unmatched span received before `since` is left (to the
/// retention by age), one received after it goes.
async fn a_sweep_from_where_the_last_one_stopped_reads_only_newer_spans(store: &Store) {
    store.insert_spans(&[span(TRACE_B, 1, 0)]).await.unwrap();
    let since = Utc::now() + Duration::milliseconds(1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.insert_spans(&[span(TRACE_B, 2, 0)]).await.unwrap();
    let later = Utc::now() + Duration::seconds(1);
    let deleted = store
        .delete_unmatched_spans_received_between(Some(since), later, 100)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left = store.trace_spans(TRACE_B, 10).await.unwrap().0;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].span_id, span(TRACE_B, 1, 0).span_id);
    assert_eq!(
        store
            .delete_unmatched_spans_received_between(None, later, 100)
            .await
            .unwrap(),
        1
    );
}
