//! The producer of re-driven copies: idempotent (`enable.idempotence`,
//! `acks=all`), so librdkafka's own retries never write a copy twice, and
//! with a short linger so a single retry is answered quickly while a bulk
//! run still batches.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sagascope_store::RetryPayload;

use crate::copy_headers::redrive_headers;
use crate::RedriveConfig;

/// Milliseconds the producer waits to fill a batch.
const LINGER_MS: &str = "5";

#[derive(Clone)]
pub(crate) struct CopyProducer {
    producer: FutureProducer,
    delivery_timeout: Duration,
}

impl CopyProducer {
    pub(crate) fn new(config: &RedriveConfig) -> Result<CopyProducer, KafkaError> {
        let mut client = ClientConfig::new();
        for (key, value) in &config.client_properties {
            client.set(key, value);
        }
        // Set after the extra properties: these make the copies safe.
        let producer: FutureProducer = client
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", LINGER_MS)
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .set("client.id", "sagascope-redrive")
            .create()?;
        Ok(CopyProducer {
            producer,
            delivery_timeout: config.delivery_timeout,
        })
    }

    /// Produces the copy of `payload` to `topic` (key and value byte-exact,
    /// headers per `copy_headers`) and waits for the ack: its partition and
    /// offset, or the producer's error (never the payload).
    pub(crate) async fn produce(
        &self,
        topic: &str,
        payload: &RetryPayload,
        retry_count: u32,
    ) -> Result<(i32, i64), String> {
        let headers = redrive_headers(&payload.headers, &payload.id, retry_count);
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (key, value) in &headers {
            owned = owned.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(owned);
        if let Some(key) = payload.key.as_deref() {
            record = record.key(key);
        }
        if let Some(value) = payload.value.as_deref() {
            record = record.payload(value);
        }
        match self.producer.send(record, self.delivery_timeout).await {
            Ok(delivery) => Ok((delivery.partition, delivery.offset)),
            Err((error, _message)) => Err(error.to_string()),
        }
    }

    /// Waits (bounded) for copies still queued, at shutdown.
    pub(crate) fn flush(&self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
