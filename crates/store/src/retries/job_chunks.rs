//! A job's run, a chunk (a few hundred items) at a time: take the next
//! pending items, claim the retryable ones (`new → retry_requested` plus
//! their attempt rows; the others are skipped) in one transaction, and,
//! once the broker answered, record every answer and the job's counters in
//! one more.

use std::collections::HashMap;

use sagascope_domain::micros;
use sagascope_model::{DeadLetterState, Timestamp, RETRYABLE_STATES};
use sqlx::Row;

use super::finish_attempts::{first_columns, values_rows, AttemptResult};
use super::{ClaimedRetry, FAILED, IN_FLIGHT, PENDING, PRODUCED, SKIPPED};
use crate::dead_letters::AnyQuery;
use crate::{placeholders, Result, Store, StoreError};

/// What a re-drive produces from a dead letter: its bytes as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPayload {
    pub id: String,
    pub dlq_topic: String,
    pub original_topic: Option<String>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// In the order received, byte-exact.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The dead letter's own `x-retry-count` (0 if it had none).
    pub retry_count: u32,
    pub state: DeadLetterState,
}

/// One pending item of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobItem {
    pub position: i64,
    pub dead_letter_id: String,
}

/// An item the runner wants to claim: its attempt id and target, or None
/// when it has no target (it is skipped).
#[derive(Debug, Clone)]
pub struct ChunkClaim {
    pub position: i64,
    pub dead_letter_id: String,
    pub attempt_id: String,
    pub target_topic: Option<String>,
    /// The `x-retry-count` to produce.
    pub retry_count: u32,
}

/// What a chunk claim got: the claimed ones, and how many were skipped
/// (no longer retryable, or no target). None of it when the runner lost
/// its lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimedChunk {
    pub claimed: Vec<ClaimedRetry>,
    pub skipped: u64,
}

impl Store {
    /// The dead letters' bytes (those of `ids` that exist).
    #[tracing::instrument(skip(self, ids), fields(ids = ids.len()), err)]
    pub async fn retry_payloads(&self, ids: &[String]) -> Result<Vec<RetryPayload>> {
        let mut payloads = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::RETRY_CHUNK) {
            let sql = format!(
                "SELECT id, dlq_topic, original_topic, message_key, message_value, headers, retry_count, state \
                 FROM dead_letters WHERE id IN ({})",
                placeholders(0, chunk.len())
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == super::RETRY_CHUNK);
            for id in chunk {
                query = query.bind(id.clone());
            }
            for row in query.fetch_all(&self.pool).await? {
                let headers: String = row.try_get("headers")?;
                let retry_count: i64 = row.try_get("retry_count")?;
                let state: String = row.try_get("state")?;
                payloads.push(RetryPayload {
                    id: row.try_get("id")?,
                    dlq_topic: row.try_get("dlq_topic")?,
                    original_topic: row.try_get("original_topic")?,
                    key: row.try_get("message_key")?,
                    value: row.try_get("message_value")?,
                    headers: Store::dead_letter_headers_of(&headers)?,
                    retry_count: u32::try_from(retry_count).unwrap_or(0),
                    state: DeadLetterState::parse(&state).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown dead-letter state `{state}`"))
                    })?,
                });
            }
        }
        Ok(payloads)
    }

    /// The next `limit` pending items of a job, in order.
    #[tracing::instrument(skip(self), err)]
    pub async fn pending_job_items(&self, job_id: &str, limit: usize) -> Result<Vec<JobItem>> {
        sqlx::query(
            "SELECT position, dead_letter_id FROM retry_job_items WHERE job_id = $1 AND status = $2 \
             ORDER BY position LIMIT $3",
        )
        .bind(job_id.to_string())
        .bind(PENDING)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(JobItem {
                position: row.try_get("position")?,
                dead_letter_id: row.try_get("dead_letter_id")?,
            })
        })
        .collect()
    }

    /// The status of one item of a job (`pending`, `in_flight`, `produced`,
    /// `failed`, `skipped`) and its attempt.
    #[tracing::instrument(skip(self), err)]
    pub async fn job_item_status(
        &self,
        job_id: &str,
        dead_letter_id: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT status, attempt_id FROM retry_job_items WHERE job_id = $1 AND dead_letter_id = $2 \
             ORDER BY position LIMIT 1",
        )
        .bind(job_id.to_string())
        .bind(dead_letter_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.try_get("status")?, row.try_get("attempt_id")?)))
            .transpose()
    }

    /// Claims a chunk of a job's pending items for `runner` (see the
    /// module doc). Returns None, claiming nothing, when the job is no
    /// longer active or no longer this runner's.
    #[tracing::instrument(skip(self, items), fields(items = items.len()), err)]
    pub async fn claim_job_chunk(
        &self,
        job_id: &str,
        runner: &str,
        actor: &str,
        reason: &str,
        items: &[ChunkClaim],
        at: Timestamp,
    ) -> Result<Option<ClaimedChunk>> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT 1 FROM retry_jobs WHERE id = $1 AND runner = $2 AND {}",
            super::jobs::ACTIVE_JOB_STATES
        );
        let ours = sqlx::query(&sql)
            .bind(job_id.to_string())
            .bind(runner.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !ours || items.is_empty() {
            tx.rollback().await?;
            return Ok(ours.then(ClaimedChunk::default));
        }
        let wanted: Vec<String> = items
            .iter()
            .filter(|i| i.target_topic.is_some())
            .map(|i| i.dead_letter_id.clone())
            .collect();
        let won: std::collections::HashSet<String> = Store::set_dead_letter_states_in(
            &mut tx,
            &wanted,
            &RETRYABLE_STATES,
            DeadLetterState::RetryRequested,
            Some(&format!("bulk retry {job_id} requested by {actor}")),
            at,
        )
        .await?
        .into_iter()
        .collect();
        let claimed: Vec<&ChunkClaim> = items
            .iter()
            .filter(|i| i.target_topic.is_some() && won.contains(&i.dead_letter_id))
            .collect();
        if !claimed.is_empty() {
            // What the rows share is bound once: binding is a good part of
            // a chunk's cost.
            const SHARED: usize = 5;
            const PER_ROW: usize = 4;
            let rows: Vec<String> = (0..claimed.len())
                .map(|i| {
                    let p = SHARED + i * PER_ROW;
                    format!(
                        "(${}, ${}, $1, NULL, $2, $3, $4, ${}, ${}, $5)",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO retry_attempts (id, dead_letter_id, job_id, idempotency_key, actor, reason, requested_at_us, \
                 target_topic, retry_count, outcome) VALUES {}",
                rows.join(", ")
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .bind(job_id.to_string())
                .bind(actor.to_string())
                .bind(reason.to_string())
                .bind(micros(at))
                .bind(PENDING);
            for item in &claimed {
                query = query
                    .bind(item.attempt_id.clone())
                    .bind(item.dead_letter_id.clone())
                    .bind(item.target_topic.clone().unwrap_or_default())
                    .bind(i64::from(item.retry_count));
            }
            query.execute(&mut *tx).await?;
            let sql = format!(
                "UPDATE retry_job_items SET status = $2, attempt_id = v.column2 FROM (VALUES {}) AS v \
                 WHERE retry_job_items.job_id = $1 AND retry_job_items.position = v.column1 \
                 AND retry_job_items.position IN ({})",
                values_rows(2, claimed.len(), 2),
                first_columns(2, claimed.len(), 2)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).bind(job_id.to_string()).bind(IN_FLIGHT);
            for item in &claimed {
                query = query.bind(item.position).bind(item.attempt_id.clone());
            }
            query.execute(&mut *tx).await?;
        }
        let skipped: Vec<i64> = items
            .iter()
            .filter(|i| i.target_topic.is_none() || !won.contains(&i.dead_letter_id))
            .map(|i| i.position)
            .collect();
        if !skipped.is_empty() {
            let sql = format!(
                "UPDATE retry_job_items SET status = $2 WHERE job_id = $1 AND status = $3 AND position IN ({})",
                placeholders(3, skipped.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .bind(job_id.to_string())
                .bind(SKIPPED)
                .bind(PENDING);
            for position in &skipped {
                query = query.bind(*position);
            }
            let n = query.execute(&mut *tx).await?.rows_affected();
            sqlx::query("UPDATE retry_jobs SET skipped = skipped + $2 WHERE id = $1")
                .bind(job_id.to_string())
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(ClaimedChunk {
            claimed: claimed
                .iter()
                .map(|i| ClaimedRetry {
                    attempt_id: i.attempt_id.clone(),
                    dead_letter_id: i.dead_letter_id.clone(),
                    target_topic: i.target_topic.clone().unwrap_or_default(),
                    retry_count: i.retry_count,
                })
                .collect(),
            skipped: skipped.len() as u64,
        }))
    }

    /// Records the broker's answers for a claimed chunk: attempts, dead
    /// letters, items and the job's counters, in one transaction; renews
    /// the runner's heartbeat.
    #[tracing::instrument(skip(self, results), fields(results = results.len()), err)]
    pub async fn finish_job_chunk(
        &self,
        job_id: &str,
        runner: &str,
        results: &[AttemptResult],
        state_reason: &str,
        at: Timestamp,
    ) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        Store::finish_attempts_in(&mut tx, results, state_reason, at).await?;
        let statuses: HashMap<&str, &str> = results
            .iter()
            .map(|r| {
                (
                    r.attempt_id.as_str(),
                    if r.is_produced() { PRODUCED } else { FAILED },
                )
            })
            .collect();
        for status in [PRODUCED, FAILED] {
            let ids: Vec<&str> = statuses
                .iter()
                .filter(|(_, s)| **s == status)
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let sql = format!(
                "UPDATE retry_job_items SET status = $2 WHERE job_id = $1 AND status = $3 AND attempt_id IN ({})",
                placeholders(3, ids.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .bind(job_id.to_string())
                .bind(status)
                .bind(IN_FLIGHT);
            for id in &ids {
                query = query.bind(id.to_string());
            }
            let n = query.execute(&mut *tx).await?.rows_affected();
            // The column name is one of two fixed words.
            let column = if status == PRODUCED {
                "produced"
            } else {
                "failed"
            };
            sqlx::query(&format!(
                "UPDATE retry_jobs SET {column} = {column} + $2 WHERE id = $1"
            ))
            .bind(job_id.to_string())
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE retry_jobs SET heartbeat_at_us = $3 WHERE id = $1 AND runner = $2")
            .bind(job_id.to_string())
            .bind(runner.to_string())
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
