//! SQLite's raw write speed, as the reference for its ingest rate. SQLite
//! has no COPY; the fastest bulk load of the same rows it offers is one
//! transaction of one prepared multi-row `INSERT` (`ROWS_PER_STATEMENT`
//! rows a statement, values bound as the store binds them) into a scratch
//! table shaped like `events` without indexes, on a native connection
//! with the store's journal (WAL) and `synchronous = NORMAL`.

use std::str::FromStr;
use std::time::Instant;

use anyhow::Context;
use sagascope_domain::SagaEvent;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use super::raw_rows::{
    event_row, value_bytes, Cell, RawRate, Row, COLUMNS, COLUMN_COUNT, SCRATCH_TABLE,
};

/// Rows per statement: their 23 values each stay well below SQLite's
/// limit of 32,766 bound values, and the statement's own cost (bind,
/// step, reset) is spread over many rows.
pub const ROWS_PER_STATEMENT: usize = 500;
const _: () = assert!(ROWS_PER_STATEMENT * COLUMN_COUNT < 32_766);

/// What the output says the baseline is.
pub fn description() -> String {
    format!(
        "one transaction, one prepared {ROWS_PER_STATEMENT}-row INSERT, scratch table like \
         `events` without indexes, WAL, synchronous = NORMAL"
    )
}

/// Inserts `events` into a fresh scratch table of the database at `url`,
/// then drops it. The timing covers the inserts and the commit, not
/// building the rows.
pub async fn measure(url: &str, events: &[SagaEvent]) -> anyhow::Result<RawRate> {
    let mut conn = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .connect()
        .await
        .with_context(|| format!("cannot open {url}"))?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {SCRATCH_TABLE}"))
        .execute(&mut conn)
        .await?;
    // The columns' types (affinities) as in `events`, no index, no key.
    sqlx::query(&format!(
        "CREATE TABLE {SCRATCH_TABLE} AS SELECT {COLUMNS} FROM events WHERE 0"
    ))
    .execute(&mut conn)
    .await?;

    let rows: Vec<Row> = events.iter().map(event_row).collect();
    let bytes = value_bytes(&rows);
    let full = insert_sql(ROWS_PER_STATEMENT);
    let tail = insert_sql(rows.len() % ROWS_PER_STATEMENT);

    let started = Instant::now();
    let mut tx = conn.begin().await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = if chunk.len() == ROWS_PER_STATEMENT {
            &full
        } else {
            &tail
        };
        let mut query = sqlx::query(sql);
        for cell in chunk.iter().flatten() {
            query = match cell {
                Cell::Text(text) => query.bind(text.as_deref()),
                Cell::Int(n) => query.bind(*n),
            };
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let elapsed = started.elapsed();

    sqlx::query(&format!("DROP TABLE {SCRATCH_TABLE}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(RawRate {
        rows: rows.len() as u64,
        bytes,
        elapsed,
    })
}

/// `INSERT INTO scratch (…) VALUES (?, …), (?, …)` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; COLUMN_COUNT].join(", "));
    format!(
        "INSERT INTO {SCRATCH_TABLE} ({COLUMNS}) VALUES {}",
        vec![tuple.as_str(); rows].join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_placeholder_per_column_and_row() {
        let sql = insert_sql(3);
        assert_eq!(sql.matches('?').count(), 3 * COLUMN_COUNT);
        assert_eq!(COLUMNS.split(',').count(), COLUMN_COUNT);
    }
}
