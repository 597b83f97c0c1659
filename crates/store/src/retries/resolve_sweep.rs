//! The resolve sweep: a `retried` dead letter is `resolved` when its saga
//! got an event after the re-drive was acked ("saga progressed"), or when
//! it stayed `retried` for the resolve window without its copy coming back
//! (a copy that comes back makes it `failed_again` in the ingest). And the
//! clean-up of single retries whose process stopped before the broker
//! answered.

use sagascope_domain::micros;
use sagascope_model::{DeadLetterState, Timestamp};
use sqlx::{Any, Row, Transaction};

use super::{FAILED, PENDING, RETRY_CHUNK};
use crate::dead_letters::AnyQuery;
use crate::{placeholders, Result, Store};

/// The reason a dead letter whose saga moved on is resolved with.
pub const SAGA_PROGRESSED: &str = "saga progressed";

/// What one sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveReport {
    /// Resolved because their saga got an event after the re-drive.
    pub saga_progressed: u64,
    /// Resolved because the copy did not come back within the window.
    pub not_returned: u64,
}

/// Single retries found pending past their deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterruptedReport {
    pub attempts: u64,
}

/// The error an interrupted attempt keeps: the copy may have reached the
/// broker, so nothing re-drives it by itself.
pub const INTERRUPTED: &str =
    "interrupted: the process stopped before the broker answered; the copy may or may not have been produced";

impl Store {
    /// One pass of the sweep (see the module doc). `resolve_after` is the
    /// window, `window_text` its human form for the reason (`2m`).
    #[tracing::instrument(skip(self), err)]
    pub async fn resolve_retried(
        &self,
        now: Timestamp,
        resolve_after: std::time::Duration,
        window_text: &str,
    ) -> Result<ResolveReport> {
        let progressed_sql = "SELECT d.id FROM dead_letters d WHERE d.state = 'retried' AND d.linked_saga_id IS NOT NULL \
             AND EXISTS (SELECT 1 FROM events e WHERE e.saga_id = d.linked_saga_id AND e.ingested_at_us > d.state_changed_at_us) \
             LIMIT $1";
        let saga_progressed = self
            .resolve_in_chunks(progressed_sql, None, SAGA_PROGRESSED, now)
            .await?;
        let window = chrono::Duration::from_std(resolve_after).unwrap_or(chrono::Duration::MAX);
        let cutoff = micros(now - window);
        let returned_sql = "SELECT d.id FROM dead_letters d WHERE d.state = 'retried' AND d.state_changed_at_us < $2 LIMIT $1";
        let not_returned = self
            .resolve_in_chunks(
                returned_sql,
                Some(cutoff),
                &format!("did not return within {window_text}"),
                now,
            )
            .await?;
        Ok(ResolveReport {
            saga_progressed,
            not_returned,
        })
    }

    /// Resolves the ids `select_sql` finds, a chunk per transaction, until
    /// it finds none. Each update is a compare-and-set from `retried`, so a
    /// copy that came back meanwhile keeps its `failed_again`.
    async fn resolve_in_chunks(
        &self,
        select_sql: &str,
        cutoff: Option<i64>,
        reason: &str,
        now: Timestamp,
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let mut query: AnyQuery<'_> = sqlx::query(select_sql).bind(RETRY_CHUNK as i64);
            if let Some(cutoff) = cutoff {
                query = query.bind(cutoff);
            }
            let ids: Vec<String> = query
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            let changed = Store::set_dead_letter_states_in(
                &mut tx,
                &ids,
                &[DeadLetterState::Retried],
                DeadLetterState::Resolved,
                Some(reason),
                now,
            )
            .await?;
            tx.commit().await?;
            total += changed.len() as u64;
            if ids.len() < RETRY_CHUNK || changed.is_empty() {
                return Ok(total);
            }
        }
    }

    /// Single retries still pending from before `stale_before` (their
    /// process stopped before the ack; a live one answers within the
    /// producer's delivery timeout): failed as interrupted, their dead
    /// letters back to `new`, their keys released. Jobs handle their own
    /// (see `claim_retry_job`).
    #[tracing::instrument(skip(self), err)]
    pub async fn recover_interrupted_retries(
        &self,
        stale_before: Timestamp,
        now: Timestamp,
    ) -> Result<InterruptedReport> {
        let mut tx = self.begin_write().await?;
        let attempts: Vec<(String, String)> = sqlx::query(
            "SELECT id, dead_letter_id FROM retry_attempts WHERE outcome = $1 AND job_id IS NULL \
             AND requested_at_us < $2 LIMIT $3",
        )
        .bind(PENDING)
        .bind(micros(stale_before))
        .bind(RETRY_CHUNK as i64)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("dead_letter_id")?)))
        .collect::<Result<_>>()?;
        Store::interrupt_attempts_in(&mut tx, &attempts, now).await?;
        tx.commit().await?;
        Ok(InterruptedReport {
            attempts: attempts.len() as u64,
        })
    }

    /// (attempt id, dead letter id) pairs: attempts failed as interrupted,
    /// dead letters `retry_requested → new`, request keys released.
    pub(crate) async fn interrupt_attempts_in(
        tx: &mut Transaction<'_, Any>,
        attempts: &[(String, String)],
        now: Timestamp,
    ) -> Result<()> {
        for chunk in attempts.chunks(RETRY_CHUNK) {
            let sql = format!(
                "UPDATE retry_attempts SET outcome = $1, error = $2 WHERE outcome = $3 AND id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .persistent(chunk.len() == RETRY_CHUNK)
                .bind(FAILED)
                .bind(INTERRUPTED)
                .bind(PENDING);
            for (attempt, _) in chunk {
                query = query.bind(attempt.clone());
            }
            query.execute(&mut **tx).await?;
            let sql = format!(
                "DELETE FROM retry_requests WHERE attempt_id IN ({})",
                placeholders(0, chunk.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql);
            for (attempt, _) in chunk {
                query = query.bind(attempt.clone());
            }
            query.execute(&mut **tx).await?;
            let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            Store::set_dead_letter_states_in(
                tx,
                &ids,
                &[DeadLetterState::RetryRequested],
                DeadLetterState::New,
                Some(INTERRUPTED),
                now,
            )
            .await?;
        }
        Ok(())
    }
}
