//! `/traces/:trace_id`: every saga and event of one trace on one time axis.

use std::collections::HashSet;
use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use sagascope_model::{SagaSummary, StreamMessage, TraceSpans, TraceView};

use crate::components::ids::CopyButton;
use crate::components::live_stream::{use_live_stream_with_resync, STREAM_PATH};
use crate::components::span_waterfall::{NoSpans, SpanSourceError, SpanWaterfall};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::timeline::insert_event;
use crate::components::trace_axis::{
    counts_text, reassign_saga, summarize, trace_rows, TraceAxis, TraceAxisHead, TraceBarKey,
    TraceGridLines, TraceLegend, TraceRow, TraceSummaryLine,
};
use crate::server_fns::{error_text, fetch_trace, fetch_trace_spans};

#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let trace_id = Memo::new(move |_| params.with(|p| p.get("trace_id").unwrap_or_default()));
    let trace = Resource::new(move || trace_id.get(), fetch_trace);
    let spans = Resource::new(move || trace_id.get(), fetch_trace_spans);

    view! {
        <Title text=move || format!("Trace {}", trace_id.get())/>
        <section class="page page-trace">
            <Transition fallback=|| view! { <Loading what="trace"/> }>
                {move || Suspend::new(async move {
                    match trace.await {
                        Ok(view) => view! { <TraceContent view spans/> }.into_any(),
                        Err(error) => view! {
                            <ErrorState title="Could not load this trace".to_string() detail=error_text(&error)/>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn TraceContent(
    view: TraceView,
    spans: Resource<Result<Option<TraceSpans>, ServerFnError>>,
) -> impl IntoView {
    let TraceView {
        trace_id,
        sagas,
        events,
    } = view;
    let initial_ids: Arc<HashSet<String>> =
        Arc::new(events.iter().map(|e| e.event_id.clone()).collect());
    // Legend order (and so each saga's key and colour) is the server's
    // started-at order; sagas that appear live are appended.
    let sagas = RwSignal::new(sagas);
    let events = RwSignal::new(events);
    let axis = Memo::new(move |_| events.with(|events| TraceAxis::new(events)));
    let summary =
        Memo::new(move |_| events.with(|events| sagas.with(|sagas| summarize(events, sagas))));
    let rows =
        Memo::new(move |_| events.with(|events| sagas.with(|sagas| trace_rows(events, sagas))));

    let apply = {
        let trace_id = trace_id.clone();
        move |message: StreamMessage| match message {
            StreamMessage::Saga { saga } => {
                let ours = saga.trace_ids.contains(&trace_id);
                sagas.try_update(|sagas| {
                    upsert_saga(sagas, saga, ours);
                });
            }
            StreamMessage::Event { event }
                if event.trace_id.as_deref() == Some(trace_id.as_str()) =>
            {
                events.try_update(|events| {
                    insert_event(events, event);
                });
            }
            // A saga of this trace was merged into another: its events now
            // belong to `into` (whose own update follows as a saga message).
            StreamMessage::Merged { from, into } => {
                sagas.try_update(|sagas| sagas.retain(|s| s.saga_id != from));
                events.try_update(|events| {
                    reassign_saga(events, &from, &into);
                });
            }
            _ => {}
        }
    };
    // On every (re)open of the stream, merge what was missed meanwhile.
    let resync = {
        let trace_id = trace_id.clone();
        let apply = apply.clone();
        move || {
            let trace_id = trace_id.clone();
            let apply = apply.clone();
            leptos::task::spawn_local(async move {
                if let Ok(view) = fetch_trace(trace_id).await {
                    for saga in view.sagas {
                        apply(StreamMessage::Saga { saga });
                    }
                    for event in view.events {
                        apply(StreamMessage::Event { event });
                    }
                }
            });
        }
    };
    use_live_stream_with_resync(STREAM_PATH.to_string(), apply, resync);

    let spans_trace_id = trace_id.clone();
    let is_empty = move || sagas.with(Vec::is_empty) && events.with(Vec::is_empty);

    view! {
        <header class="page-head trace-head">
            <h1>"Trace " <span class="mono trace-id" data-test="trace-id">{trace_id.clone()}</span></h1>
            <CopyButton value=trace_id.clone()/>
            <span class="muted">
                {move || counts_text(sagas.with(Vec::len), events.with(Vec::len))}
            </span>
        </header>
        <TraceSummaryLine summary/>
        {move || is_empty().then(|| view! {
            <EmptyState
                title="No saga event carries this trace id".to_string()
                detail="No ingested event has this trace id (yet). Events that arrive with it appear here live; its spans, if any were received, are below.".to_string()
                action=("/sagas".to_string(), "Back to sagas".to_string())
            />
        })}
        <section class="panel" aria-labelledby="trace-sagas-title">
            <header class="panel-head">
                <h2 id="trace-sagas-title">"Sagas"</h2>
                <span class="muted">"key and colour of each saga on the time axis"</span>
            </header>
            <TraceLegend sagas events/>
        </section>
        <section class="panel spans-panel" id="spans" aria-labelledby="trace-spans-title" data-test="trace-spans">
            <header class="panel-head">
                <h2 id="trace-spans-title">"Spans"</h2>
                <span class="muted">"the trace's spans, with its saga events marked on the same time axis"</span>
            </header>
            <Transition fallback=|| view! { <Loading what="spans"/> }>
                {move || {
                    let trace_id = spans_trace_id.clone();
                    Suspend::new(async move {
                        match spans.await {
                            Ok(Some(spans)) if !spans.spans.is_empty() => {
                                view! { <SpanWaterfall spans events/> }.into_any()
                            }
                            Ok(_) => view! { <NoSpans trace_id/> }.into_any(),
                            Err(error) => view! { <SpanSourceError message=error_text(&error)/> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
        <section class="panel trace-axis-panel" aria-labelledby="trace-events-title">
            <header class="panel-head">
                <h2 id="trace-events-title">"Events on one time axis"</h2>
                <span class="muted">"0 = first occurred_at of the trace"</span>
                <TraceBarKey/>
            </header>
            <div class="tr-frame">
                <TraceAxisHead axis/>
                <div class="tr-body-wrap">
                    <TraceGridLines axis/>
                    <ol class="tr-rows" data-test="trace-events">
                        <For
                            each=move || rows.get()
                            key=|(event, hop, legend_index)| (event.event_id.clone(), hop.clone(), *legend_index)
                            children=move |(event, hop, legend_index)| {
                                let fresh = !initial_ids.contains(&event.event_id);
                                view! { <TraceRow event hop legend_index axis summary fresh/> }
                            }
                        />
                    </ol>
                </div>
            </div>
        </section>
    }
    .into_any()
}

/// Replaces the saga of the same id, or appends it when it is `ours` (it
/// carries this trace id). Returns whether the list changed.
fn upsert_saga(sagas: &mut Vec<SagaSummary>, saga: SagaSummary, ours: bool) -> bool {
    if let Some(known) = sagas.iter_mut().find(|s| s.saga_id == saga.saga_id) {
        if *known == saga {
            return false;
        }
        *known = saga;
        return true;
    }
    if ours {
        sagas.push(saga);
    }
    ours
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::SagaStatus;

    fn saga(id: &str, status: SagaStatus) -> SagaSummary {
        let at = crate::time::from_millis(1_800_000_000_000).unwrap();
        SagaSummary {
            saga_id: id.into(),
            saga_type: "order".into(),
            status,
            started_at: at,
            ended_at: None,
            duration_ms: None,
            current_step: None,
            failed_step: None,
            failure_reason: None,
            trace_ids: vec!["t".into()],
            business_keys: vec![],
            more_trace_ids: false,
            more_business_keys: false,
            event_count: 1,
            last_event_at: at,
            status_inferred: false,
            inferred_from: None,
            last_node: None,
            waiting_on: None,
            missing_compensations: vec![],
        }
    }

    #[test]
    fn live_sagas_update_in_place_or_join_the_legend_at_the_end() {
        let mut sagas = vec![saga("a", SagaStatus::Running)];
        assert!(!upsert_saga(
            &mut sagas,
            saga("a", SagaStatus::Running),
            true
        ));
        assert!(upsert_saga(
            &mut sagas,
            saga("a", SagaStatus::Completed),
            true
        ));
        assert_eq!(sagas[0].status, SagaStatus::Completed);
        // Another trace's saga stays out; one of ours is appended, so the
        // legend keys of the sagas already shown do not change.
        assert!(!upsert_saga(
            &mut sagas,
            saga("x", SagaStatus::Running),
            false
        ));
        assert!(upsert_saga(
            &mut sagas,
            saga("b", SagaStatus::Running),
            true
        ));
        let ids: Vec<&str> = sagas.iter().map(|s| s.saga_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
