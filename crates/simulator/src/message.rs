//! Planned messages (what a service will publish, and when) and rendered
//! messages (the exact key, value and headers handed to Kafka).

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use serde_json::Value;

use crate::render::render;

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A saga state event; `timestamp` is filled in when rendered.
    SagaState(Value),
    /// An outbox payload; the `created_at` header is filled in when rendered.
    Outbox { event_type: String, payload: Value },
    /// Debezium's change event for the insert of an outbox row (`op` c);
    /// `created_at` is filled in when rendered. `with_schema` wraps it the
    /// way the JsonConverter does with schemas enabled.
    CdcInsert { row: OutboxRow, with_schema: bool },
    /// The relay deleting a row it inserted `inserted_ms_ago` (`op` d,
    /// `before` = the row): noise sagascope must ignore, not list.
    CdcDelete {
        row: OutboxRow,
        with_schema: bool,
        inserted_ms_ago: u64,
    },
    /// The null value Debezium writes after a delete, for log compaction.
    Tombstone,
    /// A CloudEvents 1.0 event; `time` is filled in when rendered.
    CloudEvent {
        event: CloudEvent,
        mode: CloudEventMode,
    },
    /// A plain JSON event; `occurred_at` is filled in when rendered.
    PlainJson(Value),
    /// Deliberately broken traffic (the simulator's poison messages), sent
    /// with these headers besides `traceparent`.
    Raw {
        value: Vec<u8>,
        headers: Vec<(String, String)>,
    },
}

/// A row of the shop database's `outbox` table (Debezium outbox layout).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: String,
    /// "Order" or "Stock": which service wrote it.
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub event_type: String,
    /// Stored as JSONB; Debezium sends it as a JSON string.
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    pub id: String,
    /// Namespaced, e.g. `com.shop.payment.PaymentAuthorized`.
    pub event_type: String,
    pub source: String,
    pub subject: String,
    pub data: Value,
}

/// The two content modes of the CloudEvents Kafka protocol binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudEventMode {
    /// Attributes in `ce_*` headers, the data as the value.
    Binary,
    /// The whole event as JSON (`application/cloudevents+json`).
    Structured,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMessage {
    pub delay_ms: u64,
    pub topic: &'static str,
    pub key: String,
    pub body: Body,
}

impl PlannedMessage {
    /// False for messages that sagascope understands but must not store:
    /// Debezium deletes and tombstones, and broken bytes.
    pub fn is_event(&self) -> bool {
        !matches!(
            self.body,
            Body::CdcDelete { .. } | Body::Tombstone | Body::Raw { .. }
        )
    }
}

/// A message ready to produce. A `None` value is a Kafka tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    pub topic: &'static str,
    pub key: String,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// Messages sharing one trace, played together: traffic that belongs to no
/// saga (a product event, a burst of poison), or a saga's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub trace_id: String,
    pub messages: Vec<PlannedMessage>,
}

impl Traffic {
    /// Renders message `index` as produced at `at` (see [`render`]).
    pub fn render(&self, index: usize, at: DateTime<Utc>, rng: &mut StdRng) -> RenderedMessage {
        render(&self.messages[index], &self.trace_id, index, at, rng)
    }
}
