//! The spans the simulated services produce, before they are encoded for
//! export (`otlp_json.rs`). Span ids are derived from the trace id, the
//! message index and the span's role rather than drawn from the traffic's
//! RNG: the message's `traceparent` can then name the span that published
//! it without any state kept between the steps of a saga (which may be
//! played by different tasks, and resumed minutes later by the retry
//! consumer), and seeded traffic draws the same numbers as before.

use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};

/// What a span's operation is, numbered as OTLP's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedSpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// An attribute value, as OTLP's `AnyValue` variants the simulator uses.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for AttributeValue {
    fn from(text: &str) -> AttributeValue {
        AttributeValue::Text(text.to_string())
    }
}

impl From<String> for AttributeValue {
    fn from(text: String) -> AttributeValue {
        AttributeValue::Text(text)
    }
}

impl From<i64> for AttributeValue {
    fn from(number: i64) -> AttributeValue {
        AttributeValue::Int(number)
    }
}

impl From<bool> for AttributeValue {
    fn from(flag: bool) -> AttributeValue {
        AttributeValue::Bool(flag)
    }
}

pub type Attributes = Vec<(String, AttributeValue)>;

/// A timed event inside a span (here: the `exception` of a failure).
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedSpanEvent {
    pub name: String,
    pub at: DateTime<Utc>,
    pub attributes: Attributes,
}

/// One span of a simulated service.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedSpan {
    /// 32 lowercase hex digits: the saga's trace id.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    pub kind: SimulatedSpanKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub attributes: Attributes,
    pub events: Vec<SimulatedSpanEvent>,
    /// Status error with this message; None: status unset.
    pub error: Option<String>,
}

impl SimulatedSpan {
    /// The text value of attribute `key`, if it has one.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, value)| match value {
                AttributeValue::Text(text) => Some(text.as_str()),
                _ => None,
            })
    }
}

/// The role a span plays for message `index` of a trace: each gets an id
/// of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanRole {
    /// The request that started the trace.
    Root,
    /// Work inside the root (before the first message is published).
    RootWork(usize),
    /// The publish of message `index` (the span its `traceparent` names).
    Producer,
    /// The processing of message `index` by the service that consumes it.
    Consumer,
    /// Work done before publishing message `index`, inside the processing
    /// of the message before it, by position.
    ConsumerWork(usize),
    /// Work inside the processing of the trace's last message.
    FinalWork,
    /// The dead letter a service publishes for message `index`.
    DeadLetterPublish,
}

/// The span id of `role` for message `index` of trace `trace_id`: 16 hex
/// digits, never all zero (which W3C forbids).
pub fn span_id(trace_id: &str, index: usize, role: SpanRole) -> String {
    hashed_span_id(&(trace_id, index, role))
}

/// A span id (16 hex digits, never all zero) derived from `parts`.
/// `DefaultHasher::new()` uses fixed keys, so the same parts give the same
/// id throughout the process (and across runs of one build).
pub fn hashed_span_id<T: Hash + ?Sized>(parts: &T) -> String {
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish().max(1))
}

/// The trace id and span id of a `traceparent` header value
/// (`00-{trace id}-{span id}-{flags}`), when it is well formed.
pub fn parse_traceparent(value: &str) -> Option<(String, String)> {
    let mut parts = value.trim().split('-');
    let (_version, trace_id, span_id) = (parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(trace_id, 32) && hex(span_id, 16))
        .then(|| (trace_id.to_ascii_lowercase(), span_id.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_stable_distinct_and_hex() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let producer = span_id(trace, 3, SpanRole::Producer);
        assert_eq!(producer, span_id(trace, 3, SpanRole::Producer));
        assert_eq!(producer.len(), 16);
        assert!(producer.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(producer, span_id(trace, 4, SpanRole::Producer));
        assert_ne!(producer, span_id(trace, 3, SpanRole::Consumer));
        assert_ne!(
            producer,
            span_id("1bf92f3577b34da6a3ce929d0e0e4736", 3, SpanRole::Producer)
        );
    }

    #[test]
    fn traceparents_parse_only_when_well_formed() {
        assert_eq!(
            parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
        assert_eq!(parse_traceparent("00-abc-def-01"), None);
        assert_eq!(parse_traceparent(""), None);
    }
}
