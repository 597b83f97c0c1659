//! Bulk retry jobs: creation freezes the set (the ids of the retryable
//! dead letters the filter matches, in the order they will be re-driven)
//! in the same transaction; a job is run by one process at a time under a
//! lease (runner + heartbeat), so a job left by a crashed process is
//! resumed by the next one that looks (which first settles the items the
//! crashed one left in flight, see `in_flight_items.rs`); stopping
//! (cancel, failure) skips what was not produced yet.

use sagascope_domain::micros;
use sagascope_model::{DlqQuery, RetryJobState, RetryJobView, Timestamp};
use sqlx::{Any, Row, Transaction};

use super::preview::retryable;
use super::rows::{job_from_row, job_state, JOB_COLUMNS};
use super::{IN_FLIGHT, PENDING, SKIPPED};
use crate::dead_letters::{filter_conditions, where_clause, AnyQuery, Bind, Binds};
use crate::{Result, Store, StoreError};

/// `state IN ('pending', 'canary', 'running')`.
pub(crate) const ACTIVE_JOB_STATES: &str = "state IN ('pending', 'canary', 'running')";

/// A bulk retry to create.
#[derive(Debug, Clone)]
pub struct NewRetryJob<'a> {
    pub id: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub actor: &'a str,
    pub reason: &'a str,
    /// The validated filter (its states are replaced by the retryable ones).
    pub query: &'a DlqQuery,
    /// The filter as a query string, shown with the job and compared for
    /// idempotency.
    pub filter: &'a str,
    pub canary: bool,
    pub canary_wait_s: u32,
    pub throttle_per_s: Option<u32>,
    /// Refuse unless the frozen set has exactly this many.
    pub expected_count: Option<u64>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobCreation {
    /// Created, not yet released to the runners (see
    /// [`Store::release_retry_job`]).
    Created(RetryJobView),
    /// The idempotency key made this job before.
    Replayed(RetryJobView),
    /// Nothing was created: the set is not what the operator confirmed.
    CountMismatch {
        expected: u64,
        actual: u64,
    },
    /// Nothing matches.
    Empty,
    KeyUsedElsewhere {
        target: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    Cancelled(RetryJobView),
    /// Already completed, cancelled or failed.
    Finished(RetryJobView),
    NotFound,
}

/// A job a runner took: its view and what the runner needs beyond it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub job: RetryJobView,
    pub canary_wait_s: u32,
    /// Items that were in flight when a previous runner stopped: their
    /// copies may or may not have been produced, so the runner settles
    /// them by what the target topics hold before it goes on
    /// ([`Store::settle_in_flight_items`]).
    pub interrupted: u64,
}

async fn job_in(tx: &mut Transaction<'_, Any>, id: &str) -> Result<Option<RetryJobView>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM retry_jobs WHERE id = $1");
    sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose()
}

impl Store {
    /// Creates a job and freezes its set in one transaction (see
    /// [`JobCreation`]). The job waits, unreleased, until its audit entry
    /// is written.
    #[tracing::instrument(skip(self, job), fields(job_id = job.id, filter = job.filter), err)]
    pub async fn create_retry_job(&self, job: &NewRetryJob<'_>) -> Result<JobCreation> {
        let mut tx = self.begin_write().await?;
        if let Some(key) = job.idempotency_key {
            let inserted = sqlx::query(
                "INSERT INTO retry_requests (idempotency_key, kind, target, job_id, actor, created_at_us) \
                 VALUES ($1, 'bulk', $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(key.to_string())
            .bind(job.filter.to_string())
            .bind(job.id.to_string())
            .bind(job.actor.to_string())
            .bind(micros(job.at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let row = sqlx::query(
                    "SELECT kind, target, job_id FROM retry_requests WHERE idempotency_key = $1",
                )
                .bind(key.to_string())
                .fetch_one(&mut *tx)
                .await?;
                let kind: String = row.try_get("kind")?;
                let target: String = row.try_get("target")?;
                let job_id: Option<String> = row.try_get("job_id")?;
                let answer = match job_id {
                    Some(id) if kind == "bulk" && target == job.filter => {
                        match job_in(&mut tx, &id).await? {
                            Some(view) => JobCreation::Replayed(view),
                            None => {
                                return Err(StoreError::Corrupt(format!(
                                    "retry request names missing job {id}"
                                )))
                            }
                        }
                    }
                    _ => JobCreation::KeyUsedElsewhere { target },
                };
                tx.rollback().await?;
                return Ok(answer);
            }
        }

        // Oldest first: a key's copies go back in their original order.
        let query = retryable(job.query);
        let mut binds = Binds::default();
        let job_param = binds.push(Bind::Text(job.id.to_string()));
        let conditions = filter_conditions(&query, &mut binds);
        let sql = format!(
            "INSERT INTO retry_job_items (job_id, position, dead_letter_id, status) \
             SELECT {job_param}, ROW_NUMBER() OVER (ORDER BY dead_lettered_at_us, id) - 1, id, '{PENDING}' \
             FROM dead_letters {}",
            where_clause(&conditions)
        );
        let statement: AnyQuery<'_> = binds.apply(sqlx::query(&sql));
        let total = statement.execute(&mut *tx).await?.rows_affected();
        if total == 0 {
            tx.rollback().await?;
            return Ok(JobCreation::Empty);
        }
        if let Some(expected) = job.expected_count.filter(|e| *e != total) {
            tx.rollback().await?;
            return Ok(JobCreation::CountMismatch {
                expected,
                actual: total,
            });
        }
        let canary_id: Option<String> = if job.canary {
            sqlx::query_scalar(
                "SELECT dead_letter_id FROM retry_job_items WHERE job_id = $1 AND position = 0",
            )
            .bind(job.id.to_string())
            .fetch_optional(&mut *tx)
            .await?
        } else {
            None
        };
        sqlx::query(
            "INSERT INTO retry_jobs (id, idempotency_key, created_at_us, actor, reason, filter, state, canary, \
             canary_wait_s, canary_id, throttle_per_s, total, released) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)",
        )
        .bind(job.id.to_string())
        .bind(job.idempotency_key.map(str::to_string))
        .bind(micros(job.at))
        .bind(job.actor.to_string())
        .bind(job.reason.to_string())
        .bind(job.filter.to_string())
        .bind(RetryJobState::Pending.as_str())
        .bind(i64::from(job.canary))
        .bind(i64::from(job.canary_wait_s))
        .bind(canary_id)
        .bind(job.throttle_per_s.map(i64::from))
        .bind(i64::try_from(total).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        let view = job_in(&mut tx, job.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("job {} vanished", job.id)))?;
        tx.commit().await?;
        Ok(JobCreation::Created(view))
    }

    /// Lets runners take the job (its audit entry is written).
    #[tracing::instrument(skip(self), err)]
    pub async fn release_retry_job(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE retry_jobs SET released = 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a job that was never released (its audit entry could not be
    /// written): as if it had never been asked for.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_unreleased_retry_job(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM retry_jobs WHERE id = $1 AND released = 0")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            for sql in [
                "DELETE FROM retry_job_items WHERE job_id = $1",
                "DELETE FROM retry_requests WHERE job_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Takes the oldest released active job that no live runner holds
    /// (never run, released by its runner, or another runner's heartbeat
    /// is older than `stale_before`) for `runner`. Items left in flight by
    /// an earlier runner stay in flight, counted in `interrupted`: whether
    /// their copies reached the broker is unknown until the runner looked.
    #[tracing::instrument(skip(self), err)]
    pub async fn claim_retry_job(
        &self,
        runner: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Option<ClaimedJob>> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT id, canary_wait_s FROM retry_jobs WHERE released = 1 AND {ACTIVE_JOB_STATES} \
             AND (runner IS NULL OR (runner <> $2 AND heartbeat_at_us < $1)) ORDER BY created_at_us, id LIMIT 1"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(micros(stale_before))
            .bind(runner.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let wait: i64 = row.try_get("canary_wait_s")?;
        sqlx::query(
            "UPDATE retry_jobs SET runner = $2, heartbeat_at_us = $3, started_at_us = COALESCE(started_at_us, $3) \
             WHERE id = $1",
        )
        .bind(id.clone())
        .bind(runner.to_string())
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        let interrupted: i64 =
            sqlx::query("SELECT COUNT(*) FROM retry_job_items WHERE job_id = $1 AND status = $2")
                .bind(id.clone())
                .bind(IN_FLIGHT)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let job = job_in(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))?;
        tx.commit().await?;
        Ok(Some(ClaimedJob {
            job,
            canary_wait_s: u32::try_from(wait).unwrap_or(0),
            interrupted: u64::try_from(interrupted).unwrap_or(0),
        }))
    }

    /// Gives the job back (its runner stops before the job is done, e.g.
    /// at shutdown): the next runner that looks takes it at once.
    #[tracing::instrument(skip(self), err)]
    pub async fn release_retry_job_lease(&self, id: &str, runner: &str) -> Result<()> {
        sqlx::query("UPDATE retry_jobs SET runner = NULL WHERE id = $1 AND runner = $2")
            .bind(id.to_string())
            .bind(runner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Renews `runner`'s lease on the job; answers the job's state, or
    /// None when the lease is someone else's (the runner must stop).
    #[tracing::instrument(skip(self), err)]
    pub async fn heartbeat_retry_job(
        &self,
        id: &str,
        runner: &str,
        now: Timestamp,
    ) -> Result<Option<RetryJobState>> {
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE retry_jobs SET heartbeat_at_us = $3 WHERE id = $1 AND runner = $2 RETURNING state",
        )
        .bind(id.to_string())
        .bind(runner.to_string())
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        state.as_deref().map(job_state).transpose()
    }

    /// Compare-and-set of a job's state (canary → running, running →
    /// completed), by its runner.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_retry_job_state(
        &self,
        id: &str,
        runner: &str,
        from: RetryJobState,
        to: RetryJobState,
        at: Timestamp,
    ) -> Result<bool> {
        let finished = (!to.is_active()).then_some(micros(at));
        let changed = sqlx::query(
            "UPDATE retry_jobs SET state = $4, finished_at_us = COALESCE($5, finished_at_us) \
             WHERE id = $1 AND runner = $2 AND state = $3",
        )
        .bind(id.to_string())
        .bind(runner.to_string())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(finished)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Stops an active job as `to` (cancelled or failed) with `message`;
    /// the items not yet taken are skipped. Items in flight finish and
    /// count as they come back. None when the job is not active (or does
    /// not exist).
    #[tracing::instrument(skip(self), err)]
    pub async fn stop_retry_job(
        &self,
        id: &str,
        to: RetryJobState,
        message: &str,
        at: Timestamp,
    ) -> Result<Option<RetryJobView>> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE retry_jobs SET state = $2, message = $3, finished_at_us = $4 WHERE id = $1 AND {ACTIVE_JOB_STATES}"
        );
        let changed = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(to.as_str())
            .bind(message.to_string())
            .bind(micros(at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let skipped =
            sqlx::query("UPDATE retry_job_items SET status = $3 WHERE job_id = $1 AND status = $2")
                .bind(id.to_string())
                .bind(PENDING)
                .bind(SKIPPED)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("UPDATE retry_jobs SET skipped = skipped + $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(i64::try_from(skipped).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        let view = job_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// An operator's cancel: the job stops between two chunks.
    #[tracing::instrument(skip(self), err)]
    pub async fn cancel_retry_job(
        &self,
        id: &str,
        actor: &str,
        at: Timestamp,
    ) -> Result<CancelOutcome> {
        let message = format!("cancelled by {actor}");
        if let Some(view) = self
            .stop_retry_job(id, RetryJobState::Cancelled, &message, at)
            .await?
        {
            return Ok(CancelOutcome::Cancelled(view));
        }
        Ok(match self.retry_job(id).await? {
            Some(view) => CancelOutcome::Finished(view),
            None => CancelOutcome::NotFound,
        })
    }
}
