//! A window's rollup rows summed per saga type, step, histogram, lag point
//! and topic, and a cache of the sum of a window's CLOSED buckets.
//!
//! Summing is what a wide window costs: the 24 h overview adds up 24 hour
//! buckets of tens of thousands of histogram rows on every request. The
//! closed buckets' sum only changes when one of them does, so it is kept
//! per window position (grain, from, to) together with the bucket entries
//! it was made of (`Arc`s of the rollup cache): a request whose closed
//! buckets are the very same entries reuses it and adds only its open
//! bucket. Exactness is the rollup cache's: an invalidated, expired or
//! re-read bucket is a new entry, so the sum is made again. The same cache,
//! keyed by all of a window's entries (the open bucket's too), keeps the
//! whole window's sum between two changes of its open bucket.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use sagascope_model::{IngestPoint, OutcomeCounts, SagaStatus};

use crate::rollup_cache::BucketRows;

/// Window positions kept: the overview's five windows, now and a grain ago.
const MAX_ENTRIES: usize = 16;

/// The rows of a window's buckets, summed.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowSums {
    /// Per saga type: the window's outcome counts and one per chart point.
    pub by_type: BTreeMap<String, (OutcomeCounts, Vec<OutcomeCounts>)>,
    /// Per (saga type, step): executions and failures.
    pub steps: BTreeMap<(String, String), (i64, i64)>,
    /// Per (series, subject, detail): count per value bucket.
    pub histograms: BTreeMap<(String, String, String), BTreeMap<i64, i64>>,
    /// Per (lag series, topic, chart point): count per value bucket.
    pub lag_points: BTreeMap<(String, String, usize), BTreeMap<i64, i64>>,
    pub topic_events: BTreeMap<String, i64>,
    pub ingest_points: Vec<IngestPoint>,
    pub events: i64,
    pub errors: i64,
}

pub(crate) fn count_status(counts: &mut OutcomeCounts, status: &str, n: i64, compensating: i64) {
    counts.started += n;
    counts.began_compensating += compensating;
    let parsed = SagaStatus::parse(status);
    match parsed {
        Some(SagaStatus::Running | SagaStatus::Compensating) => counts.running += n,
        Some(SagaStatus::Stalled) => counts.stalled += n,
        Some(SagaStatus::Completed) => counts.completed += n,
        Some(SagaStatus::Failed) => counts.failed += n,
        Some(SagaStatus::Compensated) => counts.compensated += n,
        Some(SagaStatus::CompensationFailed) => counts.compensation_failed += n,
        Some(SagaStatus::TimedOut) => counts.timed_out += n,
        None => {}
    }
    if parsed.is_some_and(SagaStatus::is_finished) {
        counts.finished += n;
    }
}

impl WindowSums {
    /// Empty sums with `ingest_points` chart points.
    pub fn new(ingest_points: Vec<IngestPoint>) -> WindowSums {
        WindowSums {
            ingest_points,
            ..Default::default()
        }
    }

    /// Adds one bucket's rows, counted at chart point `point`.
    pub fn add(&mut self, point: usize, rows: &BucketRows) {
        let points = self.ingest_points.len().max(1);
        for (saga_type, status, n, c) in &rows.sagas {
            let entry = match self.by_type.get_mut(saga_type) {
                Some(entry) => entry,
                None => self.by_type.entry(saga_type.clone()).or_insert_with(|| {
                    (
                        OutcomeCounts::default(),
                        vec![OutcomeCounts::default(); points],
                    )
                }),
            };
            count_status(&mut entry.0, status, *n, *c);
            count_status(&mut entry.1[point], status, *n, *c);
        }
        for (saga_type, step, n, f) in &rows.steps {
            let sums = self
                .steps
                .entry((saga_type.clone(), step.clone()))
                .or_default();
            sums.0 += n;
            sums.1 += f;
        }
        for (series, subject, detail, value, n) in &rows.histograms {
            let key = (series.clone(), subject.clone(), detail.clone());
            *self
                .histograms
                .entry(key)
                .or_default()
                .entry(*value)
                .or_default() += n;
            if series.ends_with("_lag") {
                *self
                    .lag_points
                    .entry((series.clone(), subject.clone(), point))
                    .or_default()
                    .entry(*value)
                    .or_default() += n;
            }
        }
        for (topic, e, x) in &rows.topics {
            *self.topic_events.entry(topic.clone()).or_default() += e;
            if let Some(at) = self.ingest_points.get_mut(point) {
                at.events += e;
                at.errors += x;
            }
            self.events += e;
            self.errors += x;
        }
    }
}

/// A window position: (grain in s, from µs, to µs).
pub(crate) type WindowKey = (i64, i64, i64);

/// The closed buckets' entries a sum was made of, and the sum.
type ClosedSums = (Vec<Arc<BucketRows>>, Arc<WindowSums>);

/// The sums of closed buckets, per window position (see the module).
#[derive(Debug, Default)]
pub(crate) struct ClosedSumsCache {
    entries: Mutex<HashMap<WindowKey, ClosedSums>>,
}

impl ClosedSumsCache {
    /// The sums of `closed` (in window order) for `key`, if they were made
    /// of exactly these entries.
    pub fn get(&self, key: WindowKey, closed: &[Arc<BucketRows>]) -> Option<Arc<WindowSums>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (parts, sums) = entries.get(&key)?;
        let same =
            parts.len() == closed.len() && parts.iter().zip(closed).all(|(a, b)| Arc::ptr_eq(a, b));
        same.then(|| sums.clone())
    }

    /// Keeps `sums` of `closed` for `key` (the entries are held, so an
    /// `Arc` address cannot be reused by another bucket's rows meanwhile).
    pub fn put(&self, key: WindowKey, closed: Vec<Arc<BucketRows>>, sums: Arc<WindowSums>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            // The oldest window position (smallest `from`) goes first.
            if let Some(oldest) = entries.keys().min_by_key(|k| k.1).copied() {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (closed, sums));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: i64) -> Arc<BucketRows> {
        Arc::new(BucketRows {
            sagas: vec![("order".into(), "completed".into(), n, 0)],
            histograms: vec![("saga".into(), "order".into(), String::new(), 1200, n)],
            ..Default::default()
        })
    }

    #[test]
    fn closed_sums_are_reused_only_for_the_same_bucket_entries() {
        let cache = ClosedSumsCache::default();
        let (a, b) = (rows(1), rows(2));
        let mut sums = WindowSums::new(vec![]);
        sums.add(0, &a);
        sums.add(0, &b);
        assert_eq!(sums.by_type["order"].0.completed, 3);
        assert_eq!(
            sums.histograms[&("saga".into(), "order".into(), String::new())][&1200],
            3
        );
        cache.put((60, 0, 120), vec![a.clone(), b.clone()], Arc::new(sums));
        assert!(cache.get((60, 0, 120), &[a.clone(), b.clone()]).is_some());
        // Equal rows in a new entry (a re-read, an invalidation) are not
        // the same entry: summed again.
        assert!(cache.get((60, 0, 120), &[a.clone(), rows(2)]).is_none());
        assert!(cache.get((60, 0, 120), std::slice::from_ref(&a)).is_none());
        assert!(cache.get((60, 60, 180), &[a, b]).is_none());
    }
}
