//! The trace page's shared time axis: every event of a trace, across sagas
//! and topics, on one axis whose 0 is the first `occurred_at`; per event the
//! topic hop and the publish/ingest delays, as text and as bar segments
//! (occurred → published → ingested).
//!
//! The computations (hops, delays, axis domain and ticks, row geometry, the
//! summary) are plain functions, unit-tested below; the components only
//! render them. Everything is text nodes and attributes (escaped by Leptos).

use std::collections::{BTreeSet, HashSet};

use leptos::prelude::*;
use sagascope_model::{format_duration_ms, percent_encode, SagaSummary, TimelineEvent, Timestamp};

use crate::components::ids::{saga_href, IdLink, IdText};
use crate::components::json_view::PayloadAndHeaders;
use crate::components::status_badge::{phase_tone, PhaseLabel, StatusBadge};
use crate::components::time::SagaDuration;
use crate::components::timeline::DeliveryFacts;
use crate::time::{absolute, clock, machine, millis, offset};

/// At most this many intervals between axis ticks.
pub const MAX_INTERVALS: i64 = 5;
/// Delays may stretch the axis past the last event by the events' own span,
/// but at least by this much; longer delays are clipped (and marked so).
pub const MIN_SLACK_MS: i64 = 1_000;
/// The smallest axis (a single event without delays).
pub const MIN_RANGE_MS: i64 = 10;
/// A delay from this long on is flagged slow.
pub const SLOW_DELAY_MS: i64 = 1_000;
/// Saga colours (`--saga-0` … in the stylesheet); beyond them they repeat,
/// the letter key keeps sagas apart.
pub const SAGA_COLOURS: usize = 6;

/// Candidate tick steps: 1-2-5 (and 2.5) in ms and s, then whole minutes,
/// hours and days.
const TICK_STEPS: [i64; 31] = [
    1,
    2,
    5,
    10,
    20,
    25,
    50,
    100,
    200,
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
];

pub const PUBLISH_DEFINITION: &str = "Publish delay = published_at − occurred_at: from the business event to its Kafka timestamp (outbox relay lag). Negative: the clocks of producer and broker disagree (skew).";
pub const INGEST_DEFINITION: &str = "Ingest delay = ingested_at − published_at: from the Kafka timestamp to its arrival in sagascope (consumer lag). Negative: the clocks of broker and sagascope disagree (skew).";
pub const MISSING_DEFINITION: &str =
    "— : the message has no Kafka timestamp, so the delay cannot be split into publish and ingest.";
pub const SKEW_HINT: &str =
    "Negative delay: the two timestamps come from clocks that disagree (clock skew). Shown as measured.";
pub const HOP_DEFINITION: &str =
    "Topic hop: the topic of the previous event of the trace (in time order) → this event's topic.";

// ---------- delays ----------

/// `to − from` in whole milliseconds, each instant truncated to its
/// millisecond first: a Kafka timestamp has millisecond precision (it is
/// truncated), so comparing it with a microsecond occurred_at would report
/// up to −0.999 ms of false skew.
pub fn delta_ms(from: &Timestamp, to: &Timestamp) -> i64 {
    millis(to) - millis(from)
}

/// published_at − occurred_at (outbox relay lag); `None` without a Kafka
/// timestamp.
pub fn publish_delay_ms(event: &TimelineEvent) -> Option<i64> {
    event
        .published_at
        .as_ref()
        .map(|published| delta_ms(&event.occurred_at, published))
}

/// ingested_at − published_at (consumer lag into sagascope); `None` without
/// a Kafka timestamp.
pub fn ingest_delay_ms(event: &TimelineEvent) -> Option<i64> {
    event
        .published_at
        .as_ref()
        .map(|published| delta_ms(published, &event.ingested_at))
}

/// "35 ms", "2.4 s", "−12 ms" (skew, shown as measured), "—" (unknown).
pub fn delay_text(ms: Option<i64>) -> String {
    match ms {
        None => "—".to_string(),
        Some(ms) if ms < 0 => format!("−{}", format_duration_ms(-ms)),
        Some(ms) => format_duration_ms(ms),
    }
}

/// How a delay reads: unknown, normal, slow or negative (clock skew).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayKind {
    Unknown,
    Normal,
    Slow,
    Skew,
}

pub fn delay_kind(ms: Option<i64>) -> DelayKind {
    match ms {
        None => DelayKind::Unknown,
        Some(ms) if ms < 0 => DelayKind::Skew,
        Some(ms) if ms >= SLOW_DELAY_MS => DelayKind::Slow,
        Some(_) => DelayKind::Normal,
    }
}

impl DelayKind {
    fn class(self) -> &'static str {
        match self {
            DelayKind::Unknown => "unknown",
            DelayKind::Normal => "normal",
            DelayKind::Slow => "slow",
            DelayKind::Skew => "skew",
        }
    }
}

// ---------- topic hops ----------

/// Where an event sits among the topics of its trace, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hop {
    /// The first event of the trace.
    First(String),
    /// Same topic as the previous event.
    Same(String),
    /// The trace moved from one topic to another.
    Changed { from: String, to: String },
}

impl Hop {
    /// "events.scan → events.character", or just the topic.
    pub fn text(&self) -> String {
        match self {
            Hop::First(topic) | Hop::Same(topic) => topic.clone(),
            Hop::Changed { from, to } => format!("{from} → {to}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Hop::First(_) => "first",
            Hop::Same(_) => "same",
            Hop::Changed { .. } => "changed",
        }
    }
}

/// Indices of `events` in time order (occurred_at; ties keep input order).
fn time_order(events: &[TimelineEvent]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].occurred_at);
    order
}

/// The hop of each event (same order as `events`): its topic compared with
/// the topic of the event before it in time order.
pub fn hops(events: &[TimelineEvent]) -> Vec<Hop> {
    let mut out = vec![Hop::First(String::new()); events.len()];
    let mut previous: Option<&str> = None;
    for i in time_order(events) {
        let topic = events[i].topic.as_str();
        out[i] = match previous {
            None => Hop::First(topic.to_string()),
            Some(prev) if prev == topic => Hop::Same(topic.to_string()),
            Some(prev) => Hop::Changed {
                from: prev.to_string(),
                to: topic.to_string(),
            },
        };
        previous = Some(topic);
    }
    out
}

// ---------- the axis ----------

/// One labelled tick of the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Offset from the first occurred_at.
    pub offset_ms: i64,
    /// "+250 ms", "+1.5 s", "−50 ms".
    pub label: String,
    pub percent: f64,
}

/// The time axis shared by all rows of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceAxis {
    /// Time 0: the first occurred_at (epoch ms).
    pub origin_ms: i64,
    /// The drawn domain (epoch ms), on tick multiples.
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub ticks: Vec<Tick>,
}

impl Default for TraceAxis {
    fn default() -> Self {
        TraceAxis::new(&[])
    }
}

/// Whether `format_duration_ms` renders `ms` exactly (it shows 0.1 s below
/// a minute, whole seconds below an hour, …), so tick labels never lie.
fn label_is_exact(ms: i64) -> bool {
    let ms = ms.abs();
    if ms < 1_000 {
        true
    } else if ms < 60_000 {
        ms % 100 == 0
    } else if ms < 3_600_000 {
        ms % 1_000 == 0
    } else if ms < 86_400_000 {
        ms % 60_000 == 0
    } else {
        ms % 3_600_000 == 0
    }
}

/// The tick step for the offsets `[from, to]` (relative to time 0) and the
/// domain rounded out to it: the smallest step from [`TICK_STEPS`] with at
/// most [`MAX_INTERVALS`] intervals whose labels are all exact.
pub fn tick_step(from: i64, to: i64) -> (i64, i64, i64) {
    let to = to.max(from + 1);
    for step in TICK_STEPS {
        let start = from.div_euclid(step) * step;
        let end = -((-to).div_euclid(step)) * step;
        let intervals = (end - start) / step;
        if intervals > MAX_INTERVALS {
            continue;
        }
        if (0..=intervals).all(|k| label_is_exact(start + k * step)) {
            return (step, start, end);
        }
    }
    // Longer than weeks: one tick per week-multiple, labels in days.
    let step = ((to - from) / MAX_INTERVALS).max(1);
    let step = -((-step).div_euclid(86_400_000)) * 86_400_000;
    let start = from.div_euclid(step) * step;
    let end = -((-to).div_euclid(step)) * step;
    (step, start, end)
}

/// A bar segment on the axis, in percent of the track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub left: f64,
    pub width: f64,
    /// The segment goes on beyond the drawn domain.
    pub clipped_start: bool,
    pub clipped_end: bool,
    /// Drawn backwards in time (a negative delay: clock skew).
    pub negative: bool,
}

/// The thinnest segment drawn, so short nonzero delays stay visible.
const MIN_SEGMENT_PERCENT: f64 = 0.4;

impl Segment {
    pub fn style(&self) -> String {
        format!("left:{:.3}%;width:{:.3}%", self.left, self.width)
    }

    pub fn class(&self, base: &str) -> String {
        let mut class = format!("tr-seg {base}");
        if self.negative {
            class.push_str(" skew");
        }
        if self.clipped_start {
            class.push_str(" clip-start");
        }
        if self.clipped_end {
            class.push_str(" clip-end");
        }
        class
    }
}

impl TraceAxis {
    /// The axis of `events`: 0 at the first occurred_at, wide enough for the
    /// last event and (within [`MIN_SLACK_MS`] or the events' own span) its
    /// publish and ingest; rounded out to whole ticks.
    pub fn new(events: &[TimelineEvent]) -> TraceAxis {
        let occurred = events.iter().map(|e| millis(&e.occurred_at));
        let origin = occurred.clone().min().unwrap_or(0);
        let last = occurred.max().unwrap_or(origin);
        let all = events.iter().flat_map(|e| {
            [
                Some(&e.occurred_at),
                e.published_at.as_ref(),
                Some(&e.ingested_at),
            ]
            .into_iter()
            .flatten()
            .map(millis)
        });
        let lowest = all.clone().min().unwrap_or(origin);
        let highest = all.max().unwrap_or(last);
        let span = last - origin;
        let slack = span.max(MIN_SLACK_MS);
        let from = (lowest - origin).max(-slack).min(0);
        let to = (highest - origin)
            .min(span + slack)
            .max(span)
            .max(from + MIN_RANGE_MS);
        let (step, start, end) = tick_step(from, to);
        let total = (end - start).max(1) as f64;
        let ticks = (0..=(end - start) / step)
            .map(|k| {
                let at = start + k * step;
                Tick {
                    offset_ms: at,
                    label: offset(at),
                    percent: (at - start) as f64 / total * 100.0,
                }
            })
            .collect();
        TraceAxis {
            origin_ms: origin,
            start_ms: origin + start,
            end_ms: origin + end,
            step_ms: step,
            ticks,
        }
    }

    fn total(&self) -> f64 {
        (self.end_ms - self.start_ms).max(1) as f64
    }

    /// Position of the epoch-ms instant `t`, clamped to the track.
    pub fn percent(&self, t: i64) -> f64 {
        ((t - self.start_ms) as f64 / self.total() * 100.0).clamp(0.0, 100.0)
    }

    /// The segment between two instants (either order); `None` when they
    /// are equal or the segment lies wholly outside the drawn domain.
    pub fn segment(&self, from: i64, to: i64) -> Option<Segment> {
        if from == to {
            return None;
        }
        let (a, b) = (from.min(to), from.max(to));
        if b < self.start_ms || a > self.end_ms {
            return None;
        }
        let left = self.percent(a);
        let right = self.percent(b);
        let width = (right - left).max(MIN_SEGMENT_PERCENT).min(100.0 - left);
        Some(Segment {
            left: left.min(100.0 - width),
            width,
            clipped_start: a < self.start_ms,
            clipped_end: b > self.end_ms,
            negative: to < from,
        })
    }

    /// Where each part of one event sits on the axis.
    pub fn geometry(&self, event: &TimelineEvent) -> RowGeometry {
        let occurred = millis(&event.occurred_at);
        let ingested = millis(&event.ingested_at);
        match event.published_at.as_ref().map(millis) {
            Some(published) => RowGeometry {
                mark: self.percent(occurred),
                publish: self.segment(occurred, published),
                ingest: self.segment(published, ingested),
                unsplit: None,
            },
            None => RowGeometry {
                mark: self.percent(occurred),
                publish: None,
                ingest: None,
                unsplit: self.segment(occurred, ingested),
            },
        }
    }
}

/// The drawing of one row: the occurred mark and the delay segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowGeometry {
    pub mark: f64,
    pub publish: Option<Segment>,
    pub ingest: Option<Segment>,
    /// occurred → ingested when there is no published_at to split it.
    pub unsplit: Option<Segment>,
}

// ---------- sagas and summary ----------

/// The legend key of the `index`-th saga: A … Z, AA, AB, …
pub fn saga_key(index: usize) -> String {
    let mut n = index;
    let mut key = Vec::new();
    loop {
        key.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    key.reverse();
    String::from_utf8(key).unwrap_or_default()
}

/// The legend slot of `saga_id`: its position in `sagas`.
pub fn saga_slot(sagas: &[SagaSummary], saga_id: &str) -> Option<usize> {
    sagas.iter().position(|s| s.saga_id == saga_id)
}

/// The figures of the summary line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceSummary {
    pub events: usize,
    pub sagas: usize,
    pub topics: usize,
    /// First to last occurred_at.
    pub span_ms: Option<i64>,
    /// The largest publish delay and the event it belongs to.
    pub max_publish: Option<(i64, String)>,
    pub max_ingest: Option<(i64, String)>,
}

fn max_by_delay(
    events: &[TimelineEvent],
    delay: fn(&TimelineEvent) -> Option<i64>,
) -> Option<(i64, String)> {
    events
        .iter()
        .filter_map(|e| delay(e).map(|d| (d, e.event_id.clone())))
        // The first event wins a tie.
        .fold(None, |best: Option<(i64, String)>, (d, id)| match best {
            Some((b, _)) if b >= d => best,
            _ => Some((d, id)),
        })
}

pub fn summarize(events: &[TimelineEvent], sagas: &[SagaSummary]) -> TraceSummary {
    let saga_ids: HashSet<&str> = sagas
        .iter()
        .map(|s| s.saga_id.as_str())
        .chain(events.iter().map(|e| e.saga_id.as_str()))
        .collect();
    let topics: BTreeSet<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    let times = events.iter().map(|e| millis(&e.occurred_at));
    let span_ms = times.clone().min().zip(times.max()).map(|(a, b)| b - a);
    TraceSummary {
        events: events.len(),
        sagas: saga_ids.len(),
        topics: topics.len(),
        span_ms,
        max_publish: max_by_delay(events, publish_delay_ms),
        max_ingest: max_by_delay(events, ingest_delay_ms),
    }
}

/// The `id` of an event's row, for links from the summary.
pub fn row_anchor(event_id: &str) -> String {
    format!("ev-{event_id}")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---------- components ----------

/// A delay as text, with a "skew" hint when negative.
#[component]
fn DelayValue(ms: Option<i64>, test: &'static str, definition: &'static str) -> impl IntoView {
    let kind = delay_kind(ms);
    let title = match kind {
        DelayKind::Unknown => format!("{definition}\n{MISSING_DEFINITION}"),
        DelayKind::Skew => format!("{definition}\n{SKEW_HINT}"),
        _ => definition.to_string(),
    };
    view! {
        <span class=format!("tr-delay num {}", kind.class()) data-test=test data-delay-ms=ms.map(|m| m.to_string()) title=title>
            {delay_text(ms)}
            {(kind == DelayKind::Skew).then(|| view! { <span class="skew-hint">" skew"</span> })}
        </span>
    }
    .into_any()
}

/// The summary line: events, sagas, topics, span, max delays (linking to
/// their rows).
#[component]
pub fn TraceSummaryLine(summary: Memo<TraceSummary>) -> impl IntoView {
    let max_link = move |pick: fn(&TraceSummary) -> Option<(i64, String)>,
                         test: &'static str,
                         definition: &'static str| {
        move || match summary.with(pick) {
            Some((ms, id)) => view! {
                <a class="tr-jump" href=format!("#{}", percent_encode(&row_anchor(&id)))>
                    <DelayValue ms=Some(ms) test definition/>
                </a>
            }
            .into_any(),
            None => view! { <DelayValue ms=None test definition/> }.into_any(),
        }
    };
    view! {
        <dl class="tr-summary" data-test="trace-summary">
            <div class="tr-stat" title="Events of this trace">
                <dt>"events"</dt>
                <dd class="num" data-test="trace-summary-events">{move || summary.with(|s| s.events)}</dd>
            </div>
            <div class="tr-stat" title="Sagas with an event of this trace">
                <dt>"sagas"</dt>
                <dd class="num" data-test="trace-summary-sagas">{move || summary.with(|s| s.sagas)}</dd>
            </div>
            <div class="tr-stat" title="Distinct Kafka topics of its events">
                <dt>"topics"</dt>
                <dd class="num" data-test="trace-summary-topics">{move || summary.with(|s| s.topics)}</dd>
            </div>
            <div class="tr-stat" title="From the first to the last occurred_at of the trace">
                <dt>"span"</dt>
                <dd class="num" data-test="trace-summary-span">
                    {move || summary.with(|s| s.span_ms.map(format_duration_ms).unwrap_or_else(|| "—".into()))}
                </dd>
            </div>
            <div class="tr-stat">
                <dt title=PUBLISH_DEFINITION>"max publish delay"</dt>
                <dd class="num">{max_link(|s| s.max_publish.clone(), "trace-summary-max-publish", PUBLISH_DEFINITION)}</dd>
            </div>
            <div class="tr-stat">
                <dt title=INGEST_DEFINITION>"max ingest delay"</dt>
                <dd class="num">{max_link(|s| s.max_ingest.clone(), "trace-summary-max-ingest", INGEST_DEFINITION)}</dd>
            </div>
        </dl>
    }
    .into_any()
}

/// The saga legend: key and colour, type, status, link, events here.
#[component]
pub fn TraceLegend(
    sagas: RwSignal<Vec<SagaSummary>>,
    events: RwSignal<Vec<TimelineEvent>>,
) -> impl IntoView {
    let entries = move || {
        sagas.with(|sagas| {
            sagas
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let here = events.with(|e| e.iter().filter(|e| e.saga_id == s.saga_id).count());
                    (i, s.clone(), here)
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <ul class="tr-legend" data-test="trace-legend">
            <For
                each=entries
                key=|(i, s, here)| {
                    (*i, s.saga_id.clone(), s.status.as_str(), s.status_inferred, s.event_count, millis(&s.last_event_at), *here)
                }
                children=move |(i, saga, here)| {
                    let status = saga.status;
                    let failure = saga.failed_step.clone().map(|step| {
                        let reason = saga.failure_reason.clone().unwrap_or_default();
                        let title = reason.clone();
                        view! {
                            <span class="tr-legend-failure" title=title>
                                <strong class="failed-step">{step}</strong>
                                <span class="failure-reason">{reason}</span>
                            </span>
                        }
                    });
                    view! {
                        <li
                            class=format!("tr-legend-item saga-c{}", i % SAGA_COLOURS)
                            data-test="trace-legend-item"
                            data-saga-id=saga.saga_id.clone()
                            data-status=status.as_str()
                        >
                            <span class="tr-key" aria-label=format!("key {}", saga_key(i))>{saga_key(i)}</span>
                            <span class="tr-legend-type">{saga.saga_type.clone()}</span>
                            <StatusBadge status inferred=saga.status_inferred inferred_from=saga.inferred_from.clone() last_node=saga.last_node.clone() test="status-badge"/>
                            <IdLink id=saga.saga_id.clone() href=saga_href(&saga.saga_id) test="saga-link"/>
                            <span class="muted num" title="Events of this saga in this trace / all its events">
                                {format!("{here}/{} events", saga.event_count)}
                            </span>
                            <span class="muted" title="Saga duration">
                                <SagaDuration
                                    started_at=saga.started_at
                                    duration_ms=saga.duration_ms
                                    finished=status.is_finished()
                                />
                            </span>
                            {failure}
                        </li>
                    }
                }
            />
        </ul>
    }
    .into_any()
}

/// The column heads and the tick labels of the axis.
#[component]
pub fn TraceAxisHead(axis: Memo<TraceAxis>) -> impl IntoView {
    let ticks = move || {
        axis.with(|a| {
            a.ticks
                .iter()
                .map(|t| {
                    // Odd multiples of the step: hidden where the track is narrow
                    // (a container query), so labels never overlap.
                    let minor = if (t.offset_ms / a.step_ms) % 2 != 0 {
                        " minor"
                    } else {
                        ""
                    };
                    view! {
                        <span
                            class=format!("tr-tick-label{minor}")
                            style=format!("left:{:.3}%", t.percent)
                            data-test="trace-axis-tick"
                        >
                            {t.label.clone()}
                        </span>
                    }
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="tr-head" data-test="trace-axis" role="presentation">
            <span class="tr-h-offset" title="Offset of occurred_at from the first event of the trace">"offset"</span>
            <span class="tr-h-key" title="Saga (key in the legend)"><span class="visually-hidden">"saga"</span></span>
            <span>"phase"</span>
            <span>"step"</span>
            <span>"event"</span>
            <span title=HOP_DEFINITION>"topic hop"</span>
            <span class="tr-ticks" title="Time since the first occurred_at of the trace">{ticks}</span>
            <span class="num" title=PUBLISH_DEFINITION>"publish"</span>
            <span class="num" title=INGEST_DEFINITION>"ingest"</span>
        </div>
    }
    .into_any()
}

/// Faint vertical lines at the ticks, behind all rows.
#[component]
pub fn TraceGridLines(axis: Memo<TraceAxis>) -> impl IntoView {
    view! {
        <div class="tr-gridlines" aria-hidden="true">
            <span class="tr-gridlines-track">
                {move || axis.with(|a| {
                    a.ticks
                        .iter()
                        .map(|t| {
                            let zero = if t.offset_ms == 0 { "tr-gridline zero" } else { "tr-gridline" };
                            view! { <span class=zero style=format!("left:{:.3}%", t.percent)></span> }
                        })
                        .collect::<Vec<_>>()
                })}
            </span>
        </div>
    }
    .into_any()
}

fn hidden_or(segment: Option<Segment>) -> String {
    segment.map_or_else(|| "display:none".to_string(), |s| s.style())
}

/// One event on the trace axis; expands (`<details>`, no JavaScript
/// needed) to its facts, payload and headers.
#[component]
pub fn TraceRow(
    event: TimelineEvent,
    hop: Hop,
    /// Legend position of the event's saga (None: not listed yet).
    legend_index: Option<usize>,
    axis: Memo<TraceAxis>,
    summary: Memo<TraceSummary>,
    /// Arrived live: highlighted briefly.
    #[prop(optional)]
    fresh: bool,
) -> impl IntoView {
    let phase = event.phase;
    let publish = publish_delay_ms(&event);
    let ingest = ingest_delay_ms(&event);
    let event_id = event.event_id.clone();
    let class = {
        let mut class = format!("tr-row tone-{}", phase_tone(phase));
        match legend_index {
            Some(i) => class.push_str(&format!(" saga-c{}", i % SAGA_COLOURS)),
            None => class.push_str(" saga-unknown"),
        }
        if phase.is_compensation() {
            class.push_str(" compensation");
        }
        if phase.is_failure() {
            class.push_str(" failure");
        }
        if fresh {
            class.push_str(" fresh");
        }
        let event_id = event_id.clone();
        move || {
            let (max_p, max_i) = summary.with(|s| {
                (
                    s.max_publish
                        .as_ref()
                        .is_some_and(|(ms, id)| *ms > 0 && *id == event_id),
                    s.max_ingest
                        .as_ref()
                        .is_some_and(|(ms, id)| *ms > 0 && *id == event_id),
                )
            });
            let mut class = class.clone();
            if max_p {
                class.push_str(" max-publish");
            }
            if max_i {
                class.push_str(" max-ingest");
            }
            class
        }
    };
    let at = millis(&event.occurred_at);
    let offset_text = move || axis.with(|a| offset(at - a.origin_ms));
    let geometry = {
        let event = event.clone();
        Memo::new(move |_| axis.with(|a| a.geometry(&event)))
    };
    let key_text = legend_index.map_or_else(|| "?".to_string(), saga_key);
    let key_title = format!("Saga {}", event.saga_id);
    let hop_title = format!(
        "{HOP_DEFINITION}\n{} [partition {}] @ offset {}",
        event.topic, event.partition, event.offset
    );
    let hop_view = match &hop {
        Hop::Changed { from, to } => view! {
            <span class="hop-from">{from.clone()}</span>
            <span class="hop-arrow">" → "</span>
            <span class="hop-to">{to.clone()}</span>
        }
        .into_any(),
        Hop::First(topic) | Hop::Same(topic) => {
            view! { <span class="hop-to">{topic.clone()}</span> }.into_any()
        }
    };
    let track_title = format!(
        "occurred {} · published {} · ingested {}\npublish delay {} · ingest delay {}",
        clock(&event.occurred_at),
        event
            .published_at
            .as_ref()
            .map(clock)
            .unwrap_or_else(|| "—".into()),
        clock(&event.ingested_at),
        delay_text(publish),
        delay_text(ingest),
    );
    let publish_text = delay_text(publish);
    let ingest_text = delay_text(ingest);

    view! {
        <li
            class=class
            id=row_anchor(&event.event_id)
            data-test="trace-row"
            data-phase=phase.as_str()
            data-event-id=event.event_id.clone()
            data-saga-id=event.saga_id.clone()
            data-topic=event.topic.clone()
        >
            <details>
                <summary class="tr-summary-row">
                    <span class="tr-offset num mono" title=absolute(&event.occurred_at)>{offset_text}</span>
                    <span class="tr-key" title=key_title>{key_text}</span>
                    <span class="tr-phase"><PhaseLabel phase/></span>
                    <span class="tr-step mono" title=event.step.clone()>{event.step.clone()}</span>
                    <span class="tr-type mono" title=event.event_type.clone()>{event.event_type.clone()}</span>
                    <span class="tr-hop mono" data-test="trace-hop" data-hop=hop.kind() title=hop_title>{hop_view}</span>
                    <span class="tr-track" title=track_title>
                        <span
                            class=move || geometry.get().publish.map_or_else(String::new, |s| s.class("tr-seg-publish"))
                            style=move || hidden_or(geometry.get().publish)
                        ></span>
                        <span
                            class=move || geometry.get().ingest.map_or_else(String::new, |s| s.class("tr-seg-ingest"))
                            style=move || hidden_or(geometry.get().ingest)
                        ></span>
                        <span
                            class=move || geometry.get().unsplit.map_or_else(String::new, |s| s.class("tr-seg-unsplit"))
                            style=move || hidden_or(geometry.get().unsplit)
                        ></span>
                        <span class="tr-mark" style=move || format!("left:{:.3}%", geometry.get().mark)></span>
                    </span>
                    <DelayValue ms=publish test="trace-publish-delay" definition=PUBLISH_DEFINITION/>
                    <DelayValue ms=ingest test="trace-ingest-delay" definition=INGEST_DEFINITION/>
                    {event.error.clone().map(|error| view! {
                        <span class="tr-error" data-test="event-error">{error}</span>
                    })}
                </summary>
                <div class="tr-body">
                    <dl class="facts">
                        <dt>"Event id"</dt>
                        <dd class="mono">{event.event_id.clone()}</dd>
                        <dt>"Saga"</dt>
                        <dd>
                            <IdLink id=event.saga_id.clone() href=saga_href(&event.saga_id) test="saga-link"/>
                        </dd>
                        <dt>"Occurred"</dt>
                        <dd class="mono">
                            <time datetime=machine(&event.occurred_at)>{absolute(&event.occurred_at)}</time>
                        </dd>
                        <DeliveryFacts event=event.clone() publish=publish_text.clone() ingest=ingest_text.clone()/>
                        <dt>"Span"</dt>
                        <dd>
                            {match event.span_id.clone() {
                                Some(s) => view! { <IdText id=s/> }.into_any(),
                                None => view! { <span class="muted">"—"</span> }.into_any(),
                            }}
                        </dd>
                    </dl>
                    <PayloadAndHeaders payload=event.payload.clone() headers=event.headers.clone()/>
                </div>
            </details>
        </li>
    }
    .into_any()
}

/// What the bars mean, beside the panel title.
#[component]
pub fn TraceBarKey() -> impl IntoView {
    view! {
        <span class="tr-bar-key muted small" aria-label="Bar key">
            <span class="tr-bar-key-item" title="occurred_at"><span class="tr-swatch mark"></span>"occurred"</span>
            <span class="tr-bar-key-item" title=PUBLISH_DEFINITION><span class="tr-swatch publish"></span>"publish delay"</span>
            <span class="tr-bar-key-item" title=INGEST_DEFINITION><span class="tr-swatch ingest"></span>"ingest delay"</span>
            <span class="tr-bar-key-item" title="Negative delay: clock skew"><span class="tr-swatch skew"></span>"skew"</span>
            <span class="tr-bar-key-item" title=MISSING_DEFINITION><span class="tr-swatch unsplit"></span>"no Kafka time"</span>
        </span>
    }
    .into_any()
}

/// Events in legend order for a `<For>` key: the row is redrawn when its
/// hop or saga slot changes.
pub fn trace_rows(
    events: &[TimelineEvent],
    sagas: &[SagaSummary],
) -> Vec<(TimelineEvent, Hop, Option<usize>)> {
    let hops = hops(events);
    events
        .iter()
        .zip(hops)
        .map(|(e, hop)| (e.clone(), hop, saga_slot(sagas, &e.saga_id)))
        .collect()
}

/// Moves the events of saga `from` to saga `into` (after a live merge).
/// Returns how many moved.
pub fn reassign_saga(events: &mut [TimelineEvent], from: &str, into: &str) -> usize {
    let mut moved = 0;
    for event in events.iter_mut().filter(|e| e.saga_id == from) {
        event.saga_id = into.to_string();
        moved += 1;
    }
    moved
}

/// Count phrase for the page head, e.g. "2 sagas · 14 events".
pub fn counts_text(sagas: usize, events: usize) -> String {
    format!(
        "{} · {}",
        plural(sagas, "saga", "sagas"),
        plural(events, "event", "events")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;
    use sagascope_model::{Phase, SagaStatus};

    const T0: i64 = 1_800_000_000_000;

    fn at(ms: i64) -> Timestamp {
        from_millis(T0 + ms).unwrap()
    }

    fn event(
        id: &str,
        saga: &str,
        topic: &str,
        occurred: i64,
        published: Option<i64>,
        ingested: i64,
    ) -> TimelineEvent {
        TimelineEvent {
            event_id: id.into(),
            saga_id: saga.into(),
            phase: Phase::Event,
            step: None,
            event_type: "Thing".into(),
            occurred_at: at(occurred),
            published_at: published.map(at),
            ingested_at: at(ingested),
            topic: topic.into(),
            partition: 0,
            offset: 0,
            trace_id: Some("t".into()),
            span_id: None,
            headers: vec![],
            payload: serde_json::Value::Null,
            error: None,
        }
    }

    fn saga(id: &str) -> SagaSummary {
        SagaSummary {
            saga_id: id.into(),
            saga_type: "order".into(),
            status: SagaStatus::Completed,
            started_at: at(0),
            ended_at: Some(at(100)),
            duration_ms: Some(100),
            current_step: None,
            failed_step: None,
            failure_reason: None,
            trace_ids: vec!["t".into()],
            business_keys: vec![],
            more_trace_ids: false,
            more_business_keys: false,
            event_count: 1,
            last_event_at: at(100),
            status_inferred: false,
            inferred_from: None,
            last_node: None,
            waiting_on: None,
            missing_compensations: vec![],
        }
    }

    #[test]
    fn hops_follow_time_order_across_sagas() {
        let events = vec![
            event("a", "s1", "events.image", 0, Some(5), 20),
            event("b", "s2", "events.scan", 100, Some(105), 120),
            event("c", "s2", "events.scan", 200, Some(205), 220),
            event("d", "s1", "events.character", 300, None, 320),
        ];
        let texts: Vec<String> = hops(&events).iter().map(Hop::text).collect();
        assert_eq!(
            texts,
            [
                "events.image",
                "events.image → events.scan",
                "events.scan",
                "events.scan → events.character"
            ]
        );
        assert_eq!(hops(&events)[0].kind(), "first");
        assert_eq!(hops(&events)[2].kind(), "same");
        assert_eq!(hops(&events)[3].kind(), "changed");
    }

    #[test]
    fn hops_sort_by_occurred_at_whatever_the_input_order() {
        let events = vec![
            event("late", "s", "b", 500, None, 600),
            event("early", "s", "a", 0, None, 10),
        ];
        let hops = hops(&events);
        assert_eq!(hops[1], Hop::First("a".into()));
        assert_eq!(
            hops[0],
            Hop::Changed {
                from: "a".into(),
                to: "b".into()
            }
        );
        assert!(super::hops(&[]).is_empty());
    }

    #[test]
    fn delays_split_at_the_kafka_timestamp() {
        let e = event("a", "s", "t", 0, Some(35), 155);
        assert_eq!(publish_delay_ms(&e), Some(35));
        assert_eq!(ingest_delay_ms(&e), Some(120));
        assert_eq!(delay_text(publish_delay_ms(&e)), "35 ms");
        assert_eq!(delay_text(Some(2_400)), "2.4 s");
        assert_eq!(delay_kind(Some(35)), DelayKind::Normal);
        assert_eq!(delay_kind(Some(SLOW_DELAY_MS)), DelayKind::Slow);
    }

    #[test]
    fn missing_published_at_reads_as_a_dash() {
        let e = event("a", "s", "t", 0, None, 155);
        assert_eq!(publish_delay_ms(&e), None);
        assert_eq!(ingest_delay_ms(&e), None);
        assert_eq!(delay_text(None), "—");
        assert_eq!(delay_kind(None), DelayKind::Unknown);
    }

    #[test]
    fn negative_delays_are_shown_as_skew_not_hidden() {
        // The broker's clock is 12 ms behind the producer's.
        let e = event("a", "s", "t", 100, Some(88), 150);
        assert_eq!(publish_delay_ms(&e), Some(-12));
        assert_eq!(delay_text(Some(-12)), "−12 ms");
        assert_eq!(delay_kind(Some(-12)), DelayKind::Skew);
        assert_eq!(ingest_delay_ms(&e), Some(62));
    }

    #[test]
    fn delays_compare_whole_milliseconds() {
        // occurred 12.308402 s, Kafka timestamp 12.308 s (truncated): not skew.
        let occurred = at(12_308) + chrono::Duration::microseconds(402);
        let published = at(12_308);
        assert_eq!(delta_ms(&occurred, &published), 0);
        let ingested = at(12_564) + chrono::Duration::microseconds(138);
        assert_eq!(delta_ms(&published, &ingested), 256);
        assert_eq!(delta_ms(&ingested, &published), -256);
    }

    #[test]
    fn tick_labels_are_exact_durations() {
        assert_eq!(tick_step(0, 1_000), (200, 0, 1_000));
        assert_eq!(tick_step(0, 1_400), (500, 0, 1_500));
        assert_eq!(tick_step(0, 900), (200, 0, 1_000));
        // 250 ms steps would label 1 250 ms "1.2 s": skipped.
        assert_eq!(tick_step(0, 1_600), (500, 0, 2_000));
        assert_eq!(tick_step(0, 7), (2, 0, 8));
        assert_eq!(tick_step(-30, 100), (50, -50, 100));
        assert_eq!(tick_step(-30, 60), (20, -40, 60));
        assert_eq!(tick_step(0, 95_000), (30_000, 0, 120_000));
        let (step, start, end) = tick_step(0, 40 * 86_400_000);
        assert!(step % 86_400_000 == 0 && start == 0 && end >= 40 * 86_400_000);
        assert!((end - start) / step <= MAX_INTERVALS);
    }

    #[test]
    fn the_axis_starts_at_the_first_event_and_labels_ticks() {
        let events = vec![
            event("a", "s", "t", 0, Some(10), 30),
            event("b", "s", "t", 900, Some(930), 1_000),
        ];
        let axis = TraceAxis::new(&events);
        assert_eq!(axis.origin_ms, T0);
        assert_eq!(axis.start_ms, T0);
        assert_eq!(axis.end_ms, T0 + 1_000);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            ["+0 ms", "+200 ms", "+400 ms", "+600 ms", "+800 ms", "+1.0 s"]
        );
        assert_eq!(axis.ticks[0].percent, 0.0);
        assert_eq!(axis.ticks[5].percent, 100.0);
        assert_eq!(axis.percent(T0 + 500), 50.0);
    }

    #[test]
    fn the_axis_covers_delays_past_the_last_event_within_slack() {
        let events = vec![
            event("a", "s", "t", 0, Some(100), 300),
            event("b", "s", "t", 200, Some(1_900), 5_000),
        ];
        let axis = TraceAxis::new(&events);
        // Span 200 ms: delays may stretch the axis by 1 s at most.
        assert!(axis.end_ms - axis.origin_ms >= 1_200);
        assert!(axis.end_ms - axis.origin_ms < 1_600);
        let g = axis.geometry(&events[1]);
        assert!(g.publish.unwrap().clipped_end);
        // The ingest starts beyond the drawn domain: not drawn.
        assert_eq!(g.ingest, None);
    }

    #[test]
    fn a_negative_delay_extends_the_axis_before_zero() {
        let events = vec![event("a", "s", "t", 0, Some(-40), 60)];
        let axis = TraceAxis::new(&events);
        assert!(axis.start_ms <= T0 - 40);
        assert_eq!(
            axis.ticks.iter().find(|t| t.offset_ms == 0).unwrap().label,
            "+0 ms"
        );
        assert!(axis.ticks[0].label.starts_with('−'));
        let g = axis.geometry(&events[0]);
        let publish = g.publish.unwrap();
        assert!(publish.negative);
        assert!(publish.left < g.mark);
        assert!((publish.left + publish.width - g.mark).abs() < 1e-9);
        let ingest = g.ingest.unwrap();
        assert!(!ingest.negative);
        assert!((ingest.left - publish.left).abs() < 1e-9);
    }

    #[test]
    fn row_geometry_chains_occurred_published_ingested() {
        let events = vec![
            event("a", "s", "t", 0, Some(250), 750),
            event("b", "s", "t", 1_000, None, 1_000),
        ];
        let axis = TraceAxis::new(&events);
        assert_eq!((axis.start_ms, axis.end_ms), (T0, T0 + 1_000));
        let g = axis.geometry(&events[0]);
        assert_eq!(g.mark, 0.0);
        let p = g.publish.unwrap();
        assert_eq!((p.left, p.width), (0.0, 25.0));
        let i = g.ingest.unwrap();
        assert_eq!((i.left, i.width), (25.0, 50.0));
        assert_eq!(g.unsplit, None);
        assert_eq!(p.style(), "left:0.000%;width:25.000%");
        assert_eq!(p.class("tr-seg-publish"), "tr-seg tr-seg-publish");
        // No Kafka time and no delay: nothing but the mark.
        let g = axis.geometry(&events[1]);
        assert_eq!(g.mark, 100.0);
        assert_eq!((g.publish, g.ingest, g.unsplit), (None, None, None));
    }

    #[test]
    fn tiny_delays_stay_visible() {
        let events = vec![
            event("a", "s", "t", 0, Some(1), 2),
            event("b", "s", "t", 10_000, None, 10_000),
        ];
        let axis = TraceAxis::new(&events);
        let p = axis.geometry(&events[0]).publish.unwrap();
        assert!(p.width >= MIN_SEGMENT_PERCENT);
    }

    #[test]
    fn an_empty_trace_still_has_an_axis() {
        let axis = TraceAxis::new(&[]);
        assert!(axis.end_ms > axis.start_ms);
        assert_eq!(axis.ticks.first().map(|t| t.label.as_str()), Some("+0 ms"));
        assert_eq!(summarize(&[], &[]), TraceSummary::default());
    }

    #[test]
    fn the_summary_counts_and_finds_the_slowest_hops() {
        let events = vec![
            event("a", "s1", "events.image", 0, Some(30), 80),
            event("b", "s2", "events.scan", 400, Some(900), 950),
            event("c", "s2", "events.scan", 1_200, None, 1_400),
            event("d", "s2", "events.my", 2_400, Some(2_410), 2_700),
        ];
        let s = summarize(&events, &[saga("s1"), saga("s2"), saga("s3")]);
        assert_eq!(s.events, 4);
        assert_eq!(s.sagas, 3);
        assert_eq!(s.topics, 3);
        assert_eq!(s.span_ms, Some(2_400));
        assert_eq!(s.max_publish, Some((500, "b".into())));
        assert_eq!(s.max_ingest, Some((290, "d".into())));
    }

    #[test]
    fn saga_keys_and_slots() {
        assert_eq!(saga_key(0), "A");
        assert_eq!(saga_key(25), "Z");
        assert_eq!(saga_key(26), "AA");
        assert_eq!(saga_key(27), "AB");
        let sagas = [saga("x"), saga("y")];
        assert_eq!(saga_slot(&sagas, "y"), Some(1));
        assert_eq!(saga_slot(&sagas, "z"), None);
        let rows = trace_rows(&[event("a", "y", "t", 0, None, 0)], &sagas);
        assert_eq!(rows[0].2, Some(1));
        assert_eq!(counts_text(1, 2), "1 saga · 2 events");
    }

    #[test]
    fn a_merge_moves_the_events_to_the_surviving_saga() {
        let mut events = vec![
            event("a", "old", "t", 0, None, 0),
            event("b", "keep", "t", 1, None, 1),
            event("c", "old", "t", 2, None, 2),
        ];
        assert_eq!(reassign_saga(&mut events, "old", "keep"), 2);
        assert!(events.iter().all(|e| e.saga_id == "keep"));
        assert_eq!(reassign_saga(&mut events, "old", "keep"), 0);
    }
}
