//! Refused requests in the audit log without letting anyone flood it.
//!
//! Each anonymous refusal of the auth guard (no credentials, a bad token,
//! a cross-site request) used to be one audit row with the full path: 400 refusals with a 60 KB path added 24.7 MB in 0.2 s. Now,
//! per client address and kind of refusal and per minute, the first
//! refusal is audited as before (its path capped, see `audit.rs`), the
//! following ones are only counted, and a `request.denied.repeated` row
//! with their number is written when the minute is over ([`DenialLog::drain`],
//! run by a background task). An address refused more than
//! [`THROTTLE_PER_MINUTE`] times in a minute gets 429 until the minute ends,
//! without further work. Memory is bounded by [`CAPACITY`] windows; beyond
//! it, refusals are counted under no address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Refusals one address may receive in a minute before it gets 429.
pub const THROTTLE_PER_MINUTE: u64 = 120;
/// Windows (address × kind of refusal) remembered at most.
pub const CAPACITY: usize = 10_000;

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialVerdict {
    /// The first of its kind from this address this minute: audit it.
    Audit,
    /// A repeat: counted, summarised when the minute is over.
    Counted,
    /// The address is over its refusals for this minute: answer 429, for
    /// this many seconds.
    Throttled(u64),
}

#[derive(Debug)]
struct Window {
    minute: i64,
    /// Refusals after the first (the first was audited).
    repeats: u64,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
}

/// A summary row to write: `repeats` refusals of `error` from `client_ip`
/// between `first_at` and `last_at`, beyond the one audited.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatedDenials {
    pub client_ip: Option<IpAddr>,
    pub error: &'static str,
    pub repeats: u64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<(IpAddr, &'static str), Window>,
    /// Refusals per address this minute (all kinds), for the throttle.
    per_address: HashMap<IpAddr, (i64, u64)>,
    /// Refusals that found no room, per kind.
    overflow: HashMap<&'static str, Window>,
    /// Summaries of windows closed by a later refusal, not drained yet.
    finished: Vec<RepeatedDenials>,
}

#[derive(Debug, Default)]
pub struct DenialLog {
    state: Mutex<State>,
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl DenialLog {
    /// Notes one refusal of kind `error` (a constant message) for `ip`.
    pub fn note(&self, ip: IpAddr, error: &'static str, now: DateTime<Utc>) -> DenialVerdict {
        let minute = minute_of(now);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tally = state.per_address.entry(ip).or_insert((minute, 0));
        if tally.0 != minute {
            *tally = (minute, 0);
        }
        tally.1 += 1;
        let throttled = tally.1 > THROTTLE_PER_MINUTE;
        let state = &mut *state;
        let repeat = |window: &mut Window| {
            window.repeats += 1;
            window.last_at = now;
        };
        if let Some(window) = state.windows.get_mut(&(ip, error)) {
            if window.minute == minute {
                repeat(window);
                return verdict_for_repeat(throttled, now);
            }
            // A window of an earlier minute not drained yet: its repeats go
            // to the summaries; this refusal opens the new minute.
            if window.repeats > 0 {
                state.finished.push(RepeatedDenials {
                    client_ip: Some(ip),
                    error,
                    repeats: window.repeats,
                    first_at: window.first_at,
                    last_at: window.last_at,
                });
            }
            *window = Window {
                minute,
                repeats: 0,
                first_at: now,
                last_at: now,
            };
            return if throttled {
                verdict_for_repeat(true, now)
            } else {
                DenialVerdict::Audit
            };
        }
        if state.windows.len() >= CAPACITY || state.per_address.len() > CAPACITY {
            let overflow = state.overflow.entry(error).or_insert(Window {
                minute,
                repeats: 0,
                first_at: now,
                last_at: now,
            });
            repeat(overflow);
            return verdict_for_repeat(throttled, now);
        }
        state.windows.insert(
            (ip, error),
            Window {
                minute,
                repeats: 0,
                first_at: now,
                last_at: now,
            },
        );
        if throttled {
            return verdict_for_repeat(true, now);
        }
        DenialVerdict::Audit
    }

    /// The summaries of the minutes that are over (and forgets them).
    pub fn drain(&self, now: DateTime<Utc>) -> Vec<RepeatedDenials> {
        let minute = minute_of(now);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::mem::take(&mut state.finished);
        state.windows.retain(|(ip, error), window| {
            if window.minute >= minute {
                return true;
            }
            if window.repeats > 0 {
                out.push(RepeatedDenials {
                    client_ip: Some(*ip),
                    error,
                    repeats: window.repeats,
                    first_at: window.first_at,
                    last_at: window.last_at,
                });
            }
            false
        });
        state.overflow.retain(|error, window| {
            if window.minute >= minute {
                return true;
            }
            out.push(RepeatedDenials {
                client_ip: None,
                error,
                repeats: window.repeats,
                first_at: window.first_at,
                last_at: window.last_at,
            });
            false
        });
        state.per_address.retain(|_, (m, _)| *m >= minute);
        out
    }
}

/// Every few seconds until shutdown: writes the summaries of the minutes
/// that are over as `request.denied.repeated` audit rows.
pub async fn summarise_denials(
    store: sagascope_store::Store,
    auth: std::sync::Arc<super::AuthState>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        // On shutdown, what is counted so far is written too.
        let now = if stopping {
            Utc::now() + chrono::TimeDelta::seconds(60)
        } else {
            Utc::now()
        };
        for summary in auth.denials.drain(now) {
            let entry = sagascope_store::NewAuditEntry {
                at: summary.last_at,
                actor: "anonymous".into(),
                actor_role: None,
                auth_method: "none".into(),
                action: "request.denied.repeated".into(),
                target: None,
                reason: None,
                detail: serde_json::json!({
                    "error": summary.error,
                    "repeats": summary.repeats,
                    "first_at": summary.first_at,
                    "last_at": summary.last_at,
                }),
                result: sagascope_model::audit_result::DENIED.to_string(),
                client_ip: summary.client_ip.map(|ip| ip.to_string()),
            };
            if let Err(error) = store.append_audit(&entry).await {
                tracing::error!(%error, "could not write the audit log");
            }
        }
        if stopping {
            return;
        }
    }
}

fn verdict_for_repeat(throttled: bool, now: DateTime<Utc>) -> DenialVerdict {
    if throttled {
        let left = 60 - now.timestamp().rem_euclid(60);
        DenialVerdict::Throttled(u64::try_from(left).unwrap_or(60).max(1))
    } else {
        DenialVerdict::Counted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LOGIN: &str = "authentication required";
    const CSRF: &str = "missing or invalid CSRF token";

    fn at(s: i64) -> DateTime<Utc> {
        // A whole minute (1_800_000_000 is divisible by 60), plus `s`.
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn the_first_refusal_per_minute_is_audited_and_the_rest_summarised() {
        let log = DenialLog::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(log.note(ip, NO_LOGIN, at(0)), DenialVerdict::Audit);
        for s in 1..=99 {
            assert_eq!(log.note(ip, NO_LOGIN, at(s % 60)), DenialVerdict::Counted);
        }
        assert_eq!(log.note(ip, CSRF, at(5)), DenialVerdict::Audit);
        assert_eq!(log.note(other, NO_LOGIN, at(5)), DenialVerdict::Audit);
        assert!(log.drain(at(59)).is_empty(), "the minute is not over");
        let summaries = log.drain(at(60));
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert_eq!(summaries[0].repeats, 99);
        assert_eq!(summaries[0].client_ip, Some(ip));
        // A new minute audits the first refusal again.
        assert_eq!(log.note(ip, NO_LOGIN, at(61)), DenialVerdict::Audit);
    }

    #[test]
    fn a_flooding_address_is_throttled_until_the_minute_ends() {
        let log = DenialLog::default();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let verdicts: Vec<_> = (0..200).map(|_| log.note(ip, NO_LOGIN, at(10))).collect();
        assert_eq!(verdicts[0], DenialVerdict::Audit);
        assert!(verdicts[1..120]
            .iter()
            .all(|v| *v == DenialVerdict::Counted));
        assert!(verdicts[120..]
            .iter()
            .all(|v| *v == DenialVerdict::Throttled(50)));
        // Others are not throttled.
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        assert_eq!(log.note(other, NO_LOGIN, at(10)), DenialVerdict::Audit);
        // The next minute starts afresh.
        assert_eq!(log.note(ip, NO_LOGIN, at(70)), DenialVerdict::Audit);
    }
}
