//! Fuzzing the decoders: whatever bytes, headers, topics and JSON arrive,
//! `Decoder::decode` returns an event or an error and never panics. One
//! property per input format steers the generator toward that format's
//! shape (real header and field names, realistic and hostile values), plus
//! one for raw bytes and one for deep nesting and huge strings.
//!
//! Cases per property: `SAGASCOPE_FUZZ_CASES` (default 2000), e.g.
//! `SAGASCOPE_FUZZ_CASES=200000 cargo test -p sagascope-domain --release --test decoder_fuzz`.

use chrono::TimeZone;
use proptest::prelude::*;
use proptest::sample::select;
use sagascope_domain::{DecodeError, Decoder, KafkaCoords, RawMessage, Rules};
use serde_json::{Map, Value};

const DEFAULT_CASES: u32 = 2000;

/// Kafka headers as the consumer hands them over.
type Headers = Vec<(String, Option<Vec<u8>>)>;

fn config() -> ProptestConfig {
    let cases = std::env::var("SAGASCOPE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Failures print the minimal input; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const RULES: &str = r#"
    [[saga]]
    type = "order"
    [saga.events]
    OrderPlaced = { step = "PlaceOrder", phase = "saga_started" }
    PaymentFailed = { step = "AuthorizePayment", phase = "step_failed" }
    "com.shop.order.OrderCompleted" = { phase = "saga_completed" }
    "Stock*" = { step = "ReserveStock", phase = "step_succeeded" }
    [[saga]]
    type = "choreography"
    start = ["*Created"]
    correlate = ["saga_id", "trace_id", "/order_id", "/a/0/b", "aggregate_id"]
    [not_saga]
    events = ["Product*"]
    topics = ["catalog.*"]
    [redact]
    fields = ["id", "/payload/card", "reason"]
    headers = ["traceparent"]
"#;

const HEADER_NAMES: &[&str] = &[
    "id",
    "type",
    "eventType",
    "trace_id",
    "traceId",
    "x-trace-id",
    "traceparent",
    "request_id",
    "created_at",
    "aggregatetype",
    "aggregateid",
    "saga_id",
    "content-type",
    "ce_specversion",
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_time",
    "ce_subject",
    "ce_traceparent",
    "ce_sagaid",
    "ce_saga_id",
    "ce_datacontenttype",
    "ce-specversion",
    "ce-id",
    "kafka_dlt-original-topic",
    "ID",
    "TraceParent",
];

const FIELD_NAMES: &[&str] = &[
    "id",
    "type",
    "eventType",
    "event_type",
    "event_id",
    "eventId",
    "payload",
    "data",
    "data_base64",
    "datacontenttype",
    "specversion",
    "source",
    "subject",
    "time",
    "traceparent",
    "tracingspancontext",
    "sagaid",
    "saga_id",
    "sagaId",
    "correlation_id",
    "status",
    "step",
    "error",
    "reason",
    "trace_id",
    "traceId",
    "x-trace-id",
    "request_id",
    "created_at",
    "occurred_at",
    "timestamp",
    "aggregatetype",
    "aggregateid",
    "aggregateType",
    "aggregateId",
    "op",
    "before",
    "after",
    "schema",
    "ts_ms",
    "context_data",
    "order_id",
];

const TEXTS: &[&str] = &[
    "",
    " ",
    "1.0",
    "0.3",
    "c",
    "r",
    "u",
    "d",
    "t",
    "STARTED",
    "STEP_FAILED",
    "COMPENSATED",
    "PAUSED",
    "OrderPlaced",
    "PaymentFailed",
    "StockReleased",
    "com.shop.order.OrderCompleted",
    "com.shop.order.PaymentFailed",
    ".",
    "a..b.",
    "/shop/orders",
    "2025-11-21T10:00:00Z",
    "2025-11-21 10:00:00.123456",
    "2025-13-45T99:99:99Z",
    "1763719200000",
    "1763719200125000",
    "99999999999999999999999",
    "-9223372036854775808",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00000000000000000000000000000000",
    "application/json",
    "application/json; charset=utf-8",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "text/plain",
    "application/octet-stream",
    "eyJ0eXBlIjoiT3JkZXJQbGFjZWQifQ==",
    "eyJ0eXBlIjoiT3JkZXJQbGFjZWQifQ",
    "Zm9v=YmFy",
    "====",
    "{\"type\":\"OrderPlaced\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}",
    "{\"op\":\"c\",\"after\":{\"type\":\"X\"}}",
    "[1,2,3]",
    "{",
    "\u{0}",
    "é漢字🦀",
    "\u{FEFF}{}",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(TEXTS).prop_map(str::to_string),
        3 => ".{0,24}",
        1 => "[0-9a-fA-F-]{0,70}",
    ]
}

/// Mostly short, sometimes huge (up to ~200 KB).
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => text(),
        1 => (0usize..200_000, text()).prop_map(|(n, tail)| {
            let mut s = "{".repeat(n % 7) + &"x".repeat(n);
            s.push_str(&tail);
            s
        }),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(1_763_719_200_125_000_i64),
            Just(1_763_719_200_000_i64),
            Just(i64::MAX),
            Just(i64::MIN),
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any_string().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => select(FIELD_NAMES).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

/// Arbitrary JSON trees whose keys are mostly the real field names.
fn json_tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A realistic value from `choices`, or anything.
fn one_of(choices: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => select(choices).prop_map(|s| Value::String(s.to_string())),
        1 => json_tree(),
    ]
}

/// An object with these fields (each possibly missing), biased values, and
/// a few random extra fields.
fn object_with(
    fields: &'static [(&'static str, &'static [&'static str])],
) -> impl Strategy<Value = Map<String, Value>> {
    let values: Vec<_> = fields
        .iter()
        .map(|(name, choices)| {
            prop::option::weighted(0.85, one_of(choices)).prop_map(move |v| (*name, v))
        })
        .collect();
    (values, prop::collection::vec((key(), json_tree()), 0..3)).prop_map(|(fields, extra)| {
        let mut object: Map<String, Value> = extra.into_iter().collect();
        for (name, value) in fields {
            if let Some(value) = value {
                object.insert(name.to_string(), value);
            }
        }
        object
    })
}

fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        12 => text().prop_map(|t| Some(t.into_bytes())),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Some),
        1 => any_string().prop_map(|t| Some(t.into_bytes())),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(HEADER_NAMES).prop_map(str::to_string),
        1 => ".{0,16}",
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    prop::collection::vec((header_name(), header_value()), 0..8)
}

/// Headers that do not turn the message into a binary-mode CloudEvent, so
/// a format's own property reaches its decoder.
fn non_ce_headers() -> impl Strategy<Value = Headers> {
    headers().prop_map(|mut headers| {
        headers.retain(|(name, _)| {
            !name
                .to_ascii_lowercase()
                .replace('-', "_")
                .starts_with("ce_specversion")
        });
        headers
    })
}

fn topic() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(&[
            "cdc.scan.outbox",
            "dbserver1.public.outbox",
            "events.order",
            "outbox.event.payment",
            "saga.state",
            "orders",
            "payments.DLT",
            "",
        ][..])
        .prop_map(str::to_string),
        1 => ".{0,20}",
    ]
}

/// How a JSON value goes on the wire: as JSON, as a JSON string holding
/// JSON (EventRouter does that), or truncated.
fn encode(value: &Value, how: u8) -> Vec<u8> {
    let text = serde_json::to_string(value).expect("a Value always serialises");
    match how % 6 {
        0 => serde_json::to_vec(&Value::String(text)).expect("a string serialises"),
        1 => {
            let mut bytes = text.into_bytes();
            bytes.truncate(bytes.len() / 2);
            bytes
        }
        _ => text.into_bytes(),
    }
}

fn raw(
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Headers,
) -> RawMessage {
    RawMessage {
        coords: KafkaCoords {
            topic,
            partition: 0,
            offset: 7,
        },
        key,
        value,
        headers,
        timestamp: chrono::Utc.timestamp_millis_opt(1_763_700_000_500).single(),
    }
}

/// Decodes (which must not panic) and checks what every result promises.
fn check(message: &RawMessage) -> Result<(), TestCaseError> {
    let decoder = Decoder::new(Rules::parse(RULES).expect("fuzz rules parse"));
    let ingested_at = chrono::Utc.timestamp_millis_opt(1_763_700_001_000).unwrap();
    let result = decoder.decode(message, ingested_at);
    match &result {
        Ok(event) => {
            prop_assert!(!event.event_id.is_empty(), "empty event id: {event:?}");
            prop_assert!(!event.saga_id.is_empty(), "empty saga id: {event:?}");
            prop_assert!(
                !event.correlation_keys.is_empty(),
                "no correlation key: {event:?}"
            );
            prop_assert!(!event.event_type.is_empty(), "empty event type: {event:?}");
            prop_assert_eq!(&event.coords, &message.coords);
            // The store keeps the payload as JSON text and parses it back.
            let payload = event.payload.to_string();
            prop_assert!(serde_json::from_str::<Value>(&payload).is_ok());
        }
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            if let DecodeError::Ignored { reason } = error {
                prop_assert!(!reason.is_empty());
            }
        }
    }
    // Pure: the same message decodes the same way twice.
    prop_assert_eq!(&decoder.decode(message, ingested_at), &result);
    Ok(())
}

/// A required binary-mode attribute: usually present and realistic.
fn ce_required(choices: &'static [&'static str]) -> BoxedStrategy<Option<Vec<u8>>> {
    prop::option::weighted(
        0.9,
        prop_oneof![
            4 => select(choices).prop_map(|s| s.as_bytes().to_vec()),
            1 => text().prop_map(String::into_bytes),
        ],
    )
    .boxed()
}

const CE_ATTRIBUTES: &[&str] = &[
    "ce_specversion",
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_time",
    "ce_subject",
    "ce_traceparent",
    "ce_sagaid",
    "content-type",
    "traceparent",
    "trace_id",
];

const OUTBOX_ROW: &[(&str, &[&str])] = &[
    ("id", &["6f1c2b8e-5d1a-4f0e-9b7c-2a1d3e4f5a60", "", "1"]),
    ("aggregatetype", &["scan", "order", ""]),
    ("aggregateid", &["scan-881", "O-1001"]),
    (
        "type",
        &["OrderPlaced", "PaymentFailed", "ScanCompleted", ""],
    ),
    (
        "payload",
        &[
            "{\"order_id\":\"O-1\",\"reason\":\"declined\",\"saga_id\":\"ord-1\"}",
            "{}",
            "not json",
            "{",
        ],
    ),
    (
        "trace_id",
        &["4bf92f3577b34da6a3ce929d0e0e4736", "bad id", ""],
    ),
    ("request_id", &["req-1"]),
    (
        "created_at",
        &[
            "2025-11-21T10:00:02.500000Z",
            "1763719200125000",
            "yesterday",
        ],
    ),
    (
        "tracingspancontext",
        &[
            "#\ntraceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",
            "traceparent=",
        ],
    ),
];

const CDC_ENVELOPE: &[(&str, &[&str])] = &[
    ("op", &["c", "r", "u", "d", "t", "x", ""]),
    ("ts_ms", &["1763719200410"]),
];

const CE_STRUCTURED: &[(&str, &[&str])] = &[
    ("specversion", &["1.0", "0.3", ""]),
    ("id", &["evt-1", ""]),
    (
        "type",
        &["com.shop.order.PaymentFailed", "OrderPlaced", "."],
    ),
    ("source", &["/shop/orders"]),
    ("time", &["2025-11-21T10:00:00Z", "not a time"]),
    ("subject", &["O-1001"]),
    (
        "traceparent",
        &[
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-zz",
        ],
    ),
    ("sagaid", &["ord-1"]),
    (
        "datacontenttype",
        &["application/json", "text/plain", "application/octet-stream"],
    ),
    (
        "data_base64",
        &[
            "eyJ0eXBlIjoiT3JkZXJQbGFjZWQifQ==",
            "//79/A==",
            "%%%",
            "Zm9v=YmFy",
        ],
    ),
];

const SAGA_STATE: &[(&str, &[&str])] = &[
    ("saga_id", &["order_fulfillment", "chat-1", ""]),
    ("correlation_id", &["ord-7f3a"]),
    (
        "status",
        &[
            "STARTED",
            "STEP_FAILED",
            "compensation_failed",
            "PAUSED",
            "",
        ],
    ),
    ("failed_step", &["AuthorizePayment"]),
    ("timestamp", &["2025-11-21T10:00:01.250000", "1763719200"]),
    (
        "traceparent",
        &["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ),
];

const PLAIN_EVENT: &[(&str, &[&str])] = &[
    ("type", &["OrderPlaced", "order.shipped", "", "."]),
    ("eventType", &["PaymentFailed"]),
    ("id", &["evt-1", ""]),
    ("traceId", &["0af7651916cd43dd8448eb211c80319c", "nope"]),
    ("occurredAt", &["2025-11-21T10:00:04Z", "-1"]),
    ("aggregateId", &["SKU-9"]),
];

proptest! {
    #![proptest_config(config())]

    /// Any bytes (or none), any headers, any topic.
    #[test]
    fn arbitrary_bytes_never_panic(
        topic in topic(),
        key in prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
        value in prop::option::weighted(0.9, prop::collection::vec(any::<u8>(), 0..256)),
        headers in headers(),
    ) {
        check(&raw(topic, key, value, headers))?;
    }

    /// Arbitrary JSON trees with arbitrary headers.
    #[test]
    fn arbitrary_json_never_panics(
        topic in topic(),
        tree in json_tree(),
        how in any::<u8>(),
        headers in headers(),
    ) {
        check(&raw(topic, None, Some(encode(&tree, how)), headers))?;
    }

    /// CloudEvents binary mode: `ce_*` headers with realistic and hostile
    /// values; the value is any data.
    #[test]
    fn cloudevents_binary_never_panics(
        required in [
            ce_required(&["1.0"]),
            ce_required(&["evt-1", "9c1e7d02-3b7a-4f4e-8a7e-0d6c1f2b3a4d"]),
            ce_required(&["com.shop.order.PaymentFailed", "OrderPlaced", "com.shop.order.OrderCompleted"]),
            ce_required(&["/shop/orders", "urn:shop:payments"]),
        ],
        attributes in prop::collection::vec((select(CE_ATTRIBUTES), header_value()), 0..6),
        value in prop_oneof![
            json_tree().prop_map(|t| Some(encode(&t, 2))),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        ],
        headers in headers(),
    ) {
        let mut all: Headers = ["ce_specversion", "ce_id", "ce_type", "ce_source"]
            .iter()
            .zip(required)
            .filter_map(|(name, value)| value.map(|v| (name.to_string(), Some(v))))
            .collect();
        if all.is_empty() {
            all.push(("ce_specversion".into(), Some(b"1.0".to_vec())));
        }
        all.extend(attributes.into_iter().map(|(k, v)| (k.to_string(), v)));
        all.extend(headers);
        check(&raw("orders".into(), None, value, all))?;
    }

    /// CloudEvents structured mode, by content type or by shape.
    #[test]
    fn cloudevents_structured_never_panics(
        object in object_with(CE_STRUCTURED),
        data in prop::option::of(json_tree()),
        content_type in prop::option::of(select(&["application/cloudevents+json", "application/cloudevents+json; charset=utf-8", "APPLICATION/CLOUDEVENTS+JSON"][..])),
        how in any::<u8>(),
    ) {
        let mut object = object;
        if let Some(data) = data {
            object.insert("data".into(), data);
        }
        let headers = content_type
            .map(|c| vec![("content-type".to_string(), Some(c.as_bytes().to_vec()))])
            .unwrap_or_default();
        check(&raw("orders".into(), None, Some(encode(&Value::Object(object), how)), headers))?;
    }

    /// Debezium CDC envelopes, with and without the schema wrapper.
    #[test]
    fn debezium_cdc_never_panics(
        envelope in object_with(CDC_ENVELOPE),
        row in prop_oneof![4 => object_with(OUTBOX_ROW).prop_map(Value::Object), 1 => json_tree()],
        before in prop::option::of(json_tree()),
        source in prop::option::of(json_tree()),
        wrapped in any::<bool>(),
        how in any::<u8>(),
        topic in select(&["cdc.scan.outbox", "db1.public.outbox", "orders"][..]),
        headers in non_ce_headers(),
    ) {
        let mut envelope = envelope;
        envelope.insert("after".into(), row);
        if let Some(before) = before {
            envelope.insert("before".into(), before);
        }
        if let Some(source) = source {
            envelope.insert("source".into(), source);
        }
        let value = if wrapped {
            serde_json::json!({"schema": {"type": "struct"}, "payload": envelope})
        } else {
            Value::Object(envelope)
        };
        check(&raw(topic.to_string(), None, Some(encode(&value, how)), headers))?;
    }

    /// Debezium outbox EventRouter: id + type headers, any payload.
    #[test]
    fn debezium_outbox_never_panics(
        id in header_value(),
        event_type in prop_oneof![Just(Some(b"PaymentFailed".to_vec())), header_value()],
        payload in prop_oneof![object_with(PLAIN_EVENT).prop_map(Value::Object), json_tree()],
        how in any::<u8>(),
        topic in select(&["events.order", "outbox.event.x", "orders"][..]),
        headers in non_ce_headers(),
    ) {
        let mut all = vec![("id".to_string(), id), ("type".to_string(), event_type)];
        all.extend(headers);
        check(&raw(topic.to_string(), Some(b"O-1".to_vec()), Some(encode(&payload, how)), all))?;
    }

    /// Saga state events.
    #[test]
    fn saga_state_never_panics(
        object in object_with(SAGA_STATE),
        context in prop::option::of(json_tree()),
        how in any::<u8>(),
        headers in non_ce_headers(),
    ) {
        let mut object = object;
        if let Some(context) = context {
            object.insert("context_data".into(), context);
        }
        check(&raw("saga.state".into(), Some(b"ord-7f3a".to_vec()), Some(encode(&Value::Object(object), how)), headers))?;
    }

    /// Plain JSON domain events.
    #[test]
    fn plain_json_never_panics(
        object in object_with(PLAIN_EVENT),
        body in prop::option::of((select(&["payload", "data"][..]), json_tree())),
        how in any::<u8>(),
        headers in non_ce_headers(),
    ) {
        let mut object = object;
        if let Some((name, body)) = body {
            object.insert(name.into(), body);
        }
        check(&raw("misc".into(), None, Some(encode(&Value::Object(object), how)), headers))?;
    }

    /// Deep nesting (beyond serde_json's recursion limit of 128 too) in
    /// every place a decoder looks, and in raw text.
    #[test]
    fn deep_nesting_never_panics(
        depth in 0usize..=220,
        place in 0u8..6,
        array in any::<bool>(),
        core in leaf(),
    ) {
        let mut nested = core;
        for _ in 0..depth {
            nested = if array {
                Value::Array(vec![nested])
            } else {
                Value::Object(Map::from_iter([("payload".to_string(), nested)]))
            };
        }
        let (topic, value, headers): (&str, Value, Headers) = match place {
            0 => ("cdc.scan.outbox", serde_json::json!({"op": "c", "after": {"id": "e", "type": "OrderPlaced", "payload": nested}}), vec![]),
            1 => ("orders", serde_json::json!({"specversion": "1.0", "id": "e", "type": "t", "source": "/s", "data": nested}), vec![]),
            2 => ("orders", nested, vec![
                ("ce_specversion".into(), Some(b"1.0".to_vec())),
                ("ce_id".into(), Some(b"e".to_vec())),
                ("ce_type".into(), Some(b"t".to_vec())),
                ("ce_source".into(), Some(b"/s".to_vec())),
            ]),
            3 => ("events.order", nested, vec![("id".into(), Some(b"e".to_vec())), ("type".into(), Some(b"OrderPlaced".to_vec()))]),
            4 => ("saga.state", serde_json::json!({"saga_id": "s", "status": "STARTED", "context_data": nested}), vec![]),
            _ => ("misc", serde_json::json!({"type": "OrderPlaced", "data": nested}), vec![]),
        };
        let bytes = serde_json::to_vec(&value).expect("serialises");
        check(&raw(topic.into(), None, Some(bytes), headers))?;
        // The same depth as raw text, with no closing brackets.
        let open = if array { "[" } else { "{\"payload\":" };
        check(&raw(topic.into(), None, Some(open.repeat(depth * 20).into_bytes()), vec![]))?;
    }
}
