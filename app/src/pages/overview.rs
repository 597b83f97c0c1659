//! `/`: the overview. Health at a glance for one time window (`?window=`
//! 15m, 1h, 6h, 24h, 7d): the worst offenders, DLQ and ingest cards, the
//! breached thresholds, one row per saga type (outcome counts, rates with
//! sparklines, duration percentiles, throughput, and its steps), outbox and
//! consumer lag per topic, and the watched consumer groups.
//!
//! Rendered on the server (readable without JavaScript); live, it fetches
//! the figures again every few seconds. Every count links to the saga list
//! filtered to the sagas behind it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use sagascope_model::{Alert, OverviewMetrics, SagaTypeMetrics, StepMetrics};

use crate::components::charts::Sparkline;
use crate::components::metric_cards::{
    defs, fmt_count, fmt_ms, fmt_pct, fmt_per, fmt_rate, statuses, times_of, use_live_refresh,
    Cohort, GroupLagTable, TopCards, TopicLagTable, WindowCaption, WindowPicker,
};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::server_fns::{error_text, fetch_overview};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let query = use_query_map();
    let window = Memo::new(move |_| query.with(|q| q.get("window").unwrap_or_default()));
    let refresh = use_live_refresh();
    let overview = Resource::new(
        move || (window.get(), refresh.get()),
        |(window, _)| fetch_overview(window),
    );
    // Step tables the user opened stay open across live refreshes.
    let open_steps = RwSignal::new(Vec::<String>::new());

    view! {
        <Title text="Overview"/>
        <section class="page page-overview">
            <header class="page-head ov-head">
                <h1>"Overview"</h1>
                <WindowPicker base="/" current=window/>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        overview.await.ok().map(|overview| view! { <WindowCaption overview/> })
                    })}
                </Transition>
            </header>
            <Transition fallback=|| view! { <Loading what="the overview"/> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(overview) => view! { <OverviewBody overview open_steps/> }.into_any(),
                        Err(error) => view! {
                            <ErrorState title="Could not load the overview".to_string() detail=error_text(&error)/>
                            <p class="actions"><a class="button" href="/">"Back to the last hour"</a></p>
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
fn OverviewBody(overview: OverviewMetrics, open_steps: RwSignal<Vec<String>>) -> impl IntoView {
    let point_seconds = overview.point_seconds;
    view! {
        <TopCards overview=overview.clone()/>
        <section class="ov-section" aria-labelledby="saga-types-title">
            <header class="ov-section-head">
                <h2 id="saga-types-title">"Saga types"</h2>
                <p class="muted small" title=defs::COHORT>
                    "Sagas started in the window, by current status. Click a number for the sagas behind it."
                </p>
            </header>
            <SagaTypeTable overview=overview.clone() open_steps/>
        </section>
        <section class="ov-section" aria-labelledby="lag-title">
            <header class="ov-section-head">
                <h2 id="lag-title"><a href="/lag" class="plain-link">"Outbox and consumer lag"</a></h2>
                <p class="muted small">
                    <span title=defs::RELAY_LAG>"Relay: Kafka timestamp − outbox created_at"</span>
                    " · "
                    <span title=defs::CONSUMER_LAG>"consumer: ingested − Kafka timestamp"</span>
                </p>
            </header>
            <TopicLagTable topics=overview.topics.clone() point_seconds/>
        </section>
        <section class="ov-section" id="group-lag" aria-labelledby="groups-title">
            <header class="ov-section-head">
                <h2 id="groups-title" title=defs::GROUP_LAG>"Consumer-group lag"</h2>
                <p class="muted small">"High watermark − committed offset, per partition, of the groups in --watch-groups."</p>
            </header>
            <GroupLagTable groups=overview.groups.clone()/>
        </section>
    }
    .into_any()
}

/// A count column of the saga type table.
#[derive(Clone, Copy)]
struct CountColumn {
    /// The status in `data-test` (`count-<type>-<key>`) and the colour class.
    key: &'static str,
    label: &'static str,
    def: &'static str,
    /// The status (list) of the drill-down; None = every status.
    status: Option<&'static str>,
}

const fn column(
    key: &'static str,
    label: &'static str,
    def: &'static str,
    status: Option<&'static str>,
) -> CountColumn {
    CountColumn {
        key,
        label,
        def,
        status,
    }
}

const COUNT_COLUMNS: [CountColumn; 8] = [
    column("started", "Started", defs::STARTED, None),
    column("running", "Running", defs::RUNNING, Some(statuses::RUNNING)),
    column(
        "completed",
        "Com\u{ad}pleted",
        defs::COMPLETED,
        Some("completed"),
    ),
    column("failed", "Failed", defs::FAILED, Some("failed")),
    column(
        "compensated",
        "Compen\u{ad}sated",
        defs::COMPENSATED,
        Some("compensated"),
    ),
    column(
        "compensation_failed",
        "Comp. failed",
        defs::COMPENSATION_FAILED,
        Some("compensation_failed"),
    ),
    column("timed_out", "Timed out", defs::TIMED_OUT, Some("timed_out")),
    column("stalled", "Stalled", defs::STALLED, Some("stalled")),
];

/// Total columns of the saga type table (for the steps row's colspan).
const TYPE_COLUMNS: usize = 1 + COUNT_COLUMNS.len() + 1 + 2 + 3 + 1;

fn count_of(metrics: &SagaTypeMetrics, key: &str) -> i64 {
    let c = &metrics.counts;
    match key {
        "started" => c.started,
        "running" => c.running,
        "completed" => c.completed,
        "failed" => c.failed,
        "compensated" => c.compensated,
        "compensation_failed" => c.compensation_failed,
        "timed_out" => c.timed_out,
        "stalled" => c.stalled,
        _ => 0,
    }
}

#[component]
fn SagaTypeTable(overview: OverviewMetrics, open_steps: RwSignal<Vec<String>>) -> impl IntoView {
    if overview.saga_types.is_empty() {
        return view! {
            <EmptyState
                title="No saga started in this window".to_string()
                detail="Pick a longer window, or check the ingest card: sagas appear here once their first event is ingested.".to_string()
                action=("/?window=7d".to_string(), "Last 7 days".to_string())
            />
        }
        .into_any();
    }
    let cohort = Cohort::of(&overview);
    let point_seconds = overview.point_seconds;
    let headers = COUNT_COLUMNS
        .iter()
        .map(|col| {
            view! { <th scope="col" class=format!("num count-col col-{}", col.key) title=col.def>{col.label}</th> }
        })
        .collect_view();
    let bodies = overview
        .saga_types
        .clone()
        .into_iter()
        .map(|metrics| {
            let thresholds = RateThresholds::of(&overview.alerts, &metrics.saga_type);
            view! { <SagaTypeRows metrics cohort=cohort.clone() point_seconds thresholds open_steps/> }
        })
        .collect_view();
    view! {
        <div class="table-wrap ov-table-wrap">
            <table class="grid ov-types" data-test="saga-types">
                <thead>
                    <tr>
                        <th scope="col">"Saga type"</th>
                        {headers}
                        <th scope="col" class="outcome-col" title=defs::OUTCOMES>"Outcomes"</th>
                        <th scope="col" class="num" title=defs::FAILURE_RATE>"Failure rate"</th>
                        <th scope="col" class="num" title=defs::COMPENSATION_RATE>"Comp. rate"</th>
                        <th scope="col" class="num" title=defs::P50>"p50"</th>
                        <th scope="col" class="num" title=defs::P95>"p95"</th>
                        <th scope="col" class="num" title=defs::P99>"p99"</th>
                        <th scope="col" class="num" title=defs::THROUGHPUT>"Started/min"</th>
                    </tr>
                </thead>
                {bodies}
            </table>
        </div>
    }
    .into_any()
}

/// A number linking to the sagas behind it; zero is drawn faint.
#[component]
fn CountLink(
    count: i64,
    href: String,
    #[prop(into)] test: String,
    #[prop(into)] title: String,
    #[prop(optional)] tone: Option<&'static str>,
) -> impl IntoView {
    let class = match (count, tone) {
        (0, _) => "count zero".to_string(),
        (_, Some(tone)) => format!("count status-text-{tone}"),
        (_, None) => "count".to_string(),
    };
    view! {
        <a class=class href=href data-test=test data-count=count.to_string() title=title>
            {fmt_count(count)}
        </a>
    }
}

/// The rate thresholds of a type, as far as the figures tell them: a
/// breached threshold comes with its alert (the shapes carry no
/// thresholds otherwise), and is drawn as a dashed line on the sparkline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RateThresholds {
    failure: Option<f64>,
    compensation: Option<f64>,
}

impl RateThresholds {
    fn of(alerts: &[Alert], saga_type: &str) -> RateThresholds {
        let find = |metric: &str| {
            alerts
                .iter()
                .filter(|a| a.subject == saga_type && a.metric == metric)
                .map(|a| a.threshold)
                .reduce(f64::min)
        };
        RateThresholds {
            failure: find("failure_rate"),
            compensation: find("compensation_rate"),
        }
    }
}

#[component]
fn SagaTypeRows(
    metrics: SagaTypeMetrics,
    cohort: Cohort,
    point_seconds: i64,
    thresholds: RateThresholds,
    open_steps: RwSignal<Vec<String>>,
) -> impl IntoView {
    let t = metrics.saga_type.clone();
    let level = metrics.level.as_str();
    let times = times_of(&metrics.series, |p| p.at);
    let minutes = point_seconds as f64 / 60.0;
    let throughput = metrics
        .series
        .iter()
        .map(|p| Some(p.started as f64 / minutes))
        .collect::<Vec<_>>();
    let failure = metrics
        .series
        .iter()
        .map(|p| p.failure_rate)
        .collect::<Vec<_>>();
    let compensation = metrics
        .series
        .iter()
        .map(|p| p.compensation_rate)
        .collect::<Vec<_>>();

    let counts = COUNT_COLUMNS
        .iter()
        .map(|col| {
            let CountColumn {
                key,
                label,
                def,
                status,
            } = *col;
            let count = count_of(&metrics, key);
            let href = cohort.href(Some(&t), status);
            view! {
                <td class=format!("num count-col col-{key}")>
                    <CountLink
                        count
                        href
                        test=format!("count-{t}-{key}")
                        title=format!("{label}: {} — {def}", fmt_count(count))
                        tone=key
                    />
                </td>
            }
        })
        .collect_view();

    let failed_href = cohort.href(Some(&t), Some("failed"));
    let compensating_href = cohort.href(Some(&t), Some(statuses::BEGAN_COMPENSATING));
    let finished_href = cohort.href(Some(&t), Some(statuses::FINISHED));
    let started_href = cohort.href(Some(&t), None);
    let c = metrics.counts;
    let failure_title = format!(
        "{} failed / {} finished — {}",
        fmt_count(c.failed),
        fmt_count(c.finished),
        defs::FAILURE_RATE
    );
    let compensation_title = format!(
        "{} began compensating / {} finished — {}",
        fmt_count(c.began_compensating),
        fmt_count(c.finished),
        defs::COMPENSATION_RATE
    );
    let measured = metrics.duration.count;
    let duration_title =
        move |def: &str| format!("{def}. {} finished sagas measured.", fmt_count(measured));
    let steps_open = open_steps.with_untracked(|open| open.contains(&t));

    view! {
        <tbody class=format!("ov-type level-{level}") data-saga-type=t.clone()>
            <tr class="row ov-type-row" data-test=format!("saga-type-row-{t}") data-level=level>
                <th scope="row" class="type-cell">
                    <a class="type-name mono" href=started_href.clone() title=format!("All {t} sagas started in the window")>{t.clone()}</a>
                    // No data-test: the row's data-test links are its figures.
                    <a class="flow-link small" href=crate::components::ids::type_href(&t) title=format!("The flow learned for {t}: its usual steps, hops and end events")>"flow"</a>
                    {(level != "ok").then(|| view! {
                        <span class=format!("level-chip {level}") title=format!("A threshold of {t} is breached ({level}); see the alerts")>
                            {if level == "critical" { "⚠ critical" } else { "▲ warning" }}
                        </span>
                    })}
                </th>
                {counts}
                <td class="outcome-col">
                    <OutcomeBar metrics=metrics.clone() cohort=cohort.clone()/>
                </td>
                <td class="num rate-col">
                    <span class="with-spark">
                        <Sparkline
                            values=failure
                            times=times.clone()
                            point_seconds
                            label="failure rate"
                            format=fmt_pct
                            tone="tone-failed"
                            floor=0.05
                            threshold=thresholds.failure
                        />
                        <a
                            class={if c.failed > 0 { "rate status-text-failed" } else { "rate zero" }}
                            href=failed_href
                            data-test=format!("failure-rate-{t}")
                            title=failure_title
                        >
                            {fmt_rate(metrics.failure_rate)}
                        </a>
                    </span>
                </td>
                <td class="num rate-col">
                    <span class="with-spark">
                        <Sparkline
                            values=compensation
                            times=times.clone()
                            point_seconds
                            label="compensation rate"
                            format=fmt_pct
                            tone="tone-compensating"
                            floor=0.05
                            threshold=thresholds.compensation
                        />
                        <a
                            class={if c.began_compensating > 0 { "rate status-text-compensating" } else { "rate zero" }}
                            href=compensating_href
                            data-test=format!("compensation-rate-{t}")
                            title=compensation_title
                        >
                            {fmt_rate(metrics.compensation_rate)}
                        </a>
                    </span>
                </td>
                <td class="num">
                    <a class="duration" href=finished_href.clone() data-test=format!("p50-{t}") title=duration_title(defs::P50)>{fmt_ms(metrics.duration.p50_ms)}</a>
                </td>
                <td class="num">
                    <a class="duration strong" href=finished_href.clone() data-test=format!("p95-{t}") title=duration_title(defs::P95)>{fmt_ms(metrics.duration.p95_ms)}</a>
                </td>
                <td class="num">
                    <a class="duration" href=finished_href data-test=format!("p99-{t}") title=duration_title(defs::P99)>{fmt_ms(metrics.duration.p99_ms)}</a>
                </td>
                <td class="num rate-col">
                    <span class="with-spark">
                        <Sparkline
                            values=throughput
                            times
                            point_seconds
                            label="sagas started per minute"
                            format=fmt_per
                            tone="tone-running"
                            floor=1.0
                        />
                        <a class="rate" href=started_href data-test=format!("throughput-{t}") title=format!("{} started — {}", fmt_count(c.started), defs::THROUGHPUT)>
                            {fmt_per(metrics.throughput_per_min)}
                        </a>
                    </span>
                </td>
            </tr>
            <tr class="ov-steps-row">
                <td colspan=TYPE_COLUMNS.to_string()>
                    <StepDetails metrics cohort open=steps_open open_steps/>
                </td>
            </tr>
        </tbody>
    }
    .into_any()
}

/// Counts by outcome as one stacked bar; each segment links to its sagas.
#[component]
fn OutcomeBar(metrics: SagaTypeMetrics, cohort: Cohort) -> impl IntoView {
    let c = metrics.counts;
    let t = metrics.saga_type.clone();
    let segments: [(&str, &str, i64, &str); 7] = [
        ("completed", "Completed", c.completed, "completed"),
        ("compensated", "Compensated", c.compensated, "compensated"),
        ("failed", "Failed", c.failed, "failed"),
        (
            "compensation_failed",
            "Compensation failed",
            c.compensation_failed,
            "compensation_failed",
        ),
        ("timed_out", "Timed out", c.timed_out, "timed_out"),
        ("stalled", "Stalled", c.stalled, "stalled"),
        ("running", "Running", c.running, statuses::RUNNING),
    ];
    let total: i64 = segments.iter().map(|s| s.2).sum::<i64>().max(1);
    let parts = segments
        .into_iter()
        .filter(|(_, _, n, _)| *n > 0)
        .map(|(key, label, n, status)| {
            let share = n as f64 / total as f64;
            view! {
                <a
                    class=format!("ob-seg ob-{key}")
                    style=format!("width:{:.3}%", share * 100.0)
                    href=cohort.href(Some(&t), Some(status))
                    title=format!("{label}: {} ({})", fmt_count(n), fmt_pct(share))
                    aria-label=format!("{label}: {}", fmt_count(n))
                ></a>
            }
        })
        .collect_view();
    view! {
        <div class="outcome-bar" role="group" aria-label=format!("Outcomes of {t}") data-test=format!("outcome-bar-{t}")>
            {parts}
        </div>
    }
}

/// The steps of a type: expandable (`<details>`, no JavaScript needed).
#[component]
fn StepDetails(
    metrics: SagaTypeMetrics,
    cohort: Cohort,
    open: bool,
    open_steps: RwSignal<Vec<String>>,
) -> impl IntoView {
    let t = metrics.saga_type.clone();
    let steps = metrics.steps;
    let slowest = steps
        .iter()
        .filter(|s| s.duration.p95_ms.is_some())
        .max_by_key(|s| s.duration.p95_ms)
        .map(|s| format!("slowest p95: {} {}", s.step, fmt_ms(s.duration.p95_ms)));
    let most_failing = steps
        .iter()
        .filter(|s| s.failures > 0)
        .max_by_key(|s| s.failures)
        .map(|s| {
            format!(
                "most failures: {} {} ({})",
                s.step,
                fmt_count(s.failures),
                fmt_rate(s.failure_rate)
            )
        });
    let summary = [slowest, most_failing]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    let count = steps.len();
    let slowest_p95 = steps
        .iter()
        .filter_map(|s| s.duration.p95_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let key = t.clone();
    let on_toggle = move |event: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let is_open = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|e| e.has_attribute("open"));
            open_steps.update(|list| {
                list.retain(|k| k != &key);
                if is_open {
                    list.push(key.clone());
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (event, &key, open_steps);
    };
    let rows = steps
        .into_iter()
        .map(|step| view! { <StepRow step saga_type=t.clone() cohort=cohort.clone() slowest_p95/> })
        .collect_view();
    view! {
        <details class="ov-steps" open=open on:toggle=on_toggle data-test=format!("steps-{}", metrics.saga_type)>
            <summary>
                <span class="ov-steps-label">{format!("{count} step{}", if count == 1 { "" } else { "s" })}</span>
                <span class="muted small">{summary}</span>
            </summary>
            {if count == 0 {
                view! { <p class="muted small ov-steps-empty">"No step events for sagas started in this window."</p> }.into_any()
            } else {
                view! {
                    <table class="grid ov-step-table">
                        <thead>
                            <tr>
                                <th scope="col">"Step"</th>
                                <th scope="col" class="num" title=defs::STEP_EXECUTIONS>"Executions"</th>
                                <th scope="col" class="num" title=defs::STEP_FAILURES>"Failures"</th>
                                <th scope="col" class="num" title=defs::STEP_FAILURE_RATE>"Failure rate"</th>
                                <th scope="col" class="num" title=defs::STEP_P50>"p50"</th>
                                <th scope="col" class="num" title=defs::STEP_P95>"p95"</th>
                                <th scope="col" class="bar-col" title="p95 relative to the slowest step of this type">"p95 vs slowest"</th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
                .into_any()
            }}
        </details>
    }
    .into_any()
}

#[component]
fn StepRow(
    step: StepMetrics,
    saga_type: String,
    cohort: Cohort,
    slowest_p95: i64,
) -> impl IntoView {
    let share = step
        .duration
        .p95_ms
        .map(|p| (p as f64 / slowest_p95 as f64).clamp(0.0, 1.0))
        .unwrap_or(0.0);
    let executions_href = cohort.href(Some(&saga_type), None);
    let failures_href = cohort.href(Some(&saga_type), Some(statuses::NOT_COMPLETED));
    let name = step.step.clone();
    view! {
        <tr class="row" data-test=format!("step-row-{saga_type}-{name}") data-step=name.clone()>
            <th scope="row" class="step mono">{name.clone()}</th>
            <td class="num">
                <a
                    class="count"
                    href=executions_href
                    title=format!("{} — the list shows every {saga_type} saga started in the window (it cannot filter by step)", defs::STEP_EXECUTIONS)
                >
                    {fmt_count(step.executions)}
                </a>
            </td>
            <td class="num">
                <a
                    class={if step.failures > 0 { "count status-text-failed" } else { "count zero" }}
                    href=failures_href
                    title=format!("{} — the list shows the {saga_type} sagas that did not complete (it cannot filter by step)", defs::STEP_FAILURES)
                >
                    {fmt_count(step.failures)}
                </a>
            </td>
            <td class="num" title=defs::STEP_FAILURE_RATE>{fmt_rate(step.failure_rate)}</td>
            <td class="num" title=defs::STEP_P50>{fmt_ms(step.duration.p50_ms)}</td>
            <td class="num strong" title=defs::STEP_P95>{fmt_ms(step.duration.p95_ms)}</td>
            <td class="bar-col">
                <span class="step-bar" title=format!("p95 {} of the slowest step's {}", fmt_ms(step.duration.p95_ms), fmt_ms(Some(slowest_p95)))>
                    <span class="step-bar-fill" style=format!("width:{:.1}%", share * 100.0)></span>
                </span>
            </td>
        </tr>
    }
}
