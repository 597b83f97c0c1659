//! `/dlq/jobs/{job_id}`: one bulk retry. State, progress (produced, failed,
//! skipped of the frozen total), rate, canary, who asked and why, the
//! filter (a link back to the list), and a Cancel form while it runs.
//! Operators only, like the job API. While active it fetches itself again
//! every second (with JavaScript; without, a refresh link).

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use sagascope_model::{RetryJobState, RetryJobView, SessionInfo};

use crate::components::dead_letter::{
    dead_letter_href, defs, job_href, join_query, use_poll, ActionBanner, CsrfField,
};
use crate::components::dead_letter_actions::CANCEL_JOB_ACTION;
use crate::components::dead_letter_job::{job_rate, JobProgress, JobStateBadge};
use crate::components::metric_cards::fmt_per;
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::time::RelativeTime;
use crate::server_fns::{error_text, fetch_retry_job, set_page_status, use_session};
use crate::state::ui_state;
use crate::time::{absolute, delay};

#[component]
pub fn DlqJobPage() -> impl IntoView {
    let params = use_params_map();
    let job_id = Memo::new(move |_| params.with(|p| p.get("job_id").unwrap_or_default()));
    let active = RwSignal::new(true);
    let tick = use_poll(Duration::from_secs(1), active.into());
    let job = Resource::new(
        move || (job_id.get(), tick.get()),
        |(id, _)| fetch_retry_job(id),
    );
    let session = use_session();
    let query = use_query_map();
    let banner_query = Memo::new(move |_| query.get());

    view! {
        <Title text=move || format!("Bulk retry {}", job_id.get())/>
        <section class="page page-dlq-job">
            <nav class="crumbs" aria-label="Breadcrumb">
                <a href="/dlq">"Dead letters"</a>
                <span aria-hidden="true">" / "</span>
                <span>"Bulk retry "</span>
                <span class="mono">{move || job_id.get()}</span>
            </nav>
            <ActionBanner query=banner_query/>
            <Transition fallback=|| view! { <Loading what="the job"/> }>
                {move || {
                    let id = job_id.get();
                    Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        let result = job.await;
                        if !info.has_role("operator") {
                            active.try_set(false);
                            set_page_status(403);
                            return view! { <JobForbidden info job_id=id/> }.into_any();
                        }
                        match result {
                            Ok(Some(job)) => {
                                active.try_set(job.state.is_active());
                                view! { <JobView job info/> }.into_any()
                            }
                            Ok(None) => {
                                active.try_set(false);
                                set_page_status(404);
                                view! {
                                    <div data-test="job-not-found">
                                        <EmptyState
                                            title=format!("No bulk retry {id}")
                                            detail="No bulk retry job has this id.".to_string()
                                            action=("/dlq".to_string(), "Dead letters".to_string())
                                        />
                                    </div>
                                }
                                .into_any()
                            }
                            Err(error) => view! {
                                <ErrorState title="Could not load this job".to_string() detail=error_text(&error)/>
                            }
                            .into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
    .into_any()
}

/// Bulk jobs are the operators' (like their API).
#[component]
fn JobForbidden(info: SessionInfo, job_id: String) -> impl IntoView {
    let (detail, action) = match &info.user {
        Some(user) => (
            format!(
                "Bulk retry jobs are visible to operators; you are signed in as {} ({}).",
                user.name, user.role
            ),
            ("/dlq".to_string(), "Back to the dead letters".to_string()),
        ),
        None => (
            "Bulk retry jobs are visible to operators. Sign in as an operator.".to_string(),
            (
                format!(
                    "/login?next={}",
                    sagascope_model::percent_encode(&job_href(&job_id))
                ),
                "Sign in".to_string(),
            ),
        ),
    };
    view! {
        <div class="forbidden" data-test="job-forbidden">
            <EmptyState title="403 — operators only".to_string() detail action/>
        </div>
    }
}

/// What the canary of a job is doing, in words.
pub fn canary_text(job: &RetryJobView) -> String {
    if !job.canary {
        return "none: the whole set at once".to_string();
    }
    let which = job
        .canary_id
        .as_deref()
        .map(|id| format!(" ({id})"))
        .unwrap_or_default();
    match job.state {
        RetryJobState::Pending => "first, before the rest".to_string(),
        RetryJobState::Canary => format!("produced{which}; watching whether it comes back"),
        RetryJobState::Running | RetryJobState::Completed => {
            format!("passed{which}: it did not come back")
        }
        RetryJobState::Failed if job.produced <= 1 => format!("came back{which}: the job stopped"),
        RetryJobState::Failed | RetryJobState::Cancelled => which.trim().to_string(),
    }
}

#[component]
fn JobView(job: RetryJobView, info: SessionInfo) -> impl IntoView {
    let now = ui_state().now_ms;
    let active = job.state.is_active();
    let operator = info.has_role("operator");
    let href = job_href(&job.id);
    let filter_href = join_query("/dlq", &job.filter);
    let rate = {
        let job = job.clone();
        move || {
            job_rate(&job, now.get())
                .map(|r| format!("{} msg/s", fmt_per(r)))
                .unwrap_or_else(|| "—".to_string())
        }
    };
    let throttle = job
        .throttle_per_s
        .map(|t| format!("{t} msg/s at most"))
        .unwrap_or_else(|| "none".to_string());
    let took = match (&job.started_at, &job.finished_at) {
        (Some(s), Some(f)) => Some(delay(Some(s), Some(f))),
        _ => None,
    };
    let cancel = (operator && active).then(|| {
        let token = info.csrf_token.clone().unwrap_or_default();
        view! {
            <form method="post" action=CANCEL_JOB_ACTION class="action-form inline" data-test="job-cancel-form">
                <CsrfField token/>
                <input type="hidden" name="job_id" value=job.id.clone()/>
                <p class="action-statement">"Stops the job: messages not yet produced are skipped and stay new. Those already produced stay produced."</p>
                <button type="submit" class="button danger" data-test="job-cancel">"Cancel this job"</button>
            </form>
        }
    });
    let canary_link = job.canary_id.clone().map(|id| {
        view! { <a class="mono small" href=dead_letter_href(&id) data-test="job-canary-link">{id.clone()}</a> }
    });
    view! {
        <header
            class="panel saga-header job-header"
            data-test="job"
            data-job-id=job.id.clone()
            data-state=job.state.as_str()
            data-active=active.to_string()
        >
            <div class="saga-title">
                <h1>"Bulk retry "<span class="mono">{sagascope_model::shorten_id(&job.id)}</span></h1>
                <JobStateBadge state=job.state/>
                {active.then(|| view! {
                    <a class="button small-button" href=href.clone() data-test="job-refresh" title="Load the latest progress (the page also refreshes itself every second with JavaScript)">"↻ Refresh"</a>
                })}
            </div>
            <JobProgress job=job.clone()/>
            <dl class="facts-grid">
                <div>
                    <dt title=defs::JOB_RATE>"Rate"</dt>
                    <dd class="num" data-test="job-rate">{rate}</dd>
                </div>
                <div>
                    <dt>"Throttle"</dt>
                    <dd>{throttle}</dd>
                </div>
                <div>
                    <dt>"Canary"</dt>
                    <dd data-test="job-canary">{canary_text(&job)}" "{canary_link}</dd>
                </div>
                <div>
                    <dt>"Requested by"</dt>
                    <dd class="mono" data-test="job-actor">{job.actor.clone()}</dd>
                </div>
                <div>
                    <dt>"Reason"</dt>
                    <dd data-test="job-reason">{job.reason.clone()}</dd>
                </div>
                <div>
                    <dt>"Created"</dt>
                    <dd><RelativeTime at=job.created_at/><span class="muted mono small">{format!(" {}", absolute(&job.created_at))}</span></dd>
                </div>
                <div>
                    <dt>"Started"</dt>
                    <dd>{job.started_at.map(|at| view! { <RelativeTime at/> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"not yet"</span> }.into_any())}</dd>
                </div>
                <div>
                    <dt>"Finished"</dt>
                    <dd>
                        {job.finished_at.map(|at| view! { <RelativeTime at/> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"not yet"</span> }.into_any())}
                        {took.map(|t| view! { <span class="muted small">{format!(" after {t}")}</span> })}
                    </dd>
                </div>
                <div class="wide">
                    <dt>"Filter"</dt>
                    <dd class="mono small">
                        <a href=filter_href data-test="job-filter-link" title="The dead letters this filter selects now">
                            {if job.filter.is_empty() { "(every new dead letter)".to_string() } else { job.filter.clone() }}
                        </a>
                    </dd>
                </div>
            </dl>
            {job.message.clone().map(|m| view! {
                <p class="note" data-test="job-message">{m}</p>
            })}
        </header>
        {cancel}
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_texts() {
        let at = chrono::DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let mut job = RetryJobView {
            id: "j".into(),
            created_at: at,
            actor: "op".into(),
            reason: "r".into(),
            filter: String::new(),
            state: RetryJobState::Canary,
            canary: true,
            canary_id: Some("a.DLT/0/1".into()),
            throttle_per_s: None,
            total: 3,
            produced: 1,
            failed: 0,
            skipped: 0,
            started_at: Some(at),
            finished_at: None,
            message: None,
        };
        assert!(canary_text(&job).contains("watching"));
        job.state = RetryJobState::Completed;
        assert!(canary_text(&job).starts_with("passed"));
        job.canary = false;
        assert!(canary_text(&job).starts_with("none"));
    }
}
