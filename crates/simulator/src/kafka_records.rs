//! The Kafka record of each kind of simulated message, built in one place
//! for the simulator, `sagascope bench`'s load and the test brokers'
//! traffic, so that all three put the same bytes on the wire.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::{DeadLetterMessage, RenderedMessage};

/// A rendered saga, outbox or product message: its topic, key, text
/// headers and value; the timestamp is the producer's clock unless the
/// caller sets one.
pub fn message_record(message: &RenderedMessage) -> FutureRecord<'_, str, [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
    for (key, value) in &message.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let record = FutureRecord::<str, [u8]>::to(message.topic)
        .key(message.key.as_str())
        .headers(headers);
    match &message.value {
        Some(value) => record.payload(value.as_slice()),
        None => record,
    }
}

/// A dead letter: binary headers and its own timestamp (when the service
/// gave up).
pub fn dead_letter_record(message: &DeadLetterMessage) -> FutureRecord<'_, str, [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
    for (key, value) in &message.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_slice()),
        });
    }
    let record = FutureRecord::<str, [u8]>::to(&message.topic)
        .key(message.key.as_str())
        .headers(headers)
        .timestamp(message.timestamp_ms);
    match &message.value {
        Some(value) => record.payload(value.as_slice()),
        None => record,
    }
}
