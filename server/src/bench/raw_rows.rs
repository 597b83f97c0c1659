//! What the raw-load baselines write: the decoded events as rows of the
//! `events` table, each column typed as the store binds it, so Postgres'
//! COPY and SQLite's bulk INSERT load exactly the rows the ingest stores
//! (and the ratio compares like with like).

use std::time::Duration;

use sagascope_domain::{micros, SagaEvent};

/// The scratch table both baselines load: shaped like `events`, without
/// its indexes and constraints.
pub const SCRATCH_TABLE: &str = "sagascope_bench_raw_events";

/// The `events` columns in the order of [`event_row`].
pub const COLUMNS: &str =
    "event_id, saga_id, saga_type, step, phase, event_type, trace_id, span_id, \
     request_id, occurred_at_us, published_at_us, ingested_at_us, source_type, source_id, topic, \
     kafka_partition, kafka_offset, headers, payload, error, explicit_saga_id, rule_classified, \
     business_keys";

pub const COLUMN_COUNT: usize = 23;

/// One column value, NULL as None.
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Cell {
    fn text(value: impl Into<String>) -> Cell {
        Cell::Text(Some(value.into()))
    }

    fn int(value: i64) -> Cell {
        Cell::Int(Some(value))
    }

    /// Bytes of the value as it travels (decimal digits for numbers).
    fn len(&self) -> usize {
        match self {
            Cell::Text(text) => text.as_ref().map_or(0, String::len),
            Cell::Int(n) => n.map_or(0, |n| n.to_string().len()),
        }
    }
}

pub type Row = [Cell; COLUMN_COUNT];

/// The event as the store writes it: JSON text for headers, payload and
/// business keys, microseconds for times.
pub fn event_row(e: &SagaEvent) -> Row {
    [
        Cell::text(e.event_id.as_str()),
        Cell::text(e.saga_id.as_str()),
        Cell::Text(e.saga_type.clone()),
        Cell::Text(e.step.clone()),
        Cell::text(e.phase.as_str()),
        Cell::text(e.event_type.as_str()),
        Cell::Text(e.trace_id.clone()),
        Cell::Text(e.span_id.clone()),
        Cell::Text(e.request_id.clone()),
        Cell::int(micros(e.occurred_at)),
        Cell::Int(e.published_at.map(micros)),
        Cell::int(micros(e.ingested_at)),
        Cell::Text(e.source_type.clone()),
        Cell::Text(e.source_id.clone()),
        Cell::text(e.coords.topic.as_str()),
        Cell::int(i64::from(e.coords.partition)),
        Cell::int(e.coords.offset),
        Cell::text(serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".into())),
        Cell::text(e.payload.to_string()),
        Cell::Text(e.error.clone()),
        Cell::Text(e.explicit_saga_id.clone()),
        Cell::int(i64::from(e.rule_classified)),
        Cell::text(serde_json::to_string(&e.business_keys).unwrap_or_else(|_| "[]".into())),
    ]
}

/// The size of the rows' values, for the MB figure beside a rate.
pub fn value_bytes(rows: &[Row]) -> u64 {
    rows.iter()
        .flat_map(|row| row.iter().map(Cell::len))
        .sum::<usize>() as u64
}

/// What one raw load measured.
pub struct RawRate {
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}
