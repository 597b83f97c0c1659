//! Received spans in, one transaction per request.

use std::collections::HashMap;

use sagascope_domain::micros;
use sagascope_model::SpanView;

use super::{SpanRow, SPAN_COLUMNS};
use crate::dead_letters::AnyQuery;
use crate::{placeholders, Result, Store};

/// 14 values a row: 1000 rows stay far below both backends' bind limits.
const ROWS_PER_STATEMENT: usize = 1000;
const VALUES_PER_ROW: usize = 14;

impl Store {
    /// Upserts the spans keyed by (trace id, span id), batched, in one
    /// transaction: a span sent again replaces the stored copy (the same
    /// values when an exporter retries) and keeps its first receive time.
    /// Returns how many distinct spans were written.
    #[tracing::instrument(skip_all, fields(spans = spans.len()), err)]
    pub async fn insert_spans(&self, spans: &[SpanView]) -> Result<u64> {
        // One statement may not touch a row twice (Postgres refuses an
        // upsert that does): the last copy of a repeated span wins.
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, span) in spans.iter().enumerate() {
            last.insert((span.trace_id.as_str(), span.span_id.as_str()), index);
        }
        let mut kept: Vec<usize> = last.into_values().collect();
        kept.sort_unstable();
        let rows: Vec<SpanRow<'_>> = kept.iter().map(|i| SpanRow::new(&spans[*i])).collect();
        if rows.is_empty() {
            return Ok(0);
        }
        let received_at_us = micros(chrono::Utc::now());
        let mut tx = self.begin_write().await?;
        let mut written = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO spans ({SPAN_COLUMNS}, received_at_us) VALUES {} \
                 ON CONFLICT (trace_id, span_id) DO UPDATE SET \
                 parent_span_id = excluded.parent_span_id, name = excluded.name, \
                 service = excluded.service, kind = excluded.kind, start_us = excluded.start_us, \
                 end_us = excluded.end_us, duration_us = excluded.duration_us, \
                 status = excluded.status, status_message = excluded.status_message, \
                 attributes = excluded.attributes, events = excluded.events",
                (0..chunk.len())
                    .map(|i| format!("({})", placeholders(i * VALUES_PER_ROW, VALUES_PER_ROW)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut query: AnyQuery<'_> =
                sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for row in chunk {
                let span = row.span;
                query = query
                    .bind(span.trace_id.clone())
                    .bind(span.span_id.clone())
                    .bind(span.parent_span_id.clone())
                    .bind(span.name.clone())
                    .bind(span.service.clone())
                    .bind(span.kind.as_str())
                    .bind(row.start_us)
                    .bind(row.end_us)
                    .bind(span.duration_us)
                    .bind(span.status.as_str())
                    .bind(span.status_message.clone())
                    .bind(row.attributes.clone())
                    .bind(row.events.clone())
                    .bind(received_at_us);
            }
            query.execute(&mut *tx).await?;
            written += chunk.len() as u64;
        }
        tx.commit().await?;
        Ok(written)
    }
}
