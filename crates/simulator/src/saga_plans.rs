//! Saga scripts: each call plans one saga instance as a list of messages
//! with their delay from the saga's start. Pure (seeded RNG), so tests can
//! produce the same traffic the demo runs.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

pub const SAGA_STATE_TOPIC: &str = "saga.state";
pub const IMAGE_TOPIC: &str = "events.image";
pub const SCAN_TOPIC: &str = "events.scan";
pub const CHARACTER_TOPIC: &str = "events.character";
pub const MY_TOPIC: &str = "events.my";
pub const ALL_TOPICS: [&str; 5] = [
    SAGA_STATE_TOPIC,
    IMAGE_TOPIC,
    SCAN_TOPIC,
    CHARACTER_TOPIC,
    MY_TOPIC,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaKind {
    Order,
    ScanReward,
    ChatMessage,
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
pub enum Body {
    /// A saga state event; `timestamp` is filled in when rendered.
    SagaState(Value),
    /// An outbox payload; the `created_at` header is filled in when rendered.
    Outbox { event_type: String, payload: Value },
    /// Deliberately broken bytes (the simulator's poison messages).
    Raw(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMessage {
    pub delay_ms: u64,
    pub topic: &'static str,
    pub key: String,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SagaPlan {
    pub kind: SagaKind,
    /// The saga id sagascope should derive: the instance id, or the trace id
    /// for the choreographed saga.
    pub saga_id: String,
    pub trace_id: String,
    pub outcome: PlannedOutcome,
    pub messages: Vec<PlannedMessage>,
}

/// A message ready to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    pub topic: &'static str,
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

fn hex_id(rng: &mut StdRng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

const CHAT_LINES: [&str; 6] = [
    "see you at 7?",
    "order #1042 shipped, thanks!",
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)> lol",
    "can you check the payment retry?",
    "👍 works now",
];

impl SagaPlan {
    pub fn random(kind: SagaKind, rng: &mut StdRng) -> SagaPlan {
        match kind {
            SagaKind::Order => order_saga(rng),
            SagaKind::ScanReward => scan_reward_saga(rng),
            SagaKind::ChatMessage => chat_message_saga(rng),
        }
    }

    /// A saga of this kind that ends the given way (for tests and the
    /// demo's guaranteed variety).
    pub fn with_outcome(kind: SagaKind, outcome: PlannedOutcome, rng: &mut StdRng) -> SagaPlan {
        loop {
            let plan = SagaPlan::random(kind, rng);
            if plan.outcome == outcome {
                return plan;
            }
        }
    }

    /// Renders message `index` as produced at `at`. Every message carries
    /// the saga's trace id in `traceparent` with a fresh span id.
    pub fn render(&self, index: usize, at: DateTime<Utc>, rng: &mut StdRng) -> RenderedMessage {
        let message = &self.messages[index];
        let span_id = hex_id(rng, 8);
        let traceparent = format!("00-{}-{span_id}-01", self.trace_id);
        let request_id = format!("req-{}", &self.trace_id[..12]);
        let (value, headers) = match &message.body {
            Body::SagaState(state) => {
                let mut state = state.clone();
                state["timestamp"] =
                    json!(at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
                (
                    state.to_string().into_bytes(),
                    vec![
                        ("traceparent".into(), traceparent),
                        ("request_id".into(), request_id),
                    ],
                )
            }
            Body::Outbox {
                event_type,
                payload,
            } => (
                payload.to_string().into_bytes(),
                vec![
                    (
                        "id".into(),
                        format!("{}-{}-{}", &self.trace_id[..8], hex_id(rng, 4), index),
                    ),
                    ("type".into(), event_type.clone()),
                    ("trace_id".into(), self.trace_id.clone()),
                    ("request_id".into(), request_id),
                    ("traceparent".into(), traceparent),
                    (
                        "created_at".into(),
                        at.to_rfc3339_opts(SecondsFormat::Micros, true),
                    ),
                ],
            ),
            Body::Raw(bytes) => (bytes.clone(), vec![("traceparent".into(), traceparent)]),
        };
        RenderedMessage {
            topic: message.topic,
            key: message.key.clone(),
            value,
            headers,
        }
    }
}

struct Orchestrated {
    saga_type: &'static str,
    /// Seed 004 shape: `saga_id` names the definition and `correlation_id`
    /// the instance. Without a definition the instance id is `saga_id`.
    definition: Option<&'static str>,
    instance: String,
    context: Value,
    clock_ms: u64,
    messages: Vec<PlannedMessage>,
}

impl Orchestrated {
    fn emit(&mut self, rng: &mut StdRng, status: &str, step: Option<&str>, error: Option<&str>) {
        self.clock_ms += rng.random_range(40..400);
        let mut state = json!({
            "saga_type": self.saga_type,
            "status": status,
            "context_data": self.context,
        });
        match self.definition {
            Some(definition) => {
                state["saga_id"] = json!(definition);
                state["correlation_id"] = json!(self.instance);
            }
            None => state["saga_id"] = json!(self.instance),
        }
        if let Some(step) = step {
            state["step"] = json!(step);
        }
        if let Some(error) = error {
            state["error"] = json!(error);
        }
        self.messages.push(PlannedMessage {
            delay_ms: self.clock_ms,
            topic: SAGA_STATE_TOPIC,
            key: self.instance.clone(),
            body: Body::SagaState(state),
        });
    }

    fn step_ok(&mut self, rng: &mut StdRng, step: &str) {
        self.emit(rng, "RUNNING", Some(step), None);
        self.emit(rng, "STEP_COMPLETED", Some(step), None);
    }
}

fn order_saga(rng: &mut StdRng) -> SagaPlan {
    let instance = format!("ord-{}", hex_id(rng, 6));
    let order_id = format!("O-{}", rng.random_range(100_000..999_999));
    let sku = format!("SKU-{}", rng.random_range(10..99));
    let mut saga = Orchestrated {
        saga_type: "order",
        definition: Some("order_fulfillment"),
        instance: instance.clone(),
        context: json!({"order_id": order_id, "customer_id": format!("C-{}", rng.random_range(1000..9999)), "sku": sku, "amount": rng.random_range(5..500)}),
        clock_ms: 0,
        messages: Vec::new(),
    };
    saga.emit(rng, "STARTED", None, None);
    let roll: f64 = rng.random();
    let outcome = if roll < 0.05 {
        saga.emit(rng, "RUNNING", Some("ReserveStock"), None);
        saga.emit(
            rng,
            "STEP_FAILED",
            Some("ReserveStock"),
            Some(&format!("insufficient stock for {sku}")),
        );
        saga.emit(
            rng,
            "FAILED",
            Some("ReserveStock"),
            Some("stock reservation failed; nothing to compensate"),
        );
        PlannedOutcome::Failed
    } else {
        saga.step_ok(rng, "ReserveStock");
        saga.emit(rng, "RUNNING", Some("AuthorizePayment"), None);
        if roll < 0.15 {
            saga.emit(
                rng,
                "STEP_FAILED",
                Some("AuthorizePayment"),
                Some("card declined: insufficient funds"),
            );
            saga.emit(rng, "COMPENSATION_STARTED", None, None);
            saga.emit(rng, "COMPENSATING_STEP", Some("ReleaseStock"), None);
            saga.emit(rng, "STEP_COMPENSATED", Some("ReleaseStock"), None);
            saga.emit(rng, "COMPENSATED", None, None);
            PlannedOutcome::Compensated
        } else if roll < 0.18 {
            // The orchestrator's timeout sweep gives up on the payment reply.
            saga.clock_ms += 3_000;
            saga.emit(
                rng,
                "TIMED_OUT",
                Some("AuthorizePayment"),
                Some("payment service did not reply within 3 s"),
            );
            PlannedOutcome::TimedOut
        } else {
            saga.emit(rng, "STEP_COMPLETED", Some("AuthorizePayment"), None);
            saga.step_ok(rng, "Complete");
            saga.emit(rng, "COMPLETED", None, None);
            PlannedOutcome::Completed
        }
    };
    SagaPlan {
        kind: SagaKind::Order,
        saga_id: instance,
        trace_id: hex_id(rng, 16),
        outcome,
        messages: saga.messages,
    }
}

fn chat_message_saga(rng: &mut StdRng) -> SagaPlan {
    let instance = format!("chat-{}", hex_id(rng, 6));
    let content = CHAT_LINES[rng.random_range(0..CHAT_LINES.len())];
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

fn scan_reward_saga(rng: &mut StdRng) -> SagaPlan {
    let trace_id = hex_id(rng, 16);
    let user_id = format!("u-{}", rng.random_range(1..500));
    let image_id = format!("img-{}", hex_id(rng, 5));
    let scan_id = format!("scan-{}", hex_id(rng, 5));
    let mut clock_ms = 0;
    let mut messages = Vec::new();
    let mut publish =
        |rng: &mut StdRng, topic: &'static str, key: &str, event_type: &str, payload: Value| {
            clock_ms += rng.random_range(60..600);
            messages.push(PlannedMessage {
                delay_ms: clock_ms,
                topic,
                key: key.to_string(),
                body: Body::Outbox {
                    event_type: event_type.to_string(),
                    payload,
                },
            });
        };
    publish(
        rng,
        IMAGE_TOPIC,
        &image_id,
        "ImageRegistered",
        json!({"image_id": image_id, "user_id": user_id, "url": format!("s3://eco2-images/{image_id}.jpg")}),
    );
    publish(
        rng,
        SCAN_TOPIC,
        &scan_id,
        "ScanCompleted",
        json!({"scan_id": scan_id, "image_id": image_id, "user_id": user_id, "category": "plastic", "confidence": 0.93}),
    );
    let roll: f64 = rng.random();
    let outcome = if roll < 0.04 {
        // The character service never answers: nothing more is published.
        PlannedOutcome::Stalled
    } else if roll < 0.14 {
        publish(
            rng,
            CHARACTER_TOPIC,
            &scan_id,
            "CharacterAcquireFailed",
            json!({"scan_id": scan_id, "user_id": user_id, "reason": "character inventory full"}),
        );
        publish(
            rng,
            SCAN_TOPIC,
            &scan_id,
            "ScanRewardCompensated",
            json!({"scan_id": scan_id, "user_id": user_id, "reverted_points": 10}),
        );
        PlannedOutcome::Compensated
    } else {
        let character_id = format!("char-{}", rng.random_range(1..60));
        publish(
            rng,
            CHARACTER_TOPIC,
            &character_id,
            "CharacterAcquired",
            json!({"character_id": character_id, "user_id": user_id, "scan_id": scan_id}),
        );
        let points: u32 = rng.random_range(10..5000);
        publish(
            rng,
            MY_TOPIC,
            &user_id,
            "ProfileUpdated",
            json!({"user_id": user_id, "points": points}),
        );
        PlannedOutcome::Completed
    };
    SagaPlan {
        kind: SagaKind::ScanReward,
        saga_id: trace_id.clone(),
        trace_id,
        outcome,
        messages,
    }
}

/// A message no decoder accepts, to show the ingest-errors page working.
pub fn poison_message(rng: &mut StdRng) -> PlannedMessage {
    let (topic, bytes) = match rng.random_range(0..3) {
        0 => (
            SAGA_STATE_TOPIC,
            b"{\"saga_id\": \"ord-broken\", \"status\": ".to_vec(),
        ),
        1 => (SCAN_TOPIC, vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
        _ => (
            SAGA_STATE_TOPIC,
            b"{\"saga_id\":\"ord-x\",\"status\":\"PAUSED\"}".to_vec(),
        ),
    };
    PlannedMessage {
        delay_ms: 0,
        topic,
        key: format!("poison-{}", hex_id(rng, 3)),
        body: Body::Raw(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(!String::from_utf8(rendered.value).unwrap().contains("saga"));
    }
}
