//! Shared ingest health, read by `/readyz` and the UI.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use sagascope_model::IngestCatchUp;
use serde::Serialize;

use crate::catchup::CatchUp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsumerState {
    Starting,
    Running,
    /// Kafka or the store failed; the loop keeps retrying.
    Degraded {
        reason: String,
        since_us: i64,
    },
    Stopped,
}

#[derive(Debug)]
pub struct IngestStatus {
    state: Mutex<ConsumerState>,
    pub messages: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub ingest_errors: AtomicU64,
    /// Understood but not events (Debezium updates, deletes, tombstones).
    pub ignored: AtomicU64,
    pub batches: AtomicU64,
    pub last_batch_at_us: AtomicI64,
    /// The start-up catch-up (see [`crate::catchup`]).
    catchup: Mutex<CatchUp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestStatusView {
    #[serde(flatten)]
    pub state: ConsumerState,
    pub messages: u64,
    pub events: u64,
    pub duplicates: u64,
    pub ingest_errors: u64,
    pub ignored: u64,
    pub batches: u64,
    pub last_batch_at_us: Option<i64>,
    /// Partitions assigned to this consumer.
    pub assigned_partitions: usize,
    /// The start-up catch-up, once the consumer had a backlog.
    pub catchup: Option<IngestCatchUp>,
}

impl Default for IngestStatus {
    fn default() -> Self {
        IngestStatus {
            state: Mutex::new(ConsumerState::Starting),
            messages: AtomicU64::new(0),
            events: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            ingest_errors: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            last_batch_at_us: AtomicI64::new(0),
            catchup: Mutex::new(CatchUp::default()),
        }
    }
}

impl IngestStatus {
    pub fn set_state(&self, state: ConsumerState) {
        let mut current = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the first time of a continuing degradation.
        if let (
            ConsumerState::Degraded { since_us: old, .. },
            ConsumerState::Degraded { reason, .. },
        ) = (&*current, &state)
        {
            *current = ConsumerState::Degraded {
                reason: reason.clone(),
                since_us: *old,
            };
            return;
        }
        *current = state;
    }

    pub fn degraded(&self, reason: impl Into<String>) {
        self.set_state(ConsumerState::Degraded {
            reason: reason.into(),
            since_us: chrono::Utc::now().timestamp_micros(),
        });
    }

    /// The catch-up tracker, locked for `f`.
    pub fn catch_up<R>(&self, f: impl FnOnce(&mut CatchUp) -> R) -> R {
        f(&mut self.catchup.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The catch-up report now, if the consumer had a backlog.
    pub fn catch_up_view(&self) -> Option<IngestCatchUp> {
        self.catch_up(|c| c.view(chrono::Utc::now()))
    }

    /// When the consumer got past the backlog it found at start (see
    /// [`CatchUp::caught_up_at`]).
    pub fn caught_up_at(&self) -> Option<sagascope_model::Timestamp> {
        self.catch_up(|c| c.caught_up_at())
    }

    pub fn state(&self) -> ConsumerState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn view(&self) -> IngestStatusView {
        let last = self.last_batch_at_us.load(Ordering::Relaxed);
        IngestStatusView {
            state: self.state(),
            messages: self.messages.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            ingest_errors: self.ingest_errors.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            last_batch_at_us: (last > 0).then_some(last),
            assigned_partitions: self.catch_up(|c| c.assigned_partitions()),
            catchup: self.catch_up_view(),
        }
    }
}
