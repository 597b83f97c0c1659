//! One retry in three steps, so the caller can write its audit entry after
//! the claim and before anything leaves the process:
//! 1. [`RedriveService::claim_retry`]: the idempotency key, the state move
//!    and the attempt row (or the earlier outcome of the same key);
//! 2. [`RedriveService::produce_claimed`]: the copy, the ack, the record;
//! 3. or [`RedriveService::abandon_claimed`] when the audit failed: the
//!    dead letter goes back to `new` and nothing is produced.

use std::time::{Duration, Instant};

use opentelemetry::trace::SpanContext;
use sagascope_model::{RetryOutcome, RETRYABLE_STATES};
use sagascope_store::{AttemptResult, ClaimedRetry, NewRetry, RetryClaim, RetryPayload};

use crate::produce_span::{current_span_context, produce_traced, ProduceOf};
use crate::{new_id, RedriveError, RedriveService};

/// How often a request waits on the first one with its key.
const REPLAY_POLL: Duration = Duration::from_millis(100);

/// A retry asked for by `actor`.
#[derive(Debug, Clone, Copy)]
pub struct RetryCommand<'a> {
    pub dead_letter_id: &'a str,
    pub idempotency_key: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
}

/// A claimed retry, not produced yet.
#[derive(Debug, Clone)]
pub struct ClaimedSingleRetry {
    pub claimed: ClaimedRetry,
    payload: RetryPayload,
    actor: String,
}

#[derive(Debug, Clone)]
pub enum SingleRetryClaim {
    /// Ours: audit, then produce (or abandon).
    Claimed(ClaimedSingleRetry),
    /// The key's first request already answered: this is its outcome,
    /// `replayed: true`; nothing more happens.
    Replayed(RetryOutcome),
}

impl RedriveService {
    /// Step 1 (see the module doc). A second request with the key of one
    /// still waiting for the broker waits for its outcome (up to
    /// `replay_wait`).
    #[tracing::instrument(skip(self, command), fields(dead_letter_id = command.dead_letter_id, actor = command.actor), err)]
    pub async fn claim_retry(
        &self,
        command: RetryCommand<'_>,
    ) -> Result<SingleRetryClaim, RedriveError> {
        let store = &self.inner.store;
        let id = command.dead_letter_id;
        let payload = store
            .retry_payloads(&[id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| RedriveError::NotFound(id.to_string()))?;
        let target = self
            .inner
            .config
            .target_for(&payload.dlq_topic, payload.original_topic.as_deref());
        let Some(target) = target else {
            return Err(if RETRYABLE_STATES.contains(&payload.state) {
                RedriveError::NoTarget {
                    id: id.to_string(),
                    dlq_topic: payload.dlq_topic,
                }
            } else {
                RedriveError::NotRetryable {
                    id: id.to_string(),
                    state: payload.state,
                }
            });
        };
        let deadline = Instant::now() + self.inner.config.replay_wait;
        loop {
            let attempt_id = new_id();
            let claim = store
                .claim_retry(&NewRetry {
                    dead_letter_id: id,
                    idempotency_key: command.idempotency_key,
                    attempt_id: &attempt_id,
                    actor: command.actor,
                    reason: command.reason,
                    target_topic: &target,
                    at: chrono::Utc::now(),
                })
                .await?;
            return match claim {
                RetryClaim::Claimed(claimed) => Ok(SingleRetryClaim::Claimed(ClaimedSingleRetry {
                    claimed,
                    payload,
                    actor: command.actor.to_string(),
                })),
                RetryClaim::Replayed(outcome) => Ok(SingleRetryClaim::Replayed(outcome)),
                RetryClaim::InFlight { attempt_id } => {
                    if Instant::now() >= deadline {
                        Err(RedriveError::StillInFlight { attempt_id })
                    } else {
                        tokio::time::sleep(REPLAY_POLL).await;
                        continue;
                    }
                }
                RetryClaim::KeyUsedElsewhere { target } => {
                    Err(RedriveError::KeyUsedElsewhere { target })
                }
                RetryClaim::NotFound => Err(RedriveError::NotFound(id.to_string())),
                RetryClaim::NotRetryable(state) => Err(RedriveError::NotRetryable {
                    id: id.to_string(),
                    state,
                }),
            };
        }
    }

    /// Step 2: produces the copy, waits for the ack and records it. A
    /// refusal puts the dead letter back to `new` and releases the key.
    /// The copy's `redrive.produce` span links to the span this is called
    /// in: the operator's request.
    pub async fn produce_claimed(
        &self,
        retry: ClaimedSingleRetry,
    ) -> Result<RetryOutcome, RedriveError> {
        let request = current_span_context();
        self.produce_claimed_for(retry, request).await
    }

    #[tracing::instrument(name = "produce_claimed", skip(self, retry, request), fields(attempt_id = %retry.claimed.attempt_id, target = %retry.claimed.target_topic), err)]
    async fn produce_claimed_for(
        &self,
        retry: ClaimedSingleRetry,
        request: Option<SpanContext>,
    ) -> Result<RetryOutcome, RedriveError> {
        let claimed = &retry.claimed;
        let result = produce_traced(
            &self.inner.producer,
            ProduceOf {
                topic: &claimed.target_topic,
                payload: &retry.payload,
                retry_count: claimed.retry_count,
                attempt_id: &claimed.attempt_id,
                request: request.as_ref(),
            },
        )
        .await;
        let outcome = self
            .inner
            .store
            .finish_retry(
                &AttemptResult {
                    attempt_id: claimed.attempt_id.clone(),
                    dead_letter_id: claimed.dead_letter_id.clone(),
                    result: result.clone(),
                },
                &format!("re-driven to {} by {}", claimed.target_topic, retry.actor),
                chrono::Utc::now(),
            )
            .await?;
        match result {
            Ok(_) => Ok(outcome),
            Err(error) => Err(RedriveError::BrokerRefused {
                outcome: Box::new(outcome),
                error,
            }),
        }
    }

    /// Step 3, instead of 2: nothing is produced; the attempt keeps `why`.
    #[tracing::instrument(skip(self, retry), fields(attempt_id = %retry.claimed.attempt_id), err)]
    pub async fn abandon_claimed(
        &self,
        retry: ClaimedSingleRetry,
        why: &str,
    ) -> Result<(), RedriveError> {
        self.inner
            .store
            .finish_retry(
                &AttemptResult {
                    attempt_id: retry.claimed.attempt_id.clone(),
                    dead_letter_id: retry.claimed.dead_letter_id.clone(),
                    result: Err(why.to_string()),
                },
                "",
                chrono::Utc::now(),
            )
            .await?;
        Ok(())
    }
}
