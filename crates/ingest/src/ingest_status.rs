//! Shared ingest health, read by `/readyz` and the UI.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use regex::Regex;
use sagascope_model::IngestCatchUp;
use serde::Serialize;

use crate::catchup::CatchUp;

/// How librdkafka words a subscribed topic or `^pattern` that names no topic
/// in the cluster (yet): "Subscribed topic not available: {topic}: {error}".
const NOT_AVAILABLE_PREFIX: &str = "Subscribed topic not available: ";

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
    /// Subscriptions (names or `^patterns`) that match no topic yet: on a
    /// new cluster the default DLQ pattern matches nothing until the first
    /// dead letter. That is information, not a broken consumer.
    unmatched: Mutex<Vec<UnmatchedSubscription>>,
    /// `unmatched.len()`, read on the hot path without the lock.
    unmatched_count: AtomicUsize,
}

/// A subscription that matched no topic when librdkafka last looked.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedSubscription {
    pub subscription: String,
    pub since_us: i64,
    /// The pattern compiled, to notice the first message of a topic it
    /// matches (librdkafka reports the miss once, not its end).
    #[serde(skip)]
    matcher: Option<Regex>,
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
    /// Subscribed names or patterns that match no topic yet (information:
    /// the consumer is ready and picks such topics up when they appear).
    pub unmatched_subscriptions: Vec<UnmatchedSubscription>,
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
            unmatched: Mutex::new(Vec::new()),
            unmatched_count: AtomicUsize::new(0),
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

    /// librdkafka's client errors that only say a subscribed topic or
    /// pattern names no topic yet are remembered as information (true);
    /// anything else is for the caller to treat as a degradation (false).
    pub fn note_client_error(&self, reason: &str) -> bool {
        let Some(rest) = reason.strip_prefix(NOT_AVAILABLE_PREFIX) else {
            return false;
        };
        // Only "unknown topic" means "no such topic yet"; an authorisation
        // failure on a subscribed topic is a real problem.
        if !rest.to_ascii_lowercase().contains("unknown topic") {
            return false;
        }
        // "{topic}: Broker: Unknown topic or partition" (or "Local: …").
        let subscription = [": Broker: ", ": Local: "]
            .iter()
            .filter_map(|marker| rest.rfind(marker).map(|at| &rest[..at]))
            .next()
            .unwrap_or(rest)
            .trim();
        if subscription.is_empty() {
            return false;
        }
        let mut unmatched = self.unmatched.lock().unwrap_or_else(|e| e.into_inner());
        if !unmatched.iter().any(|u| u.subscription == subscription) {
            unmatched.push(UnmatchedSubscription {
                subscription: subscription.to_string(),
                since_us: chrono::Utc::now().timestamp_micros(),
                matcher: subscription
                    .starts_with('^')
                    .then(|| Regex::new(subscription).ok())
                    .flatten(),
            });
            self.unmatched_count
                .store(unmatched.len(), Ordering::Relaxed);
        }
        true
    }

    /// A message of `topic` arrived: subscriptions it matches are no longer
    /// unmatched. Costs one atomic load while nothing is unmatched.
    pub fn topic_seen(&self, topic: &str) {
        if self.unmatched_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut unmatched = self.unmatched.lock().unwrap_or_else(|e| e.into_inner());
        unmatched.retain(|u| match &u.matcher {
            Some(pattern) => !pattern.is_match(topic),
            None => u.subscription != topic,
        });
        self.unmatched_count
            .store(unmatched.len(), Ordering::Relaxed);
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
            unmatched_subscriptions: self
                .unmatched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            assigned_partitions: self.catch_up(|c| c.assigned_partitions()),
            catchup: self.catch_up_view(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matching_no_topic_is_information_until_a_topic_matches() {
        let status = IngestStatus::default();
        status.set_state(ConsumerState::Running);
        assert!(status.note_client_error(
            r"Subscribed topic not available: ^.*\.(DLT|dlq|DLQ)$: Broker: Unknown topic or partition"
        ));
        assert!(status
            .note_client_error("Subscribed topic not available: saga.state: Local: Unknown topic"));
        // Reported again: listed once.
        assert!(status.note_client_error(
            r"Subscribed topic not available: ^.*\.(DLT|dlq|DLQ)$: Broker: Unknown topic or partition"
        ));
        let view = status.view();
        assert_eq!(view.state, ConsumerState::Running);
        let listed: Vec<_> = view
            .unmatched_subscriptions
            .iter()
            .map(|u| u.subscription.as_str())
            .collect();
        assert_eq!(listed, [r"^.*\.(DLT|dlq|DLQ)$", "saga.state"]);

        status.topic_seen("events.order");
        assert_eq!(status.view().unmatched_subscriptions.len(), 2);
        status.topic_seen("orders.DLT");
        status.topic_seen("saga.state");
        assert!(status.view().unmatched_subscriptions.is_empty());
    }

    #[test]
    fn other_client_errors_are_not_information() {
        let status = IngestStatus::default();
        assert!(!status.note_client_error("1/1 brokers are down"));
        assert!(!status.note_client_error("Subscribed topic not available: "));
        assert!(!status.note_client_error(
            "Subscribed topic not available: saga.state: Broker: Topic authorization failed"
        ));
        assert!(status.view().unmatched_subscriptions.is_empty());
    }
}
