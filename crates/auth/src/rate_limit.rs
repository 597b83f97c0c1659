//! Login rate limiting: failures per (client ip, username), with
//! exponential back-off.
//!
//! Policy (defaults in [`RateLimitConfig::default`]):
//! - A key may fail `max_failures` (5) times freely. The 5th failure locks
//!   the key for `lockout` (15 minutes): at most 5 guesses per 15 minutes.
//! - Every further failure, once the lock has expired, locks it again for
//!   twice as long as before (30 min, 1 h, …), capped at `max_lockout`
//!   (1 hour). At the cap that is 24 guesses a day per key, negligible
//!   against the 12-character minimum password.
//! - A success clears the key; so does a quiet `window` (15 minutes)
//!   after the last failure or the end of the last lock.
//!
//! Keying by ip *and* username means an attacker cannot lock a victim out
//! from the victim's own address, and a user's typos do not block their
//! colleagues behind the same NAT. Password spraying (one guess for many
//! users from one address) needs a second limiter keyed by IP only; the
//! limiter is generic over the key for that reason.
//!
//! State is in memory (one `Mutex<HashMap>`) and per replica: a restart or
//! another replica starts fresh, which only weakens the limit by the number
//! of replicas. The map is bounded by `capacity`: when full, expired entries
//! go first, then the entry that would be forgotten soonest (the oldest
//! activity, with locked keys kept longest), so a flood of new keys cannot
//! grow memory without bound. The clock is an argument (`now`), so tests
//! drive it explicitly.
//!
//! Usage: `reserve` before verifying the password (answer 429 with
//! `Retry-After` on `Err`, without touching the hash), then
//! `record_failure`, `record_success` or, for an attempt that ended without
//! a verdict (a database error), `release`. A reservation holds one of the
//! key's remaining attempts while the password is verified, taken under the
//! same lock as the check: a burst of concurrent attempts gets exactly as
//! many verifications as the key has attempts left, and the rest are
//! refused at once. (Checking first and counting failures after the
//! verification let a burst of 60 concurrent logins be checked all at once:
//! 32 verified against a limit of 5.)

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tunables of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Failures allowed before the first lock.
    pub max_failures: u32,
    /// Quiet time after which a key's failures are forgotten.
    pub window: Duration,
    /// Length of the first lock; each further failure doubles it.
    pub lockout: Duration,
    /// Upper bound on a single lock.
    pub max_lockout: Duration,
    /// Maximum number of keys remembered.
    pub capacity: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_lockout: Duration::from_secs(60 * 60),
            capacity: 10_000,
        }
    }
}

/// How long a locked key must wait. Render it as `Retry-After` with
/// [`RetryAfter::as_secs_ceil`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up (never 0), as `Retry-After` needs.
    pub fn as_secs_ceil(self) -> u64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many failed logins; retry in {} s",
            self.as_secs_ceil()
        )
    }
}

/// The usual key: client address and the user name tried.
///
/// IPv6 addresses are reduced to their /64 network, since one client
/// typically controls a whole /64; IPv4-mapped IPv6 addresses become IPv4.
/// User names are trimmed and lower-cased so case variants share a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginKey {
    ip: IpAddr,
    username: String,
}

impl LoginKey {
    /// Normalizes and combines the client address and user name.
    pub fn new(ip: IpAddr, username: &str) -> Self {
        let ip = match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let net = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(net))
            }
            v4 => v4,
        };
        LoginKey {
            ip,
            username: username.trim().to_lowercase(),
        }
    }

    /// The normalized client address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The normalized user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Reserved attempts whose verification has not ended yet.
    in_flight: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    /// When the entry stops mattering: `window` after the later of the last
    /// failure and the end of the lock.
    fn forget_at(&self, window: Duration) -> Instant {
        self.locked_until
            .map_or(self.last_failure, |until| until.max(self.last_failure))
            + window
    }
}

/// How long an attempt refused because the key's remaining attempts are all
/// being verified right now should wait: about one verification.
pub const IN_FLIGHT_RETRY: RetryAfter = RetryAfter(Duration::from_secs(1));

/// In-memory failure counter with lockouts; see the module docs.
#[derive(Debug)]
pub struct RateLimiter<K = LoginKey> {
    config: RateLimitConfig,
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K: Eq + Hash + Clone> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter::new(RateLimitConfig::default())
    }
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter with `config`. A `capacity` of 0 is treated as 1.
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            config: RateLimitConfig {
                capacity: config.capacity.max(1),
                ..config
            },
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// `Ok` when `key` may attempt a login at `now`, else how long to wait.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        match self.lock().get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(RetryAfter(until - now)),
            _ => Ok(()),
        }
    }

    /// Reserves one attempt for `key` at `now`, atomically with the check:
    /// `Err` while the key is locked, or while its attempts in flight
    /// already use up what it has left (each of them may fail) — then
    /// [`IN_FLIGHT_RETRY`]. A key at or past its free failures (a lock
    /// expired) gets one attempt at a time. End every reservation with
    /// [`record_failure`](Self::record_failure),
    /// [`record_success`](Self::record_success) or
    /// [`release`](Self::release).
    pub fn reserve(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let config = self.config;
        let mut entries = self.lock();
        let expired = entries
            .get(key)
            .is_some_and(|e| e.in_flight == 0 && now >= e.forget_at(config.window));
        if expired {
            entries.remove(key);
        }
        if let Some(entry) = entries.get_mut(key) {
            if let Some(until) = entry.locked_until.filter(|until| *until > now) {
                return Err(RetryAfter(until - now));
            }
            let left = config.max_failures.saturating_sub(entry.failures).max(1);
            if entry.in_flight >= left {
                return Err(IN_FLIGHT_RETRY);
            }
            entry.in_flight += 1;
            return Ok(());
        }
        make_room(&mut entries, &config, now);
        entries.insert(
            key.clone(),
            Entry {
                failures: 0,
                in_flight: 1,
                last_failure: now,
                locked_until: None,
            },
        );
        Ok(())
    }

    /// Ends a reservation without a verdict (the attempt could not be
    /// verified, e.g. the database was down): the attempt is given back.
    pub fn release(&self, key: &K) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
    }

    /// Records a failed login for `key` at `now` (ending its reservation,
    /// if it had one). Returns the lock this failure caused, if any.
    pub fn record_failure(&self, key: &K, now: Instant) -> Option<RetryAfter> {
        let config = self.config;
        let mut entries = self.lock();
        let expired = entries
            .get(key)
            .is_some_and(|e| e.in_flight == 0 && now >= e.forget_at(config.window));
        if expired {
            entries.remove(key);
        }
        if !entries.contains_key(key) {
            make_room(&mut entries, &config, now);
        }
        let entry = entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            in_flight: 0,
            last_failure: now,
            locked_until: None,
        });
        entry.in_flight = entry.in_flight.saturating_sub(1);
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures < config.max_failures {
            return None;
        }
        let doublings = entry.failures - config.max_failures;
        let lock = 2u32
            .checked_pow(doublings)
            .and_then(|factor| config.lockout.checked_mul(factor))
            .map_or(config.max_lockout, |lock| lock.min(config.max_lockout));
        entry.locked_until = Some(now + lock);
        Some(RetryAfter(lock))
    }

    /// Records a successful login: the key's failures are forgotten.
    /// Attempts of the key still in flight keep their reservations.
    pub fn record_success(&self, key: &K) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.in_flight == 0 {
                entries.remove(key);
            } else {
                entry.failures = 0;
                entry.locked_until = None;
            }
        }
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry>> {
        // The map stays consistent even if a holder panicked: every update
        // is a single insert/remove or field write.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Frees one slot when the map is full: drops expired entries, then, if
/// still full, the entry that would be forgotten soonest.
fn make_room<K: Eq + Hash + Clone>(
    entries: &mut HashMap<K, Entry>,
    config: &RateLimitConfig,
    now: Instant,
) {
    if entries.len() < config.capacity {
        return;
    }
    entries.retain(|_, e| e.in_flight > 0 || now < e.forget_at(config.window));
    while entries.len() >= config.capacity {
        // Keys with attempts in flight go last: evicting one would hand
        // its reserved attempts back.
        let Some(victim) = entries
            .iter()
            .min_by_key(|(_, e)| (e.in_flight > 0, e.forget_at(config.window)))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        entries.remove(&victim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn key(user: &str) -> LoginKey {
        LoginKey::new("192.0.2.7".parse().unwrap(), user)
    }

    fn wait(d: Duration) -> Result<(), RetryAfter> {
        Err(RetryAfter(d))
    }

    #[test]
    fn five_failures_lock_for_fifteen_minutes() {
        let limiter = RateLimiter::default();
        let k = key("alice");
        let t0 = Instant::now();
        for i in 0..4 {
            let t = t0 + Duration::from_secs(i);
            assert_eq!(limiter.check(&k, t), Ok(()));
            assert_eq!(limiter.record_failure(&k, t), None, "failure {}", i + 1);
        }
        let t5 = t0 + Duration::from_secs(4);
        assert_eq!(limiter.check(&k, t5), Ok(()));
        assert_eq!(limiter.record_failure(&k, t5), Some(RetryAfter(15 * MIN)));
        assert_eq!(limiter.check(&k, t5), wait(15 * MIN));
        assert_eq!(limiter.check(&k, t5 + 10 * MIN), wait(5 * MIN));
        assert_eq!(
            limiter.check(&k, t5 + 15 * MIN - Duration::from_millis(1)),
            wait(Duration::from_millis(1))
        );
        assert_eq!(limiter.check(&k, t5 + 15 * MIN), Ok(()));
        // Other keys are unaffected: other user, other address.
        assert_eq!(limiter.check(&key("bob"), t5), Ok(()));
        let other_ip = LoginKey::new("192.0.2.8".parse().unwrap(), "alice");
        assert_eq!(limiter.check(&other_ip, t5), Ok(()));
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let limiter = RateLimiter::default();
        let k = key("alice");
        let mut t = Instant::now();
        for _ in 0..4 {
            assert_eq!(limiter.record_failure(&k, t), None);
        }
        let expected = [15 * MIN, 30 * MIN, 60 * MIN, 60 * MIN, 60 * MIN];
        for lock in expected {
            assert_eq!(limiter.check(&k, t), Ok(()));
            assert_eq!(limiter.record_failure(&k, t), Some(RetryAfter(lock)));
            assert_eq!(limiter.check(&k, t), wait(lock));
            t += lock;
        }
    }

    #[test]
    fn success_resets() {
        let limiter = RateLimiter::default();
        let k = key("alice");
        let t0 = Instant::now();
        for _ in 0..5 {
            limiter.record_failure(&k, t0);
        }
        assert!(limiter.check(&k, t0).is_err());
        limiter.record_success(&k);
        assert_eq!(limiter.check(&k, t0), Ok(()));
        assert!(limiter.is_empty());
        // Counting starts over: four more failures do not lock.
        for _ in 0..4 {
            assert_eq!(limiter.record_failure(&k, t0), None);
        }
        assert_eq!(limiter.check(&k, t0), Ok(()));
    }

    #[test]
    fn quiet_window_forgets() {
        let limiter = RateLimiter::default();
        let k = key("alice");
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.record_failure(&k, t0);
        }
        // Just inside the window the count survives: the 5th locks.
        let almost = t0 + 15 * MIN - Duration::from_secs(1);
        assert_eq!(
            limiter.record_failure(&k, almost),
            Some(RetryAfter(15 * MIN))
        );

        let k = key("carol");
        for _ in 0..4 {
            limiter.record_failure(&k, t0);
        }
        // A full quiet window later it is forgotten: this is failure 1.
        for i in 0..4 {
            assert_eq!(
                limiter.record_failure(&k, t0 + 15 * MIN + Duration::from_secs(i)),
                None
            );
        }
        // After a lock, the quiet window counts from the lock's end.
        let t1 = t0 + 15 * MIN + Duration::from_secs(4);
        assert_eq!(limiter.record_failure(&k, t1), Some(RetryAfter(15 * MIN)));
        let after_lock = t1 + 15 * MIN;
        assert_eq!(
            limiter.record_failure(&k, after_lock + 5 * MIN),
            Some(RetryAfter(30 * MIN)),
            "still remembered 5 minutes after the lock ended"
        );
        let t2 = after_lock + 5 * MIN + 30 * MIN;
        assert_eq!(limiter.record_failure(&k, t2 + 15 * MIN), None, "forgotten");
    }

    #[test]
    fn eviction_is_bounded_and_keeps_locked_keys() {
        let limiter = RateLimiter::new(RateLimitConfig {
            capacity: 3,
            ..RateLimitConfig::default()
        });
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for _ in 0..5 {
            limiter.record_failure(&key("locked"), t0);
        }
        limiter.record_failure(&key("b"), t0 + s(1));
        limiter.record_failure(&key("c"), t0 + s(2));
        assert_eq!(limiter.len(), 3);
        // Full: "b" would be forgotten soonest and goes; the locked key stays.
        limiter.record_failure(&key("d"), t0 + s(3));
        assert_eq!(limiter.len(), 3);
        assert!(limiter.check(&key("locked"), t0 + s(3)).is_err());
        for _ in 0..4 {
            limiter.record_failure(&key("b"), t0 + s(4));
        }
        assert_eq!(limiter.len(), 3);
        // "b" restarted from zero after eviction, so 4 failures do not lock;
        // making room for it evicted "c", the next soonest.
        assert_eq!(limiter.check(&key("b"), t0 + s(4)), Ok(()));
        limiter.record_failure(&key("c"), t0 + s(5));
        assert_eq!(limiter.len(), 3);
        // Existing keys never evict anything.
        limiter.record_failure(&key("c"), t0 + s(6));
        assert_eq!(limiter.len(), 3);
        // Many new keys: size stays at capacity.
        for i in 0..100 {
            limiter.record_failure(&key(&format!("flood{i}")), t0 + s(10));
        }
        assert_eq!(limiter.len(), 3);
        assert!(limiter.check(&key("locked"), t0 + s(10)).is_err());
    }

    #[test]
    fn expired_entries_are_purged_before_evicting() {
        let limiter = RateLimiter::new(RateLimitConfig {
            capacity: 2,
            ..RateLimitConfig::default()
        });
        let t0 = Instant::now();
        limiter.record_failure(&key("old"), t0);
        limiter.record_failure(&key("recent"), t0 + 10 * MIN);
        limiter.record_failure(&key("new"), t0 + 16 * MIN);
        assert_eq!(limiter.len(), 2);
        // "recent" survived because "old" had expired.
        for _ in 0..3 {
            limiter.record_failure(&key("recent"), t0 + 16 * MIN);
        }
        assert_eq!(
            limiter.record_failure(&key("recent"), t0 + 16 * MIN),
            Some(RetryAfter(15 * MIN))
        );
    }

    #[test]
    fn login_key_normalization() {
        let a = LoginKey::new("2001:db8:1:2:aaaa::1".parse().unwrap(), " Alice ");
        let b = LoginKey::new("2001:db8:1:2:bbbb::9".parse().unwrap(), "alice");
        assert_eq!(a, b);
        assert_eq!(a.ip(), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(a.username(), "alice");
        let other_net = LoginKey::new("2001:db8:1:3::1".parse().unwrap(), "alice");
        assert_ne!(a, other_net);
        let mapped = LoginKey::new("::ffff:192.0.2.7".parse().unwrap(), "alice");
        assert_eq!(mapped, key("ALICE"));
        assert_eq!(mapped.ip(), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_burst_gets_only_the_attempts_left() {
        let limiter = RateLimiter::default();
        let k = key("viewer");
        let t0 = Instant::now();
        // 60 attempts reserved at once (a concurrent burst): 5 may verify.
        let granted = (0..60).filter(|_| limiter.reserve(&k, t0).is_ok()).count();
        assert_eq!(granted, 5);
        assert_eq!(limiter.reserve(&k, t0), Err(IN_FLIGHT_RETRY));
        // They fail: the 5th locks, and nothing more is reserved.
        for i in 0..5 {
            let lock = limiter.record_failure(&k, t0);
            assert_eq!(lock.is_some(), i == 4, "failure {}", i + 1);
        }
        assert_eq!(limiter.reserve(&k, t0), Err(RetryAfter(15 * MIN)));
        // After the lock, one attempt at a time.
        let later = t0 + 15 * MIN;
        assert_eq!(limiter.reserve(&k, later), Ok(()));
        assert_eq!(limiter.reserve(&k, later), Err(IN_FLIGHT_RETRY));
    }

    #[test]
    fn released_and_successful_attempts_give_their_slot_back() {
        let limiter = RateLimiter::default();
        let k = key("alice");
        let t0 = Instant::now();
        for _ in 0..5 {
            limiter.reserve(&k, t0).unwrap();
        }
        assert!(limiter.reserve(&k, t0).is_err());
        limiter.release(&k);
        assert_eq!(limiter.reserve(&k, t0), Ok(()));
        // A success forgets the failures; the others in flight still count.
        limiter.record_failure(&k, t0);
        limiter.record_success(&k);
        assert_eq!(limiter.len(), 1);
        for _ in 0..3 {
            limiter.record_failure(&k, t0);
        }
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.reserve(&k, t0), Ok(()));
        limiter.record_success(&k);
        assert!(limiter.is_empty());
        // Distinct keys from one address: the address limiter's reservations
        // bound them the same way.
        let ips: RateLimiter<IpAddr> = RateLimiter::new(RateLimitConfig {
            max_failures: 20,
            ..RateLimitConfig::default()
        });
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(
            (0..150).filter(|_| ips.reserve(&ip, t0).is_ok()).count(),
            20
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).as_secs_ceil(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(900)).as_secs_ceil(), 900);
        assert_eq!(
            RetryAfter(Duration::from_millis(900_001)).as_secs_ceil(),
            901
        );
        assert_eq!(RetryAfter(Duration::ZERO).as_secs_ceil(), 1);
        assert_eq!(
            RetryAfter(Duration::from_secs(60)).to_string(),
            "too many failed logins; retry in 60 s"
        );
    }

    #[test]
    fn generic_over_ip_only_keys() {
        let limiter: RateLimiter<IpAddr> = RateLimiter::new(RateLimitConfig {
            max_failures: 2,
            ..RateLimitConfig::default()
        });
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(limiter.record_failure(&ip, t0), None);
        assert_eq!(limiter.record_failure(&ip, t0), Some(RetryAfter(15 * MIN)));
    }
}
