//! The machine's raw write speed, as the reference for the ingest rate:
//! the same events, as rows of the `events` table's width, streamed with
//! one `COPY … FROM STDIN` into a scratch table without indexes.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sagascope_domain::{micros, SagaEvent};
use sqlx::PgConnection;

const SCRATCH_TABLE: &str = "sagascope_bench_copy";

const COLUMNS: &str = "event_id, saga_id, saga_type, step, phase, event_type, trace_id, span_id, \
     request_id, occurred_at_us, published_at_us, ingested_at_us, source_type, source_id, topic, \
     kafka_partition, kafka_offset, headers, payload, error, explicit_saga_id, rule_classified, \
     business_keys";

/// What one COPY run measured.
pub struct CopyRate {
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// COPYs `events` into a fresh scratch table shaped like `events` (no
/// indexes, no constraints), then drops it. The timing covers the COPY and
/// its commit, not building the text.
pub async fn measure(conn: &mut PgConnection, events: &[SagaEvent]) -> anyhow::Result<CopyRate> {
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
        copy_row(&mut text, event);
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
    Ok(CopyRate {
        rows,
        bytes,
        elapsed,
    })
}

/// One row in COPY's text format, columns as the store writes them.
fn copy_row(out: &mut String, e: &SagaEvent) {
    let headers = serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".into());
    let keys = serde_json::to_string(&e.business_keys).unwrap_or_else(|_| "[]".into());
    let fields: [Option<String>; 23] = [
        Some(e.event_id.clone()),
        Some(e.saga_id.clone()),
        e.saga_type.clone(),
        e.step.clone(),
        Some(e.phase.as_str().to_string()),
        Some(e.event_type.clone()),
        e.trace_id.clone(),
        e.span_id.clone(),
        e.request_id.clone(),
        Some(micros(e.occurred_at).to_string()),
        e.published_at.map(|t| micros(t).to_string()),
        Some(micros(e.ingested_at).to_string()),
        e.source_type.clone(),
        e.source_id.clone(),
        Some(e.coords.topic.clone()),
        Some(e.coords.partition.to_string()),
        Some(e.coords.offset.to_string()),
        Some(headers),
        Some(e.payload.to_string()),
        e.error.clone(),
        e.explicit_saga_id.clone(),
        Some(i64::from(e.rule_classified).to_string()),
        Some(keys),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match field {
            None => out.push_str("\\N"),
            Some(text) => escape_into(out, text),
        }
    }
    out.push('\n');
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
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
    fn copy_text_escapes_separators() {
        let mut out = String::new();
        escape_into(&mut out, "a\tb\\c\nd\u{1}");
        assert_eq!(out, "a\\tb\\\\c\\nd\\x01");
    }
}
