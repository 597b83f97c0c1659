//! Pieces of the overview and the lag page: number formats, the metric
//! definitions shown on hover, drill-down links to the saga list, the
//! window picker, the periodic live refresh, the cards at the top, the
//! alerts, and the lag tables and charts.

use leptos::prelude::*;
use sagascope_model::{
    format_duration_ms, percent_encode, Alert, AlertLevel, CatchUpState, DlqSummary, GroupLag,
    IngestCatchUp, IngestHealth, LagPoint, MetricsWindow, OverviewMetrics, Percentiles,
    SagaTypeMetrics, Timestamp, TopicLag,
};

use crate::components::charts::{ChartLegend, ChartSeries, LineChart, SeriesStyle, Sparkline};
use crate::components::states::EmptyState;
use crate::time::{absolute, machine};

/// How often a live overview fetches its figures again.
pub const REFRESH_SECONDS: u64 = 5;

// ---------- definitions (shown on hover) ----------

/// Every figure's definition, for `title` attributes.
pub mod defs {
    pub const COHORT: &str =
        "Counts are a cohort: the sagas that started in the window, by their current status.";
    pub const STARTED: &str = "Started = sagas whose first event falls in the window (the cohort every other count describes)";
    pub const RUNNING: &str =
        "Running = sagas started in the window that are still running or compensating now";
    pub const COMPLETED: &str = "Completed = sagas started in the window that completed";
    pub const FAILED: &str = "Failed = sagas started in the window whose current status is failed";
    pub const COMPENSATED: &str =
        "Compensated = sagas started in the window that failed and were compensated";
    pub const COMPENSATION_FAILED: &str =
        "Compensation failed = sagas started in the window whose compensation failed (needs a human)";
    pub const TIMED_OUT: &str = "Timed out = sagas started in the window that ended by a timeout";
    pub const STALLED: &str = "Stalled = sagas started in the window, running or compensating, with no event for longer than their type's timeout";
    pub const OUTCOMES: &str =
        "Current status of the sagas started in the window, as shares of started";
    pub const FAILURE_RATE: &str =
        "Failure rate = failed / finished, of the sagas started in the window";
    pub const COMPENSATION_RATE: &str = "Compensation rate = sagas that began compensating / finished, of the sagas started in the window";
    pub const FINISHED: &str =
        "Finished = completed + failed + compensated + compensation failed + timed out";
    pub const P50: &str = "Duration p50 = median time from the first to the last event of the finished sagas started in the window (nearest rank; at most 10 % low)";
    pub const P95: &str = "Duration p95 = 95th percentile of the time from the first to the last event of the finished sagas started in the window (nearest rank; at most 10 % low)";
    pub const P99: &str = "Duration p99 = 99th percentile of the time from the first to the last event of the finished sagas started in the window (nearest rank; at most 10 % low)";
    pub const THROUGHPUT: &str = "Throughput = sagas started per minute, averaged over the window";
    pub const STEP_EXECUTIONS: &str =
        "Executions = sagas started in the window that reached this step";
    pub const STEP_FAILURES: &str = "Failures = of those, the sagas in which this step failed";
    pub const STEP_FAILURE_RATE: &str = "Step failure rate = failures / executions of this step";
    pub const STEP_P50: &str =
        "Step p50 = median time from the step's start to its end event (nearest rank)";
    pub const STEP_P95: &str =
        "Step p95 = 95th percentile of the time from the step's start to its end event";
    pub const RELAY_LAG: &str =
        "Outbox relay lag = Kafka timestamp − outbox created_at of each event read from the topic";
    pub const CONSUMER_LAG: &str =
        "Consumer lag = ingested at − Kafka timestamp (how far sagascope's own reading is behind), of the messages produced after it got their partition";
    pub const CATCH_UP: &str = "Catch-up = the messages that were already in Kafka when sagascope's consumer got its partitions (history read at start, after a restart or a rebalance). Their ingested − Kafka time is their age, not a delay: it is not consumer lag and raises no alert";
    pub const LAG_P50: &str = "p50 = median over the events of the window";
    pub const LAG_P95: &str = "p95 = 95th percentile over the events of the window";
    pub const LAG_MAX: &str = "max = the largest lag of any event in the window";
    pub const TOPIC_EVENTS: &str = "Events ingested from the topic in the window";
    pub const GROUP_LAG: &str = "Consumer-group lag = high watermark − committed offset, per partition, for the groups named in --watch-groups";
    pub const HIGH_WATERMARK: &str = "High watermark = offset of the next message to be written";
    pub const COMMITTED: &str = "Committed = the group's committed offset (— when it committed nothing; the lag then counts from the low watermark)";
    pub const EVENTS_PER_SECOND: &str = "Events ingested per second, averaged over the window";
    pub const ERRORS_PER_SECOND: &str =
        "Messages per second that could not be decoded (ingest errors), averaged over the window";
    pub const OWN_LAG: &str =
        "sagascope's own consumer-group lag in messages (high watermark − committed), summed over partitions";
    pub const WORST_FAILURE: &str =
        "The saga type with the highest failure rate (failed / finished) in the window";
    pub const WORST_LAG: &str =
        "The topic with the largest p95 lag (relay or consumer) in the window";
    pub const DLQ: &str = "Dead letters waiting in the dead-letter topics";
    pub const DLQ_DEPTH: &str = "DLQ depth: dead letters in state new or retry_requested, over every DLQ topic (the number on the card; the worst topic is named)";
    pub const DLQ_AGE: &str = "Age of the oldest open dead letter: now minus its DLQ timestamp";
}

// ---------- number formats ----------

/// `12,345`.
pub fn fmt_count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as a percentage: `12.3 %`, `0 %`, `100 %`.
pub fn fmt_pct(ratio: f64) -> String {
    let pct = ratio * 100.0;
    if pct == 0.0 {
        "0 %".to_string()
    } else if (99.95..=100.0).contains(&pct) {
        "100 %".to_string()
    } else if pct < 0.1 {
        "<0.1 %".to_string()
    } else {
        format!("{pct:.1} %")
    }
}

/// A rate, `—` when nothing finished.
pub fn fmt_rate(ratio: Option<f64>) -> String {
    ratio.map(fmt_pct).unwrap_or_else(|| "—".to_string())
}

/// A per-minute or per-second figure with sensible precision.
pub fn fmt_per(value: f64) -> String {
    if value == 0.0 {
        "0".to_string()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else if value >= 0.01 {
        format!("{value:.2}")
    } else {
        "<0.01".to_string()
    }
}

/// A duration in ms, `—` without samples.
pub fn fmt_ms(ms: Option<i64>) -> String {
    ms.map(format_duration_ms)
        .unwrap_or_else(|| "—".to_string())
}

/// For chart axes: a duration from a float of ms.
pub fn fmt_ms_f(ms: f64) -> String {
    format_duration_ms(ms.round() as i64)
}

/// For chart axes: a count.
pub fn fmt_count_f(n: f64) -> String {
    fmt_per(n)
}

// ---------- drill-down links ----------

/// The status lists behind each count of the overview.
pub mod statuses {
    pub const RUNNING: &str = "running,compensating";
    pub const FINISHED: &str = "completed,failed,compensated,compensation_failed,timed_out";
    pub const BEGAN_COMPENSATING: &str = "compensating,compensated,compensation_failed";
    /// Outcomes a failed step leads to.
    pub const NOT_COMPLETED: &str =
        "failed,compensating,compensated,compensation_failed,timed_out,stalled";
}

/// RFC 3339 in whole seconds, UTC (`2026-11-21T10:00:00Z`).
pub fn rfc3339(at: &Timestamp) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The time range of the overview, for drill-down links.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    pub since: String,
    pub until: String,
}

impl Cohort {
    pub fn of(overview: &OverviewMetrics) -> Cohort {
        Cohort {
            since: rfc3339(&overview.from),
            until: rfc3339(&overview.to),
        }
    }

    /// `/sagas?saga_type=…&status=…&since=…&until=…`: the sagas behind a
    /// number. Status lists and times keep their readable `,` and `:`.
    pub fn href(&self, saga_type: Option<&str>, status: Option<&str>) -> String {
        let mut query = Vec::with_capacity(4);
        if let Some(t) = saga_type {
            query.push(format!("saga_type={}", percent_encode(t)));
        }
        if let Some(s) = status {
            query.push(format!("status={s}"));
        }
        query.push(format!("since={}", self.since));
        query.push(format!("until={}", self.until));
        format!("/sagas?{}", query.join("&"))
    }
}

// ---------- window picker ----------

/// The window of the query string (`?window=`), when it is valid.
pub fn parse_window(text: &str) -> Option<MetricsWindow> {
    MetricsWindow::parse(text).ok()
}

/// Links `15m 1h 6h 24h 7d`: plain GET links, so they work without
/// JavaScript and every view is a shareable URL.
#[component]
pub fn WindowPicker(
    /// The page's path (`/` or `/lag`).
    base: &'static str,
    /// The raw `window` query value.
    current: Memo<String>,
) -> impl IntoView {
    let links = MetricsWindow::ALL
        .into_iter()
        .map(|w| {
            let active = move || current.with(|c| parse_window(c) == Some(w));
            let label = w.as_str();
            view! {
                <a
                    href=format!("{base}?window={label}")
                    class=move || if active() { "window-link active" } else { "window-link" }
                    aria-current=move || active().then_some("page")
                    data-test=format!("overview-window-{label}")
                    title=format!("Sagas started in the last {}", window_words(w))
                >
                    {label}
                </a>
            }
        })
        .collect_view();
    view! {
        <nav class="window-picker" aria-label="Time window" data-test="window-picker">
            <span class="window-picker-label">"Window"</span>
            {links}
        </nav>
    }
}

pub fn window_words(w: MetricsWindow) -> &'static str {
    match w {
        MetricsWindow::Minutes15 => "15 minutes",
        MetricsWindow::Hour1 => "hour",
        MetricsWindow::Hours6 => "6 hours",
        MetricsWindow::Hours24 => "24 hours",
        MetricsWindow::Days7 => "7 days",
    }
}

/// "10:00 – now UTC · 2 min buckets": what the figures cover.
#[component]
pub fn WindowCaption(
    overview: OverviewMetrics,
    /// Figures of events (lag) rather than of the sagas started.
    #[prop(optional)]
    events: bool,
) -> impl IntoView {
    let (what, def) = if events {
        (
            "Events ingested since",
            "Lag figures of the events ingested in the window",
        )
    } else {
        ("Sagas started since", defs::COHORT)
    };
    let bucket = format_duration_ms(overview.point_seconds * 1000)
        .replace(" 0 s", "")
        .replace(" 0 m", "");
    let from = absolute(&overview.from);
    let to = absolute(&overview.to);
    view! {
        <p class="window-caption muted" data-test="window-caption" data-window=overview.window.as_str()>
            <span title=def>
                {format!("{what} {} ", from.trim_end_matches(".000 UTC"))}
                <span class="muted">"UTC"</span>
            </span>
            <span class="sep" aria-hidden="true">" · "</span>
            <span title=format!("The window ends at {to}, the end of the current bucket")>
                {format!("{bucket} buckets")}
            </span>
        </p>
    }
}

// ---------- live refresh ----------

/// A counter that goes up every [`REFRESH_SECONDS`] while live updates are
/// on (and the tab is visible), and at once when they are switched back
/// on. Key a `Resource` on it to refetch. It also drives the top bar's live
/// indicator while the page is shown. Does nothing on the server.
pub fn use_live_refresh() -> RwSignal<u64> {
    let tick = RwSignal::new(0u64);
    #[cfg(feature = "hydrate")]
    browser::start(tick);
    tick
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::time::Duration;

    use leptos::prelude::*;

    use super::REFRESH_SECONDS;
    use crate::state::{ui_state, StreamStatus};

    pub(super) fn start(tick: RwSignal<u64>) {
        let ui = ui_state();
        let id = ui.subscription.get_untracked() + 1;
        ui.subscription.set(id);
        let mine = move || ui.subscription.try_get_untracked() == Some(id);

        Effect::new(move |previous: Option<bool>| {
            let live = ui.live.get();
            if mine() {
                ui.stream.set(if live {
                    StreamStatus::Live
                } else {
                    StreamStatus::Paused
                });
            }
            if live && previous == Some(false) {
                tick.update(|n| *n += 1);
            }
            live
        });

        let handle = set_interval_with_handle(
            move || {
                if ui.live.try_get_untracked() == Some(true) && !document().hidden() {
                    tick.try_update(|n| *n += 1);
                }
            },
            Duration::from_secs(REFRESH_SECONDS),
        )
        .ok();

        on_cleanup(move || {
            if let Some(handle) = handle {
                handle.clear();
            }
            if mine() {
                ui.stream.try_set(StreamStatus::Off);
            }
        });
    }
}

// ---------- cards ----------

fn level_class(level: AlertLevel) -> &'static str {
    match level {
        AlertLevel::Ok => "level-ok",
        AlertLevel::Warning => "level-warning",
        AlertLevel::Critical => "level-critical",
    }
}

/// The larger of a topic's relay and consumer p95.
fn worst_lag_ms(topic: &TopicLag) -> Option<i64> {
    topic.lag.relay.p95_ms.max(topic.lag.consumer.p95_ms)
}

/// Bucket start times of a series.
pub fn times_of<T>(points: &[T], at: impl Fn(&T) -> Timestamp) -> Vec<Timestamp> {
    points.iter().map(at).collect()
}

/// The worst offenders, DLQ, ingest health and the alerts.
#[component]
pub fn TopCards(overview: OverviewMetrics) -> impl IntoView {
    let cohort = Cohort::of(&overview);
    let point_seconds = overview.point_seconds;
    let worst_type = overview
        .saga_types
        .iter()
        .filter(|t| t.failure_rate.is_some())
        .max_by(|a, b| {
            a.failure_rate
                .partial_cmp(&b.failure_rate)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.counts.failed.cmp(&b.counts.failed))
        })
        .cloned();
    let worst_topic = overview
        .topics
        .iter()
        .filter(|t| worst_lag_ms(t).is_some())
        .max_by_key(|t| worst_lag_ms(t))
        .cloned();

    view! {
        <div class="ov-top">
            <div class="ov-cards">
                <WorstFailureCard worst=worst_type cohort=cohort.clone() point_seconds/>
                <WorstLagCard worst=worst_topic point_seconds/>
                <DlqCard dlq=overview.dlq.clone()/>
                <IngestCard ingest=overview.ingest.clone() point_seconds/>
                <crate::components::compensation_card::IncompleteCompensationCard overview=overview.clone()/>
            </div>
            <AlertList alerts=overview.alerts.clone() cohort/>
        </div>
    }
    .into_any()
}

#[component]
fn WorstFailureCard(
    worst: Option<SagaTypeMetrics>,
    cohort: Cohort,
    point_seconds: i64,
) -> impl IntoView {
    let Some(t) = worst else {
        return view! {
            <article class="ov-card level-none" data-test="worst-failure">
                <h2 class="ov-card-title" title=defs::WORST_FAILURE>"Highest failure rate"</h2>
                <p class="ov-card-value muted">"—"</p>
                <p class="ov-card-sub muted">"No saga started in this window has finished yet."</p>
            </article>
        }
        .into_any();
    };
    let failed_href = cohort.href(Some(&t.saga_type), Some("failed"));
    let finished_href = cohort.href(Some(&t.saga_type), Some(statuses::FINISHED));
    let values = t.series.iter().map(|p| p.failure_rate).collect::<Vec<_>>();
    let times = times_of(&t.series, |p| p.at);
    view! {
        <article class=format!("ov-card {}", level_class(t.level)) data-test="worst-failure" data-saga-type=t.saga_type.clone()>
            <h2 class="ov-card-title" title=defs::WORST_FAILURE>"Highest failure rate"</h2>
            <p class="ov-card-value">
                <a href=failed_href.clone() title=defs::FAILURE_RATE class="tone-failed-text">{fmt_rate(t.failure_rate)}</a>
                <span class="ov-card-subject mono">{t.saga_type.clone()}</span>
            </p>
            <p class="ov-card-sub">
                <a href=failed_href title=defs::FAILED>{fmt_count(t.counts.failed)}" failed"</a>
                " of "
                <a href=finished_href title=defs::FINISHED>{fmt_count(t.counts.finished)}" finished"</a>
            </p>
            <Sparkline
                values
                times
                point_seconds
                label="failure rate"
                format=fmt_pct
                tone="tone-failed"
                floor=0.05
                stretch=true
            />
        </article>
    }
    .into_any()
}

#[component]
fn WorstLagCard(worst: Option<TopicLag>, point_seconds: i64) -> impl IntoView {
    let Some(topic) = worst else {
        return view! {
            <article class="ov-card level-none" data-test="worst-lag">
                <h2 class="ov-card-title" title=defs::WORST_LAG>"Largest lag"</h2>
                <p class="ov-card-value muted">"—"</p>
                <p class="ov-card-sub muted">"No event with lag figures in this window."</p>
            </article>
        }
        .into_any();
    };
    let relay_worse = topic.lag.relay.p95_ms >= topic.lag.consumer.p95_ms;
    let (kind, def) = if relay_worse {
        ("relay", defs::RELAY_LAG)
    } else {
        ("consumer", defs::CONSUMER_LAG)
    };
    let values = topic
        .series
        .iter()
        .map(|p| {
            p.lag
                .relay
                .p95_ms
                .max(p.lag.consumer.p95_ms)
                .map(|v| v as f64)
        })
        .collect::<Vec<_>>();
    let times = times_of(&topic.series, |p| p.at);
    view! {
        <article class=format!("ov-card {}", level_class(topic.level)) data-test="worst-lag" data-topic=topic.topic.clone()>
            <h2 class="ov-card-title" title=defs::WORST_LAG>"Largest lag"</h2>
            <p class="ov-card-value">
                <a href=format!("#{}", topic_anchor(&topic.topic)) title=format!("{kind} lag p95 — {def}")>{fmt_ms(worst_lag_ms(&topic))}</a>
                <span class="ov-card-subject mono" title=topic.topic.clone()>{topic.topic.clone()}</span>
            </p>
            <p class="ov-card-sub">
                <span title=defs::RELAY_LAG>"relay p95 "{fmt_ms(topic.lag.relay.p95_ms)}</span>
                " · "
                <span title=defs::CONSUMER_LAG>"consumer p95 "{fmt_ms(topic.lag.consumer.p95_ms)}</span>
            </p>
            <Sparkline
                values
                times
                point_seconds
                label="worst p95 lag"
                format=fmt_ms_f
                tone="tone-lag"
                floor=1000.0
                stretch=true
            />
        </article>
    }
    .into_any()
}

/// Open dead letters over every DLQ topic, the oldest one's age and the
/// worst topic's `dlq_depth` level; "Not available" when no DLQ topics are
/// consumed. The depth links to `/dlq`, the worst topic to its dead
/// letters, and the deepest failure group to its list.
#[component]
pub fn DlqCard(dlq: DlqSummary) -> impl IntoView {
    if !dlq.available && dlq.topics.is_empty() {
        return view! {
            <article class="ov-card level-none unavailable" data-test="dlq-card" data-available="false">
                <h2 class="ov-card-title" title=defs::DLQ>"Dead letters"</h2>
                <p class="ov-card-value muted">"Not available"</p>
                <p class="ov-card-sub muted">{dlq.note}</p>
            </article>
        }
        .into_any();
    }
    let worst = dlq.topics.first().map(|t| t.topic.clone());
    let groups = Resource::new(
        || (),
        |_| {
            crate::server_fns::fetch_dead_letter_groups(
                crate::components::dead_letter::DlqParams::default(),
            )
        },
    );
    // A live refresh makes a new card: until its groups load, it shows the
    // line the previous card showed, so the line does not flicker.
    let deepest = view! {
        <Suspense fallback=|| deepest_cache::last().map(|g| view! { <DeepestGroupLine group=g/> })>
            {move || Suspend::new(async move {
                let group = groups
                    .await
                    .ok()
                    .and_then(|g| g.groups.into_iter().find(|g| g.depth > 0))
                    .map(DeepestGroup::of);
                deepest_cache::remember(group.clone());
                group.map(|group| view! { <DeepestGroupLine group/> })
            })}
        </Suspense>
    };
    view! {
        <article
            class=format!("ov-card {}", level_class(dlq.level))
            data-test="dlq-card"
            data-available=dlq.available.to_string()
            data-level=dlq.level.as_str()
        >
            <h2 class="ov-card-title" title=defs::DLQ><a href="/dlq" data-test="dlq-card-link">"Dead letters"</a></h2>
            <p class="ov-card-value">
                <a href="/dlq?state=new%2Cretry_requested" data-test="dlq-depth" title=defs::DLQ_DEPTH>{fmt_count(dlq.depth)}</a>
                {worst.map(|t| {
                    let title = format!("The deepest DLQ topic: {t}");
                    let href = format!("/dlq?topic={}", percent_encode(&t));
                    view! { <a class="ov-card-subject mono" href=href title=title data-test="dlq-card-topic">{t}</a> }
                })}
            </p>
            <p class="ov-card-sub">
                <span title=defs::DLQ_AGE>"oldest "<span data-test="dlq-oldest-age">{fmt_ms(dlq.oldest_age_ms)}</span></span>
                " · "
                {format!("{} topic{}", dlq.topics.len(), if dlq.topics.len() == 1 { "" } else { "s" })}
            </p>
            {deepest}
            {(!dlq.note.is_empty()).then(|| view! { <p class="ov-card-sub muted">{dlq.note.clone()}</p> })}
        </article>
    }
    .into_any()
}

/// The deepest failure group, as the DLQ card links to it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepestGroup {
    pub href: String,
    pub class: String,
    pub title: String,
    pub depth: i64,
}

impl DeepestGroup {
    fn of(group: sagascope_model::DeadLetterGroup) -> DeepestGroup {
        DeepestGroup {
            href: format!(
                "/dlq?failure_group={}",
                percent_encode(&group.failure_group)
            ),
            class: group
                .exception_class
                .as_deref()
                .map(crate::components::dead_letter::short_class)
                .unwrap_or("unknown exception")
                .to_string(),
            title: format!(
                "Deepest failure group: {} dead letters waiting — {}",
                group.depth, group.failure_group
            ),
            depth: group.depth,
        }
    }
}

#[component]
fn DeepestGroupLine(group: DeepestGroup) -> impl IntoView {
    view! {
        <p class="ov-card-sub ov-card-group">
            <span class="muted">"deepest "</span>
            <a href=group.href data-test="dlq-card-group" title=group.title class="mono">{group.class}</a>
            <span class="muted">{format!(" · {}", fmt_count(group.depth))}</span>
        </p>
    }
}

/// The last deepest group shown, in the browser only (the server renders
/// each page with its data and keeps nothing between requests).
mod deepest_cache {
    use super::DeepestGroup;

    #[cfg(feature = "hydrate")]
    thread_local! {
        static LAST: std::cell::RefCell<Option<DeepestGroup>> = const { std::cell::RefCell::new(None) };
    }

    pub fn last() -> Option<DeepestGroup> {
        #[cfg(feature = "hydrate")]
        {
            LAST.with(|last| last.borrow().clone())
        }
        #[cfg(not(feature = "hydrate"))]
        {
            None
        }
    }

    pub fn remember(group: Option<DeepestGroup>) {
        #[cfg(feature = "hydrate")]
        LAST.with(|last| *last.borrow_mut() = group);
        #[cfg(not(feature = "hydrate"))]
        let _ = group;
    }
}

fn ingest_level(state: &str) -> &'static str {
    match state {
        "running" => "level-ok",
        "degraded" => "level-warning",
        "stopped" => "level-critical",
        _ => "level-none",
    }
}

#[component]
pub fn IngestCard(ingest: IngestHealth, point_seconds: i64) -> impl IntoView {
    let per_second = point_seconds.max(1) as f64;
    let values = ingest
        .series
        .iter()
        .map(|p| Some(p.events as f64 / per_second))
        .collect::<Vec<_>>();
    let times = times_of(&ingest.series, |p| p.at);
    let state = ingest.state.replace('_', " ");
    let own_lag = match ingest.own_lag {
        Some(lag) => fmt_count(lag),
        None => "unknown".to_string(),
    };
    view! {
        <article class=format!("ov-card {}", ingest_level(&ingest.state)) data-test="ingest-health" data-state=ingest.state.clone()>
            <h2 class="ov-card-title">
                <a href="/ingest" title="Ingest health: the state of sagascope's own Kafka consumer">"Ingest"</a>
                <span class=format!("ov-state state-{}", ingest.state) title=ingest.reason.clone().unwrap_or_default()>{state}</span>
            </h2>
            <dl class="ov-figures">
                <div>
                    <dt title=defs::EVENTS_PER_SECOND>"events/s"</dt>
                    <dd data-test="ingest-events-per-second">{fmt_per(ingest.events_per_second)}</dd>
                </div>
                <div>
                    <dt title=defs::ERRORS_PER_SECOND>"errors/s"</dt>
                    <dd>
                        <a
                            href="/ingest"
                            class={if ingest.errors > 0 { "tone-failed-text" } else { "" }}
                            title=format!("{} ingest errors in the window — open the ingest errors", fmt_count(ingest.errors))
                        >
                            {fmt_per(ingest.errors_per_second)}
                        </a>
                    </dd>
                </div>
                <div>
                    <dt title=defs::OWN_LAG>"own lag"</dt>
                    <dd title="messages">{own_lag}</dd>
                </div>
            </dl>
            {ingest.reason.clone().map(|r| view! { <p class="ov-card-sub muted">{r}</p> })}
            {ingest.catchup.clone().map(|catch_up| view! { <CatchUpLine catch_up/> }.into_any())}
            <Sparkline
                values
                times
                point_seconds
                label="events per second"
                format=fmt_per
                tone="tone-running"
                floor=1.0
                stretch=true
            />
        </article>
    }
}

/// The consumer's catch-up on the ingest card: calm information, never a
/// level ("Caught up with 1,234 messages of history in 41.0 s at 12:00:03
/// UTC", "Catching up: 120 messages behind").
#[component]
fn CatchUpLine(catch_up: IngestCatchUp) -> impl IntoView {
    let state = match catch_up.state {
        CatchUpState::CatchingUp => "catching_up",
        CatchUpState::CaughtUp => "caught_up",
    };
    let mut title = format!(
        "{} — {} of {} messages read from {} partitions",
        defs::CATCH_UP,
        fmt_count(catch_up.consumed),
        fmt_count(catch_up.backlog),
        fmt_count(catch_up.partitions)
    );
    if let Some(age) = catch_up.oldest_age_ms {
        title.push_str(&format!("; the oldest was {} old", format_duration_ms(age)));
    }
    let ended = catch_up.ended_at.map(|at| {
        view! {
            " at "
            <time datetime=machine(&at) title=absolute(&at)>{at.format("%H:%M:%S UTC").to_string()}</time>
        }
    });
    view! {
        <p class="ov-card-sub ov-catchup" data-test="ingest-catchup" data-state=state title=title>
            <span class="ov-catchup-icon" aria-hidden="true">"↻ "</span>
            <span data-test="ingest-catchup-summary">{catch_up.summary()}</span>
            {ended}
        </p>
    }
    .into_any()
}

fn alert_icon(level: AlertLevel) -> &'static str {
    match level {
        AlertLevel::Ok => "✓",
        AlertLevel::Warning => "▲",
        AlertLevel::Critical => "⚠",
    }
}

/// A readable metric name for an alert.
fn metric_label(metric: &str) -> String {
    match metric {
        "failure_rate" => "failure rate".into(),
        "compensation_rate" => "compensation rate".into(),
        "stalled" => "stalled sagas".into(),
        "duration_p95_ms" => "duration p95".into(),
        "relay_lag_p95_ms" => "relay lag p95".into(),
        "consumer_lag_p95_ms" => "consumer lag p95".into(),
        "group_lag" => "consumer-group lag".into(),
        "dlq_depth" => "DLQ depth".into(),
        other => other.replace('_', " "),
    }
}

/// Where an alert's subject leads: its sagas, or the lag row.
fn alert_href(alert: &Alert, cohort: &Cohort) -> Option<String> {
    match alert.metric.as_str() {
        "failure_rate" => Some(cohort.href(Some(&alert.subject), Some("failed"))),
        "compensation_rate" => {
            Some(cohort.href(Some(&alert.subject), Some(statuses::BEGAN_COMPENSATING)))
        }
        "stalled" => Some(cohort.href(Some(&alert.subject), Some("stalled"))),
        "duration_p95_ms" => Some(cohort.href(Some(&alert.subject), Some(statuses::FINISHED))),
        "relay_lag_p95_ms" | "consumer_lag_p95_ms" => {
            Some(format!("#{}", topic_anchor(&alert.subject)))
        }
        "group_lag" => Some("#group-lag".to_string()),
        _ => None,
    }
}

#[component]
pub fn AlertList(alerts: Vec<Alert>, cohort: Cohort) -> impl IntoView {
    let count = alerts.len();
    let critical = alerts
        .iter()
        .filter(|a| a.level == AlertLevel::Critical)
        .count();
    let items = alerts
        .into_iter()
        .map(|alert| {
            let href = alert_href(&alert, &cohort);
            let level = alert.level.as_str();
            let title = format!(
                "{} of {}: {} (threshold {})",
                metric_label(&alert.metric),
                alert.subject,
                alert.value,
                alert.threshold
            );
            // The message names the subject; it links to what is behind it.
            let message = match href {
                Some(href) => view! { <a class="alert-message" href=href title=title>{alert.message.clone()}</a> }.into_any(),
                None => view! { <span class="alert-message" title=title>{alert.message.clone()}</span> }.into_any(),
            };
            view! {
                <li class=format!("alert {}", level_class(alert.level)) data-level=level data-metric=alert.metric.clone()>
                    <span class="alert-icon" aria-hidden="true">{alert_icon(alert.level)}</span>
                    <span class="alert-level">{level}</span>
                    {message}
                </li>
            }
        })
        .collect_view();
    let head_class = if critical > 0 {
        "ov-alerts level-critical"
    } else if count > 0 {
        "ov-alerts level-warning"
    } else {
        "ov-alerts level-ok"
    };
    view! {
        <section class=format!("panel {head_class}") data-test="alerts" aria-labelledby="alerts-title">
            <h2 id="alerts-title" class="ov-card-title" title="Thresholds breached in this window (rules file [thresholds]); also at /api/v1/alerts">
                "Alerts"
                <span class="ov-count">{count}</span>
            </h2>
            {if count == 0 {
                view! { <p class="muted ov-alerts-empty">"✓ No threshold is breached in this window."</p> }.into_any()
            } else {
                view! { <ul class="alert-list">{items}</ul> }.into_any()
            }}
        </section>
    }
    .into_any()
}

// ---------- lag ----------

/// The `id` of a topic's row, for links from the cards and alerts.
pub fn topic_anchor(topic: &str) -> String {
    let clean: String = topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("lag-{clean}")
}

fn lag_values(series: &[LagPoint], pick: impl Fn(&LagPoint) -> Option<i64>) -> Vec<Option<f64>> {
    series.iter().map(|p| pick(p).map(|v| v as f64)).collect()
}

fn lag_cells(p: Percentiles, def: &'static str) -> impl IntoView {
    view! {
        <td class="num" title=format!("p50 — {def}")>{fmt_ms(p.p50_ms)}</td>
        <td class="num strong" title=format!("p95 — {def}")>{fmt_ms(p.p95_ms)}</td>
        <td class="num" title=format!("max — {def}")>{fmt_ms(p.max_ms)}</td>
    }
}

/// Outbox relay and consumer lag per topic: figures over the window and a
/// small chart of both p95s.
#[component]
pub fn TopicLagTable(topics: Vec<TopicLag>, point_seconds: i64) -> impl IntoView {
    if topics.is_empty() {
        return view! {
            <EmptyState
                title="No events in this window".to_string()
                detail="Lag is measured on every ingested event: relay lag where the event carries the outbox created_at, consumer lag always.".to_string()
            />
        }
        .into_any();
    }
    let rows = topics
        .into_iter()
        .map(|topic| {
            let times = times_of(&topic.series, |p| p.at);
            let series = vec![
                ChartSeries {
                    name: "relay p95".into(),
                    tone: "tone-relay",
                    style: SeriesStyle::Line,
                    values: lag_values(&topic.series, |p| p.lag.relay.p95_ms),
                },
                ChartSeries {
                    name: "consumer p95".into(),
                    tone: "tone-consumer",
                    style: SeriesStyle::Line,
                    values: lag_values(&topic.series, |p| p.lag.consumer.p95_ms),
                },
            ];
            let name = topic.topic.clone();
            view! {
                <tr
                    id=topic_anchor(&name)
                    class=format!("row {}", level_class(topic.level))
                    data-test=format!("topic-lag-{name}")
                    data-topic=name.clone()
                >
                    <th scope="row" class="mono topic" title=name.clone()>
                        {name.clone()}
                        {(topic.lag.catchup.count > 0).then(|| view! {
                            <span
                                class="ov-topic-catchup"
                                data-test=format!("topic-catchup-{name}")
                                title=format!(
                                    "{} — p95 age {}, max {}",
                                    defs::CATCH_UP,
                                    fmt_ms(topic.lag.catchup.p95_ms),
                                    fmt_ms(topic.lag.catchup.max_ms)
                                )
                            >
                                {format!("{} caught up at start", fmt_count(topic.lag.catchup.count))}
                            </span>
                        }
                        .into_any())}
                    </th>
                    <td class="num" title=defs::TOPIC_EVENTS>{fmt_count(topic.events)}</td>
                    {lag_cells(topic.lag.relay, defs::RELAY_LAG)}
                    {lag_cells(topic.lag.consumer, defs::CONSUMER_LAG)}
                    <td class="chart-cell">
                        <LineChart
                            series
                            times
                            point_seconds
                            format=fmt_ms_f
                            label=format!("p95 relay and consumer lag of {name} over the window")
                            width=260
                            height=58
                            floor=100.0
                        />
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap ov-table-wrap">
            <table class="grid ov-lag" data-test="topic-lag">
                <thead>
                    <tr class="group-head">
                        <th scope="col" rowspan="2">"Topic"</th>
                        <th scope="col" rowspan="2" class="num" title=defs::TOPIC_EVENTS>"Events"</th>
                        <th scope="colgroup" colspan="3" class="center" title=defs::RELAY_LAG>"Relay lag"</th>
                        <th scope="colgroup" colspan="3" class="center" title=defs::CONSUMER_LAG>"Consumer lag"</th>
                        <th scope="col" rowspan="2">
                            <ChartLegend items=vec![
                                ("relay p95".to_string(), "tone-relay", SeriesStyle::Line),
                                ("consumer p95".to_string(), "tone-consumer", SeriesStyle::Line),
                            ]/>
                        </th>
                    </tr>
                    <tr>
                        <th scope="col" class="num" title=defs::LAG_P50>"p50"</th>
                        <th scope="col" class="num" title=defs::LAG_P95>"p95"</th>
                        <th scope="col" class="num" title=defs::LAG_MAX>"max"</th>
                        <th scope="col" class="num" title=defs::LAG_P50>"p50"</th>
                        <th scope="col" class="num" title=defs::LAG_P95>"p95"</th>
                        <th scope="col" class="num" title=defs::LAG_MAX>"max"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// Larger charts per topic (the lag page): relay and consumer lag, each
/// with p50, p95 and max.
#[component]
pub fn TopicLagCharts(topics: Vec<TopicLag>, point_seconds: i64) -> impl IntoView {
    let cards = topics
        .into_iter()
        .map(|topic| {
            let times = times_of(&topic.series, |p| p.at);
            let chart = |kind: &'static str, pick: fn(&LagPoint) -> Percentiles| {
                vec![
                    ChartSeries {
                        name: format!("{kind} max"),
                        tone: "tone-lag-max",
                        style: SeriesStyle::Area,
                        values: lag_values(&topic.series, |p| pick(p).max_ms),
                    },
                    ChartSeries {
                        name: format!("{kind} p95"),
                        tone: if kind == "relay" { "tone-relay" } else { "tone-consumer" },
                        style: SeriesStyle::Line,
                        values: lag_values(&topic.series, |p| pick(p).p95_ms),
                    },
                    ChartSeries {
                        name: format!("{kind} p50"),
                        tone: if kind == "relay" { "tone-relay" } else { "tone-consumer" },
                        style: SeriesStyle::Dashed,
                        values: lag_values(&topic.series, |p| pick(p).p50_ms),
                    },
                ]
            };
            let relay = chart("relay", |p| p.lag.relay);
            let consumer = chart("consumer", |p| p.lag.consumer);
            let name = topic.topic.clone();
            view! {
                <article class=format!("panel lag-card {}", level_class(topic.level)) data-test=format!("lag-chart-{name}")>
                    <header class="panel-head">
                        <h3 class="mono">{name.clone()}</h3>
                        <span class="muted" title=defs::TOPIC_EVENTS>{format!("{} events", fmt_count(topic.events))}</span>
                    </header>
                    <div class="lag-card-charts">
                        <figure>
                            <figcaption title=defs::RELAY_LAG>"Relay lag"</figcaption>
                            <LineChart
                                series=relay
                                times=times.clone()
                                point_seconds
                                format=fmt_ms_f
                                label=format!("relay lag of {name}: p50, p95 and max")
                                width=310
                                height=116
                                floor=100.0
                            />
                        </figure>
                        <figure>
                            <figcaption title=defs::CONSUMER_LAG>"Consumer lag"</figcaption>
                            <LineChart
                                series=consumer
                                times
                                point_seconds
                                format=fmt_ms_f
                                label=format!("consumer lag of {name}: p50, p95 and max")
                                width=310
                                height=116
                                floor=100.0
                            />
                        </figure>
                    </div>
                </article>
            }
        })
        .collect_view();
    view! {
        <div class="lag-cards-head">
            <span class="muted small">"Each chart, per bucket:"</span>
            <ChartLegend items=vec![
                ("max".to_string(), "tone-lag-max", SeriesStyle::Area),
                ("p95".to_string(), "tone-neutral", SeriesStyle::Line),
                ("p50".to_string(), "tone-neutral", SeriesStyle::Dashed),
            ]/>
            <span class="muted small">"· colours:"</span>
            <ChartLegend items=vec![
                ("relay lag".to_string(), "tone-relay", SeriesStyle::Line),
                ("consumer lag".to_string(), "tone-consumer", SeriesStyle::Line),
            ]/>
        </div>
        <div class="lag-cards">{cards}</div>
    }
}

/// Lag per partition of the watched consumer groups.
#[component]
pub fn GroupLagTable(groups: Vec<GroupLag>) -> impl IntoView {
    if groups.is_empty() {
        return view! {
            <div data-test="group-lag">
                <EmptyState
                    title="No consumer groups watched".to_string()
                    detail="Start sagascope with --watch-groups payments,shipping (the services' consumer groups) to see their lag per topic and partition: high watermark − committed offset.".to_string()
                />
            </div>
        }
        .into_any();
    }
    // The most lagging group first, and its most lagging partitions.
    let mut groups = groups;
    groups.sort_by(|a, b| b.lag.cmp(&a.lag).then_with(|| a.group.cmp(&b.group)));
    for group in &mut groups {
        group.partitions.sort_by(|a, b| {
            b.lag
                .cmp(&a.lag)
                .then_with(|| a.topic.cmp(&b.topic))
                .then(a.partition.cmp(&b.partition))
        });
    }
    let rows = groups
        .into_iter()
        .map(|group| {
            let level = level_class(group.level);
            let observed = group
                .observed_at
                .as_ref()
                .map(|t| format!("observed {}", absolute(t)))
                .unwrap_or_else(|| "not observed yet".to_string());
            let error = group.error.clone().map(|e| {
                view! {
                    <tr class="row level-critical" data-test="group-lag-error" data-group=group.group.clone()>
                        <th scope="row" class="mono">{group.group.clone()}</th>
                        <td colspan="5" class="reason">{format!("⚠ {e}")}</td>
                    </tr>
                }
            });
            let empty = (group.partitions.is_empty() && group.error.is_none()).then(|| {
                view! {
                    <tr class="row">
                        <th scope="row" class="mono">{group.group.clone()}</th>
                        <td colspan="5" class="muted">"No committed offsets or partitions seen for this group yet."</td>
                    </tr>
                }
            });
            let partitions = group
                .partitions
                .iter()
                .map(|p| {
                    view! {
                        <tr class=format!("row {level}") data-test="group-lag-row" data-group=p.group.clone() data-topic=p.topic.clone() data-partition=p.partition.to_string()>
                            <th scope="row" class="mono" title=observed.clone()>{p.group.clone()}</th>
                            <td class="mono">{p.topic.clone()}</td>
                            <td class="num mono">{p.partition}</td>
                            <td class="num mono">{fmt_count(p.high_watermark)}</td>
                            <td class="num mono">{p.committed.map(fmt_count).unwrap_or_else(|| "—".into())}</td>
                            <td class={if p.lag > 0 { "num mono strong" } else { "num mono muted" }}>{fmt_count(p.lag)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! { {error} {empty} {partitions} }
        })
        .collect_view();
    view! {
        <div class="table-wrap ov-groups-wrap">
            <table class="grid ov-groups" data-test="group-lag">
                <thead>
                    <tr>
                        <th scope="col">"Group"</th>
                        <th scope="col">"Topic"</th>
                        <th scope="col" class="num">"Partition"</th>
                        <th scope="col" class="num" title=defs::HIGH_WATERMARK>"High watermark"</th>
                        <th scope="col" class="num" title=defs::COMMITTED>"Committed"</th>
                        <th scope="col" class="num" title=defs::GROUP_LAG>"Lag"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_count(-1200), "-1,200");
        assert_eq!(fmt_rate(None), "—");
        assert_eq!(fmt_rate(Some(0.0)), "0 %");
        assert_eq!(fmt_rate(Some(0.1234)), "12.3 %");
        assert_eq!(fmt_rate(Some(1.0)), "100 %");
        assert_eq!(fmt_rate(Some(0.0004)), "<0.1 %");
        assert_eq!(fmt_per(4.567), "4.57");
        assert_eq!(fmt_per(250.4), "250");
        assert_eq!(fmt_ms(None), "—");
        assert_eq!(fmt_ms(Some(2400)), "2.4 s");
    }

    #[test]
    fn drill_down_links_keep_status_lists_and_times_readable() {
        let cohort = Cohort {
            since: "2026-11-21T10:00:00Z".into(),
            until: "2026-11-21T11:00:00Z".into(),
        };
        assert_eq!(
            cohort.href(Some("order"), Some(statuses::RUNNING)),
            "/sagas?saga_type=order&status=running,compensating&since=2026-11-21T10:00:00Z&until=2026-11-21T11:00:00Z"
        );
        assert_eq!(
            cohort.href(Some("a b&c"), None),
            "/sagas?saga_type=a%20b%26c&since=2026-11-21T10:00:00Z&until=2026-11-21T11:00:00Z"
        );
    }

    #[test]
    fn topic_anchors_are_valid_ids() {
        assert_eq!(topic_anchor("events.scan"), "lag-events-scan");
        assert_eq!(topic_anchor("a/b c"), "lag-a-b-c");
    }
}
