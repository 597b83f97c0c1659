//! Saga scripts: each call plans one saga instance as a list of messages
//! with their delay from the saga's start. Pure (seeded RNG), so tests can
//! produce the same traffic the demo runs. One file per kind of saga.

mod chat_message;
mod orchestrated;
mod order;
mod order_choreography;
mod scan_reward;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::Rng;

use crate::message::{PlannedMessage, RenderedMessage, Traffic};
use crate::render::render;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaKind {
    /// Orchestrated order saga: saga state events.
    Order,
    /// Choreographed scan-reward saga: Debezium outbox EventRouter messages.
    ScanReward,
    /// Orchestrated chat-message saga: saga state events.
    ChatMessage,
    /// Choreographed order saga without a saga id: Debezium CDC of the
    /// shop's outbox table plus the payment service's CloudEvents.
    OrderChoreography,
}

impl SagaKind {
    pub const ALL: [SagaKind; 4] = [
        SagaKind::Order,
        SagaKind::ScanReward,
        SagaKind::ChatMessage,
        SagaKind::OrderChoreography,
    ];

    /// The demo's mix: every kind equally often.
    pub fn random(rng: &mut StdRng) -> SagaKind {
        SagaKind::ALL[rng.random_range(0..SagaKind::ALL.len())]
    }
}

/// How the planned saga ends, so tests can assert the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedOutcome {
    Completed,
    Failed,
    Compensated,
    CompensationFailed,
    TimedOut,
    /// Stops part-way (a service never answers): sagascope marks it stalled
    /// once its type's timeout passes.
    Stalled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SagaPlan {
    pub kind: SagaKind,
    /// The saga id sagascope should derive: the instance id, or the trace id
    /// for the choreographed sagas.
    pub saga_id: String,
    pub trace_id: String,
    pub outcome: PlannedOutcome,
    /// Everything the saga's services publish, including messages that are
    /// no events (see [`SagaPlan::event_count`]).
    pub messages: Vec<PlannedMessage>,
}

impl SagaPlan {
    pub fn random(kind: SagaKind, rng: &mut StdRng) -> SagaPlan {
        match kind {
            SagaKind::Order => order::plan(rng),
            SagaKind::ScanReward => scan_reward::plan(rng),
            SagaKind::ChatMessage => chat_message::plan(rng),
            SagaKind::OrderChoreography => order_choreography::plan(rng),
        }
    }

    /// A saga of this kind that ends the given way (for tests and the
    /// demo's guaranteed variety). Loops forever if the kind never ends
    /// that way.
    pub fn with_outcome(kind: SagaKind, outcome: PlannedOutcome, rng: &mut StdRng) -> SagaPlan {
        loop {
            let plan = SagaPlan::random(kind, rng);
            if plan.outcome == outcome {
                return plan;
            }
        }
    }

    /// How many of the messages sagascope stores as events of this saga
    /// (Debezium deletes and tombstones are not events).
    pub fn event_count(&self) -> usize {
        self.messages.iter().filter(|m| m.is_event()).count()
    }

    /// Renders message `index` as produced at `at`. Every message carries
    /// the saga's trace id in `traceparent` with a fresh span id.
    pub fn render(&self, index: usize, at: DateTime<Utc>, rng: &mut StdRng) -> RenderedMessage {
        render(&self.messages[index], &self.trace_id, index, at, rng)
    }
}

impl From<SagaPlan> for Traffic {
    fn from(plan: SagaPlan) -> Traffic {
        Traffic {
            trace_id: plan.trace_id,
            messages: plan.messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::IMAGE_TOPIC;
    use rand::SeedableRng;

    #[test]
    fn plans_cover_every_outcome_with_ordered_delays() {
        let mut rng = StdRng::seed_from_u64(7);
        for (kind, outcome) in [
            (SagaKind::Order, PlannedOutcome::Completed),
            (SagaKind::Order, PlannedOutcome::Failed),
            (SagaKind::Order, PlannedOutcome::Compensated),
            (SagaKind::Order, PlannedOutcome::TimedOut),
            (SagaKind::ChatMessage, PlannedOutcome::CompensationFailed),
            (SagaKind::ScanReward, PlannedOutcome::Compensated),
            (SagaKind::ScanReward, PlannedOutcome::Completed),
            (SagaKind::OrderChoreography, PlannedOutcome::Completed),
            (SagaKind::OrderChoreography, PlannedOutcome::Compensated),
            (SagaKind::OrderChoreography, PlannedOutcome::Stalled),
        ] {
            let plan = SagaPlan::with_outcome(kind, outcome, &mut rng);
            assert!(plan
                .messages
                .windows(2)
                .all(|w| w[0].delay_ms < w[1].delay_ms));
            assert_eq!(plan.trace_id.len(), 32);
        }
    }

    #[test]
    fn outbox_messages_carry_event_router_headers_and_no_saga_id() {
        let mut rng = StdRng::seed_from_u64(1);
        let plan = SagaPlan::random(SagaKind::ScanReward, &mut rng);
        let rendered = plan.render(0, Utc::now(), &mut rng);
        let names: Vec<&str> = rendered.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "type",
                "trace_id",
                "request_id",
                "traceparent",
                "created_at"
            ]
        );
        assert_eq!(rendered.topic, IMAGE_TOPIC);
        let value = String::from_utf8(rendered.value.unwrap()).unwrap();
        assert!(!value.contains("saga"));
    }
}
