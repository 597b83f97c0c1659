//! Learning a saga type's flow ([`FlowModel`]) from its latest instances:
//! the hops between consecutive events with their gaps, the events that
//! end instances, the usual duration, and how long an undeclared instance
//! may be quiet before it is inferred finished.
//!
//! Pure: the store reads the instances (their events in order), the server
//! learns every few seconds and hands the sweep what the models decided.
//! A model is rebuilt from a bounded sample of the type's latest instances
//! rather than kept as counters: its cost does not grow with history, and a
//! flow that changed (a deploy) is relearned within one sample.

use std::collections::{BTreeMap, HashMap};

use sagascope_model::{
    FlowEdge, FlowModel, FlowNode, FlowNodeKind, Phase, Timestamp, FLOW_MIN_HOPS_FOR_QUIET,
    FLOW_MIN_QUIET_MS as MIN_QUIET_MS, FLOW_QUIET_P99_FACTOR as QUIET_P99_FACTOR,
    FLOW_TERMINAL_MIN_INSTANCES, FLOW_TERMINAL_SHARE,
};

use crate::histogram::{percentiles, value_bucket};
use crate::projection::from_micros;
use crate::saga_event::SagaEvent;

/// An instance is treated as settled (its last event may end instances)
/// after this many times the p99 of the type's slowest usual hop.
const SETTLE_P99_FACTOR: i64 = 5;

/// One event of an instance, as the flow sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEvent {
    pub node: String,
    pub phase: Phase,
    pub at_us: i64,
}

/// One instance of the type, its events in timeline order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInstance {
    pub events: Vec<FlowEvent>,
    /// Its status is a finished one (stated, by name, or inferred).
    pub finished: bool,
}

/// The node of an event: its type, which names what happened
/// (`PaymentFailed`, `com.acme.payment.failed`); for a saga state event,
/// whose one type (`OrderSagaState`) is shared by every step, its step and
/// phase (`ReserveStock · step failed`).
pub fn flow_node_name(
    event_type: &str,
    step: Option<&str>,
    phase: Phase,
    state_event: bool,
) -> String {
    match step {
        Some(step) if state_event && phase != Phase::Event => format!("{step} · {}", phase.label()),
        _ if state_event && phase != Phase::Event => phase.label().to_string(),
        _ => event_type.to_string(),
    }
}

/// A saga state event states its saga type, step and phase itself (an
/// orchestrator's), rather than the rules reading them off its name.
pub fn is_state_event(rule_classified: bool, saga_type: Option<&str>) -> bool {
    !rule_classified && saga_type.is_some()
}

/// The flow node of a decoded event.
pub fn flow_node_of(event: &SagaEvent) -> String {
    flow_node_name(
        &event.event_type,
        event.step.as_deref(),
        event.phase,
        is_state_event(event.rule_classified, event.saga_type.as_deref()),
    )
}

fn kind_of(phase: Phase) -> FlowNodeKind {
    if phase.is_compensation() {
        FlowNodeKind::Compensation
    } else if phase.is_failure() {
        FlowNodeKind::Failure
    } else {
        FlowNodeKind::Forward
    }
}

/// What the learning is told besides the instances.
#[derive(Debug, Clone, Copy)]
pub struct LearnContext {
    pub now: Timestamp,
    /// The flat stall timeout: the upper bound of every learned quiet time.
    pub stall_after_ms: i64,
    /// The type's instances state their own end.
    pub declared: bool,
}

#[derive(Default)]
struct NodeTally {
    kind: Option<FlowNodeKind>,
    instances: u64,
    started_here: u64,
    ended_here: u64,
    settled_instances: u64,
    positions: Vec<u32>,
}

/// Learns the flow of `saga_type` from `instances` (any order).
pub fn learn_flow(saga_type: &str, instances: &[FlowInstance], context: LearnContext) -> FlowModel {
    let instances: Vec<&FlowInstance> = instances.iter().filter(|i| !i.events.is_empty()).collect();
    let mut edges: BTreeMap<(String, String), BTreeMap<i64, i64>> = BTreeMap::new();
    for instance in &instances {
        for pair in instance.events.windows(2) {
            let gap_ms = (pair[1].at_us - pair[0].at_us).max(0) / 1000;
            *edges
                .entry((pair[0].node.clone(), pair[1].node.clone()))
                .or_default()
                .entry(value_bucket(gap_ms))
                .or_default() += 1;
        }
    }
    let edges: Vec<FlowEdge> = edges
        .into_iter()
        .map(|((from, to), buckets)| {
            let buckets: Vec<(i64, i64)> = buckets.into_iter().collect();
            let gap = percentiles(&buckets);
            FlowEdge {
                from,
                to,
                count: gap.count as u64,
                gap,
            }
        })
        .collect();

    // The slowest usual hop sets both the quiet time and when an instance
    // has settled.
    let usual: Vec<&FlowEdge> = edges
        .iter()
        .filter(|e| e.count >= FLOW_MIN_HOPS_FOR_QUIET)
        .collect();
    let hops = if usual.is_empty() {
        edges.iter().collect()
    } else {
        usual
    };
    let slowest_p99 = hops.iter().filter_map(|e| e.gap.p99_ms).max();
    let stall_after_ms = context.stall_after_ms.max(MIN_QUIET_MS);
    let quiet_after_ms = slowest_p99
        .map(|p99| (p99.saturating_mul(QUIET_P99_FACTOR)).clamp(MIN_QUIET_MS, stall_after_ms));
    let settle_after_ms = slowest_p99
        .map(|p99| (p99.saturating_mul(SETTLE_P99_FACTOR)).clamp(MIN_QUIET_MS, stall_after_ms))
        .unwrap_or(stall_after_ms);
    let now_us = crate::projection::micros(context.now);

    let mut nodes: HashMap<&str, NodeTally> = HashMap::new();
    let mut durations: BTreeMap<i64, i64> = BTreeMap::new();
    let mut settled = 0u64;
    let (mut from_us, mut to_us) = (i64::MAX, i64::MIN);
    for instance in &instances {
        let first = &instance.events[0];
        let last = &instance.events[instance.events.len() - 1];
        from_us = from_us.min(first.at_us);
        to_us = to_us.max(last.at_us);
        let quiet_ms = (now_us - last.at_us) / 1000;
        let is_settled = instance.finished || quiet_ms >= settle_after_ms;
        if is_settled {
            settled += 1;
            *durations
                .entry(value_bucket((last.at_us - first.at_us).max(0) / 1000))
                .or_default() += 1;
        }
        let mut seen: Vec<&str> = Vec::new();
        for (position, event) in instance.events.iter().enumerate() {
            if seen.contains(&event.node.as_str()) {
                continue;
            }
            seen.push(&event.node);
            let tally = nodes.entry(&event.node).or_default();
            // A node's colour is its most serious phase seen.
            let kind = kind_of(event.phase);
            tally.kind = Some(match (tally.kind, kind) {
                (Some(FlowNodeKind::Compensation), _) | (_, FlowNodeKind::Compensation) => {
                    FlowNodeKind::Compensation
                }
                (Some(FlowNodeKind::Failure), _) | (_, FlowNodeKind::Failure) => {
                    FlowNodeKind::Failure
                }
                _ => FlowNodeKind::Forward,
            });
            tally.instances += 1;
            tally.positions.push(position as u32);
            if is_settled {
                tally.settled_instances += 1;
            }
        }
        nodes.entry(&first.node).or_default().started_here += 1;
        if is_settled {
            nodes.entry(&last.node).or_default().ended_here += 1;
        }
    }

    let mut nodes: Vec<FlowNode> = nodes
        .into_iter()
        .map(|(name, mut tally)| {
            tally.positions.sort_unstable();
            let layer = tally
                .positions
                .get(tally.positions.len().saturating_sub(1) / 2)
                .copied()
                .unwrap_or_default();
            let terminal = tally.settled_instances >= FLOW_TERMINAL_MIN_INSTANCES
                && tally.ended_here as f64 >= FLOW_TERMINAL_SHARE * tally.settled_instances as f64;
            FlowNode {
                name: name.to_string(),
                kind: tally.kind.unwrap_or(FlowNodeKind::Forward),
                instances: tally.instances,
                started_here: tally.started_here,
                ended_here: tally.ended_here,
                settled_instances: tally.settled_instances,
                terminal,
                layer,
            }
        })
        .collect();
    nodes.sort_by(|a, b| {
        (a.layer, std::cmp::Reverse(a.instances), &a.name).cmp(&(
            b.layer,
            std::cmp::Reverse(b.instances),
            &b.name,
        ))
    });
    let durations: Vec<(i64, i64)> = durations.into_iter().collect();
    FlowModel {
        saga_type: saga_type.to_string(),
        instances: instances.len() as u64,
        settled,
        from: (from_us != i64::MAX).then(|| from_micros(from_us)),
        to: (to_us != i64::MIN).then(|| from_micros(to_us)),
        learned_at: context.now,
        declared: context.declared,
        nodes,
        edges,
        duration: percentiles(&durations),
        quiet_after_ms: if context.declared {
            None
        } else {
            quiet_after_ms
        },
    }
}

/// The events that end an undeclared type's instances as soon as they
/// arrive, by the model (none for declared types: their events say so).
pub fn learned_terminals(model: &FlowModel) -> Vec<String> {
    if model.declared {
        return Vec::new();
    }
    model
        .nodes
        .iter()
        .filter(|n| n.terminal)
        .map(|n| n.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const T0: i64 = 1_765_000_000_000_000;

    fn instance(steps: &[(&str, Phase, i64)], finished: bool) -> FlowInstance {
        FlowInstance {
            events: steps
                .iter()
                .map(|(node, phase, at_ms)| FlowEvent {
                    node: node.to_string(),
                    phase: *phase,
                    at_us: T0 + at_ms * 1000,
                })
                .collect(),
            finished,
        }
    }

    fn context(now_ms: i64) -> LearnContext {
        LearnContext {
            now: Utc.timestamp_micros(T0 + now_ms * 1000).unwrap(),
            stall_after_ms: 300_000,
            declared: false,
        }
    }

    /// The scan-reward choreography of the design documents: 30 that end
    /// at ProfileUpdated, 6 whose CharacterAcquire failed and compensated.
    fn scan_rewards() -> Vec<FlowInstance> {
        let mut out = Vec::new();
        for i in 0..30 {
            let s = i * 10_000;
            out.push(instance(
                &[
                    ("ImageRegistered", Phase::Event, s),
                    ("ScanCompleted", Phase::Event, s + 1_000 + i * 10),
                    ("CharacterAcquired", Phase::Event, s + 1_500 + i * 10),
                    ("ProfileUpdated", Phase::Event, s + 2_000 + i * 10),
                ],
                false,
            ));
        }
        for i in 0..6 {
            let s = 400_000 + i * 10_000;
            out.push(instance(
                &[
                    ("ImageRegistered", Phase::Event, s),
                    ("ScanCompleted", Phase::Event, s + 1_000),
                    ("CharacterAcquireFailed", Phase::StepFailed, s + 1_400),
                    ("ScanRewardCompensated", Phase::StepCompensated, s + 2_000),
                ],
                false,
            ));
        }
        out
    }

    #[test]
    fn a_choreography_learns_its_order_gaps_and_end_events() {
        let model = learn_flow("ImageRegistered", &scan_rewards(), context(600_000));
        assert_eq!(model.instances, 36);
        assert_eq!(model.settled, 36);
        let names: Vec<&str> = model.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ImageRegistered",
                "ScanCompleted",
                "CharacterAcquired",
                "CharacterAcquireFailed",
                "ProfileUpdated",
                "ScanRewardCompensated"
            ]
        );
        assert_eq!(model.node("ImageRegistered").unwrap().started_here, 36);
        assert_eq!(
            learned_terminals(&model),
            ["ProfileUpdated", "ScanRewardCompensated"]
        );
        assert_eq!(
            model.node("CharacterAcquireFailed").unwrap().kind,
            FlowNodeKind::Failure
        );
        assert_eq!(
            model.node("ScanRewardCompensated").unwrap().kind,
            FlowNodeKind::Compensation
        );
        let hop = model
            .edges
            .iter()
            .find(|e| e.from == "ImageRegistered" && e.to == "ScanCompleted")
            .unwrap();
        assert_eq!(hop.count, 36);
        assert_eq!(hop.gap.p50_ms, Some(1_100));
        assert_eq!(hop.gap.p99_ms, Some(1_200));
        // The slowest usual hop is ~1.3 s: 4× that is under the floor.
        assert_eq!(model.quiet_after_ms, Some(MIN_QUIET_MS));
        assert_eq!(model.duration.count, 36);
        assert_eq!(
            model.usual_next("ScanCompleted").unwrap().to,
            "CharacterAcquired"
        );
    }

    #[test]
    fn instances_still_moving_do_not_teach_where_instances_end() {
        // Every instance's last event is a second old: none has settled, so
        // nothing is terminal yet (ScanCompleted is not an end just because
        // the newest instances are there now).
        let mut young = scan_rewards();
        for instance in &mut young {
            instance.events.truncate(2);
            let shift = T0 + 500_000_000 - instance.events[1].at_us;
            for event in &mut instance.events {
                event.at_us += shift;
            }
        }
        let model = learn_flow("ImageRegistered", &young, context(501_000));
        assert_eq!(model.settled, 0);
        assert!(learned_terminals(&model).is_empty());
        // A finished status settles an instance at once.
        for instance in &mut young {
            instance.finished = true;
        }
        let model = learn_flow("ImageRegistered", &young, context(501_000));
        assert_eq!(learned_terminals(&model), ["ScanCompleted"]);
    }

    #[test]
    fn a_slow_hop_stretches_the_quiet_time_within_the_bounds() {
        let slow: Vec<FlowInstance> = (0..10)
            .map(|i| {
                instance(
                    &[
                        ("OrderCreated", Phase::Event, i * 1_000),
                        ("PaymentAuthorized", Phase::Event, i * 1_000 + 40_000),
                        ("OrderCompleted", Phase::Event, i * 1_000 + 41_000),
                    ],
                    true,
                )
            })
            .collect();
        let model = learn_flow("OrderCreated", &slow, context(1_000_000));
        assert_eq!(model.quiet_after_ms, Some(160_000));
        let mut tight = context(1_000_000);
        tight.stall_after_ms = 60_000;
        assert_eq!(
            learn_flow("OrderCreated", &slow, tight).quiet_after_ms,
            Some(60_000)
        );
        // Declared types end by their own events: no quiet time, no
        // learned terminals.
        let mut declared = context(1_000_000);
        declared.declared = true;
        let model = learn_flow("OrderCreated", &slow, declared);
        assert_eq!(model.quiet_after_ms, None);
        assert!(model.node("OrderCompleted").unwrap().terminal);
        assert!(learned_terminals(&model).is_empty());
    }

    #[test]
    fn a_shared_state_event_type_is_split_by_step_and_phase() {
        assert_eq!(
            flow_node_name(
                "OrderSagaState",
                Some("ReserveStock"),
                Phase::StepFailed,
                true
            ),
            format!("ReserveStock · {}", Phase::StepFailed.label())
        );
        assert_eq!(
            flow_node_name("PaymentFailed", Some("Payment"), Phase::StepFailed, false),
            "PaymentFailed"
        );
        assert!(learn_flow("x", &[], context(0)).nodes.is_empty());
    }
}
