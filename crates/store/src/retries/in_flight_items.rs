//! Items a stopped runner left in flight — claimed, their copies maybe
//! produced, the broker's answer never recorded — and how the runner that
//! takes the job over settles them once it has read the target topics
//! (`sagascope-redrive`'s copy finder): a copy found there is recorded as
//! produced, at its partition and offset; one that is not there was never
//! produced, so the item goes back to pending and is produced again. Each
//! dead letter of a job is copied once, even across a SIGKILL.

use sagascope_domain::{from_micros, micros};
use sagascope_model::{DeadLetterState, Timestamp};
use sqlx::Row;

use super::finish_attempts::AttemptResult;
use super::{FAILED, IN_FLIGHT, PENDING, PRODUCED};
use crate::dead_letters::AnyQuery;
use crate::{placeholders, Result, Store};

/// The error an attempt keeps whose copy was not on the target topic
/// after its runner stopped: its item is produced again, by a new attempt.
pub const NOT_PRODUCED: &str =
    "interrupted: the process stopped before the copy reached the broker; produced again";

/// An item left in flight, with what its copy carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightItem {
    pub position: i64,
    pub dead_letter_id: String,
    pub attempt_id: String,
    pub target_topic: String,
    /// The copy's `x-retry-count`.
    pub retry_count: u32,
    /// When it was claimed: its copy, if any, was produced after.
    pub requested_at: Timestamp,
}

impl Store {
    /// The items of `job_id` in flight, in order.
    #[tracing::instrument(skip(self), err)]
    pub async fn in_flight_job_items(&self, job_id: &str) -> Result<Vec<InFlightItem>> {
        sqlx::query(
            "SELECT i.position, i.dead_letter_id, i.attempt_id, a.target_topic, a.retry_count, a.requested_at_us \
             FROM retry_job_items i JOIN retry_attempts a ON a.id = i.attempt_id \
             WHERE i.job_id = $1 AND i.status = $2 ORDER BY i.position",
        )
        .bind(job_id.to_string())
        .bind(IN_FLIGHT)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let retry_count: i64 = row.try_get("retry_count")?;
            Ok(InFlightItem {
                position: row.try_get("position")?,
                dead_letter_id: row.try_get("dead_letter_id")?,
                attempt_id: row.try_get("attempt_id")?,
                target_topic: row.try_get("target_topic")?,
                retry_count: u32::try_from(retry_count).unwrap_or(0),
                requested_at: from_micros(row.try_get("requested_at_us")?),
            })
        })
        .collect()
    }

    /// Settles in-flight items of `job_id` for its runner, in one
    /// transaction: `found` (their copies' coordinates) as produced,
    /// `not_found` back to pending with their dead letters back to `new`,
    /// to be claimed again. False, changing nothing, when the job is no
    /// longer this runner's.
    #[tracing::instrument(skip(self, found, not_found), fields(found = found.len(), not_found = not_found.len()), err)]
    pub async fn settle_in_flight_items(
        &self,
        job_id: &str,
        runner: &str,
        found: &[AttemptResult],
        not_found: &[InFlightItem],
        state_reason: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let ours = sqlx::query("SELECT 1 FROM retry_jobs WHERE id = $1 AND runner = $2")
            .bind(job_id.to_string())
            .bind(runner.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !ours {
            tx.rollback().await?;
            return Ok(false);
        }
        // A few hundred rows a statement, as the chunks that claimed them.
        for chunk in found.chunks(super::RETRY_CHUNK / 2) {
            Store::finish_attempts_in(&mut tx, chunk, state_reason, at).await?;
            let sql = format!(
                "UPDATE retry_job_items SET status = $2 WHERE job_id = $1 AND status = $3 AND attempt_id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .persistent(chunk.len() == super::RETRY_CHUNK / 2)
                .bind(job_id.to_string())
                .bind(PRODUCED)
                .bind(IN_FLIGHT);
            for result in chunk {
                query = query.bind(result.attempt_id.clone());
            }
            let n = query.execute(&mut *tx).await?.rows_affected();
            sqlx::query("UPDATE retry_jobs SET produced = produced + $2 WHERE id = $1")
                .bind(job_id.to_string())
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        for chunk in not_found.chunks(super::RETRY_CHUNK) {
            let sql = format!(
                "UPDATE retry_attempts SET outcome = $1, error = $2 WHERE outcome = $3 AND id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .persistent(chunk.len() == super::RETRY_CHUNK)
                .bind(FAILED)
                .bind(NOT_PRODUCED)
                .bind(PENDING);
            for item in chunk {
                query = query.bind(item.attempt_id.clone());
            }
            query.execute(&mut *tx).await?;
            let ids: Vec<String> = chunk.iter().map(|i| i.dead_letter_id.clone()).collect();
            Store::set_dead_letter_states_in(
                &mut tx,
                &ids,
                &[DeadLetterState::RetryRequested],
                DeadLetterState::New,
                Some(NOT_PRODUCED),
                at,
            )
            .await?;
            let sql = format!(
                "UPDATE retry_job_items SET status = $2, attempt_id = NULL WHERE job_id = $1 AND status = $3 \
                 AND position IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .bind(job_id.to_string())
                .bind(PENDING)
                .bind(IN_FLIGHT);
            for item in chunk {
                query = query.bind(item.position);
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE retry_jobs SET heartbeat_at_us = $3 WHERE id = $1 AND runner = $2")
            .bind(job_id.to_string())
            .bind(runner.to_string())
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
