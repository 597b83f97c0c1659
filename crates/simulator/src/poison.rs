//! Bad traffic on purpose, so the demo's ingest-errors page has something
//! to list: each kind is a mistake real producers make, on a topic where it
//! would plausibly happen.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use crate::ids::{hex_id, trace_id, uuid};
use crate::message::{Body, PlannedMessage, Traffic};
use crate::product_events::{planned, price_change};
use crate::topics::{PAYMENT_EVENTS_TOPIC, PRODUCT_EVENTS_TOPIC, SAGA_STATE_TOPIC, SCAN_TOPIC};

/// Nesting depth of [`PoisonKind::DeeplyNested`]: far beyond any JSON
/// parser's recursion limit.
pub const POISON_NESTING_DEPTH: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonKind {
    /// A saga state event cut off mid-value (a producer killed mid-write).
    TruncatedJson,
    /// Confluent Avro bytes (magic byte, schema id) on a JSON topic.
    InvalidUtf8,
    /// Valid JSON in no known format (`{"hello":1}`, a connectivity probe).
    UnknownFormat,
    /// A saga state event whose status no framework uses.
    UnknownSagaStatus,
    /// JSON nested [`POISON_NESTING_DEPTH`] levels deep.
    DeeplyNested,
    /// A batch of product events sent as one JSON array.
    JsonArray,
    /// A binary-mode CloudEvent without `ce_type`.
    CloudEventWithoutType,
    /// A product event re-sent with its id but a different body (a retry
    /// after the payload was edited): both decode, the store records the
    /// second as a conflict.
    DuplicateEventId,
}

impl PoisonKind {
    pub const ALL: [PoisonKind; 8] = [
        PoisonKind::TruncatedJson,
        PoisonKind::InvalidUtf8,
        PoisonKind::UnknownFormat,
        PoisonKind::UnknownSagaStatus,
        PoisonKind::DeeplyNested,
        PoisonKind::JsonArray,
        PoisonKind::CloudEventWithoutType,
        PoisonKind::DuplicateEventId,
    ];

    pub fn random(rng: &mut StdRng) -> PoisonKind {
        PoisonKind::ALL[rng.random_range(0..PoisonKind::ALL.len())]
    }

    /// The messages of this kind of bad traffic, with a trace of their own.
    pub fn plan(self, rng: &mut StdRng) -> Traffic {
        let key = format!("poison-{}", hex_id(rng, 3));
        let messages = match self {
            PoisonKind::TruncatedJson => raw(
                SAGA_STATE_TOPIC,
                key,
                b"{\"saga_id\": \"ord-broken\", \"status\": ",
                &[],
            ),
            PoisonKind::InvalidUtf8 => raw(
                SCAN_TOPIC,
                key,
                &[0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xde, 0xad, 0xbe, 0xef],
                &[],
            ),
            PoisonKind::UnknownFormat => raw(PAYMENT_EVENTS_TOPIC, key, b"{\"hello\":1}", &[]),
            PoisonKind::UnknownSagaStatus => raw(
                SAGA_STATE_TOPIC,
                key,
                b"{\"saga_id\":\"ord-x\",\"saga_type\":\"order\",\"status\":\"PAUSED\"}",
                &[],
            ),
            PoisonKind::DeeplyNested => {
                let mut value = "[".repeat(POISON_NESTING_DEPTH);
                value.push_str(&"]".repeat(POISON_NESTING_DEPTH));
                raw(PRODUCT_EVENTS_TOPIC, key, value.as_bytes(), &[])
            }
            PoisonKind::JsonArray => {
                let batch = json!([
                    {"type": "ProductStockChanged", "id": uuid(rng), "product_id": "prod-0007", "payload": {"delta": 3}},
                    {"type": "ProductStockChanged", "id": uuid(rng), "product_id": "prod-0008", "payload": {"delta": -1}},
                ]);
                raw(PRODUCT_EVENTS_TOPIC, key, batch.to_string().as_bytes(), &[])
            }
            PoisonKind::CloudEventWithoutType => {
                let id = uuid(rng);
                let headers = [
                    ("ce_specversion", "1.0"),
                    ("ce_id", id.as_str()),
                    ("ce_source", "/shop/payment-service"),
                    ("content-type", "application/json"),
                ];
                let data = br#"{"order_id":"ord-000000","amount_cents":1999}"#;
                raw(PAYMENT_EVENTS_TOPIC, key, data, &headers)
            }
            PoisonKind::DuplicateEventId => duplicate_event_id(rng),
        };
        Traffic {
            trace_id: trace_id(rng),
            messages,
        }
    }
}

/// One message of broken bytes with these headers (besides `traceparent`).
fn raw(
    topic: &'static str,
    key: String,
    value: &[u8],
    headers: &[(&str, &str)],
) -> Vec<PlannedMessage> {
    vec![PlannedMessage {
        delay_ms: 0,
        topic,
        key,
        body: Body::Raw {
            value: value.to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    }]
}

/// A price change, then the same event id again with another price.
fn duplicate_event_id(rng: &mut StdRng) -> Vec<PlannedMessage> {
    let id = uuid(rng);
    let product_id = format!("prod-{:04}", rng.random_range(1..400));
    let old: u32 = rng.random_range(199..19_999);
    let first = price_change(old, old + 100);
    let resent = price_change(old, old + 250);
    vec![
        planned(id.clone(), "ProductPriceChanged", &product_id, first, 0),
        planned(
            id,
            "ProductPriceChanged",
            &product_id,
            resent,
            rng.random_range(50..300),
        ),
    ]
}

/// A random kind of bad traffic (for the demo).
pub fn poison(rng: &mut StdRng) -> Traffic {
    PoisonKind::random(rng).plan(rng)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use rand::SeedableRng;
    use sagascope_domain::DecodeError;

    use super::*;
    use crate::test_support::decode;

    #[test]
    fn every_kind_of_poison_fails_to_decode_the_way_it_should() {
        let mut rng = StdRng::seed_from_u64(31);
        let at = Utc.timestamp_millis_opt(1_763_719_200_123).unwrap();
        for kind in PoisonKind::ALL {
            let traffic = kind.plan(&mut rng);
            let messages: Vec<_> = (0..traffic.messages.len())
                .map(|index| traffic.render(index, at, &mut rng))
                .collect();
            let results: Vec<_> = messages.iter().map(|m| decode(m, at)).collect();
            match kind {
                PoisonKind::DuplicateEventId => {
                    let [first, resent] = &results[..] else {
                        panic!("{kind:?}: {} messages", results.len());
                    };
                    let (first, resent) = (first.as_ref().unwrap(), resent.as_ref().unwrap());
                    assert_eq!(first.event_id, resent.event_id);
                    assert_eq!(first.event_type, "ProductPriceChanged");
                    assert_ne!(first.payload, resent.payload);
                    assert_eq!(messages[0].key, messages[1].key);
                    assert!(traffic.messages[0].delay_ms < traffic.messages[1].delay_ms);
                    continue;
                }
                _ => assert_eq!(results.len(), 1, "{kind:?}"),
            }
            let error = results[0].clone().unwrap_err();
            assert!(!error.is_ignored(), "{kind:?}");
            let topic = messages[0].topic;
            match kind {
                PoisonKind::TruncatedJson => {
                    assert_eq!(topic, SAGA_STATE_TOPIC);
                    assert!(
                        matches!(&error, DecodeError::InvalidJson(m) if m.starts_with("EOF while parsing")),
                        "{error}"
                    );
                }
                PoisonKind::InvalidUtf8 => {
                    assert_eq!((topic, error), (SCAN_TOPIC, DecodeError::InvalidUtf8(5)));
                }
                PoisonKind::UnknownFormat => {
                    assert_eq!(
                        (topic, error),
                        (PAYMENT_EVENTS_TOPIC, DecodeError::UnknownFormat)
                    );
                }
                PoisonKind::UnknownSagaStatus => assert_eq!(
                    (topic, error),
                    (
                        SAGA_STATE_TOPIC,
                        DecodeError::UnknownStatus("PAUSED".into())
                    )
                ),
                PoisonKind::DeeplyNested => {
                    assert_eq!(topic, PRODUCT_EVENTS_TOPIC);
                    assert_eq!(
                        messages[0].value.as_ref().map(Vec::len),
                        Some(2 * POISON_NESTING_DEPTH)
                    );
                    assert!(
                        matches!(&error, DecodeError::InvalidJson(m) if m.starts_with("recursion limit exceeded")),
                        "{error}"
                    );
                }
                PoisonKind::JsonArray => assert_eq!(
                    (topic, error),
                    (PRODUCT_EVENTS_TOPIC, DecodeError::NotAnObject("array"))
                ),
                PoisonKind::CloudEventWithoutType => assert_eq!(
                    (topic, error),
                    (
                        PAYMENT_EVENTS_TOPIC,
                        DecodeError::MissingField {
                            format: "cloudevents binary",
                            field: "ce_type"
                        }
                    )
                ),
                PoisonKind::DuplicateEventId => unreachable!(),
            }
        }
    }

    #[test]
    fn the_demo_mix_sends_every_kind() {
        let mut rng = StdRng::seed_from_u64(32);
        let mut kinds: Vec<_> = (0..200).map(|_| PoisonKind::random(&mut rng)).collect();
        kinds.dedup();
        for kind in PoisonKind::ALL {
            assert!(kinds.contains(&kind), "{kind:?}");
        }
    }
}
