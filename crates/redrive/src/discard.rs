//! Discarding a dead letter: checked first (so a refusal is answered before
//! anything is audited as done), then a compare-and-set.

use sagascope_model::{DeadLetterDetail, DeadLetterSummary, DISCARDABLE_STATES};
use sagascope_store::DiscardOutcome;

use crate::{RedriveError, RedriveService};

impl RedriveService {
    /// The dead letter, if it can be discarded right now.
    #[tracing::instrument(skip(self), err)]
    pub async fn discardable(&self, id: &str) -> Result<DeadLetterSummary, RedriveError> {
        let detail = self
            .inner
            .store
            .dead_letter(id)
            .await?
            .ok_or_else(|| RedriveError::NotFound(id.to_string()))?;
        if DISCARDABLE_STATES.contains(&detail.summary.state) {
            Ok(detail.summary)
        } else {
            Err(RedriveError::NotDiscardable {
                id: id.to_string(),
                state: detail.summary.state,
            })
        }
    }

    /// Discards it (compare-and-set from `DISCARDABLE_STATES`).
    #[tracing::instrument(skip(self, reason), err)]
    pub async fn discard(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<DeadLetterDetail, RedriveError> {
        match self
            .inner
            .store
            .discard_dead_letter(id, actor, reason, chrono::Utc::now())
            .await?
        {
            DiscardOutcome::Discarded(detail) => Ok(*detail),
            DiscardOutcome::NotFound => Err(RedriveError::NotFound(id.to_string())),
            DiscardOutcome::NotDiscardable(state) => Err(RedriveError::NotDiscardable {
                id: id.to_string(),
                state,
            }),
        }
    }
}
