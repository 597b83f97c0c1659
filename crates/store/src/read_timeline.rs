//! One saga with its timeline, in one statement: the saga row (an id that
//! was merged into another instance resolves to the winner) and its events
//! in timeline order (event time, then id), read from one snapshot because
//! it is one statement — no transaction, no isolation level to set.
//!
//! Two outputs of the same rows:
//! - [`Store::saga_detail`]: the typed [`SagaDetail`] (pages, live updates);
//! - [`Store::saga_timeline_json`]: the API's JSON body, written straight
//!   from the rows. The scalar fields go through serde as [`SagaDetail`]'s
//!   would; `payload` and `headers` are copied as the stored JSON text
//!   (written by the ingest from a `serde_json::Value` and a `Vec<Header>`,
//!   so already valid JSON of those shapes) instead of being parsed and
//!   serialised again per event.
//!
//! Each comes with an ETag ([`Store::saga_timeline_etag`] reads it alone,
//! for `If-None-Match`, with one primary-key lookup).

use sagascope_domain::from_micros;
use sagascope_model::{Phase, SagaDetail, Timestamp};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::rows::{summary_from_row, timeline_event_from_row};
use crate::{Result, Store, StoreError};

/// The saga row `$1` names: itself, else the instance it was merged into.
const RESOLVED_SAGA: &str = "SELECT saga_id, status, projection, version, event_count, last_event_at_us, inferred_from, missing_compensations FROM sagas \
     WHERE saga_id = $1 \
     OR saga_id = (SELECT saga_id FROM saga_keys WHERE search_key = $1 AND kind = 'merged' LIMIT 1) \
     ORDER BY CASE WHEN saga_id = $1 THEN 0 ELSE 1 END LIMIT 1";

/// The generation is read with a default: a database whose
/// `read_model_generation` row was removed (a benchmark's reset truncates
/// every table) must still answer, not fail on the saga row.
///
/// The saga row first (`part` 0, event columns NULL), then its events
/// (`part` 1) in timeline order, which `events_by_saga` (saga_id,
/// occurred_at_us, event_id) yields as stored.
fn timeline_sql() -> String {
    format!(
        "WITH target AS ({RESOLVED_SAGA}) \
         SELECT CAST(0 AS BIGINT) AS part, t.saga_id, t.status, t.projection, t.version, t.event_count, t.last_event_at_us, t.inferred_from, t.missing_compensations, \
         COALESCE((SELECT MAX(generation) FROM read_model_generation), 0) AS generation, \
         NULL AS event_id, NULL AS phase, NULL AS step, NULL AS event_type, NULL AS occurred_at_us, NULL AS published_at_us, \
         NULL AS ingested_at_us, NULL AS topic, NULL AS kafka_partition, NULL AS kafka_offset, NULL AS trace_id, NULL AS span_id, \
         NULL AS headers, NULL AS payload, NULL AS error \
         FROM target t \
         UNION ALL \
         SELECT CAST(1 AS BIGINT), e.saga_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         e.event_id, e.phase, e.step, e.event_type, e.occurred_at_us, e.published_at_us, \
         e.ingested_at_us, e.topic, e.kafka_partition, e.kafka_offset, e.trace_id, e.span_id, \
         e.headers, e.payload, e.error \
         FROM events e WHERE e.saga_id = (SELECT saga_id FROM target) \
         ORDER BY part, occurred_at_us, event_id"
    )
}

/// A saga's timeline as the API's JSON body, with its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaTimelineJson {
    /// A strong validator, quoted: `"…"`.
    pub etag: String,
    /// A [`SagaDetail`] as JSON.
    pub body: String,
}

impl Store {
    /// The saga with its events in timeline order (event time, then id).
    #[tracing::instrument(skip(self), err)]
    pub async fn saga_detail(&self, saga_id: &str) -> Result<Option<SagaDetail>> {
        let rows = self.timeline_rows(saga_id).await?;
        let Some((saga_row, event_rows)) = rows.split_first() else {
            return Ok(None);
        };
        Ok(Some(SagaDetail {
            saga: summary_from_row(saga_row)?,
            events: event_rows
                .iter()
                .map(timeline_event_from_row)
                .collect::<Result<_>>()?,
        }))
    }

    /// [`Store::saga_detail`] as JSON text, with the ETag of that state.
    #[tracing::instrument(skip(self), err)]
    pub async fn saga_timeline_json(&self, saga_id: &str) -> Result<Option<SagaTimelineJson>> {
        let rows = self.timeline_rows(saga_id).await?;
        let Some((saga_row, event_rows)) = rows.split_first() else {
            return Ok(None);
        };
        let etag = etag_from_row(saga_row)?;
        let mut body = serde_json::to_string(&summary_from_row(saga_row)?).map_err(corrupt)?;
        // `SagaDetail` flattens the summary: its fields, then `events`.
        body.pop();
        body.push_str(",\"events\":[");
        for (i, row) in event_rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            write_event(&mut body, row)?;
        }
        body.push_str("]}");
        Ok(Some(SagaTimelineJson { etag, body }))
    }

    /// The ETag [`Store::saga_timeline_json`] would give now, from the saga
    /// row alone; None when no saga has that id.
    #[tracing::instrument(skip(self), err)]
    pub async fn saga_timeline_etag(&self, saga_id: &str) -> Result<Option<String>> {
        let sql = format!(
            "WITH target AS ({RESOLVED_SAGA}) \
             SELECT t.saga_id, t.status, t.version, t.event_count, t.last_event_at_us, \
             COALESCE((SELECT MAX(generation) FROM read_model_generation), 0) AS generation \
             FROM target t"
        );
        sqlx::query(&sql)
            .bind(saga_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(etag_from_row)
            .transpose()
    }

    async fn timeline_rows(&self, saga_id: &str) -> Result<Vec<AnyRow>> {
        Ok(sqlx::query(&timeline_sql())
            .bind(saga_id.to_string())
            .fetch_all(&self.pool)
            .await?)
    }
}

/// The ETag of a saga row. Whatever the timeline shows changes with one of
/// these: new events and merges rewrite the row (its `version` goes up), the
/// stall sweep bumps `version` with the status, a reprojection bumps the
/// store's `generation` (it re-inserts rows from version 1), and the
/// resolved id tells a merged id's winner apart from the row it named
/// before. The event count and last event time guard the one remaining way
/// to a repeated version: a saga deleted by retention and created again.
fn etag_from_row(row: &AnyRow) -> Result<String> {
    let saga_id: String = row.try_get("saga_id")?;
    let status: String = row.try_get("status")?;
    let version: i64 = row.try_get("version")?;
    let event_count: i64 = row.try_get("event_count")?;
    let last_event_at_us: i64 = row.try_get("last_event_at_us")?;
    let generation: i64 = row.try_get("generation")?;
    Ok(format!(
        "\"{generation:x}.{version:x}.{event_count:x}.{last_event_at_us:x}.{:016x}\"",
        fnv1a(&[saga_id.as_bytes(), b"\0", status.as_bytes()])
    ))
}

/// FNV-1a, 64 bits: stable across builds and processes (replicas must
/// agree), unlike `std`'s `DefaultHasher`.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The fields of [`sagascope_model::TimelineEvent`] except `headers` and
/// `payload`, with the same names and serde shapes.
/// Read by both the typed detail (`rows.rs`) and the JSON body here.
#[derive(Serialize)]
pub(crate) struct EventScalars {
    pub(crate) event_id: String,
    pub(crate) saga_id: String,
    pub(crate) phase: Phase,
    pub(crate) step: Option<String>,
    pub(crate) event_type: String,
    pub(crate) occurred_at: Timestamp,
    pub(crate) published_at: Option<Timestamp>,
    pub(crate) ingested_at: Timestamp,
    pub(crate) topic: String,
    pub(crate) partition: i64,
    pub(crate) offset: i64,
    pub(crate) trace_id: Option<String>,
    pub(crate) span_id: Option<String>,
    pub(crate) error: Option<String>,
}

impl EventScalars {
    pub(crate) fn from_row(row: &AnyRow) -> Result<EventScalars> {
        let phase_text: String = row.try_get("phase")?;
        Ok(EventScalars {
            event_id: row.try_get("event_id")?,
            saga_id: row.try_get("saga_id")?,
            phase: Phase::parse(&phase_text)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown phase {phase_text}")))?,
            step: row.try_get("step")?,
            event_type: row.try_get("event_type")?,
            occurred_at: from_micros(row.try_get("occurred_at_us")?),
            published_at: row
                .try_get::<Option<i64>, _>("published_at_us")?
                .map(from_micros),
            ingested_at: from_micros(row.try_get("ingested_at_us")?),
            topic: row.try_get("topic")?,
            partition: row.try_get("kafka_partition")?,
            offset: row.try_get("kafka_offset")?,
            trace_id: row.try_get("trace_id")?,
            span_id: row.try_get("span_id")?,
            error: row.try_get("error")?,
        })
    }
}

/// One event as a JSON object: the scalars through serde, then the stored
/// `headers` and `payload` text as they are.
fn write_event(out: &mut String, row: &AnyRow) -> Result<()> {
    let scalars = EventScalars::from_row(row)?;
    let headers: &str = row.try_get("headers")?;
    let payload: &str = row.try_get("payload")?;
    out.push_str(&serde_json::to_string(&scalars).map_err(corrupt)?);
    out.pop();
    out.push_str(",\"headers\":");
    out.push_str(headers);
    out.push_str(",\"payload\":");
    out.push_str(payload);
    out.push('}');
    Ok(())
}

fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("timeline JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), fnv1a(&[b"foobar"]));
    }
}
