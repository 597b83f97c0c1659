//! `sagascope reproject`: rebuild every saga from the stored events under
//! (changed) rules. Each event is re-classified (when the rules classified
//! it: by a rule or the name defaults, so events stored by an older version
//! get today's defaults too) and re-correlated, then placed and projected
//! by the same code as the ingest, page by page in event-time order.
//!
//! It runs in one transaction, so readers keep the old sagas until the new
//! ones are complete (Postgres MVCC, SQLite WAL snapshots): the UI stays
//! online and never sees a half-built read model. Ingest writes wait for
//! the commit (its store retries absorb the pause) and lose nothing.

use std::time::{Duration, Instant};

use sagascope_domain::{Decoder, SagaEvent};
use sqlx::Row;

use crate::rollups::RollupDelta;
use crate::rows::{saga_event_from_row, FULL_EVENT_COLUMNS};
use crate::{Backend, Result, Store};

/// How far a reprojection has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReprojectProgress {
    pub events_done: u64,
    pub events_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReprojectReport {
    pub events: u64,
    /// Sagas (and non-saga streams) after the rebuild.
    pub sagas: u64,
    /// Instances merged because they share a correlation key.
    pub merged: u64,
    pub elapsed: Duration,
}

impl Store {
    #[tracing::instrument(skip_all, err)]
    pub async fn reproject(
        &self,
        decoder: &Decoder,
        page_size: usize,
        mut progress: impl FnMut(ReprojectProgress),
    ) -> Result<ReprojectReport> {
        let started = Instant::now();
        let page_size = page_size.max(1);
        let mut tx = self.begin_write().await?;
        // The saga rollups are rebuilt whole: no cached bucket stays (again
        // after the commit, for reads that began before it).
        self.rollup_cache.clear();
        if self.backend == Backend::Postgres {
            // Writers (the ingest) wait; readers go on with the old rows.
            sqlx::query(
                "LOCK TABLE events, sagas, correlation_keys, saga_keys, saga_rollups, step_rollups, histograms, dead_letters IN SHARE ROW EXCLUSIVE MODE",
            )
            .execute(&mut *tx)
            .await?;
        }
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        for sql in [
            "DELETE FROM sagas",
            // The rows come back from version 1: the generation keeps
            // every timeline ETag issued before from matching after.
            "UPDATE read_model_generation SET generation = generation + 1",
            "DELETE FROM correlation_keys",
            "DELETE FROM saga_keys",
            // Saga rollups are rebuilt with the sagas; lag and topic
            // rollups belong to the events, which do not change.
            "DELETE FROM saga_rollups",
            "DELETE FROM step_rollups",
            "DELETE FROM histograms WHERE series IN ('saga', 'step')",
            // Unplaced until its page comes: merges rebuild a saga from
            // the events already placed in it, never from stale ones.
            "UPDATE events SET saga_id = ''",
            // The event-time walk below needs this order; the ingest does
            // not, so the index exists only for the run (dropped before
            // the commit, or with the transaction if it fails).
            "CREATE INDEX reproject_events_by_occurred ON events (occurred_at_us, event_id)",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }

        let select = format!(
            "SELECT {FULL_EVENT_COLUMNS} FROM events \
             WHERE occurred_at_us > $1 OR (occurred_at_us = $1 AND event_id > $2) \
             ORDER BY occurred_at_us, event_id LIMIT $3"
        );
        let mut cursor = (i64::MIN, String::new());
        let mut done = 0u64;
        let mut merged = 0u64;
        loop {
            let rows = sqlx::query(&select)
                .bind(cursor.0)
                .bind(cursor.1.clone())
                .bind(i64::try_from(page_size).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await?;
            let Some(last) = rows.last() else { break };
            cursor = (last.try_get("occurred_at_us")?, last.try_get("event_id")?);
            let mut events: Vec<SagaEvent> = rows
                .iter()
                .map(|row| saga_event_from_row(row).map(|e| decoder.interpret(e)))
                .collect::<Result<_>>()?;
            let placement = self.place_events(&mut tx, &mut events).await?;
            for e in &events {
                sqlx::query(
                    "UPDATE events SET saga_id = $2, saga_type = $3, step = $4, phase = $5, error = $6 WHERE event_id = $1",
                )
                .bind(e.event_id.clone())
                .bind(e.saga_id.clone())
                .bind(e.saga_type.clone())
                .bind(e.step.clone())
                .bind(e.phase.as_str())
                .bind(e.error.clone())
                .execute(&mut *tx)
                .await?;
            }
            let refs: Vec<&SagaEvent> = events.iter().collect();
            let mut rollups = RollupDelta::default();
            let projected = self
                .project_and_write_sagas(&mut tx, &refs, &placement, &mut rollups, false)
                .await?;
            self.apply_rollups(&mut tx, rollups).await?;
            self.insert_search_keys(&mut tx, projected.keys, &placement)
                .await?;
            merged += placement.merged.len() as u64;
            done += events.len() as u64;
            progress(ReprojectProgress {
                events_done: done,
                events_total: u64::try_from(total).unwrap_or_default(),
            });
        }
        // Dead letters follow the rebuilt instances (their saga may have
        // been merged, renamed or re-typed by the new rules).
        self.relink_all_dead_letters(&mut tx).await?;
        sqlx::query("DROP INDEX reproject_events_by_occurred")
            .execute(&mut *tx)
            .await?;
        let sagas: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sagas")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        tx.commit().await?;
        // Every saga row was rebuilt: no cached copy is current.
        self.cache.clear();
        self.rollup_cache.clear();
        tracing::info!(
            events = done,
            sagas,
            merged,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "reprojection committed"
        );
        Ok(ReprojectReport {
            events: done,
            sagas: u64::try_from(sagas).unwrap_or_default(),
            merged,
            elapsed: started.elapsed(),
        })
    }
}
