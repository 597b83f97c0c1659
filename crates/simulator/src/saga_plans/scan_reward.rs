//! The choreographed scan-reward saga (seed 003): each service publishes
//! through its outbox and Debezium's EventRouter to `events.<aggregate>`;
//! no saga id, the trace id correlates.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{PlannedOutcome, SagaKind, SagaPlan};
use crate::ids::hex_id;
use crate::message::{Body, PlannedMessage};
use crate::topics::{CHARACTER_TOPIC, IMAGE_TOPIC, MY_TOPIC, SCAN_TOPIC};

pub fn plan(rng: &mut StdRng) -> SagaPlan {
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
