//! Compensation integrity: a saga that reads compensated while a forward
//! step that completed was never compensated is "wrong but green"
//! (issue 16). Which compensation undoes which step is rarely stated by
//! the events: an orchestrator reports `STEP_COMPENSATED ReleaseStock`
//! for the forward `ReserveStock`. So a step counts as compensated when a
//! compensation event names the step itself, or names a step its type's
//! compensated instances pair with it ([`learn_compensation_pairs`]).
//!
//! Pure: the projection keeps each saga's succeeded and compensation
//! steps; the store and the learned-flow pass call these.

use std::collections::{BTreeMap, BTreeSet};

use sagascope_model::SagaStatus;

use crate::projection::SagaProjection;

/// Forward step → the steps whose compensation events undo it.
pub type CompensationPairs = BTreeMap<String, BTreeSet<String>>;

/// A pair is learned from at least this many compensated instances in
/// which the forward step succeeded…
pub const PAIR_MIN_INSTANCES: usize = 3;
/// …in at least this share of which the compensation step appears (an
/// occasional incomplete compensation must not unlearn its own pair)…
pub const PAIR_MIN_SHARE: f64 = 0.8;
/// …while it appears in at most this share of the compensated instances
/// in which the forward step did not succeed: a compensation every
/// instance runs (`ScanRewardCompensated`) pairs with no step in
/// particular unless the step always precedes it.
pub const PAIR_MAX_SHARE_WITHOUT: f64 = 0.2;

/// The steps of one compensated instance that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompensatedSteps {
    /// Steps with a `step_succeeded` event that did not also fail.
    pub succeeded: BTreeSet<String>,
    /// Steps named by a compensation request or done event.
    pub compensation: BTreeSet<String>,
}

impl CompensatedSteps {
    pub fn of(projection: &SagaProjection) -> CompensatedSteps {
        CompensatedSteps {
            succeeded: projection
                .succeeded_steps
                .iter()
                .filter(|step| !projection.steps.get(*step).is_some_and(|s| s.failed))
                .cloned()
                .collect(),
            compensation: projection.compensation_steps.clone(),
        }
    }
}

/// The forward steps of a saga that reads `status` and are not
/// compensated, by name: empty unless the saga is compensated. A step
/// counts as expecting a compensation when `pairs` pairs it, or, with no
/// pair for it, when the saga compensated another of its forward steps by
/// that step's own name (it names its compensations so).
pub fn missing_compensations(
    steps: &CompensatedSteps,
    status: SagaStatus,
    pairs: &CompensationPairs,
) -> Vec<String> {
    if status != SagaStatus::Compensated {
        return Vec::new();
    }
    let names_own_steps = steps
        .succeeded
        .iter()
        .any(|step| steps.compensation.contains(step));
    steps
        .succeeded
        .iter()
        .filter(|step| !steps.compensation.contains(*step))
        .filter(|step| match pairs.get(*step) {
            Some(undoers) => undoers.is_disjoint(&steps.compensation),
            None => names_own_steps,
        })
        .cloned()
        .collect()
}

/// The step ↔ compensation pairs of a type, from its compensated
/// instances: a forward step pairs with itself once a compensation event
/// named it in some instance, and with a compensation step that appears
/// in most instances where the step succeeded and rarely where it did not.
pub fn learn_compensation_pairs(instances: &[CompensatedSteps]) -> CompensationPairs {
    let forward: BTreeSet<&String> = instances.iter().flat_map(|i| &i.succeeded).collect();
    let compensations: BTreeSet<&String> = instances.iter().flat_map(|i| &i.compensation).collect();
    let mut pairs = CompensationPairs::new();
    for step in forward {
        let (with, without): (Vec<&CompensatedSteps>, Vec<&CompensatedSteps>) =
            instances.iter().partition(|i| i.succeeded.contains(step));
        let mut undoers = BTreeSet::new();
        if with.iter().any(|i| i.compensation.contains(step)) {
            undoers.insert(step.clone());
        }
        if with.len() >= PAIR_MIN_INSTANCES {
            for &compensation in &compensations {
                if compensation == step {
                    continue;
                }
                let share = |set: &[&CompensatedSteps]| {
                    let n = set
                        .iter()
                        .filter(|i| i.compensation.contains(compensation))
                        .count();
                    n as f64 / set.len().max(1) as f64
                };
                if share(&with[..]) >= PAIR_MIN_SHARE
                    && share(&without[..]) <= PAIR_MAX_SHARE_WITHOUT
                {
                    undoers.insert(compensation.clone());
                }
            }
        }
        if !undoers.is_empty() {
            pairs.insert(step.clone(), undoers);
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(succeeded: &[&str], compensation: &[&str]) -> CompensatedSteps {
        CompensatedSteps {
            succeeded: succeeded.iter().map(|s| s.to_string()).collect(),
            compensation: compensation.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The demo's orchestrated order: ReserveStock succeeds, the payment
    /// fails, the orchestrator compensates with ReleaseStock.
    fn order_history() -> Vec<CompensatedSteps> {
        let mut history = vec![steps(&["ReserveStock"], &["ReleaseStock"]); 9];
        // One that skipped the release.
        history.push(steps(&["ReserveStock"], &[]));
        history
    }

    #[test]
    fn a_differently_named_compensation_is_paired_with_the_step_it_undoes() {
        let pairs = learn_compensation_pairs(&order_history());
        assert_eq!(
            pairs
                .get("ReserveStock")
                .map(|s| s.iter().collect::<Vec<_>>()),
            Some(vec![&"ReleaseStock".to_string()])
        );
        let skipped = steps(&["ReserveStock"], &[]);
        assert_eq!(
            missing_compensations(&skipped, SagaStatus::Compensated, &pairs),
            ["ReserveStock"]
        );
        let whole = steps(&["ReserveStock"], &["ReleaseStock"]);
        assert!(missing_compensations(&whole, SagaStatus::Compensated, &pairs).is_empty());
        // Only a compensated saga can be incompletely compensated.
        assert!(missing_compensations(&skipped, SagaStatus::Failed, &pairs).is_empty());
        assert!(missing_compensations(&skipped, SagaStatus::Compensating, &pairs).is_empty());
    }

    #[test]
    fn without_pairs_a_saga_that_names_its_compensations_by_step_is_judged_alone() {
        let none = CompensationPairs::new();
        let partial = steps(&["ReserveStock", "ChargeCard"], &["ChargeCard"]);
        assert_eq!(
            missing_compensations(&partial, SagaStatus::Compensated, &none),
            ["ReserveStock"]
        );
        // Compensations named otherwise say nothing without learned pairs.
        let other_names = steps(&["ReserveStock"], &["ReleaseStock"]);
        assert!(missing_compensations(&other_names, SagaStatus::Compensated, &none).is_empty());
        let nothing = steps(&["ReserveStock"], &[]);
        assert!(missing_compensations(&nothing, SagaStatus::Compensated, &none).is_empty());
    }

    #[test]
    fn a_step_compensated_by_its_own_name_in_some_instance_is_paired_with_itself() {
        let history = vec![
            steps(&["Reserve", "Charge"], &["Reserve", "Charge"]),
            steps(&["Reserve"], &["Reserve"]),
        ];
        let pairs = learn_compensation_pairs(&history);
        assert!(pairs["Reserve"].contains("Reserve"));
        assert!(pairs["Charge"].contains("Charge"));
        let skipped = steps(&["Reserve", "Charge"], &["Reserve"]);
        assert_eq!(
            missing_compensations(&skipped, SagaStatus::Compensated, &pairs),
            ["Charge"]
        );
    }

    #[test]
    fn a_compensation_every_instance_runs_pairs_with_no_occasional_step() {
        // ScanRewardCompensated ends every compensated scan reward, whether
        // or not the optional Enrich step ran before it.
        let mut history = vec![steps(&["Scan"], &["CompensateScanReward"]); 5];
        history.extend(vec![
            steps(&["Scan", "Enrich"], &["CompensateScanReward"]);
            5
        ]);
        let pairs = learn_compensation_pairs(&history);
        assert!(!pairs.contains_key("Enrich"), "{pairs:?}");
        // Scan precedes every instance: its pair is harmless, as each
        // compensated instance has that event.
        assert!(pairs["Scan"].contains("CompensateScanReward"));
        // Too few instances teach nothing.
        assert!(learn_compensation_pairs(&order_history()[..2]).is_empty());
    }

    #[test]
    fn a_step_that_failed_is_not_forward_work_to_undo() {
        let mut projection = SagaProjection::new("s");
        projection.succeeded_steps = ["Pay".to_string()].into_iter().collect();
        projection.steps.insert(
            "Pay".into(),
            crate::projection::StepSpan {
                first_us: 0,
                last_us: 1,
                failed: true,
            },
        );
        assert!(CompensatedSteps::of(&projection).succeeded.is_empty());
    }
}
