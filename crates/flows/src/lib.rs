//! Learned saga flows. Every few seconds the learner reads each recent
//! saga type's latest instances from the store and learns its flow
//! (`sagascope_domain::flow_learning`); [`FlowModels`] holds the results for
//! the API, the pages and the stall sweep, which ends undeclared instances
//! by them ([`FlowModels::learned_ends`]); the same round flags compensated
//! sagas that skipped a compensation ([`check_compensations`]).

mod compensation;

pub use compensation::check_compensations;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sagascope_domain::{learn_flow, learned_terminals, CompensationPairs, LearnContext};
use sagascope_model::{
    FlowModel, SagaStatus, SagaSummary, Timestamp, WaitingOn, FLOW_MAX_INSTANCES,
    FLOW_OVERDUE_FLOOR_MS,
};
use sagascope_store::{LearnedEnd, OverdueRule, Store};

/// Types whose flows are learned, at most (by name): one read each per
/// round.
pub const MAX_LEARNED_TYPES: usize = 64;

/// Types seen in this window are learned.
const RECENT_TYPES: chrono::Duration = chrono::Duration::hours(24);

/// The latest model of every learned saga type. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FlowModels {
    models: Arc<RwLock<BTreeMap<String, Arc<FlowModel>>>>,
    /// The rules file's step ↔ compensation pairs, by saga type.
    declared_compensations: Arc<RwLock<BTreeMap<String, CompensationPairs>>>,
}

impl FlowModels {
    pub fn get(&self, saga_type: &str) -> Option<Arc<FlowModel>> {
        self.read().get(saga_type).cloned()
    }

    /// Sets the step ↔ compensation pairs the rules file declares (they
    /// win over learned ones when sagas are judged).
    pub fn declare_compensations(&self, pairs: BTreeMap<String, CompensationPairs>) {
        *self
            .declared_compensations
            .write()
            .unwrap_or_else(|e| e.into_inner()) = pairs;
    }

    /// Every model, by saga type.
    pub fn all(&self) -> Vec<Arc<FlowModel>> {
        self.read().values().cloned().collect()
    }

    /// What the models decide for undeclared instances: their end events
    /// and quiet times (types with neither are left out).
    pub fn learned_ends(&self) -> Vec<LearnedEnd> {
        self.read()
            .values()
            .filter(|m| !m.declared)
            .map(|m| LearnedEnd {
                saga_type: m.saga_type.clone(),
                end_nodes: learned_terminals(m),
                quiet_after: m
                    .quiet_after_ms
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(Duration::from_millis),
            })
            .filter(|end| !end.end_nodes.is_empty() || end.quiet_after.is_some())
            .collect()
    }

    /// Which running sagas are overdue as of `now`: per type and flow
    /// node that does not end instances, its last event older than the p99
    /// of the hop the flow usually takes from there (and than
    /// [`FLOW_OVERDUE_FLOOR_MS`]).
    pub fn overdue_rules(&self, now: Timestamp) -> Vec<OverdueRule> {
        let now_us = sagascope_domain::micros(now);
        let models = self.read();
        let mut rules = Vec::new();
        for model in models.values() {
            for node in model.nodes.iter().filter(|n| !n.terminal) {
                let Some(p99) = model.usual_next(&node.name).and_then(|e| e.gap.p99_ms) else {
                    continue;
                };
                // As `FlowModel::waiting_on` judges one saga.
                let wait_ms = p99.max(FLOW_OVERDUE_FLOOR_MS);
                rules.push(OverdueRule {
                    saga_type: model.saga_type.clone(),
                    last_node: node.name.clone(),
                    cutoff_us: now_us.saturating_sub(wait_ms.saturating_mul(1000)),
                });
            }
        }
        rules
    }

    /// What `saga` waits for as of `now` by its type's flow: None when it
    /// is finished, its type has no model, or the flow expects nothing
    /// after its latest event.
    pub fn waiting_on(&self, saga: &SagaSummary, now: Timestamp) -> Option<WaitingOn> {
        if !matches!(saga.status, SagaStatus::Running | SagaStatus::Compensating) {
            return None;
        }
        let last = saga.last_node.as_deref()?;
        let waited_ms = (now - saga.last_event_at).num_milliseconds().max(0);
        self.get(&saga.saga_type)?.waiting_on(last, waited_ms)
    }

    /// Sets [`SagaSummary::waiting_on`] of each saga (a list page), so the
    /// browser shows it without the models.
    pub fn annotate_waiting(&self, sagas: &mut [SagaSummary], now: Timestamp) {
        for saga in sagas {
            saga.waiting_on = self.waiting_on(saga, now);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<FlowModel>>> {
        // A panic while holding the lock cannot leave the map half-written
        // (inserts are single calls): the data is still good.
        self.models.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Learns every recent saga type's flow as of `now` (one round) and
    /// replaces the models; returns how many types were learned. Types no
    /// longer recent are dropped.
    #[tracing::instrument(skip_all, err)]
    pub async fn learn(
        &self,
        store: &Store,
        now: Timestamp,
        stall_after: Duration,
    ) -> sagascope_store::Result<usize> {
        let types = store
            .recent_saga_types(now - RECENT_TYPES, MAX_LEARNED_TYPES)
            .await?;
        let stall_after_ms = i64::try_from(stall_after.as_millis()).unwrap_or(i64::MAX);
        let mut learned = BTreeMap::new();
        for saga_type in types {
            let sample = store
                .recent_flow_instances(&saga_type, FLOW_MAX_INSTANCES)
                .await?;
            if sample.instances.is_empty() {
                continue;
            }
            let context = LearnContext {
                now,
                stall_after_ms,
                declared: sample.declared * 2 > sample.instances.len(),
            };
            let model = learn_flow(&saga_type, &sample.instances, context);
            // The same round flags the type's incompletely compensated sagas.
            let declared = self
                .declared_compensations
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&saga_type)
                .cloned();
            check_compensations(store, &saga_type, declared.as_ref()).await?;
            learned.insert(saga_type, Arc::new(model));
        }
        let count = learned.len();
        *self.models.write().unwrap_or_else(|e| e.into_inner()) = learned;
        Ok(count)
    }
}
