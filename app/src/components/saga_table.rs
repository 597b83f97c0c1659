//! The saga table, shared by the saga list and the trace page.

use leptos::prelude::*;
use sagascope_model::SagaSummary;

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

#[component]
pub fn SagaTable(rows: RwSignal<Vec<SagaRow>>) -> impl IntoView {
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
            <td class="failure">
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
