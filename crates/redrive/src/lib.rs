//! Re-drive (retry) of dead letters (DESIGN.md, "Retry (re-drive)").
//!
//! A retry produces the dead letter's key and value byte-exact, with its
//! headers minus the DLQ's own plus `x-retry-of` and `x-retry-count`, to
//! its original topic (or a `--retry-target`), and waits for the ack. One
//! idempotency key produces at most once. A bulk retry freezes the set its
//! filter matches, can send one canary first and watch whether it comes
//! back, and is run by a job runner a chunk at a time, throttled if asked,
//! cancellable between chunks and resumed after a crash, each dead letter
//! copied once. The resolve sweep
//! settles re-driven dead letters whose saga moved on or whose copy did
//! not come back.
//!
//! One file per concern:
//! - `retry_args.rs`: the flags ([`RetryArgs`]) and [`RedriveConfig`].
//! - `copy_headers.rs`: the headers of a copy.
//! - `copy_producer.rs`: the idempotent producer.
//! - `single_retry.rs`: claim → produce → record of one retry.
//! - `bulk_retry.rs`: preview and job creation.
//! - `job_runner.rs`: running the jobs; `resolve_loop.rs`: the sweep.
//! - `copy_finder.rs`: after a crash, which copies of the items left in
//!   flight are on their target topics (recorded) and which are not
//!   (produced again).
//! - `produce_span.rs`: the `redrive.produce` span of each copy, linked
//!   to the operator's request.
//!
//! The HTTP layer audits between the claim and the produce (see
//! [`RedriveService::claim_retry`]), so nothing is produced unaudited.

mod bulk_retry;
mod copy_finder;
mod copy_headers;
mod copy_producer;
mod job_runner;
mod produce_span;
mod resolve_loop;
mod retry_args;
mod single_retry;

use std::sync::Arc;

use rdkafka::error::KafkaError;
use sagascope_model::{DeadLetterState, RetryOutcome};
use sagascope_store::{Store, StoreError};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

pub use bulk_retry::{BulkRetryCommand, CreatedJob};
pub use copy_headers::{is_kept, redrive_headers};
pub use job_runner::ChunkTiming;
pub use retry_args::{
    default_chunk_size, duration_text, RedriveConfig, RetryArgs, DEFAULT_RESOLVE_AFTER,
};
pub use single_retry::{ClaimedSingleRetry, RetryCommand, SingleRetryClaim};

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no dead letter with id `{0}`")]
    NotFound(String),
    #[error("dead letter `{id}` is {} and cannot be retried (only new ones can)", state.as_str())]
    NotRetryable { id: String, state: DeadLetterState },
    #[error("dead letter `{id}` names no original topic and its DLQ topic `{dlq_topic}` has no --retry-target")]
    NoTarget { id: String, dlq_topic: String },
    #[error("{count} of the matching dead letters name no original topic and their DLQ topics ({}) have no --retry-target", dlq_topics.join(", "))]
    NoTargetInSet { count: u64, dlq_topics: Vec<String> },
    #[error("idempotency key already used for `{target}`")]
    KeyUsedElsewhere { target: String },
    #[error("the first request with this idempotency key (attempt {attempt_id}) is still waiting for the broker; ask again later")]
    StillInFlight { attempt_id: String },
    #[error("the broker refused the copy of `{}` to `{}`: {error}", outcome.dead_letter_id, outcome.target_topic)]
    BrokerRefused {
        outcome: Box<RetryOutcome>,
        error: String,
    },
    #[error("the filter now matches {actual} retryable dead letters, not the {expected} confirmed; preview again")]
    CountMismatch { expected: u64, actual: u64 },
    #[error("no retryable dead letter matches the filter")]
    EmptySet,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the re-drive producer: {0}")]
    Producer(#[from] KafkaError),
}

/// The re-drive: cheap to clone, one per process.
#[derive(Clone)]
pub struct RedriveService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: RedriveConfig,
    producer: copy_producer::CopyProducer,
    /// This process as a job runner (the lease holder's name).
    runner_id: String,
    /// Wakes the job runner when a job was released here.
    job_released: Notify,
    /// Where the runner reports each chunk (benchmarks).
    chunk_timings: Option<mpsc::UnboundedSender<ChunkTiming>>,
    /// The request span of each bulk job started here, for the links of
    /// its produce spans.
    job_links: produce_span::JobLinks,
}

impl std::fmt::Debug for RedriveService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedriveService")
            .field("brokers", &self.inner.config.brokers)
            .field("runner_id", &self.inner.runner_id)
            .finish()
    }
}

impl RedriveService {
    /// Creates the producer; nothing runs until [`RedriveService::start`].
    pub fn new(store: Store, config: RedriveConfig) -> Result<RedriveService, RedriveError> {
        RedriveService::build(store, config, None)
    }

    /// [`RedriveService::new`] whose job runner reports every chunk it
    /// finishes to `timings` (for `sagascope bench redrive`).
    pub fn with_chunk_timings(
        store: Store,
        config: RedriveConfig,
        timings: mpsc::UnboundedSender<ChunkTiming>,
    ) -> Result<RedriveService, RedriveError> {
        RedriveService::build(store, config, Some(timings))
    }

    fn build(
        store: Store,
        config: RedriveConfig,
        chunk_timings: Option<mpsc::UnboundedSender<ChunkTiming>>,
    ) -> Result<RedriveService, RedriveError> {
        let producer = copy_producer::CopyProducer::new(&config)?;
        Ok(RedriveService {
            inner: Arc::new(Inner {
                store,
                config,
                producer,
                runner_id: format!("runner-{}", uuid::Uuid::new_v4().simple()),
                job_released: Notify::new(),
                chunk_timings,
                job_links: produce_span::JobLinks::default(),
            }),
        })
    }

    pub fn config(&self) -> &RedriveConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Starts the job runner (which first resumes the jobs a stopped
    /// process left) and the resolve sweep, until `shutdown` turns true.
    pub fn start(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let runner = tokio::spawn(job_runner::run(self.clone(), shutdown.clone()));
        let sweep = tokio::spawn(resolve_loop::run(self.clone(), shutdown));
        let producer = self.inner.producer.clone();
        tokio::spawn(async move {
            let _ = runner.await;
            let _ = sweep.await;
            tokio::task::spawn_blocking(move || producer.flush())
                .await
                .ok();
        })
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
