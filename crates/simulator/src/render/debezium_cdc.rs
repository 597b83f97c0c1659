//! Debezium change events of the shop's `outbox` table, as the PostgreSQL
//! connector publishes them: `{before, after, source, op, ts_ms}`, or the
//! same under `payload` next to a `schema` when the JsonConverter has
//! schemas enabled. `payload` is JSONB, which Debezium sends as a JSON
//! string (`io.debezium.data.Json`); `created_at` is a `MicroTimestamp`.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::message::OutboxRow;

/// An outbox row as its service wrote it, with its trace context.
pub struct CapturedRow<'a> {
    pub row: &'a OutboxRow,
    pub trace_id: &'a str,
    pub traceparent: &'a str,
    pub created: DateTime<Utc>,
}

impl CapturedRow<'_> {
    /// The row as Debezium serialises it. The service stores its trace
    /// context with the row (`trace_id`, and `tracingspancontext` as Java
    /// properties text, which Debezium's tracing integration reads).
    fn to_json(&self) -> Value {
        json!({
            "id": self.row.id,
            "aggregatetype": self.row.aggregate_type,
            "aggregateid": self.row.aggregate_id,
            "type": self.row.event_type,
            "payload": self.row.payload.to_string(),
            "trace_id": self.trace_id,
            "tracingspancontext": format!("traceparent={}\n", self.traceparent),
            "created_at": self.created.timestamp_micros(),
        })
    }
}

/// The insert of `row` (`op` c), captured at `at`.
pub fn insert(
    row: CapturedRow<'_>,
    with_schema: bool,
    at: DateTime<Utc>,
    rng: &mut StdRng,
) -> Value {
    envelope(Value::Null, row.to_json(), "c", with_schema, at, rng)
}

/// The relay's delete of `row` at `at` (`op` d).
pub fn delete(
    row: CapturedRow<'_>,
    with_schema: bool,
    at: DateTime<Utc>,
    rng: &mut StdRng,
) -> Value {
    envelope(row.to_json(), Value::Null, "d", with_schema, at, rng)
}

/// The change event: committed a few ms after `at`, seen by the connector
/// a few ms later.
fn envelope(
    before: Value,
    after: Value,
    op: &str,
    with_schema: bool,
    at: DateTime<Utc>,
    rng: &mut StdRng,
) -> Value {
    let committed_ms = at.timestamp_millis() + rng.random_range(1..6);
    let lsn: u64 = rng.random_range(20_000_000..90_000_000);
    let envelope = json!({
        "before": before,
        "after": after,
        "source": {
            "version": "2.7.3.Final",
            "connector": "postgresql",
            "name": "dbserver1",
            "ts_ms": committed_ms,
            "snapshot": "false",
            "db": "shop",
            "sequence": format!("[null,\"{lsn}\"]"),
            "schema": "shop",
            "table": "outbox",
            "txId": rng.random_range(500..90_000),
            "lsn": lsn,
            "xmin": null
        },
        "op": op,
        "ts_ms": committed_ms + rng.random_range(3..40),
        "transaction": null
    });
    if with_schema {
        json!({"schema": schema(), "payload": envelope})
    } else {
        envelope
    }
}

fn field(name: &str, kind: &str, optional: bool, logical: Option<&str>) -> Value {
    let mut field = json!({"type": kind, "optional": optional, "field": name});
    if let Some(logical) = logical {
        field["name"] = json!(logical);
        field["version"] = json!(1);
    }
    field
}

/// The JsonConverter's schema of the envelope (abridged `source`).
fn schema() -> Value {
    let row_fields = json!([
        field("id", "string", false, Some("io.debezium.data.Uuid")),
        field("aggregatetype", "string", false, None),
        field("aggregateid", "string", false, None),
        field("type", "string", false, None),
        field("payload", "string", true, Some("io.debezium.data.Json")),
        field("trace_id", "string", true, None),
        field("tracingspancontext", "string", true, None),
        field(
            "created_at",
            "int64",
            false,
            Some("io.debezium.time.MicroTimestamp")
        ),
    ]);
    let row = |name: &str| {
        json!({"type": "struct", "fields": row_fields, "optional": true,
               "name": "dbserver1.shop.outbox.Value", "field": name})
    };
    json!({
        "type": "struct",
        "fields": [
            row("before"),
            row("after"),
            {
                "type": "struct",
                "fields": [
                    field("version", "string", false, None),
                    field("connector", "string", false, None),
                    field("name", "string", false, None),
                    field("ts_ms", "int64", false, None),
                    field("db", "string", false, None),
                    field("schema", "string", false, None),
                    field("table", "string", false, None),
                    field("txId", "int64", true, None),
                    field("lsn", "int64", true, None),
                ],
                "optional": false,
                "name": "io.debezium.connector.postgresql.Source",
                "field": "source"
            },
            field("op", "string", false, None),
            field("ts_ms", "int64", true, None),
        ],
        "optional": false,
        "name": "dbserver1.shop.outbox.Envelope",
        "version": 2
    })
}
