//! The projection's final state must not depend on arrival order or on
//! duplicated deliveries.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use sagascope_domain::{project_all, KafkaCoords, Rules, SagaEvent, MAX_KEPT_IDS};
use sagascope_model::{Phase, SagaStatus};
use std::collections::BTreeSet;

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

/// An event of a choreography known only from the defaults (no saga id,
/// no rules): type, step and phase from its name, as the decoders set them.
fn undeclared(saga: &str, n: i64, name: &str) -> SagaEvent {
    let classification = Rules::default().classify(name);
    let mut e = event(saga, n, classification.phase, None, None);
    e.explicit_saga_id = None;
    e.rule_classified = true;
    e.saga_type = classification.saga_type;
    e.step = classification.step;
    e.event_type = name.to_string();
    e.source_type = Some("order".into());
    if classification.phase.is_failure() {
        e.error = Some("card declined".into());
    }
    e
}

/// Failed, asked to compensate, compensated; two failures and two
/// compensation events share instants with their neighbours.
fn undeclared_compensated() -> Vec<SagaEvent> {
    vec![
        undeclared("u", 0, "OrderCreated"),
        undeclared("u", 1, "StockReserved"),
        undeclared("u", 2, "PaymentDeclined"),
        undeclared("u", 3, "PaymentFailed"),
        undeclared("u", 4, "ReleaseStockRequested"),
        undeclared("u", 5, "RefundPaymentRequested"),
        undeclared("u", 6, "PaymentRefunded"),
        undeclared("u", 7, "StockReleased"),
    ]
}

/// A failure, then a completion of another entity, then the saga type's.
fn undeclared_retried_then_completed() -> Vec<SagaEvent> {
    vec![
        undeclared("v", 0, "OrderCreated"),
        undeclared("v", 1, "PaymentTimedOut"),
        undeclared("v", 2, "PaymentCompleted"),
        undeclared("v", 3, "com.shop.order.OrderConfirmed"),
        undeclared("v", 4, "InvoiceFinished"),
    ]
}

#[test]
fn undeclared_choreographies_end_by_their_event_names() {
    let u = project_all("u", &undeclared_compensated());
    assert_eq!(u.status(), SagaStatus::Compensated);
    assert_eq!(u.quiet_status(), None, "already ended: nothing to infer");
    let summary = u.summary();
    assert_eq!(summary.failed_step.as_deref(), Some("PaymentDeclined"));
    assert!(summary.ended_at.is_some());
    assert_eq!(
        project_all("u", &undeclared_compensated()[..4]).status(),
        SagaStatus::Failed
    );
    assert_eq!(
        project_all("u", &undeclared_compensated()[..6]).status(),
        SagaStatus::Compensating
    );
    let v = project_all("v", &undeclared_retried_then_completed());
    assert_eq!(v.status(), SagaStatus::Completed);
    assert_eq!(
        project_all("v", &undeclared_retried_then_completed()[..3]).status(),
        SagaStatus::Failed
    );
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

/// A long-lived stream: `n` events, each with a trace id and business keys
/// drawn from pools larger than the cap (so some repeat).
fn stream_with_many_ids(ids: &[(u8, u8, u8)]) -> Vec<SagaEvent> {
    ids.iter()
        .enumerate()
        .map(|(n, (trace, key, other))| {
            let mut e = event("s", n as i64, Phase::Event, None, None);
            e.trace_id = Some(format!("trace-{trace:03}"));
            e.business_keys = vec![format!("key-{key:03}"), format!("key-{other:03}")];
            e
        })
        .collect()
}

/// The `MAX_KEPT_IDS` smallest of the values, and whether there were more.
fn smallest(values: impl IntoIterator<Item = String>) -> (BTreeSet<String>, bool) {
    let all: BTreeSet<String> = values.into_iter().collect();
    let more = all.len() > MAX_KEPT_IDS;
    (all.into_iter().take(MAX_KEPT_IDS).collect(), more)
}

proptest! {
    /// Capped id sets are still order- and duplicate-independent, and hold
    /// exactly the smallest ids with the flag set iff there were more.
    #[test]
    fn capped_id_sets_are_order_and_duplicate_independent(
        events in prop::collection::vec((0u8..80, 0u8..60, 0u8..60), 1..120)
            .prop_flat_map(|ids| shuffled_with_duplicates(stream_with_many_ids(&ids)).prop_map(move |shuffled| (ids.clone(), shuffled)))
    ) {
        let (ids, shuffled) = events;
        let in_order = project_all("s", &stream_with_many_ids(&ids));
        let projection = project_all("s", &shuffled);
        prop_assert_eq!(&projection, &in_order);
        let (traces, more_traces) = smallest(ids.iter().map(|(t, _, _)| format!("trace-{t:03}")));
        let (keys, more_keys) = smallest(ids.iter().flat_map(|(_, k, o)| [format!("key-{k:03}"), format!("key-{o:03}")]));
        prop_assert_eq!(&projection.trace_ids, &traces);
        prop_assert_eq!(projection.more_trace_ids, more_traces);
        prop_assert_eq!(&projection.business_keys, &keys);
        prop_assert_eq!(projection.more_business_keys, more_keys);
        let summary = projection.summary();
        prop_assert!(summary.trace_ids.len() <= MAX_KEPT_IDS && summary.business_keys.len() <= MAX_KEPT_IDS);
    }

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

    #[test]
    fn undeclared_compensated_choreography_is_order_and_duplicate_independent(events in shuffled_with_duplicates(undeclared_compensated())) {
        let projection = project_all("u", &events);
        prop_assert_eq!(projection.status(), SagaStatus::Compensated);
        prop_assert_eq!(projection, project_all("u", &undeclared_compensated()));
    }

    #[test]
    fn undeclared_completed_choreography_is_order_and_duplicate_independent(events in shuffled_with_duplicates(undeclared_retried_then_completed())) {
        let projection = project_all("v", &events);
        prop_assert_eq!(projection.status(), SagaStatus::Completed);
        prop_assert_eq!(projection.summary(), project_all("v", &undeclared_retried_then_completed()).summary());
        prop_assert_eq!(projection, project_all("v", &undeclared_retried_then_completed()));
    }

    /// Any subset in any order: the status is the one of the same events
    /// merged in order (no state depends on arrival).
    #[test]
    fn undeclared_partial_choreographies_are_order_independent(
        picked in prop::collection::vec(any::<bool>(), 8),
        seed in any::<u64>(),
    ) {
        let all = undeclared_compensated();
        let chosen: Vec<SagaEvent> = all.iter().zip(&picked).filter(|(_, p)| **p).map(|(e, _)| e.clone()).collect();
        let mut shuffled = chosen.clone();
        // A cheap deterministic shuffle from the seed.
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        prop_assert_eq!(project_all("u", &shuffled), project_all("u", &chosen));
    }
}
