//! Reading jobs and attempts back.

use sagascope_model::{RetryAttemptView, RetryJobView};

use super::rows::{attempt_from_row, job_from_row, ATTEMPT_COLUMNS, JOB_COLUMNS};
use crate::{Result, Store};

/// Most attempts listed for one dead letter.
const MAX_ATTEMPTS: i64 = 1000;

impl Store {
    /// One bulk job with its progress.
    #[tracing::instrument(skip(self), err)]
    pub async fn retry_job(&self, id: &str) -> Result<Option<RetryJobView>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM retry_jobs WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    /// The newest `limit` bulk jobs, newest first. Jobs whose audit entry
    /// was never written (see `release_retry_job`) are not listed.
    #[tracing::instrument(skip(self), err)]
    pub async fn retry_jobs(&self, limit: u32) -> Result<Vec<RetryJobView>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM retry_jobs WHERE released = 1 \
             ORDER BY created_at_us DESC, id DESC LIMIT $1"
        );
        sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
    }

    /// Every re-drive of a dead letter, oldest first, each with the dead
    /// letter its copy came back as (if it did).
    #[tracing::instrument(skip(self), err)]
    pub async fn retry_attempts_of(&self, dead_letter_id: &str) -> Result<Vec<RetryAttemptView>> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM retry_attempts a WHERE a.dead_letter_id = $1 \
             ORDER BY a.requested_at_us, a.id LIMIT $2"
        );
        sqlx::query(&sql)
            .bind(dead_letter_id.to_string())
            .bind(MAX_ATTEMPTS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_from_row)
            .collect()
    }

    /// One attempt.
    #[tracing::instrument(skip(self), err)]
    pub async fn retry_attempt(&self, attempt_id: &str) -> Result<Option<RetryAttemptView>> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM retry_attempts a WHERE a.id = $1");
        sqlx::query(&sql)
            .bind(attempt_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(attempt_from_row)
            .transpose()
    }
}
