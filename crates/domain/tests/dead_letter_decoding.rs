//! Dead-letter decoding through the public API: whatever arrives on a DLQ
//! topic becomes a `DeadLetter` (never a panic), and key, value and headers
//! come out byte-exact, because a re-drive must produce exactly what failed.
//!
//! Cases per property: `SAGASCOPE_FUZZ_CASES` (default 1000).

use chrono::TimeZone;
use proptest::prelude::*;
use proptest::sample::select;
use sagascope_domain::{
    decode_dead_letter, DeadLetter, DeadLetterFormat, GenericDeadLetterFields, GenericField,
    KafkaCoords, RawMessage,
};

const DEFAULT_CASES: u32 = 1000;

type Headers = Vec<(String, Option<Vec<u8>>)>;

fn config() -> ProptestConfig {
    let cases = std::env::var("SAGASCOPE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const HEADER_NAMES: &[&str] = &[
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
    "kafka_dlt-original-timestamp",
    "kafka_dlt-original-timestamp-type",
    "kafka_dlt-original-consumer-group",
    "kafka_dlt-exception-fqcn",
    "kafka_dlt-exception-cause-fqcn",
    "kafka_dlt-exception-message",
    "kafka_dlt-exception-stacktrace",
    "kafka_dlt-key-exception-fqcn",
    "kafka_dlt-key-exception-message",
    "__connect.errors.topic",
    "__connect.errors.partition",
    "__connect.errors.offset",
    "__connect.errors.connector.name",
    "__connect.errors.exception.class.name",
    "__connect.errors.exception.message",
    "x-original-topic",
    "x-original-offset",
    "x-error",
    "saga_id",
    "saga-id",
    "correlation_id",
    "traceparent",
    "trace_id",
    "traceId",
    "id",
    "ce_id",
    "type",
    "ce_type",
    "x-retry-of",
    "x-retry-count",
];

/// Realistic and hostile header values: numbers as text and as binary,
/// traceparents valid and not, multi-byte and invalid UTF-8, long text.
fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        any::<i32>().prop_map(|n| Some(n.to_be_bytes().to_vec())),
        any::<i64>().prop_map(|n| Some(n.to_be_bytes().to_vec())),
        any::<i64>().prop_map(|n| Some(n.to_string().into_bytes())),
        Just(Some(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()
        )),
        "[ -~]{0,40}".prop_map(|s| Some(s.into_bytes())),
        "\\PC{0,60}".prop_map(|s| Some(s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        (0usize..3000).prop_map(|n| Some("Order 12 'x' é\u{1F600} ".repeat(n).into_bytes())),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(HEADER_NAMES).prop_map(str::to_string),
        1 => select(HEADER_NAMES).prop_map(|n| n.to_ascii_uppercase()),
        1 => "\\PC{0,20}",
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    proptest::collection::vec((header_name(), header_value()), 0..16)
}

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(Some),
        Just(Some(
            br#"{"saga_id":"ord-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","error":{"message":"boom 42"}}"#
                .to_vec()
        )),
        Just(Some(br#""{\"sagaId\":\"ord-2\",\"status\":\"FAILED\"}""#.to_vec())),
        (1usize..400).prop_map(|depth| {
            Some(format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes())
        }),
        "\\PC{0,200}".prop_map(|s| Some(s.into_bytes())),
    ]
}

fn generic() -> GenericDeadLetterFields {
    GenericDeadLetterFields {
        original_topic: Some(GenericField::from_header("x-original-topic")),
        original_offset: Some(GenericField {
            header: Some("x-original-offset".into()),
            pointer: Some("/source/offset".into()),
        }),
        reason: Some(GenericField {
            header: Some("x-error".into()),
            pointer: Some("/error/message".into()),
        }),
        ..GenericDeadLetterFields::default()
    }
}

fn message(key: Option<Vec<u8>>, value: Option<Vec<u8>>, headers: Headers) -> RawMessage {
    RawMessage {
        coords: KafkaCoords {
            topic: "orders.DLT".into(),
            partition: 1,
            offset: 99,
        },
        key,
        value,
        headers,
        timestamp: Some(chrono::Utc.timestamp_millis_opt(1_763_719_260_000).unwrap()),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn anything_decodes_and_keeps_its_bytes(
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        value in value(),
        headers in headers(),
    ) {
        let message = message(key, value, headers);
        let letter = decode_dead_letter(&message, &generic());
        prop_assert_eq!(&letter.key, &message.key);
        prop_assert_eq!(&letter.value, &message.value);
        prop_assert_eq!(&letter.headers, &message.headers);
        prop_assert_eq!(&letter.dlq, &message.coords);
        prop_assert_eq!(letter.failure_group.split('|').count() >= 3, true);
        if let Some(trace_id) = &letter.trace_id {
            prop_assert!(!trace_id.bytes().all(|b| b == b'0'));
        }
        // It survives a JSON round trip, as the store and API will do.
        let json = serde_json::to_string(&letter).unwrap();
        let back: DeadLetter = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, letter);
    }

    #[test]
    fn any_spring_number_header_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        for name in ["kafka_dlt-original-partition", "kafka_dlt-original-offset", "kafka_dlt-original-timestamp"] {
            let message = message(None, None, vec![
                ("kafka_dlt-original-topic".into(), Some(b"orders".to_vec())),
                (name.into(), Some(bytes.clone())),
            ]);
            let letter = decode_dead_letter(&message, &GenericDeadLetterFields::default());
            prop_assert_eq!(letter.format, DeadLetterFormat::Spring);
            let original = letter.original.unwrap();
            prop_assert!(original.partition.is_none_or(|p| p >= 0));
            prop_assert!(original.offset.is_none_or(|o| o >= 0));
        }
    }
}

#[test]
fn a_spring_dead_letter_end_to_end() {
    let message = message(
        Some(b"ORD-1001".to_vec()),
        Some(br#"{"saga_id":"ord-7f3a","order_id":"ORD-1001"}"#.to_vec()),
        vec![
            (
                "kafka_dlt-original-topic".into(),
                Some(b"events.order".to_vec()),
            ),
            (
                "kafka_dlt-original-partition".into(),
                Some(2_i32.to_be_bytes().to_vec()),
            ),
            (
                "kafka_dlt-original-offset".into(),
                Some(41_i64.to_be_bytes().to_vec()),
            ),
            (
                "kafka_dlt-exception-fqcn".into(),
                Some(b"com.shop.OrderNotFoundException".to_vec()),
            ),
            (
                "kafka_dlt-exception-message".into(),
                Some(b"Order 123 not found (id=550e8400-e29b-41d4-a716-446655440000)".to_vec()),
            ),
        ],
    );
    let letter = decode_dead_letter(&message, &GenericDeadLetterFields::default());
    assert_eq!(letter.format.as_str(), "spring");
    assert_eq!(
        letter.failure_group,
        "events.order|com.shop.OrderNotFoundException|Order <n> not found (id=<uuid>)"
    );
    assert_eq!(letter.saga_id.as_deref(), Some("ord-7f3a"));
    let original = letter.original.unwrap();
    assert_eq!((original.partition, original.offset), (Some(2), Some(41)));
}
