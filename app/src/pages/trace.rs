//! `/traces/:trace_id`: every saga and event of one trace on one time axis.

use std::collections::HashSet;
use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use sagascope_model::{StreamMessage, TraceView};

use crate::components::ids::CopyButton;
use crate::components::live_stream::{use_live_stream_with_resync, STREAM_PATH};
use crate::components::saga_table::{upsert_row, SagaRow, SagaTable};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::timeline::{insert_event, Axis, TimelineRow};
use crate::server_fns::{error_text, fetch_trace};

#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let trace_id = Memo::new(move |_| params.with(|p| p.get("trace_id").unwrap_or_default()));
    let trace = Resource::new(move || trace_id.get(), fetch_trace);

    view! {
        <Title text=move || format!("Trace {}", trace_id.get())/>
        <section class="page page-trace">
            <Transition fallback=|| view! { <Loading what="trace"/> }>
                {move || Suspend::new(async move {
                    match trace.await {
                        Ok(view) => view! { <TraceContent view/> }.into_any(),
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
fn TraceContent(view: TraceView) -> impl IntoView {
    let TraceView {
        trace_id,
        sagas,
        events,
    } = view;
    let initial_ids: Arc<HashSet<String>> =
        Arc::new(events.iter().map(|e| e.event_id.clone()).collect());
    let rows = RwSignal::new(sagas.into_iter().map(SagaRow::loaded).collect::<Vec<_>>());
    let events = RwSignal::new(events);
    let axis = Memo::new(move |_| events.with(|events| Axis::new(events, None, None)));

    let apply = {
        let trace_id = trace_id.clone();
        move |message: StreamMessage| match message {
            StreamMessage::Saga { saga } => {
                let ours = saga.trace_ids.contains(&trace_id);
                rows.try_update(|rows| {
                    upsert_row(rows, saga, ours, true);
                });
            }
            StreamMessage::Event { event }
                if event.trace_id.as_deref() == Some(trace_id.as_str()) =>
            {
                events.try_update(|events| {
                    insert_event(events, event);
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

    let is_empty = move || rows.with(Vec::is_empty) && events.with(Vec::is_empty);

    view! {
        <header class="page-head trace-head">
            <h1>"Trace " <span class="mono trace-id" data-test="trace-id">{trace_id.clone()}</span></h1>
            <CopyButton value=trace_id.clone()/>
            <span class="muted">
                {move || {
                    let (s, e) = (rows.with(Vec::len), events.with(Vec::len));
                    format!("{s} saga{} · {e} event{}", if s == 1 { "" } else { "s" }, if e == 1 { "" } else { "s" })
                }}
            </span>
        </header>
        {move || is_empty().then(|| view! {
            <EmptyState
                title="Nothing carries this trace id".to_string()
                detail="No ingested event has this trace id (yet). Events that arrive with it appear here live.".to_string()
                action=("/sagas".to_string(), "Back to sagas".to_string())
            />
        })}
        <section class="panel" aria-labelledby="trace-sagas-title">
            <header class="panel-head"><h2 id="trace-sagas-title">"Sagas"</h2></header>
            <SagaTable rows/>
        </section>
        <section class="panel timeline-panel" aria-labelledby="trace-events-title">
            <header class="panel-head">
                <h2 id="trace-events-title">"Events"</h2>
                <span class="muted">"offset from the first event of the trace"</span>
            </header>
            <ol class="timeline with-saga" data-test="trace-events">
                <For
                    each=move || events.get()
                    key=|event| event.event_id.clone()
                    children=move |event| {
                        let fresh = !initial_ids.contains(&event.event_id);
                        view! { <TimelineRow event axis show_saga=true fresh/> }
                    }
                />
            </ol>
        </section>
    }
    .into_any()
}
