//! Compensation integrity by the learned pairs: each round, every learned
//! type's latest compensated sagas teach which compensation undoes which
//! forward step (`sagascope_domain::learn_compensation_pairs`), and the
//! sagas among them that skipped one are flagged with the step named. The
//! events alone cannot tell: an orchestrator compensates `ReserveStock` by
//! a step named `ReleaseStock`. A rules file may state the pairs
//! (`compensations` of a `[[saga]]`); those win over learned ones.

use sagascope_domain::{
    learn_compensation_pairs, missing_compensations, CompensatedSteps, CompensationPairs,
};
use sagascope_model::{SagaStatus, FLOW_MAX_INSTANCES};
use sagascope_store::Store;

/// Judges the latest compensated sagas of `saga_type` by the pairs learned
/// from them, and by the rules file's pairs (`declared`, which win for the
/// steps they name), and stores what changed; returns how many sagas
/// changed.
pub async fn check_compensations(
    store: &Store,
    saga_type: &str,
    declared: Option<&CompensationPairs>,
) -> sagascope_store::Result<u64> {
    let sagas = store
        .compensated_sagas(saga_type, FLOW_MAX_INSTANCES)
        .await?;
    if sagas.is_empty() {
        return Ok(0);
    }
    let history: Vec<CompensatedSteps> = sagas.iter().map(|s| s.steps.clone()).collect();
    let mut pairs = learn_compensation_pairs(&history);
    if let Some(declared) = declared {
        pairs.extend(declared.iter().map(|(f, c)| (f.clone(), c.clone())));
    }
    let changes: Vec<(String, Vec<String>)> = sagas
        .into_iter()
        .filter_map(|saga| {
            let missing = missing_compensations(&saga.steps, SagaStatus::Compensated, &pairs);
            (missing != saga.missing).then_some((saga.saga_id, missing))
        })
        .collect();
    if changes.is_empty() {
        return Ok(0);
    }
    store.set_missing_compensations(&changes).await
}
