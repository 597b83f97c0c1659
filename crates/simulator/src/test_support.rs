//! Runs rendered messages through sagascope's own decoder, as the ingest
//! would after consuming them.

use chrono::{DateTime, Utc};
use sagascope_domain::{DecodeError, Decoder, KafkaCoords, RawMessage, SagaEvent};

use crate::message::RenderedMessage;

/// The message as the consumer hands it to the decoder.
pub fn raw(message: &RenderedMessage, offset: i64, at: DateTime<Utc>) -> RawMessage {
    RawMessage {
        coords: KafkaCoords {
            topic: message.topic.to_string(),
            partition: 0,
            offset,
        },
        key: Some(message.key.clone().into_bytes()),
        value: message.value.clone(),
        headers: message
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone().into_bytes())))
            .collect(),
        timestamp: Some(at),
    }
}

/// Decodes with the default rules (no rules file).
pub fn decode(message: &RenderedMessage, at: DateTime<Utc>) -> Result<SagaEvent, DecodeError> {
    Decoder::default().decode(&raw(message, 7, at), at)
}

/// The value of `header`, which must be present.
pub fn header<'a>(message: &'a RenderedMessage, header: &str) -> &'a str {
    message
        .headers
        .iter()
        .find(|(k, _)| k == header)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no header {header} in {message:?}"))
}
