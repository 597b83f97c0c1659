//! An operator gives up on a dead letter: compare-and-set from the
//! discardable states, with the reason.

use sagascope_model::{DeadLetterDetail, DeadLetterState, Timestamp, DISCARDABLE_STATES};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub enum DiscardOutcome {
    Discarded(Box<DeadLetterDetail>),
    NotFound,
    /// In a state it cannot be discarded from; nothing changed.
    NotDiscardable(DeadLetterState),
}

impl Store {
    /// Discards dead letter `id` if it is in one of `DISCARDABLE_STATES`.
    #[tracing::instrument(skip(self, reason), err)]
    pub async fn discard_dead_letter(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<DiscardOutcome> {
        let state_reason = format!("discarded by {actor}: {reason}");
        let changed = self
            .set_dead_letter_state(
                id,
                &DISCARDABLE_STATES,
                DeadLetterState::Discarded,
                Some(&state_reason),
                at,
            )
            .await?;
        Ok(match self.dead_letter(id).await? {
            None => DiscardOutcome::NotFound,
            Some(detail) if changed => DiscardOutcome::Discarded(Box::new(detail)),
            Some(detail) => DiscardOutcome::NotDiscardable(detail.summary.state),
        })
    }
}
