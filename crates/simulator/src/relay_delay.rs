//! The Kafka timestamps of traffic produced at once for a planned past (the
//! demo's history, tests). A service's message reaches Kafka a little
//! after its event happened (an outbox relay polls, a producer lingers),
//! so each is stamped at its event time plus a small relay delay, never in
//! the future. Stamping them "now" instead would make the demo open on half
//! an hour of outbox relay lag and false lag alerts.
//!
//! The delay is derived from the message's trace id and index, not drawn
//! from the traffic's RNG, so seeded traffic renders the same as before.

use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};

/// The relay delay's bounds, milliseconds.
pub const MIN_RELAY_DELAY_MS: i64 = 5;
pub const MAX_RELAY_DELAY_MS: i64 = 400;

/// The relay delay of message `index` of trace `trace_id`: skewed towards
/// the short end, as relays mostly keep up and only now and then lag.
pub fn relay_delay_ms(trace_id: &str, index: usize) -> i64 {
    let mut hasher = DefaultHasher::new();
    (trace_id, index).hash(&mut hasher);
    // The top 53 bits as a uniform draw in [0, 1).
    let uniform = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    let span = (MAX_RELAY_DELAY_MS - MIN_RELAY_DELAY_MS) as f64;
    MIN_RELAY_DELAY_MS + (uniform * uniform * span).round() as i64
}

/// The Kafka timestamp (epoch milliseconds) of a message whose event
/// happened `at`, relayed `relay_delay_ms` later, but not after `now`.
pub fn kafka_timestamp_ms(at: DateTime<Utc>, relay_delay_ms: i64, now: DateTime<Utc>) -> i64 {
    (at.timestamp_millis() + relay_delay_ms).min(now.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_in_bounds_and_vary_mostly_short() {
        let delays: Vec<i64> = (0..2_000)
            .map(|i| relay_delay_ms("4bf92f3577b34da6a3ce929d0e0e4736", i))
            .collect();
        assert!(delays
            .iter()
            .all(|d| (MIN_RELAY_DELAY_MS..=MAX_RELAY_DELAY_MS).contains(d)));
        let short = delays.iter().filter(|d| **d < 100).count();
        let long = delays.iter().filter(|d| **d > 300).count();
        assert!(short > delays.len() / 3, "{short}");
        assert!(long > 0 && long < short, "{long} vs {short}");
        // The same message always gets the same delay.
        assert_eq!(
            relay_delay_ms("4bf92f3577b34da6a3ce929d0e0e4736", 7),
            delays[7]
        );
    }

    #[test]
    fn a_timestamp_is_never_in_the_future() {
        let now = Utc::now();
        let past = now - chrono::Duration::minutes(20);
        assert_eq!(
            kafka_timestamp_ms(past, 120, now),
            past.timestamp_millis() + 120
        );
        let just_now = now - chrono::Duration::milliseconds(50);
        assert_eq!(
            kafka_timestamp_ms(just_now, 120, now),
            now.timestamp_millis()
        );
    }
}
