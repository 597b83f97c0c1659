//! The store (the database) not answering, as `/readyz`, the API's 503
//! answers and the UI's banner word it: one wording everywhere, so an
//! operator matches the banner to the probe and the log.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// How every "the store does not answer" message starts (the API's 503
/// bodies, `/readyz`, the pages' server-function errors). The UI tells a
/// store outage from other failures by it.
pub const STORE_UNAVAILABLE: &str = "store unavailable";

/// Since when the store has not answered, and its latest error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreOutage {
    pub since: Timestamp,
    pub last_error: String,
}

impl StoreOutage {
    /// `store unavailable since 2026-12-07T21:30:00Z: <last error>`.
    pub fn message(&self) -> String {
        format!(
            "{STORE_UNAVAILABLE} since {}: {}",
            self.since
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.last_error
        )
    }
}

/// Whether a server-function or API error text reports a store outage
/// (rather than a bad request or a bug).
pub fn is_store_unavailable_message(text: &str) -> bool {
    text.starts_with(STORE_UNAVAILABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_start_in_rfc_3339_and_the_error() {
        let outage = StoreOutage {
            since: chrono::DateTime::parse_from_rfc3339("2026-12-07T21:30:05.123Z")
                .unwrap()
                .into(),
            last_error: "database error: pool timed out while waiting for an open connection"
                .into(),
        };
        let message = outage.message();
        assert_eq!(
            message,
            "store unavailable since 2026-12-07T21:30:05Z: database error: pool timed out while waiting for an open connection"
        );
        assert!(is_store_unavailable_message(&message));
        assert!(!is_store_unavailable_message(
            "store: database error: bad SQL"
        ));
    }
}
