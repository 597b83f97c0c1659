//! The catalog service's product events: an entity change stream, not a
//! saga. Each event is its own trace, keyed by product id, on
//! `catalog.products`. The type names avoid the suffixes sagascope reads
//! as saga steps (`…Failed`, `…Released`, `…Completed`, `…Updated`, …), so
//! nothing about them looks like a saga but the fact that they are events.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::ids::{trace_id, uuid};
use crate::message::{Body, PlannedMessage, Traffic};
use crate::topics::PRODUCT_EVENTS_TOPIC;

pub const PRODUCT_EVENT_TYPES: [&str; 3] = [
    "ProductRegistered",
    "ProductStockChanged",
    "ProductPriceChanged",
];

const NAMES: [&str; 5] = [
    "Trail runner 2",
    "Merino beanie",
    "Steel bottle 0.75 l",
    "Rain shell",
    "Wool socks (3 pairs)",
];

/// One product event with a trace of its own.
pub fn product_event(rng: &mut StdRng) -> Traffic {
    let product_id = format!("prod-{:04}", rng.random_range(1..400));
    let event_type = PRODUCT_EVENT_TYPES[rng.random_range(0..PRODUCT_EVENT_TYPES.len())];
    let payload = match event_type {
        "ProductRegistered" => json!({
            "name": NAMES[rng.random_range(0..NAMES.len())],
            "sku": format!("SKU-{}", rng.random_range(10..99)),
            "price_cents": rng.random_range(199..19_999),
            "currency": "EUR",
        }),
        "ProductStockChanged" => json!({
            "warehouse": "ber-1",
            "delta": rng.random_range(-5..40),
            "on_hand": rng.random_range(0..500),
        }),
        _ => {
            let old: u32 = rng.random_range(199..19_999);
            price_change(old, old + rng.random_range(1..500))
        }
    };
    let message = planned(uuid(rng), event_type, &product_id, payload, 0);
    Traffic {
        trace_id: trace_id(rng),
        messages: vec![message],
    }
}

pub(crate) fn price_change(old_cents: u32, new_cents: u32) -> Value {
    json!({"old_price_cents": old_cents, "new_price_cents": new_cents, "currency": "EUR"})
}

/// A product event; `occurred_at` is filled in when rendered.
pub(crate) fn planned(
    id: String,
    event_type: &str,
    product_id: &str,
    payload: Value,
    delay_ms: u64,
) -> PlannedMessage {
    PlannedMessage {
        delay_ms,
        topic: PRODUCT_EVENTS_TOPIC,
        key: product_id.to_string(),
        body: Body::PlainJson(json!({
            "type": event_type,
            "id": id,
            "product_id": product_id,
            "payload": payload,
        })),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use rand::SeedableRng;
    use sagascope_model::Phase;

    use super::*;
    use crate::test_support::{decode, header};

    /// Name endings that sagascope's default rules read as saga steps.
    const STEP_SUFFIXES: [&str; 10] = [
        "Failed",
        "Compensated",
        "Released",
        "Cancelled",
        "Refunded",
        "Reverted",
        "Completed",
        "Succeeded",
        "Acquired",
        "Updated",
    ];

    #[test]
    fn type_names_read_as_plain_events_not_saga_steps() {
        for name in PRODUCT_EVENT_TYPES {
            assert!(!STEP_SUFFIXES.iter().any(|s| name.ends_with(s)), "{name}");
        }
    }

    #[test]
    fn product_events_decode_as_plain_json_with_their_own_trace() {
        let mut rng = StdRng::seed_from_u64(21);
        let at = Utc.timestamp_millis_opt(1_763_719_200_123).unwrap();
        let mut types_seen = Vec::new();
        let mut traces = Vec::new();
        for _ in 0..30 {
            let traffic = product_event(&mut rng);
            assert_eq!(traffic.messages.len(), 1);
            let Body::PlainJson(planned) = &traffic.messages[0].body else {
                panic!("not plain JSON");
            };
            let message = traffic.render(0, at, &mut rng);
            assert_eq!(message.topic, PRODUCT_EVENTS_TOPIC);
            assert_eq!(message.key, planned["product_id"].as_str().unwrap());
            assert!(header(&message, "traceparent").contains(&traffic.trace_id));
            let event = decode(&message, at).unwrap();
            assert_eq!(event.event_type, planned["type"].as_str().unwrap());
            assert_eq!(event.event_id, planned["id"].as_str().unwrap());
            assert_eq!(event.trace_id.as_deref(), Some(traffic.trace_id.as_str()));
            assert_eq!(event.source_id.as_deref(), Some(message.key.as_str()));
            assert_eq!(event.business_keys, [message.key.as_str()]);
            assert_eq!(event.phase, Phase::Event);
            assert_eq!(event.saga_type, None);
            assert_eq!(event.error, None);
            assert_eq!(event.occurred_at, at);
            assert_eq!(event.payload, planned["payload"]);
            types_seen.push(event.event_type);
            traces.push(traffic.trace_id);
        }
        types_seen.sort();
        types_seen.dedup();
        assert_eq!(types_seen.len(), PRODUCT_EVENT_TYPES.len());
        traces.sort();
        traces.dedup();
        assert_eq!(traces.len(), 30, "a fresh trace per product event");
    }
}
