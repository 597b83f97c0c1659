//! One retry: the idempotency key is claimed, the dead letter moves
//! `new → retry_requested` and its attempt row is written, all in one
//! transaction; the broker's answer is recorded afterwards.

use sagascope_domain::{from_micros, micros};
use sagascope_model::{DeadLetterState, RetryOutcome, Timestamp, RETRYABLE_STATES};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::finish_attempts::AttemptResult;
use super::{FAILED, PENDING, PRODUCED};
use crate::dead_letters::states_sql;
use crate::{Result, Store, StoreError};

/// What a retry request asks for. The caller (the re-drive service) has
/// resolved the target topic and made the attempt id.
#[derive(Debug, Clone)]
pub struct NewRetry<'a> {
    pub dead_letter_id: &'a str,
    pub idempotency_key: &'a str,
    pub attempt_id: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
    pub target_topic: &'a str,
    pub at: Timestamp,
}

/// A claimed re-drive, ready to be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRetry {
    pub attempt_id: String,
    pub dead_letter_id: String,
    pub target_topic: String,
    /// The `x-retry-count` to produce: the dead letter's own plus one.
    pub retry_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RetryClaim {
    /// Ours to produce.
    Claimed(ClaimedRetry),
    /// The key was used before for this dead letter: its outcome, marked
    /// `replayed`.
    Replayed(RetryOutcome),
    /// The first request with this key is still waiting for the broker.
    InFlight {
        attempt_id: String,
    },
    /// The key was used for another target (a dead letter id or a bulk
    /// filter).
    KeyUsedElsewhere {
        target: String,
    },
    NotFound,
    /// Not in a retryable state (nothing was claimed).
    NotRetryable(DeadLetterState),
}

/// The outcome an attempt row stands for.
fn outcome_of(row: &AnyRow, replayed: bool) -> Result<RetryOutcome> {
    let outcome: String = row.try_get("outcome")?;
    let state = match outcome.as_str() {
        PRODUCED => DeadLetterState::Retried,
        PENDING => DeadLetterState::RetryRequested,
        FAILED => DeadLetterState::New,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown attempt outcome `{other}`"
            )))
        }
    };
    let retry_count: i64 = row.try_get("retry_count")?;
    let partition: Option<i64> = row.try_get("kafka_partition")?;
    Ok(RetryOutcome {
        dead_letter_id: row.try_get("dead_letter_id")?,
        attempt_id: row.try_get("id")?,
        state,
        target_topic: row.try_get("target_topic")?,
        partition: partition.and_then(|p| i32::try_from(p).ok()),
        offset: row.try_get("kafka_offset")?,
        retry_count: u32::try_from(retry_count).unwrap_or(u32::MAX),
        produced_at: row
            .try_get::<Option<i64>, _>("produced_at_us")?
            .map(from_micros),
        replayed,
    })
}

const OUTCOME_COLUMNS: &str = "id, dead_letter_id, outcome, target_topic, kafka_partition, kafka_offset, retry_count, produced_at_us";

async fn attempt_outcome(
    tx: &mut Transaction<'_, Any>,
    attempt_id: &str,
    replayed: bool,
) -> Result<Option<RetryOutcome>> {
    let sql = format!("SELECT {OUTCOME_COLUMNS} FROM retry_attempts WHERE id = $1");
    sqlx::query(&sql)
        .bind(attempt_id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(|row| outcome_of(row, replayed))
        .transpose()
}

impl Store {
    /// Claims a retry (see the module doc). Nothing is kept unless the
    /// answer is [`RetryClaim::Claimed`].
    #[tracing::instrument(skip(self, retry), fields(dead_letter_id = retry.dead_letter_id, attempt_id = retry.attempt_id), err)]
    pub async fn claim_retry(&self, retry: &NewRetry<'_>) -> Result<RetryClaim> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO retry_requests (idempotency_key, kind, target, attempt_id, actor, created_at_us) \
             VALUES ($1, 'single', $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(retry.idempotency_key.to_string())
        .bind(retry.dead_letter_id.to_string())
        .bind(retry.attempt_id.to_string())
        .bind(retry.actor.to_string())
        .bind(micros(retry.at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Postgres: the INSERT waited for the first claim to commit, so
            // this read sees it. SQLite: BEGIN IMMEDIATE serialised us.
            let row = sqlx::query(
                "SELECT kind, target, attempt_id FROM retry_requests WHERE idempotency_key = $1",
            )
            .bind(retry.idempotency_key.to_string())
            .fetch_one(&mut *tx)
            .await?;
            let kind: String = row.try_get("kind")?;
            let target: String = row.try_get("target")?;
            let attempt_id: Option<String> = row.try_get("attempt_id")?;
            let answer = match attempt_id {
                Some(attempt_id) if kind == "single" && target == retry.dead_letter_id => {
                    match attempt_outcome(&mut tx, &attempt_id, true).await? {
                        Some(outcome) if outcome.state == DeadLetterState::RetryRequested => {
                            RetryClaim::InFlight { attempt_id }
                        }
                        Some(outcome) => RetryClaim::Replayed(outcome),
                        None => {
                            return Err(StoreError::Corrupt(format!(
                                "retry request names missing attempt {attempt_id}"
                            )))
                        }
                    }
                }
                _ => RetryClaim::KeyUsedElsewhere { target },
            };
            tx.rollback().await?;
            return Ok(answer);
        }

        let sql = format!(
            "UPDATE dead_letters SET state = $1, state_changed_at_us = $2, state_reason = $3 \
             WHERE id = $4 AND {} RETURNING retry_count",
            states_sql(&RETRYABLE_STATES)
        );
        let claimed = sqlx::query(&sql)
            .bind(DeadLetterState::RetryRequested.as_str())
            .bind(micros(retry.at))
            .bind(format!("retry requested by {}", retry.actor))
            .bind(retry.dead_letter_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(claimed) = claimed else {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM dead_letters WHERE id = $1")
                    .bind(retry.dead_letter_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            tx.rollback().await?;
            return Ok(match state {
                None => RetryClaim::NotFound,
                Some(text) => {
                    RetryClaim::NotRetryable(DeadLetterState::parse(&text).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown dead-letter state `{text}`"))
                    })?)
                }
            });
        };
        let previous: i64 = claimed.try_get("retry_count")?;
        let retry_count = u32::try_from(previous.max(0) + 1).unwrap_or(u32::MAX);
        sqlx::query(
            "INSERT INTO retry_attempts (id, dead_letter_id, job_id, idempotency_key, actor, reason, requested_at_us, \
             target_topic, retry_count, outcome) VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(retry.attempt_id.to_string())
        .bind(retry.dead_letter_id.to_string())
        .bind(retry.idempotency_key.to_string())
        .bind(retry.actor.to_string())
        .bind(retry.reason.to_string())
        .bind(micros(retry.at))
        .bind(retry.target_topic.to_string())
        .bind(i64::from(retry_count))
        .bind(PENDING)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RetryClaim::Claimed(ClaimedRetry {
            attempt_id: retry.attempt_id.to_string(),
            dead_letter_id: retry.dead_letter_id.to_string(),
            target_topic: retry.target_topic.to_string(),
            retry_count,
        }))
    }

    /// Records the broker's answer for one claimed retry and returns its
    /// outcome: `retried` with partition and offset, or back to `new` with
    /// the key released.
    #[tracing::instrument(skip(self, result), fields(attempt_id = %result.attempt_id, produced = result.is_produced()), err)]
    pub async fn finish_retry(
        &self,
        result: &AttemptResult,
        state_reason: &str,
        at: Timestamp,
    ) -> Result<RetryOutcome> {
        let mut tx = self.begin_write().await?;
        Store::finish_attempts_in(&mut tx, std::slice::from_ref(result), state_reason, at).await?;
        let outcome = attempt_outcome(&mut tx, &result.attempt_id, false)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("attempt {} vanished", result.attempt_id))
            })?;
        tx.commit().await?;
        Ok(outcome)
    }
}
