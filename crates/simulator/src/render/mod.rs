//! How each body looks on the wire. Every message carries the trace id of
//! its saga (or of its standalone traffic) in `traceparent`, with the span
//! id of its producer span, the way an instrumented producer would send it.

mod cloudevents;
mod debezium_cdc;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use serde_json::{json, Value};

use crate::ids::hex_id;
use crate::message::{Body, PlannedMessage, RenderedMessage};
use crate::span_shapes::{span_id, SpanRole};

/// Headers of one message, in the order they are sent.
type Headers = Vec<(String, String)>;

/// Renders `message` (number `index` of its plan) as produced at `at`.
pub fn render(
    message: &PlannedMessage,
    trace_id: &str,
    index: usize,
    at: DateTime<Utc>,
    rng: &mut StdRng,
) -> RenderedMessage {
    // The span id names the producer span the simulated service exports
    // for this message (`spans_of_saga.rs`); the RNG still draws the 8
    // bytes it drew before, so seeded traffic renders the same otherwise.
    let _drawn_before = hex_id(rng, 8);
    let span = span_id(trace_id, index, SpanRole::Producer);
    let traceparent = format!("00-{trace_id}-{span}-01");
    let request_id = format!("req-{}", &trace_id[..12]);
    let traced = |value: Option<Vec<u8>>, traceparent: String| {
        (value, vec![("traceparent".to_string(), traceparent)])
    };
    let (value, headers): (Option<Vec<u8>>, Headers) = match &message.body {
        Body::SagaState(state) => {
            let mut state = state.clone();
            state["timestamp"] = json!(at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
            (
                json_bytes(&state),
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
            json_bytes(payload),
            vec![
                (
                    "id".into(),
                    format!("{}-{}-{}", &trace_id[..8], hex_id(rng, 4), index),
                ),
                ("type".into(), event_type.clone()),
                ("trace_id".into(), trace_id.to_string()),
                ("request_id".into(), request_id),
                ("traceparent".into(), traceparent),
                (
                    "created_at".into(),
                    at.to_rfc3339_opts(SecondsFormat::Micros, true),
                ),
            ],
        ),
        Body::CdcInsert { row, with_schema } => {
            let row = debezium_cdc::CapturedRow {
                row,
                trace_id,
                traceparent: &traceparent,
                created: at,
            };
            let change = debezium_cdc::insert(row, *with_schema, at, rng);
            traced(json_bytes(&change), traceparent)
        }
        Body::CdcDelete {
            row,
            with_schema,
            inserted_ms_ago,
        } => {
            let row = debezium_cdc::CapturedRow {
                row,
                trace_id,
                traceparent: &traceparent,
                created: at - chrono::Duration::milliseconds(*inserted_ms_ago as i64),
            };
            let change = debezium_cdc::delete(row, *with_schema, at, rng);
            traced(json_bytes(&change), traceparent)
        }
        Body::Tombstone => traced(None, traceparent),
        Body::CloudEvent { event, mode } => {
            let (value, headers) = cloudevents::render(event, *mode, &traceparent, at);
            (json_bytes(&value), headers)
        }
        Body::PlainJson(event) => {
            let mut event = event.clone();
            event["occurred_at"] = json!(at.to_rfc3339_opts(SecondsFormat::Micros, true));
            traced(json_bytes(&event), traceparent)
        }
        Body::Raw { value, headers } => {
            let mut headers = headers.clone();
            headers.push(("traceparent".into(), traceparent));
            (Some(value.clone()), headers)
        }
    };
    RenderedMessage {
        topic: message.topic,
        key: message.key.clone(),
        value,
        headers,
    }
}

fn json_bytes(value: &Value) -> Option<Vec<u8>> {
    Some(value.to_string().into_bytes())
}
