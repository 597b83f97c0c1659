//! Field helpers shared by the decoders.

use chrono::{NaiveDateTime, TimeZone, Utc};
use sagascope_model::Timestamp;
use serde_json::{Map, Value};

use crate::saga_event::RawMessage;
use crate::trace_context::{normalise_trace_id, parse_traceparent};

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON string whose content is itself a JSON object or array is replaced
/// by the parsed content; anything else is returned unchanged.
pub fn unwrap_json_string(value: Value) -> Value {
    if let Value::String(text) = &value {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Ok(inner) = serde_json::from_str::<Value>(text) {
                return inner;
            }
        }
    }
    value
}

/// The first non-empty string (or number, as text) among these fields.
pub fn string_field(object: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match object.get(*name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// RFC 3339, a naive ISO time (Python's `isoformat()` without zone, taken as
/// UTC), or epoch milliseconds/microseconds as a number or digits.
pub fn parse_timestamp(value: &Value) -> Option<Timestamp> {
    match value {
        Value::Number(n) => n.as_i64().and_then(epoch_to_timestamp),
        Value::String(text) => parse_timestamp_text(text),
        _ => None,
    }
}

pub fn parse_timestamp_text(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc));
    }
    text.parse::<i64>().ok().and_then(epoch_to_timestamp)
}

/// Seconds, milliseconds or microseconds since the epoch, told apart by size.
fn epoch_to_timestamp(number: i64) -> Option<Timestamp> {
    let micros = if number < 100_000_000_000 {
        number.checked_mul(1_000_000)?
    } else if number < 100_000_000_000_000 {
        number.checked_mul(1_000)?
    } else {
        number
    };
    Utc.timestamp_micros(micros).single()
}

/// Trace context: a valid `traceparent` header wins, then `trace_id`-style
/// headers, then payload fields. Returns (trace id, span id).
pub fn trace_context(
    message: &RawMessage,
    object: Option<&Map<String, Value>>,
) -> (Option<String>, Option<String>) {
    if let Some(parent) = message
        .header("traceparent")
        .as_deref()
        .and_then(parse_traceparent)
    {
        return (Some(parent.trace_id), Some(parent.span_id));
    }
    let names = ["trace_id", "traceId", "x-trace-id"];
    let from_headers = names.iter().find_map(|n| message.header(n));
    let from_payload = object.and_then(|o| string_field(o, &names));
    let trace_id = from_headers
        .or(from_payload)
        .as_deref()
        .and_then(normalise_trace_id);
    (trace_id, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_in_every_common_spelling() {
        let expected = Utc.with_ymd_and_hms(2025, 11, 21, 10, 0, 0).unwrap();
        for value in [
            json!("2025-11-21T10:00:00Z"),
            json!("2025-11-21T19:00:00+09:00"),
            json!("2025-11-21T10:00:00.000000"),
            json!("2025-11-21 10:00:00"),
            json!(1_763_719_200_000_i64),
            json!(1_763_719_200_i64),
            json!("1763719200000000"),
        ] {
            assert_eq!(parse_timestamp(&value), Some(expected), "{value}");
        }
        assert_eq!(parse_timestamp(&json!("tomorrow")), None);
        assert_eq!(parse_timestamp(&json!(true)), None);
    }

    #[test]
    fn a_json_string_holding_json_is_unwrapped_once() {
        assert_eq!(unwrap_json_string(json!("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(unwrap_json_string(json!("plain")), json!("plain"));
        assert_eq!(unwrap_json_string(json!("{broken")), json!("{broken"));
    }
}
