//! Learned flows end undeclared sagas, on both stores: a choreography with
//! no rules file (Debezium EventRouter messages tied by their trace id, the
//! design documents' scan-reward saga) is learned from its stored
//! instances, and the sweep then ends an instance that stopped at the
//! learned end event at once, and one that stopped elsewhere after the
//! learned quiet time instead of the flat stall timeout.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sagascope_domain::{Decoder, KafkaCoords, RawMessage, SagaEvent};
use sagascope_flows::FlowModels;
use sagascope_model::{FlowNodeKind, MetricsWindow, SagaFilter, SagaStatus, Timestamp};
use sagascope_store::{
    IngestBatch, StallPolicy, Store, INFERRED_FROM_LEARNED_END, INFERRED_FROM_LEARNED_QUIET,
};

sagascope_store::on_both_stores!(
    a_learned_flow_ends_undeclared_sagas_at_its_end_event_or_after_its_quiet_time
);

const T0_MS: i64 = 1_763_700_000_000;
const FLOW: [(&str, &str); 4] = [
    ("image", "ImageRegistered"),
    ("scan", "ScanCompleted"),
    ("character", "CharacterAcquired"),
    ("profile", "ProfileUpdated"),
];

fn at(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(T0_MS + ms).unwrap()
}

/// The first `hops` events of the flow for trace `trace`, the first at
/// `start_ms`, one second apart, as the outbox's EventRouter sends them.
fn instance(trace: &str, start_ms: i64, hops: usize, offset: &mut i64) -> Vec<SagaEvent> {
    let decoder = Decoder::default();
    FLOW[..hops]
        .iter()
        .enumerate()
        .map(|(n, (aggregate, event_type))| {
            let occurred = at(start_ms + n as i64 * 1_000);
            *offset += 1;
            let message = RawMessage {
                coords: KafkaCoords {
                    topic: format!("events.{aggregate}"),
                    partition: 0,
                    offset: *offset,
                },
                key: Some(format!("{trace}-{aggregate}").into_bytes()),
                value: Some(br#"{"user_id": "u-1"}"#.to_vec()),
                headers: [
                    ("id", format!("{trace}-{n}")),
                    ("type", event_type.to_string()),
                    ("trace_id", trace.to_string()),
                    ("created_at", occurred.to_rfc3339()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Some(v.into_bytes())))
                .collect(),
                timestamp: Some(occurred),
            };
            decoder.decode(&message, occurred).unwrap()
        })
        .collect()
}

fn trace(n: usize) -> String {
    format!("4bf92f3577b34da6a3ce929d{n:08x}")
}

async fn a_learned_flow_ends_undeclared_sagas_at_its_end_event_or_after_its_quiet_time(
    store: &Store,
) {
    let mut offset = 0;
    let mut events = Vec::new();
    // Twelve whole instances, 10 s apart.
    for n in 0..12 {
        events.extend(instance(&trace(n), n as i64 * 10_000, 4, &mut offset));
    }
    // One that stopped after ScanCompleted long ago, one that is between
    // hops now, one whose end event has just arrived.
    events.extend(instance(&trace(100), 150_000, 2, &mut offset));
    events.extend(instance(&trace(101), 196_000, 2, &mut offset));
    events.extend(instance(&trace(102), 196_500, 4, &mut offset));
    store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            events,
            ..Default::default()
        })
        .await
        .unwrap();
    let saga_type = store
        .saga_detail(&trace(0))
        .await
        .unwrap()
        .unwrap()
        .saga
        .saga_type;
    // Nothing in these names ends the saga: running, until the flow says.
    for n in [0, 100, 101, 102] {
        let saga = store.saga_detail(&trace(n)).await.unwrap().unwrap().saga;
        assert_eq!(saga.status, SagaStatus::Running, "{n}");
    }

    let now = at(200_000);
    let flows = FlowModels::default();
    assert_eq!(
        flows
            .learn(store, now, Duration::from_secs(300))
            .await
            .unwrap(),
        1
    );
    let model = flows.get(&saga_type).expect("the type's flow is learned");
    assert!(!model.declared);
    assert_eq!(model.instances, 15);
    // The twelve whole ones, the one stopped long ago, and the one whose
    // last event is 3.5 s old are not yet settled (10 s).
    assert_eq!(model.settled, 13);
    let terminals: Vec<&str> = model
        .nodes
        .iter()
        .filter(|n| n.terminal)
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(terminals, ["ProfileUpdated"]);
    assert!(model.nodes.iter().all(|n| n.kind == FlowNodeKind::Forward));
    let hop = model
        .edges
        .iter()
        .find(|e| e.from == "ImageRegistered" && e.to == "ScanCompleted")
        .unwrap();
    assert_eq!((hop.count, hop.gap.p99_ms), (15, Some(1_000)));
    assert_eq!(model.quiet_after_ms, Some(10_000));
    let ends = flows.learned_ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].end_nodes, ["ProfileUpdated"]);

    // The flat timeout alone would end nothing for five minutes; the
    // learned flow ends 13 whole instances and the one quiet for 48 s.
    let policy = StallPolicy {
        default_timeout: Duration::from_secs(300),
        per_type: vec![],
    };
    let swept = store.sweep_quiet_sagas(&policy, &ends, now).await.unwrap();
    assert_eq!(swept.len(), 14, "{swept:?}");
    for (n, status, from) in [
        (0, SagaStatus::Completed, Some(INFERRED_FROM_LEARNED_END)),
        (102, SagaStatus::Completed, Some(INFERRED_FROM_LEARNED_END)),
        (
            100,
            SagaStatus::Completed,
            Some(INFERRED_FROM_LEARNED_QUIET),
        ),
        (101, SagaStatus::Running, None),
    ] {
        let saga = store.saga_detail(&trace(n)).await.unwrap().unwrap().saga;
        assert_eq!(saga.status, status, "{n}");
        assert_eq!(saga.status_inferred, from.is_some(), "{n}");
        assert_eq!(saga.inferred_from.as_deref(), from, "{n}");
        // An end event ends it then; a quiet inference has no end time.
        let ended = from == Some(INFERRED_FROM_LEARNED_END);
        assert_eq!(saga.ended_at == Some(saga.last_event_at), ended, "{n}");
        if ended {
            assert_eq!(saga.duration_ms, Some(3_000), "{n}");
        }
    }
    // The list shows the same, and the overview counts them.
    let listed = store
        .list_sagas(
            &SagaFilter {
                saga_type: Some(saga_type.clone()),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 15);
    let metrics = store
        .window_metrics(MetricsWindow::Hour1, now)
        .await
        .unwrap();
    let counts = metrics
        .saga_types
        .iter()
        .find(|t| t.saga_type == saga_type)
        .unwrap()
        .counts;
    assert_eq!((counts.completed, counts.running), (14, 1));

    // The one between hops waits for CharacterAcquired, which usually
    // follows ScanCompleted within 1 s: overdue once it has waited longer
    // than that and than the 5 s floor (6 s at 203 s), not at 200 s.
    let overdue_query = SagaFilter {
        overdue: Some("true".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let ids = |page: sagascope_model::SagaPage| {
        page.items
            .into_iter()
            .map(|s| s.saga_id)
            .collect::<Vec<_>>()
    };
    let overdue = store
        .list_sagas_overdue_by(&overdue_query, &flows.overdue_rules(at(203_000)))
        .await
        .unwrap();
    assert_eq!(ids(overdue), [trace(101)]);
    let early = store
        .list_sagas_overdue_by(&overdue_query, &flows.overdue_rules(now))
        .await
        .unwrap();
    assert!(early.items.is_empty());
    assert!(store
        .list_sagas_overdue_by(&overdue_query, &[])
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(!model.waiting_on("ScanCompleted", 3_000).unwrap().overdue);
    let waiting = model.waiting_on("ScanCompleted", 6_000).unwrap();
    assert_eq!(
        (waiting.next.as_str(), waiting.overdue),
        ("CharacterAcquired", true)
    );

    // A new event of an ended instance makes it running again (its events
    // decide), and a second sweep changes nothing else.
    let mut late = instance(&trace(100), 150_000, 3, &mut offset);
    late.drain(..2);
    let late_at = late[0].occurred_at;
    store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            events: late,
            ..Default::default()
        })
        .await
        .unwrap();
    let saga = store.saga_detail(&trace(100)).await.unwrap().unwrap().saga;
    assert_eq!(saga.status, SagaStatus::Running);
    assert_eq!(saga.inferred_from, None);
    assert_eq!(saga.last_node.as_deref(), Some("CharacterAcquired"));
    assert!(late_at < now);
    let again = store.sweep_quiet_sagas(&policy, &ends, now).await.unwrap();
    assert_eq!(
        again.iter().map(|s| s.saga_id.as_str()).collect::<Vec<_>>(),
        [trace(100).as_str()],
        "only the instance that moved, quiet again for longer than 10 s"
    );
}
