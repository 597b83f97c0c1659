//! Issue 13: with no rules file, a choreography's outcome shows as soon as
//! the event that decides it is merged, on the three wire shapes of the
//! design documents: Debezium EventRouter outbox events with only a
//! `trace_id` header, Debezium CDC envelopes of an outbox table, and
//! CloudEvents (binary and structured) with reverse-DNS types.

use chrono::{DateTime, TimeZone, Utc};
use sagascope_domain::{project_all, Decoder, KafkaCoords, RawMessage, SagaEvent, SagaProjection};
use sagascope_model::{Phase, SagaStatus};
use serde_json::{json, Value};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// 2025-11-21T10:00:00Z.
const T0_MS: i64 = 1_763_719_200_000;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(T0_MS + ms).unwrap()
}

fn raw(
    topic: &str,
    offset: i64,
    key: &str,
    value: Option<Value>,
    headers: &[(&str, String)],
) -> RawMessage {
    RawMessage {
        coords: KafkaCoords {
            topic: topic.into(),
            partition: 0,
            offset,
        },
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.to_string().into_bytes()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
            .collect(),
        timestamp: Some(at(offset * 100 + 20)),
    }
}

fn decode(messages: &[RawMessage]) -> Vec<SagaEvent> {
    let decoder = Decoder::default();
    messages
        .iter()
        .map(|m| decoder.decode(m, at(60_000)).unwrap())
        .collect()
}

/// The status after each event, merged one at a time in arrival order.
fn statuses(events: &[SagaEvent]) -> Vec<SagaStatus> {
    let mut projection = SagaProjection::new(&events[0].saga_id);
    events
        .iter()
        .map(|e| {
            assert_eq!(e.saga_id, events[0].saga_id, "{}", e.event_type);
            projection.merge(e);
            projection.status()
        })
        .collect()
}

/// The same final state in reverse arrival order.
fn assert_order_independent(events: &[SagaEvent]) {
    let reversed: Vec<SagaEvent> = events.iter().rev().cloned().collect();
    assert_eq!(
        project_all(TRACE, &reversed),
        project_all(TRACE, events),
        "reverse order"
    );
}

// ---- Debezium EventRouter, correlated by the `trace_id` header only ----

fn event_router(
    offset: i64,
    aggregate: &str,
    key: &str,
    event_type: &str,
    payload: Value,
) -> RawMessage {
    raw(
        &format!("events.{aggregate}"),
        offset,
        key,
        Some(payload),
        &[
            ("id", format!("evt-{offset}")),
            ("type", event_type.to_string()),
            ("trace_id", TRACE.to_string()),
            (
                "created_at",
                at(offset * 100).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        ],
    )
}

#[test]
fn event_router_failure_then_compensation() {
    let events = decode(&[
        event_router(
            1,
            "order",
            "ord-1",
            "OrderCreated",
            json!({"order_id": "ord-1"}),
        ),
        event_router(
            2,
            "stock",
            "ord-1",
            "StockReserved",
            json!({"order_id": "ord-1"}),
        ),
        event_router(
            3,
            "payment",
            "ord-1",
            "PaymentFailed",
            json!({"order_id": "ord-1", "reason": "card declined"}),
        ),
        event_router(
            4,
            "order",
            "ord-1",
            "ReleaseStockRequested",
            json!({"order_id": "ord-1"}),
        ),
        event_router(
            5,
            "stock",
            "ord-1",
            "StockReleased",
            json!({"order_id": "ord-1"}),
        ),
    ]);
    assert!(events
        .iter()
        .all(|e| e.saga_id == TRACE && e.saga_type.is_none()));
    let phases: Vec<Phase> = events.iter().map(|e| e.phase).collect();
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
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Failed,
            SagaStatus::Compensating,
            SagaStatus::Compensated
        ]
    );
    // Failed at once, with its end, step and reason (not inferred).
    let failed = project_all(TRACE, &events[..3]).summary();
    assert_eq!(failed.status, SagaStatus::Failed);
    assert_eq!(failed.saga_type, "order");
    assert_eq!(failed.ended_at, Some(at(300)));
    assert_eq!(failed.duration_ms, Some(200));
    assert_eq!(failed.failed_step.as_deref(), Some("PaymentFailed"));
    assert_eq!(failed.failure_reason.as_deref(), Some("card declined"));
    assert!(!failed.status_inferred);
    let compensating = project_all(TRACE, &events[..4]).summary();
    assert_eq!(compensating.ended_at, None);
    assert_eq!(
        project_all(TRACE, &events[..4]).quiet_status(),
        Some(SagaStatus::Compensated)
    );
    let done = project_all(TRACE, &events).summary();
    assert_eq!(done.ended_at, Some(at(500)));
    assert_eq!(done.failure_reason.as_deref(), Some("card declined"));
    assert_order_independent(&events);
}

#[test]
fn event_router_type_completed_ends_the_saga() {
    let events = decode(&[
        event_router(
            1,
            "order",
            "ord-2",
            "OrderCreated",
            json!({"order_id": "ord-2"}),
        ),
        event_router(
            2,
            "payment",
            "ord-2",
            "PaymentRejected",
            json!({"error": "limit"}),
        ),
        event_router(3, "payment", "ord-2", "PaymentCompleted", json!({})),
        event_router(
            4,
            "order",
            "ord-2",
            "OrderCompleted",
            json!({"order_id": "ord-2"}),
        ),
    ]);
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Failed,
            // PaymentCompleted names another entity than the saga's type.
            SagaStatus::Failed,
            // A retry succeeded: the completion is later than the failure.
            SagaStatus::Completed
        ]
    );
    let summary = project_all(TRACE, &events).summary();
    assert_eq!(summary.ended_at, Some(at(400)));
    assert_order_independent(&events);
}

// ---- Debezium CDC envelopes of an outbox table ----

fn cdc(
    offset: i64,
    aggregate: &str,
    event_type: &str,
    payload: Value,
    with_schema: bool,
) -> RawMessage {
    let envelope = json!({
        "before": null,
        "after": {
            "id": format!("row-{offset}"),
            "aggregatetype": aggregate,
            "aggregateid": "ord-3",
            "type": event_type,
            "payload": payload.to_string(),
            "trace_id": TRACE,
            "created_at": at(offset * 100).timestamp_micros(),
        },
        "source": {"connector": "postgresql", "db": "shop", "schema": "shop", "table": "outbox", "ts_ms": T0_MS + offset * 100 + 3},
        "op": "c",
        "ts_ms": T0_MS + offset * 100 + 9,
        "transaction": null
    });
    let value = if with_schema {
        json!({"schema": {"type": "struct", "name": "dbserver1.shop.outbox.Envelope"}, "payload": envelope})
    } else {
        envelope
    };
    raw(
        "dbserver1.shop.outbox",
        offset,
        &format!(r#"{{"id":"row-{offset}"}}"#),
        Some(value),
        &[],
    )
}

#[test]
fn debezium_cdc_outbox_failure_then_compensation() {
    let events = decode(&[
        cdc(
            1,
            "Order",
            "OrderCreated",
            json!({"order_id": "ord-3"}),
            true,
        ),
        cdc(
            2,
            "Stock",
            "StockReserved",
            json!({"order_id": "ord-3"}),
            false,
        ),
        cdc(
            3,
            "Order",
            "PaymentRequested",
            json!({"order_id": "ord-3"}),
            true,
        ),
        cdc(
            4,
            "Payment",
            "PaymentDeclined",
            json!({"reason": "insufficient funds"}),
            false,
        ),
        cdc(
            5,
            "Order",
            "ReleaseStockRequested",
            json!({"order_id": "ord-3"}),
            true,
        ),
        cdc(
            6,
            "Stock",
            "StockReleased",
            json!({"order_id": "ord-3"}),
            false,
        ),
    ]);
    assert!(events.iter().all(|e| e.saga_id == TRACE));
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Failed,
            SagaStatus::Compensating,
            SagaStatus::Compensated
        ]
    );
    let failed = project_all(TRACE, &events[..4]).summary();
    assert_eq!(failed.saga_type, "Order");
    assert_eq!(failed.failure_reason.as_deref(), Some("insufficient funds"));
    assert_order_independent(&events);
}

#[test]
fn debezium_cdc_outbox_order_confirmed_completes() {
    let events = decode(&[
        cdc(
            1,
            "Order",
            "OrderCreated",
            json!({"order_id": "ord-3"}),
            false,
        ),
        cdc(
            2,
            "Stock",
            "StockReserved",
            json!({"order_id": "ord-3"}),
            true,
        ),
        cdc(3, "Payment", "PaymentAuthorized", json!({}), false),
        cdc(
            4,
            "Order",
            "OrderConfirmed",
            json!({"order_id": "ord-3"}),
            true,
        ),
    ]);
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Completed
        ]
    );
    let summary = project_all(TRACE, &events).summary();
    assert_eq!(summary.ended_at, Some(at(400)));
    assert_eq!(summary.duration_ms, Some(300));
    assert!(!summary.status_inferred);
    assert_order_independent(&events);
}

// ---- CloudEvents with reverse-DNS types, binary and structured ----

fn cloudevent(offset: i64, event_type: &str, data: Value, binary: bool) -> RawMessage {
    let traceparent = format!("00-{TRACE}-00f067aa0ba9{offset:04x}-01");
    let time = at(offset * 100).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let source = format!("/acme/{}", event_type.split('.').nth(2).unwrap_or("x"));
    if binary {
        raw(
            "acme.events",
            offset,
            "ord-4",
            Some(data),
            &[
                ("ce_specversion", "1.0".into()),
                ("ce_id", format!("ce-{offset}")),
                ("ce_type", event_type.into()),
                ("ce_source", source),
                ("ce_time", time),
                ("ce_subject", "ord-4".into()),
                ("ce_traceparent", traceparent),
                ("content-type", "application/json".into()),
            ],
        )
    } else {
        let value = json!({
            "specversion": "1.0",
            "id": format!("ce-{offset}"),
            "type": event_type,
            "source": source,
            "subject": "ord-4",
            "time": time,
            "datacontenttype": "application/json",
            "traceparent": traceparent,
            "data": data,
        });
        raw(
            "acme.events",
            offset,
            "ord-4",
            Some(value),
            &[(
                "content-type",
                "application/cloudevents+json; charset=UTF-8".into(),
            )],
        )
    }
}

#[test]
fn cloudevents_reverse_dns_failure_then_compensation() {
    let events = decode(&[
        cloudevent(
            1,
            "com.acme.order.created",
            json!({"order_id": "ord-4"}),
            false,
        ),
        cloudevent(2, "com.acme.stock.reserved", json!({}), true),
        cloudevent(
            3,
            "com.acme.payment.failed",
            json!({"reason": "card declined"}),
            true,
        ),
        cloudevent(4, "com.acme.stock.release.requested", json!({}), false),
        cloudevent(5, "com.acme.stock.released", json!({}), true),
    ]);
    assert!(events.iter().all(|e| e.saga_id == TRACE));
    let steps: Vec<&str> = events.iter().filter_map(|e| e.step.as_deref()).collect();
    assert_eq!(
        steps,
        [
            "order.created",
            "stock.reserved",
            "payment.failed",
            "release.requested",
            "stock.released"
        ]
    );
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Failed,
            SagaStatus::Compensating,
            SagaStatus::Compensated
        ]
    );
    let failed = project_all(TRACE, &events[..3]).summary();
    assert_eq!(failed.failed_step.as_deref(), Some("payment.failed"));
    assert_eq!(failed.failure_reason.as_deref(), Some("card declined"));
    assert_order_independent(&events);
}

#[test]
fn cloudevents_reverse_dns_timeouts_fail_and_type_completed_completes() {
    // Case and separators do not matter in the last token.
    for failure in [
        "com.acme.payment.TIMED_OUT",
        "com.acme.payment.timedout",
        "com.acme.payment.rejected",
    ] {
        let events = decode(&[
            cloudevent(1, "com.acme.order.created", json!({}), true),
            cloudevent(2, failure, json!({"error": "no answer"}), false),
        ]);
        assert_eq!(
            statuses(&events),
            [SagaStatus::Running, SagaStatus::Failed],
            "{failure}"
        );
    }
    // The saga's type is its first event's (the source is a URI): the
    // completion of the same entity ends it.
    let events = decode(&[
        cloudevent(1, "com.acme.order.created", json!({}), true),
        cloudevent(2, "com.acme.payment.authorized", json!({}), false),
        cloudevent(3, "com.acme.payment.completed", json!({}), true),
        cloudevent(4, "com.acme.order.completed", json!({}), false),
    ]);
    assert_eq!(
        project_all(TRACE, &events).saga_type(),
        "com.acme.order.created"
    );
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Completed
        ]
    );
    assert_order_independent(&events);
}

// ---- the rules and explicit ids keep their logic ----

#[test]
fn declared_sagas_keep_their_own_status_logic() {
    // A rules file that declares the type: a failure alone leaves the saga
    // running until a declared end (or the stall sweep) comes.
    let rules =
        sagascope_domain::Rules::parse("[[saga]]\ntype = 'order'\nstart = ['OrderCreated']\n")
            .unwrap();
    let decoder = Decoder::new(rules);
    let events: Vec<SagaEvent> = [
        event_router(1, "order", "ord-5", "OrderCreated", json!({})),
        event_router(2, "payment", "ord-5", "PaymentFailed", json!({})),
        event_router(3, "order", "ord-5", "OrderCompleted", json!({})),
    ]
    .iter()
    .map(|m| decoder.decode(m, at(60_000)).unwrap())
    .collect();
    assert_eq!(
        statuses(&events),
        [
            SagaStatus::Running,
            SagaStatus::Running,
            SagaStatus::Running
        ]
    );
    assert_eq!(project_all(TRACE, &events).quiet_status(), None);

    // An explicit saga id (here in the payload) declares the instance.
    let events = decode(&[
        event_router(
            1,
            "order",
            "ord-6",
            "OrderCreated",
            json!({"saga_id": "s-6"}),
        ),
        event_router(
            2,
            "payment",
            "ord-6",
            "PaymentFailed",
            json!({"saga_id": "s-6"}),
        ),
    ]);
    assert_eq!(events[1].saga_id, "s-6");
    assert_eq!(
        statuses(&events),
        [SagaStatus::Running, SagaStatus::Running]
    );
}
