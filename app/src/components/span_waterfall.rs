//! The span waterfall beside a saga (Jaeger/Temporal style): one row per
//! span, indented by depth with a collapse toggle, its bar on a time axis
//! that the saga's events share (each event a marker where it happened);
//! a click opens the span's detail.
//!
//! Traces of 10,000 spans stay responsive: the tree, the visible-rows list
//! and the axis are computed once (memoised, see `sagascope_model::span_tree`),
//! rows have a fixed height and only those in the scrolled viewport (plus
//! overscan) are in the DOM; there are no per-row signals. The server
//! renders the first rows, so the page works before hydration. All text is
//! text nodes and attributes (escaped by Leptos).

use std::collections::HashSet;

use leptos::prelude::*;
use sagascope_model::{
    build_span_tree, format_duration_us, group_thousands, micros, service_colour, service_colours,
    window_slice, SpanAxis, SpanSource, SpanTree, SpanView, TimeRange, TimelineEvent, TraceSpans,
};

use crate::components::ids::CopyButton;
use crate::components::status_badge::phase_tone;
use crate::time::{absolute, clock};

/// Every row is this tall (the stylesheet's `--sw-row-h` must agree).
pub const ROW_HEIGHT_PX: f64 = 24.0;
/// The sticky axis head and marker lane above the rows (`.sw-head` and
/// `.sw-markers-row` in the stylesheet).
pub const HEAD_HEIGHT_PX: f64 = 46.0;
/// Rows in the viewport; a shorter trace gets a shorter viewport.
pub const VIEWPORT_ROWS: usize = 24;
/// Rows rendered above and below the viewport, so a fast scroll does not
/// show blank rows. With the viewport that is the 50 rows the server renders.
pub const OVERSCAN_ROWS: usize = 26;
/// Indentation per depth level, and the deepest level indented (deeper
/// rows say their depth instead of running off the column).
const INDENT_PX: usize = 12;
const MAX_INDENT_DEPTH: usize = 20;
/// "Collapse below depth" shortcuts.
const COLLAPSE_DEPTHS: [usize; 3] = [1, 2, 3];

pub const NO_SPANS_HINT: &str =
    "point your OTLP exporter (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) at this server's /v1/traces, or configure a Jaeger/Tempo query source";

/// The `id` of an event's marker on the waterfall (the saga timeline links
/// to it).
pub fn marker_anchor(event_id: &str) -> String {
    format!("mark-{event_id}")
}

/// What one rendered row shows: computed for the rows in view only.
#[derive(Debug, Clone, PartialEq)]
struct RowView {
    row: usize,
    span_id: String,
    name: String,
    service: String,
    colour: usize,
    depth: usize,
    children: usize,
    hidden: usize,
    collapsed: bool,
    selected: bool,
    error: bool,
    subtree_error: bool,
    orphan: bool,
    bar_style: String,
    label_style: String,
    duration: String,
    title: String,
}

/// The spans of a trace with their tree, kept together (never changes
/// after the waterfall is built).
struct Waterfall {
    trace: TraceSpans,
    tree: SpanTree,
    /// Colour slot per service, distinct within the trace.
    colours: std::collections::HashMap<String, usize>,
}

fn source_name(source: SpanSource) -> &'static str {
    match source {
        SpanSource::Otlp => "OTLP receiver",
        SpanSource::Jaeger => "Jaeger",
        SpanSource::Tempo => "Tempo",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", group_thousands(n), if n == 1 { one } else { many })
}

fn row_view(
    w: &Waterfall,
    axis: &SpanAxis,
    row: usize,
    collapsed: &HashSet<String>,
    selected: Option<usize>,
) -> RowView {
    let r = &w.tree.rows[row];
    let span: &SpanView = &w.trace.spans[r.span];
    let start = micros(&span.start);
    let end = micros(&span.end);
    let (left, width) = axis.bar(start, end);
    let duration = format_duration_us(span.duration_us);
    // The duration sits right of the bar, or left of it near the end.
    let label_style = if left + width > 82.0 {
        format!("right:calc({:.3}% + 4px)", 100.0 - left)
    } else {
        format!("left:calc({:.3}% + 4px)", left + width)
    };
    let title = format!(
        "{} · {} · {} · starts +{} · {}",
        span.service,
        span.name,
        duration,
        format_duration_us(start - axis.start_us),
        span.status.as_str()
    );
    let is_collapsed = r.children > 0 && collapsed.contains(&span.span_id);
    RowView {
        row,
        span_id: span.span_id.clone(),
        name: span.name.clone(),
        service: span.service.clone(),
        colour: w
            .colours
            .get(&span.service)
            .copied()
            .unwrap_or_else(|| service_colour(&span.service)),
        depth: r.depth,
        children: r.children,
        hidden: if is_collapsed { r.subtree_rows - 1 } else { 0 },
        collapsed: is_collapsed,
        selected: selected == Some(row),
        error: r.error,
        subtree_error: r.subtree_error,
        orphan: r.orphan,
        bar_style: format!("left:{left:.3}%;width:{width:.3}%"),
        label_style,
        duration,
        title,
    }
}

/// The waterfall of one trace, with `events` (of the saga or the trace)
/// as markers on the same axis.
#[component]
pub fn SpanWaterfall(
    spans: TraceSpans,
    /// Saga events to mark on the axis.
    #[prop(into)]
    events: Signal<Vec<TimelineEvent>>,
) -> impl IntoView {
    let tree = build_span_tree(&spans.spans);
    let trace_id = spans.trace_id.clone();
    let external_url = spans.external_url.clone();
    let source = spans.source;
    let truncated = spans.truncated;
    let total = tree.rows.len();
    let service_count = tree.services.len();
    let errors = tree.errors;
    let max_depth = tree.max_depth;
    let span_range = tree.range;
    let duration = span_range.map(|r| format_duration_us(r.duration_us()));
    let colours = service_colours(&tree.services);
    let data = StoredValue::new(Waterfall {
        trace: spans,
        tree,
        colours,
    });

    let collapsed = RwSignal::new(HashSet::<String>::new());
    let top_row = RwSignal::new(0_usize);
    let selected = RwSignal::new(None::<usize>);

    let visible = Memo::new(move |_| {
        collapsed.with(|c| data.with_value(|w| w.tree.visible_rows_collapsing(&w.trace.spans, c)))
    });
    let axis = Memo::new(move |_| {
        let event_range = events
            .with(|events| TimeRange::of_times(events.iter().map(|e| micros(&e.occurred_at))));
        SpanAxis::new(TimeRange::union_of(span_range, event_range))
    });
    let slice = Memo::new(move |_| {
        let (first, last) = visible.with(|v| {
            window_slice(
                top_row.get() as f64 * ROW_HEIGHT_PX,
                ROW_HEIGHT_PX,
                VIEWPORT_ROWS,
                OVERSCAN_ROWS,
                v.len(),
            )
        });
        let picked = selected.get();
        let rows = visible.with(|v| v[first..last].to_vec());
        let views = axis.with(|axis| {
            collapsed.with(|c| {
                data.with_value(|w| {
                    rows.iter()
                        .map(|&row| row_view(w, axis, row, c, picked))
                        .collect::<Vec<_>>()
                })
            })
        });
        (first, views)
    });

    let on_scroll = move |event: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(element) = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            {
                let top = (f64::from(element.scroll_top()) / ROW_HEIGHT_PX).floor() as usize;
                if top_row.get_untracked() != top {
                    top_row.set(top);
                }
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (event, top_row);
    };
    // Escape closes the detail wherever the focus is: selecting a span
    // re-renders its row, so the clicked button (and the focus) is gone.
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |event| {
            if event.key() == "Escape" {
                selected.set(None);
            }
        });
        on_cleanup(move || handle.remove());
    }
    let toggle = move |span_id: String| {
        collapsed.update(|c| {
            if !c.remove(&span_id) {
                c.insert(span_id);
            }
        });
    };
    let collapse_below = move |depth: usize| {
        collapsed.set(data.with_value(|w| w.tree.collapsed_below_depth(&w.trace.spans, depth)));
    };

    let viewport_style = move || {
        let n = visible.with(Vec::len).clamp(1, VIEWPORT_ROWS);
        format!("height:{}px", HEAD_HEIGHT_PX + n as f64 * ROW_HEIGHT_PX)
    };
    let spacer_style =
        move || format!("height:{}px", visible.with(Vec::len) as f64 * ROW_HEIGHT_PX);
    let list_style = move || {
        format!(
            "transform:translateY({}px)",
            slice.with(|(first, _)| *first) as f64 * ROW_HEIGHT_PX
        )
    };
    let ticks = move || {
        axis.with(|a| {
            a.ticks
                .iter()
                .map(|t| {
                    view! {
                        <span class="sw-tick-label" style=format!("left:{:.3}%", t.percent) data-test="span-axis-tick">
                            {t.label.clone()}
                        </span>
                    }
                })
                .collect::<Vec<_>>()
        })
    };
    let grid_lines = move || {
        axis.with(|a| {
            a.ticks
                .iter()
                .map(|t| view! { <span class="sw-gridline" style=format!("left:{:.3}%", t.percent)></span> })
                .collect::<Vec<_>>()
        })
    };
    // One marker per saga event, and its guide line through the rows.
    let marks = move || {
        axis.with(|a| {
            events.with(|events| {
                events
                    .iter()
                    .map(|e| {
                        let left = a.percent(micros(&e.occurred_at));
                        let title = format!(
                            "{} · {}{} · {} (+{})",
                            e.event_type,
                            e.phase.label(),
                            e.step
                                .as_deref()
                                .map(|s| format!(" · step {s}"))
                                .unwrap_or_default(),
                            clock(&e.occurred_at),
                            format_duration_us(micros(&e.occurred_at) - a.start_us),
                        );
                        (
                            e.event_id.clone(),
                            phase_tone(e.phase),
                            e.phase.as_str(),
                            left,
                            title,
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
    };
    let guide_lines = move || {
        marks()
            .into_iter()
            .map(|(_, tone, _, left, _)| {
                view! { <span class=format!("sw-guide tone-{tone}") style=format!("left:{left:.3}%")></span> }
            })
            .collect::<Vec<_>>()
    };
    let markers = move || {
        marks()
            .into_iter()
            .map(|(id, tone, phase, left, title)| {
                view! {
                    <span
                        class=format!("sw-marker tone-{tone}")
                        id=marker_anchor(&id)
                        data-test="event-marker"
                        data-event-id=id
                        data-phase=phase
                        style=format!("left:{left:.3}%")
                        title=title.clone()
                        tabindex="0"
                        role="img"
                        aria-label=title
                    ></span>
                }
            })
            .collect::<Vec<_>>()
    };

    let row_key = |r: &RowView| (r.row, r.collapsed, r.selected, r.bar_style.clone());
    let render_row = move |r: RowView| {
        let mut class = format!("sw-row svc-c{}", r.colour);
        if r.error {
            class.push_str(" error");
        } else if r.subtree_error {
            class.push_str(" subtree-error");
        }
        if r.selected {
            class.push_str(" selected");
        }
        let indent = r.depth.min(MAX_INDENT_DEPTH) * INDENT_PX;
        let depth_note = (r.depth > MAX_INDENT_DEPTH).then(|| {
            view! { <span class="sw-depth" title="Nesting depth">{format!("↳{}", r.depth)}</span> }
        });
        let toggle_button = if r.children > 0 {
            let span_id = r.span_id.clone();
            let expanded = if r.collapsed { "false" } else { "true" };
            let glyph = if r.collapsed { "▸" } else { "▾" };
            let label = format!(
                "{} {} ({} below)",
                if r.collapsed { "Expand" } else { "Collapse" },
                r.name,
                r.children
            );
            view! {
                <button
                    type="button"
                    class="sw-toggle"
                    data-test="span-toggle"
                    aria-expanded=expanded
                    aria-label=label.clone()
                    title=label
                    on:click=move |_| toggle(span_id.clone())
                >
                    {glyph}
                </button>
            }
            .into_any()
        } else {
            view! { <span class="sw-toggle-space" aria-hidden="true"></span> }.into_any()
        };
        let row = r.row;
        let pressed = if r.selected { "true" } else { "false" };
        let select = move |_| selected.set(Some(row));
        view! {
            <li
                class=class
                data-test="span-row"
                data-span-id=r.span_id.clone()
                data-depth=r.depth
                data-service=r.service.clone()
                data-collapsed=r.collapsed.then_some("true")
            >
                <span class="sw-label" style=format!("padding-left:{indent}px")>
                    {toggle_button}
                    {depth_note}
                    <span class="sw-swatch" aria-hidden="true"></span>
                    <span class="sw-service" title=r.service.clone()>{r.service.clone()}</span>
                    <button type="button" class="sw-name" title=r.name.clone() on:click=select aria-pressed=pressed>
                        {r.name.clone()}
                    </button>
                    {r.orphan.then(|| view! {
                        <span class="sw-orphan" title="Its parent span was not received">"⤴"</span>
                    })}
                    {(r.hidden > 0).then(|| view! {
                        <span class="sw-hidden-count" title="Rows hidden below this span">{format!("+{}", group_thousands(r.hidden))}</span>
                    })}
                    {r.error.then(|| view! {
                        <span class="sw-error-mark" data-test="span-error" title="Status: error">"✕"</span>
                    })}
                    {(!r.error && r.subtree_error).then(|| view! {
                        <span class="sw-error-below" title="A span below this one failed">"✕"</span>
                    })}
                </span>
                <span class="sw-track" on:click=select title=r.title.clone()>
                    <span class="sw-bar" data-test="span-bar" style=r.bar_style.clone()></span>
                    <span class="sw-dur num" style=r.label_style.clone()>{r.duration.clone()}</span>
                </span>
            </li>
        }
        // Erased: the row's type is nested inside <For>, the viewport and
        // the section; without this the release (unerased) hydrate build
        // overflows rustc's query depth (issue 13).
        .into_any()
    };

    let detail = move || {
        selected.get().map(|row| {
            let axis_start = axis.with(|a| a.start_us);
            data.with_value(|w| {
                let span = w.trace.spans[w.tree.rows[row].span].clone();
                let colour = w.colours.get(&span.service).copied().unwrap_or(0);
                view! { <SpanDetail span colour axis_start on_close=move || selected.set(None)/> }
            })
        })
    };

    let summary_title = format!("Trace {trace_id}");
    let errors_class = if errors > 0 { "num sw-errors" } else { "num" };
    let source_text = format!("source {}", source_name(source));
    // The toolbar and the viewport are erased separately (`into_any`): one
    // nested type for the whole section was deeper than rustc's limit in
    // release builds, where Leptos does not erase component types.
    let toolbar = view! {
            <div class="sw-toolbar">
                <p class="sw-summary">
                    <span class="num" data-test="span-count" data-count=total>{plural(total, "span", "spans")}</span>
                    <span class="sep" aria-hidden="true">" · "</span>
                    <span class="num">{plural(service_count, "service", "services")}</span>
                    <span class="sep" aria-hidden="true">" · "</span>
                    <span class=errors_class data-test="span-errors">
                        {plural(errors, "error", "errors")}
                    </span>
                    {duration.map(|d| view! {
                        <span class="sep" aria-hidden="true">" · "</span>
                        <span class="num" title="From the first span start to the last span end">{d}</span>
                    })}
                    <span class="sep" aria-hidden="true">" · "</span>
                    <span class="muted" title="Where these spans came from">{source_text}</span>
                    {truncated.then(|| view! {
                        <span class="sw-truncated" title="The trace has more spans than one page shows">
                            {format!(" · first {} only", group_thousands(total))}
                        </span>
                    })}
                </p>
                <div class="sw-actions">
                    {(max_depth > 0).then(|| view! {
                        <span class="muted small">"collapse below depth"</span>
                        {COLLAPSE_DEPTHS
                            .into_iter()
                            .filter(|d| *d <= max_depth)
                            .map(|d| view! {
                                <button type="button" class="button small-button" data-test="span-collapse-depth" data-depth=d on:click=move |_| collapse_below(d)>
                                    {d.to_string()}
                                </button>
                            })
                            .collect::<Vec<_>>()}
                        <button type="button" class="button small-button" data-test="span-expand-all" on:click=move |_| collapsed.set(HashSet::new())>
                            "Expand all"
                        </button>
                    })}
                    {external_url.map(|url| view! {
                        <a class="button small-button" href=url data-test="span-external-link" target="_blank" rel="noopener noreferrer">
                            "Open in Jaeger/Tempo/Grafana ↗"
                        </a>
                    })}
                </div>
            </div>
    }
    .into_any();
    // The axis head and the marker lane are sticky inside the scrolled
    // viewport, so they share the rows' width (scrollbar).
    let viewport = view! {
            <div class="sw-viewport" data-test="span-viewport" style=viewport_style on:scroll=on_scroll>
                <div class="sw-head" role="presentation">
                    <span class="sw-h-label">"service · span"</span>
                    <span class="sw-ticks" title="Time since the first span or saga event">{ticks}</span>
                </div>
                <div class="sw-markers-row">
                    <span class="sw-h-label" title="Each saga event where it happened on this axis">"saga events"</span>
                    <span class="sw-marker-lane" data-test="event-markers">{markers}</span>
                </div>
                <div class="sw-spacer" style=spacer_style>
                    <div class="sw-guides" aria-hidden="true">
                        <span class="sw-guides-track">{grid_lines}{guide_lines}</span>
                    </div>
                    <ol class="sw-rows" style=list_style>
                        <For each=move || slice.get().1 key=row_key children=render_row/>
                    </ol>
                </div>
            </div>
    }
    .into_any();
    view! {
        <section class="span-waterfall" data-test="span-waterfall" data-trace-id=trace_id.clone() aria-label=summary_title>
            {toolbar}
            {viewport}
            {detail}
        </section>
    }
    .into_any()
}

/// The facts of one span: ids, timing, status, attributes and events.
#[component]
fn SpanDetail(
    span: SpanView,
    colour: usize,
    axis_start: i64,
    on_close: impl Fn() + 'static,
) -> impl IntoView {
    let start = micros(&span.start);
    let status_text = match &span.status_message {
        Some(message) if !message.is_empty() => format!("{} — {message}", span.status.as_str()),
        _ => span.status.as_str().to_string(),
    };
    let attributes = span.attributes.clone();
    let events = span.events.clone();
    view! {
        <section class="sw-detail" data-test="span-detail" data-span-id=span.span_id.clone() aria-label="Span detail">
            <header class="sw-detail-head">
                <span class=format!("sw-swatch svc-c{colour}") aria-hidden="true"></span>
                <h3 class="sw-detail-name">{span.name.clone()}</h3>
                <span class="muted">{span.service.clone()}</span>
                <button type="button" class="button small-button sw-close" data-test="span-detail-close" on:click=move |_| on_close() aria-label="Close the span detail">
                    "✕"
                </button>
            </header>
            <dl class="facts sw-facts">
                <dt>"Service"</dt>
                <dd data-test="span-detail-service">{span.service.clone()}</dd>
                <dt>"Kind"</dt>
                <dd>{span.kind.as_str()}</dd>
                <dt>"Status"</dt>
                <dd class=format!("sw-status-{}", span.status.as_str()) data-test="span-detail-status">{status_text}</dd>
                <dt>"Duration"</dt>
                <dd class="mono">{format_duration_us(span.duration_us)}</dd>
                <dt>"Start"</dt>
                <dd class="mono">
                    {format!("+{}", format_duration_us(start - axis_start))}
                    <span class="muted">{format!(" · {}", absolute(&span.start))}</span>
                </dd>
                <dt>"Span id"</dt>
                <dd class="mono">{span.span_id.clone()} <CopyButton value=span.span_id.clone()/></dd>
                <dt>"Parent"</dt>
                <dd class="mono">{span.parent_span_id.clone().unwrap_or_else(|| "— (root)".into())}</dd>
                <dt>"Trace id"</dt>
                <dd class="mono">{span.trace_id.clone()} <CopyButton value=span.trace_id.clone()/></dd>
            </dl>
            <table class="sw-table" data-test="span-attributes">
                <caption>{format!("Attributes ({})", attributes.len())}</caption>
                <thead>
                    <tr><th scope="col">"key"</th><th scope="col">"value"</th></tr>
                </thead>
                <tbody>
                    {attributes
                        .into_iter()
                        .map(|a| view! {
                            <tr><td class="mono">{a.key}</td><td class="mono sw-value">{a.value}</td></tr>
                        })
                        .collect::<Vec<_>>()}
                </tbody>
            </table>
            {(!events.is_empty()).then(|| view! {
                <table class="sw-table" data-test="span-events">
                    <caption>{format!("Events ({})", events.len())}</caption>
                    <thead>
                        <tr><th scope="col">"at"</th><th scope="col">"name"</th><th scope="col">"attributes"</th></tr>
                    </thead>
                    <tbody>
                        {events
                            .into_iter()
                            .map(|e| {
                                let at = format!("+{}", format_duration_us(micros(&e.at) - start));
                                let attrs = e
                                    .attributes
                                    .iter()
                                    .map(|a| format!("{}={}", a.key, a.value))
                                    .collect::<Vec<_>>()
                                    .join("\n");
                                view! {
                                    <tr>
                                        <td class="num mono" title=absolute(&e.at)>{at}</td>
                                        <td>{e.name}</td>
                                        <td class="mono sw-value">{attrs}</td>
                                    </tr>
                                }
                            })
                            .collect::<Vec<_>>()}
                    </tbody>
                </table>
            })}
        </section>
    }
    .into_any()
}

/// The "Trace" section of a saga: a waterfall per trace id of the saga, or
/// why there is none (no trace id, no spans received, a source error).
#[component]
pub fn SagaTraceSpans(
    trace_ids: Vec<String>,
    result: Result<Vec<TraceSpans>, String>,
    /// The saga's events; each waterfall marks those of its trace.
    events: RwSignal<Vec<TimelineEvent>>,
) -> impl IntoView {
    if trace_ids.is_empty() {
        return view! {
            <p class="sw-note muted" data-test="span-empty">
                "The events of this saga carry no trace id, so there are no spans to show."
            </p>
        }
        .into_any();
    }
    let found = match result {
        Ok(found) => found,
        Err(message) => {
            return view! { <SpanSourceError message/> }.into_any();
        }
    };
    let single = trace_ids.len() == 1;
    trace_ids
        .into_iter()
        .map(|trace_id| {
            let spans = found
                .iter()
                .find(|t| t.trace_id == trace_id && !t.spans.is_empty())
                .cloned();
            let own_events = {
                let trace_id = trace_id.clone();
                Signal::derive(move || {
                    events.with(|events| {
                        events
                            .iter()
                            // With one trace every event of the saga is
                            // marked (also those that carry no trace id).
                            .filter(|e| single || e.trace_id.as_deref() == Some(trace_id.as_str()))
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                })
            };
            let heading = (!single).then(|| {
                view! { <h3 class="sw-trace-title mono">{format!("Trace {trace_id}")}</h3> }
            });
            match spans {
                Some(spans) => {
                    view! { {heading} <SpanWaterfall spans events=own_events/> }.into_any()
                }
                None => view! { {heading} <NoSpans trace_id/> }.into_any(),
            }
        })
        .collect::<Vec<_>>()
        .into_any()
}

/// The hint shown when a trace has no spans (yet).
#[component]
pub fn NoSpans(trace_id: String) -> impl IntoView {
    view! {
        <div class="sw-note" data-test="span-empty" role="status">
            <p>
                "No spans received for trace "
                <span class="mono">{trace_id}</span>
                "; "
                {NO_SPANS_HINT}
                "."
            </p>
        </div>
    }
}

/// The span source failed: say so without hiding the rest of the page.
#[component]
pub fn SpanSourceError(message: String) -> impl IntoView {
    view! {
        <div class="sw-note sw-note-error" data-test="span-source-error" role="alert">
            <p>"Could not load the spans: " <span class="mono">{message}</span></p>
        </div>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use sagascope_model::{SpanAttribute, SpanKind, SpanSource, SpanStatus};

    /// Server-rendered HTML of a view.
    fn html<V: IntoView + 'static>(view: impl FnOnce() -> V) -> String {
        let owner = Owner::new();
        owner.with(|| view().into_view().to_html())
    }

    fn span(i: usize, parent: Option<usize>) -> SpanView {
        let at =
            |us: i64| chrono::DateTime::from_timestamp_micros(1_800_000_000_000_000 + us).unwrap();
        SpanView {
            trace_id: "ab".repeat(16),
            span_id: format!("{i:016x}"),
            parent_span_id: parent.map(|p| format!("{p:016x}")),
            name: format!("<script>alert({i})</script>"),
            service: format!("svc-{}", i % 3),
            kind: SpanKind::Server,
            start: at(i as i64 * 10),
            end: at(i as i64 * 10 + 500),
            duration_us: 500,
            status: if i == 7 {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            },
            status_message: None,
            attributes: vec![SpanAttribute {
                key: "http.route".into(),
                value: "<b>/orders</b>".into(),
            }],
            events: vec![],
        }
    }

    fn trace(n: usize) -> TraceSpans {
        TraceSpans {
            trace_id: "ab".repeat(16),
            source: SpanSource::Otlp,
            spans: (0..n)
                .map(|i| span(i, (i > 0).then(|| (i - 1) / 4)))
                .collect(),
            truncated: false,
            external_url: Some("https://jaeger.example/trace/abab?x=<y>".into()),
        }
    }

    #[test]
    fn ten_thousand_spans_render_the_first_rows_only_and_escaped() {
        let text = html(|| {
            let events = Signal::derive(Vec::<TimelineEvent>::new);
            view! { <SpanWaterfall spans=trace(10_000) events/> }
        });
        assert_eq!(
            text.matches("data-test=\"span-row\"").count(),
            VIEWPORT_ROWS + OVERSCAN_ROWS
        );
        assert!(
            text.contains(">10,000 spans<"),
            "the summary counts them all"
        );
        assert!(text.contains("data-count=\"10000\""));
        assert!(text.contains("3 services"));
        assert!(text.contains(">1 error<"));
        assert!(text.contains("&lt;script&gt;alert(0)&lt;/script&gt;"));
        assert!(!text.contains("<script>alert"), "span names are escaped");
        assert!(text.contains("data-test=\"span-external-link\""));
        assert!(!text.contains("x=<y>"), "the link is an escaped attribute");
        assert!(
            !text.contains("data-test=\"span-detail\""),
            "no detail until a click"
        );
        // The spacer holds the height of every row, for the scrollbar.
        assert!(text.contains(&format!("height:{}px", 10_000.0 * ROW_HEIGHT_PX)));
    }

    #[test]
    fn a_saga_without_spans_or_with_a_failing_source_says_so() {
        let id = "cd".repeat(16);
        let text = html(move || {
            let events = RwSignal::new(Vec::<TimelineEvent>::new());
            view! { <SagaTraceSpans trace_ids=vec![id] result=Ok(vec![]) events/> }
        });
        assert!(text.contains("No spans received for trace"), "{text}");
        assert!(text.contains("/v1/traces"), "{text}");
        let text = html(|| {
            let events = RwSignal::new(Vec::<TimelineEvent>::new());
            view! { <SagaTraceSpans trace_ids=vec!["t".into()] result=Err("jaeger: <down>".into()) events/> }
        });
        assert!(text.contains("data-test=\"span-source-error\""), "{text}");
        assert!(text.contains("jaeger: &lt;down&gt;"), "{text}");
        let text = html(|| {
            let events = RwSignal::new(Vec::<TimelineEvent>::new());
            view! { <SagaTraceSpans trace_ids=vec![] result=Ok(vec![]) events/> }
        });
        assert!(text.contains("carry no trace id"), "{text}");
    }
}
