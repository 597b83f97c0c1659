//! The rest of issue 16 on both stores: orchestrated orders (saga state
//! events through the real decoder, as the demo's orchestrator sends them)
//! whose compensation releases the stock by a step of another name teach
//! the pair ReserveStock ↔ ReleaseStock, and the one whose compensation
//! skipped the release is flagged "incomplete compensation" with the step
//! named: in its row, the list filter, the detail and the overview's count.
//! And the list sorted by time waited: running sagas only, the one quiet
//! longest first, paged by its own cursor, each with what it waits on.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sagascope_domain::{Decoder, KafkaCoords, RawMessage, SagaEvent};
use sagascope_flows::FlowModels;
use sagascope_model::{SagaFilter, SagaPage, SagaStatus, Timestamp};
use sagascope_store::{IngestBatch, Store};

sagascope_store::on_both_stores!(
    a_compensation_that_skips_a_step_is_flagged_with_the_step_named,
    the_list_sorts_running_sagas_by_time_waited,
);

const T0_MS: i64 = 1_763_700_000_000;

fn at(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(T0_MS + ms).unwrap()
}

/// The orchestrator's saga state events of instance `id`: each (status,
/// step) 200 ms after the one before, from `start_ms`.
fn orchestrated(
    id: &str,
    start_ms: i64,
    states: &[(&str, Option<&str>)],
    offset: &mut i64,
) -> Vec<SagaEvent> {
    let decoder = Decoder::default();
    states
        .iter()
        .enumerate()
        .map(|(n, (status, step))| {
            let occurred = at(start_ms + n as i64 * 200);
            *offset += 1;
            // The names here are plain ASCII: no JSON escaping needed.
            let step = step
                .map(|step| format!(r#","step":"{step}""#))
                .unwrap_or_default();
            let state = format!(
                r#"{{"saga_type":"order","saga_id":"order_fulfillment","correlation_id":"{id}","status":"{status}","timestamp":"{}"{step}}}"#,
                occurred.to_rfc3339()
            );
            let message = RawMessage {
                coords: KafkaCoords {
                    topic: "saga.state".into(),
                    partition: 0,
                    offset: *offset,
                },
                key: Some(id.as_bytes().to_vec()),
                value: Some(state.into_bytes()),
                headers: vec![],
                timestamp: Some(occurred),
            };
            decoder.decode(&message, occurred).unwrap()
        })
        .collect()
}

const COMPENSATED: [(&str, Option<&str>); 8] = [
    ("STARTED", None),
    ("RUNNING", Some("ReserveStock")),
    ("STEP_COMPLETED", Some("ReserveStock")),
    ("RUNNING", Some("AuthorizePayment")),
    ("STEP_FAILED", Some("AuthorizePayment")),
    ("COMPENSATION_STARTED", None),
    ("COMPENSATING_STEP", Some("ReleaseStock")),
    ("STEP_COMPENSATED", Some("ReleaseStock")),
];

async fn write(store: &Store, events: Vec<SagaEvent>) {
    store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            events,
            ..Default::default()
        })
        .await
        .unwrap();
}

fn ids(page: &SagaPage) -> Vec<&str> {
    page.items.iter().map(|s| s.saga_id.as_str()).collect()
}

fn query(filter: SagaFilter) -> sagascope_model::SagaQuery {
    filter.validate().unwrap()
}

async fn a_compensation_that_skips_a_step_is_flagged_with_the_step_named(store: &Store) {
    let mut offset = 0;
    let mut events = Vec::new();
    // Five whole compensations, then one that reports COMPENSATED without
    // having released the stock.
    for n in 0..5 {
        let mut states = COMPENSATED.to_vec();
        states.push(("COMPENSATED", None));
        events.extend(orchestrated(
            &format!("ord-{n}"),
            n * 10_000,
            &states,
            &mut offset,
        ));
    }
    let mut skipped = COMPENSATED[..6].to_vec();
    skipped.push(("COMPENSATED", None));
    events.extend(orchestrated("ord-skip", 60_000, &skipped, &mut offset));
    // One still compensating: never flagged, whatever it lacks so far.
    events.extend(orchestrated(
        "ord-busy",
        70_000,
        &COMPENSATED[..6],
        &mut offset,
    ));
    write(store, events).await;

    // Its own events name no compensation of ReserveStock by that name:
    // nothing is flagged before the type's pairs are learned.
    let flagged = query(SagaFilter {
        incomplete_compensation: Some("true".into()),
        ..Default::default()
    });
    assert!(store.list_sagas(&flagged).await.unwrap().items.is_empty());
    let skip = store.saga_detail("ord-skip").await.unwrap().unwrap().saga;
    assert_eq!(skip.status, SagaStatus::Compensated);
    assert!(skip.missing_compensations.is_empty());

    let flows = FlowModels::default();
    let now = at(200_000);
    flows
        .learn(store, now, Duration::from_secs(300))
        .await
        .unwrap();
    let listed = store.list_sagas(&flagged).await.unwrap();
    assert_eq!(ids(&listed), ["ord-skip"]);
    assert_eq!(listed.items[0].missing_compensations, ["ReserveStock"]);
    let detail = store.saga_detail("ord-skip").await.unwrap().unwrap().saga;
    assert_eq!(detail.missing_compensations, ["ReserveStock"]);
    for whole in ["ord-0", "ord-4", "ord-busy"] {
        let saga = store.saga_detail(whole).await.unwrap().unwrap().saga;
        assert!(saga.missing_compensations.is_empty(), "{whole}");
    }
    // The overview's cohort count: started in the window, or not.
    assert_eq!(
        store.count_incomplete_compensations(at(0)).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .count_incomplete_compensations(at(60_001))
            .await
            .unwrap(),
        0
    );
    // The timeline's ETag changed with the flag (the row's version went up).
    let etag = store.saga_timeline_etag("ord-skip").await.unwrap().unwrap();
    // A second round changes nothing.
    flows
        .learn(store, now, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        store.saga_timeline_etag("ord-skip").await.unwrap().unwrap(),
        etag
    );

    // The release arrives late: the saga is whole again, and the write
    // that brings the event clears the flag.
    let late = orchestrated("ord-skip", 60_000, &COMPENSATED, &mut offset);
    write(store, late[6..].to_vec()).await;
    assert!(store.list_sagas(&flagged).await.unwrap().items.is_empty());
    flows
        .learn(store, now, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(store.list_sagas(&flagged).await.unwrap().items.is_empty());
    assert_eq!(
        store.count_incomplete_compensations(at(0)).await.unwrap(),
        0
    );
}

async fn the_list_sorts_running_sagas_by_time_waited(store: &Store) {
    let mut offset = 0;
    let mut events = Vec::new();
    // Twenty finished orders teach the flow: STARTED → RUNNING ReserveStock
    // → … each 200 ms apart.
    let done: [(&str, Option<&str>); 5] = [
        ("STARTED", None),
        ("RUNNING", Some("ReserveStock")),
        ("STEP_COMPLETED", Some("ReserveStock")),
        ("RUNNING", Some("AuthorizePayment")),
        ("STEP_COMPLETED", Some("AuthorizePayment")),
    ];
    for n in 0..20 {
        let mut states = done.to_vec();
        states.push(("COMPLETED", None));
        events.extend(orchestrated(
            &format!("done-{n}"),
            n * 1_000,
            &states,
            &mut offset,
        ));
    }
    // Three running ones, quiet since 150 s, 100 s and 190 s: started in
    // another order than they went quiet.
    events.extend(orchestrated("wait-b", 100_000, &done[..3], &mut offset));
    events.extend(orchestrated("wait-c", 149_600, &done[..3], &mut offset));
    events.extend(orchestrated("wait-a", 189_600, &done[..3], &mut offset));
    write(store, events).await;

    let waiting = |cursor: Option<String>| {
        query(SagaFilter {
            sort: Some("waiting".into()),
            limit: Some("2".into()),
            cursor,
            ..Default::default()
        })
    };
    let first = store.list_sagas(&waiting(None)).await.unwrap();
    assert_eq!(ids(&first), ["wait-b", "wait-c"]);
    let second = store
        .list_sagas(&waiting(first.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(ids(&second), ["wait-a"]);
    assert_eq!(second.next_cursor, None);
    // The default order is unchanged: newest start first, every status.
    let newest = store
        .list_sagas(&query(SagaFilter {
            limit: Some("3".into()),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(ids(&newest), ["wait-a", "wait-c", "wait-b"]);

    // What each waits on, as the list's server function and API add it.
    let flows = FlowModels::default();
    let now = at(200_000);
    flows
        .learn(store, now, Duration::from_secs(300))
        .await
        .unwrap();
    let mut page = store.list_sagas(&waiting(None)).await.unwrap();
    flows.annotate_waiting(&mut page.items, now);
    let b = page.items[0].waiting_on.clone().expect("wait-b waits");
    assert_eq!(b.next, "AuthorizePayment · Step started");
    assert_eq!(b.waited_ms, 99_600);
    assert!(b.overdue, "{b:?}");
    let a = store.saga_detail("wait-a").await.unwrap().unwrap().saga;
    let a = flows.waiting_on(&a, now).expect("wait-a waits");
    assert_eq!((a.waited_ms, a.overdue), (10_000, true));
    // A finished saga waits for nothing.
    let finished = store.saga_detail("done-0").await.unwrap().unwrap().saga;
    assert_eq!(flows.waiting_on(&finished, now), None);
}
