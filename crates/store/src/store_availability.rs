//! Whether the database answers, as this process last saw it: since when
//! it has not, and its latest error. Fed by the ingest's batch writes, the
//! pages' reads, `/readyz` and a periodic ping ([`watch_store_availability`]);
//! read by `/readyz`, the API (503 instead of 500) and the UI's banner.
//!
//! Every clone of a [`Store`] shares one, so whoever notices an outage
//! tells everyone else, and the pages can answer at once while it lasts
//! instead of each waiting out the pool's connect timeout.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use sagascope_model::StoreOutage;
use sqlx::Connection;
use tokio::sync::watch;

use crate::{Store, StoreError};

/// How often the database is pinged, and how long a ping may take before
/// the store counts as unavailable (the pool itself waits 10 s for a
/// connection: too long for a probe).
pub const STORE_PING_EVERY: Duration = Duration::from_secs(2);
pub const STORE_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the diagnosing connection of a failed ping may take.
const STORE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct StoreAvailability {
    outage: Mutex<Option<StoreOutage>>,
}

impl StoreAvailability {
    /// The outage in progress, if any.
    pub fn outage(&self) -> Option<StoreOutage> {
        self.lock().clone()
    }

    /// Records `error` if it says the database cannot be reached (see
    /// [`is_store_unavailable`]); returns whether it did. Other errors (a
    /// constraint, a corrupt row) say nothing about availability.
    pub fn record_failure(&self, error: &StoreError) -> bool {
        if !is_store_unavailable(error) {
            return false;
        }
        // The pool's timeout says nothing of the cause: it does not replace
        // a reason already known (the ping's own connection names it).
        let vague = matches!(error, StoreError::Database(sqlx::Error::PoolTimedOut));
        if vague && self.outage().is_some() {
            return true;
        }
        self.record_unreachable(error.to_string());
        true
    }

    /// The database did not answer in time, or failed to connect.
    pub fn record_unreachable(&self, reason: String) {
        let mut outage = self.lock();
        match outage.as_mut() {
            // The first failure dates the outage; the latest explains it.
            Some(outage) => outage.last_error = reason,
            None => {
                tracing::warn!(%reason, "the store is unavailable; retrying");
                *outage = Some(StoreOutage {
                    since: Utc::now(),
                    last_error: reason,
                });
            }
        }
    }

    /// The database answered: any outage is over.
    pub fn record_success(&self) {
        let mut outage = self.lock();
        if let Some(ended) = outage.take() {
            let lasted = Utc::now() - ended.since;
            tracing::info!(
                since = %ended.since,
                seconds = lasted.num_milliseconds() as f64 / 1000.0,
                "the store is available again"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<StoreOutage>> {
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `error` means the database cannot be reached or refuses work
/// as a whole (network, pool, server shutting down or starting up), as
/// opposed to a failure of one statement.
pub fn is_store_unavailable(error: &StoreError) -> bool {
    let StoreError::Database(error) = error else {
        return false;
    };
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception. 57P01-03: admin shutdown,
            // crash shutdown, cannot connect now (starting up). 53300:
            // too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl Store {
    /// This process's view of the database's availability (shared by every
    /// clone of the store).
    pub fn availability(&self) -> &StoreAvailability {
        &self.availability
    }

    /// Pings the database within [`STORE_PING_TIMEOUT`] and records the
    /// answer; returns the outage in progress, if any.
    pub async fn check_availability(&self) -> Option<StoreOutage> {
        let failure = match tokio::time::timeout(STORE_PING_TIMEOUT, self.ping()).await {
            Ok(Ok(())) => {
                self.availability.record_success();
                return None;
            }
            Ok(Err(StoreError::Database(sqlx::Error::PoolTimedOut))) | Err(_) => format!(
                "no answer to a ping within {} s",
                STORE_PING_TIMEOUT.as_secs()
            ),
            // A ping that fails otherwise is still no answer.
            Ok(Err(error)) => error.to_string(),
        };
        let reason = self.connect_error().await.unwrap_or(failure);
        self.availability.record_unreachable(reason);
        self.availability.outage()
    }

    /// Why the database does not answer, from a connection of its own:
    /// the pool only says that it waited in vain, a connection attempt
    /// names the cause (refused, reset, shutting down, starting up). None
    /// when it connects, or does not fail within [`STORE_CONNECT_TIMEOUT`].
    async fn connect_error(&self) -> Option<String> {
        let attempt = sqlx::AnyConnection::connect(&self.url.0);
        match tokio::time::timeout(STORE_CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                None
            }
            Ok(Err(error)) => Some(StoreError::Database(error).to_string()),
            Err(_) => None,
        }
    }
}

/// Pings the store every [`STORE_PING_EVERY`] until `shutdown` turns true,
/// so an outage shows (and its end clears) even while nothing else uses
/// the database.
pub async fn watch_store_availability(store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(STORE_PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
            _ = tick.tick() => {
                store.check_availability().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_keeps_its_start_and_its_latest_error_until_a_success() {
        let availability = StoreAvailability::default();
        assert!(availability.outage().is_none());
        assert!(availability.record_failure(&StoreError::Database(sqlx::Error::PoolTimedOut)));
        let first = availability.outage().expect("an outage");
        availability.record_unreachable("connection refused".into());
        // The pool's timeout does not hide the cause found before it.
        assert!(availability.record_failure(&StoreError::Database(sqlx::Error::PoolTimedOut)));
        let later = availability.outage().expect("still an outage");
        assert_eq!(later.since, first.since);
        assert_eq!(later.last_error, "connection refused");
        availability.record_success();
        assert!(availability.outage().is_none());
    }

    #[test]
    fn statement_failures_say_nothing_about_availability() {
        let availability = StoreAvailability::default();
        assert!(!availability.record_failure(&StoreError::Corrupt("bad row".into())));
        assert!(!availability.record_failure(&StoreError::Contended("saga".into())));
        assert!(!availability.record_failure(&StoreError::Database(sqlx::Error::RowNotFound)));
        assert!(availability.outage().is_none());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_store_unavailable(&StoreError::Database(
            sqlx::Error::Io(refused)
        )));
    }
}
