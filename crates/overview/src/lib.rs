//! The overview's figures. The store's rollups give counts, rates,
//! percentiles and lag per window; this crate adds what lives in memory
//! (ingest health, the watched consumer groups), evaluates the thresholds
//! and produces the API shapes of `sagascope_model`.

mod alerts;

use std::sync::Arc;

use sagascope_domain::Thresholds;
use sagascope_ingest::{GroupLagBoard, IngestStatus};
use sagascope_model::{
    AlertLevel, AlertList, DlqSummary, GroupLag, IngestHealth, LagReport, MetricsWindow,
    OverviewMetrics, SagaTypeMetrics, Timestamp,
};
use sagascope_store::{Store, StoreError};

pub use alerts::{evaluate_alerts, evaluate_alerts_catching_up};

/// Cheap to clone: shared by the API handlers and the pages' server
/// functions.
#[derive(Debug, Clone)]
pub struct OverviewService {
    store: Store,
    ingest: Option<Arc<IngestStatus>>,
    groups: Arc<GroupLagBoard>,
    thresholds: Arc<Thresholds>,
    /// sagascope's own consumer group (its lag is ingest health).
    own_group: Option<String>,
    /// DLQ topics are consumed (`--dlq-topics` is not empty).
    dlq_configured: bool,
}

/// sagascope's own group, when its lag was polled before the consumer
/// caught up with the backlog it found at start (`caught_up_at`: None
/// while it has no partitions yet or catches up; no ingest, no excuse):
/// that lag is the catch-up, reported on the ingest card, not an alert. A
/// poll after the catch-up measures real lag again.
fn catching_up_group<'a>(
    own: Option<&'a str>,
    groups: &[GroupLag],
    caught_up_at: Option<Option<Timestamp>>,
) -> Option<&'a str> {
    let own = own?;
    let caught_up_at = caught_up_at?;
    let observed_at = groups.iter().find(|g| g.group == own)?.observed_at?;
    caught_up_at
        .is_none_or(|end| observed_at < end)
        .then_some(own)
}

impl OverviewService {
    pub fn new(
        store: Store,
        ingest: Option<Arc<IngestStatus>>,
        groups: Arc<GroupLagBoard>,
        thresholds: Thresholds,
        own_group: Option<String>,
    ) -> OverviewService {
        OverviewService {
            store,
            ingest,
            groups,
            thresholds: Arc::new(thresholds),
            own_group,
            dlq_configured: false,
        }
    }

    /// Whether DLQ topics are consumed: the DLQ card says "not available"
    /// otherwise (the depth of anything stored is still shown).
    pub fn with_dead_letter_topics(mut self, configured: bool) -> OverviewService {
        self.dlq_configured = configured;
        self
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    #[tracing::instrument(skip(self), err)]
    pub async fn overview(
        &self,
        window: MetricsWindow,
        now: Timestamp,
    ) -> Result<OverviewMetrics, StoreError> {
        let rollups = self.store.window_metrics(window, now).await?;
        let groups = self.groups.snapshot();
        let mut overview = OverviewMetrics {
            window,
            from: rollups.from,
            to: rollups.to,
            point_seconds: window.point_seconds(),
            totals: rollups.totals,
            saga_types: rollups.saga_types,
            topics: rollups.topics,
            ingest: self.ingest_health(rollups.ingest, &groups),
            groups,
            dlq: self.dlq_summary(now).await?,
            alerts: Vec::new(),
            incomplete_compensations: self
                .store
                .count_incomplete_compensations(rollups.from)
                .await?,
        };
        let catching_up = catching_up_group(
            self.own_group.as_deref(),
            &overview.groups,
            self.ingest.as_ref().map(|status| status.caught_up_at()),
        );
        overview.alerts = evaluate_alerts_catching_up(&self.thresholds, &mut overview, catching_up);
        Ok(overview)
    }

    /// One saga type with its steps; None when no saga of that type
    /// started in the window.
    pub async fn saga_type(
        &self,
        saga_type: &str,
        window: MetricsWindow,
        now: Timestamp,
    ) -> Result<Option<SagaTypeMetrics>, StoreError> {
        let overview = self.overview(window, now).await?;
        Ok(overview
            .saga_types
            .into_iter()
            .find(|t| t.saga_type == saga_type))
    }

    pub async fn lag(
        &self,
        window: MetricsWindow,
        now: Timestamp,
    ) -> Result<LagReport, StoreError> {
        let overview = self.overview(window, now).await?;
        Ok(LagReport {
            window,
            from: overview.from,
            to: overview.to,
            point_seconds: overview.point_seconds,
            topics: overview.topics,
            groups: overview.groups,
        })
    }

    pub async fn alerts(
        &self,
        window: MetricsWindow,
        now: Timestamp,
    ) -> Result<AlertList, StoreError> {
        let overview = self.overview(window, now).await?;
        Ok(AlertList {
            window,
            alerts: overview.alerts,
        })
    }

    /// Depth and oldest age per DLQ topic and in total (levels are set
    /// with the other thresholds).
    async fn dlq_summary(&self, now: Timestamp) -> Result<DlqSummary, StoreError> {
        let topics = self.store.dlq_depth_by_topic(now).await?;
        let oldest_open_at = topics.iter().filter_map(|t| t.oldest_open_at).min();
        let note = if !self.dlq_configured {
            "No dead-letter topics are consumed: see --dlq-topics."
        } else if topics.is_empty() {
            "No dead letters so far."
        } else {
            ""
        };
        Ok(DlqSummary {
            available: self.dlq_configured,
            note: note.to_string(),
            depth: topics.iter().map(|t| t.depth).sum(),
            oldest_open_at,
            oldest_age_ms: oldest_open_at.map(|t| (now - t).num_milliseconds().max(0)),
            topics,
            level: AlertLevel::Ok,
        })
    }

    fn ingest_health(
        &self,
        mut health: IngestHealth,
        groups: &[sagascope_model::GroupLag],
    ) -> IngestHealth {
        match &self.ingest {
            None => health.state = "not_consuming".to_string(),
            Some(status) => {
                let view = status.view();
                let (state, reason) = match view.state {
                    sagascope_ingest::ConsumerState::Starting => ("starting", None),
                    sagascope_ingest::ConsumerState::Running => ("running", None),
                    sagascope_ingest::ConsumerState::Degraded { reason, .. } => {
                        ("degraded", Some(reason))
                    }
                    sagascope_ingest::ConsumerState::Stopped => ("stopped", None),
                };
                health.state = state.to_string();
                health.reason = reason;
                // Information, never an alert: see `sagascope_ingest`'s
                // catch-up.
                health.catchup = view.catchup;
            }
        }
        health.own_lag = self.own_group.as_ref().and_then(|own| {
            groups
                .iter()
                .find(|g| &g.group == own && g.error.is_none())
                .map(|g| g.lag)
        });
        health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn polled(group: &str, observed_at: i64) -> GroupLag {
        GroupLag {
            group: group.into(),
            lag: 1074,
            partitions: vec![],
            error: None,
            observed_at: Some(at(observed_at)),
            level: AlertLevel::Ok,
        }
    }

    #[test]
    fn own_group_lag_is_the_catch_up_until_a_poll_after_its_end() {
        let groups = [polled("sagascope", 10), polled("payments", 10)];
        let own = Some("sagascope");
        // No partitions yet, or still catching up.
        assert_eq!(catching_up_group(own, &groups, Some(None)), own);
        // Polled before the catch-up ended at 12 s.
        assert_eq!(catching_up_group(own, &groups, Some(Some(at(12)))), own);
        // Polled after it: real lag.
        assert_eq!(catching_up_group(own, &groups, Some(Some(at(9)))), None);
        // No ingest in this process, no own group, or not polled.
        assert_eq!(catching_up_group(own, &groups, None), None);
        assert_eq!(catching_up_group(None, &groups, Some(None)), None);
        assert_eq!(catching_up_group(Some("other"), &groups, Some(None)), None);
    }
}
