//! `/dlq/messages/{topic}/{partition}/{offset}`: one dead letter in full.
//! Where it came from and why it failed (stack trace folded), its key,
//! headers and payload (escaped; pretty JSON when JSON, hex and base64 when
//! binary), its state and re-drives, and the saga it belongs to with a
//! compact timeline. Operators get the retry and discard forms when the
//! state allows them, otherwise a line that says why not.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use sagascope_model::{
    DeadLetterDetail, DeadLetterHeader, DeadLetterState, DeadLetterSummary, RetryAttemptView,
    SagaDetail, SessionInfo,
};

use crate::components::dead_letter::{
    dead_letter_href, defs, is_discardable, is_retryable, job_href, short_class, ActionBanner,
    BytesBlock, BytesInline, DeadLetterStateBadge, DlqParams,
};
use crate::components::dead_letter_actions::{DiscardForm, RetryForm};
use crate::components::ids::{saga_href, CopyButton, IdLink, TraceLink};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::status_badge::{PhaseLabel, StatusBadge};
use crate::components::time::RelativeTime;
use crate::pages::dlq_list::{coordinates, original_coordinates};
use crate::server_fns::{
    error_text, fetch_dead_letter_view, set_page_status, use_session, DeadLetterView,
};
use crate::time::{absolute, clock, millis, offset};

#[component]
pub fn DlqMessagePage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params.with(|p| {
            format!(
                "{}/{}/{}",
                p.get("topic").unwrap_or_default(),
                p.get("partition").unwrap_or_default(),
                p.get("offset").unwrap_or_default()
            )
        })
    });
    let view_data = Resource::new(move || id.get(), fetch_dead_letter_view);
    let session = use_session();
    let query = use_query_map();
    let banner_query = Memo::new(move |_| query.get());

    view! {
        <Title text=move || format!("Dead letter {}", id.get())/>
        <section class="page page-dlq-message">
            <nav class="crumbs" aria-label="Breadcrumb">
                <a href="/dlq">"Dead letters"</a>
                <span aria-hidden="true">" / "</span>
                <span class="mono">{move || id.get()}</span>
            </nav>
            <ActionBanner query=banner_query/>
            <Transition fallback=|| view! { <Loading what="the dead letter"/> }>
                {move || {
                    let id = id.get();
                    Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        match view_data.await {
                            Ok(Some(data)) => view! { <DeadLetterPageBody data info/> }.into_any(),
                            Ok(None) => {
                                set_page_status(404);
                                view! {
                                    <div data-test="dlq-not-found">
                                        <EmptyState
                                            title=format!("No dead letter {id}")
                                            detail="No dead letter with these coordinates was ingested. Check the topic, partition and offset.".to_string()
                                            action=("/dlq".to_string(), "All dead letters".to_string())
                                        />
                                    </div>
                                }
                                .into_any()
                            }
                            Err(error) => view! {
                                <ErrorState title="Could not load this dead letter".to_string() detail=error_text(&error)/>
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

#[component]
fn DeadLetterPageBody(data: DeadLetterView, info: SessionInfo) -> impl IntoView {
    let DeadLetterView {
        detail,
        attempts,
        saga,
        saga_events_cut,
        idempotency_key,
    } = data;
    let letter = detail.summary.clone();
    let operator = info.has_role("operator");
    let csrf_token = info.csrf_token.clone().unwrap_or_default();
    let actions = operator.then(|| {
        view! { <ActionsPanel letter=letter.clone() csrf_token idempotency_key/> }
    });
    view! {
        <DeadLetterHeader detail=detail.clone()/>
        {actions}
        <section class="panel dlq-section" aria-labelledby="dlq-payload-title">
            <header class="panel-head">
                <h2 id="dlq-payload-title">"Message"</h2>
                {(detail.redacted_values > 0).then(|| view! {
                    <span class="muted small" data-test="dlq-redacted" title="The [redact] rules hide these values on screen; the stored bytes, which a retry produces, are untouched">
                        {format!("{} value{} redacted for display", detail.redacted_values, if detail.redacted_values == 1 { "" } else { "s" })}
                    </span>
                })}
            </header>
            <div class="panel-body">
                <h3 class="subhead">"Key"</h3>
                <div data-test="dlq-key"><BytesInline value=detail.key.clone()/></div>
                <h3 class="subhead">{format!("Headers ({})", detail.headers.len())}</h3>
                <HeadersTable headers=detail.headers.clone()/>
                <h3 class="subhead">"Payload"</h3>
                <BytesBlock value=detail.value.clone() test="dlq-payload"/>
            </div>
        </section>
        <AttemptsPanel attempts/>
        <SagaPanel letter saga saga_events_cut/>
    }
    .into_any()
}

#[component]
fn DeadLetterHeader(detail: DeadLetterDetail) -> impl IntoView {
    let s = detail.summary.clone();
    let class_full = s
        .exception_class
        .clone()
        .unwrap_or_else(|| "unknown exception".into());
    let group_href = DlqParams {
        filter: sagascope_model::DlqFilter {
            failure_group: Some(s.failure_group.clone()),
            ..Default::default()
        },
        range: None,
    }
    .href("/dlq");
    let stack_lines = detail
        .stacktrace
        .as_ref()
        .map(|t| t.lines().count())
        .unwrap_or(0);
    view! {
        <header class="panel saga-header dlq-header" data-test="dlq-header" data-id=s.id.clone() data-state=s.state.as_str()>
            <div class="saga-title">
                <h1>
                    <span class="dlq-icon" aria-hidden="true">"✉ "</span>
                    "Dead letter "
                    <span class="mono dlq-id">{s.id.clone()}</span>
                    <CopyButton value=s.id.clone()/>
                </h1>
                <DeadLetterStateBadge state=s.state test="dlq-detail-state"/>
            </div>
            <div class="failure-box" role="note" data-test="dlq-exception">
                <span class="failure-icon" aria-hidden="true">"✕"</span>
                <div>
                    <p>
                        <strong class="mono" title=class_full.clone()>{short_class(&class_full).to_string()}</strong>
                        <span class="muted mono small">{format!(" {class_full}")}</span>
                    </p>
                    <p class="failure-reason" data-test="dlq-exception-message">
                        {s.exception_message.clone().unwrap_or_else(|| "(no exception message)".into())}
                    </p>
                </div>
            </div>
            <dl class="facts-grid">
                <div>
                    <dt>"DLQ message"</dt>
                    <dd class="mono">{coordinates(&s.dlq_topic, s.dlq_partition, s.dlq_offset)}</dd>
                </div>
                <div>
                    <dt title=defs::TIME>"Dead-lettered"</dt>
                    <dd>
                        <RelativeTime at=s.dead_lettered_at/>
                        <span class="muted mono small">{format!(" {}", absolute(&s.dead_lettered_at))}</span>
                    </dd>
                </div>
                <div>
                    <dt>"Original message"</dt>
                    <dd class="mono" data-test="dlq-original">{original_coordinates(&s)}</dd>
                </div>
                <div>
                    <dt title="The original message's Kafka timestamp, as the DLQ recorded it">"Original time"</dt>
                    <dd class="mono">{detail.original_timestamp.as_ref().map(absolute).unwrap_or_else(|| "—".into())}</dd>
                </div>
                <div>
                    <dt title="The consumer group that gave up (Spring), or the connector (Kafka Connect)">"Consumer group"</dt>
                    <dd class="mono" data-test="dlq-consumer-group">{detail.original_consumer_group.clone().unwrap_or_else(|| "—".into())}</dd>
                </div>
                <div>
                    <dt title="How sagascope read the DLQ headers">"Format"</dt>
                    <dd class="mono">{s.format.clone()}</dd>
                </div>
                <div>
                    <dt>"Event"</dt>
                    <dd class="mono">
                        {s.event_type.clone().unwrap_or_else(|| "—".into())}
                        {s.event_id.clone().map(|e| view! { <span class="muted small" title=e.clone()>{format!(" {}", sagascope_model::shorten_id(&e))}</span> })}
                    </dd>
                </div>
                <div>
                    <dt>"Trace"</dt>
                    <dd>
                        {match s.trace_id.clone() {
                            Some(t) => view! { <TraceLink trace_id=t/> }.into_any(),
                            None => view! { <span class="muted">"—"</span> }.into_any(),
                        }}
                    </dd>
                </div>
                <div class="wide">
                    <dt title=defs::GROUP>"Failure group"</dt>
                    <dd class="mono small"><a href=group_href data-test="dlq-group-link" title=s.failure_group.clone()>{s.failure_group.clone()}</a></dd>
                </div>
                <div>
                    <dt>"State"</dt>
                    <dd data-test="dlq-state-facts">
                        <span>{s.state.as_str()}</span>
                        <span class="muted small">" since "</span>
                        <RelativeTime at=s.state_changed_at/>
                        {s.state_reason.clone().map(|r| view! { <span class="state-reason" data-test="dlq-state-reason">{format!(" — {r}")}</span> })}
                    </dd>
                </div>
                <div>
                    <dt title=defs::RETRIES>"Retry count"</dt>
                    <dd>{s.retry_count}</dd>
                </div>
                {s.retry_of.clone().map(|of| view! {
                    <div>
                        <dt title="This message is a re-driven copy of that dead letter (x-retry-of)">"Retry of"</dt>
                        <dd><a class="mono" href=dead_letter_href(&of) data-test="dlq-retry-of">{of.clone()}</a></dd>
                    </div>
                })}
                {s.failed_again_of.clone().map(|of| view! {
                    <div>
                        <dt title="The stored dead letter this one is a failed re-drive of; that one is now failed_again">"Failed again of"</dt>
                        <dd><a class="mono" href=dead_letter_href(&of) data-test="dlq-failed-again-of">{of.clone()}</a></dd>
                    </div>
                })}
            </dl>
            {detail.stacktrace.clone().map(|trace| view! {
                <details class="stacktrace" data-test="dlq-stacktrace">
                    <summary>{format!("Stack trace ({stack_lines} line{})", if stack_lines == 1 { "" } else { "s" })}</summary>
                    <pre class="mono">{trace}</pre>
                </details>
            })}
        </header>
    }
    .into_any()
}

/// Why an operator cannot retry (or discard) a dead letter in this state.
pub fn why_not(letter: &DeadLetterSummary) -> Option<String> {
    let when = absolute(&letter.state_changed_at);
    match letter.state {
        DeadLetterState::New => None,
        DeadLetterState::RetryRequested => Some(format!(
            "A retry is in flight since {when}: wait for the broker's answer."
        )),
        DeadLetterState::Retried => Some(format!(
            "Already re-driven at {when}. If the copy fails again it comes back as a new dead letter, which you can retry."
        )),
        DeadLetterState::Resolved => Some(format!(
            "Resolved at {when}: the re-driven copy went through. Nothing left to do."
        )),
        DeadLetterState::FailedAgain => Some(
            "Not retried from here: its re-driven copy failed again and came back as a new dead letter; retry that one instead (see the attempts below). You can still discard this one."
                .to_string(),
        ),
        DeadLetterState::Discarded => Some(format!(
            "Discarded at {when}{}. A discarded dead letter is never re-driven.",
            letter
                .state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
    }
}

#[component]
fn ActionsPanel(
    letter: DeadLetterSummary,
    csrf_token: String,
    idempotency_key: String,
) -> impl IntoView {
    let return_to = dead_letter_href(&letter.id);
    let retry = is_retryable(letter.state).then(|| {
        view! {
            <RetryForm
                letter=letter.clone()
                csrf_token=csrf_token.clone()
                idempotency_key=idempotency_key.clone()
                return_to=return_to.clone()
            />
        }
    });
    let discard = is_discardable(letter.state).then(|| {
        view! { <DiscardForm letter=letter.clone() csrf_token=csrf_token.clone() return_to=return_to.clone()/> }
    });
    let note = why_not(&letter).map(|text| {
        view! { <p class="note" data-test="dlq-why-not">{text}</p> }
    });
    view! {
        <section class="panel dlq-actions-panel" aria-labelledby="dlq-actions-title" data-test="dlq-actions">
            <header class="panel-head"><h2 id="dlq-actions-title">"Actions"</h2></header>
            <div class="panel-body actions-body">
                {note}
                {retry}
                {discard}
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn HeadersTable(headers: Vec<DeadLetterHeader>) -> impl IntoView {
    if headers.is_empty() {
        return view! { <p class="muted" data-test="dlq-headers">"No headers"</p> }.into_any();
    }
    let rows = headers
        .into_iter()
        .map(|h| {
            let size = h.value.as_ref().map(|v| v.size).unwrap_or(0);
            let binary = h.value.as_ref().is_some_and(|v| v.base64);
            view! {
                <tr data-test="dlq-header-row" data-key=h.key.clone() data-binary=binary.to_string()>
                    <th scope="row" class="mono">{h.key.clone()}</th>
                    <td><BytesInline value=h.value.clone()/></td>
                    <td class="num muted small" title="Size of the value in bytes">{size}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="kv dlq-headers" data-test="dlq-headers">
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn AttemptsPanel(attempts: Vec<RetryAttemptView>) -> impl IntoView {
    let count = attempts.len();
    let body = if attempts.is_empty() {
        view! { <p class="muted panel-body" data-test="dlq-no-attempts">"Never retried."</p> }
            .into_any()
    } else {
        let rows = attempts
            .into_iter()
            .map(|a| {
                let coords = match (a.partition, a.offset) {
                    (Some(p), Some(o)) => format!("{} [{p}] @{o}", a.target_topic),
                    _ => a.target_topic.clone(),
                };
                let outcome_class = match a.outcome.as_str() {
                    "produced" => "badge status-completed",
                    "failed" => "badge status-failed",
                    _ => "badge status-running",
                };
                view! {
                    <tr data-test="dlq-attempt-row" data-attempt-id=a.id.clone() data-outcome=a.outcome.clone()>
                        <td title=absolute(&a.requested_at)><RelativeTime at=a.requested_at/></td>
                        <td class="mono">{a.actor.clone()}</td>
                        <td class="reason-text" title=a.reason.clone()>{a.reason.clone()}</td>
                        <td class="mono">{coords}</td>
                        <td class="num" title="The x-retry-count produced">{a.retry_count}</td>
                        <td><span class=outcome_class>{a.outcome.clone()}</span></td>
                        <td class="reason-text failure-text" title=a.error.clone().unwrap_or_default()>{a.error.clone().unwrap_or_default()}</td>
                        <td>
                            {a.came_back_as.clone().map(|id| view! {
                                <a class="mono" href=dead_letter_href(&id) data-test="dlq-came-back-as" title="The re-driven copy failed again and came back as this dead letter">{id.clone()}</a>
                            })}
                        </td>
                        <td>
                            {a.job_id.clone().map(|id| view! {
                                <a class="mono small" href=job_href(&id) title=id.clone()>{sagascope_model::shorten_id(&id)}</a>
                            })}
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="grid dlq-attempts" data-test="dlq-attempts">
                    <thead>
                        <tr>
                            <th scope="col">"Requested"</th>
                            <th scope="col">"By"</th>
                            <th scope="col">"Reason"</th>
                            <th scope="col">"Produced to"</th>
                            <th scope="col" class="num">"Count"</th>
                            <th scope="col">"Outcome"</th>
                            <th scope="col">"Error"</th>
                            <th scope="col">"Came back as"</th>
                            <th scope="col">"Job"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="dlq-attempts-title">
            <header class="panel-head">
                <h2 id="dlq-attempts-title">"Retries"</h2>
                <span class="muted small">{format!("{count} attempt{}", if count == 1 { "" } else { "s" })}</span>
            </header>
            {body}
        </section>
    }
    .into_any()
}

#[component]
fn SagaPanel(
    letter: DeadLetterSummary,
    saga: Option<SagaDetail>,
    saga_events_cut: bool,
) -> impl IntoView {
    let Some(SagaDetail { saga, events }) = saga else {
        let text = match &letter.saga_id {
            Some(id) => format!("Linked to saga {id}, which has no ingested events (yet)."),
            None => match &letter.declared_saga_id {
                Some(id) => format!("The message names saga {id}, which sagascope has not seen."),
                None => "Not linked to a saga: the message carries no saga id, trace id or correlation key sagascope knows.".to_string(),
            },
        };
        return view! {
            <section class="panel" aria-labelledby="dlq-saga-title" data-test="dlq-saga">
                <header class="panel-head"><h2 id="dlq-saga-title">"Saga"</h2></header>
                <p class="muted panel-body">{text}</p>
            </section>
        }
        .into_any();
    };
    let start = millis(&saga.started_at);
    let dead_lettered = millis(&letter.dead_lettered_at);
    let failing_event = letter.event_id.clone();
    let mut marker_placed = false;
    let mut rows = Vec::new();
    for event in events {
        let t = millis(&event.occurred_at);
        if !marker_placed && t > dead_lettered {
            marker_placed = true;
            rows.push(view! { <DeadLetterMarker at=letter.dead_lettered_at start/> }.into_any());
        }
        let is_failing = failing_event.as_deref() == Some(event.event_id.as_str());
        rows.push(
            view! {
                <tr
                    class={if is_failing { "row this-message" } else { "row" }}
                    data-test="dlq-saga-event"
                    data-event-id=event.event_id.clone()
                    data-phase=event.phase.as_str()
                >
                    <td class="num mono muted" title=absolute(&event.occurred_at)>{offset(t - start)}</td>
                    <td><PhaseLabel phase=event.phase/></td>
                    <td class="mono">{event.step.clone().unwrap_or_default()}</td>
                    <td class="mono">{event.event_type.clone()}</td>
                    <td class="mono muted small">{format!("{} [{}] @{}", event.topic, event.partition, event.offset)}</td>
                    <td class="num mono muted">{clock(&event.occurred_at)}</td>
                </tr>
            }
            .into_any(),
        );
    }
    if !marker_placed {
        rows.push(view! { <DeadLetterMarker at=letter.dead_lettered_at start/> }.into_any());
    }
    let saga_id = saga.saga_id.clone();
    view! {
        <section class="panel" aria-labelledby="dlq-saga-title" data-test="dlq-saga" data-saga-id=saga_id.clone()>
            <header class="panel-head">
                <h2 id="dlq-saga-title">"Saga"</h2>
                <IdLink id=saga_id.clone() href=saga_href(&saga_id) test="dlq-saga-link"/>
                <span class="mono">{saga.saga_type.clone()}</span>
                <StatusBadge status=saga.status inferred=saga.status_inferred inferred_from=saga.inferred_from.clone() last_node=saga.last_node.clone() test="dlq-saga-status"/>
                <a class="small" href=saga_href(&saga_id)>"full timeline →"</a>
            </header>
            <div class="table-wrap">
                <table class="grid dlq-saga-events" data-test="dlq-saga-timeline">
                    <thead>
                        <tr>
                            <th scope="col" class="num" title="Time since the saga started">"Offset"</th>
                            <th scope="col">"Phase"</th>
                            <th scope="col">"Step"</th>
                            <th scope="col">"Event type"</th>
                            <th scope="col">"Topic"</th>
                            <th scope="col" class="num">"Time (UTC)"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {saga_events_cut.then(|| view! {
                <p class="muted small panel-foot">"Only the first events are shown; the saga page has them all."</p>
            })}
        </section>
    }
    .into_any()
}

/// The dead letter's own row among the saga's events.
#[component]
fn DeadLetterMarker(at: sagascope_model::Timestamp, start: i64) -> impl IntoView {
    view! {
        <tr class="row dlq-marker" data-test="dlq-saga-marker">
            <td class="num mono" title=absolute(&at)>{offset(millis(&at) - start)}</td>
            <td colspan="4"><span class="dlq-chip"><span aria-hidden="true">"✉ "</span>"this message was dead-lettered"</span></td>
            <td class="num mono muted">{clock(&at)}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_but_new_says_why_not() {
        let mut letter: DeadLetterSummary = serde_json::from_value(serde_json::json!({
            "id": "a.DLT/0/1", "dlq_topic": "a.DLT", "dlq_partition": 0, "dlq_offset": 1,
            "dead_lettered_at": "2026-11-21T10:00:00Z", "ingested_at": "2026-11-21T10:00:00Z",
            "format": "spring", "original_topic": null, "original_partition": null,
            "original_offset": null, "exception_class": null, "exception_message": null,
            "failure_group": "-|-|-", "saga_id": null, "saga_type": null,
            "declared_saga_id": null, "trace_id": null, "event_id": null, "event_type": null,
            "state": "new", "state_changed_at": "2026-11-21T10:00:00Z",
            "state_reason": "dup", "retry_of": null, "retry_count": 0, "failed_again_of": null
        }))
        .unwrap();
        assert_eq!(why_not(&letter), None);
        for state in DeadLetterState::ALL.into_iter().skip(1) {
            letter.state = state;
            assert!(why_not(&letter).is_some(), "{state:?}");
        }
        letter.state = DeadLetterState::Discarded;
        assert!(why_not(&letter).unwrap().contains("(dup)"));
    }
}
