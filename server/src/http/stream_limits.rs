//! Bounds on the live streams (`GET /api/v1/stream`), and their end with
//! the session that opened them.
//!
//! Each stream holds a [`StreamPermit`] for its owner (the cookie session,
//! else the principal, else the anonymous client address) until it ends.
//! An owner may hold [`PER_OWNER`] streams (tabs of one browser; one
//! session once held 5,000) and the process [`TOTAL`]; beyond, 429 at once.
//!
//! A stream ends with its session: logout in this process ends the
//! session's streams at once ([`StreamLimits::end_owner`]); a logout on
//! another replica, a disabled user or an expired session is noticed by the
//! stream's own re-check of its session every [`RECHECK_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// Streams one owner may hold at once.
pub const PER_OWNER: usize = 16;
/// Streams this process serves at once.
pub const TOTAL: usize = 2_000;
/// How often a session's stream checks that its session still holds.
pub const RECHECK_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Owner {
    streams: usize,
    /// Woken when the owner's session ends.
    ended: Arc<Notify>,
}

#[derive(Debug)]
pub struct StreamLimits {
    per_owner: usize,
    total: usize,
    owners: Mutex<HashMap<String, Owner>>,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits::new(PER_OWNER, TOTAL)
    }
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    OwnerFull,
    ProcessFull,
}

impl StreamRefusal {
    pub fn message(self) -> String {
        match self {
            StreamRefusal::OwnerFull => format!(
                "too many live streams for this session (at most {PER_OWNER}): close other tabs or retry later"
            ),
            StreamRefusal::ProcessFull => format!(
                "this server has too many live streams open (at most {TOTAL}); retry later"
            ),
        }
    }
}

impl StreamLimits {
    pub fn new(per_owner: usize, total: usize) -> StreamLimits {
        StreamLimits {
            per_owner,
            total,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Owner>> {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Streams open now, in all.
    pub fn open(&self) -> usize {
        self.lock().values().map(|o| o.streams).sum()
    }

    /// A permit for one more stream of `owner`, or why not.
    pub fn acquire(self: &Arc<Self>, owner: &str) -> Result<StreamPermit, StreamRefusal> {
        let mut owners = self.lock();
        let total: usize = owners.values().map(|o| o.streams).sum();
        if total >= self.total {
            return Err(StreamRefusal::ProcessFull);
        }
        let entry = owners.entry(owner.to_string()).or_default();
        if entry.streams >= self.per_owner {
            return Err(StreamRefusal::OwnerFull);
        }
        entry.streams += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            owner: owner.to_string(),
            ended: entry.ended.clone(),
        })
    }

    /// Ends every stream of `owner` (its session ended).
    pub fn end_owner(&self, owner: &str) {
        if let Some(entry) = self.lock().get(owner) {
            entry.ended.notify_waiters();
        }
    }
}

/// One open stream; dropping it (the stream ended) frees its place.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    owner: String,
    ended: Arc<Notify>,
}

impl StreamPermit {
    /// Completes when the owner's session is ended in this process after
    /// this call (the future registers at once, before its first poll).
    pub fn ended(&self) -> tokio::sync::futures::OwnedNotified {
        self.ended.clone().notified_owned()
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut owners = self.limits.lock();
        if let Some(entry) = owners.get_mut(&self.owner) {
            entry.streams = entry.streams.saturating_sub(1);
            if entry.streams == 0 {
                owners.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_the_process_are_bounded_and_permits_free_their_place() {
        let limits = Arc::new(StreamLimits::new(2, 3));
        let a1 = limits.acquire("a").unwrap();
        let _a2 = limits.acquire("a").unwrap();
        assert_eq!(limits.acquire("a").unwrap_err(), StreamRefusal::OwnerFull);
        let _b1 = limits.acquire("b").unwrap();
        assert_eq!(limits.acquire("c").unwrap_err(), StreamRefusal::ProcessFull);
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _c1 = limits.acquire("c").unwrap();
        assert_eq!(limits.open(), 3);
    }

    #[tokio::test]
    async fn ending_an_owner_wakes_its_streams_only() {
        let limits = Arc::new(StreamLimits::default());
        let a = limits.acquire("a").unwrap();
        let b = limits.acquire("b").unwrap();
        let (a_ended, b_ended) = (a.ended(), b.ended());
        tokio::pin!(a_ended);
        tokio::pin!(b_ended);
        // Register both waiters before the notification.
        assert!(futures::poll!(&mut a_ended).is_pending());
        assert!(futures::poll!(&mut b_ended).is_pending());
        limits.end_owner("a");
        assert!(futures::poll!(&mut a_ended).is_ready());
        assert!(futures::poll!(&mut b_ended).is_pending());
    }
}
