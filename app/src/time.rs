//! Time formatting shared by all pages. Absolute times are UTC so the server
//! and the browser render the same text; relative times tick in the browser.

use chrono::{DateTime, Utc};
use sagascope_model::{format_duration_ms, Timestamp};

/// `2026-11-21 10:42:03.123 UTC` — for `title` attributes and detail facts.
pub fn absolute(at: &Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// `10:42:03.123` — the clock time of a timeline row.
pub fn clock(at: &Timestamp) -> String {
    at.format("%H:%M:%S%.3f").to_string()
}

/// RFC 3339 for `<time datetime>`.
pub fn machine(at: &Timestamp) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn millis(at: &Timestamp) -> i64 {
    at.timestamp_millis()
}

pub fn from_millis(ms: i64) -> Option<Timestamp> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

/// "just now", "12 s ago", "3 min ago", "2 h ago", "4 d ago".
pub fn relative(now_ms: i64, at: &Timestamp) -> String {
    let diff = now_ms - millis(at);
    if diff < -5_000 {
        return format!("in {}", format_duration_ms(-diff));
    }
    let secs = diff.max(0) / 1000;
    if secs < 5 {
        "just now".to_string()
    } else if secs < 60 {
        format!("{secs} s ago")
    } else if secs < 3600 {
        format!("{} min ago", secs / 60)
    } else if secs < 86_400 {
        format!("{} h ago", secs / 3600)
    } else {
        format!("{} d ago", secs / 86_400)
    }
}

/// `+1.2 s` — offset of an event from the start of its saga or trace.
pub fn offset(ms: i64) -> String {
    if ms < 0 {
        format!("−{}", format_duration_ms(-ms))
    } else {
        format!("+{}", format_duration_ms(ms))
    }
}

/// A delay between two optional instants, e.g. publish delay.
pub fn delay(from: Option<&Timestamp>, to: Option<&Timestamp>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => {
            let ms = millis(to) - millis(from);
            if ms < 0 {
                format!("−{}", format_duration_ms(-ms))
            } else {
                format_duration_ms(ms)
            }
        }
        _ => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        from_millis(ms).unwrap()
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = 1_800_000_000_000;
        assert_eq!(relative(now, &at(now - 1_000)), "just now");
        assert_eq!(relative(now, &at(now - 12_000)), "12 s ago");
        assert_eq!(relative(now, &at(now - 190_000)), "3 min ago");
        assert_eq!(relative(now, &at(now - 7_300_000)), "2 h ago");
        assert_eq!(relative(now, &at(now + 60_000)), "in 1 m 0 s");
    }

    #[test]
    fn offsets_and_delays_use_the_duration_format() {
        assert_eq!(offset(1_200), "+1.2 s");
        assert_eq!(offset(0), "+0 ms");
        assert_eq!(delay(Some(&at(1_000)), Some(&at(1_850))), "850 ms");
        assert_eq!(delay(None, Some(&at(1_850))), "—");
        assert_eq!(absolute(&at(0)), "1970-01-01 00:00:00.000 UTC");
    }
}
