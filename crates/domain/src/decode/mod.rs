//! Decoders: one file per input format, all producing [`SagaEvent`]. The
//! format is detected per message; anything unrecognised is a
//! [`DecodeError`] that the ingest keeps as an ingest error.

mod debezium_outbox;
mod fields;
mod saga_state;

use sagascope_model::Timestamp;

use crate::rules::Rules;
use crate::saga_event::{RawMessage, SagaEvent};
pub use fields::parse_timestamp;

/// Why a message could not become a [`SagaEvent`]. The text is shown on the
/// ingest-errors page, so it names the field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("tombstone: the message has no value")]
    Tombstone,
    #[error("value is not valid UTF-8 (first invalid byte at {0})")]
    InvalidUtf8(usize),
    #[error("value is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("value is JSON but not an object (found {0})")]
    NotAnObject(&'static str),
    #[error("{format}: missing or empty field `{field}`")]
    MissingField {
        format: &'static str,
        field: &'static str,
    },
    #[error("saga state: unknown status `{0}`")]
    UnknownStatus(String),
    #[error("unrecognised format: neither a saga state event (status + saga_id/correlation_id) nor a Debezium outbox event (id + type headers, or an events.* topic)")]
    UnknownFormat,
}

/// Turns raw Kafka messages into canonical events using the classification rules.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    rules: Rules,
}

impl Decoder {
    pub fn new(rules: Rules) -> Decoder {
        Decoder { rules }
    }

    pub fn decode(
        &self,
        message: &RawMessage,
        ingested_at: Timestamp,
    ) -> Result<SagaEvent, DecodeError> {
        let bytes = message.value.as_deref().ok_or(DecodeError::Tombstone)?;
        let text =
            std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(e.valid_up_to()))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        // EventRouter may deliver the payload as a JSON string holding JSON.
        let value = fields::unwrap_json_string(value);

        if debezium_outbox::has_outbox_headers(message) {
            return debezium_outbox::decode(message, value, &self.rules, ingested_at);
        }
        let object = value
            .as_object()
            .ok_or(DecodeError::NotAnObject(fields::json_kind(&value)))?;
        if saga_state::looks_like_saga_state(object) {
            return saga_state::decode(message, object, ingested_at);
        }
        if debezium_outbox::is_outbox_topic(&message.coords.topic) {
            return debezium_outbox::decode(message, value, &self.rules, ingested_at);
        }
        Err(DecodeError::UnknownFormat)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::saga_event::{KafkaCoords, RawMessage};
    use chrono::TimeZone;

    pub fn message(
        topic: &str,
        key: Option<&str>,
        value: &str,
        headers: &[(&str, &str)],
    ) -> RawMessage {
        RawMessage {
            coords: KafkaCoords {
                topic: topic.into(),
                partition: 2,
                offset: 41,
            },
            key: key.map(|k| k.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
                .collect(),
            timestamp: Some(chrono::Utc.timestamp_millis_opt(1_763_700_000_500).unwrap()),
        }
    }

    pub fn ingested_at() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.timestamp_millis_opt(1_763_700_001_000).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn bad_messages_become_clear_errors() {
        let decoder = Decoder::default();
        let mut tombstone = message("saga.state", Some("k"), "", &[]);
        tombstone.value = None;
        assert_eq!(
            decoder.decode(&tombstone, ingested_at()),
            Err(DecodeError::Tombstone)
        );

        let mut binary = message("saga.state", None, "", &[]);
        binary.value = Some(vec![b'{', 0xff, 0xfe]);
        assert_eq!(
            decoder.decode(&binary, ingested_at()),
            Err(DecodeError::InvalidUtf8(1))
        );

        let err = decoder.decode(
            &message("saga.state", None, "{\"status\":", &[]),
            ingested_at(),
        );
        assert!(matches!(err, Err(DecodeError::InvalidJson(_))));

        let err = decoder.decode(&message("saga.state", None, "[1,2]", &[]), ingested_at());
        assert_eq!(err, Err(DecodeError::NotAnObject("array")));

        let err = decoder.decode(&message("other", None, "{\"hello\":1}", &[]), ingested_at());
        assert_eq!(err, Err(DecodeError::UnknownFormat));
    }
}
