//! The projection's final state must not depend on arrival order or on
//! duplicated deliveries.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use sagascope_domain::{project_all, KafkaCoords, SagaEvent};
use sagascope_model::{Phase, SagaStatus};

fn event(saga: &str, n: i64, phase: Phase, step: Option<&str>, error: Option<&str>) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga}-{n}"),
        saga_id: saga.to_string(),
        explicit_saga_id: Some(saga.to_string()),
        rule_classified: false,
        correlation_rank: 0,
        correlation_keys: vec![],
        saga_type: Some("order".into()),
        step: step.map(str::to_string),
        phase,
        event_type: phase.as_str().to_ascii_uppercase(),
        trace_id: Some(format!("trace-{saga}")),
        span_id: None,
        request_id: None,
        business_keys: vec![format!("O-{saga}")],
        // Two events share an instant on purpose: ties must still be stable.
        occurred_at: Utc
            .timestamp_millis_opt(1_763_700_000_000 + (n / 2) * 250)
            .unwrap(),
        published_at: None,
        ingested_at: Utc.timestamp_millis_opt(1_763_700_100_000).unwrap(),
        source_type: None,
        source_id: None,
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset: n,
        },
        headers: vec![],
        payload: serde_json::json!({"n": n}),
        error: error.map(str::to_string),
    }
}

fn completed() -> Vec<SagaEvent> {
    vec![
        event("a", 0, Phase::SagaStarted, None, None),
        event("a", 1, Phase::StepStarted, Some("ReserveStock"), None),
        event("a", 2, Phase::StepSucceeded, Some("ReserveStock"), None),
        event("a", 3, Phase::StepStarted, Some("AuthorizePayment"), None),
        event("a", 4, Phase::StepSucceeded, Some("AuthorizePayment"), None),
        event("a", 5, Phase::SagaCompleted, Some("Complete"), None),
    ]
}

fn compensated() -> Vec<SagaEvent> {
    vec![
        event("b", 0, Phase::SagaStarted, None, None),
        event("b", 1, Phase::StepSucceeded, Some("ReserveStock"), None),
        event(
            "b",
            2,
            Phase::StepFailed,
            Some("AuthorizePayment"),
            Some("card declined"),
        ),
        event(
            "b",
            3,
            Phase::CompensationStarted,
            Some("ReleaseStock"),
            None,
        ),
        event("b", 4, Phase::StepCompensated, Some("ReleaseStock"), None),
        event("b", 5, Phase::SagaCompensated, None, None),
    ]
}

fn compensation_failed_then_compensated() -> Vec<SagaEvent> {
    vec![
        event("c", 0, Phase::SagaStarted, None, None),
        event(
            "c",
            1,
            Phase::StepFailed,
            Some("UpdateChatRoomMetadata"),
            Some("pg timeout"),
        ),
        event(
            "c",
            2,
            Phase::CompensationStarted,
            Some("SaveMessageToMongo"),
            None,
        ),
        event(
            "c",
            3,
            Phase::CompensationFailed,
            Some("SaveMessageToMongo"),
            Some("mongo down"),
        ),
        event("c", 4, Phase::SagaCompensated, None, None),
    ]
}

#[test]
fn in_order_outcomes() {
    let a = project_all("a", &completed()).summary();
    assert_eq!(a.status, SagaStatus::Completed);
    assert_eq!(a.duration_ms, Some(500));
    assert_eq!(a.current_step.as_deref(), Some("Complete"));
    assert_eq!(a.event_count, 6);
    assert_eq!(a.trace_ids, vec!["trace-a".to_string()]);

    let b = project_all("b", &compensated()).summary();
    assert_eq!(b.status, SagaStatus::Compensated);
    assert_eq!(b.failed_step.as_deref(), Some("AuthorizePayment"));
    assert_eq!(b.failure_reason.as_deref(), Some("card declined"));

    let c = project_all("c", &compensation_failed_then_compensated()).summary();
    assert_eq!(
        c.status,
        SagaStatus::CompensationFailed,
        "a failed compensation stays visible"
    );
    assert_eq!(c.failed_step.as_deref(), Some("UpdateChatRoomMetadata"));
}

#[test]
fn partial_sagas_are_running_or_compensating() {
    let running = project_all("a", &completed()[..3]).summary();
    assert_eq!(running.status, SagaStatus::Running);
    assert_eq!(running.ended_at, None);
    assert_eq!(running.duration_ms, None);
    let compensating = project_all("b", &compensated()[..4]).summary();
    assert_eq!(compensating.status, SagaStatus::Compensating);
}

#[test]
fn timed_out_is_its_own_outcome() {
    let events = vec![
        event("t", 0, Phase::SagaStarted, None, None),
        event("t", 1, Phase::StepStarted, Some("AuthorizePayment"), None),
        event(
            "t",
            2,
            Phase::SagaTimedOut,
            Some("AuthorizePayment"),
            Some("no reply in 3 s"),
        ),
    ];
    let summary = project_all("t", &events).summary();
    assert_eq!(summary.status, SagaStatus::TimedOut);
    assert_eq!(summary.failure_reason.as_deref(), Some("no reply in 3 s"));
}

fn shuffled_with_duplicates(events: Vec<SagaEvent>) -> impl Strategy<Value = Vec<SagaEvent>> {
    let len = events.len();
    (Just(events), prop::collection::vec(0..len, 0..len * 2)).prop_flat_map(|(events, repeats)| {
        let mut all = events.clone();
        all.extend(repeats.iter().map(|&i| events[i].clone()));
        Just(all).prop_shuffle()
    })
}

proptest! {
    #[test]
    fn completed_saga_is_order_and_duplicate_independent(events in shuffled_with_duplicates(completed())) {
        prop_assert_eq!(project_all("a", &events), project_all("a", &completed()));
    }

    #[test]
    fn compensated_saga_is_order_and_duplicate_independent(events in shuffled_with_duplicates(compensated())) {
        prop_assert_eq!(project_all("b", &events), project_all("b", &compensated()));
    }

    #[test]
    fn compensation_failure_is_order_and_duplicate_independent(events in shuffled_with_duplicates(compensation_failed_then_compensated())) {
        let summary = project_all("c", &events).summary();
        prop_assert_eq!(summary.status, SagaStatus::CompensationFailed);
        prop_assert_eq!(project_all("c", &events), project_all("c", &compensation_failed_then_compensated()));
    }
}
