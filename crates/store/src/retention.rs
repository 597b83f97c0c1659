//! Retention: old sagas with their events, old closed dead letters and old
//! ingest errors are deleted in bounded batches, one transaction each, so a
//! retention run never holds locks (or a SQLite write lock) for long and
//! the ingest keeps committing between batches. The caller loops until a
//! batch comes back short (`server/src/retention.rs`).
//!
//! What is removed, and what is kept on purpose:
//! - a saga (or an entity stream) whose *last event* is before the cutoff
//!   and that is over: ended (completed, failed, compensated, …), stalled,
//!   or a stream (streams never end). Running and compensating sagas stay
//!   however old they are: they may still move. With the saga go its
//!   events, search keys (`saga_keys`, including the ids merged into it)
//!   and correlation keys.
//! - the rollups (`saga_rollups`, `step_rollups`, `topic_rollups`,
//!   `histograms`) are not touched here: removing raw rows must not change
//!   the overview's counts. They have their own pruning, by grain, past
//!   what any overview window reads (`rollup_retention.rs`). (A later
//!   `reproject` rebuilds the saga rollups from the events still stored,
//!   so it forgets the removed sagas.)
//! - dead letters are removed only once closed (retried, resolved,
//!   failed_again, discarded) and dead-lettered before the cutoff; open
//!   ones (new, retry_requested) are never deleted, whatever their age or
//!   whether their saga is gone. Retry attempts, requests and jobs are
//!   kept as the operators' history, like the audit log.

use sagascope_domain::micros;
use sagascope_model::Timestamp;
use sqlx::Row;

use crate::{placeholders, Backend, Result, Store};

/// What one saga batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SagaRetentionBatch {
    /// Sagas and streams removed (at most the batch size).
    pub sagas: u64,
    /// Their events.
    pub events: u64,
}

/// Over and quiet since before `$1`: ended or stalled sagas, and streams.
/// The parenthesised term is the predicate of `sagas_over_by_last_event`
/// (migration 0012), written as it is there so both planners use it.
const QUIET_BEFORE: &str =
    "last_event_at_us < $1 AND (kind = 'stream' OR status NOT IN ('running', 'compensating'))";

/// Dead letters still waiting for an operator (never removed). `NOT (…)`
/// of it is the predicate of `dead_letters_closed_by_time` (migration 0012).
const OPEN_DEAD_LETTER: &str = "state IN ('new', 'retry_requested')";

/// Up to `$2` sagas over and quiet since before `$1`, oldest first: one
/// range of `sagas_over_by_last_event`, in its order.
pub(crate) fn quiet_sagas_sql(backend: Backend) -> String {
    // Two replicas running retention at once take different sagas, and
    // a saga the ingest is updating right now is left for next time.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "SELECT saga_id FROM sagas WHERE {QUIET_BEFORE} ORDER BY last_event_at_us, saga_id LIMIT $2{lock}"
    )
}

/// Up to `$2` closed dead letters dead-lettered before `$1`, oldest first:
/// one range of `dead_letters_closed_by_time`.
pub(crate) fn closed_dead_letters_sql() -> String {
    format!(
        "SELECT id FROM dead_letters WHERE dead_lettered_at_us < $1 AND NOT ({OPEN_DEAD_LETTER}) \
         ORDER BY dead_lettered_at_us, id LIMIT $2"
    )
}

/// Up to `$2` ingest errors ingested before `$1`, oldest first: one range
/// of `ingest_errors_by_ingested`.
pub(crate) const OLD_INGEST_ERRORS_SQL: &str = "SELECT id FROM ingest_errors \
     WHERE ingested_at_us < $1 ORDER BY ingested_at_us, id LIMIT $2";

// The dead letters and ingest errors of a batch are selected first, then
// deleted by their ids, as the sagas are: a `DELETE … WHERE id IN (SELECT
// … LIMIT n)` lets Postgres join the batch to the table with a hash join
// over a sequential scan, which its cost model prefers for a batch of
// 5,000 of a million rows (measured on Postgres 15), so every batch would
// read the whole table. A list of ids is looked up in the primary key.

impl Store {
    /// Removes up to `batch_size` sagas (and streams) that are over and
    /// whose last event is before `cutoff`, with their events and keys, in
    /// one transaction, oldest first. A batch smaller than `batch_size`
    /// means nothing older is left. Rollups are not touched.
    #[tracing::instrument(skip(self), fields(backend = self.backend.name()), err)]
    pub async fn delete_sagas_ended_before(
        &self,
        cutoff: Timestamp,
        batch_size: u32,
    ) -> Result<SagaRetentionBatch> {
        let cutoff_us = micros(cutoff);
        let mut tx = self.begin_write().await?;
        let sql = quiet_sagas_sql(self.backend);
        let ids: Vec<String> = sqlx::query(&sql)
            .bind(cutoff_us)
            .bind(i64::from(batch_size.max(1)))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>("saga_id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(SagaRetentionBatch::default());
        }
        let list = placeholders(0, ids.len());
        let mut removed = SagaRetentionBatch::default();
        for table in ["events", "saga_keys", "correlation_keys", "sagas"] {
            let sql = format!("DELETE FROM {table} WHERE saga_id IN ({list})");
            let mut query = sqlx::query(&sql);
            for id in &ids {
                query = query.bind(id.clone());
            }
            let affected = query.execute(&mut *tx).await?.rows_affected();
            match table {
                "events" => removed.events = affected,
                "sagas" => removed.sagas = affected,
                _ => {}
            }
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes up to `batch_size` closed dead letters dead-lettered before
    /// `cutoff`, oldest first; returns how many. Open ones (new,
    /// retry_requested) are never removed.
    #[tracing::instrument(skip(self), fields(backend = self.backend.name()), err)]
    pub async fn delete_closed_dead_letters_before(
        &self,
        cutoff: Timestamp,
        batch_size: u32,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query(&closed_dead_letters_sql())
            .bind(micros(cutoff))
            .bind(i64::from(batch_size.max(1)))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
        let removed = if ids.is_empty() {
            0
        } else {
            // Not a letter re-opened since it was selected.
            let sql = format!(
                "DELETE FROM dead_letters WHERE id IN ({}) AND NOT ({OPEN_DEAD_LETTER})",
                placeholders(0, ids.len())
            );
            let mut query = sqlx::query(&sql);
            for id in ids {
                query = query.bind(id);
            }
            query.execute(&mut *tx).await?.rows_affected()
        };
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes up to `batch_size` ingest errors ingested before `cutoff`,
    /// oldest first; returns how many. Their counts stay in the rollups.
    #[tracing::instrument(skip(self), fields(backend = self.backend.name()), err)]
    pub async fn delete_ingest_errors_before(
        &self,
        cutoff: Timestamp,
        batch_size: u32,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query(OLD_INGEST_ERRORS_SQL)
            .bind(micros(cutoff))
            .bind(i64::from(batch_size.max(1)))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("id"))
            .collect::<Result<_, _>>()?;
        let removed = if ids.is_empty() {
            0
        } else {
            let sql = format!(
                "DELETE FROM ingest_errors WHERE id IN ({})",
                placeholders(0, ids.len())
            );
            let mut query = sqlx::query(&sql);
            for id in ids {
                query = query.bind(id);
            }
            query.execute(&mut *tx).await?.rows_affected()
        };
        tx.commit().await?;
        Ok(removed)
    }
}
