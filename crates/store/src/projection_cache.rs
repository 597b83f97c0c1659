//! The projections of live sagas, in memory, so that the ingest does not
//! read a saga's row before writing it. Only a hint: each entry carries
//! the row's `version`, and the write is a compare-and-set on it (see
//! `project_sagas.rs`), so a row another writer changed (a second replica,
//! the stall sweep, a reprojection, retention) is detected, re-read and
//! merged again, never overwritten.
//!
//! Bounded: finished sagas are not kept (they rarely get another event),
//! entries idle for [`MAX_IDLE`] go, and past [`CAPACITY`] the least
//! recently used quarter goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sagascope_domain::SagaProjection;
use sagascope_model::SagaStatus;

/// About 2–4 KB each: tens of MB at most.
pub(crate) const CAPACITY: usize = 20_000;
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(600);

/// A saga row as stored: its compare-and-set version, the status column
/// (which the stall sweep may have set apart from the projection) and the
/// projection.
#[derive(Debug, Clone)]
pub(crate) struct StoredSaga {
    pub version: i64,
    pub status: SagaStatus,
    pub projection: SagaProjection,
}

#[derive(Debug, Default)]
pub(crate) struct ProjectionCache {
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<String, Entry>,
    /// Increases at every use: the eviction order.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    saga: StoredSaga,
    used_at: Instant,
    used_seq: u64,
}

impl ProjectionCache {
    /// The cached rows of `ids` (one lock for the lot).
    pub(crate) fn get_many<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, StoredSaga> {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.clock += 1;
        let seq = entries.clock;
        let mut found = HashMap::new();
        let (mut hits, mut misses) = (0, 0);
        for id in ids {
            match entries.by_id.get_mut(id) {
                Some(entry) => {
                    entry.used_at = now;
                    entry.used_seq = seq;
                    found.insert(id.to_string(), entry.saga.clone());
                    hits += 1;
                }
                None => misses += 1,
            }
        }
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
        found
    }

    /// Rows just committed. Finished sagas leave the cache instead.
    pub(crate) fn put(&self, sagas: Vec<(String, StoredSaga)>) {
        let now = Instant::now();
        let mut entries = self.lock();
        for (id, saga) in sagas {
            if saga.status.is_finished() {
                entries.by_id.remove(&id);
            } else {
                entries.clock += 1;
                let used_seq = entries.clock;
                entries.by_id.insert(
                    id,
                    Entry {
                        saga,
                        used_at: now,
                        used_seq,
                    },
                );
            }
        }
        if entries.by_id.len() > CAPACITY {
            entries
                .by_id
                .retain(|_, e| now.duration_since(e.used_at) < MAX_IDLE);
        }
        if entries.by_id.len() > CAPACITY {
            let mut used: Vec<u64> = entries.by_id.values().map(|e| e.used_seq).collect();
            used.sort_unstable();
            let keep_from = used[used.len() - CAPACITY * 3 / 4];
            entries.by_id.retain(|_, e| e.used_seq >= keep_from);
        }
    }

    pub(crate) fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut entries = self.lock();
        for id in ids {
            entries.by_id.remove(id);
        }
    }

    pub(crate) fn clear(&self) {
        self.lock().by_id.clear();
    }

    /// (hits, misses) since start, for the benchmark.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saga(id: &str, status: SagaStatus) -> (String, StoredSaga) {
        (
            id.to_string(),
            StoredSaga {
                version: 1,
                status,
                projection: SagaProjection::new(id),
            },
        )
    }

    #[test]
    fn keeps_live_sagas_drops_finished_ones_and_stays_bounded() {
        let cache = ProjectionCache::default();
        cache.put(vec![
            saga("a", SagaStatus::Running),
            saga("b", SagaStatus::Completed),
        ]);
        let found = cache.get_many(["a", "b"]);
        assert!(found.contains_key("a"));
        assert!(!found.contains_key("b"), "finished sagas are not kept");
        // Finishing a cached saga removes it.
        cache.put(vec![saga("a", SagaStatus::Failed)]);
        assert!(cache.get_many(["a"]).is_empty());

        let many: Vec<_> = (0..CAPACITY + 10)
            .map(|i| saga(&format!("s{i}"), SagaStatus::Running))
            .collect();
        cache.put(many);
        let kept = cache.lock().by_id.len();
        assert!(kept <= CAPACITY, "{kept} entries kept");
        assert!(kept >= CAPACITY / 2, "{kept} entries kept");
        assert_eq!(cache.counts(), (1, 2));
    }
}
