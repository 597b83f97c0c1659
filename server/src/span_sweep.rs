//! The window for spans of traces that no saga has: every minute, the
//! spans received longer ago than `--spans-unmatched-window` whose trace id
//! no saga event carries are deleted in bounded batches. Spans of sagas
//! stay until the retention by age (the retention loop calls
//! `Store::delete_spans_before`).
//!
//! Each sweep checks only the spans received since the previous one's
//! cutoff (less [`RECHECK`]): the spans of sagas older than the window,
//! kept until the retention by age, are not walked again every minute.
//! A span that was a saga's when it was checked stays until that
//! retention, even if its saga is removed before. The first sweep of a
//! process checks everything older than the window.

use std::time::Duration;

use crate::run::Running;

const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Rows per delete statement: short transactions beside the ingest.
const SWEEP_BATCH: usize = 5_000;
/// How far back each sweep checks again before the previous cutoff: spans
/// that another replica (whose clock may lag) stamped behind it.
const RECHECK: chrono::Duration = chrono::Duration::minutes(5);

impl Running {
    pub fn sweep_unmatched_spans(&self, window: Duration) {
        let store = self.state.store.clone();
        let mut shutdown = self.state.shutdown.clone();
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            let mut checked_until: Option<chrono::DateTime<chrono::Utc>> = None;
            loop {
                tokio::select! {
                    changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
                    _ = tick.tick() => {
                        let Some(cutoff) = chrono::Utc::now().checked_sub_signed(window) else { continue };
                        let since = checked_until.and_then(|until| until.checked_sub_signed(RECHECK));
                        let mut deleted = 0;
                        loop {
                            if *shutdown.borrow() {
                                break;
                            }
                            match store
                                .delete_unmatched_spans_received_between(since, cutoff, SWEEP_BATCH)
                                .await
                            {
                                Ok(0) => {
                                    checked_until = Some(cutoff);
                                    break;
                                }
                                Ok(n) => deleted += n,
                                Err(error) => {
                                    tracing::warn!(%error, "sweep of unmatched spans failed");
                                    break;
                                }
                            }
                        }
                        if deleted > 0 {
                            tracing::info!(deleted, "spans of traces without a saga removed");
                        }
                    }
                }
            }
        });
    }
}
