//! A bulk retry job's state and progress, shared by the job page and the
//! recent jobs on `/dlq`.

use leptos::prelude::*;
use sagascope_model::{RetryJobState, RetryJobView};

use crate::components::dead_letter::defs;
use crate::time::millis;

/// Icon, label, colour class and meaning of a job state.
pub fn job_look(state: RetryJobState) -> (&'static str, &'static str, &'static str, &'static str) {
    match state {
        RetryJobState::Pending => (
            "◌",
            "pending",
            "status-stalled",
            "Pending: the set is frozen, producing has not started",
        ),
        RetryJobState::Canary => (
            "◔",
            "canary",
            "status-compensating",
            "Canary: one message was re-driven; waiting to see whether it comes back",
        ),
        RetryJobState::Running => (
            "▶",
            "running",
            "status-running",
            "Running: re-driving the frozen set",
        ),
        RetryJobState::Completed => (
            "✓",
            "completed",
            "status-completed",
            "Completed: every message of the set was handled",
        ),
        RetryJobState::Cancelled => (
            "⊘",
            "cancelled",
            "status-discarded",
            "Cancelled by an operator; the rest was skipped",
        ),
        RetryJobState::Failed => (
            "✕",
            "failed",
            "status-failed",
            "Failed: the canary came back, or the broker refused",
        ),
    }
}

#[component]
pub fn JobStateBadge(state: RetryJobState) -> impl IntoView {
    let (icon, label, class, meaning) = job_look(state);
    view! {
        <span class=format!("badge {class}") data-test="job-state" data-state=state.as_str() title=meaning>
            <span class="badge-icon" aria-hidden="true">{icon}</span>
            <span class="badge-label">{label}</span>
        </span>
    }
}

/// Percentage of `part` in `total` for a bar width (0 for an empty set).
pub fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// Handled messages per second between the job's start and its end (or
/// `now_ms` while it runs); `None` before it started.
pub fn job_rate(job: &RetryJobView, now_ms: i64) -> Option<f64> {
    let start = millis(job.started_at.as_ref()?);
    let end = job.finished_at.as_ref().map(millis).unwrap_or(now_ms);
    let seconds = (end - start) as f64 / 1000.0;
    (seconds > 0.0).then(|| job.done() as f64 / seconds)
}

/// The progress bar: produced, failed and skipped of the total, with the
/// numbers as text next to it.
#[component]
pub fn JobProgress(
    job: RetryJobView,
    /// One line for tables.
    #[prop(optional)]
    compact: bool,
) -> impl IntoView {
    let total = job.total;
    let label = format!(
        "{} of {} handled: {} produced, {} failed, {} skipped",
        job.done(),
        total,
        job.produced,
        job.failed,
        job.skipped
    );
    let bar = view! {
        <span
            class="job-bar"
            role="progressbar"
            aria-valuemin="0"
            aria-valuemax=total.to_string()
            aria-valuenow=job.done().to_string()
            aria-label=label.clone()
            title=label.clone()
            data-test="job-progress"
            data-done=job.done().to_string()
            data-total=total.to_string()
        >
            <span class="job-seg job-produced" style=format!("width:{:.2}%", share(job.produced, total))></span>
            <span class="job-seg job-failed" style=format!("width:{:.2}%", share(job.failed, total))></span>
            <span class="job-seg job-skipped" style=format!("width:{:.2}%", share(job.skipped, total))></span>
        </span>
    };
    if compact {
        return view! {
            <span class="job-progress compact">
                {bar}
                <span class="num small">{format!("{}/{}", job.done(), total)}</span>
            </span>
        }
        .into_any();
    }
    view! {
        <div class="job-progress">
            {bar}
            <dl class="job-counts">
                <div title=defs::JOB_PRODUCED>
                    <dt><span class="job-swatch job-produced" aria-hidden="true"></span>"Produced"</dt>
                    <dd class="num" data-test="job-produced">{job.produced}</dd>
                </div>
                <div title=defs::JOB_FAILED>
                    <dt><span class="job-swatch job-failed" aria-hidden="true"></span>"Failed"</dt>
                    <dd class="num" data-test="job-failed">{job.failed}</dd>
                </div>
                <div title=defs::JOB_SKIPPED>
                    <dt><span class="job-swatch job-skipped" aria-hidden="true"></span>"Skipped"</dt>
                    <dd class="num" data-test="job-skipped">{job.skipped}</dd>
                </div>
                <div title=defs::JOB_TOTAL>
                    <dt>"Total"</dt>
                    <dd class="num" data-test="job-total">{total}</dd>
                </div>
            </dl>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: RetryJobState) -> RetryJobView {
        let at = chrono::DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        RetryJobView {
            id: "j1".into(),
            created_at: at,
            actor: "operator".into(),
            reason: "fixed".into(),
            filter: "topic=a".into(),
            state,
            canary: false,
            canary_id: None,
            throttle_per_s: None,
            total: 10,
            produced: 6,
            failed: 1,
            skipped: 1,
            started_at: Some(at),
            finished_at: None,
            message: None,
        }
    }

    #[test]
    fn shares_and_rates() {
        assert_eq!(share(1, 4), 25.0);
        assert_eq!(share(1, 0), 0.0);
        let j = job(RetryJobState::Running);
        assert_eq!(job_rate(&j, 1_800_000_004_000), Some(2.0));
        let mut pending = job(RetryJobState::Pending);
        pending.started_at = None;
        assert_eq!(job_rate(&pending, 1_800_000_004_000), None);
        assert_eq!(job_look(RetryJobState::Cancelled).1, "cancelled");
    }
}
