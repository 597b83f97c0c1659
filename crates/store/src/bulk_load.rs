//! A benchmark loader, Postgres only: whole sagas that the database does
//! not hold yet, written in bulk, as exactly the rows the ingest would store
//! for the same events (`sagascope bench load` makes its 10 M-event dataset
//! with it; a test compares both paths table by table).
//!
//! It is not an ingest path: it does no placement across stored sagas, no
//! merges, no redelivery handling. Every event id, saga id and correlation
//! key must be new, and the events of one saga must all come in one call;
//! the unique indexes refuse anything else, and the call fails whole.
//!
//! What is the same code as [`Store::write_batch`]: the sagas are projected,
//! written (compare-and-set insert) and their search keys derived by
//! `project_and_write_sagas`; rollups go through `RollupDelta::{event,
//! change}` and `apply_rollups`; dead-letter links through
//! `relink_dead_letters` — all in one `Any` transaction. What is bulk:
//! `events`, `correlation_keys` and `saga_keys` go through `COPY … FROM
//! STDIN` (text format) on a plain Postgres connection, in a second
//! transaction committed right after the first. The two commits are not
//! atomic together: a loader that fails between them leaves sagas without
//! their events, and the database should be reset (`bench load --reset`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use sagascope_domain::{micros, SagaEvent};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::PgConnection;

use crate::place_events::{keys_of, Placement};
use crate::rollups::RollupDelta;
use crate::write_batch::SearchKey;
use crate::{Backend, Result, Store, StoreError};

mod deferred_indexes;

/// Postgres only, for the transaction it runs in: commit without waiting
/// for the WAL flush (see `load_sagas`).
const NO_FLUSH_WAIT: &str = "SET LOCAL synchronous_commit = off";

/// COPY text is sent to the server in pieces of about this size.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// The `events` columns, as `insert_events` writes them.
const EVENT_COLUMNS: &str = "event_id, saga_id, saga_type, step, phase, event_type, trace_id, span_id, request_id, \
     occurred_at_us, published_at_us, ingested_at_us, source_type, source_id, topic, kafka_partition, kafka_offset, \
     headers, payload, error, explicit_saga_id, rule_classified, business_keys";

/// The store and a Postgres pool of its own for `COPY` (sqlx's `Any`
/// driver has none). Cheap to clone.
#[derive(Debug, Clone)]
pub struct BulkLoader {
    store: Store,
    pg: PgPool,
}

/// What one [`BulkLoader::load_sagas`] call wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkLoaded {
    pub events: u64,
    pub sagas: u64,
}

impl Store {
    /// The benchmark loader (see the module), with up to `connections`
    /// Postgres connections for its `COPY`s; refuses SQLite.
    pub async fn bulk_loader(&self, connections: u32) -> Result<BulkLoader> {
        let Some(url) = self.postgres_url() else {
            return Err(StoreError::BulkLoad(
                "the bulk loader needs Postgres (COPY)".into(),
            ));
        };
        let pg = PgPoolOptions::new()
            .max_connections(connections.max(1))
            .connect(url)
            .await?;
        Ok(BulkLoader {
            store: self.clone(),
            pg,
        })
    }
}

impl BulkLoader {
    /// Writes the events of whole new sagas and everything the ingest
    /// derives from them (see the module). An event id repeated in `events`
    /// keeps its first copy, as in a batch.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn load_sagas(&self, events: &[SagaEvent]) -> Result<BulkLoaded> {
        debug_assert_eq!(self.store.backend(), Backend::Postgres);
        let mut seen = HashSet::new();
        let events: Vec<&SagaEvent> = events
            .iter()
            .filter(|e| seen.insert(e.event_id.as_str()))
            .collect();
        if events.is_empty() {
            return Ok(BulkLoaded::default());
        }
        let (placement, correlation_keys) = place_new_sagas(&events)?;

        // The bulk tables first: their unique indexes refuse anything
        // already stored (an event id; a saga, by its `saga:` correlation
        // key) before the sagas are written.
        let mut pg = self.pg.begin().await?;
        // A benchmark dataset needs no flush to disk at each commit (a
        // crash means `--reset` and load again): the commits stop waiting
        // for the WAL flush, as with every bulk load of a throwaway set.
        sqlx::query(NO_FLUSH_WAIT).execute(&mut *pg).await?;
        copy_in(&mut pg, "events", EVENT_COLUMNS, &events, event_row).await?;
        copy_in(
            &mut pg,
            "correlation_keys",
            "correlation_key, saga_id",
            &correlation_keys,
            |out, (key, saga_id)| {
                copy_text(out, key);
                out.push('\t');
                copy_text(out, saga_id);
            },
        )
        .await?;

        // The ingest's own code for sagas, rollups and dead-letter links.
        let mut tx = self.store.begin_write().await?;
        sqlx::query(NO_FLUSH_WAIT).execute(&mut *tx).await?;
        let mut rollups = RollupDelta::default();
        for event in &events {
            // A loaded dataset is new traffic, as `write_batch` counts a
            // batch without backlog bounds.
            rollups.event(event, false);
        }
        let projected = self
            .store
            .project_and_write_sagas(&mut tx, &events, &placement, &mut rollups, false)
            .await?;
        let sagas = projected.sagas.len() as u64;
        let touched: BTreeSet<String> = projected.sagas.iter().map(|p| p.saga_id.clone()).collect();
        self.store
            .relink_dead_letters(&mut tx, &events, &[], &touched)
            .await?;
        self.store.apply_rollups(&mut tx, rollups).await?;

        let keys = search_key_rows(projected.keys);
        copy_in(
            &mut pg,
            "saga_keys",
            "search_key, saga_id, kind",
            &keys,
            |out, (key, saga_id, kind)| {
                copy_text(out, key);
                out.push('\t');
                copy_text(out, saga_id);
                out.push('\t');
                out.push_str(kind);
            },
        )
        .await?;
        tx.commit().await?;
        pg.commit().await?;
        Ok(BulkLoaded {
            events: events.len() as u64,
            sagas,
        })
    }

    /// Drops the plain (non-unique) indexes of `events`, `sagas`,
    /// `saga_keys` and `correlation_keys`, and the keys of all but `sagas`,
    /// until [`BulkLoader::rebuild_deferred_indexes`]: a load into empty
    /// tables is then about sorting once instead of a random index insert
    /// per row (see `deferred_indexes`). Meanwhile a repeated event id or
    /// key is refused only when its key is rebuilt. Returns the dropped
    /// indexes' and keys' names.
    pub async fn defer_secondary_indexes(&self) -> Result<Vec<String>> {
        deferred_indexes::defer_secondary_indexes(&self.pg).await
    }

    /// Builds every index a loader deferred, this one or an interrupted
    /// earlier one; returns their names (none if nothing was deferred).
    pub async fn rebuild_deferred_indexes(&self) -> Result<Vec<String>> {
        deferred_indexes::rebuild_deferred_indexes(&self.pg).await
    }

    /// Closes the loader's own Postgres pool (not the store's).
    pub async fn close(&self) {
        self.pg.close().await;
    }
}

/// What placement decides for sagas that share nothing with stored ones
/// nor with each other: each event stays in its saga, the saga's id rank is
/// the lowest of its events' (as `place_events` ranks a new instance), and
/// every correlation key is registered for its saga. A key of two sagas
/// would merge them: refused.
fn place_new_sagas(events: &[&SagaEvent]) -> Result<(Placement, Vec<(String, String)>)> {
    let mut placement = Placement::default();
    let mut owner: HashMap<String, &str> = HashMap::new();
    for event in events {
        let rank = i64::from(event.correlation_rank);
        placement
            .ranks
            .entry(event.saga_id.clone())
            .and_modify(|r| *r = (*r).min(rank))
            .or_insert(rank);
        for key in keys_of(event) {
            match owner.get(&key) {
                Some(saga) if *saga != event.saga_id => {
                    return Err(StoreError::BulkLoad(format!(
                        "correlation key `{key}` belongs to two sagas ({saga}, {}): they would be merged",
                        event.saga_id
                    )));
                }
                Some(_) => {}
                None => {
                    owner.insert(key, event.saga_id.as_str());
                }
            }
        }
    }
    let mut keys: Vec<(String, String)> = owner
        .into_iter()
        .map(|(key, saga)| (key, saga.to_string()))
        .collect();
    keys.sort_unstable();
    Ok((placement, keys))
}

/// The search key rows `insert_search_keys` would leave: sorted, and per
/// (key, saga) the first kind (its `ON CONFLICT DO NOTHING` keeps the
/// first of a statement; COPY would refuse the second).
fn search_key_rows(mut keys: Vec<SearchKey>) -> Vec<SearchKey> {
    keys.sort();
    keys.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
    keys
}

/// `COPY table (columns) FROM STDIN` of `rows`, each written by `row`
/// (tab-separated values, without the line end), in ~1 MB pieces.
async fn copy_in<T>(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    rows: &[T],
    row: impl Fn(&mut String, &T),
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT text)"
        ))
        .await?;
    let mut buffer = String::with_capacity(COPY_CHUNK_BYTES + (64 << 10));
    for item in rows {
        row(&mut buffer, item);
        buffer.push('\n');
        if buffer.len() >= COPY_CHUNK_BYTES {
            let chunk = std::mem::replace(
                &mut buffer,
                String::with_capacity(COPY_CHUNK_BYTES + (64 << 10)),
            );
            if let Err(error) = copy.send(chunk.into_bytes()).await {
                let _ = copy.abort("sending failed").await;
                return Err(error.into());
            }
        }
    }
    if !buffer.is_empty() {
        if let Err(error) = copy.send(buffer.into_bytes()).await {
            let _ = copy.abort("sending failed").await;
            return Err(error.into());
        }
    }
    Ok(copy.finish().await?)
}

/// An event as `insert_events` binds it, in [`EVENT_COLUMNS`] order.
fn event_row(out: &mut String, e: &&SagaEvent) {
    let headers = serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".into());
    let business_keys = serde_json::to_string(&e.business_keys).unwrap_or_else(|_| "[]".into());
    copy_text(out, &e.event_id);
    out.push('\t');
    copy_text(out, &e.saga_id);
    out.push('\t');
    optional_text(out, e.saga_type.as_deref());
    out.push('\t');
    optional_text(out, e.step.as_deref());
    out.push('\t');
    copy_text(out, e.phase.as_str());
    out.push('\t');
    copy_text(out, &e.event_type);
    out.push('\t');
    optional_text(out, e.trace_id.as_deref());
    out.push('\t');
    optional_text(out, e.span_id.as_deref());
    out.push('\t');
    optional_text(out, e.request_id.as_deref());
    out.push('\t');
    number(out, Some(micros(e.occurred_at)));
    out.push('\t');
    number(out, e.published_at.map(micros));
    out.push('\t');
    number(out, Some(micros(e.ingested_at)));
    out.push('\t');
    optional_text(out, e.source_type.as_deref());
    out.push('\t');
    optional_text(out, e.source_id.as_deref());
    out.push('\t');
    copy_text(out, &e.coords.topic);
    out.push('\t');
    number(out, Some(i64::from(e.coords.partition)));
    out.push('\t');
    number(out, Some(e.coords.offset));
    out.push('\t');
    copy_text(out, &headers);
    out.push('\t');
    copy_text(out, &e.payload.to_string());
    out.push('\t');
    optional_text(out, e.error.as_deref());
    out.push('\t');
    optional_text(out, e.explicit_saga_id.as_deref());
    out.push('\t');
    number(out, Some(i64::from(e.rule_classified)));
    out.push('\t');
    copy_text(out, &business_keys);
}

fn optional_text(out: &mut String, value: Option<&str>) {
    match value {
        Some(value) => copy_text(out, value),
        None => out.push_str("\\N"),
    }
}

fn number(out: &mut String, value: Option<i64>) {
    match value {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("\\N"),
    }
}

/// A value in COPY's text format: backslash, tab, line ends and other
/// control characters escaped; everything else as is. Also the benchmark's
/// raw COPY baseline's (server/src/bench/copy_rate.rs).
pub fn copy_text(out: &mut String, value: &str) {
    if !value.bytes().any(|b| b < 0x20 || b == b'\\') {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_separators_and_control_characters() {
        let mut out = String::new();
        copy_text(&mut out, "a\tb\\c\nd\re\u{1}f");
        assert_eq!(out, "a\\tb\\\\c\\nd\\re\\x01f");
        let mut plain = String::new();
        copy_text(&mut plain, "{\"amount\": 12, \"ü\": \"ok\"}");
        assert_eq!(plain, "{\"amount\": 12, \"ü\": \"ok\"}");
        let mut none = String::new();
        optional_text(&mut none, None);
        number(&mut none, None);
        assert_eq!(none, "\\N\\N");
    }

    #[test]
    fn search_keys_keep_the_first_kind_of_a_key_and_saga() {
        let keys = search_key_rows(vec![
            ("t1".into(), "s1".into(), "trace"),
            ("k".into(), "s1".into(), "trace"),
            ("k".into(), "s1".into(), "business"),
            ("k".into(), "s2".into(), "business"),
            ("t1".into(), "s1".into(), "trace"),
        ]);
        assert_eq!(
            keys,
            vec![
                ("k".to_string(), "s1".to_string(), "business"),
                ("k".to_string(), "s2".to_string(), "business"),
                ("t1".to_string(), "s1".to_string(), "trace"),
            ]
        );
    }
}
