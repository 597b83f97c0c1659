//! Recording what the broker said about re-driven copies, for one attempt
//! or a chunk of hundreds in one transaction: produced ones get their
//! partition and offset and their dead letter becomes `retried`; refused
//! ones keep the error, their dead letter goes back to `new` and their
//! idempotency key is released (the same key may try again).

use std::collections::BTreeMap;

use sagascope_domain::micros;
use sagascope_model::{DeadLetterState, Timestamp};
use sqlx::{Any, Transaction};

use super::{FAILED, PENDING, PRODUCED};
use crate::dead_letters::AnyQuery;
use crate::{placeholders, Result, Store};

/// The broker's answer for one re-driven copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub attempt_id: String,
    pub dead_letter_id: String,
    /// (partition, offset) of the acked copy, or the producer's error.
    pub result: std::result::Result<(i32, i64), String>,
}

impl AttemptResult {
    pub fn is_produced(&self) -> bool {
        self.result.is_ok()
    }
}

/// `(VALUES ($a, $b), ($c, $d), …)` with `columns` placeholders per row
/// after `offset`. Both backends name the columns `column1`, `column2`, …
pub(crate) fn values_rows(offset: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", placeholders(offset + i * columns, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placeholders of the first column of [`values_rows`], for an
/// `IN (…)` beside the join: it lets Postgres find the rows by index
/// instead of hashing the VALUES against the whole table.
pub(crate) fn first_columns(offset: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|i| format!("${}", offset + i * columns + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Records `results` (at most a few hundred) in the caller's
    /// transaction. `state_reason` is what the `retried` dead letters show.
    pub(crate) async fn finish_attempts_in(
        tx: &mut Transaction<'_, Any>,
        results: &[AttemptResult],
        state_reason: &str,
        at: Timestamp,
    ) -> Result<()> {
        let produced: Vec<(&AttemptResult, i32, i64)> = results
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|(p, o)| (r, *p, *o)))
            .collect();
        if !produced.is_empty() {
            let sql = format!(
                "UPDATE retry_attempts SET outcome = $1, produced_at_us = $2, \
                 kafka_partition = v.column2, kafka_offset = v.column3 \
                 FROM (VALUES {}) AS v WHERE retry_attempts.id = v.column1 AND retry_attempts.outcome = $3 \
                 AND retry_attempts.id IN ({})",
                values_rows(3, produced.len(), 3),
                first_columns(3, produced.len(), 3)
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .bind(PRODUCED)
                .bind(micros(at))
                .bind(PENDING);
            for (r, partition, offset) in &produced {
                query = query
                    .bind(r.attempt_id.clone())
                    .bind(i64::from(*partition))
                    .bind(*offset);
            }
            query.execute(&mut **tx).await?;
            let ids: Vec<String> = produced
                .iter()
                .map(|(r, _, _)| r.dead_letter_id.clone())
                .collect();
            Store::set_dead_letter_states_in(
                tx,
                &ids,
                &[DeadLetterState::RetryRequested],
                DeadLetterState::Retried,
                Some(state_reason),
                at,
            )
            .await?;
        }
        // Refusals usually share one error (the broker is down): one
        // statement per distinct error.
        let mut failed: BTreeMap<&str, Vec<&AttemptResult>> = BTreeMap::new();
        for r in results {
            if let Err(error) = &r.result {
                failed.entry(error.as_str()).or_default().push(r);
            }
        }
        for (error, attempts) in failed {
            let attempt_ids: Vec<String> = attempts.iter().map(|r| r.attempt_id.clone()).collect();
            let sql = format!(
                "UPDATE retry_attempts SET outcome = $1, error = $2 WHERE outcome = $3 AND id IN ({})",
                placeholders(3, attempt_ids.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql)
                .bind(FAILED)
                .bind(error.to_string())
                .bind(PENDING);
            for id in &attempt_ids {
                query = query.bind(id.clone());
            }
            query.execute(&mut **tx).await?;
            let sql = format!(
                "DELETE FROM retry_requests WHERE attempt_id IN ({})",
                placeholders(0, attempt_ids.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql);
            for id in &attempt_ids {
                query = query.bind(id.clone());
            }
            query.execute(&mut **tx).await?;
            let ids: Vec<String> = attempts.iter().map(|r| r.dead_letter_id.clone()).collect();
            Store::set_dead_letter_states_in(
                tx,
                &ids,
                &[DeadLetterState::RetryRequested],
                DeadLetterState::New,
                Some(&format!("re-drive failed: {error}")),
                at,
            )
            .await?;
        }
        Ok(())
    }
}
