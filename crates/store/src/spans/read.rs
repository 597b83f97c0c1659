//! A trace's spans, and the trace ids of a saga.

use sagascope_model::SpanView;
use sqlx::Row;

use super::{span_from_row, SPAN_COLUMNS};
use crate::{Result, Store};

impl Store {
    /// The trace's spans ordered by start then span id, at most `limit`;
    /// true when there are more.
    #[tracing::instrument(skip(self), err)]
    pub async fn trace_spans(&self, trace_id: &str, limit: usize) -> Result<(Vec<SpanView>, bool)> {
        let trace_id = trace_id.trim().to_ascii_lowercase();
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let sql = format!(
            "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = $1 ORDER BY start_us, span_id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(trace_id)
            .bind(fetch)
            .fetch_all(&self.pool)
            .await?;
        let truncated = rows.len() > limit;
        let spans = rows
            .iter()
            .take(limit)
            .map(span_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((spans, truncated))
    }

    /// The trace ids of the saga's events in the order they first appear;
    /// None when no saga (or stream) has that id. An id merged into
    /// another instance resolves to it, as the saga page does.
    #[tracing::instrument(skip(self), err)]
    pub async fn saga_trace_ids(&self, saga_id: &str) -> Result<Option<Vec<String>>> {
        let Some(row) = sqlx::query(
            "SELECT saga_id FROM sagas WHERE saga_id = $1 \
             OR saga_id = (SELECT saga_id FROM saga_keys WHERE search_key = $1 AND kind = 'merged' LIMIT 1) \
             ORDER BY CASE WHEN saga_id = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(saga_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let saga_id: String = row.try_get("saga_id")?;
        let rows = sqlx::query(
            "SELECT trace_id, MIN(occurred_at_us) AS first_at FROM events \
             WHERE saga_id = $1 AND trace_id IS NOT NULL \
             GROUP BY trace_id ORDER BY first_at, trace_id",
        )
        .bind(saga_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("trace_id").map_err(Into::into))
            .collect::<Result<Vec<String>>>()
            .map(Some)
    }
}
