//! The learned flow of a saga type as an inline SVG, drawn on the server
//! (no script): events as boxes in columns by their usual order (`layer`),
//! hops as curved arrows whose width follows how often they were seen.

use std::collections::{BTreeSet, HashMap};

use leptos::prelude::*;
use sagascope_model::{format_duration_ms, FlowEdge, FlowModel, FlowNode, FlowNodeKind};

const NODE_W: f64 = 188.0;
const NODE_H: f64 = 44.0;
/// With names on two lines (`ReserveStock` / `Step started`).
const NODE_H_TWO_LINES: f64 = 58.0;
/// Wide enough for an edge label between two columns.
const COL_GAP: f64 = 120.0;
const ROW_GAP: f64 = 22.0;
const PAD: f64 = 16.0;
/// Room above the boxes for loops and hops back to an earlier column.
const LOOP_LANE: f64 = 44.0;
/// Room right of a column for hops between boxes of the same column.
const SIDE_LANE: f64 = 48.0;
/// Characters of a node name that fit its box (monospace 12 px).
const NAME_CHARS: usize = 23;

/// Where each node's box goes, and the drawing's size.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLayout {
    pub width: f64,
    pub height: f64,
    /// Every box's height: taller when some name needs two lines.
    pub node_h: f64,
    /// Top-left corner and column of each node, by name.
    pub boxes: HashMap<String, (f64, f64, usize)>,
}

/// Forward nodes first (the top band), then failures, then compensations;
/// within a kind the busiest first.
fn kind_rank(kind: FlowNodeKind) -> u8 {
    match kind {
        FlowNodeKind::Forward => 0,
        FlowNodeKind::Failure => 1,
        FlowNodeKind::Compensation => 2,
    }
}

/// Lays the nodes out left→right by layer; a layer's nodes are stacked,
/// forward ones in a top band shared by all columns so the happy path
/// reads as one row and failures and compensations sit below it.
pub fn layout(model: &FlowModel) -> FlowLayout {
    let layers: Vec<u32> = model
        .nodes
        .iter()
        .map(|n| n.layer)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let column_of = |layer: u32| layers.iter().position(|l| *l == layer).unwrap_or(0);
    let mut columns: Vec<Vec<&FlowNode>> = vec![Vec::new(); layers.len()];
    for node in &model.nodes {
        columns[column_of(node.layer)].push(node);
    }
    for column in &mut columns {
        column.sort_by(|a, b| {
            kind_rank(a.kind)
                .cmp(&kind_rank(b.kind))
                .then(b.instances.cmp(&a.instances))
                .then(a.name.cmp(&b.name))
        });
    }
    let forward_rows = columns
        .iter()
        .map(|c| c.iter().filter(|n| n.kind == FlowNodeKind::Forward).count())
        .max()
        .unwrap_or(0);
    let loops = model
        .edges
        .iter()
        .any(|e| e.from == e.to || node_layer(model, &e.to) < node_layer(model, &e.from));
    let top = PAD + if loops { LOOP_LANE } else { 0.0 };
    let node_h = if model.nodes.iter().any(|n| name_lines(&n.name).len() > 1) {
        NODE_H_TWO_LINES
    } else {
        NODE_H
    };
    let mut boxes = HashMap::new();
    let mut rows = 0;
    for (col, column) in columns.iter().enumerate() {
        let x = PAD + col as f64 * (NODE_W + COL_GAP);
        let forward = column
            .iter()
            .filter(|n| n.kind == FlowNodeKind::Forward)
            .count();
        for (i, node) in column.iter().enumerate() {
            // The others start below the tallest forward band.
            let row = if i < forward {
                i
            } else {
                forward_rows + i - forward
            };
            rows = rows.max(row + 1);
            let y = top + row as f64 * (node_h + ROW_GAP);
            boxes.insert(node.name.clone(), (x, y, col));
        }
    }
    let width = PAD * 2.0 + layers.len() as f64 * (NODE_W + COL_GAP) - COL_GAP + SIDE_LANE;
    let height = top + rows as f64 * (node_h + ROW_GAP) - ROW_GAP + PAD;
    FlowLayout {
        width: width.max(NODE_W + 2.0 * PAD),
        height: height.max(node_h + 2.0 * PAD),
        node_h,
        boxes,
    }
}

fn node_layer(model: &FlowModel, name: &str) -> u32 {
    model.node(name).map_or(0, |n| n.layer)
}

/// How a hop is drawn: its path, its label's anchor point and alignment,
/// and whether it goes back to an earlier column (drawn dashed).
#[derive(Debug, Clone, PartialEq)]
struct EdgeShape {
    d: String,
    label_x: f64,
    label_y: f64,
    anchor: &'static str,
    back: bool,
}

/// The path of a hop and where its label goes.
fn edge_path(layout: &FlowLayout, edge: &FlowEdge) -> Option<EdgeShape> {
    let &(x1, y1, c1) = layout.boxes.get(&edge.from)?;
    let &(x2, y2, c2) = layout.boxes.get(&edge.to)?;
    let node_h = layout.node_h;
    let mid1 = y1 + node_h / 2.0;
    let mid2 = y2 + node_h / 2.0;
    let shape = |d: String, (label_x, label_y): (f64, f64), anchor, back| EdgeShape {
        d,
        label_x,
        label_y,
        anchor,
        back,
    };
    let edge = if edge.from == edge.to {
        // A small loop on the box's top edge, within the gap above it; the
        // label left of it.
        let (sx, ex) = (x1 + NODE_W * 0.9, x1 + NODE_W * 0.74);
        let up = y1 - ROW_GAP * 0.8;
        shape(
            format!("M{sx:.1},{y1:.1} C{sx:.1},{up:.1} {ex:.1},{up:.1} {ex:.1},{y1:.1}"),
            (x1 + NODE_W * 0.7, y1 - 2.0),
            "end",
            false,
        )
    } else if c2 > c1 {
        // Onward: right side to left side.
        let (sx, ex) = (x1 + NODE_W, x2);
        let dx = ((ex - sx) / 2.0).max(30.0);
        shape(
            format!(
                "M{sx:.1},{mid1:.1} C{:.1},{mid1:.1} {:.1},{mid2:.1} {ex:.1},{mid2:.1}",
                sx + dx,
                ex - dx
            ),
            bezier_mid((sx, mid1), (sx + dx, mid1), (ex - dx, mid2), (ex, mid2)),
            "middle",
            false,
        )
    } else if c2 == c1 {
        // Within a column: out of the right side and back into it, above
        // and below the middle where the onward hops leave.
        let sx = x1 + NODE_W;
        let (from_y, to_y) = (y1 + node_h * 0.25, y2 + node_h * 0.75);
        let out = sx + SIDE_LANE;
        let (lx, ly) = bezier_mid((sx, from_y), (out, from_y), (out, to_y), (sx, to_y));
        shape(
            format!(
                "M{sx:.1},{from_y:.1} C{out:.1},{from_y:.1} {out:.1},{to_y:.1} {sx:.1},{to_y:.1}"
            ),
            (lx + 4.0, ly + 8.0),
            "start",
            false,
        )
    } else {
        // Back to an earlier column: over the top of the boxes (behind
        // any box in between), dashed.
        let (sx, ex) = (x1 + NODE_W * 0.3, x2 + NODE_W * 0.7);
        let lane = PAD + 4.0;
        shape(
            format!("M{sx:.1},{y1:.1} C{sx:.1},{lane:.1} {ex:.1},{lane:.1} {ex:.1},{y2:.1}"),
            bezier_mid((sx, y1), (sx, lane), (ex, lane), (ex, y2)),
            "middle",
            true,
        )
    };
    Some(edge)
}

fn bezier_mid(p0: (f64, f64), p1: (f64, f64), p2: (f64, f64), p3: (f64, f64)) -> (f64, f64) {
    (
        (p0.0 + 3.0 * p1.0 + 3.0 * p2.0 + p3.0) / 8.0,
        (p0.1 + 3.0 * p1.1 + 3.0 * p2.1 + p3.1) / 8.0,
    )
}

/// Stroke width by how often the hop was seen (square root, so rare hops
/// stay visible next to the main path).
fn stroke_width(count: u64, max: u64) -> f64 {
    let share = count as f64 / max.max(1) as f64;
    (1.2 + 3.8 * share.sqrt()).clamp(1.2, 5.0)
}

/// A node name as the box shows it: one line when it fits, else a saga
/// state event's step and phase (`ReserveStock · Step started`) on two.
pub fn name_lines(name: &str) -> Vec<String> {
    if name.chars().count() <= NAME_CHARS {
        return vec![name.to_string()];
    }
    match name.split_once(" · ") {
        Some((step, phase)) => vec![fit_name(step), fit_name(phase)],
        None => vec![fit_name(name)],
    }
}

/// `name` cut to what fits the box (the full name is in the `<title>`).
/// Namespaced names (`com.shop.payment.PaymentFailed`) lose their leading
/// segments, which they share with their neighbours; others their end.
pub fn fit_name(name: &str) -> String {
    let len = |s: &str| s.chars().count();
    if len(name) <= NAME_CHARS {
        return name.to_string();
    }
    let mut tail = String::new();
    for segment in name.rsplit('.') {
        let next = if tail.is_empty() {
            segment.to_string()
        } else {
            format!("{segment}.{tail}")
        };
        if len(&next) + 1 > NAME_CHARS {
            break;
        }
        tail = next;
    }
    if !tail.is_empty() && tail != name {
        return format!("…{tail}");
    }
    let head: String = name.chars().take(NAME_CHARS - 1).collect();
    format!("{head}…")
}

fn gap_text(ms: Option<i64>) -> String {
    ms.map(format_duration_ms).unwrap_or_else(|| "—".into())
}

/// The edge label: how often, and how long the hop takes at p99.
pub fn edge_label(edge: &FlowEdge) -> String {
    format!("{} · p99 {}", edge.count, gap_text(edge.gap.p99_ms))
}

#[component]
pub fn FlowDiagram(model: FlowModel) -> impl IntoView {
    let layout = layout(&model);
    let max_count = model.edges.iter().map(|e| e.count).max().unwrap_or(1);
    let kind_of = |name: &str| model.node(name).map_or(FlowNodeKind::Forward, |n| n.kind);
    let summary = format!(
        "Learned flow of {}: {} events, {} hops",
        model.saga_type,
        model.nodes.len(),
        model.edges.len()
    );

    let label = summary.clone();
    let drawn: Vec<(&FlowEdge, EdgeShape)> = model
        .edges
        .iter()
        .filter_map(|e| edge_path(&layout, e).map(|shape| (e, shape)))
        .collect();
    let edges = drawn
        .iter()
        .map(|(edge, shape)| {
            let kind = kind_of(&edge.to).as_str();
            let title = format!(
                "{} → {}: seen {} times; gap p50 {}, p99 {}",
                edge.from,
                edge.to,
                edge.count,
                gap_text(edge.gap.p50_ms),
                gap_text(edge.gap.p99_ms)
            );
            view! {
                <g
                    class=format!("flow-edge kind-{kind}{}", if shape.back { " back" } else { "" })
                    data-test="flow-edge"
                    data-from=edge.from.clone()
                    data-to=edge.to.clone()
                >
                    <title>{title}</title>
                    <path
                        d=shape.d.clone()
                        stroke-width=format!("{:.1}", stroke_width(edge.count, max_count))
                        marker-end=format!("url(#flow-arrow-{kind})")
                    />
                </g>
            }
        })
        .collect_view();
    // Labels over the boxes and paths, with a halo in the panel colour.
    let labels = drawn
        .iter()
        .map(|(edge, shape)| {
            view! {
                <text
                    class="flow-edge-label"
                    x=format!("{:.1}", shape.label_x)
                    y=format!("{:.1}", shape.label_y - 4.0)
                    text-anchor=shape.anchor
                >
                    {edge_label(edge)}
                </text>
            }
        })
        .collect_view();
    let nodes = model
        .nodes
        .iter()
        .filter_map(|node| {
            let &(x, y, _) = layout.boxes.get(&node.name)?;
            Some(view! { <FlowNodeBox node=node.clone() x y height=layout.node_h/> })
        })
        .collect_view();
    let markers = [
        FlowNodeKind::Forward,
        FlowNodeKind::Failure,
        FlowNodeKind::Compensation,
    ]
    .map(|kind| {
        view! {
            <marker
                id=format!("flow-arrow-{}", kind.as_str())
                class=format!("flow-arrow kind-{}", kind.as_str())
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerWidth="9"
                markerHeight="9"
                markerUnits="userSpaceOnUse"
                orient="auto"
            >
                <path d="M0,0 L10,5 L0,10 z"/>
            </marker>
        }
    });

    view! {
        <div class="flow-scroll">
            <svg
                class="flow-diagram"
                width=format!("{:.0}", layout.width)
                height=format!("{:.0}", layout.height)
                viewBox=format!("0 0 {:.0} {:.0}", layout.width, layout.height)
                role="img"
                aria-label=label
                data-test="flow-diagram"
            >
                <title>{summary}</title>
                <defs>{markers.into_iter().collect_view()}</defs>
                <g class="flow-edges">{edges}</g>
                <g class="flow-nodes">{nodes}</g>
                <g class="flow-labels" aria-hidden="true">{labels}</g>
            </svg>
        </div>
    }
    .into_any()
}

#[component]
fn FlowNodeBox(node: FlowNode, x: f64, y: f64, height: f64) -> impl IntoView {
    let kind = node.kind.as_str();
    let mut title = format!(
        "{} ({kind}): in {} instances; first event of {}; last event of {} of {} settled",
        node.name, node.instances, node.started_here, node.ended_here, node.settled_instances
    );
    if node.terminal {
        title.push_str("; ends the instances that reach it");
    }
    let starts = node.started_here > 0 && node.started_here * 2 >= node.instances;
    let lines = name_lines(&node.name);
    let count_y = (height - 10.0).to_string();
    let second = lines.get(1).cloned();
    view! {
        <g
            class=format!("flow-node kind-{kind}{}", if node.terminal { " terminal" } else { "" })
            data-test="flow-node"
            data-node=node.name.clone()
            data-kind=kind
            data-terminal=if node.terminal { "true" } else { "false" }
            transform=format!("translate({x:.1},{y:.1})")
        >
            <title>{title}</title>
            <rect class="flow-box" width=NODE_W.to_string() height=height.to_string() rx="6"/>
            {node.terminal.then(|| view! {
                <rect class="flow-box-inner" x="3.5" y="3.5" width=(NODE_W - 7.0).to_string() height=(height - 7.0).to_string() rx="4"/>
            })}
            <text class="flow-name" x="10" y="18">{lines[0].clone()}</text>
            {second.map(|line| view! { <text class="flow-name flow-name-2" x="10" y="32">{line}</text> })}
            <text class="flow-count" x="10" y=count_y.clone()>
                {format!("{} instance{}", node.instances, if node.instances == 1 { "" } else { "s" })}
            </text>
            {starts.then(|| view! {
                <text class="flow-mark flow-start" x=(NODE_W - 10.0).to_string() y="18" text-anchor="end">"▶ start"</text>
            })}
            {node.terminal.then(|| view! {
                <text class="flow-mark flow-end" x=(NODE_W - 10.0).to_string() y=count_y text-anchor="end">"■ end"</text>
            })}
        </g>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::Percentiles;

    fn node(name: &str, kind: FlowNodeKind, layer: u32, instances: u64) -> FlowNode {
        FlowNode {
            name: name.into(),
            kind,
            instances,
            started_here: 0,
            ended_here: 0,
            settled_instances: 0,
            terminal: false,
            layer,
        }
    }

    fn edge(from: &str, to: &str, count: u64) -> FlowEdge {
        FlowEdge {
            from: from.into(),
            to: to.into(),
            count,
            gap: Percentiles {
                count: count as i64,
                p50_ms: Some(100),
                p95_ms: Some(900),
                p99_ms: Some(1_200),
                max_ms: Some(2_000),
            },
        }
    }

    fn model(edges: Vec<FlowEdge>) -> FlowModel {
        FlowModel {
            saga_type: "Order".into(),
            instances: 10,
            settled: 10,
            from: None,
            to: None,
            learned_at: chrono::DateTime::UNIX_EPOCH,
            declared: false,
            nodes: vec![
                node("OrderCreated", FlowNodeKind::Forward, 0, 10),
                node("PaymentFailed", FlowNodeKind::Failure, 1, 2),
                node("PaymentAuthorized", FlowNodeKind::Forward, 1, 8),
                node("StockReleased", FlowNodeKind::Compensation, 2, 2),
                node("OrderConfirmed", FlowNodeKind::Forward, 2, 8),
            ],
            edges,
            duration: Percentiles::default(),
            quiet_after_ms: None,
        }
    }

    #[test]
    fn layers_become_columns_and_forward_nodes_sit_on_top() {
        let m = model(vec![edge("OrderCreated", "PaymentAuthorized", 8)]);
        let l = layout(&m);
        let (x0, y0, c0) = l.boxes["OrderCreated"];
        let (x1, y1, c1) = l.boxes["PaymentAuthorized"];
        let (_, yf, cf) = l.boxes["PaymentFailed"];
        let (_, yc, _) = l.boxes["StockReleased"];
        assert_eq!((c0, c1, cf), (0, 1, 1));
        assert!(x1 > x0);
        assert_eq!(y0, y1, "the happy path is one row");
        assert!(yf > y1 && yc > y1, "failures and compensations below");
        assert!(l.width >= x1 + NODE_W && l.height >= yf + NODE_H);
    }

    #[test]
    fn every_edge_gets_a_path_and_loops_get_room_above() {
        let m = model(vec![
            edge("OrderCreated", "PaymentAuthorized", 8),
            edge("PaymentAuthorized", "PaymentFailed", 1),
            edge("OrderConfirmed", "OrderCreated", 1),
            edge("PaymentFailed", "PaymentFailed", 1),
        ]);
        let l = layout(&m);
        assert!(l.boxes["OrderCreated"].1 >= PAD + LOOP_LANE);
        for e in &m.edges {
            let shape = edge_path(&l, e).unwrap();
            assert!(
                shape.d.starts_with('M') && shape.d.contains('C'),
                "{}",
                shape.d
            );
            assert_eq!(shape.back, e.to == "OrderCreated");
        }
        assert!(edge_path(&l, &edge("Nope", "OrderCreated", 1)).is_none());
    }

    #[test]
    fn labels_widths_and_names_read_well() {
        assert_eq!(edge_label(&edge("a", "b", 42)), "42 · p99 1.2 s");
        assert!((stroke_width(1, 100) - 1.58).abs() < 1e-9);
        assert!((stroke_width(100, 100) - 5.0).abs() < 1e-9);
        assert_eq!(fit_name("Short"), "Short");
        assert_eq!(
            name_lines("AuthorizePayment · Step succeeded"),
            ["AuthorizePayment", "Step succeeded"]
        );
        assert_eq!(name_lines("Saga started"), ["Saga started"]);
        assert_eq!(
            fit_name("com.shop.payment.PaymentAuthorized"),
            "…PaymentAuthorized"
        );
        let long = fit_name("PaymentAuthorizedWithManyExtras");
        assert_eq!(long.chars().count(), NAME_CHARS);
        assert!(long.ends_with('…'));
    }
}
