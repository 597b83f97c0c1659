//! State changes of a dead letter, for the re-drive and discard actions.

use sagascope_domain::micros;
use sagascope_model::{DeadLetterState, Timestamp};

use super::states_sql;
use crate::{Result, Store};

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
}
