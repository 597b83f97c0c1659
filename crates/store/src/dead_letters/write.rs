//! Dead letters in the ingest batch's transaction: inserted once per DLQ
//! coordinate (a redelivery changes nothing), linked to their saga, and a
//! re-driven dead letter that comes back marks the one it re-drove
//! `failed_again`. Links of earlier dead letters follow their sagas: those
//! that arrived before their saga are linked when its events come, merges
//! move them to the surviving instance, and the stored saga type follows
//! the saga's.

use std::collections::{BTreeSet, HashSet};

use sagascope_domain::{micros, DeadLetter, SagaEvent};
use sagascope_model::{DeadLetterState, DeadLetterSummary, Timestamp};
use sqlx::{Any, Row, Transaction};

use super::link::{select_in, LinkedSaga, SagaRef};
use super::rows::{headers_to_json, summary_from_row, SUMMARY_COLUMNS};
use super::AnyQuery;
use crate::reused_coordinates::{is_reused_coordinates_id, warn_reused};
use crate::{bulk_rows, placeholders, Result, Store};

/// 31 columns × 100 rows stays far below both backends' bind limits, and
/// keeps one statement's payload bytes bounded.
const ROWS_PER_STATEMENT: usize = 100;
const COLUMNS: usize = 31;

/// The stable id of a dead letter: its DLQ coordinates (a different
/// message at coordinates already stored gets a derived id: see
/// `reused_coordinates`).
pub fn dead_letter_id(letter: &DeadLetter) -> String {
    format!(
        "{}/{}/{}",
        letter.dlq.topic, letter.dlq.partition, letter.dlq.offset
    )
}

impl Store {
    /// Inserts the new dead letters of a batch; returns them as listed.
    pub(crate) async fn insert_dead_letters(
        &self,
        tx: &mut Transaction<'_, Any>,
        letters: &[DeadLetter],
        now: Timestamp,
    ) -> Result<Vec<DeadLetterSummary>> {
        if letters.is_empty() {
            return Ok(Vec::new());
        }
        // Each once; a different message at stored coordinates (a recreated
        // topic) gets an id of its own rather than being dropped.
        let letters = self.identify_dead_letters(tx, letters).await?;
        let seen: HashSet<String> = letters.iter().map(|(id, _)| id.clone()).collect();
        let refs: Vec<SagaRef> = letters
            .iter()
            .map(|(_, l)| SagaRef {
                saga_id: l.saga_id.clone(),
                trace_id: l.trace_id.clone(),
            })
            .collect();
        let links = self.resolve_sagas(tx, &refs).await?;
        let retried: BTreeSet<String> = letters
            .iter()
            .filter_map(|(_, l)| l.retry_of.clone())
            .collect();
        let mut known: HashSet<String> =
            select_in(tx, "SELECT id FROM dead_letters WHERE id", &retried)
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
        known.extend(seen);

        let now_us = micros(now);
        let rows: Vec<(&str, &DeadLetter, Option<&LinkedSaga>, Option<&str>)> = letters
            .iter()
            .zip(&links)
            .map(|((id, l), link)| {
                let failed_again_of = l
                    .retry_of
                    .as_deref()
                    .filter(|of| known.contains(*of) && *of != id.as_str());
                (id.as_str(), *l, link.as_ref(), failed_again_of)
            })
            .collect();
        let mut inserted = Vec::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO dead_letters (id, dlq_topic, dlq_partition, dlq_offset, dlq_timestamp_us, dead_lettered_at_us, ingested_at_us, \
                 format, message_key, message_value, headers, original_topic, original_partition, original_offset, original_timestamp_us, \
                 original_group, exception_class, exception_message, stacktrace, failure_group, saga_id, trace_id, event_id, event_type, \
                 linked_saga_id, linked_saga_type, retry_of, retry_count, failed_again_of, state, state_changed_at_us) VALUES {} \
                 ON CONFLICT (id) DO NOTHING RETURNING {SUMMARY_COLUMNS}",
                bulk_rows(tx, chunk.len(), COLUMNS)
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for (id, l, link, failed_again_of) in chunk {
                let original = l.original.as_ref();
                let dlq_timestamp = l.dlq_timestamp.map(micros);
                query = query
                    .bind(id.to_string())
                    .bind(l.dlq.topic.clone())
                    .bind(i64::from(l.dlq.partition))
                    .bind(l.dlq.offset)
                    .bind(dlq_timestamp)
                    .bind(dlq_timestamp.unwrap_or(now_us))
                    .bind(now_us)
                    .bind(l.format.as_str())
                    .bind(l.key.clone())
                    .bind(l.value.clone())
                    .bind(headers_to_json(&l.headers))
                    .bind(original.map(|o| o.topic.clone()))
                    .bind(original.and_then(|o| o.partition).map(i64::from))
                    .bind(original.and_then(|o| o.offset))
                    .bind(original.and_then(|o| o.timestamp).map(micros))
                    .bind(original.and_then(|o| o.consumer_group.clone()))
                    .bind(l.exception_class.clone())
                    .bind(l.exception_message.clone())
                    .bind(l.stacktrace.clone())
                    .bind(l.failure_group.clone())
                    .bind(l.saga_id.clone())
                    .bind(l.trace_id.clone())
                    .bind(l.event_id.clone())
                    .bind(l.event_type.clone())
                    .bind(link.map(|s| s.saga_id.clone()))
                    .bind(link.map(|s| s.saga_type.clone()))
                    .bind(l.retry_of.clone())
                    .bind(i64::from(l.retry_count))
                    .bind(failed_again_of.map(str::to_string))
                    .bind(DeadLetterState::New.as_str())
                    .bind(now_us);
            }
            for row in query.fetch_all(&mut **tx).await? {
                inserted.push(summary_from_row(&row)?);
            }
        }
        // Coordinate order, whatever order RETURNING gave.
        inserted.sort_by(|a, b| {
            (&a.dlq_topic, a.dlq_partition, a.dlq_offset, &a.id).cmp(&(
                &b.dlq_topic,
                b.dlq_partition,
                b.dlq_offset,
                &b.id,
            ))
        });
        for letter in inserted.iter().filter(|l| is_reused_coordinates_id(&l.id)) {
            let coords = sagascope_domain::KafkaCoords {
                topic: letter.dlq_topic.clone(),
                partition: i32::try_from(letter.dlq_partition).unwrap_or_default(),
                offset: letter.dlq_offset,
            };
            warn_reused(&coords, "dead letter");
        }
        for letter in inserted.iter().filter(|l| l.failed_again_of.is_some()) {
            let of = letter.failed_again_of.clone().unwrap_or_default();
            sqlx::query(
                "UPDATE dead_letters SET state = $1, state_changed_at_us = $2, state_reason = $3 WHERE id = $4 AND state <> $1",
            )
            .bind(DeadLetterState::FailedAgain.as_str())
            .bind(now_us)
            .bind(format!("the re-driven message came back as dead letter {}", letter.id))
            .bind(of)
            .execute(&mut **tx)
            .await?;
        }
        Ok(inserted)
    }

    /// Keeps stored links right after a batch: merged instances hand their
    /// dead letters to the winner, dead letters still unlinked are linked
    /// if the batch's events brought their saga, and linked ones take the
    /// current type of their saga.
    pub(crate) async fn relink_dead_letters(
        &self,
        tx: &mut Transaction<'_, Any>,
        new_events: &[&SagaEvent],
        merged: &[(String, String)],
        touched_sagas: &BTreeSet<String>,
    ) -> Result<()> {
        // Most batches meet an empty or fully linked DLQ: one probe each.
        if !exists(tx, "SELECT 1 FROM dead_letters LIMIT 1").await? {
            return Ok(());
        }
        for (loser, winner) in merged {
            sqlx::query("UPDATE dead_letters SET linked_saga_id = $2 WHERE linked_saga_id = $1")
                .bind(loser.clone())
                .bind(winner.clone())
                .execute(&mut **tx)
                .await?;
        }
        let keys: BTreeSet<String> = new_events
            .iter()
            .flat_map(|e| {
                [
                    Some(&e.saga_id),
                    e.explicit_saga_id.as_ref(),
                    e.trace_id.as_ref(),
                ]
                .into_iter()
                .flatten()
                .cloned()
            })
            .collect();
        let keys: Vec<&String> = keys.iter().collect();
        let mut unlinked: Vec<(String, SagaRef)> = Vec::new();
        let any_unlinked = exists(
            tx,
            "SELECT 1 FROM dead_letters WHERE linked_saga_id IS NULL LIMIT 1",
        )
        .await?;
        for chunk in keys.chunks(250).filter(|_| any_unlinked) {
            let ps = placeholders(0, chunk.len());
            let sql = format!(
                "SELECT id, saga_id, trace_id FROM dead_letters WHERE linked_saga_id IS NULL AND (saga_id IN ({ps}) OR trace_id IN ({ps}))"
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql).persistent(chunk.len() == 250);
            for key in chunk {
                query = query.bind((*key).clone());
            }
            for row in query.fetch_all(&mut **tx).await? {
                let saga_ref = SagaRef {
                    saga_id: row.try_get("saga_id")?,
                    trace_id: row.try_get("trace_id")?,
                };
                unlinked.push((row.try_get("id")?, saga_ref));
            }
        }
        if !unlinked.is_empty() {
            let refs: Vec<SagaRef> = unlinked.iter().map(|(_, r)| r.clone()).collect();
            let links = self.resolve_sagas(tx, &refs).await?;
            for ((id, _), link) in unlinked.iter().zip(links) {
                let Some(link) = link else { continue };
                sqlx::query(
                    "UPDATE dead_letters SET linked_saga_id = $2, linked_saga_type = $3 WHERE id = $1 AND linked_saga_id IS NULL",
                )
                .bind(id.clone())
                .bind(link.saga_id)
                .bind(link.saga_type)
                .execute(&mut **tx)
                .await?;
            }
        }
        let touched: Vec<&String> = touched_sagas.iter().collect();
        for chunk in touched.chunks(500) {
            let sql = format!(
                "UPDATE dead_letters SET linked_saga_type = (SELECT s.saga_type FROM sagas s WHERE s.saga_id = dead_letters.linked_saga_id) \
                 WHERE linked_saga_id IN ({}) \
                 AND linked_saga_type IS DISTINCT FROM (SELECT s.saga_type FROM sagas s WHERE s.saga_id = dead_letters.linked_saga_id)",
                placeholders(0, chunk.len())
            );
            let mut query: AnyQuery<'_> = sqlx::query(&sql).persistent(chunk.len() == 500);
            for id in chunk {
                query = query.bind((*id).clone());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Links every dead letter afresh, after a reprojection rebuilt the
    /// sagas under changed rules: the instance a dead letter resolves to
    /// (and its type) may have changed or gone. Pages by id so a large DLQ
    /// is not read into memory at once; runs in the reprojection's
    /// transaction.
    pub(crate) async fn relink_all_dead_letters(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<u64> {
        sqlx::query("UPDATE dead_letters SET linked_saga_id = NULL, linked_saga_type = NULL")
            .execute(&mut **tx)
            .await?;
        let mut linked = 0u64;
        let mut after = String::new();
        loop {
            let rows = sqlx::query(
                "SELECT id, saga_id, trace_id FROM dead_letters \
                 WHERE id > $1 AND (saga_id IS NOT NULL OR trace_id IS NOT NULL) ORDER BY id LIMIT 500",
            )
            .bind(after.clone())
            .fetch_all(&mut **tx)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            let mut ids = Vec::with_capacity(rows.len());
            let mut refs = Vec::with_capacity(rows.len());
            for row in &rows {
                ids.push(row.try_get::<String, _>("id")?);
                refs.push(SagaRef {
                    saga_id: row.try_get("saga_id")?,
                    trace_id: row.try_get("trace_id")?,
                });
            }
            let links = self.resolve_sagas(tx, &refs).await?;
            for (id, link) in ids.into_iter().zip(links) {
                let Some(link) = link else { continue };
                sqlx::query(
                    "UPDATE dead_letters SET linked_saga_id = $2, linked_saga_type = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(link.saga_id)
                .bind(link.saga_type)
                .execute(&mut **tx)
                .await?;
                linked += 1;
            }
        }
        Ok(linked)
    }
}

async fn exists(tx: &mut Transaction<'_, Any>, sql: &str) -> Result<bool> {
    Ok(sqlx::query(sql).fetch_optional(&mut **tx).await?.is_some())
}
