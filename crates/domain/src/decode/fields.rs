//! Field helpers shared by the decoders.

use chrono::{NaiveDateTime, TimeZone, Utc};
use sagascope_model::{Header, Timestamp};
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

/// `topic/partition/offset`: the event id of last resort.
pub fn coords_id(message: &RawMessage) -> String {
    let coords = &message.coords;
    format!("{}/{}/{}", coords.topic, coords.partition, coords.offset)
}

/// At most `max` characters of `text`, with `…` when cut. Keeps error texts
/// and diagnostic headers short whatever the input.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Header and field names that carry a plain trace id, in priority order.
pub const TRACE_ID_NAMES: [&str; 3] = ["trace_id", "traceId", "x-trace-id"];

/// Header added to an event for every trace-context candidate that was
/// present but malformed, so the refusal is visible on the timeline.
pub const REJECTED_TRACE_HEADER: &str = "sagascope.rejected_trace_context";

/// The trace context of one message, and the malformed candidates that were
/// refused on the way (they are never used for correlation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// One entry per refused candidate: where it came from and its value.
    pub rejected: Vec<String>,
}

impl TraceContext {
    /// Appends one [`REJECTED_TRACE_HEADER`] header per refused candidate.
    pub fn report_rejected(&self, headers: &mut Vec<Header>) {
        headers.extend(self.rejected.iter().map(|reason| Header {
            key: REJECTED_TRACE_HEADER.to_string(),
            value: reason.clone(),
        }));
    }
}

/// Where trace context may come from, in priority order: every W3C
/// `traceparent` candidate before every plain trace id candidate.
#[derive(Debug, Default)]
pub struct TraceCandidates {
    traceparents: Vec<(String, String)>,
    trace_ids: Vec<(String, String)>,
}

impl TraceCandidates {
    pub fn new() -> TraceCandidates {
        TraceCandidates::default()
    }

    /// A `traceparent`-formatted candidate; `origin` names it in reports.
    pub fn traceparent(mut self, origin: &str, value: Option<String>) -> TraceCandidates {
        if let Some(value) = value {
            self.traceparents.push((origin.to_string(), value));
        }
        self
    }

    /// A plain trace id candidate.
    pub fn trace_id(mut self, origin: &str, value: Option<String>) -> TraceCandidates {
        if let Some(value) = value {
            self.trace_ids.push((origin.to_string(), value));
        }
        self
    }

    /// The `trace_id`, `traceId` and `x-trace-id` headers.
    pub fn trace_id_headers(self, message: &RawMessage) -> TraceCandidates {
        TRACE_ID_NAMES.iter().fold(self, |candidates, name| {
            candidates.trace_id(&format!("{name} header"), message.header(name))
        })
    }

    /// The `trace_id`, `traceId` and `x-trace-id` fields of a JSON object;
    /// `what` names the object in reports (e.g. "payload").
    pub fn trace_id_fields(
        self,
        what: &str,
        object: Option<&Map<String, Value>>,
    ) -> TraceCandidates {
        let Some(object) = object else { return self };
        TRACE_ID_NAMES.iter().fold(self, |candidates, name| {
            candidates.trace_id(
                &format!("{what} field {name}"),
                string_field(object, &[name]),
            )
        })
    }

    /// The first valid `traceparent` wins (trace and span id); else the first
    /// valid plain trace id. Malformed candidates met before the winner are
    /// listed in [`TraceContext::rejected`].
    pub fn resolve(self) -> TraceContext {
        let mut context = TraceContext::default();
        for (origin, value) in self.traceparents {
            match parse_traceparent(&value) {
                Some(parent) => {
                    context.trace_id = Some(parent.trace_id);
                    context.span_id = Some(parent.span_id);
                    return context;
                }
                None => context.rejected.push(rejection(&origin, &value)),
            }
        }
        for (origin, value) in self.trace_ids {
            match normalise_trace_id(&value) {
                Some(trace_id) => {
                    context.trace_id = Some(trace_id);
                    return context;
                }
                None => context.rejected.push(rejection(&origin, &value)),
            }
        }
        context
    }
}

fn rejection(origin: &str, value: &str) -> String {
    format!("{origin} `{}` is not a valid trace id", truncate(value, 80))
}

/// Trace context by the common rule: a valid `traceparent` header wins, then
/// `trace_id`/`traceId`/`x-trace-id` headers, then those payload fields.
/// Malformed ids are never trusted; they are listed in `rejected`.
pub fn trace_context(message: &RawMessage, object: Option<&Map<String, Value>>) -> TraceContext {
    TraceCandidates::new()
        .traceparent("traceparent header", message.header("traceparent"))
        .trace_id_headers(message)
        .trace_id_fields("payload", object)
        .resolve()
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, as CloudEvents `data_base64` uses), padding
/// optional, ASCII whitespace ignored; the URL-safe alphabet is accepted too.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for byte in text.bytes() {
        if byte.is_ascii_whitespace() {
            continue;
        }
        if byte == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None; // data after padding
        }
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // 6 leftover bits cannot encode a byte; more than two `=` is malformed.
    (bits < 6 && padding <= 2).then_some(out)
}

/// Standard base64 with padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

    fn message_with(headers: &[(&str, &str)]) -> RawMessage {
        crate::decode::test_support::message("t", None, "{}", headers)
    }

    #[test]
    fn a_valid_traceparent_wins_over_every_trace_id() {
        let msg = message_with(&[
            ("trace_id", "11111111111111111111111111111111"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]);
        let object = json!({"trace_id": "22222222222222222222222222222222"});
        let context = trace_context(&msg, object.as_object());
        assert_eq!(
            context,
            TraceContext {
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                span_id: Some("00f067aa0ba902b7".into()),
                rejected: vec![],
            }
        );
    }

    #[test]
    fn malformed_ids_are_refused_reported_and_skipped() {
        let msg = message_with(&[
            ("traceparent", "00-not-a-traceparent-01"),
            ("traceId", "has spaces in it"),
        ]);
        let object = json!({"trace_id": "ABCDEF0123456789ABCDEF0123456789"});
        let context = trace_context(&msg, object.as_object());
        assert_eq!(
            context.trace_id.as_deref(),
            Some("abcdef0123456789abcdef0123456789")
        );
        assert_eq!(context.span_id, None);
        assert_eq!(
            context.rejected,
            vec![
                "traceparent header `00-not-a-traceparent-01` is not a valid trace id".to_string(),
                "traceId header `has spaces in it` is not a valid trace id".to_string(),
            ]
        );
        let mut headers = vec![];
        context.report_rejected(&mut headers);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].key, REJECTED_TRACE_HEADER);

        let only_bad = trace_context(&message_with(&[("x-trace-id", "0000000000000000")]), None);
        assert_eq!(only_bad.trace_id, None);
        assert_eq!(only_bad.rejected.len(), 1);
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for sample in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0, 255, 128, 7],
        ] {
            let encoded = encode_base64(sample);
            assert_eq!(
                decode_base64(&encoded).as_deref(),
                Some(sample),
                "{encoded}"
            );
        }
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(decode_base64("Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode_base64("Zm9v\nYmFy").as_deref(), Some(&b"foobar"[..]));
        for bad in ["Z", "Zm8=x", "Zm*v", "Zg===", "é"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }
}
