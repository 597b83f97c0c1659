//! `/sagas/:saga_id`: the saga header and its event timeline, live, with
//! the saga's dead letters as rows of their own (operators can retry a
//! retryable one from there). While the saga runs, its type's learned flow
//! says what it waits on and what usually comes next.

use std::collections::HashSet;
use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use sagascope_model::{
    format_duration_ms, FlowModel, SagaDetail, SagaStatus, SagaSummary, SessionInfo, StreamMessage,
    TraceSpans,
};

use crate::components::dead_letter::{use_poll, ActionBanner};
use crate::components::dead_letter_timeline::{
    merge_letters, merge_timeline, DeadLetterTimelineRow, TimelineItem,
};
use crate::components::ids::{type_href, CopyButton, TraceLink};
use crate::components::live_stream::{
    saga_stream_url, use_live_stream, use_live_stream_with_resync,
};
use crate::components::span_waterfall::SagaTraceSpans;
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::status_badge::StatusBadge;
use crate::components::time::{RelativeTime, SagaDuration};
use crate::components::timeline::{insert_event, Axis, TimelineRow};
use crate::server_fns::{
    error_text, fetch_flow_model, fetch_saga_dead_letters, fetch_saga_detail, fetch_saga_spans,
    set_page_status, use_session, SagaDeadLetter,
};
use crate::state::ui_state;
use crate::time::{absolute, millis};

#[component]
pub fn SagaDetailPage() -> impl IntoView {
    let params = use_params_map();
    let saga_id = Memo::new(move |_| params.with(|p| p.get("saga_id").unwrap_or_default()));
    let detail = Resource::new(move || saga_id.get(), fetch_saga_detail);
    let dead_letters = Resource::new(move || saga_id.get(), fetch_saga_dead_letters);
    let spans = Resource::new(move || saga_id.get(), fetch_saga_spans);
    // The learned flow of the saga's type, once its type is known. Awaiting
    // `detail` tracks it: a reloaded saga reloads its flow. A missing flow
    // (or a failed read) only hides the "waiting on" hints.
    let flow = Resource::new(
        move || saga_id.get(),
        move |_| async move {
            let saga_type = match detail.await {
                Ok(Some(detail)) => detail.saga.saga_type,
                _ => return None,
            };
            fetch_flow_model(saga_type).await.ok().flatten()
        },
    );
    let session = use_session();
    let query = use_query_map();
    let banner_query = Memo::new(move |_| query.get());

    view! {
        <Title text=move || format!("Saga {}", saga_id.get())/>
        <section class="page page-saga">
            <nav class="crumbs" aria-label="Breadcrumb">
                <a href="/sagas">"Sagas"</a>
                <span aria-hidden="true">" / "</span>
                <span class="mono">{move || saga_id.get()}</span>
            </nav>
            <ActionBanner query=banner_query/>
            <Transition fallback=|| view! { <Loading what="saga"/> }>
                {move || {
                    let id = saga_id.get();
                    Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        // A failing dead-letter read must not hide the saga.
                        let letters = dead_letters.await.unwrap_or_default();
                        match detail.await {
                            Ok(Some(detail)) => {
                                let flow = flow.await.map(Arc::new);
                                view! { <SagaView detail letters info spans flow/> }.into_any()
                            }
                            Ok(None) => {
                                set_page_status(404);
                                view! { <UnknownSaga saga_id=id on_appear=move || detail.refetch()/> }
                                    .into_any()
                            }
                            Err(error) => view! {
                                <ErrorState title="Could not load this saga".to_string() detail=error_text(&error)/>
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

/// The designed 404 of a saga id nobody has seen (yet). Listens for it: if
/// its first event arrives, the page loads it.
#[component]
fn UnknownSaga(saga_id: String, on_appear: impl Fn() + 'static) -> impl IntoView {
    use_live_stream(saga_stream_url(&saga_id), move |message| {
        if matches!(
            message,
            StreamMessage::Saga { .. } | StreamMessage::Event { .. }
        ) {
            on_appear();
        }
    });
    view! {
        <div class="not-found" data-test="saga-not-found">
            <EmptyState
                title=format!("No saga with id {saga_id}")
                detail="No event of this saga has been ingested. Check the id, or wait: if its events arrive, this page loads them.".to_string()
                action=(format!("/sagas?q={}", sagascope_model::percent_encode(&saga_id)), "Search for it".to_string())
            />
        </div>
    }
    .into_any()
}

/// Spans are fetched again this long after the saga's last update.
const SPAN_REFETCH_DEBOUNCE_MS: u64 = 1_500;

/// How often a saga page fetches its dead letters again (their state moves
/// on without a saga event: retried, then resolved).
const DEAD_LETTER_POLL_SECONDS: u64 = 5;

#[component]
fn SagaView(
    detail: SagaDetail,
    letters: Vec<SagaDeadLetter>,
    info: SessionInfo,
    spans: Resource<Result<Vec<TraceSpans>, ServerFnError>>,
    /// The learned flow of the saga's type, if any.
    flow: Option<Arc<FlowModel>>,
) -> impl IntoView {
    let SagaDetail { saga, events } = detail;
    let saga_id = saga.saga_id.clone();
    let initial_ids: Arc<HashSet<String>> =
        Arc::new(events.iter().map(|e| e.event_id.clone()).collect());
    let summary = RwSignal::new(saga);
    let events = RwSignal::new(events);
    let letters = RwSignal::new(letters);
    let axis = Memo::new(move |_| {
        let s = summary.read();
        events.with(|events| Axis::new(events, Some(&s.started_at), s.ended_at.as_ref()))
    });
    let items = Memo::new(move |_| {
        events.with(|events| letters.with(|letters| merge_timeline(events, letters)))
    });
    let return_to = crate::components::ids::saga_href(&saga_id);

    // The dead letters again: on a poll, and whenever the saga moves.
    let refetch_letters = {
        let saga_id = saga_id.clone();
        move || {
            let saga_id = saga_id.clone();
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = fetch_saga_dead_letters(saga_id).await {
                    if let Some(merged) = letters
                        .try_with_untracked(|shown| merge_letters(shown, fresh))
                        .flatten()
                    {
                        letters.try_set(merged);
                    }
                }
            });
        }
    };
    let poll = use_poll(
        std::time::Duration::from_secs(DEAD_LETTER_POLL_SECONDS),
        Signal::derive(|| true),
    );
    {
        let refetch_letters = refetch_letters.clone();
        Effect::new(move |previous: Option<u64>| {
            let tick = poll.get();
            if previous.is_some_and(|p| p != tick) {
                refetch_letters();
            }
            tick
        });
    }

    // The spans again once the saga has been quiet for a moment: its
    // services export their spans when their work ends, after the events.
    let span_generation = StoredValue::new(0_u64);
    let refetch_spans = move || {
        span_generation.update_value(|g| *g += 1);
        let mine = span_generation.get_value();
        set_timeout(
            move || {
                if span_generation.try_get_value() == Some(mine) {
                    spans.refetch();
                }
            },
            std::time::Duration::from_millis(SPAN_REFETCH_DEBOUNCE_MS),
        );
    };

    let navigate = leptos_router::hooks::use_navigate();
    let apply = {
        let saga_id = saga_id.clone();
        let refetch_letters = refetch_letters.clone();
        move |message: StreamMessage| match message {
            // This instance was merged into another: follow it.
            StreamMessage::Merged { from, into } if from == saga_id => {
                navigate(
                    &crate::components::ids::saga_href(&into),
                    Default::default(),
                );
            }
            StreamMessage::Saga { saga }
                if saga.saga_id == saga_id
                    && summary.try_with_untracked(|s| *s != saga) == Some(true) =>
            {
                summary.try_set(saga);
                refetch_letters();
                refetch_spans();
            }
            StreamMessage::Event { event } if event.saga_id == saga_id => {
                events.try_update(|events| {
                    insert_event(events, event);
                });
            }
            _ => {}
        }
    };
    // On every (re)open of the stream, merge what was missed meanwhile.
    let resync = {
        let saga_id = saga_id.clone();
        let apply = apply.clone();
        let refetch_letters = refetch_letters.clone();
        move || {
            let saga_id = saga_id.clone();
            let apply = apply.clone();
            refetch_letters();
            leptos::task::spawn_local(async move {
                if let Ok(Some(detail)) = fetch_saga_detail(saga_id).await {
                    apply(StreamMessage::Saga { saga: detail.saga });
                    for event in detail.events {
                        apply(StreamMessage::Event { event });
                    }
                }
            });
        }
    };
    use_live_stream_with_resync(saga_stream_url(&saga_id), apply, resync);

    let header_flow = flow.clone();
    view! {
        {move || view! { <SagaHeader saga=summary.get() flow=header_flow.clone()/> }}
        <section class="panel timeline-panel" aria-labelledby="timeline-title">
            <header class="panel-head">
                <h2 id="timeline-title">"Timeline"</h2>
                <span class="muted">
                    {move || {
                        let n = events.with(Vec::len);
                        format!("{n} event{}", if n == 1 { "" } else { "s" })
                    }}
                </span>
                {move || {
                    let n = letters.with(Vec::len);
                    (n > 0).then(|| view! {
                        <span class="muted tl-dlq-count" data-test="saga-dead-letter-count" title="Messages of this saga that a consumer sent to a dead-letter topic">
                            {format!("· ✉ {n} dead letter{}", if n == 1 { "" } else { "s" })}
                        </span>
                    })
                }}
            </header>
            <ol class="timeline" data-test="timeline">
                <For
                    each=move || items.get()
                    key=TimelineItem::key
                    children=move |item| match item {
                        TimelineItem::Event(event) => {
                            let fresh = !initial_ids.contains(&event.event_id);
                            view! { <TimelineRow event axis fresh/> }.into_any()
                        }
                        TimelineItem::DeadLetter(item) => view! {
                            <DeadLetterTimelineRow item axis session=info.clone() return_to=return_to.clone()/>
                        }
                        .into_any(),
                    }
                />
                {move || summary.with(|s| expected_steps(s, flow.as_deref()))}
            </ol>
            {move || events.with(Vec::is_empty).then(|| view! {
                <EmptyState title="No events yet".to_string() detail="Events of this saga appear here live.".to_string()/>
            })}
        </section>
        <section class="panel spans-panel" id="spans" aria-labelledby="spans-title" data-test="saga-spans">
            <header class="panel-head">
                <h2 id="spans-title">"Trace"</h2>
                <span class="muted">"the spans of the saga's trace, with its events marked on the same time axis"</span>
            </header>
            <Transition fallback=|| view! { <Loading what="spans"/> }>
                {move || Suspend::new(async move {
                    let result = spans.await.map_err(|error| error_text(&error));
                    let trace_ids = summary.with_untracked(|s| s.trace_ids.clone());
                    view! { <SagaTraceSpans trace_ids result events/> }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// Whether the saga still waits for events (the flow hints apply).
fn in_progress(status: SagaStatus) -> bool {
    matches!(status, SagaStatus::Running | SagaStatus::Compensating)
}

/// The rest of the usual path after the saga's latest event, as faint
/// rows after the real ones: what the type's instances usually do next.
fn expected_steps(saga: &SagaSummary, flow: Option<&FlowModel>) -> Option<AnyView> {
    let (flow, last) = (flow?, saga.last_node.as_deref()?);
    if !in_progress(saga.status) {
        return None;
    }
    let rows = flow
        .usual_rest(last)
        .into_iter()
        .map(|edge| {
            let within = edge
                .gap
                .p99_ms
                .map(|ms| format!(" · usually within {}", format_duration_ms(ms)))
                .unwrap_or_default();
            let title = format!(
                "Not an event: {} usually follows {} (seen {} times in the learned flow); p99 gap {}",
                edge.to,
                edge.from,
                edge.count,
                edge.gap.p99_ms.map(format_duration_ms).unwrap_or_else(|| "—".into())
            );
            view! {
                <li class="tl-row tl-expected" data-test="expected-step" data-node=edge.to.clone() title=title>
                    <div class="tl-summary">
                        <span class="tl-offset num mono" aria-hidden="true">"…"</span>
                        <span class="tl-expected-text">
                            <span class="tl-expected-tag">"expected"</span>
                            " · "
                            <span class="mono">{edge.to.clone()}</span>
                            {within}
                        </span>
                    </div>
                </li>
            }
        })
        .collect_view();
    Some(rows.into_any())
}

/// "Waiting on PaymentAuthorized for 14 m — usually < 40 s": the usual
/// next event after the saga's latest one, with the time waited so far
/// (ticking), in a warning colour once longer than that hop's p99.
#[component]
fn WaitingOnNote(flow: Arc<FlowModel>, last_node: String, since_ms: i64) -> impl IntoView {
    let now = ui_state().now_ms;
    // Whether anything is awaited does not depend on the time waited.
    let Some(first) = flow.waiting_on(&last_node, 0) else {
        return ().into_any();
    };
    let waiting = Memo::new(move |_| {
        flow.waiting_on(&last_node, (now.get() - since_ms).max(0))
            .unwrap_or_else(|| first.clone())
    });
    let overdue = move || waiting.with(|w| w.overdue);
    let text = move || {
        waiting.with(|w| {
            let usual = w
                .usual_p99_ms
                .map(|ms| format!(" — usually < {}", format_duration_ms(ms)))
                .unwrap_or_default();
            format!(
                "Waiting on {} for {}{usual}",
                w.next,
                format_duration_ms(w.waited_ms)
            )
        })
    };
    let title = move || {
        waiting.with(|w| {
            format!(
                "In the learned flow of this type, {} usually follows {}{}",
                w.next,
                w.after,
                if w.overdue {
                    "; this saga has waited longer than that hop's p99"
                } else {
                    ""
                }
            )
        })
    };
    view! {
        <p
            class=move || if overdue() { "waiting-on overdue" } else { "waiting-on" }
            data-test="waiting-on"
            data-overdue=move || overdue().to_string()
            title=title
        >
            <span class="waiting-icon" aria-hidden="true">{move || if overdue() { "⚠" } else { "⏳" }}</span>
            <span>{text}</span>
        </p>
    }
    .into_any()
}

#[component]
fn SagaHeader(saga: SagaSummary, flow: Option<Arc<FlowModel>>) -> impl IntoView {
    let status = saga.status;
    let traces = saga.trace_ids.clone();
    // At most 32 of each are listed; search finds the saga by any of them.
    let more_traces = saga
        .more_trace_ids
        .then(|| view! { <span class="muted" data-test="more-traces">" and more (search finds the saga by any)"</span> });
    let mut keys = saga.business_keys.join(", ");
    if saga.more_business_keys {
        keys.push_str(", … (search finds the saga by any)");
    }
    view! {
        <header class=format!("saga-header panel status-rail-{}", status.as_str()) data-test="saga-header">
            <div class="saga-title">
                <h1>
                    <a class="plain-link" href=type_href(&saga.saga_type) title=format!("The learned flow of {}", saga.saga_type) data-test="saga-type-link">
                        {saga.saga_type.clone()}
                    </a>
                </h1>
                <StatusBadge status inferred=saga.status_inferred inferred_from=saga.inferred_from.clone() last_node=saga.last_node.clone() test="saga-status"/>
            </div>
            <dl class="facts-grid">
                <div>
                    <dt>"Saga id"</dt>
                    <dd class="mono" data-test="saga-id">
                        {saga.saga_id.clone()}
                        <CopyButton value=saga.saga_id.clone()/>
                    </dd>
                </div>
                <div>
                    <dt>{if traces.len() > 1 { "Traces" } else { "Trace" }}</dt>
                    <dd>
                        {if traces.is_empty() {
                            view! { <span class="muted">"—"</span> }.into_any()
                        } else {
                            traces
                                .into_iter()
                                .map(|t| view! {
                                    <span class="trace-item">
                                        <TraceLink trace_id=t.clone()/>
                                        <CopyButton value=t/>
                                    </span>
                                })
                                .collect_view()
                                .into_any()
                        }}
                        {more_traces}
                    </dd>
                </div>
                <div>
                    <dt>"Business keys"</dt>
                    <dd class="mono" data-test="business-keys">
                        {if keys.is_empty() { "—".to_string() } else { keys }}
                    </dd>
                </div>
                <div>
                    <dt>"Started"</dt>
                    <dd>
                        <RelativeTime at=saga.started_at/>
                        <span class="muted mono small">{format!(" {}", absolute(&saga.started_at))}</span>
                    </dd>
                </div>
                <div>
                    <dt>"Ended"</dt>
                    <dd>
                        {match saga.ended_at {
                            Some(at) => view! {
                                <RelativeTime at/>
                                <span class="muted mono small">{format!(" {}", absolute(&at))}</span>
                            }
                            .into_any(),
                            None => view! { <span class="muted">"not yet"</span> }.into_any(),
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Duration"</dt>
                    <dd data-test="saga-duration">
                        <SagaDuration
                            started_at=saga.started_at
                            duration_ms=saga.duration_ms
                            finished=status.is_finished()
                        />
                    </dd>
                </div>
                <div>
                    <dt>"Current step"</dt>
                    <dd data-test="current-step">{saga.current_step.clone().unwrap_or_else(|| "—".into())}</dd>
                </div>
                <div>
                    <dt>"Events"</dt>
                    <dd data-test="event-count">{saga.event_count}</dd>
                </div>
                <div>
                    <dt>"Last event"</dt>
                    <dd><RelativeTime at=saga.last_event_at/></dd>
                </div>
            </dl>
            {flow
                .filter(|_| in_progress(status))
                .zip(saga.last_node.clone())
                .map(|(flow, last_node)| view! {
                    <WaitingOnNote flow last_node since_ms=millis(&saga.last_event_at)/>
                })}
            {(!saga.missing_compensations.is_empty()).then(|| {
                let steps = saga.missing_compensations.clone();
                view! {
                    <div class="failure-box incomplete-compensation" data-test="incomplete-compensation" role="note">
                        <span class="failure-icon" aria-hidden="true">"⚠"</span>
                        <div>
                            <p><strong>"Incomplete compensation"</strong></p>
                            <p>
                                "The saga reads compensated, but these forward steps completed and have no compensation event: "
                                {steps
                                    .into_iter()
                                    .map(|step| view! { <strong class="mono" data-test="missing-compensation">{step}</strong>" " })
                                    .collect_view()}
                            </p>
                        </div>
                    </div>
                }
            })}
            {(saga.failed_step.is_some() || saga.failure_reason.is_some()).then(|| view! {
                <div class="failure-box" data-test="saga-failure" role="note">
                    <span class="failure-icon" aria-hidden="true">"✕"</span>
                    <div>
                        {saga.failed_step.clone().map(|s| view! {
                            <p><span class="muted">"Failed step "</span><strong class="mono">{s}</strong></p>
                        })}
                        {saga.failure_reason.clone().map(|r| view! { <p class="failure-reason">{r}</p> })}
                    </div>
                </div>
            })}
        </header>
    }
    .into_any()
}
