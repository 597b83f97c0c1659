//! Every few seconds: resolve the re-driven dead letters whose saga moved
//! on or whose copy did not come back within `--retry-resolve-after`, and
//! clean up single retries whose process stopped before the broker
//! answered.

use sagascope_store::ResolveReport;
use tokio::sync::watch;

use crate::{duration_text, RedriveService};

pub(crate) async fn run(service: RedriveService, mut shutdown: watch::Receiver<bool>) {
    let inner = &service.inner;
    let window = duration_text(inner.config.resolve_after);
    // A live producer answers within its delivery timeout; twice that
    // leaves no doubt the request's process is gone.
    let interrupted_after = chrono::Duration::from_std(inner.config.delivery_timeout * 2)
        .unwrap_or(chrono::Duration::MAX);
    let mut tick = tokio::time::interval(inner.config.sweep_every);
    loop {
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now();
        match inner
            .store
            .resolve_retried(now, inner.config.resolve_after, &window)
            .await
        {
            Ok(report) if report != ResolveReport::default() => tracing::info!(
                saga_progressed = report.saga_progressed,
                not_returned = report.not_returned,
                "re-driven dead letters resolved"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "resolve sweep failed"),
        }
        match inner
            .store
            .recover_interrupted_retries(now - interrupted_after, now)
            .await
        {
            Ok(report) if report.attempts > 0 => tracing::warn!(
                attempts = report.attempts,
                "single retries interrupted before the broker answered are back to new"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot recover interrupted retries"),
        }
    }
}
