//! Re-drive (retry) records: requests keyed by their idempotency key,
//! attempts (one per re-driven copy), bulk jobs with their frozen set of
//! dead letters, and the sweep that resolves re-driven dead letters
//! (migration 0006). The producing itself lives in `sagascope-redrive`;
//! everything here is a state change of the database, one behaviour on
//! Postgres and SQLite.
//!
//! A dead letter moves `new → retry_requested` together with its attempt
//! row (one transaction), then `→ retried` with the broker's partition and
//! offset once acked, or back to `new` with the error. Every move is a
//! compare-and-set on the state, so two operators, two jobs or two
//! replicas never re-drive one dead letter twice.

mod claim_single;
mod discard;
mod finish_attempts;
mod in_flight_items;
mod job_chunks;
mod jobs;
mod preview;
mod read;
mod resolve_sweep;
mod rows;

pub use claim_single::{ClaimedRetry, NewRetry, RetryClaim};
pub use discard::DiscardOutcome;
pub use finish_attempts::AttemptResult;
pub use in_flight_items::{InFlightItem, NOT_PRODUCED};
pub use job_chunks::{ChunkClaim, ClaimedChunk, JobItem, RetryPayload};
pub use jobs::{CancelOutcome, ClaimedJob, JobCreation, NewRetryJob};
pub use preview::{RetryableSource, NO_ORIGINAL_TOPIC};
pub use resolve_sweep::{InterruptedReport, ResolveReport, INTERRUPTED, SAGA_PROGRESSED};

/// Attempt outcomes.
pub(crate) const PENDING: &str = "pending";
pub(crate) const PRODUCED: &str = "produced";
pub(crate) const FAILED: &str = "failed";

/// Job item statuses besides the attempt outcomes.
pub(crate) const IN_FLIGHT: &str = "in_flight";
pub(crate) const SKIPPED: &str = "skipped";

/// Rows per statement of the batched updates, and the largest chunk a
/// job claims at once: at most ~4,000 binds a statement, far below both
/// backends' limits. (The re-drive picks 500 on SQLite and 1,000 on
/// Postgres, where fewer, larger statements plan faster.)
pub const RETRY_CHUNK: usize = 1000;
