//! Decoding one batch of raw messages into store input. Pure: tested
//! without Kafka.

use std::collections::BTreeMap;

use sagascope_domain::{decode_dead_letter, Decoder, RawMessage};
use sagascope_model::Timestamp;
use sagascope_store::{IngestBatch, NewIngestError, PartitionOffset};

use crate::dlq_topics::DlqTopics;

/// How much of an undecodable value is kept for the ingest-errors page.
const FIRST_BYTES: usize = 256;

pub fn first_bytes(value: Option<&[u8]>) -> String {
    match value {
        None => "(null)".to_string(),
        Some(bytes) => without_nul(
            String::from_utf8_lossy(&bytes[..bytes.len().min(FIRST_BYTES)]).into_owned(),
        ),
    }
}

/// Postgres `TEXT` cannot hold U+0000: one NUL in an ingest error failed
/// the whole batch's write, and the ingest retried that batch forever
/// (found by `server/tests/crash_recovery.rs`). Confluent Avro and
/// Protobuf values and keys start with a zero byte, so NULs are shown as
/// U+2400 (␀) instead, on both stores alike.
fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{2400}")
    } else {
        text
    }
}

/// One batch of messages, decoded.
#[derive(Debug, Default)]
pub struct DecodedBatch {
    pub batch: IngestBatch,
    /// Messages understood but deliberately not events (Debezium updates,
    /// deletes and tombstones of an outbox table): counted, not listed.
    pub ignored: usize,
}

/// Decodes every message; each becomes an event, an ingest error, an
/// ignored count or (on a DLQ topic) a dead letter, never nothing. Offsets
/// are the next offset per partition.
pub fn decode_batch(
    group_id: &str,
    decoder: &Decoder,
    dlq_topics: &DlqTopics,
    messages: &[RawMessage],
    ingested_at: Timestamp,
) -> DecodedBatch {
    let mut batch = IngestBatch {
        group_id: group_id.to_string(),
        ..Default::default()
    };
    let mut ignored = 0;
    let mut next_offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for message in messages {
        let coords = &message.coords;
        let next = next_offsets
            .entry((coords.topic.clone(), coords.partition))
            .or_insert(0);
        *next = (*next).max(coords.offset + 1);
        if dlq_topics.matches(&coords.topic) {
            let fields = decoder.rules().dead_letter_fields();
            batch.dead_letters.push(decode_dead_letter(message, fields));
            continue;
        }
        match decoder.decode(message, ingested_at) {
            Ok(event) => batch.events.push(event),
            Err(error) if error.is_ignored() => ignored += 1,
            Err(error) => batch.errors.push(NewIngestError {
                coords: coords.clone(),
                reason: without_nul(error.to_string()),
                first_bytes: first_bytes(message.value.as_deref()),
                key: message.key_text().map(without_nul),
                published_at: message.timestamp,
                ingested_at,
            }),
        }
    }
    batch.offsets = next_offsets
        .into_iter()
        .map(|((topic, partition), next_offset)| PartitionOffset {
            topic,
            partition,
            next_offset,
        })
        .collect();
    DecodedBatch { batch, ignored }
}

/// The backlog of a batch as the store takes it: per partition, the offset
/// after its last backlog message (backlog messages come before the others
/// of their partition: see `crate::catchup`). `backlog[i]` tells whether
/// `messages[i]` is backlog.
pub fn backlog_bounds(messages: &[RawMessage], backlog: &[bool]) -> Vec<PartitionOffset> {
    let mut bounds: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for (message, _) in messages.iter().zip(backlog).filter(|(_, b)| **b) {
        let coords = &message.coords;
        let bound = bounds
            .entry((coords.topic.as_str(), coords.partition))
            .or_insert(0);
        *bound = (*bound).max(coords.offset + 1);
    }
    bounds
        .into_iter()
        .map(|((topic, partition), next_offset)| PartitionOffset {
            topic: topic.to_string(),
            partition,
            next_offset,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_domain::KafkaCoords;

    fn raw(partition: i32, offset: i64, value: Option<&str>) -> RawMessage {
        RawMessage {
            coords: KafkaCoords {
                topic: "saga.state".into(),
                partition,
                offset,
            },
            key: Some(b"k".to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: vec![],
            timestamp: None,
        }
    }

    #[test]
    fn every_message_becomes_an_event_or_an_error_and_offsets_advance() {
        let messages = vec![
            raw(
                0,
                7,
                Some(r#"{"saga_id":"s1","saga_type":"order","status":"STARTED"}"#),
            ),
            raw(0, 8, Some("not json at all")),
            raw(1, 3, None),
            raw(0, 9, Some(r#"{"saga_id":"s1","status":"COMPLETED"}"#)),
            RawMessage {
                coords: KafkaCoords {
                    topic: "cdc.public.outbox".into(),
                    partition: 0,
                    offset: 10,
                },
                key: None,
                value: Some(
                    br#"{"op":"d","before":{"id":"e1"},"after":null,"source":{"ts_ms":1}}"#
                        .to_vec(),
                ),
                headers: vec![],
                timestamp: None,
            },
        ];
        let decoded = decode_batch(
            "g",
            &Decoder::default(),
            &DlqTopics::default(),
            &messages,
            chrono::DateTime::UNIX_EPOCH,
        );
        assert_eq!(
            decoded.ignored, 1,
            "a Debezium delete is counted, not an error"
        );
        let batch = decoded.batch;
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.errors.len(), 2);
        assert_eq!(batch.errors[0].coords.offset, 8);
        assert!(
            batch.errors[0]
                .reason
                .starts_with("value is not valid JSON"),
            "{}",
            batch.errors[0].reason
        );
        assert_eq!(batch.errors[0].first_bytes, "not json at all");
        assert_eq!(
            batch.errors[1].reason,
            "tombstone: the message has no value"
        );
        assert_eq!(batch.errors[1].first_bytes, "(null)");
        assert_eq!(
            batch.offsets,
            vec![
                PartitionOffset {
                    topic: "cdc.public.outbox".into(),
                    partition: 0,
                    next_offset: 11
                },
                PartitionOffset {
                    topic: "saga.state".into(),
                    partition: 0,
                    next_offset: 10
                },
                PartitionOffset {
                    topic: "saga.state".into(),
                    partition: 1,
                    next_offset: 4
                },
            ]
        );
    }

    #[test]
    fn dlq_topics_become_dead_letters_never_events_or_errors() {
        let mut dead = raw(0, 4, Some("not json, and no dead-letter headers"));
        dead.coords.topic = "saga.state.DLT".into();
        dead.headers = vec![
            (
                "kafka_dlt-original-topic".into(),
                Some(b"saga.state".to_vec()),
            ),
            (
                "kafka_dlt-original-offset".into(),
                Some(7_i64.to_be_bytes().to_vec()),
            ),
        ];
        let mut unknown = raw(1, 0, None);
        unknown.coords.topic = "orders.dlq".into();
        let messages = vec![
            raw(
                0,
                7,
                Some(r#"{"saga_id":"s1","saga_type":"order","status":"STARTED"}"#),
            ),
            dead,
            unknown,
        ];
        let topics = DlqTopics::new(&[crate::DEFAULT_DLQ_TOPICS.to_string()]).unwrap();
        let batch = decode_batch(
            "g",
            &Decoder::default(),
            &topics,
            &messages,
            chrono::DateTime::UNIX_EPOCH,
        )
        .batch;
        assert_eq!(batch.events.len(), 1);
        assert!(batch.errors.is_empty());
        let letters: Vec<(&str, Option<i64>)> = batch
            .dead_letters
            .iter()
            .map(|l| {
                (
                    l.dlq.topic.as_str(),
                    l.original.as_ref().and_then(|o| o.offset),
                )
            })
            .collect();
        assert_eq!(letters, [("saga.state.DLT", Some(7)), ("orders.dlq", None)]);
        assert_eq!(
            batch.dead_letters[1].format,
            sagascope_domain::DeadLetterFormat::Unknown
        );
        let next: Vec<(&str, i64)> = batch
            .offsets
            .iter()
            .map(|o| (o.topic.as_str(), o.next_offset))
            .collect();
        assert_eq!(
            next,
            [("orders.dlq", 1), ("saga.state", 8), ("saga.state.DLT", 5)]
        );
    }

    #[test]
    fn backlog_bounds_cover_the_backlog_messages_of_each_partition() {
        let messages = vec![
            raw(0, 7, None),
            raw(0, 8, None),
            raw(0, 9, None),
            raw(1, 3, None),
        ];
        let bounds = backlog_bounds(&messages, &[true, true, false, false]);
        assert_eq!(
            bounds,
            [PartitionOffset {
                topic: "saga.state".into(),
                partition: 0,
                next_offset: 9
            }]
        );
        let batch = IngestBatch {
            backlog: bounds,
            ..IngestBatch::default()
        };
        let flags: Vec<bool> = messages
            .iter()
            .map(|m| batch.is_backlog(&m.coords))
            .collect();
        assert_eq!(flags, [true, true, false, false]);
        assert!(backlog_bounds(&messages, &[false; 4]).is_empty());
    }

    #[test]
    fn first_bytes_are_bounded_and_lossy() {
        let long = vec![b'a'; 1000];
        assert_eq!(first_bytes(Some(&long)).len(), FIRST_BYTES);
        assert_eq!(first_bytes(Some(&[0xff, b'x'])), "\u{fffd}x");
    }

    /// An undecodable Confluent Avro message (magic byte 0, schema id) with
    /// an Avro key: its ingest error holds no NUL, which Postgres refuses.
    #[test]
    fn ingest_errors_hold_no_nul() {
        let mut avro = raw(0, 1, None);
        avro.value = Some(vec![0, 0, 0, 0, 0x2a, 0xff, 0xde]);
        avro.key = Some(vec![0, 0, 0, 0, 0x2b, b'k']);
        let batch = decode_batch(
            "g",
            &Decoder::default(),
            &DlqTopics::default(),
            &[avro],
            chrono::DateTime::UNIX_EPOCH,
        )
        .batch;
        let error = &batch.errors[0];
        assert_eq!(
            error.first_bytes,
            "\u{2400}\u{2400}\u{2400}\u{2400}*\u{fffd}\u{fffd}"
        );
        assert_eq!(
            error.key.as_deref(),
            Some("\u{2400}\u{2400}\u{2400}\u{2400}+k")
        );
        assert!(!error.reason.contains('\0'), "{}", error.reason);
    }
}
