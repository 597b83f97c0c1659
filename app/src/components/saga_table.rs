//! The saga table, shared by the saga list and the trace page.

use leptos::prelude::*;
use sagascope_model::{format_duration_ms, SagaSummary, WaitingOn};

use crate::components::ids::{saga_href, type_href, IdLink, TraceLink};
use crate::components::status_badge::StatusBadge;
use crate::components::time::{RelativeTime, SagaDuration};
use crate::time::millis;

/// One row; `fresh` rows arrived live and get a short highlight.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaRow {
    pub saga: SagaSummary,
    pub fresh: bool,
}

impl SagaRow {
    pub fn loaded(saga: SagaSummary) -> Self {
        SagaRow { saga, fresh: false }
    }

    pub fn live(saga: SagaSummary) -> Self {
        SagaRow { saga, fresh: true }
    }

    /// Changes whenever the row's content changes, so `<For>` redraws it.
    fn key(&self) -> (String, i64, &'static str, i64, bool) {
        (
            self.saga.saga_id.clone(),
            millis(&self.saga.last_event_at),
            self.saga.status.as_str(),
            self.saga.event_count,
            self.fresh,
        )
    }
}

/// Replaces the row of the same saga, or inserts the saga at its place in
/// started-at-descending order when `insert` allows. Returns whether the
/// rows changed.
pub fn upsert_row(
    rows: &mut Vec<SagaRow>,
    saga: SagaSummary,
    insert: bool,
    append_allowed: bool,
) -> bool {
    if let Some(row) = rows.iter_mut().find(|r| r.saga.saga_id == saga.saga_id) {
        let mut saga = saga;
        // The stream's summaries carry no "waiting on" (the server judges
        // it for list pages): while the saga has not moved on, the row's
        // still holds.
        if saga.waiting_on.is_none()
            && saga.status == row.saga.status
            && saga.last_event_at == row.saga.last_event_at
        {
            saga.waiting_on = row.saga.waiting_on.clone();
        }
        if row.saga == saga {
            return false;
        }
        *row = SagaRow::live(saga);
        return true;
    }
    if !insert {
        return false;
    }
    let started = millis(&saga.started_at);
    let at = rows
        .iter()
        .position(|r| millis(&r.saga.started_at) < started)
        .unwrap_or(rows.len());
    if at == rows.len() && !append_allowed {
        // Older than everything shown: it belongs on a later page.
        return false;
    }
    rows.insert(at, SagaRow::live(saga));
    rows.truncate(MAX_LIVE_ROWS);
    true
}

/// The table never grows past this many rows from live inserts.
pub const MAX_LIVE_ROWS: usize = 500;

/// The "Waiting on" header's sort link: where it goes, and whether the
/// list is sorted by waiting time now.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingSort {
    pub href: String,
    pub active: bool,
}

#[component]
pub fn SagaTable(
    rows: RwSignal<Vec<SagaRow>>,
    /// The saga list's sort link; without it the header is plain text.
    #[prop(optional)]
    waiting_sort: Option<WaitingSort>,
) -> impl IntoView {
    let waiting_header = match waiting_sort {
        Some(WaitingSort { href, active }) => {
            let (label, title) = if active {
                (
                    "Waiting on ↓",
                    "Sorted by time waited, longest first; select to sort by start again",
                )
            } else {
                (
                    "Waiting on",
                    "Sort running sagas by time waited, longest first",
                )
            };
            view! {
                <th scope="col" aria-sort=if active { "descending" } else { "none" }>
                    <a href=href class="sort-link" title=title data-test="sort-waiting">{label}</a>
                </th>
            }
            .into_any()
        }
        None => view! { <th scope="col">"Waiting on"</th> }.into_any(),
    };
    view! {
        <div class="table-wrap">
            <table class="grid sagas" data-test="saga-list">
                <thead>
                    <tr>
                        <th scope="col">"Saga"</th>
                        <th scope="col">"Type"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Started"</th>
                        <th scope="col" class="num">"Duration"</th>
                        <th scope="col">"Current step"</th>
                        {waiting_header}
                        <th scope="col">"Failure"</th>
                        <th scope="col" class="num">"Events"</th>
                        <th scope="col">"Trace"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.get() key=SagaRow::key let:row>
                        <SagaTableRow row/>
                    </For>
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn SagaTableRow(row: SagaRow) -> impl IntoView {
    let SagaRow { saga, fresh } = row;
    let status = saga.status;
    let failure = match (&saga.failed_step, &saga.failure_reason) {
        (None, None) => None,
        (step, reason) => Some((step.clone(), reason.clone())),
    };
    let trace = saga.trace_ids.first().cloned();
    let more_traces = saga.trace_ids.len().saturating_sub(1);
    view! {
        <tr
            class=if fresh { "row fresh" } else { "row" }
            data-test="saga-row"
            data-saga-id=saga.saga_id.clone()
            data-status=status.as_str()
            data-saga-type=saga.saga_type.clone()
        >
            <td>
                <IdLink id=saga.saga_id.clone() href=saga_href(&saga.saga_id) test="saga-link"/>
            </td>
            <td class="type">
                <a class="type-link" href=type_href(&saga.saga_type) title=format!("The learned flow of {}", saga.saga_type) data-test="saga-type-link">
                    {saga.saga_type.clone()}
                </a>
            </td>
            <td>
                <StatusBadge
                    status
                    inferred=saga.status_inferred
                    inferred_from=saga.inferred_from.clone()
                    last_node=saga.last_node.clone()
                    test="status-badge"
                />
            </td>
            <td>
                <RelativeTime at=saga.started_at/>
            </td>
            <td class="num">
                <SagaDuration
                    started_at=saga.started_at
                    duration_ms=saga.duration_ms
                    finished=status.is_finished()
                />
            </td>
            <td class="step">{saga.current_step.clone().unwrap_or_default()}</td>
            <td class="waiting">{saga.waiting_on.clone().map(|waiting| view! { <WaitingCell waiting/> })}</td>
            <td class="failure">
                {(!saga.missing_compensations.is_empty()).then(|| {
                    let steps = saga.missing_compensations.join(", ");
                    view! {
                        <span
                            class="incomplete-compensation"
                            data-test="incomplete-compensation-row"
                            title=format!("Reads compensated, but no compensation event for: {steps}")
                        >
                            <span aria-hidden="true">"⚠ "</span>
                            <strong>"Incomplete compensation"</strong>
                            {format!(": {steps} not compensated")}
                        </span>
                    }
                })}
                {failure
                    .map(|(step, reason)| {
                        let title = reason.clone().unwrap_or_default();
                        view! {
                            <span class="failure-text" title=title>
                                {step.map(|s| view! { <strong class="failed-step">{s}</strong> })}
                                {reason.map(|r| view! { <span class="failure-reason">{r}</span> })}
                            </span>
                        }
                    })}
            </td>
            <td class="num">{saga.event_count}</td>
            <td>
                {trace.map(|t| view! { <TraceLink trace_id=t/> })}
                // The summary lists at most 32 trace ids: "+31…" when it has more.
                {(more_traces > 0).then(|| {
                    let more = if saga.more_trace_ids { "…" } else { "" };
                    view! { <span class="muted">{format!(" +{more_traces}{more}")}</span> }
                })}
            </td>
        </tr>
    }
    .into_any()
}

/// "PaymentAuthorized · 14 m (usually < 40 s)", marked overdue by an icon
/// and the word, not by colour alone. The time waited is the server's, as
/// of the page's answer.
#[component]
fn WaitingCell(waiting: WaitingOn) -> impl IntoView {
    let usual = waiting
        .usual_p99_ms
        .map(|ms| format!(" (usually < {})", format_duration_ms(ms)))
        .unwrap_or_default();
    let text = format!(
        "{} · {}{usual}",
        waiting.next,
        format_duration_ms(waiting.waited_ms)
    );
    let title = format!(
        "Its type's flow expects {} after {}{}",
        waiting.next,
        waiting.after,
        if waiting.overdue {
            "; it has waited longer than that hop usually takes (p99)"
        } else {
            ""
        }
    );
    let overdue = waiting.overdue;
    view! {
        <span
            class=if overdue { "waiting-cell overdue" } else { "waiting-cell" }
            data-test="waiting-on-cell"
            data-overdue=overdue.to_string()
            data-next=waiting.next.clone()
            title=title
        >
            {overdue.then(|| view! {
                <span class="waiting-icon" aria-hidden="true">"⚠"</span>
                <strong class="overdue-tag" data-test="overdue-tag">"overdue"</strong>
                " "
            })}
            <span class="mono">{text}</span>
        </span>
    }
    .into_any()
}
