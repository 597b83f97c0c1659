//! Spans received over OTLP (`sagascope-spans` decodes them): written as
//! idempotent upserts keyed by (trace id, span id), read back per trace in
//! waterfall order with a limit, and removed in bounded batches — all of
//! them past the retention age, and sooner those of traces that no saga
//! event carries (`retention.rs`).

mod read;
pub(crate) mod retention;
mod write;

use sagascope_domain::{from_micros, micros};
use sagascope_model::{SpanKind, SpanStatus, SpanView};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

pub(crate) const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, name, service, kind, \
     start_us, end_us, duration_us, status, status_message, attributes, events";

pub(crate) fn span_from_row(row: &AnyRow) -> Result<SpanView> {
    let corrupt =
        |what: &str, error: serde_json::Error| StoreError::Corrupt(format!("span {what}: {error}"));
    let attributes: String = row.try_get("attributes")?;
    let events: String = row.try_get("events")?;
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(SpanView {
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        parent_span_id: row.try_get("parent_span_id")?,
        name: row.try_get("name")?,
        service: row.try_get("service")?,
        kind: SpanKind::parse(&kind),
        start: from_micros(row.try_get("start_us")?),
        end: from_micros(row.try_get("end_us")?),
        duration_us: row.try_get("duration_us")?,
        status: SpanStatus::parse(&status),
        status_message: row.try_get("status_message")?,
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt("attributes", e))?,
        events: serde_json::from_str(&events).map_err(|e| corrupt("events", e))?,
    })
}

/// The row values of a span, in [`SPAN_COLUMNS`] order.
pub(crate) struct SpanRow<'a> {
    pub span: &'a SpanView,
    pub start_us: i64,
    pub end_us: i64,
    pub attributes: String,
    pub events: String,
}

impl<'a> SpanRow<'a> {
    pub(crate) fn new(span: &'a SpanView) -> SpanRow<'a> {
        SpanRow {
            span,
            start_us: micros(span.start),
            end_us: micros(span.end),
            attributes: serde_json::to_string(&span.attributes).unwrap_or_else(|_| "[]".into()),
            events: serde_json::to_string(&span.events).unwrap_or_else(|_| "[]".into()),
        }
    }
}
