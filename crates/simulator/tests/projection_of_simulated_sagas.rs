//! The permutation property over the simulator's sagas: every kind and
//! outcome, rendered in its real wire format (saga state events, Debezium
//! outbox and CDC, CloudEvents), decoded with the demo rules, then projected
//! in a random order with random redeliveries, must reach exactly the state
//! of the in-order projection, with the status its plan promises.

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sagascope_domain::{project_all, Decoder, KafkaCoords, RawMessage, Rules, SagaEvent};
use sagascope_model::SagaStatus;
use sagascope_simulator::{PlannedOutcome, SagaKind, SagaPlan, DEMO_RULES};

fn cases() -> u32 {
    std::env::var("SAGASCOPE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

/// The plan's messages as decoded events (deletes and tombstones of the
/// outbox relay are ignored, as the ingest does).
fn decoded(plan: &SagaPlan, rng: &mut StdRng) -> Vec<SagaEvent> {
    let decoder = Decoder::new(Rules::parse(DEMO_RULES).expect("demo rules parse"));
    let base = Utc.timestamp_millis_opt(1_763_700_000_000).unwrap();
    (0..plan.messages.len())
        .filter_map(|i| {
            let at = base + Duration::milliseconds(plan.messages[i].delay_ms as i64);
            let rendered = plan.render(i, at, rng);
            let raw = RawMessage {
                coords: KafkaCoords {
                    topic: rendered.topic.to_string(),
                    partition: 0,
                    offset: i as i64,
                },
                key: Some(rendered.key.clone().into_bytes()),
                value: rendered.value.clone(),
                headers: rendered
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone().into_bytes())))
                    .collect(),
                timestamp: Some(at + Duration::milliseconds(3)),
            };
            match decoder.decode(&raw, at + Duration::milliseconds(40)) {
                Ok(event) => Some(event),
                Err(e) if e.is_ignored() => None,
                Err(e) => panic!("{:?} message {i} does not decode: {e}", plan.kind),
            }
        })
        .collect()
}

fn expected_status(outcome: PlannedOutcome) -> SagaStatus {
    match outcome {
        PlannedOutcome::Completed => SagaStatus::Completed,
        PlannedOutcome::Failed => SagaStatus::Failed,
        PlannedOutcome::Compensated => SagaStatus::Compensated,
        PlannedOutcome::CompensationFailed => SagaStatus::CompensationFailed,
        PlannedOutcome::TimedOut => SagaStatus::TimedOut,
        // Stalled only once the sweep runs; the projection says running.
        PlannedOutcome::Stalled => SagaStatus::Running,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn simulated_sagas_project_the_same_in_any_order(kind in 0..SagaKind::ALL.len(), seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let plan = SagaPlan::random(SagaKind::ALL[kind], &mut rng);
        let events = decoded(&plan, &mut rng);
        prop_assert_eq!(events.len(), plan.event_count());
        prop_assert!(events.iter().all(|e| e.saga_id == plan.saga_id), "one instance: {:?}", plan.kind);

        let in_order = project_all(&plan.saga_id, &events);
        prop_assert_eq!(in_order.status(), expected_status(plan.outcome), "{:?} {:?}", plan.kind, plan.outcome);
        prop_assert!(in_order.is_saga());

        // Shuffled, with some events delivered two or three times.
        let mut arrivals: Vec<&SagaEvent> = events.iter().collect();
        for _ in 0..rng.random_range(0..=events.len()) {
            arrivals.push(&events[rng.random_range(0..events.len())]);
        }
        arrivals.shuffle(&mut rng);
        let shuffled = project_all(&plan.saga_id, arrivals);
        prop_assert_eq!(shuffled.summary(), in_order.summary());
        prop_assert_eq!(shuffled, in_order);
    }
}
