//! The overview's rollup rows of time buckets, in memory, per (grain,
//! bucket start): a window reads from the database only the buckets not
//! cached, so a request costs about the same whatever the window size and
//! however busy the overview. Closed buckets (ended by now) live up to
//! [`TTL`]; the open bucket, which every batch of live traffic changes,
//! up to [`OPEN_TTL`].
//!
//! Exact within this process: every writer of rollups invalidates the
//! (grain, bucket) keys its delta touched, before its write
//! (`Store::apply_rollups`) and again after its commit
//! ([`RollupCache::invalidate`]). The second one is what makes it exact:
//! a reader that began before a commit may have read the pre-commit rows;
//! each read takes a [`ReadTicket`] before it queries, and its rows are
//! stored only if no invalidation of their bucket came after the ticket.
//! So a pre-commit read is either stored before the post-commit
//! invalidation (which removes it) or refused (its ticket is older).
//!
//! Across processes: other replicas, `sagascope reproject` or a bulk load
//! write the same database through their own `Store`, and a store cannot
//! know whether it is the only writer (on SQLite either: another process
//! may open the file). Rather than carry every batch's touched buckets on
//! the live relay (which is lossy by design: a crash between a commit and
//! its NOTIFY loses it, and `reproject`/`bench load` do not run it), an
//! entry lives at most [`TTL`]: another writer's change to an already
//! closed bucket (a late event, a saga that ends after its start bucket
//! closed) shows within 10 s, and to the open bucket (another replica's
//! live traffic) within 1 s; this process's own writes show at once. The
//! price is one re-read of a window's closed buckets per TTL and window,
//! and of its open bucket per second.
//!
//! Bounded: at most [`MAX_ROWS`] rows (a few tens of MB); past that the
//! least recently used entries go.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (grain in seconds, bucket start in epoch microseconds).
pub(crate) type BucketKey = (i64, i64);

/// How long another process's change to a closed bucket may go unseen.
pub(crate) const TTL: Duration = Duration::from_secs(10);
/// How long another process's change to the open bucket may go unseen.
pub(crate) const OPEN_TTL: Duration = Duration::from_secs(1);
/// Rows kept over all entries (a row is ~100–200 bytes).
pub(crate) const MAX_ROWS: usize = 250_000;
/// Invalidated keys remembered for readers in flight; past that the list
/// is dropped and the reads in flight are not stored (conservative).
const MAX_INVALIDATED: usize = 20_000;

/// The rollup rows of one time bucket as stored (rows whose counts are
/// all zero left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BucketRows {
    /// (saga type, status, sagas, began compensating)
    pub sagas: Vec<(String, String, i64, i64)>,
    /// (saga type, step, executions, failures)
    pub steps: Vec<(String, String, i64, i64)>,
    /// (topic, events, errors)
    pub topics: Vec<(String, i64, i64)>,
    /// (series, subject, detail, value bucket in ms, n)
    pub histograms: Vec<(String, String, String, i64, i64)>,
}

impl BucketRows {
    /// No rows in any table.
    pub fn is_empty(&self) -> bool {
        self.sagas.is_empty()
            && self.steps.is_empty()
            && self.topics.is_empty()
            && self.histograms.is_empty()
    }

    /// Its weight in the cache's bound (an empty bucket counts one).
    fn weight(&self) -> usize {
        1 + self.sagas.len() + self.steps.len() + self.topics.len() + self.histograms.len()
    }
}

/// Taken before a database read: that read's buckets may be stored only
/// if none was invalidated after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTicket(u64);

#[derive(Debug)]
pub(crate) struct RollupCache {
    inner: Mutex<Inner>,
    ttl: Duration,
    open_ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for RollupCache {
    fn default() -> Self {
        RollupCache::new(TTL)
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<BucketKey, Entry>,
    rows: usize,
    /// Increases at every invalidation.
    seq: u64,
    /// The last invalidation (its `seq`) of each key invalidated since
    /// `forgotten_up_to`.
    invalidated: HashMap<BucketKey, u64>,
    /// Invalidations up to here are no longer listed: a ticket older than
    /// this may not store anything.
    forgotten_up_to: u64,
    /// Increases at every use: the eviction order.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    rows: Arc<BucketRows>,
    stored_at: Instant,
    /// [`TTL`] for a closed bucket, [`OPEN_TTL`] for an open one.
    ttl: Duration,
    used: u64,
}

impl RollupCache {
    pub(crate) fn new(ttl: Duration) -> RollupCache {
        RollupCache {
            inner: Mutex::default(),
            ttl,
            open_ttl: ttl.min(OPEN_TTL),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Before reading buckets from the database.
    pub(crate) fn ticket(&self) -> ReadTicket {
        ReadTicket(self.lock().seq)
    }

    /// The cached rows of `keys` that are younger than their TTL.
    pub(crate) fn get_many(
        &self,
        keys: impl IntoIterator<Item = BucketKey>,
    ) -> HashMap<BucketKey, Arc<BucketRows>> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        let mut found = HashMap::new();
        let (mut hits, mut misses) = (0, 0);
        for key in keys {
            let fresh = match inner.entries.get_mut(&key) {
                Some(entry) if now.duration_since(entry.stored_at) < entry.ttl => {
                    entry.used = used;
                    found.insert(key, entry.rows.clone());
                    true
                }
                Some(_) => {
                    inner.remove(&key);
                    false
                }
                None => false,
            };
            if fresh {
                hits += 1;
            } else {
                misses += 1;
            }
        }
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
        found
    }

    /// Closed buckets just read with `ticket`; those invalidated since the
    /// ticket are not stored (they may be a pre-commit view).
    pub(crate) fn put(&self, ticket: ReadTicket, buckets: Vec<(BucketKey, Arc<BucketRows>)>) {
        self.put_for(ticket, buckets, self.ttl);
    }

    /// Open buckets just read with `ticket`, as [`RollupCache::put`] but
    /// kept only [`OPEN_TTL`].
    pub(crate) fn put_open(&self, ticket: ReadTicket, buckets: Vec<(BucketKey, Arc<BucketRows>)>) {
        self.put_for(ticket, buckets, self.open_ttl);
    }

    fn put_for(
        &self,
        ticket: ReadTicket,
        buckets: Vec<(BucketKey, Arc<BucketRows>)>,
        ttl: Duration,
    ) {
        let now = Instant::now();
        let mut inner = self.lock();
        if ticket.0 < inner.forgotten_up_to {
            return;
        }
        for (key, rows) in buckets {
            if inner
                .invalidated
                .get(&key)
                .is_some_and(|seq| *seq > ticket.0)
            {
                continue;
            }
            inner.remove(&key);
            inner.clock += 1;
            inner.rows += rows.weight();
            let used = inner.clock;
            inner.entries.insert(
                key,
                Entry {
                    rows,
                    stored_at: now,
                    ttl,
                    used,
                },
            );
        }
        if inner.rows > MAX_ROWS {
            let mut by_use: Vec<(u64, BucketKey)> =
                inner.entries.iter().map(|(k, e)| (e.used, *k)).collect();
            by_use.sort_unstable();
            for (_, key) in by_use {
                if inner.rows <= MAX_ROWS * 3 / 4 {
                    break;
                }
                inner.remove(&key);
            }
        }
    }

    /// The buckets a write changes: called before the write and again
    /// after its commit (see the module's doc).
    pub(crate) fn invalidate(&self, keys: &BTreeSet<BucketKey>) {
        if keys.is_empty() {
            return;
        }
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        for key in keys {
            inner.remove(key);
            inner.invalidated.insert(*key, seq);
        }
        if inner.invalidated.len() > MAX_INVALIDATED {
            // Tickets taken before this invalidation are older than `seq`.
            inner.invalidated.clear();
            inner.forgotten_up_to = seq;
        }
    }

    /// Every bucket may have changed (a reprojection, retention).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.seq += 1;
        inner.forgotten_up_to = inner.seq;
        inner.invalidated.clear();
        inner.entries.clear();
        inner.rows = 0;
    }

    /// (hits, misses) in buckets since start, for the benchmark and tests.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn remove(&mut self, key: &BucketKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.rows -= entry.rows.weight();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(topic: &str, events: i64) -> Arc<BucketRows> {
        Arc::new(BucketRows {
            topics: vec![(topic.to_string(), events, 0)],
            ..BucketRows::default()
        })
    }

    #[test]
    fn a_read_that_raced_a_commit_is_not_stored() {
        let cache = RollupCache::default();
        let key = (60, 0);
        // A reader takes its ticket, a writer invalidates (before or after
        // its commit), the reader stores: refused, it may be stale.
        let ticket = cache.ticket();
        cache.invalidate(&BTreeSet::from([key]));
        cache.put(ticket, vec![(key, rows("t", 1))]);
        assert!(cache.get_many([key]).is_empty());
        // Another key of the same read is stored.
        let other = (60, 60_000_000);
        let ticket = cache.ticket();
        cache.invalidate(&BTreeSet::from([key]));
        cache.put(ticket, vec![(key, rows("t", 1)), (other, rows("t", 2))]);
        assert_eq!(cache.get_many([key, other]).len(), 1);
        // A read after the invalidation is stored, and the next
        // invalidation removes it.
        let ticket = cache.ticket();
        cache.put(ticket, vec![(key, rows("t", 3))]);
        assert_eq!(cache.get_many([key])[&key].topics[0].1, 3);
        cache.invalidate(&BTreeSet::from([key]));
        assert!(cache.get_many([key]).is_empty());
        // A clear refuses every read in flight.
        let ticket = cache.ticket();
        cache.clear();
        cache.put(ticket, vec![(other, rows("t", 4))]);
        assert!(cache.get_many([other]).is_empty());
        let (hits, misses) = cache.counts();
        assert_eq!((hits, misses), (2, 4));
    }

    #[test]
    fn entries_expire_and_the_size_stays_bounded() {
        let cache = RollupCache::new(Duration::ZERO);
        cache.put(cache.ticket(), vec![((60, 0), rows("t", 1))]);
        assert!(cache.get_many([(60, 0)]).is_empty(), "older than the TTL");

        let cache = RollupCache::default();
        let big = Arc::new(BucketRows {
            histograms: vec![("saga".into(), "t".into(), String::new(), 1, 1); 999],
            ..BucketRows::default()
        });
        for i in 0..(MAX_ROWS / 1000 + 10) as i64 {
            cache.put(cache.ticket(), vec![((60, i), big.clone())]);
        }
        let inner = cache.lock();
        assert!(inner.rows <= MAX_ROWS, "{} rows", inner.rows);
        assert!(inner.rows >= MAX_ROWS / 2, "{} rows", inner.rows);
        assert_eq!(
            inner.rows,
            inner
                .entries
                .values()
                .map(|e| e.rows.weight())
                .sum::<usize>()
        );
        // The most recent entry is kept.
        assert!(inner
            .entries
            .contains_key(&(60, (MAX_ROWS / 1000 + 9) as i64)));
    }
}
