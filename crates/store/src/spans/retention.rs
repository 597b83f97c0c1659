//! Removing spans in bounded batches: each call deletes at most
//! `batch_size` rows in its own short statement, so a large backlog never
//! holds a long lock; the retention loop calls again until it gets 0.

use sagascope_domain::micros;
use sagascope_model::Timestamp;

use crate::{Result, Store};

/// Up to `$2` spans received before `$1`, oldest first: one range of
/// `spans_by_received`.
pub(crate) const OLD_SPANS_SQL: &str = "DELETE FROM spans WHERE (trace_id, span_id) IN ( \
     SELECT trace_id, span_id FROM spans WHERE received_at_us < $1 \
     ORDER BY received_at_us LIMIT $2)";

/// Up to `$3` spans received in [`$1`, `$2`) whose trace id is no saga's
/// search key, oldest first: one range of `spans_by_received`. Without
/// the lower bound every sweep would walk again all the spans of sagas
/// older than the window (kept until the retention by age), a range that
/// grows with the history kept.
pub(crate) const UNMATCHED_SPANS_SQL: &str = "DELETE FROM spans WHERE (trace_id, span_id) IN ( \
     SELECT s.trace_id, s.span_id FROM spans s WHERE s.received_at_us >= $1 AND s.received_at_us < $2 \
     AND NOT EXISTS (SELECT 1 FROM saga_keys k WHERE k.search_key = s.trace_id) \
     ORDER BY s.received_at_us LIMIT $3)";

impl Store {
    /// Deletes up to `batch_size` spans received before `cutoff`, oldest
    /// first; how many went.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_spans_before(&self, cutoff: Timestamp, batch_size: usize) -> Result<u64> {
        let result = sqlx::query(OLD_SPANS_SQL)
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
    /// Walks every span received before `cutoff`: a periodic sweep uses
    /// [`Store::delete_unmatched_spans_received_between`].
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_unmatched_spans_before(
        &self,
        cutoff: Timestamp,
        batch_size: usize,
    ) -> Result<u64> {
        self.delete_unmatched_spans_received_between(None, cutoff, batch_size)
            .await
    }

    /// [`Store::delete_unmatched_spans_before`] over the spans received
    /// from `since` (None: the first ever) until `cutoff`: a sweep that
    /// remembers how far it has checked reads only the spans received
    /// since, however many spans of sagas are kept.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_unmatched_spans_received_between(
        &self,
        since: Option<Timestamp>,
        cutoff: Timestamp,
        batch_size: usize,
    ) -> Result<u64> {
        let result = sqlx::query(UNMATCHED_SPANS_SQL)
            .bind(since.map_or(i64::MIN, micros))
            .bind(micros(cutoff))
            .bind(i64::try_from(batch_size).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
