//! Sagas held up by a dead letter. When a service dead-letters a message,
//! the saga cannot go on: its remaining messages wait here until an
//! operator re-drives the dead letter and the demo's retry consumer
//! (`retry_consumer.rs`) processes the re-driven copy.
//!
//! The re-driven copy is the dead letter's key and value byte-exact on the
//! original topic, so (topic, key, value) finds the parked saga again; the
//! value is kept as a hash only, since the map may hold thousands of sagas.
//! The map is bounded: when full, the saga parked longest ago is dropped
//! (its dead letter, re-driven later, then simply succeeds).

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::message::{PlannedMessage, Traffic};

/// How many sagas the demo keeps parked at most: hours of the demo's
/// default traffic without a single re-drive.
pub const DEFAULT_PARKED_SAGAS_CAPACITY: usize = 10_000;

/// Where a parked saga waits: the dead-lettered message's original topic,
/// key bytes and a hash of its value bytes (None for a null value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParkingKey {
    topic: String,
    key: Vec<u8>,
    value_hash: Option<u64>,
}

impl ParkingKey {
    pub fn new(topic: &str, key: &[u8], value: Option<&[u8]>) -> ParkingKey {
        ParkingKey {
            topic: topic.to_string(),
            key: key.to_vec(),
            value_hash: value.map(value_hash),
        }
    }
}

/// `DefaultHasher::new()` uses fixed keys, so the hash is the same for the
/// same bytes throughout the process (the map never outlives it).
fn value_hash(value: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The rest of a saga whose message was dead-lettered.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedSaga {
    /// The whole saga (message indices stay those of the plan, since the
    /// outbox `id` header is rendered from them).
    pub traffic: Traffic,
    /// The first message not produced yet.
    pub resume_at: usize,
    /// The dead-lettered message's planned delay: the held messages keep
    /// their spacing after it when the saga resumes.
    pub failed_delay_ms: u64,
}

impl ParkedSaga {
    /// The messages still to produce, with their plan indices.
    pub fn held_messages(&self) -> impl Iterator<Item = (usize, &PlannedMessage)> {
        self.traffic
            .messages
            .iter()
            .enumerate()
            .skip(self.resume_at)
    }
}

/// The map shared by every clone of the simulator and its retry consumer.
#[derive(Debug, Clone)]
pub struct ParkedSagas {
    inner: Arc<Mutex<Parking>>,
}

#[derive(Debug)]
struct Parking {
    capacity: usize,
    /// Each key with its parking sequence number…
    sagas: HashMap<ParkingKey, (u64, ParkedSaga)>,
    /// …and the keys by sequence number, oldest first, for eviction.
    order: BTreeMap<u64, ParkingKey>,
    next_sequence: u64,
}

impl Default for ParkedSagas {
    fn default() -> ParkedSagas {
        ParkedSagas::with_capacity(DEFAULT_PARKED_SAGAS_CAPACITY)
    }
}

impl ParkedSagas {
    pub fn with_capacity(capacity: usize) -> ParkedSagas {
        ParkedSagas {
            inner: Arc::new(Mutex::new(Parking {
                capacity: capacity.max(1),
                sagas: HashMap::new(),
                order: BTreeMap::new(),
                next_sequence: 0,
            })),
        }
    }

    /// The map, even if a task panicked while holding it: every operation
    /// leaves it consistent before anything can panic.
    fn lock(&self) -> MutexGuard<'_, Parking> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parks `saga` under `key` (replacing what was parked there), dropping
    /// the longest-parked saga when full.
    pub fn park(&self, key: ParkingKey, saga: ParkedSaga) {
        let mut parking = self.lock();
        let sequence = parking.next_sequence;
        parking.next_sequence += 1;
        if let Some((previous, _)) = parking.sagas.remove(&key) {
            parking.order.remove(&previous);
        }
        while parking.sagas.len() >= parking.capacity {
            let Some((_, oldest)) = parking.order.pop_first() else {
                break;
            };
            parking.sagas.remove(&oldest);
        }
        parking.order.insert(sequence, key.clone());
        parking.sagas.insert(key, (sequence, saga));
    }

    /// Removes and returns the saga parked under `key`.
    pub fn take(&self, key: &ParkingKey) -> Option<ParkedSaga> {
        let mut parking = self.lock();
        let (sequence, saga) = parking.sagas.remove(key)?;
        parking.order.remove(&sequence);
        Some(saga)
    }

    pub fn contains(&self, key: &ParkingKey) -> bool {
        self.lock().sagas.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.lock().sagas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saga(trace_id: &str) -> ParkedSaga {
        ParkedSaga {
            traffic: Traffic {
                trace_id: trace_id.into(),
                messages: Vec::new(),
            },
            resume_at: 0,
            failed_delay_ms: 0,
        }
    }

    #[test]
    fn the_key_is_byte_exact_on_topic_key_and_value() {
        let key = ParkingKey::new("payments.events", b"ord-1", Some(b"{\"a\":1}"));
        assert_eq!(
            key,
            ParkingKey::new("payments.events", b"ord-1", Some(b"{\"a\":1}"))
        );
        for other in [
            ParkingKey::new("payments.events.DLT", b"ord-1", Some(b"{\"a\":1}")),
            ParkingKey::new("payments.events", b"ord-2", Some(b"{\"a\":1}")),
            ParkingKey::new("payments.events", b"ord-1", Some(b"{\"a\":2}")),
            ParkingKey::new("payments.events", b"ord-1", Some(b"{\"a\":1} ")),
            ParkingKey::new("payments.events", b"ord-1", Some(b"")),
            ParkingKey::new("payments.events", b"ord-1", None),
        ] {
            assert_ne!(key, other);
        }
    }

    #[test]
    fn taking_removes_and_parking_again_replaces() {
        let parked = ParkedSagas::default();
        let key = ParkingKey::new("t", b"k", Some(b"v"));
        parked.park(key.clone(), saga("first"));
        parked.park(key.clone(), saga("second"));
        assert_eq!(parked.len(), 1);
        assert_eq!(parked.take(&key).unwrap().traffic.trace_id, "second");
        assert!(parked.take(&key).is_none());
        assert!(parked.is_empty());
    }

    #[test]
    fn when_full_the_longest_parked_saga_goes() {
        let parked = ParkedSagas::with_capacity(2);
        let keys: Vec<ParkingKey> = (0..4u8)
            .map(|i| ParkingKey::new("t", &[i], Some(b"v")))
            .collect();
        parked.park(keys[0].clone(), saga("0"));
        parked.park(keys[1].clone(), saga("1"));
        // Re-parking 0 makes it the newest: 1 goes first.
        parked.park(keys[0].clone(), saga("0 again"));
        parked.park(keys[2].clone(), saga("2"));
        assert_eq!(parked.len(), 2);
        assert!(!parked.contains(&keys[1]));
        parked.park(keys[3].clone(), saga("3"));
        assert!(!parked.contains(&keys[0]));
        assert!(parked.contains(&keys[2]) && parked.contains(&keys[3]));
    }

    #[test]
    fn clones_share_one_map() {
        let parked = ParkedSagas::default();
        let key = ParkingKey::new("t", b"k", None);
        parked.clone().park(key.clone(), saga("shared"));
        assert!(parked.contains(&key));
    }
}
