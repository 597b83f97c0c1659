//! `/types/:saga_type`: the flow the server learned for a saga type from
//! its latest instances — what usually follows what, how long each hop
//! takes, which events end an instance — as a diagram and two tables, and
//! in plain words how the type's instances are judged finished.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use sagascope_model::{format_duration_ms, FlowEdge, FlowModel, FlowNode, FlowNodeKind, Timestamp};

use crate::components::dead_letter::use_poll;
use crate::components::flow_diagram::FlowDiagram;
use crate::components::ids::sagas_of_type_href;
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::time::RelativeTime;
use crate::server_fns::{error_text, fetch_flow_model, set_page_status};
use crate::time::absolute;

/// The server relearns every type's flow this often (`sagascope_flows`).
const RELEARN_SECONDS: u64 = 10;
// The learning's own constants (`sagascope_domain::flow_learning`).
use sagascope_model::{
    FLOW_MIN_HOPS_FOR_QUIET as MIN_USUAL_HOPS, FLOW_QUIET_P99_FACTOR as QUIET_P99_FACTOR,
};

#[component]
pub fn SagaTypePage() -> impl IntoView {
    let params = use_params_map();
    let saga_type = Memo::new(move |_| params.with(|p| p.get("saga_type").unwrap_or_default()));
    // The model is relearned every few seconds; with JavaScript the page
    // follows it (a Transition keeps the old drawing while it loads).
    let poll = use_poll(
        std::time::Duration::from_secs(RELEARN_SECONDS),
        Signal::derive(|| true),
    );
    let model = Resource::new(
        move || (saga_type.get(), poll.get()),
        |(saga_type, _)| fetch_flow_model(saga_type),
    );

    view! {
        <Title text=move || format!("Type {}", saga_type.get())/>
        <section class="page page-type">
            <nav class="crumbs" aria-label="Breadcrumb">
                <a href="/">"Overview"</a>
                <span aria-hidden="true">" / "</span>
                <span>"Saga types"</span>
                <span aria-hidden="true">" / "</span>
                <span class="mono">{move || saga_type.get()}</span>
            </nav>
            <Transition fallback=|| view! { <Loading what="learned flow"/> }>
                {move || {
                    let name = saga_type.get();
                    Suspend::new(async move {
                        match model.await {
                            Ok(Some(model)) => view! { <TypeView model/> }.into_any(),
                            Ok(None) => {
                                set_page_status(404);
                                view! { <NoFlow saga_type=name/> }.into_any()
                            }
                            Err(error) => view! {
                                <ErrorState title="Could not load the learned flow".to_string() detail=error_text(&error)/>
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
fn NoFlow(saga_type: String) -> impl IntoView {
    let href = sagas_of_type_href(&saga_type);
    view! {
        <div data-test="flow-empty">
            <EmptyState
                title=format!("No flow learned for {saga_type} yet")
                detail=format!(
                    "No flow learned for {saga_type} yet: flows are learned from the instances of the last 24 hours, every {RELEARN_SECONDS} s. If this type has instances, its flow appears here within seconds."
                )
                action=(href, "Sagas of this type".to_string())
            />
        </div>
    }
    .into_any()
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn hhmm(at: &Timestamp) -> String {
    at.format("%H:%M").to_string()
}

/// "Learned from 480 instances started between 14:02 and 15:10 UTC (312
/// settled), relearned every 10 s."
pub fn learned_sentence(model: &FlowModel) -> String {
    let instances = plural(model.instances, "instance");
    let window = match (&model.from, &model.to) {
        (Some(from), Some(to)) if from.date_naive() == to.date_naive() => {
            format!(" started between {} and {} UTC", hhmm(from), hhmm(to))
        }
        (Some(from), Some(to)) => format!(
            " started between {} and {}",
            from.format("%Y-%m-%d %H:%M"),
            to.format("%Y-%m-%d %H:%M UTC")
        ),
        _ => String::new(),
    };
    format!(
        "Learned from {instances}{window} ({} settled), relearned every {RELEARN_SECONDS} s.",
        model.settled
    )
}

/// How the type's instances are judged finished, in plain words.
pub fn ending_sentence(model: &FlowModel) -> String {
    if model.declared {
        return "Its events declare its end; the flow is shown for reference.".to_string();
    }
    let ends: Vec<&str> = model
        .nodes
        .iter()
        .filter(|n| n.terminal)
        .map(|n| n.name.as_str())
        .collect();
    let first = if ends.is_empty() {
        "Its events do not declare an end, and no event is learned to end its instances yet"
            .to_string()
    } else {
        format!(
            "Its events do not declare an end: an instance ends at {}",
            or_list(&ends)
        )
    };
    let quiet = match (model.quiet_after_ms, slowest_usual_p99(model)) {
        (Some(quiet), Some(slowest)) => {
            let why = if quiet == slowest.saturating_mul(QUIET_P99_FACTOR) {
                format!(
                    "{QUIET_P99_FACTOR}× its slowest usual hop, {}",
                    format_duration_ms(slowest)
                )
            } else if quiet > slowest.saturating_mul(QUIET_P99_FACTOR) {
                format!(
                    "the shortest quiet time; its slowest usual hop takes {}",
                    format_duration_ms(slowest)
                )
            } else {
                format!(
                    "the stall timeout; its slowest usual hop takes {}",
                    format_duration_ms(slowest)
                )
            };
            format!(
                "is inferred finished after {} without an event ({why})",
                format_duration_ms(quiet)
            )
        }
        (Some(quiet), None) => format!(
            "is inferred finished after {} without an event",
            format_duration_ms(quiet)
        ),
        (None, _) => {
            "is inferred finished after the stall timeout (no hop learned yet)".to_string()
        }
    };
    let elsewhere = if ends.is_empty() {
        "an instance"
    } else {
        "one that stops elsewhere"
    };
    format!("{first}; {elsewhere} {quiet}.")
}

/// The p99 of the slowest hop seen often enough to be usual (all hops
/// when none is): what the quiet time is learned from.
fn slowest_usual_p99(model: &FlowModel) -> Option<i64> {
    let usual = model.edges.iter().filter(|e| e.count >= MIN_USUAL_HOPS);
    let slowest = usual.filter_map(|e| e.gap.p99_ms).max();
    slowest.or_else(|| model.edges.iter().filter_map(|e| e.gap.p99_ms).max())
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn ms_text(ms: Option<i64>) -> String {
    ms.map(format_duration_ms).unwrap_or_else(|| "—".into())
}

/// `count` as a share of `total`: "83 %", "<1 %".
pub fn share_text(count: u64, total: u64) -> String {
    if total == 0 {
        return "—".into();
    }
    let pct = count as f64 * 100.0 / total as f64;
    if pct > 0.0 && pct < 1.0 {
        "<1 %".into()
    } else {
        format!("{pct:.0} %")
    }
}

fn kind_order(kind: FlowNodeKind) -> u8 {
    match kind {
        FlowNodeKind::Forward => 0,
        FlowNodeKind::Failure => 1,
        FlowNodeKind::Compensation => 2,
    }
}

#[component]
fn TypeView(model: FlowModel) -> impl IntoView {
    let t = model.saga_type.clone();
    let learned = learned_sentence(&model);
    let ending = ending_sentence(&model);
    let mode = if model.declared {
        ("declared", "Ends declared by its events")
    } else {
        ("learned", "Ends learned from its flow")
    };
    let learned_title = absolute(&model.learned_at);
    view! {
        <header class="panel type-header" data-test="type-header" data-declared=model.declared.to_string()>
            <div class="saga-title">
                <h1 class="mono">{t.clone()}</h1>
                <span class=format!("chip flow-mode {}", mode.0) data-test="flow-mode">{mode.1}</span>
                <a class="button" href=sagas_of_type_href(&t) data-test="type-sagas-link">"Sagas of this type"</a>
            </div>
            <p class="type-explain" data-test="flow-learned">{learned}</p>
            <p class="type-explain" data-test="flow-ending">{ending}</p>
            <dl class="facts-grid">
                <div>
                    <dt>"Usual duration"</dt>
                    <dd data-test="flow-duration" title="First to last event of the settled instances">
                        {format!("p50 {} · p99 {}", ms_text(model.duration.p50_ms), ms_text(model.duration.p99_ms))}
                    </dd>
                </div>
                <div>
                    <dt>"Instances"</dt>
                    <dd>{format!("{} ({} settled)", model.instances, model.settled)}</dd>
                </div>
                <div>
                    <dt>"Events · hops"</dt>
                    <dd>{format!("{} · {}", model.nodes.len(), model.edges.len())}</dd>
                </div>
                <div>
                    <dt>"Quiet after"</dt>
                    <dd title="How long an undeclared instance that did not reach an end event may be quiet before it is inferred finished">
                        {if model.declared { "—".to_string() } else { ms_text(model.quiet_after_ms) }}
                    </dd>
                </div>
                <div>
                    <dt>"Learned"</dt>
                    <dd title=learned_title><RelativeTime at=model.learned_at/></dd>
                </div>
            </dl>
        </header>
        <section class="panel flow-panel" aria-labelledby="flow-title">
            <header class="panel-head">
                <h2 id="flow-title">"Flow"</h2>
                <span class="flow-legend muted small" aria-hidden="true">
                    <span class="flow-key kind-forward">"forward"</span>
                    <span class="flow-key kind-failure">"failure"</span>
                    <span class="flow-key kind-compensation">"compensation"</span>
                    <span class="flow-key terminal">"ends instances"</span>
                    <span>"arrow width = how often · label = times seen · p99 gap"</span>
                </span>
            </header>
            <FlowDiagram model=model.clone()/>
        </section>
        <HopTable model=model.clone()/>
        <NodeTable nodes=model.nodes.clone()/>
    }
    .into_any()
}

#[component]
fn HopTable(model: FlowModel) -> impl IntoView {
    let mut outgoing: HashMap<&str, u64> = HashMap::new();
    for edge in &model.edges {
        *outgoing.entry(edge.from.as_str()).or_default() += edge.count;
    }
    let layer = |name: &str| model.node(name).map_or(u32::MAX, |n| n.layer);
    let mut edges: Vec<&FlowEdge> = model.edges.iter().collect();
    edges.sort_by(|a, b| {
        layer(&a.from)
            .cmp(&layer(&b.from))
            .then(a.from.cmp(&b.from))
            .then(b.count.cmp(&a.count))
            .then(a.to.cmp(&b.to))
    });
    let kind = |name: &str| {
        model
            .node(name)
            .map_or(FlowNodeKind::Forward, |n| n.kind)
            .as_str()
    };
    let rows = edges
        .into_iter()
        .map(|edge| {
            let total = outgoing.get(edge.from.as_str()).copied().unwrap_or(0);
            view! {
                <tr class="row" data-from=edge.from.clone() data-to=edge.to.clone()>
                    <td class=format!("mono flow-cell kind-{}", kind(&edge.from))>{edge.from.clone()}</td>
                    <td class=format!("mono flow-cell kind-{}", kind(&edge.to))>{edge.to.clone()}</td>
                    <td class="num">{edge.count}</td>
                    <td class="num">{ms_text(edge.gap.p50_ms)}</td>
                    <td class="num">{ms_text(edge.gap.p99_ms)}</td>
                    <td class="num" title=format!("{} of the {total} hops out of {}", edge.count, edge.from)>
                        {share_text(edge.count, total)}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="hops-title">
            <header class="panel-head">
                <h2 id="hops-title">"Hops"</h2>
                <span class="muted small">"one event to the next within an instance; gap = the time between them"</span>
            </header>
            <div class="table-wrap">
                <table class="grid flow-table" data-test="flow-hops">
                    <thead>
                        <tr>
                            <th scope="col">"From"</th>
                            <th scope="col">"To"</th>
                            <th scope="col" class="num">"Count"</th>
                            <th scope="col" class="num">"Gap p50"</th>
                            <th scope="col" class="num">"Gap p99"</th>
                            <th scope="col" class="num" title="Share of the hops out of the From event">"Share"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn NodeTable(nodes: Vec<FlowNode>) -> impl IntoView {
    let mut nodes = nodes;
    nodes.sort_by(|a, b| {
        a.layer
            .cmp(&b.layer)
            .then(kind_order(a.kind).cmp(&kind_order(b.kind)))
            .then(b.instances.cmp(&a.instances))
            .then(a.name.cmp(&b.name))
    });
    let rows = nodes
        .into_iter()
        .map(|node| {
            let kind = node.kind.as_str();
            view! {
                <tr class="row" data-node=node.name.clone() data-terminal=node.terminal.to_string()>
                    <td class=format!("mono flow-cell kind-{kind}")>{node.name.clone()}</td>
                    <td>{kind}</td>
                    <td class="num">{node.layer}</td>
                    <td class="num">{node.instances}</td>
                    <td class="num">{node.started_here}</td>
                    <td class="num" title="Settled instances whose last event it was / settled instances that had it">
                        {format!("{} / {}", node.ended_here, node.settled_instances)}
                    </td>
                    <td>
                        {if node.terminal {
                            view! { <strong class="flow-terminal-yes">"■ yes"</strong> }.into_any()
                        } else {
                            view! { <span class="muted">"no"</span> }.into_any()
                        }}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="nodes-title">
            <header class="panel-head">
                <h2 id="nodes-title">"Events"</h2>
                <span class="muted small">"an event ends instances when at least 90 % of the settled instances that reach it stop there"</span>
            </header>
            <div class="table-wrap">
                <table class="grid flow-table" data-test="flow-nodes">
                    <thead>
                        <tr>
                            <th scope="col">"Event"</th>
                            <th scope="col">"Kind"</th>
                            <th scope="col" class="num" title="Its usual position in the flow (0 = first)">"Order"</th>
                            <th scope="col" class="num">"Instances"</th>
                            <th scope="col" class="num">"Started here"</th>
                            <th scope="col" class="num">"Ended here / settled"</th>
                            <th scope="col">"Ends instances"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::Percentiles;

    fn node(name: &str, terminal: bool) -> FlowNode {
        FlowNode {
            name: name.into(),
            kind: FlowNodeKind::Forward,
            instances: 10,
            started_here: 0,
            ended_here: 0,
            settled_instances: 10,
            terminal,
            layer: 0,
        }
    }

    fn model(declared: bool, quiet: Option<i64>) -> FlowModel {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        FlowModel {
            saga_type: "scan_reward".into(),
            instances: 480,
            settled: 312,
            from: Some(at("2026-12-07T14:02:10Z")),
            to: Some(at("2026-12-07T15:10:59Z")),
            learned_at: at("2026-12-07T15:11:00Z"),
            declared,
            nodes: vec![
                node("ScanCompleted", false),
                node("ProfileUpdated", true),
                node("ScanRewardCompensated", true),
            ],
            edges: vec![FlowEdge {
                from: "ScanCompleted".into(),
                to: "ProfileUpdated".into(),
                count: 300,
                gap: Percentiles {
                    count: 300,
                    p50_ms: Some(800),
                    p95_ms: Some(2_000),
                    p99_ms: Some(2_500),
                    max_ms: Some(3_000),
                },
            }],
            duration: Percentiles::default(),
            quiet_after_ms: quiet,
        }
    }

    #[test]
    fn the_header_says_what_the_flow_was_learned_from() {
        assert_eq!(
            learned_sentence(&model(false, None)),
            "Learned from 480 instances started between 14:02 and 15:10 UTC (312 settled), relearned every 10 s."
        );
    }

    #[test]
    fn the_header_says_how_instances_end() {
        assert_eq!(
            ending_sentence(&model(false, Some(10_000))),
            "Its events do not declare an end: an instance ends at ProfileUpdated or ScanRewardCompensated; one that stops elsewhere is inferred finished after 10.0 s without an event (4× its slowest usual hop, 2.5 s)."
        );
        // Raised to the shortest quiet time, or cut to the stall timeout.
        assert!(ending_sentence(&model(false, Some(60_000))).contains("(the shortest quiet time;"));
        assert!(ending_sentence(&model(false, Some(5_000))).contains("(the stall timeout;"));
        assert_eq!(
            ending_sentence(&model(true, None)),
            "Its events declare its end; the flow is shown for reference."
        );
    }

    #[test]
    fn shares_and_lists_read_naturally() {
        assert_eq!(share_text(83, 100), "83 %");
        assert_eq!(share_text(1, 1000), "<1 %");
        assert_eq!(share_text(0, 0), "—");
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
        assert_eq!(or_list(&["a"]), "a");
    }
}
