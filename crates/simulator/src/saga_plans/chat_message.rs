//! The orchestrated chat-message saga: save, update the room, publish to
//! the outbox; a failed publish whose compensation fails as well.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::orchestrated::Orchestrated;
use super::{PlannedOutcome, SagaKind, SagaPlan};
use crate::ids::hex_id;

/// Message texts, including markup the UI must show escaped.
const CHAT_LINES: [&str; 6] = [
    "see you at 7?",
    "order #1042 shipped, thanks!",
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)> lol",
    "can you check the payment retry?",
    "👍 works now",
];

/// The chat line whose saga gets a hostile id as well.
const HOSTILE_LINE: usize = 3;

pub fn plan(rng: &mut StdRng) -> SagaPlan {
    let id = hex_id(rng, 6);
    let line = rng.random_range(0..CHAT_LINES.len());
    let content = CHAT_LINES[line];
    // Ids come from Kafka and end up in page titles, URLs and attributes:
    // some carry markup that closes the <title> (the UI must show it as
    // text; such an id once injected elements into <head>).
    let instance = if line == HOSTILE_LINE {
        format!("chat-</title><h1 id=injected>{id}</h1><title>")
    } else {
        format!("chat-{id}")
    };
    let mut saga = Orchestrated {
        saga_type: "chat_message",
        definition: None,
        instance: instance.clone(),
        context: json!({"room_id": format!("room-{}", rng.random_range(1..40)), "message_id": format!("msg-{}", hex_id(rng, 5)), "sender_id": format!("u-{}", rng.random_range(1..500)), "content": content}),
        clock_ms: 0,
        messages: Vec::new(),
    };
    saga.emit(rng, "STARTED", None, None);
    saga.step_ok(rng, "SaveMessageToMongo");
    saga.step_ok(rng, "UpdateChatRoomMetadata");
    saga.emit(rng, "RUNNING", Some("PublishEventToOutbox"), None);
    let outcome = if rng.random::<f64>() < 0.06 {
        saga.emit(
            rng,
            "STEP_FAILED",
            Some("PublishEventToOutbox"),
            Some("outbox insert failed: could not serialize access"),
        );
        saga.emit(rng, "COMPENSATION_STARTED", None, None);
        saga.emit(
            rng,
            "COMPENSATING_STEP",
            Some("UpdateChatRoomMetadata"),
            None,
        );
        saga.emit(
            rng,
            "STEP_COMPENSATED",
            Some("UpdateChatRoomMetadata"),
            None,
        );
        saga.emit(rng, "COMPENSATING_STEP", Some("SaveMessageToMongo"), None);
        saga.emit(
            rng,
            "COMPENSATION_FAILED",
            Some("SaveMessageToMongo"),
            Some("mongo: write concern timeout while deleting message"),
        );
        // As in seed 004, the framework still reports COMPENSATED afterwards.
        saga.emit(rng, "COMPENSATED", None, None);
        PlannedOutcome::CompensationFailed
    } else {
        saga.emit(rng, "STEP_COMPLETED", Some("PublishEventToOutbox"), None);
        saga.emit(rng, "COMPLETED", None, None);
        PlannedOutcome::Completed
    };
    SagaPlan {
        kind: SagaKind::ChatMessage,
        saga_id: instance,
        trace_id: hex_id(rng, 16),
        outcome,
        messages: saga.messages,
    }
}
