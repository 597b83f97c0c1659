//! The learned flow of a saga type (`/api/v1/types/{saga_type}/flow`, the
//! `/types/{saga_type}` page): which events usually follow which, how long
//! each hop takes, which events end an instance. Learned by the server from
//! the type's latest instances; the walks over it (what comes next, the
//! rest of the usual path) live here so the browser can draw them too.

use serde::{Deserialize, Serialize};

use crate::{Percentiles, Timestamp};

/// What a node means for the instance's outcome (the diagram's colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FlowNodeKind {
    Forward,
    Failure,
    Compensation,
}

impl FlowNodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowNodeKind::Forward => "forward",
            FlowNodeKind::Failure => "failure",
            FlowNodeKind::Compensation => "compensation",
        }
    }
}

/// One kind of event of the type's instances: an event type, or for saga
/// state events that share one type, the step and its phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowNode {
    pub name: String,
    pub kind: FlowNodeKind,
    /// Instances (of those learned from) that had this event.
    pub instances: u64,
    /// Instances whose first event it was.
    pub started_here: u64,
    /// Settled instances whose last event it was.
    pub ended_here: u64,
    /// Settled instances that had it (the denominator of `ended_here`).
    pub settled_instances: u64,
    /// Learned to end an instance: the instances that reach it stop there
    /// (at least [`FLOW_TERMINAL_SHARE`] of at least
    /// [`FLOW_TERMINAL_MIN_INSTANCES`] settled ones).
    pub terminal: bool,
    /// Its place in the usual order (0 = first): the median position at
    /// which the instances reach it, for laying the diagram out.
    pub layer: u32,
}

/// A hop from one event to the next within an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowEdge {
    pub from: String,
    pub to: String,
    /// How often the hop was seen.
    pub count: u64,
    /// The time between the two events.
    pub gap: Percentiles,
}

/// The flow learned for one saga type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowModel {
    pub saga_type: String,
    /// Instances learned from: the type's latest, at most
    /// [`FLOW_MAX_INSTANCES`].
    pub instances: u64,
    /// Of those, the ones finished or quiet long enough that their last
    /// event tells how instances end.
    pub settled: u64,
    /// Start of the oldest instance learned from, and the latest event.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub learned_at: Timestamp,
    /// Its instances state their own end (a saga type or saga id from the
    /// messages or the rules); otherwise the model decides when they end.
    pub declared: bool,
    pub nodes: Vec<FlowNode>,
    pub edges: Vec<FlowEdge>,
    /// First to last event of the settled instances.
    pub duration: Percentiles,
    /// How long an undeclared instance that did not reach a terminal event
    /// may be quiet before it is inferred finished: a few times the p99 of
    /// the type's hops, within the sweep's bounds; None while there is no
    /// hop to learn from (the flat stall timeout applies).
    pub quiet_after_ms: Option<i64>,
}

/// Instances a model is learned from, at most (the type's latest).
pub const FLOW_MAX_INSTANCES: usize = 500;
/// An event ends instances once this share of the settled instances that
/// reached it stopped there…
pub const FLOW_TERMINAL_SHARE: f64 = 0.9;
/// … out of at least this many.
pub const FLOW_TERMINAL_MIN_INSTANCES: u64 = 5;

/// An undeclared instance is inferred finished after this many times the
/// p99 of its type's slowest usual hop without an event…
pub const FLOW_QUIET_P99_FACTOR: i64 = 4;
/// … but never sooner than this …
pub const FLOW_MIN_QUIET_MS: i64 = 10_000;
/// … where a usual hop is one seen at least this often (a rare branch
/// with one slow sample would stretch the quiet time of every instance).
pub const FLOW_MIN_HOPS_FOR_QUIET: u64 = 3;
/// No wait shorter than this is overdue, whatever the hop's p99: the
/// pipeline's own delay (the outbox relay, batching, the sweep) reaches a
/// second or two, so a fast flow's in-flight hop would flash overdue.
pub const FLOW_OVERDUE_FLOOR_MS: i64 = 5_000;

/// What a running instance waits for: the hop its model usually takes from
/// its last event, and whether it has waited longer than that hop's p99.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitingOn {
    pub after: String,
    pub next: String,
    pub waited_ms: i64,
    pub usual_p99_ms: Option<i64>,
    pub overdue: bool,
}

impl FlowModel {
    pub fn node(&self, name: &str) -> Option<&FlowNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The most frequent hop out of `name` (ties: the smaller name), if any.
    pub fn usual_next(&self, name: &str) -> Option<&FlowEdge> {
        self.edges
            .iter()
            .filter(|e| e.from == name && e.to != name)
            .max_by(|a, b| a.count.cmp(&b.count).then_with(|| b.to.cmp(&a.to)))
    }

    /// The usual rest of the path after `name`: the most frequent hops,
    /// until a terminal event, a node already on the path, or 16 hops.
    pub fn usual_rest(&self, name: &str) -> Vec<&FlowEdge> {
        let mut path: Vec<&FlowEdge> = Vec::new();
        let mut at = name;
        while path.len() < 16 {
            if self.node(at).is_some_and(|n| n.terminal) {
                break;
            }
            let Some(edge) = self.usual_next(at) else {
                break;
            };
            if edge.to == name || path.iter().any(|e| e.to == edge.to) {
                break;
            }
            path.push(edge);
            at = &edge.to;
        }
        path
    }

    /// What an instance whose last event is `last`, `waited_ms` ago, waits
    /// for; None when `last` ends instances or has no usual next hop.
    pub fn waiting_on(&self, last: &str, waited_ms: i64) -> Option<WaitingOn> {
        if self.node(last).is_some_and(|n| n.terminal) {
            return None;
        }
        let edge = self.usual_next(last)?;
        Some(WaitingOn {
            after: last.to_string(),
            next: edge.to.clone(),
            waited_ms,
            usual_p99_ms: edge.gap.p99_ms,
            overdue: edge
                .gap
                .p99_ms
                .is_some_and(|p99| waited_ms > p99.max(FLOW_OVERDUE_FLOOR_MS)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str, count: u64, p99: i64) -> FlowEdge {
        FlowEdge {
            from: from.into(),
            to: to.into(),
            count,
            gap: Percentiles {
                count: count as i64,
                p50_ms: Some(p99 / 2),
                p95_ms: Some(p99),
                p99_ms: Some(p99),
                max_ms: Some(p99),
            },
        }
    }

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

    fn model() -> FlowModel {
        FlowModel {
            saga_type: "Order".into(),
            instances: 10,
            settled: 10,
            from: None,
            to: None,
            learned_at: chrono::DateTime::UNIX_EPOCH,
            declared: false,
            nodes: vec![
                node("OrderCreated", false),
                node("PaymentAuthorized", false),
                node("PaymentFailed", false),
                node("OrderCompleted", true),
                node("Retry", false),
            ],
            edges: vec![
                edge("OrderCreated", "PaymentAuthorized", 8, 40_000),
                edge("OrderCreated", "PaymentFailed", 2, 1_000),
                edge("PaymentAuthorized", "OrderCompleted", 8, 2_000),
                edge("PaymentFailed", "Retry", 2, 100),
                edge("Retry", "PaymentFailed", 2, 100),
            ],
            duration: Percentiles::default(),
            quiet_after_ms: Some(160_000),
        }
    }

    #[test]
    fn waiting_on_names_the_usual_next_event_and_its_p99() {
        let m = model();
        let w = m.waiting_on("OrderCreated", 14 * 60_000).unwrap();
        assert_eq!(w.next, "PaymentAuthorized");
        assert_eq!(w.usual_p99_ms, Some(40_000));
        assert!(w.overdue);
        assert!(!m.waiting_on("OrderCreated", 1_000).unwrap().overdue);
        // Past a fast hop's p99 (1 s) but within the pipeline's own delay.
        assert!(!m.waiting_on("OrderCreated", 1_000).unwrap().overdue);
        let fast = m.waiting_on("PaymentAuthorized", 4_000).unwrap();
        assert_eq!((fast.usual_p99_ms, fast.overdue), (Some(2_000), false));
        assert!(m.waiting_on("PaymentAuthorized", 6_000).unwrap().overdue);
        // A terminal event waits for nothing; an unknown one neither.
        assert!(m.waiting_on("OrderCompleted", 1).is_none());
        assert!(m.waiting_on("Nope", 1).is_none());
    }

    #[test]
    fn the_usual_rest_stops_at_a_terminal_event_or_a_cycle() {
        let m = model();
        let rest: Vec<&str> = m
            .usual_rest("OrderCreated")
            .iter()
            .map(|e| e.to.as_str())
            .collect();
        assert_eq!(rest, ["PaymentAuthorized", "OrderCompleted"]);
        let cycle: Vec<&str> = m
            .usual_rest("PaymentFailed")
            .iter()
            .map(|e| e.to.as_str())
            .collect();
        assert_eq!(cycle, ["Retry"]);
    }
}
