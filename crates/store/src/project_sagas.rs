//! Projecting a batch's events into their sagas and writing the rows, with
//! optimistic concurrency instead of row locks or reads before writes:
//!
//! 1. the stored state of each saga comes from the projection cache (live
//!    sagas this process wrote) or, on a miss, from one read of the rows;
//! 2. the new projection is merged from it and the batch's events;
//! 3. the write is a compare-and-set on the row's `version`: an insert
//!    that must not find a row, or an update that must find the version it
//!    started from;
//! 4. a saga whose row changed meanwhile (a second replica wrote it, the
//!    stall sweep marked it, a reprojection or retention rebuilt or removed
//!    it) is read again and merged again, up to [`MAX_ROUNDS`] times.
//!
//! Rollup changes, outcome transitions and cache entries are taken from the
//! write that succeeded, so a retried saga is counted once.

use std::collections::{BTreeMap, HashMap};

use sagascope_domain::{SagaEvent, SagaFact, SagaProjection};
use sagascope_model::SagaStatus;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row, Transaction};

use crate::place_events::Placement;
use crate::projection_cache::StoredSaga;
use crate::rollups::RollupDelta;
use crate::rows::projection_from_json;
use crate::write_batch::{SagaTransition, SearchKey};
use crate::{bulk_placeholders, bulk_rows, Result, Store, StoreError};

/// Rows per statement: 12 values each, far below both bind limits.
const ROWS_PER_STATEMENT: usize = 400;
/// Compare-and-set rounds before the batch gives up (and the ingest retries
/// it): each round loses only to a writer that changed the same saga in
/// between, so several in a row means a writer is looping.
const MAX_ROUNDS: usize = 8;

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// What projecting a batch produced.
#[derive(Debug, Default)]
pub(crate) struct ProjectedSagas {
    pub sagas: Vec<SagaProjection>,
    pub keys: Vec<SearchKey>,
    pub transitions: Vec<SagaTransition>,
    /// The rows as written, for the cache once the transaction commits.
    pub written: Vec<(String, StoredSaga)>,
}

/// One saga's new row, and the version it must replace (None: no row).
struct SagaWrite {
    projection: SagaProjection,
    expected: Option<i64>,
}

impl Store {
    /// Projects `new_events` into their sagas and writes the rows (see the
    /// module). `use_cache`: false when the rows were rebuilt in this
    /// transaction (reprojection), so only the table is the truth.
    pub(crate) async fn project_and_write_sagas(
        &self,
        tx: &mut Transaction<'_, Any>,
        new_events: &[&SagaEvent],
        placement: &Placement,
        rollups: &mut RollupDelta,
        use_cache: bool,
    ) -> Result<ProjectedSagas> {
        for removed in &placement.removed {
            rollups.change(Some(removed), None);
        }
        let mut by_saga: BTreeMap<&str, Vec<&SagaEvent>> = BTreeMap::new();
        for event in new_events {
            by_saga
                .entry(event.saga_id.as_str())
                .or_default()
                .push(event);
        }
        for winner in &placement.rebuild {
            by_saga.entry(winner.as_str()).or_default();
        }
        let mut stored: HashMap<String, StoredSaga> = if use_cache {
            self.cache.get_many(by_saga.keys().copied())
        } else {
            HashMap::new()
        };
        let misses: Vec<&str> = by_saga
            .keys()
            .copied()
            .filter(|id| !stored.contains_key(*id))
            .collect();
        stored.extend(read_stored_sagas(tx, &misses).await?);

        // Search keys the stored projection already has are rows already
        // (written in the same transaction as that projection): only the
        // others are inserted. The projection keeps only the 32 smallest
        // trace ids and keys (`MAX_KEPT_IDS`), so a saga with more offers
        // its larger ones again with each batch that carries them: one
        // `ON CONFLICT DO NOTHING` row per distinct key and batch
        // (`insert_search_keys` dedups), a cost that follows the batch's
        // events, never the saga's history.
        let mut out = ProjectedSagas::default();
        for (saga_id, events) in &by_saga {
            let known = stored.get(*saga_id).map(|s| &s.projection);
            for event in events {
                if let Some(trace) = &event.trace_id {
                    if !known.is_some_and(|p| p.trace_ids.contains(trace)) {
                        out.keys.push((trace.clone(), saga_id.to_string(), "trace"));
                    }
                }
                for key in &event.business_keys {
                    if !known.is_some_and(|p| p.business_keys.contains(key)) {
                        out.keys
                            .push((key.clone(), saga_id.to_string(), "business"));
                    }
                }
            }
        }

        let mut pending: Vec<&str> = by_saga.keys().copied().collect();
        for round in 0..MAX_ROUNDS {
            let mut writes = Vec::with_capacity(pending.len());
            for saga_id in &pending {
                let before = stored.get(*saga_id);
                let projection = if placement.rebuild.contains(*saga_id) {
                    self.rebuild_projection(tx, saga_id).await?
                } else {
                    let mut projection = before
                        .map(|s| s.projection.clone())
                        .unwrap_or_else(|| SagaProjection::new(*saga_id));
                    for event in &by_saga[saga_id] {
                        projection.merge(event);
                    }
                    projection
                };
                writes.push(SagaWrite {
                    projection,
                    expected: before.map(|s| s.version),
                });
            }
            let written = self.write_saga_rows(tx, &writes, placement).await?;
            let mut lost = Vec::new();
            for (saga_id, write) in pending.iter().zip(writes) {
                if !written.contains_key(*saga_id) {
                    lost.push(*saga_id);
                    continue;
                }
                let before = stored.remove(*saga_id);
                if !placement.rebuild.contains(*saga_id) {
                    out.transitions
                        .extend(transition(before.as_ref(), &write.projection));
                }
                let status = write.projection.status();
                rollups.change(
                    before
                        .as_ref()
                        .and_then(|b| SagaFact::of(&b.projection, b.status))
                        .as_ref(),
                    SagaFact::of(&write.projection, status).as_ref(),
                );
                out.written.push((
                    saga_id.to_string(),
                    StoredSaga {
                        version: written[*saga_id],
                        status,
                        projection: write.projection.clone(),
                    },
                ));
                out.sagas.push(write.projection);
            }
            if lost.is_empty() {
                return Ok(out);
            }
            tracing::debug!(
                sagas = lost.len(),
                round,
                "saga rows changed by another writer; merging again"
            );
            for saga_id in &lost {
                stored.remove(*saga_id);
            }
            stored.extend(read_stored_sagas(tx, &lost).await?);
            pending = lost;
        }
        Err(StoreError::Contended(pending.join(", ")))
    }

    /// Inserts the rows expected to be new and updates the others where
    /// their version is still the expected one; returns the version written
    /// per saga that succeeded (the others lost a race).
    async fn write_saga_rows(
        &self,
        tx: &mut Transaction<'_, Any>,
        writes: &[SagaWrite],
        placement: &Placement,
    ) -> Result<HashMap<String, i64>> {
        let mut written = HashMap::new();
        let (inserts, updates): (Vec<&SagaWrite>, Vec<&SagaWrite>) =
            writes.iter().partition(|w| w.expected.is_none());
        for chunk in inserts.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO sagas (saga_id, saga_type, status, started_at_us, ended_at_us, last_event_at_us, event_count, projection, kind, id_rank, quiet_status, version, last_node, missing_compensations) \
                 VALUES {} ON CONFLICT (saga_id) DO NOTHING RETURNING saga_id",
                bulk_rows(tx, chunk.len(), 14)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for write in chunk {
                query = bind_row(query, write, placement, 0);
            }
            for row in query.fetch_all(&mut **tx).await? {
                written.insert(row.try_get("saga_id")?, 1);
            }
        }
        for chunk in updates.chunks(ROWS_PER_STATEMENT) {
            // `VALUES` columns are column1…column14 on both Postgres and
            // SQLite, so the statement is shared.
            let sql = format!(
                "UPDATE sagas SET saga_type = v.column2, status = v.column3, started_at_us = v.column4, \
                 ended_at_us = v.column5, last_event_at_us = v.column6, event_count = v.column7, \
                 projection = v.column8, kind = v.column9, id_rank = v.column10, quiet_status = v.column11, \
                 version = v.column12 + 1, last_node = v.column13, inferred_from = NULL, \
                 missing_compensations = v.column14 \
                 FROM (VALUES {}) AS v WHERE sagas.saga_id = v.column1 AND sagas.version = v.column12 \
                 RETURNING saga_id, version",
                bulk_rows(tx, chunk.len(), 14)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for write in chunk {
                query = bind_row(query, write, placement, write.expected.unwrap_or_default());
            }
            for row in query.fetch_all(&mut **tx).await? {
                written.insert(row.try_get("saga_id")?, row.try_get("version")?);
            }
        }
        Ok(written)
    }
}

/// The row's fourteen values; `version`: 1 for an insert, the expected
/// version for an update.
fn bind_row<'q>(
    query: AnyQuery<'q>,
    write: &SagaWrite,
    placement: &Placement,
    expected: i64,
) -> AnyQuery<'q> {
    let p = &write.projection;
    query
        .bind(p.saga_id.clone())
        .bind(p.saga_type())
        .bind(p.status().as_str())
        .bind(p.started_at_us())
        .bind(p.ended_at_us())
        .bind(p.last_event_at_us())
        .bind(p.event_count)
        .bind(serde_json::to_string(p).unwrap_or_default())
        .bind(if p.is_saga() { "saga" } else { "stream" })
        .bind(placement.ranks.get(&p.saga_id).copied().unwrap_or_default())
        .bind(p.quiet_status().map(|s| s.as_str()))
        .bind(if write.expected.is_some() {
            expected
        } else {
            1
        })
        .bind(p.last_node().map(str::to_string))
        // From the saga's own events; the learned-flow pass adds the
        // learned pairs' judgement (crates/flows).
        .bind(p.missing_compensations_column())
}

/// The saga's status change, for outcome metrics (streams are left out).
fn transition(before: Option<&StoredSaga>, after: &SagaProjection) -> Option<SagaTransition> {
    let stored = before.map(|b| &b.projection);
    let from = stored.filter(|p| p.is_saga()).map(|p| p.status());
    let was_compensating = stored.is_some_and(|p| p.compensating);
    let to = after.status();
    let began_compensating = after.compensating && !was_compensating;
    if !after.is_saga() || (from == Some(to) && !began_compensating) {
        return None;
    }
    Some(SagaTransition {
        saga_type: after.saga_type(),
        from,
        to,
        duration_ms: after
            .ended_at_us()
            .map(|end| (end - after.started_at_us()).max(0) / 1000),
        began_compensating,
        steps: if to.is_finished() && !from.is_some_and(SagaStatus::is_finished) {
            SagaFact::of(after, to).map(|f| f.steps).unwrap_or_default()
        } else {
            Vec::new()
        },
    })
}

/// The stored rows of `ids` that exist.
async fn read_stored_sagas(
    tx: &mut Transaction<'_, Any>,
    ids: &[&str],
) -> Result<HashMap<String, StoredSaga>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT saga_id, status, projection, version FROM sagas WHERE saga_id IN ({})",
            bulk_placeholders(tx, chunk.len())
        );
        let mut query: AnyQuery<'_> =
            sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&mut **tx).await? {
            let status: String = row.try_get("status")?;
            let status = SagaStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown saga status `{status}`")))?;
            let projection: String = row.try_get("projection")?;
            found.insert(
                row.try_get("saga_id")?,
                StoredSaga {
                    version: row.try_get("version")?,
                    status,
                    projection: projection_from_json(&projection)?,
                },
            );
        }
    }
    Ok(found)
}
