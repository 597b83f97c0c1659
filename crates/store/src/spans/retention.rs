//! Removing spans in bounded batches: each call deletes at most
//! `batch_size` rows in its own short statement, so a large backlog never
//! holds a long lock; the retention loop calls again until it gets 0.

use sagascope_domain::micros;
use sagascope_model::Timestamp;

use crate::{Result, Store};

impl Store {
    /// Deletes up to `batch_size` spans received before `cutoff`, oldest
    /// first; how many went.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_spans_before(&self, cutoff: Timestamp, batch_size: usize) -> Result<u64> {
        let result = sqlx::query(
            "DELETE FROM spans WHERE (trace_id, span_id) IN ( \
             SELECT trace_id, span_id FROM spans WHERE received_at_us < $1 \
             ORDER BY received_at_us LIMIT $2)",
        )
        .bind(micros(cutoff))
        .bind(i64::try_from(batch_size).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Deletes up to `batch_size` spans received before `cutoff` whose
    /// trace id no saga event carries: spans are kept for the traces of
    /// sagas, and only for a bounded window for the rest (their saga event
    /// may still be on its way through Kafka when they arrive). An event's
    /// trace id is a search key of its saga, so `saga_keys` answers.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_unmatched_spans_before(
        &self,
        cutoff: Timestamp,
        batch_size: usize,
    ) -> Result<u64> {
        let result = sqlx::query(
            "DELETE FROM spans WHERE (trace_id, span_id) IN ( \
             SELECT s.trace_id, s.span_id FROM spans s WHERE s.received_at_us < $1 \
             AND NOT EXISTS (SELECT 1 FROM saga_keys k WHERE k.search_key = s.trace_id) \
             ORDER BY s.received_at_us LIMIT $2)",
        )
        .bind(micros(cutoff))
        .bind(i64::try_from(batch_size).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}
