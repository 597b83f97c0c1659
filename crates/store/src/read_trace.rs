//! Everything that shares one trace id, across sagas and topics.

use sagascope_model::TraceView;

use crate::rows::{summary_from_row, timeline_event_from_row, EVENT_COLUMNS};
use crate::{placeholders, Result, Store};

impl Store {
    #[tracing::instrument(skip(self), err)]
    pub async fn trace(&self, trace_id: &str) -> Result<TraceView> {
        let trace_id = trace_id.trim().to_ascii_lowercase();
        // Every event's trace id is a search key of its saga: the sagas
        // come from `saga_keys`, their events from events_by_saga (events
        // has no trace index, which every ingested event would pay for).
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE saga_id IN (SELECT saga_id FROM saga_keys WHERE search_key = $1) \
             AND trace_id = $1 ORDER BY occurred_at_us, event_id"
        );
        let events = sqlx::query(&sql)
            .bind(trace_id.clone())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(timeline_event_from_row)
            .collect::<Result<Vec<_>>>()?;
        let mut saga_ids: Vec<String> = events.iter().map(|e| e.saga_id.clone()).collect();
        saga_ids.sort();
        saga_ids.dedup();
        let mut sagas = Vec::new();
        if !saga_ids.is_empty() {
            let sql = format!(
                "SELECT status, projection, inferred_from, missing_compensations FROM sagas WHERE kind = 'saga' AND saga_id IN ({}) ORDER BY started_at_us, saga_id",
                placeholders(0, saga_ids.len())
            );
            let mut query = sqlx::query(&sql);
            for id in saga_ids {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                sagas.push(summary_from_row(&row)?);
            }
        }
        Ok(TraceView {
            trace_id,
            sagas,
            events,
        })
    }
}
