//! Compensation integrity in the store (issue 16): each write of a saga row
//! stores the forward steps its own events leave uncompensated
//! (`project_sagas.rs`); here the learned-flow pass reads a type's latest
//! compensated sagas, and stores its judgement by the type's learned
//! step ↔ compensation pairs (`crates/flows`). The column
//! `missing_compensations` (migration 0015) is a JSON array of step names,
//! NULL when nothing is missing.

use sagascope_domain::{micros, CompensatedSteps};
use sagascope_model::Timestamp;
use sqlx::Row;

use crate::rows::projection_from_json;
use crate::{Result, Store, StoreError};

/// A compensated saga as the pass judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompensatedSaga {
    pub saga_id: String,
    pub steps: CompensatedSteps,
    /// What its row says is missing now.
    pub missing: Vec<String>,
}

/// The column's text of `missing`: None when nothing is.
fn column_text(missing: &[String]) -> Option<String> {
    (!missing.is_empty()).then(|| serde_json::to_string(missing).unwrap_or_default())
}

impl Store {
    /// The latest compensated sagas of `saga_type` (stated, by name or
    /// inferred by the sweep), at most `limit`, newest last event first.
    #[tracing::instrument(skip(self), err)]
    pub async fn compensated_sagas(
        &self,
        saga_type: &str,
        limit: usize,
    ) -> Result<Vec<CompensatedSaga>> {
        // `status = 'compensated'` as written in the partial index
        // sagas_compensated_by_type (SQLite matches its terms verbatim).
        let rows = sqlx::query(
            "SELECT saga_id, projection, missing_compensations FROM sagas \
             WHERE saga_type = $1 AND status = 'compensated' AND kind = 'saga' \
             ORDER BY last_event_at_us DESC LIMIT $2",
        )
        .bind(saga_type.to_string())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let projection = projection_from_json(&row.try_get::<String, _>("projection")?)?;
                let missing = match row.try_get::<Option<String>, _>("missing_compensations")? {
                    Some(text) => serde_json::from_str(&text)
                        .map_err(|e| StoreError::Corrupt(format!("missing compensations: {e}")))?,
                    None => Vec::new(),
                };
                Ok(CompensatedSaga {
                    saga_id: row.try_get("saga_id")?,
                    steps: CompensatedSteps::of(&projection),
                    missing,
                })
            })
            .collect()
    }

    /// Stores what is missing for each saga (empty: nothing), where the
    /// saga is still compensated; returns how many rows changed. Bumps
    /// `version`, as every change of what a saga shows does (the ingest's
    /// cached row, the timeline's ETag).
    #[tracing::instrument(skip_all, err, fields(sagas = changes.len()))]
    pub async fn set_missing_compensations(
        &self,
        changes: &[(String, Vec<String>)],
    ) -> Result<u64> {
        let mut changed = 0;
        for (saga_id, missing) in changes {
            changed += sqlx::query(
                "UPDATE sagas SET missing_compensations = $1, version = version + 1 \
                 WHERE saga_id = $2 AND status = 'compensated'",
            )
            .bind(column_text(missing))
            .bind(saga_id.clone())
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(changed)
    }

    /// Sagas flagged "incomplete compensation" that started at or after
    /// `since` (the overview's cohort): a read of the flagged rows only
    /// (sagas_incomplete_compensation), which are few.
    #[tracing::instrument(skip(self), err)]
    pub async fn count_incomplete_compensations(&self, since: Timestamp) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sagas WHERE missing_compensations IS NOT NULL \
             AND started_at_us >= $1",
        )
        .bind(micros(since))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
