//! Postgres' raw write speed, as the reference for the ingest rate: the
//! same events, as the rows the store writes (`raw_rows.rs`), streamed
//! with one `COPY … FROM STDIN` into a scratch table without indexes.

use std::fmt::Write as _;
use std::time::Instant;

use sagascope_domain::SagaEvent;
use sqlx::PgConnection;

use super::raw_rows::{event_row, Cell, RawRate, COLUMNS, SCRATCH_TABLE};

/// COPYs `events` into a fresh scratch table shaped like `events` (no
/// indexes, no constraints), then drops it. The timing covers the COPY and
/// its commit, not building the text.
pub async fn measure(conn: &mut PgConnection, events: &[SagaEvent]) -> anyhow::Result<RawRate> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {SCRATCH_TABLE}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE {SCRATCH_TABLE} (LIKE events INCLUDING DEFAULTS)"
    ))
    .execute(&mut *conn)
    .await?;

    let mut chunks: Vec<String> = Vec::new();
    let mut text = String::new();
    for event in events {
        copy_row(&mut text, &event_row(event));
        if text.len() > 1 << 20 {
            chunks.push(std::mem::take(&mut text));
        }
    }
    chunks.push(text);
    let bytes = chunks.iter().map(|c| c.len() as u64).sum();

    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {SCRATCH_TABLE} ({COLUMNS}) FROM STDIN (FORMAT text)"
        ))
        .await?;
    for chunk in chunks {
        copy.send(chunk.into_bytes()).await?;
    }
    let rows = copy.finish().await?;
    let elapsed = started.elapsed();

    sqlx::query(&format!("DROP TABLE {SCRATCH_TABLE}"))
        .execute(&mut *conn)
        .await?;
    Ok(RawRate {
        rows,
        bytes,
        elapsed,
    })
}

/// One row in COPY's text format.
fn copy_row(out: &mut String, row: &[Cell]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match cell {
            Cell::Text(None) | Cell::Int(None) => out.push_str("\\N"),
            Cell::Text(Some(text)) => sagascope_store::copy_text(out, text),
            Cell::Int(Some(n)) => {
                let _ = write!(out, "{n}");
            }
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_text_escapes_separators() {
        let mut out = String::new();
        sagascope_store::copy_text(&mut out, "a\tb\\c\nd\u{1}");
        assert_eq!(out, "a\\tb\\\\c\\nd\\x01");
    }
}
