//! State changes of a dead letter, for the re-drive and discard actions,
//! and the row mappers the re-drive records (`crate::retries`) share with
//! the dead-letter reads.

use sagascope_domain::micros;
use sagascope_model::{DeadLetterState, DeadLetterSummary, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::{headers_from_json, summary_from_row, SUMMARY_COLUMNS};
use super::{states_sql, AnyQuery};
use crate::{placeholders, Result, Store};

impl Store {
    /// Compare-and-set: moves dead letter `id` to `to` only if it is in one
    /// of `from` right now; returns whether it changed. Two operators (or
    /// two replicas) acting on one dead letter cannot both win.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_dead_letter_state(
        &self,
        id: &str,
        from: &[DeadLetterState],
        to: DeadLetterState,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE dead_letters SET state = $1, state_changed_at_us = $2, state_reason = $3 WHERE id = $4 AND {}",
            states_sql(from)
        );
        let result = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(micros(at))
            .bind(reason.map(str::to_string))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// [`Store::set_dead_letter_state`] for many dead letters in one
    /// statement of the caller's transaction (at most a few hundred ids):
    /// returns the ids that changed, so a bulk re-drive claims exactly the
    /// ones still in `from`.
    pub(crate) async fn set_dead_letter_states_in(
        tx: &mut Transaction<'_, Any>,
        ids: &[String],
        from: &[DeadLetterState],
        to: DeadLetterState,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Result<Vec<String>> {
        if ids.is_empty() || from.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE dead_letters SET state = $1, state_changed_at_us = $2, state_reason = $3 \
             WHERE id IN ({}) AND {} RETURNING id",
            placeholders(3, ids.len()),
            states_sql(from)
        );
        let mut query: AnyQuery<'_> = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(micros(at))
            .bind(reason.map(str::to_string));
        for id in ids {
            query = query.bind(id.clone());
        }
        query
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| Ok(row.try_get::<String, _>(0)?))
            .collect()
    }

    /// Columns [`Store::dead_letter_summary_of`] reads.
    pub(crate) const DEAD_LETTER_SUMMARY_COLUMNS: &'static str = SUMMARY_COLUMNS;

    pub(crate) fn dead_letter_summary_of(row: &AnyRow) -> Result<DeadLetterSummary> {
        summary_from_row(row)
    }

    /// The stored headers column, byte-exact and in order.
    pub(crate) fn dead_letter_headers_of(text: &str) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        headers_from_json(text)
    }
}
