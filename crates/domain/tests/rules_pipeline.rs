//! The rules file end to end through `Decoder::decode`: correlation order
//! with JSON pointers, per-topic format overrides, non-saga streams and
//! redaction, on realistic messages.

use chrono::{TimeZone, Utc};
use sagascope_domain::{project_all, Decoder, KafkaCoords, RawMessage, Rules, SagaEvent};
use sagascope_model::Phase;

const RULES: &str = r#"
[[saga]]
type = "order_choreography"
start = ["OrderCreated"]
correlate = ["saga_id", "trace_id", "/order_id"]
[saga.events]
"PaymentRe*" = { step = "Payment", phase = "step_started" }
PaymentAuthorized = { step = "Payment", phase = "step_succeeded" }
"*Failed" = { phase = "step_failed" }
OrderConfirmed = { step = "ConfirmOrder", phase = "saga_completed" }

[[topic]]
match = "legacy.*"
format = "plain_json"

[not_saga]
events = ["Product*"]

[redact]
fields = ["card_number", "/customer/email"]
headers = ["authorization"]
"#;

const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACE_B: &str = "1bf7651916cd43dd8448eb211c80319d";

fn message(topic: &str, offset: i64, value: &str, headers: &[(&str, &str)]) -> RawMessage {
    RawMessage {
        coords: KafkaCoords {
            topic: topic.into(),
            partition: 0,
            offset,
        },
        key: Some(b"ord-1".to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
            .collect(),
        timestamp: Some(
            Utc.timestamp_millis_opt(1_763_700_000_000 + offset)
                .unwrap(),
        ),
    }
}

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-00f067aa0ba902b7-01")
}

fn decode(decoder: &Decoder, msg: &RawMessage) -> SagaEvent {
    decoder
        .decode(msg, Utc.timestamp_millis_opt(1_763_700_001_000).unwrap())
        .unwrap()
}

#[test]
fn pointer_keys_join_an_instance_whose_trace_broke() {
    let decoder = Decoder::new(Rules::parse(RULES).unwrap());
    let created = decode(
        &decoder,
        &message(
            "orders",
            1,
            r#"{"type":"OrderCreated","id":"e1","payload":{"order_id":"ord-1"}}"#,
            &[("traceparent", &traceparent(TRACE_A))],
        ),
    );
    assert_eq!(created.saga_id, TRACE_A);
    assert_eq!(created.saga_type.as_deref(), Some("order_choreography"));
    assert_eq!(created.phase, Phase::SagaStarted);
    assert_eq!(created.correlation_rank, 1);
    assert_eq!(
        created.correlation_keys,
        vec![
            format!("trace:{TRACE_A}"),
            "pointer:order_choreography:/order_id=ord-1".to_string()
        ]
    );

    // The payment service lost the trace context: a new trace, same order.
    let failed = decode(
        &decoder,
        &message(
            "payments",
            2,
            r#"{"type":"PaymentFailed","id":"e2","payload":{"order_id":"ord-1","reason":"card declined","card_number":"4111111111111111"}}"#,
            &[
                ("traceparent", &traceparent(TRACE_B)),
                ("authorization", "Bearer secret"),
            ],
        ),
    );
    assert_eq!(failed.saga_id, TRACE_B, "on its own it is another instance");
    assert_eq!(failed.phase, Phase::StepFailed);
    assert_eq!(failed.step.as_deref(), Some("PaymentFailed"));
    assert_eq!(failed.error.as_deref(), Some("card declined"));
    assert!(
        failed
            .correlation_keys
            .contains(&"pointer:order_choreography:/order_id=ord-1".to_string()),
        "the shared key lets the store merge the two instances"
    );
    assert_eq!(failed.payload["card_number"], "[redacted]");
    let auth = failed
        .headers
        .iter()
        .find(|h| h.key == "authorization")
        .unwrap();
    assert_eq!(auth.value, "[redacted]");

    // No trace at all: the pointer gives the id (rank 2).
    let confirmed = decode(
        &decoder,
        &message(
            "orders",
            3,
            r#"{"type":"OrderConfirmed","id":"e3","payload":{"order_id":"ord-1","customer":{"email":"a@b.c"}}}"#,
            &[],
        ),
    );
    assert_eq!(confirmed.saga_id, "ord-1");
    assert_eq!(confirmed.correlation_rank, 2);
    assert_eq!(confirmed.payload["customer"]["email"], "[redacted]");
    assert_eq!(confirmed.phase, Phase::SagaCompleted);
}

#[test]
fn an_explicit_saga_id_is_never_merged_by_other_keys() {
    let decoder = Decoder::new(Rules::parse(RULES).unwrap());
    let event = decode(
        &decoder,
        &message(
            "orders",
            4,
            r#"{"type":"OrderCreated","id":"e4","saga_id":"saga-9","payload":{"order_id":"ord-1"}}"#,
            &[("traceparent", &traceparent(TRACE_A))],
        ),
    );
    assert_eq!(event.saga_id, "saga-9");
    assert_eq!(event.explicit_saga_id.as_deref(), Some("saga-9"));
    assert_eq!(event.correlation_keys, vec!["saga:saga-9".to_string()]);
}

#[test]
fn default_correlation_registers_only_the_winning_key() {
    let decoder = Decoder::default();
    let event = decode(
        &decoder,
        &message(
            "profile-events",
            5,
            r#"{"type":"ProfileUpdated","aggregateType":"my","aggregateId":"user-7","payload":{}}"#,
            &[("traceparent", &traceparent(TRACE_A))],
        ),
    );
    assert_eq!(event.saga_id, TRACE_A);
    assert_eq!(event.correlation_keys, vec![format!("trace:{TRACE_A}")]);

    let untraced = decode(
        &decoder,
        &message(
            "profile-events",
            6,
            r#"{"type":"ProfileUpdated","aggregateType":"my","aggregateId":"user-7","payload":{}}"#,
            &[],
        ),
    );
    assert_eq!(untraced.saga_id, "user-7");
    assert_eq!(
        untraced.correlation_keys,
        vec!["aggregate:my:user-7".to_string()]
    );
}

#[test]
fn product_streams_are_kept_but_are_not_sagas() {
    let product = br#"{"type":"ProductPriceUpdated","id":"p1","product_id":"prod-1","aggregateType":"product","aggregateId":"prod-1","payload":{"price":10}}"#;
    let msg = message(
        "catalog.products",
        7,
        std::str::from_utf8(product).unwrap(),
        &[("traceparent", &traceparent(TRACE_B))],
    );
    // With the rule: no saga meaning at all, grouped by product.
    let ruled = decode(&Decoder::new(Rules::parse(RULES).unwrap()), &msg);
    assert_eq!(ruled.phase, Phase::Event);
    assert_eq!(ruled.saga_type, None);
    assert_eq!(ruled.saga_id, "prod-1");
    assert!(!project_all(&ruled.saga_id, [&ruled]).is_saga());

    // Without rules a product event named like a step would look like one;
    // plain names (ProductRegistered) never do.
    let plain = message(
        "catalog.products",
        8,
        r#"{"type":"ProductRegistered","id":"p2","aggregateType":"product","aggregateId":"prod-2","payload":{}}"#,
        &[("traceparent", &traceparent(TRACE_B))],
    );
    let event = decode(&Decoder::default(), &plain);
    assert!(!project_all(&event.saga_id, [&event]).is_saga());
}

#[test]
fn a_topic_override_skips_detection() {
    // Looks like a saga state event, but the topic says plain JSON events.
    let value = r#"{"type":"OrderCreated","status":"STARTED","saga_id":"s-1","payload":{"order_id":"ord-5"}}"#;
    let auto = decode(&Decoder::default(), &message("orders", 9, value, &[]));
    assert!(!auto.rule_classified, "auto-detected as a saga state event");
    let forced = decode(
        &Decoder::new(Rules::parse(RULES).unwrap()),
        &message("legacy.orders", 9, value, &[]),
    );
    assert!(forced.rule_classified);
    assert_eq!(forced.event_type, "OrderCreated");
    assert_eq!(forced.phase, Phase::SagaStarted);
    let err = Decoder::new(Rules::parse(RULES).unwrap())
        .decode(
            &message("legacy.orders", 10, r#"{"status":"STARTED"}"#, &[]),
            Utc.timestamp_millis_opt(0).unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "plain json: missing or empty field `type`");
}

#[test]
fn reinterpreting_a_stored_event_under_new_rules_reclassifies_it() {
    let plain = Decoder::default();
    let stored = decode(
        &plain,
        &message(
            "orders",
            11,
            r#"{"type":"PaymentRequested","id":"e11","payload":{"order_id":"ord-3"}}"#,
            &[("traceparent", &traceparent(TRACE_A))],
        ),
    );
    assert_eq!(stored.phase, Phase::Event);
    assert_eq!(stored.saga_type, None);
    let again = Decoder::new(Rules::parse(RULES).unwrap()).interpret(stored);
    assert_eq!(again.saga_type.as_deref(), Some("order_choreography"));
    assert_eq!(again.phase, Phase::StepStarted);
    assert_eq!(again.step.as_deref(), Some("Payment"));
    assert_eq!(again.correlation_keys.len(), 2);
}

#[test]
fn a_not_saga_stream_of_several_event_types_stays_a_stream() {
    let decoder = Decoder::new(Rules::parse(RULES).unwrap());
    let events: Vec<SagaEvent> = ["ProductRegistered", "ProductStockChanged", "ProductPriceChanged"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let value = format!(
                r#"{{"type":"{name}","id":"p{i}","aggregateType":"product","aggregateId":"prod-7","payload":{{}}}}"#
            );
            decode(&decoder, &message("catalog.products", 20 + i as i64, &value, &[]))
        })
        .collect();
    assert!(events
        .iter()
        .all(|e| e.saga_id == "prod-7" && e.step.is_none()));
    assert!(!project_all("prod-7", &events).is_saga());

    // The same hop across event types without the rule is a choreography.
    let plain: Vec<SagaEvent> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.step = Some(e.event_type.clone());
            e
        })
        .collect();
    assert!(project_all("prod-7", &plain).is_saga());
}
