//! What the flow learner reads: the saga types seen lately, and a type's
//! latest instances with their events in timeline order. Both are bounded
//! reads (hour rollups of a window; at most `limit` instances through
//! `sagas_by_type_start`, their events through `events_by_saga`), so
//! learning costs the same at any history size.

use std::collections::HashMap;

use sagascope_domain::{flow_node_name, is_state_event, micros, FlowEvent, FlowInstance};
use sagascope_model::{Phase, SagaStatus, Timestamp};
use sqlx::Row;

use crate::{placeholders, Result, Store};

/// Instances with more events than this are left out of learning (a
/// long-lived stream mislabelled as a saga would dominate the read).
const MAX_EVENTS_PER_INSTANCE: i64 = 200;

/// A type's latest instances, as the learner sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSample {
    pub instances: Vec<FlowInstance>,
    /// How many of them state their own end (a saga type or saga id in
    /// their messages, or the rules'): a type is declared when most are.
    pub declared: usize,
}

impl Store {
    /// The saga types with sagas counted in the hour rollups since `since`,
    /// by name, at most `limit`.
    #[tracing::instrument(skip(self), err)]
    pub async fn recent_saga_types(&self, since: Timestamp, limit: usize) -> Result<Vec<String>> {
        let hour_us = 3_600_000_000i64;
        let from = micros(since).div_euclid(hour_us) * hour_us;
        let rows = sqlx::query(
            "SELECT DISTINCT saga_type FROM saga_rollups WHERE grain_s = 3600 AND bucket_start_us >= $1 \
             ORDER BY saga_type LIMIT $2",
        )
        .bind(from)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("saga_type")?))
            .collect()
    }

    /// The latest (by start) `limit` instances of `saga_type` with at most
    /// 200 events each, their events in timeline order.
    #[tracing::instrument(skip(self), err)]
    pub async fn recent_flow_instances(&self, saga_type: &str, limit: usize) -> Result<FlowSample> {
        let sagas = sqlx::query(
            "SELECT saga_id, status FROM sagas WHERE saga_type = $1 AND kind = 'saga' AND event_count <= $2 \
             ORDER BY started_at_us DESC, saga_id DESC LIMIT $3",
        )
        .bind(saga_type.to_string())
        .bind(MAX_EVENTS_PER_INSTANCE)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        if sagas.is_empty() {
            return Ok(FlowSample::default());
        }
        let mut order: Vec<String> = Vec::with_capacity(sagas.len());
        let mut finished: HashMap<String, bool> = HashMap::with_capacity(sagas.len());
        for row in &sagas {
            let saga_id: String = row.try_get("saga_id")?;
            let status: String = row.try_get("status")?;
            finished.insert(
                saga_id.clone(),
                SagaStatus::parse(&status).is_some_and(SagaStatus::is_finished),
            );
            order.push(saga_id);
        }
        let sql = format!(
            "SELECT saga_id, event_type, step, phase, rule_classified, saga_type, explicit_saga_id, occurred_at_us \
             FROM events WHERE saga_id IN ({}) ORDER BY saga_id, occurred_at_us, event_id",
            placeholders(0, order.len())
        );
        let mut query = sqlx::query(&sql);
        for saga_id in &order {
            query = query.bind(saga_id.clone());
        }
        let mut events: HashMap<String, (Vec<FlowEvent>, bool)> = HashMap::new();
        for row in query.fetch_all(self.pool()).await? {
            let saga_id: String = row.try_get("saga_id")?;
            let event_type: String = row.try_get("event_type")?;
            let step: Option<String> = row.try_get("step")?;
            let phase_text: String = row.try_get("phase")?;
            let phase = Phase::parse(&phase_text).unwrap_or(Phase::Event);
            let rule_classified: i64 = row.try_get("rule_classified")?;
            let stated_type: Option<String> = row.try_get("saga_type")?;
            let explicit: Option<String> = row.try_get("explicit_saga_id")?;
            let node = flow_node_name(
                &event_type,
                step.as_deref(),
                phase,
                is_state_event(rule_classified != 0, stated_type.as_deref()),
            );
            let entry = events.entry(saga_id).or_default();
            entry.1 |= stated_type.is_some() || explicit.is_some();
            entry.0.push(FlowEvent {
                node,
                phase,
                at_us: row.try_get("occurred_at_us")?,
            });
        }
        let mut sample = FlowSample::default();
        for saga_id in order {
            let Some((events, declares)) = events.remove(&saga_id) else {
                continue;
            };
            sample.declared += usize::from(declares);
            sample.instances.push(FlowInstance {
                events,
                finished: finished.get(&saga_id).copied().unwrap_or(false),
            });
        }
        Ok(sample)
    }
}
