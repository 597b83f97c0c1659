//! Indexes built once after a bulk load instead of row by row during it,
//! as `pg_restore` does: the plain indexes of the loader's large tables
//! that no write of the loader reads, and the primary keys of the three
//! tables it only ever COPYs into (`events`, `saga_keys`,
//! `correlation_keys`: the generator makes every key unique, and a repeated
//! one would fail the load when its key is rebuilt). Linking a dead letter
//! reads `saga_keys` and `correlation_keys`, so `bench load` holds the dead
//! letters back until the keys are rebuilt: without them each link is a
//! sequential scan of everything loaded so far. `sagas` keeps its key: the projection's
//! compare-and-set insert needs it.
//!
//! The definitions are saved, in the transaction that drops the indexes, in
//! `sagascope_bench_deferred_indexes` (a `sagascope_bench…` table, which
//! `bench load --reset` keeps), so a loader that was killed before it rebuilt
//! them leaves them to the next loader, which rebuilds them first.

use sqlx::postgres::PgPool;

use crate::Result;

/// The bulk-loaded tables whose plain indexes may wait. Not `dead_letters`:
/// relinking reads its `saga_id`/`trace_id` indexes during the load.
const DEFERRABLE_TABLES: &[&str] = &["events", "sagas", "saga_keys", "correlation_keys"];

/// The tables whose primary keys may wait (see the module).
const KEY_DEFERRABLE_TABLES: &[&str] = &["events", "saga_keys", "correlation_keys"];

/// Each index build may sort this much in memory (a 10 M-row text index
/// otherwise spills to disk in many runs).
const BUILD_MEMORY: &str = "SET maintenance_work_mem = '512MB'";

/// Drops the plain indexes of [`DEFERRABLE_TABLES`] and the keys of
/// [`KEY_DEFERRABLE_TABLES`] until [`rebuild_deferred_indexes`]; returns
/// their names.
pub(super) async fn defer_secondary_indexes(pg: &PgPool) -> Result<Vec<String>> {
    let mut tx = pg.begin().await?;
    create_ledger(&mut tx).await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.relname::text, pg_get_indexdef(x.indexrelid) \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname = ANY($1) \
           AND NOT x.indisunique AND NOT x.indisprimary \
         ORDER BY i.relname",
    )
    .bind(DEFERRABLE_TABLES)
    .fetch_all(&mut *tx)
    .await?;
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conname::text, t.relname::text, pg_get_constraintdef(c.oid) \
         FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname = ANY($1) AND c.contype IN ('p', 'u') \
         ORDER BY c.conname",
    )
    .bind(KEY_DEFERRABLE_TABLES)
    .fetch_all(&mut *tx)
    .await?;
    let mut deferred = Vec::new();
    for (name, definition) in &indexes {
        remember(&mut tx, name, definition).await?;
        sqlx::query(&format!("DROP INDEX {}", quote_ident(name)))
            .execute(&mut *tx)
            .await?;
        deferred.push(name.clone());
    }
    for (name, table, definition) in &keys {
        let table = quote_ident(table);
        let constraint = quote_ident(name);
        remember(
            &mut tx,
            name,
            &format!("ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition}"),
        )
        .await?;
        sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {constraint}"))
            .execute(&mut *tx)
            .await?;
        deferred.push(name.clone());
    }
    tx.commit().await?;
    Ok(deferred)
}

/// Builds every index a loader deferred (this one's or an interrupted
/// one's), two at a time (one per core of the machines we measure on), and
/// forgets each once it exists. Returns their names.
pub(super) async fn rebuild_deferred_indexes(pg: &PgPool) -> Result<Vec<String>> {
    let mut conn = pg.acquire().await?;
    create_ledger(&mut conn).await?;
    let pending: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, definition FROM sagascope_bench_deferred_indexes ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let queue = std::sync::Mutex::new(pending.iter());
    let build = || async {
        let mut conn = pg.acquire().await?;
        sqlx::query(BUILD_MEMORY).execute(&mut *conn).await?;
        loop {
            let next = queue.lock().expect("index queue").next();
            let Some((name, definition)) = next else {
                break;
            };
            // One transaction per index: a build that fails leaves the
            // others, and its own ledger row, in place.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::query(definition).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM sagascope_bench_deferred_indexes WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        sqlx::query("RESET maintenance_work_mem")
            .execute(&mut *conn)
            .await?;
        Ok::<(), crate::StoreError>(())
    };
    let (first, second) = tokio::join!(build(), build());
    first?;
    second?;
    Ok(pending.into_iter().map(|(name, _)| name).collect())
}

/// Saves the statement that rebuilds `name` (in the transaction that drops
/// it).
async fn remember(conn: &mut sqlx::PgConnection, name: &str, definition: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO sagascope_bench_deferred_indexes (name, definition) VALUES ($1, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(definition)
    .execute(conn)
    .await?;
    Ok(())
}

async fn create_ledger(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS sagascope_bench_deferred_indexes \
         (name TEXT PRIMARY KEY, definition TEXT NOT NULL)",
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
