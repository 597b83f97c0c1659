//! The choreographed order saga, run through sagascope's decoder.

use chrono::{DateTime, TimeZone, Utc};
use rand::SeedableRng;
use sagascope_model::Phase;
use serde_json::Value;

use super::*;
use crate::message::RenderedMessage;
use crate::test_support::{decode, header};

fn at() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_763_719_200_123).unwrap()
}

fn rendered(plan: &SagaPlan, rng: &mut StdRng) -> Vec<RenderedMessage> {
    (0..plan.messages.len())
        .map(|index| plan.render(index, at(), rng))
        .collect()
}

fn json_value(message: &RenderedMessage) -> Value {
    serde_json::from_slice(message.value.as_deref().unwrap()).unwrap()
}

#[test]
fn every_outcome_decodes_to_its_events_correlated_by_trace_id() {
    let mut rng = StdRng::seed_from_u64(11);
    let expected = [
        (
            PlannedOutcome::Completed,
            &[
                "OrderCreated",
                "StockReserved",
                "PaymentRequested",
                "com.shop.payment.PaymentAuthorized",
                "OrderConfirmed",
            ][..],
        ),
        (
            PlannedOutcome::Compensated,
            &[
                "OrderCreated",
                "StockReserved",
                "PaymentRequested",
                "com.shop.payment.PaymentFailed",
                "ReleaseStockRequested",
                "StockReleased",
            ][..],
        ),
        (
            PlannedOutcome::Stalled,
            &["OrderCreated", "StockReserved", "PaymentRequested"][..],
        ),
    ];
    for (outcome, event_types) in expected {
        let plan = SagaPlan::with_outcome(SagaKind::OrderChoreography, outcome, &mut rng);
        assert_eq!(plan.saga_id, plan.trace_id);
        let messages = rendered(&plan, &mut rng);
        let mut events = Vec::new();
        for (planned, message) in plan.messages.iter().zip(&messages) {
            let traceparent = header(message, "traceparent");
            assert!(traceparent.starts_with(&format!("00-{}-", plan.trace_id)));
            let text = String::from_utf8_lossy(message.value.as_deref().unwrap_or_default());
            assert!(!text.contains("saga"), "{text}");
            match decode(message, at()) {
                Ok(event) => {
                    assert!(planned.is_event());
                    events.push(event);
                }
                Err(error) => assert!(!planned.is_event() && error.is_ignored(), "{error}"),
            }
        }
        assert_eq!(events.len(), plan.event_count());
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, event_types, "{outcome:?}");
        let order_id = match &plan.messages[0].body {
            Body::CdcInsert { row, .. } => row.aggregate_id.clone(),
            other => panic!("starts with {other:?}"),
        };
        let mut span_ids: Vec<&str> = Vec::new();
        for event in &events {
            assert_eq!(event.saga_id, plan.trace_id, "{}", event.event_type);
            assert_eq!(event.trace_id.as_deref(), Some(plan.trace_id.as_str()));
            assert_eq!(event.business_keys, [order_id.as_str()]);
            assert_eq!(event.payload["order_id"], order_id.as_str());
            assert_eq!(event.occurred_at, at());
            span_ids.push(event.span_id.as_deref().unwrap());
        }
        span_ids.sort_unstable();
        span_ids.dedup();
        assert_eq!(span_ids.len(), events.len(), "a fresh span per message");
        if outcome == PlannedOutcome::Compensated {
            let failed = &events[3];
            assert_eq!(failed.phase, Phase::StepFailed);
            assert!(PAYMENT_FAILURES.contains(&failed.error.as_deref().unwrap()));
            assert_eq!(events[5].phase, Phase::StepCompensated);
        }
    }
}

#[test]
fn outbox_rows_arrive_as_cdc_envelopes_with_and_without_schema() {
    let mut rng = StdRng::seed_from_u64(12);
    let (mut wrapped, mut bare) = (0, 0);
    for _ in 0..20 {
        let plan = SagaPlan::random(SagaKind::OrderChoreography, &mut rng);
        for (planned, message) in plan.messages.iter().zip(rendered(&plan, &mut rng)) {
            let Body::CdcInsert { row, with_schema } = &planned.body else {
                continue;
            };
            assert_eq!(message.topic, SHOP_OUTBOX_CDC_TOPIC);
            assert_eq!(message.key, format!(r#"{{"id":"{}"}}"#, row.id));
            let names: Vec<&str> = message.headers.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["traceparent"]);
            let value = json_value(&message);
            let envelope = if *with_schema {
                wrapped += 1;
                assert_eq!(value["schema"]["name"], "dbserver1.shop.outbox.Envelope");
                &value["payload"]
            } else {
                bare += 1;
                assert!(value.get("schema").is_none());
                &value
            };
            assert_eq!(envelope["op"], "c");
            assert_eq!(envelope["before"], Value::Null);
            assert_eq!(envelope["source"]["table"], "outbox");
            let after = &envelope["after"];
            assert_eq!(after["id"], row.id.as_str());
            assert!(["Order", "Stock"].contains(&after["aggregatetype"].as_str().unwrap()));
            assert_eq!(after["trace_id"], plan.trace_id.as_str());
            assert_eq!(after["created_at"], at().timestamp_micros());
            let payload = after["payload"].as_str().expect("JSONB as a JSON string");
            assert_eq!(serde_json::from_str::<Value>(payload).unwrap(), row.payload);
            let event = decode(&message, at()).unwrap();
            assert_eq!(event.event_id, row.id);
            assert_eq!(event.event_type, row.event_type);
            assert_eq!(event.payload, row.payload);
            assert_eq!(event.source_type.as_deref(), Some(row.aggregate_type));
        }
    }
    assert!(wrapped > 10 && bare > 10, "{wrapped} wrapped, {bare} bare");
}

#[test]
fn relay_deletes_and_tombstones_are_ignored_not_errors() {
    let mut rng = StdRng::seed_from_u64(13);
    let mut seen = 0;
    for _ in 0..10 {
        let plan = SagaPlan::random(SagaKind::OrderChoreography, &mut rng);
        let messages = rendered(&plan, &mut rng);
        for (index, planned) in plan.messages.iter().enumerate() {
            let Body::CdcDelete { row, .. } = &planned.body else {
                continue;
            };
            seen += 1;
            let (insert, delete, tombstone) =
                (&messages[index - 1], &messages[index], &messages[index + 1]);
            assert_eq!(plan.messages[index + 1].body, Body::Tombstone);
            assert_eq!((&delete.key, &tombstone.key), (&insert.key, &insert.key));
            let value = json_value(delete);
            let envelope = value.get("payload").unwrap_or(&value);
            assert_eq!(envelope["op"], "d");
            assert_eq!(envelope["after"], Value::Null);
            assert_eq!(envelope["before"]["id"], row.id.as_str());
            assert_eq!(tombstone.value, None);
            assert_eq!(
                decode(delete, at()).unwrap_err().to_string(),
                "ignored: Debezium delete (op d)"
            );
            let error = decode(tombstone, at()).unwrap_err();
            assert!(error.is_ignored());
            assert_eq!(
                error.to_string(),
                "ignored: Debezium tombstone (null value after a delete)"
            );
        }
    }
    assert!(seen >= 5, "only {seen} deletes");
}

#[test]
fn payment_cloudevents_in_binary_and_structured_mode() {
    let mut rng = StdRng::seed_from_u64(14);
    let (mut binary, mut structured) = (0, 0);
    for _ in 0..30 {
        let plan = SagaPlan::random(SagaKind::OrderChoreography, &mut rng);
        for (planned, message) in plan.messages.iter().zip(rendered(&plan, &mut rng)) {
            let Body::CloudEvent { event, mode } = &planned.body else {
                continue;
            };
            assert_eq!(message.topic, PAYMENT_EVENTS_TOPIC);
            assert_eq!(message.key, event.subject);
            let value = json_value(&message);
            match mode {
                CloudEventMode::Binary => {
                    binary += 1;
                    assert_eq!(header(&message, "ce_specversion"), "1.0");
                    assert_eq!(header(&message, "ce_id"), event.id);
                    assert_eq!(header(&message, "ce_type"), event.event_type);
                    assert_eq!(header(&message, "ce_source"), PAYMENT_SOURCE);
                    assert_eq!(header(&message, "ce_time"), "2025-11-21T10:00:00.123Z");
                    assert!(header(&message, "ce_traceparent").contains(&plan.trace_id));
                    assert_eq!(header(&message, "content-type"), "application/json");
                    assert_eq!(value, event.data);
                }
                CloudEventMode::Structured => {
                    structured += 1;
                    assert!(header(&message, "content-type")
                        .starts_with("application/cloudevents+json"));
                    assert!(header(&message, "traceparent").contains(&plan.trace_id));
                    assert_eq!(value["specversion"], "1.0");
                    assert_eq!(value["type"], event.event_type.as_str());
                    assert_eq!(value["data"], event.data);
                }
            }
            let decoded = decode(&message, at()).unwrap();
            assert_eq!(decoded.event_id, event.id);
            assert_eq!(decoded.event_type, event.event_type);
            assert_eq!(decoded.saga_id, plan.trace_id);
            assert_eq!(decoded.source_type.as_deref(), Some(PAYMENT_SOURCE));
            assert_eq!(decoded.payload, event.data);
        }
    }
    assert!(
        binary > 5 && structured > 5,
        "{binary} binary, {structured} structured"
    );
}

#[test]
fn without_rules_each_outcome_shows_as_soon_as_its_event_is_decoded() {
    // Issue 13: the demo's choreography through the default rules, each
    // message at its planned time: the status after every event.
    use sagascope_domain::SagaProjection;
    use sagascope_model::SagaStatus;
    let mut rng = StdRng::seed_from_u64(15);
    let expected = [
        (
            PlannedOutcome::Completed,
            SagaStatus::Completed,
            "OrderConfirmed",
        ),
        (
            PlannedOutcome::Compensated,
            SagaStatus::Compensated,
            "StockReleased",
        ),
        (
            PlannedOutcome::Stalled,
            SagaStatus::Running,
            "PaymentRequested",
        ),
    ];
    for (outcome, end, last_type) in expected {
        let plan = SagaPlan::with_outcome(SagaKind::OrderChoreography, outcome, &mut rng);
        let mut projection = SagaProjection::new(&plan.trace_id);
        let mut seen = Vec::new();
        for (index, planned) in plan.messages.iter().enumerate() {
            let sent = at() + chrono::Duration::milliseconds(planned.delay_ms as i64);
            let message = plan.render(index, sent, &mut rng);
            let Ok(event) = decode(&message, sent) else {
                continue;
            };
            projection.merge(&event);
            seen.push((event.event_type.clone(), projection.status()));
        }
        assert_eq!(projection.saga_type(), "Order", "{outcome:?}");
        assert_eq!(
            seen.last().unwrap(),
            &(last_type.to_string(), end),
            "{seen:?}"
        );
        if outcome == PlannedOutcome::Compensated {
            let statuses: Vec<SagaStatus> = seen[3..].iter().map(|(_, s)| *s).collect();
            assert_eq!(
                statuses,
                [
                    SagaStatus::Failed,
                    SagaStatus::Compensating,
                    SagaStatus::Compensated
                ],
                "{seen:?}"
            );
            assert!(projection.summary().ended_at.is_some());
        }
        if outcome == PlannedOutcome::Stalled {
            assert_eq!(projection.quiet_status(), Some(SagaStatus::Completed));
        }
    }
}
