//! Retry rows ↔ API shapes.

use sagascope_domain::from_micros;
use sagascope_model::{RetryAttemptView, RetryJobState, RetryJobView};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

pub(crate) const JOB_COLUMNS: &str =
    "id, created_at_us, actor, reason, filter, state, canary, canary_id, \
     throttle_per_s, total, produced, failed, skipped, started_at_us, finished_at_us, message";

/// The attempt's columns, and the dead letter its copy came back as: the
/// one whose `x-retry-of` names the attempt's dead letter with the retry
/// count this attempt produced (only a produced copy can come back).
pub(crate) const ATTEMPT_COLUMNS: &str = "a.id, a.dead_letter_id, a.job_id, a.actor, a.reason, a.requested_at_us, \
     a.target_topic, a.retry_count, a.outcome, a.kafka_partition, a.kafka_offset, a.produced_at_us, a.error, \
     (SELECT d.id FROM dead_letters d WHERE d.retry_of = a.dead_letter_id AND d.retry_count = a.retry_count \
      AND a.outcome = 'produced' ORDER BY d.dead_lettered_at_us, d.id LIMIT 1) AS came_back_as";

fn count(row: &AnyRow, column: &str) -> Result<u64> {
    let n: i64 = row.try_get(column)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn job_state(text: &str) -> Result<RetryJobState> {
    RetryJobState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown retry job state `{text}`")))
}

pub(crate) fn job_from_row(row: &AnyRow) -> Result<RetryJobView> {
    let state: String = row.try_get("state")?;
    let canary: i64 = row.try_get("canary")?;
    let throttle: Option<i64> = row.try_get("throttle_per_s")?;
    Ok(RetryJobView {
        id: row.try_get("id")?,
        created_at: from_micros(row.try_get("created_at_us")?),
        actor: row.try_get("actor")?,
        reason: row.try_get("reason")?,
        filter: row.try_get("filter")?,
        state: job_state(&state)?,
        canary: canary != 0,
        canary_id: row.try_get("canary_id")?,
        throttle_per_s: throttle.and_then(|t| u32::try_from(t).ok()),
        total: count(row, "total")?,
        produced: count(row, "produced")?,
        failed: count(row, "failed")?,
        skipped: count(row, "skipped")?,
        started_at: row
            .try_get::<Option<i64>, _>("started_at_us")?
            .map(from_micros),
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at_us")?
            .map(from_micros),
        message: row.try_get("message")?,
    })
}

pub(crate) fn attempt_from_row(row: &AnyRow) -> Result<RetryAttemptView> {
    let retry_count: i64 = row.try_get("retry_count")?;
    let partition: Option<i64> = row.try_get("kafka_partition")?;
    Ok(RetryAttemptView {
        id: row.try_get("id")?,
        dead_letter_id: row.try_get("dead_letter_id")?,
        job_id: row.try_get("job_id")?,
        actor: row.try_get("actor")?,
        reason: row.try_get("reason")?,
        requested_at: from_micros(row.try_get("requested_at_us")?),
        target_topic: row.try_get("target_topic")?,
        retry_count: u32::try_from(retry_count).unwrap_or(u32::MAX),
        outcome: row.try_get("outcome")?,
        partition: partition.and_then(|p| i32::try_from(p).ok()),
        offset: row.try_get("kafka_offset")?,
        produced_at: row
            .try_get::<Option<i64>, _>("produced_at_us")?
            .map(from_micros),
        error: row.try_get("error")?,
        came_back_as: row.try_get("came_back_as")?,
    })
}
