//! Timeline rows: one event per row, on a time axis shared by all rows of a
//! saga (detail page) or a trace (trace page).

use std::collections::HashMap;

use leptos::prelude::*;
use sagascope_model::{Phase, TimelineEvent, Timestamp};

use crate::components::ids::{saga_href, IdLink, IdText, TraceLink};
use crate::components::json_view::PayloadAndHeaders;
use crate::components::status_badge::{phase_tone, PhaseLabel};
use crate::time::{absolute, clock, delay, machine, millis, offset};

/// A step's extent: the saga, the step, and whether it is the compensation
/// of that step (drawn as its own bar).
type SpanKey = (String, String, bool);

/// The shared time axis of a set of events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Axis {
    pub start_ms: i64,
    pub total_ms: i64,
    /// First and last event time of each step.
    pub spans: HashMap<SpanKey, (i64, i64)>,
}

fn span_key(event: &TimelineEvent) -> Option<SpanKey> {
    event.step.as_ref().map(|step| {
        (
            event.saga_id.clone(),
            step.clone(),
            event.phase.is_compensation(),
        )
    })
}

impl Axis {
    /// The axis of `events`, widened to `start`/`end` when given (a saga's
    /// start and end may lie outside its ingested events).
    pub fn new(
        events: &[TimelineEvent],
        start: Option<&Timestamp>,
        end: Option<&Timestamp>,
    ) -> Axis {
        let times = events.iter().map(|e| millis(&e.occurred_at));
        let first = times.clone().min();
        let last = times.max();
        let start_ms = [start.map(millis), first]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0);
        let end_ms = [end.map(millis), last]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(start_ms);
        let mut spans: HashMap<SpanKey, (i64, i64)> = HashMap::new();
        for event in events {
            if let Some(key) = span_key(event) {
                let t = millis(&event.occurred_at);
                spans
                    .entry(key)
                    .and_modify(|(s, e)| {
                        *s = (*s).min(t);
                        *e = (*e).max(t);
                    })
                    .or_insert((t, t));
            }
        }
        Axis {
            start_ms,
            total_ms: (end_ms - start_ms).max(1),
            spans,
        }
    }

    fn percent(&self, t: i64) -> f64 {
        ((t - self.start_ms) as f64 / self.total_ms as f64 * 100.0).clamp(0.0, 100.0)
    }

    /// CSS of the bar of `event`'s step and of the tick at `event`.
    fn bar_style(&self, event: &TimelineEvent) -> (String, String) {
        let t = millis(&event.occurred_at);
        let tick = format!("left:{:.2}%", self.percent(t));
        let bar = match span_key(event).and_then(|k| self.spans.get(&k)) {
            Some((s, e)) => {
                let left = self.percent(*s);
                let width = (self.percent(*e) - left).max(0.6);
                format!("left:{left:.2}%;width:{width:.2}%")
            }
            None => "display:none".to_string(),
        };
        (bar, tick)
    }

    /// CSS of a tick at `t` (ms since the epoch): other rows on the same
    /// axis (the saga's dead letters).
    pub fn tick_style(&self, t: i64) -> String {
        format!("left:{:.2}%", self.percent(t))
    }

    fn step_duration(&self, event: &TimelineEvent) -> Option<i64> {
        span_key(event)
            .and_then(|k| self.spans.get(&k))
            .map(|(s, e)| e - s)
    }
}

/// Inserts `event` in occurred-at order (after events of the same time);
/// ignores an event already present. Returns whether it was inserted.
pub fn insert_event(events: &mut Vec<TimelineEvent>, event: TimelineEvent) -> bool {
    if events.iter().any(|e| e.event_id == event.event_id) {
        return false;
    }
    let at = events
        .iter()
        .rposition(|e| e.occurred_at <= event.occurred_at)
        .map_or(0, |i| i + 1);
    events.insert(at, event);
    true
}

fn undoes(phase: Phase) -> bool {
    matches!(phase, Phase::StepCompensated | Phase::CompensationFailed)
}

/// One event row; expands (`<details>`, works without JavaScript) to the
/// payload, headers, Kafka coordinates and delays.
#[component]
pub fn TimelineRow(
    event: TimelineEvent,
    axis: Memo<Axis>,
    /// Show the saga column (trace page).
    #[prop(optional)]
    show_saga: bool,
    /// Arrived live: highlighted briefly.
    #[prop(optional)]
    fresh: bool,
) -> impl IntoView {
    let phase = event.phase;
    let mut class = format!("tl-row tone-{}", phase_tone(phase));
    if phase.is_compensation() {
        class.push_str(" compensation");
    }
    if phase.is_failure() {
        class.push_str(" failure");
    }
    if fresh {
        class.push_str(" fresh");
    }
    let at = millis(&event.occurred_at);
    let offset_text = move || axis.with(|a| offset(at - a.start_ms));
    let styles = {
        let event = event.clone();
        Memo::new(move |_| axis.with(|a| a.bar_style(&event)))
    };
    let step_title = {
        let event = event.clone();
        move || {
            axis.with(|a| a.step_duration(&event))
                .map(|ms| format!("Step duration {}", sagascope_model::format_duration_ms(ms)))
                .unwrap_or_default()
        }
    };
    let step_text = match (&event.step, undoes(phase)) {
        (Some(step), true) => Some(format!("↶ undoes {step}")),
        (Some(step), false) => Some(step.clone()),
        (None, _) => None,
    };
    let coords = format!("{} [{}] @{}", event.topic, event.partition, event.offset);
    let publish_delay = delay(Some(&event.occurred_at), event.published_at.as_ref());
    let ingest_delay = delay(event.published_at.as_ref(), Some(&event.ingested_at));
    let saga_cell = show_saga.then(|| {
        let id = event.saga_id.clone();
        view! {
            <span class="tl-saga">
                <IdLink id=id.clone() href=saga_href(&id) test="saga-link"/>
            </span>
        }
    });

    view! {
        <li
            class=class
            data-test="timeline-row"
            data-phase=phase.as_str()
            data-step=event.step.clone()
            data-event-id=event.event_id.clone()
            data-saga-id=event.saga_id.clone()
        >
            <details>
                <summary class="tl-summary">
                    <span class="tl-offset num mono" title=absolute(&event.occurred_at)>{offset_text}</span>
                    {saga_cell}
                    <span class="tl-phase"><PhaseLabel phase/></span>
                    <span class="tl-step" title=step_title>{step_text}</span>
                    <span class="tl-type mono" title=event.event_type.clone()>{event.event_type.clone()}</span>
                    <span class="tl-topic mono" title=coords.clone()>{coords.clone()}</span>
                    <span class="tl-track" aria-hidden="true">
                        <span class="tl-bar" style=move || styles.get().0></span>
                        <span class="tl-tick" style=move || styles.get().1></span>
                    </span>
                    <time class="tl-time num mono" datetime=machine(&event.occurred_at) title=absolute(&event.occurred_at)>
                        {clock(&event.occurred_at)}
                    </time>
                    {event.error.clone().map(|error| view! {
                        <span class="tl-error" data-test="event-error">{error}</span>
                    })}
                </summary>
                <div class="tl-body">
                    <dl class="facts">
                        <dt>"Event id"</dt>
                        <dd class="mono">{event.event_id.clone()}</dd>
                        <dt>"Occurred"</dt>
                        <dd class="mono">{absolute(&event.occurred_at)}</dd>
                        <DeliveryFacts event=event.clone() publish=publish_delay ingest=ingest_delay/>
                        <dt>"Trace"</dt>
                        <dd>
                            {match event.trace_id.clone() {
                                Some(t) => view! { <TraceLink trace_id=t/> }.into_any(),
                                None => view! { <span class="muted">"—"</span> }.into_any(),
                            }}
                            {event.span_id.clone().map(|s| view! {
                                <span class="muted">" span "</span>
                                <IdText id=s/>
                            })}
                            {event.trace_id.is_some().then(|| view! {
                                <a
                                    class="tl-marker-link small"
                                    data-test="event-marker-link"
                                    href=format!("#{}", sagascope_model::percent_encode(&crate::components::span_waterfall::marker_anchor(&event.event_id)))
                                    title="This event's marker on the span waterfall below"
                                >
                                    " on the span waterfall ↓"
                                </a>
                            })}
                        </dd>
                    </dl>
                    <PayloadAndHeaders payload=event.payload.clone() headers=event.headers.clone()/>
                </div>
            </details>
        </li>
    }
    .into_any()
}

/// When and where an event travelled: its Kafka time with the publish
/// delay, its ingest time with the ingest delay, and its coordinates.
/// Shared by the saga timeline and the trace axis.
#[component]
pub fn DeliveryFacts(event: TimelineEvent, publish: String, ingest: String) -> impl IntoView {
    use crate::components::trace_axis::{INGEST_DEFINITION, PUBLISH_DEFINITION};
    view! {
        <dt>"Published"</dt>
        <dd class="mono">
            {event.published_at.as_ref().map(absolute).unwrap_or_else(|| "—".into())}
            <span class="delay" data-test="publish-delay" title=PUBLISH_DEFINITION>
                {format!("publish delay {publish}")}
            </span>
        </dd>
        <dt>"Ingested"</dt>
        <dd class="mono">
            {absolute(&event.ingested_at)}
            <span class="delay" data-test="ingest-delay" title=INGEST_DEFINITION>
                {format!("ingest delay {ingest}")}
            </span>
        </dd>
        <dt>"Kafka"</dt>
        <dd class="mono">
            {format!("topic {} · partition {} · offset {}", event.topic, event.partition, event.offset)}
        </dd>
    }
}
