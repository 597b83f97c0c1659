use sagascope_model::{Header, Phase, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a message sat in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KafkaCoords {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A Kafka message as the consumer hands it over, before decoding. Kept free
/// of rdkafka types so decoders stay pure and testable.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub coords: KafkaCoords,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Kafka message timestamp (create or log-append time).
    pub timestamp: Option<Timestamp>,
}

impl RawMessage {
    /// The first header with this name, as trimmed text; a missing, null or
    /// blank value counts as absent. Header names are compared
    /// case-insensitively because producers disagree on case.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .filter(|k| !k.is_empty())
    }

    pub fn headers_as_text(&self) -> Vec<Header> {
        self.headers
            .iter()
            .map(|(key, value)| Header {
                key: key.clone(),
                value: value
                    .as_deref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
            })
            .collect()
    }
}

/// The canonical event every input format is decoded into (DESIGN.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaEvent {
    /// Stable id: from the message, else `topic/partition/offset`.
    pub event_id: String,
    /// The saga instance this event belongs to, set by correlation
    /// ([`crate::correlate`]); the store may merge it into another instance.
    pub saga_id: String,
    /// The saga id the message names itself (a `saga_id`/`correlation_id`
    /// field or header, the CloudEvents `sagaid` extension), if any.
    #[serde(default)]
    pub explicit_saga_id: Option<String>,
    /// True when type, step and phase came from the rules (re-derived by
    /// `sagascope reproject`); false when the message stated them (saga
    /// state events).
    #[serde(default)]
    pub rule_classified: bool,
    /// Rank of the correlation source that gave `saga_id` (lower wins when
    /// instances merge).
    #[serde(default)]
    pub correlation_rank: u8,
    /// Correlation keys (`trace:…`, `pointer:order:/order_id=…`); empty
    /// means keyed by `saga_id` alone.
    #[serde(default)]
    pub correlation_keys: Vec<String>,
    /// None when nothing classified it; the projection then falls back to
    /// the first event's type.
    pub saga_type: Option<String>,
    pub step: Option<String>,
    pub phase: Phase,
    /// The raw event name as the producer wrote it.
    pub event_type: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub request_id: Option<String>,
    /// Business identifiers (order id, aggregate id) searchable from the UI.
    pub business_keys: Vec<String>,
    pub occurred_at: Timestamp,
    pub published_at: Option<Timestamp>,
    pub ingested_at: Timestamp,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub coords: KafkaCoords,
    pub headers: Vec<Header>,
    pub payload: serde_json::Value,
    /// Failure text carried by the event itself (a step's error).
    pub error: Option<String>,
}
