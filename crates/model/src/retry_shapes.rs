//! JSON shapes of the re-drive (retry) and discard actions
//! (`POST /api/v1/dlq/…`), their bulk jobs and their attempts, shared with
//! the browser build. Field names are part of the public contract.
//!
//! A retry produces the dead letter's key, value and headers byte-exact to
//! its original topic (or the configured target), without the DLQ's own
//! failure headers (`kafka_dlt-*`, `__connect.errors.*`) and with
//! `x-retry-of: {dead letter id}` and `x-retry-count: {n}` set, then waits
//! for the broker's ack. Each request carries an idempotency key: the same
//! key again answers with the first request's outcome and produces nothing.

use serde::{Deserialize, Serialize};

use crate::{DeadLetterState, DeadLetterSummary, DlqFilter, Timestamp};

/// Header naming the dead letter a re-driven message is a copy of.
pub const RETRY_OF_HEADER: &str = "x-retry-of";
/// Header counting the re-drives of a message (1 for the first).
pub const RETRY_COUNT_HEADER: &str = "x-retry-count";
/// HTTP request header carrying the idempotency key (the body field
/// `idempotency_key` works too).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The states a dead letter can be re-driven from. A `failed_again` one is
/// not: its returned copy is a dead letter of its own, retried instead.
pub const RETRYABLE_STATES: [DeadLetterState; 1] = [DeadLetterState::New];
/// The states a dead letter can be discarded from.
pub const DISCARDABLE_STATES: [DeadLetterState; 2] =
    [DeadLetterState::New, DeadLetterState::FailedAgain];

/// `POST /api/v1/dlq/{id}/retry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryRequest {
    /// Why; required, shown in the audit log.
    pub reason: String,
    /// Optional here when the `Idempotency-Key` header is sent.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `POST /api/v1/dlq/{id}/discard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscardRequest {
    pub reason: String,
}

/// `POST /api/v1/dlq/retry`: re-drive every retryable dead letter matching
/// `filter` (its `state`, `limit` and `cursor` are ignored: only
/// [`RETRYABLE_STATES`] are taken).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkRetryRequest {
    #[serde(default)]
    pub filter: DlqFilter,
    /// Required unless `dry_run`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Count only: answers a [`BulkRetryPreview`] and changes nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Retry one first, wait `canary_wait_s`, and go on only if it did not
    /// come back to a DLQ.
    #[serde(default)]
    pub canary: bool,
    /// Seconds to watch the canary (default 10).
    #[serde(default)]
    pub canary_wait_s: Option<u32>,
    /// Messages per second at most (none: as fast as the broker acks).
    #[serde(default)]
    pub throttle_per_s: Option<u32>,
    /// The count the operator confirmed (from the preview): the request is
    /// refused with 409 when the set frozen now differs. Required unless
    /// `dry_run` (400 without it): a bulk retry re-drives a set someone
    /// looked at, never an unseen one.
    #[serde(default)]
    pub expected_count: Option<u64>,
    /// Required (`true`) to re-drive with an empty filter, i.e. every
    /// retryable dead letter: an empty filter alone is refused with 400.
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The answer to a bulk retry with `dry_run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkRetryPreview {
    /// Exactly how many dead letters a bulk retry of this filter would
    /// re-drive now.
    pub count: u64,
    /// Per original topic (the produce targets): (topic, count).
    pub by_topic: Vec<(String, u64)>,
    /// The newest few of them.
    pub sample: Vec<DeadLetterSummary>,
}

/// The outcome of one single retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryOutcome {
    pub dead_letter_id: String,
    pub attempt_id: String,
    /// The dead letter's state afterwards (`retried` on success).
    pub state: DeadLetterState,
    pub target_topic: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// The `x-retry-count` produced.
    pub retry_count: u32,
    pub produced_at: Option<Timestamp>,
    /// True when this answer repeats an earlier request with the same
    /// idempotency key (nothing was produced this time).
    pub replayed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetryJobState {
    /// Frozen, not started.
    Pending,
    /// The canary was produced; waiting to see whether it comes back.
    Canary,
    Running,
    Completed,
    Cancelled,
    /// Stopped: the canary came back, or the broker refused.
    Failed,
}

impl RetryJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryJobState::Pending => "pending",
            RetryJobState::Canary => "canary",
            RetryJobState::Running => "running",
            RetryJobState::Completed => "completed",
            RetryJobState::Cancelled => "cancelled",
            RetryJobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<RetryJobState> {
        [
            RetryJobState::Pending,
            RetryJobState::Canary,
            RetryJobState::Running,
            RetryJobState::Completed,
            RetryJobState::Cancelled,
            RetryJobState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Still producing (or about to): can be cancelled.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RetryJobState::Pending | RetryJobState::Canary | RetryJobState::Running
        )
    }
}

/// A bulk retry: its frozen set and its progress.
/// `GET /api/v1/dlq/retry-jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryJobView {
    pub id: String,
    pub created_at: Timestamp,
    /// Who asked, and why.
    pub actor: String,
    pub reason: String,
    /// The filter as a query string (`DlqFilter::to_query_string`).
    pub filter: String,
    pub state: RetryJobState,
    pub canary: bool,
    pub canary_id: Option<String>,
    pub throttle_per_s: Option<u32>,
    /// Size of the frozen set.
    pub total: u64,
    /// Produced and acked.
    pub produced: u64,
    /// The broker refused them (they stay `new`).
    pub failed: u64,
    /// Not produced: cancelled, or no longer retryable when their turn came.
    pub skipped: u64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Why it failed or was cancelled, and by whom.
    pub message: Option<String>,
}

impl RetryJobView {
    /// Handled so far (produced, failed or skipped).
    pub fn done(&self) -> u64 {
        self.produced + self.failed + self.skipped
    }
}

/// One re-drive of one dead letter (single or part of a job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryAttemptView {
    pub id: String,
    pub dead_letter_id: String,
    /// The bulk job it belonged to.
    pub job_id: Option<String>,
    pub actor: String,
    pub reason: String,
    pub requested_at: Timestamp,
    pub target_topic: String,
    /// The `x-retry-count` produced.
    pub retry_count: u32,
    /// pending, produced or failed.
    pub outcome: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub produced_at: Option<Timestamp>,
    pub error: Option<String>,
    /// The dead letter the re-driven copy became when it failed again.
    pub came_back_as: Option<String>,
}
