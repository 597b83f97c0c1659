//! Decoders: one file per input format, all producing [`SagaEvent`]. The
//! format is detected per message (see [`Decoder::decode`]); anything
//! unrecognised is a [`DecodeError`] that the ingest keeps as an ingest
//! error, except [`DecodeError::Ignored`], which the ingest only counts.

mod cloudevents;
mod debezium_cdc;
mod debezium_outbox;
pub(crate) mod fields;
mod plain_json;
mod saga_state;
mod without_nul;

use sagascope_model::Timestamp;

use crate::correlate::correlate;
use crate::rules::{Rules, STREAM_CORRELATION};
use crate::saga_event::{RawMessage, SagaEvent};
pub use debezium_cdc::{
    is_cdc_topic, OP_HEADER as DEBEZIUM_OP_HEADER, SOURCE_TS_HEADER as DEBEZIUM_SOURCE_TS_HEADER,
};
pub use fields::{parse_timestamp, REJECTED_TRACE_HEADER};

/// Why a message did not become a [`SagaEvent`]. The text is shown on the
/// ingest-errors page, so it names the field and what was expected.
///
/// [`DecodeError::Ignored`] is not a failure: the message was understood and
/// deliberately carries no saga event (a Debezium update, delete or
/// tombstone). The ingest must count it (and commit its offset) instead of
/// listing it as an ingest error; [`DecodeError::is_ignored`] tells it apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Understood, and deliberately not an event. Not an ingest error.
    #[error("ignored: {reason}")]
    Ignored { reason: String },
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
    /// A field is present but unusable; `reason` says what was found and
    /// what was expected.
    #[error("{format}: field `{field}` {reason}")]
    InvalidField {
        format: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("saga state: unknown status `{0}`")]
    UnknownStatus(String),
    #[error("unrecognised format: none of CloudEvents (ce_* headers, or specversion + id + type + source), Debezium outbox (id + type headers, or an events.* topic), Debezium CDC envelope (op + after/before), saga state (status + saga_id/correlation_id), or a plain JSON event (type/eventType field)")]
    UnknownFormat,
}

impl DecodeError {
    /// True for messages that are deliberately not events (count them, do
    /// not list them as ingest errors).
    pub fn is_ignored(&self) -> bool {
        matches!(self, DecodeError::Ignored { .. })
    }

    pub(crate) fn ignored(reason: impl Into<String>) -> DecodeError {
        DecodeError::Ignored {
            reason: reason.into(),
        }
    }
}

/// The input formats, for per-topic overrides (`[[topic]] format = …` in the
/// rules file) that skip auto-detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    CloudEvents,
    DebeziumOutbox,
    DebeziumCdc,
    SagaState,
    PlainJson,
}

impl Format {
    pub const NAMES: [&'static str; 5] = [
        "cloudevents",
        "debezium_outbox",
        "debezium_cdc",
        "saga_state",
        "plain_json",
    ];

    pub fn parse(text: &str) -> Option<Format> {
        Some(match text.trim() {
            "cloudevents" => Format::CloudEvents,
            "debezium_outbox" => Format::DebeziumOutbox,
            "debezium_cdc" => Format::DebeziumCdc,
            "saga_state" => Format::SagaState,
            "plain_json" => Format::PlainJson,
            _ => return None,
        })
    }
}

/// Payloads larger than this (as stored JSON text) are kept as a truncated,
/// flagged copy unless configured otherwise.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Header added to an event whose stored payload was truncated; its value
/// is the original size in bytes.
pub const TRUNCATED_HEADER: &str = "sagascope.payload_truncated";

/// Turns raw Kafka messages into canonical events using the classification rules.
#[derive(Debug, Clone)]
pub struct Decoder {
    rules: Rules,
    max_payload_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(Rules::default())
    }
}

impl Decoder {
    pub fn new(rules: Rules) -> Decoder {
        Decoder {
            rules,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Payloads above `bytes` are stored as a truncated copy, flagged with
    /// the [`TRUNCATED_HEADER`] header; the event itself is kept.
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Decoder {
        self.max_payload_bytes = bytes;
        self
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Decodes one message (see [`Decoder::decode_format`]), redacts it,
    /// places it in a saga instance, bounds the size of the payload that
    /// will be stored and shows NULs in its text columns as ␀ (see
    /// `without_nul.rs`).
    pub fn decode(
        &self,
        message: &RawMessage,
        ingested_at: Timestamp,
    ) -> Result<SagaEvent, DecodeError> {
        let mut event = match self.rules.format_for_topic(&message.coords.topic) {
            Some(format) => self.decode_as(format, message, ingested_at)?,
            None => self.decode_format(message, ingested_at)?,
        };
        self.rules
            .redaction()
            .apply(&mut event.payload, &mut event.headers);
        let event = self.place(event);
        Ok(without_nul::without_nul(self.bound_payload(event)))
    }

    /// Applies the (changed) rules to a stored event: rule-classified
    /// events are classified anew, then placed as [`Decoder::decode`] does.
    /// `sagascope reproject` runs every stored event through this.
    pub fn interpret(&self, mut event: SagaEvent) -> SagaEvent {
        if event.rule_classified {
            let classification = self.rules.classify(&event.event_type);
            if !classification.phase.is_failure() {
                event.error = None;
            }
            event.saga_type = classification.saga_type;
            event.step = classification.step;
            event.phase = classification.phase;
        }
        self.place(event)
    }

    /// Events the rules exclude from sagas lose their saga meaning; then
    /// the event is correlated into an instance.
    fn place(&self, mut event: SagaEvent) -> SagaEvent {
        if self
            .rules
            .is_not_saga(&event.event_type, &event.coords.topic)
        {
            event.saga_type = None;
            // No step: a stream's events never make it a saga (see
            // `SagaProjection::type_sample`).
            event.step = None;
            event.phase = sagascope_model::Phase::Event;
            event.explicit_saga_id = None;
            event.error = None;
            let placed = correlate(&event, &STREAM_CORRELATION, false);
            return placed_in(event, placed);
        }
        let order = self.rules.correlation(event.saga_type.as_deref());
        let configured = event
            .saga_type
            .as_deref()
            .is_some_and(|t| self.rules.has_correlation(t));
        let placed = correlate(&event, order, configured);
        placed_in(event, placed)
    }

    fn bound_payload(&self, mut event: SagaEvent) -> SagaEvent {
        let text = event.payload.to_string();
        if text.len() > self.max_payload_bytes {
            let mut cut = self.max_payload_bytes;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            event.payload = serde_json::json!({
                "sagascope_truncated": true,
                "original_bytes": text.len(),
                "preview": &text[..cut],
            });
            event.headers.push(sagascope_model::Header {
                key: TRUNCATED_HEADER.to_string(),
                value: text.len().to_string(),
            });
        }
        event
    }

    /// Decodes with one format, skipping detection (a `[[topic]]` override).
    fn decode_as(
        &self,
        format: Format,
        message: &RawMessage,
        ingested_at: Timestamp,
    ) -> Result<SagaEvent, DecodeError> {
        if format == Format::CloudEvents && cloudevents::is_binary(message) {
            return cloudevents::decode_binary(message, &self.rules, ingested_at);
        }
        let bytes = message.value.as_deref().ok_or(DecodeError::Tombstone)?;
        let text =
            std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(e.valid_up_to()))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        let value = fields::unwrap_json_string(value);
        match format {
            Format::CloudEvents => {
                cloudevents::decode_structured(message, &value, &self.rules, ingested_at)
            }
            Format::DebeziumOutbox => {
                debezium_outbox::decode(message, value, &self.rules, ingested_at)
            }
            Format::DebeziumCdc => {
                let object = value
                    .as_object()
                    .ok_or(DecodeError::NotAnObject(fields::json_kind(&value)))?;
                let envelope = debezium_cdc::envelope(object).ok_or(DecodeError::MissingField {
                    format: "debezium cdc",
                    field: "op",
                })?;
                debezium_cdc::decode(message, envelope, &self.rules, ingested_at)
            }
            Format::SagaState => {
                let object = value
                    .as_object()
                    .ok_or(DecodeError::NotAnObject(fields::json_kind(&value)))?;
                saga_state::decode(message, object, ingested_at)
            }
            Format::PlainJson => {
                let object = value
                    .as_object()
                    .ok_or(DecodeError::NotAnObject(fields::json_kind(&value)))?;
                plain_json::decode(message, object, &self.rules, ingested_at)
            }
        }
    }

    /// Detects the format of one message and decodes it. Order:
    ///
    /// 1. CloudEvents: binary mode (`ce_specversion` header; the value is the
    ///    data, any bytes or none), structured mode (`content-type:
    ///    application/cloudevents+json`, or a JSON object with `specversion`,
    ///    `id`, `type` and `source`);
    /// 2. a null value: [`DecodeError::Ignored`] on a CDC topic (Debezium
    ///    writes a tombstone after each delete), else [`DecodeError::Tombstone`];
    /// 3. Debezium outbox EventRouter (`id` + `type`/`eventType` headers);
    /// 4. Debezium CDC envelope (`op` + `after`/`before`, optionally under
    ///    `payload` next to `schema`);
    /// 5. saga state events (`status` + `saga_id`/`correlation_id`);
    /// 6. any other JSON on an `events.*`/`outbox.*` topic: EventRouter;
    /// 7. plain JSON domain events (`type`/`eventType`/`event_type` field);
    /// 8. otherwise [`DecodeError::UnknownFormat`].
    ///
    /// Never panics, whatever the bytes, headers or nesting depth.
    pub fn decode_format(
        &self,
        message: &RawMessage,
        ingested_at: Timestamp,
    ) -> Result<SagaEvent, DecodeError> {
        if cloudevents::is_binary(message) {
            return cloudevents::decode_binary(message, &self.rules, ingested_at);
        }
        let Some(bytes) = message.value.as_deref() else {
            return if debezium_cdc::is_cdc_topic(&message.coords.topic) {
                Err(DecodeError::ignored(
                    "Debezium tombstone (null value after a delete)",
                ))
            } else {
                Err(DecodeError::Tombstone)
            };
        };
        let text =
            std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(e.valid_up_to()))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        // EventRouter may deliver the payload as a JSON string holding JSON.
        let value = fields::unwrap_json_string(value);

        if cloudevents::is_structured(message, &value) {
            return cloudevents::decode_structured(message, &value, &self.rules, ingested_at);
        }
        if debezium_outbox::has_outbox_headers(message) {
            return debezium_outbox::decode(message, value, &self.rules, ingested_at);
        }
        let object = value
            .as_object()
            .ok_or(DecodeError::NotAnObject(fields::json_kind(&value)))?;
        if let Some(envelope) = debezium_cdc::envelope(object) {
            return debezium_cdc::decode(message, envelope, &self.rules, ingested_at);
        }
        if saga_state::looks_like_saga_state(object) {
            return saga_state::decode(message, object, ingested_at);
        }
        if debezium_outbox::is_outbox_topic(&message.coords.topic) {
            return debezium_outbox::decode(message, value, &self.rules, ingested_at);
        }
        if plain_json::looks_like_plain_event(object) {
            return plain_json::decode(message, object, &self.rules, ingested_at);
        }
        Err(DecodeError::UnknownFormat)
    }
}

fn placed_in(mut event: SagaEvent, placed: crate::correlate::Correlation) -> SagaEvent {
    event.saga_id = placed.saga_id;
    event.correlation_rank = placed.rank;
    event.correlation_keys = placed.keys;
    event
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
        assert!(!DecodeError::UnknownFormat.is_ignored());
    }

    #[test]
    fn tombstones_are_ignored_on_cdc_topics_only() {
        let decoder = Decoder::default();
        for topic in ["cdc.scan.outbox", "dbserver1.public.outbox"] {
            let mut tombstone = message(topic, Some("{\"id\":\"x\"}"), "", &[]);
            tombstone.value = None;
            let err = decoder.decode(&tombstone, ingested_at()).unwrap_err();
            assert!(err.is_ignored(), "{topic}: {err}");
            assert_eq!(
                err.to_string(),
                "ignored: Debezium tombstone (null value after a delete)"
            );
        }
        let mut tombstone = message("events.order", Some("k"), "", &[]);
        tombstone.value = None;
        assert_eq!(
            decoder.decode(&tombstone, ingested_at()),
            Err(DecodeError::Tombstone)
        );
    }

    #[test]
    fn huge_payloads_are_stored_as_a_flagged_truncated_copy() {
        let big = "é".repeat(100_000);
        let value = format!(
            r#"{{"saga_id":"s-big","saga_type":"order","status":"STARTED","blob":"{big}"}}"#
        );
        let decoder = Decoder::default().with_max_payload_bytes(1000);
        let event = decoder
            .decode(&message("saga.state", None, &value, &[]), ingested_at())
            .unwrap();
        assert_eq!(event.saga_id, "s-big", "the event itself is kept");
        assert_eq!(event.payload["sagascope_truncated"], true);
        let original = serde_json::from_str::<serde_json::Value>(&value)
            .unwrap()
            .to_string()
            .len();
        assert_eq!(event.payload["original_bytes"], original);
        assert!(event.payload["preview"].as_str().unwrap().len() <= 1000);
        let flag = event
            .headers
            .iter()
            .find(|h| h.key == TRUNCATED_HEADER)
            .unwrap();
        assert_eq!(flag.value, original.to_string());

        let small = Decoder::default()
            .decode(
                &message(
                    "saga.state",
                    None,
                    r#"{"saga_id":"s","status":"STARTED"}"#,
                    &[],
                ),
                ingested_at(),
            )
            .unwrap();
        assert!(small.headers.iter().all(|h| h.key != TRUNCATED_HEADER));
    }
}
