//! The retention loop: every `--retention-interval`, remove what is older
//! than the configured ages in bounded batches (one transaction of at most
//! `--retention-batch-size` each, a pause between two, until a batch comes
//! back short), so the ingest keeps committing while old data goes. What
//! goes and what stays is decided in `sagascope_store`'s `retention.rs`;
//! replicas may run it at the same time (Postgres: `SKIP LOCKED`). Each
//! pass also deletes the rollup rows no overview window reads any more
//! (`rollup_retention.rs`: a fixed span per grain, whatever the ages).

use std::future::Future;
use std::time::Duration;

use metrics::{counter, describe_counter};
use sagascope_model::Timestamp;
use sagascope_store::Store;
use tokio::sync::watch;

use crate::cli::{RetentionAge, RetentionArgs};

/// Ages and pacing of the retention loop.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    /// Ended/stalled sagas with their events, and closed dead letters.
    pub events: Option<Duration>,
    pub spans: Option<Duration>,
    pub ingest_errors: Option<Duration>,
    /// Audit log entries (its own age, not the events').
    pub audit: Option<Duration>,
    pub batch_size: u32,
    pub interval: Duration,
    pub pause: Duration,
}

impl RetentionConfig {
    pub fn from_args(args: &RetentionArgs) -> RetentionConfig {
        let events = args.retention_events.0;
        RetentionConfig {
            events,
            // Unset ages follow the events' age.
            spans: args.retention_spans.map_or(events, |RetentionAge(age)| age),
            ingest_errors: args
                .retention_ingest_errors
                .map_or(events, |RetentionAge(age)| age),
            audit: args.retention_audit.0,
            batch_size: args.retention_batch_size.max(1),
            interval: args.retention_interval,
            pause: Duration::from_millis(args.retention_batch_pause_ms),
        }
    }

    /// Nothing to remove: the loop is not started.
    pub fn is_off(&self) -> bool {
        self.events.is_none()
            && self.spans.is_none()
            && self.ingest_errors.is_none()
            && self.audit.is_none()
    }
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Rollup rows older than any window reads.
    pub rollups: u64,
    pub sagas: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub ingest_errors: u64,
    pub spans: u64,
    pub audit_entries: u64,
    /// Transactions it took.
    pub batches: u64,
}

fn cutoff(now: Timestamp, age: Duration) -> Timestamp {
    now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

/// Runs one batch after another until one comes back with fewer than
/// `batch_size` rows (nothing older is left) or shutdown is requested;
/// returns the rows removed and the batches run.
async fn in_batches<F, Fut>(
    config: &RetentionConfig,
    shutdown: &watch::Receiver<bool>,
    mut batch: F,
) -> sagascope_store::Result<(u64, u64)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sagascope_store::Result<u64>>,
{
    let (mut removed, mut batches) = (0, 0);
    loop {
        let n = batch().await?;
        removed += n;
        batches += 1;
        if n < u64::from(config.batch_size) || *shutdown.borrow() {
            return Ok((removed, batches));
        }
        // Room for the ingest (and, on SQLite, the single writer) between
        // two transactions.
        tokio::time::sleep(config.pause).await;
    }
}

/// One retention pass as of `now`: sagas and their events, closed dead
/// letters, ingest errors, spans.
pub async fn retention_pass(
    store: &Store,
    config: &RetentionConfig,
    now: Timestamp,
    shutdown: &watch::Receiver<bool>,
) -> sagascope_store::Result<RetentionReport> {
    let mut report = RetentionReport::default();
    let size = config.batch_size;
    // Whatever the configured ages: the windows' needs decide.
    let (rollups, batches) =
        in_batches(config, shutdown, || store.delete_expired_rollups(now, size)).await?;
    report.rollups = rollups;
    report.batches += batches;
    if let Some(age) = config.events {
        let before = cutoff(now, age);
        let events = &std::sync::atomic::AtomicU64::new(0);
        let (sagas, batches) = in_batches(config, shutdown, move || async move {
            let removed = store.delete_sagas_ended_before(before, size).await?;
            events.fetch_add(removed.events, std::sync::atomic::Ordering::Relaxed);
            Ok(removed.sagas)
        })
        .await?;
        report.sagas = sagas;
        report.events = events.load(std::sync::atomic::Ordering::Relaxed);
        report.batches += batches;
        let (dead_letters, batches) = in_batches(config, shutdown, || {
            store.delete_closed_dead_letters_before(before, size)
        })
        .await?;
        report.dead_letters = dead_letters;
        report.batches += batches;
    }
    if let Some(age) = config.ingest_errors {
        let before = cutoff(now, age);
        let (errors, batches) = in_batches(config, shutdown, || {
            store.delete_ingest_errors_before(before, size)
        })
        .await?;
        report.ingest_errors = errors;
        report.batches += batches;
    }
    if let Some(age) = config.spans {
        let before = cutoff(now, age);
        let (spans, batches) = in_batches(config, shutdown, || {
            delete_spans_before(store, before, size)
        })
        .await?;
        report.spans = spans;
        report.batches += batches;
    }
    if let Some(age) = config.audit {
        let before = cutoff(now, age);
        let (entries, batches) = in_batches(config, shutdown, || {
            store.delete_audit_entries_before(before, size)
        })
        .await?;
        report.audit_entries = entries;
        report.batches += batches;
    }
    Ok(report)
}

/// The span store's retention batch (`--retention-spans`). Spans of no
/// saga go sooner, by the span receiver's own sweep (`span_sweep.rs`).
async fn delete_spans_before(
    store: &Store,
    before: Timestamp,
    batch_size: u32,
) -> sagascope_store::Result<u64> {
    store.delete_spans_before(before, batch_size as usize).await
}

/// Runs [`retention_pass`] every `config.interval` until shutdown; the
/// first pass runs at start.
pub async fn run_retention(
    store: Store,
    config: RetentionConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    describe_counter!(
        "sagascope_retention_removed_total",
        "Rows removed by retention, by kind: rollups, sagas, events, dead_letters, ingest_errors, spans, audit_entries."
    );
    tracing::info!(?config, "retention started");
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => return,
            _ = tick.tick() => {}
        }
        let started = std::time::Instant::now();
        match retention_pass(&store, &config, chrono::Utc::now(), &shutdown).await {
            Ok(report) => {
                for (kind, n) in [
                    ("rollups", report.rollups),
                    ("sagas", report.sagas),
                    ("events", report.events),
                    ("dead_letters", report.dead_letters),
                    ("ingest_errors", report.ingest_errors),
                    ("spans", report.spans),
                    ("audit_entries", report.audit_entries),
                ] {
                    counter!("sagascope_retention_removed_total", "kind" => kind).increment(n);
                }
                tracing::info!(
                    ?report,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention pass done"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "retention pass failed; retrying at the next interval")
            }
        }
    }
}

/// Parses a retention age: `off` (or `0`), or a number with a unit `ms`,
/// `s`, `m`, `h` or `d` (`30d`, `12h`).
pub fn parse_retention_age(text: &str) -> Result<RetentionAge, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") || text == "0" {
        return Ok(RetentionAge(None));
    }
    parse_interval(text).map(|age| RetentionAge(Some(age)))
}

/// Parses a duration with a unit `ms`, `s`, `m`, `h` or `d` (not zero).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a duration such as 30d, 12h, 10m or 30s");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    match n.checked_mul(unit_ms) {
        Some(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_days_and_off() {
        assert_eq!(
            parse_retention_age("30d").unwrap(),
            RetentionAge(Some(Duration::from_secs(30 * 86_400)))
        );
        assert_eq!(
            parse_retention_age("12h").unwrap(),
            RetentionAge(Some(Duration::from_secs(12 * 3600)))
        );
        assert_eq!(parse_retention_age("off").unwrap(), RetentionAge(None));
        assert_eq!(parse_retention_age("0").unwrap(), RetentionAge(None));
        assert!(parse_retention_age("30").is_err());
        assert!(parse_retention_age("30 weeks").is_err());
        assert!(parse_interval("0m").is_err());
        assert_eq!(parse_interval("10m").unwrap(), Duration::from_secs(600));
    }
}
