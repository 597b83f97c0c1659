//! The span waterfall's shape, computed once per trace and shared by the
//! server render and the browser: the parent/child tree in display order,
//! which rows a set of collapsed spans leaves visible, the slice of rows a
//! scrolled viewport shows, and the time axis that spans and saga events
//! share. Pure functions (no clock, no DOM) so they are unit-tested here
//! and cheap enough for traces of `MAX_SPANS_PER_TRACE` spans.

use std::collections::{HashMap, HashSet};

use crate::{format_duration_ms, SpanStatus, SpanView, Timestamp};

/// Microseconds since the epoch: spans are often far shorter than a
/// millisecond, so the waterfall measures in µs.
pub fn micros(at: &Timestamp) -> i64 {
    at.timestamp_micros()
}

/// One row of the waterfall: a span at its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRow {
    /// Index of the span in the slice the tree was built from.
    pub span: usize,
    /// 0 for roots.
    pub depth: usize,
    /// Row index of the parent row; None for roots.
    pub parent: Option<usize>,
    /// Direct children.
    pub children: usize,
    /// Rows of the subtree including this one; they follow it directly
    /// (`rows[i..i + subtree_rows]`), as rows are in depth-first order.
    pub subtree_rows: usize,
    /// The span's own status is an error.
    pub error: bool,
    /// The span or a descendant has an error status (a collapsed row still
    /// shows that something below it failed).
    pub subtree_error: bool,
    /// The span names a parent that is not among the spans (not received,
    /// or beyond the limit): shown as a root.
    pub orphan: bool,
}

/// A closed interval of time in µs since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_us: i64,
    pub end_us: i64,
}

impl TimeRange {
    /// The range between two instants, in either order.
    pub fn new(a_us: i64, b_us: i64) -> TimeRange {
        TimeRange {
            start_us: a_us.min(b_us),
            end_us: a_us.max(b_us),
        }
    }

    /// The smallest range holding all of `times`; None when empty.
    pub fn of_times(times: impl IntoIterator<Item = i64>) -> Option<TimeRange> {
        times.into_iter().fold(None, |range, t| {
            Some(match range {
                None => TimeRange::new(t, t),
                Some(r) => r.including(t),
            })
        })
    }

    pub fn including(self, t_us: i64) -> TimeRange {
        TimeRange {
            start_us: self.start_us.min(t_us),
            end_us: self.end_us.max(t_us),
        }
    }

    pub fn union(self, other: TimeRange) -> TimeRange {
        TimeRange {
            start_us: self.start_us.min(other.start_us),
            end_us: self.end_us.max(other.end_us),
        }
    }

    /// The union of two optional ranges.
    pub fn union_of(a: Option<TimeRange>, b: Option<TimeRange>) -> Option<TimeRange> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.union(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn duration_us(&self) -> i64 {
        self.end_us - self.start_us
    }

    /// Where `t_us` lies in this range, in percent, clamped to 0–100 (an
    /// empty range puts everything at 0).
    pub fn percent(&self, t_us: i64) -> f64 {
        let total = self.duration_us();
        if total <= 0 {
            return 0.0;
        }
        ((t_us - self.start_us) as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// The waterfall of one trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanTree {
    /// Depth-first: each parent before its children, children by start.
    pub rows: Vec<SpanRow>,
    /// From the first start to the last end of the spans; None without spans.
    pub range: Option<TimeRange>,
    /// Distinct service names, sorted.
    pub services: Vec<String>,
    /// Spans with an error status.
    pub errors: usize,
    pub max_depth: usize,
}

/// Orders spans by start, then span id, then input position (stable for
/// equal starts, so the same trace always draws the same way).
fn by_start<'a>(spans: &'a [SpanView]) -> impl Fn(&usize, &usize) -> std::cmp::Ordering + 'a {
    move |&a, &b| {
        (spans[a].start, &spans[a].span_id, a).cmp(&(spans[b].start, &spans[b].span_id, b))
    }
}

/// Builds the waterfall rows of `spans` (any order). A span whose parent is
/// missing becomes a root (marked `orphan`); a span that is its own parent
/// is a root; a cycle of parents (corrupt data) is broken at its earliest
/// span. Iterative, so a chain of thousands of nested spans does not
/// overflow the stack.
pub fn build_span_tree(spans: &[SpanView]) -> SpanTree {
    let n = spans.len();
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, span) in spans.iter().enumerate() {
        by_id.entry(span.span_id.as_str()).or_insert(i);
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots: Vec<usize> = Vec::new();
    let mut orphan = vec![false; n];
    for (i, span) in spans.iter().enumerate() {
        let parent = span
            .parent_span_id
            .as_deref()
            .filter(|p| !p.is_empty() && *p != span.span_id);
        match parent.map(|p| by_id.get(p).copied()) {
            Some(Some(p)) if p != i => children[p].push(i),
            Some(_) => {
                orphan[i] = true;
                roots.push(i);
            }
            None => roots.push(i),
        }
    }
    let order = by_start(spans);
    roots.sort_by(&order);
    for list in &mut children {
        list.sort_by(&order);
    }

    let mut rows: Vec<SpanRow> = Vec::with_capacity(n);
    let mut visited = vec![false; n];
    let mut stack: Vec<(usize, usize, Option<usize>)> = Vec::new();
    let mut visit_from = |root: usize, rows: &mut Vec<SpanRow>, visited: &mut Vec<bool>| {
        stack.push((root, 0, None));
        while let Some((i, depth, parent)) = stack.pop() {
            if visited[i] {
                continue;
            }
            visited[i] = true;
            let row = rows.len();
            let error = spans[i].status == SpanStatus::Error;
            rows.push(SpanRow {
                span: i,
                depth,
                parent,
                children: 0,
                subtree_rows: 1,
                error,
                subtree_error: error,
                orphan: orphan[i],
            });
            for &child in children[i].iter().rev() {
                if !visited[child] {
                    stack.push((child, depth + 1, Some(row)));
                }
            }
        }
    };
    for &root in &roots {
        visit_from(root, &mut rows, &mut visited);
    }
    // Only a cycle of parents leaves spans unvisited.
    let mut rest: Vec<usize> = (0..n).filter(|&i| !visited[i]).collect();
    rest.sort_by(&order);
    for i in rest {
        if !visited[i] {
            visit_from(i, &mut rows, &mut visited);
        }
    }

    // Parents precede their children, so one backward pass sums subtrees.
    for r in (0..rows.len()).rev() {
        if let Some(p) = rows[r].parent {
            let (subtree, error) = (rows[r].subtree_rows, rows[r].subtree_error);
            let parent = &mut rows[p];
            parent.children += 1;
            parent.subtree_rows += subtree;
            parent.subtree_error |= error;
        }
    }

    let range = TimeRange::of_times(
        spans
            .iter()
            .flat_map(|s| [micros(&s.start), micros(&s.end)]),
    );
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    SpanTree {
        errors: rows.iter().filter(|r| r.error).count(),
        max_depth: rows.iter().map(|r| r.depth).max().unwrap_or(0),
        rows,
        range,
        services,
    }
}

impl SpanTree {
    /// Row indices left visible when the rows for which `collapsed(row)`
    /// holds hide their subtrees (the collapsed row itself stays).
    /// Skips hidden subtrees whole: O(visible rows).
    pub fn visible_rows(&self, collapsed: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut visible = Vec::new();
        let mut r = 0;
        while r < self.rows.len() {
            visible.push(r);
            r += if collapsed(r) && self.rows[r].children > 0 {
                self.rows[r].subtree_rows
            } else {
                1
            };
        }
        visible
    }

    /// [`Self::visible_rows`] for a set of collapsed span ids.
    pub fn visible_rows_collapsing(
        &self,
        spans: &[SpanView],
        collapsed: &HashSet<String>,
    ) -> Vec<usize> {
        if collapsed.is_empty() {
            return (0..self.rows.len()).collect();
        }
        self.visible_rows(|r| collapsed.contains(&spans[self.rows[r].span].span_id))
    }

    /// The span ids to collapse so that no row deeper than `depth` shows:
    /// every row at `depth` or deeper with children (so expanding one of
    /// them reveals just its children).
    pub fn collapsed_below_depth(&self, spans: &[SpanView], depth: usize) -> HashSet<String> {
        self.rows
            .iter()
            .filter(|r| r.depth >= depth && r.children > 0)
            .map(|r| spans[r.span].span_id.clone())
            .collect()
    }
}

/// The rows a scrolled viewport shows, with `overscan` rows above and
/// below: the half-open range of positions in the visible-rows list.
pub fn window_slice(
    scroll_top_px: f64,
    row_height_px: f64,
    viewport_rows: usize,
    overscan: usize,
    len: usize,
) -> (usize, usize) {
    let top = if scroll_top_px.is_finite() && row_height_px > 0.0 {
        (scroll_top_px.max(0.0) / row_height_px).floor() as usize
    } else {
        0
    };
    // Past the end (the list just got shorter): the last viewport.
    let top = top.min(len.saturating_sub(viewport_rows));
    let first = top.saturating_sub(overscan);
    let last = (top + viewport_rows + overscan).min(len).max(first);
    (first, last)
}

// ---------- the time axis ----------

/// At most this many intervals between ticks.
pub const SPAN_AXIS_MAX_INTERVALS: i64 = 5;
/// The narrowest bar drawn, in percent, so instant spans stay visible.
pub const MIN_BAR_PERCENT: f64 = 0.2;

/// 1-2-5 steps from 1 µs to 50 s, then minutes, hours and days.
fn tick_steps() -> impl Iterator<Item = i64> {
    let decades = (0..8).flat_map(|k| {
        let base = 10_i64.pow(k);
        [base, 2 * base, 5 * base]
    });
    let long = [
        60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800,
        604_800,
    ]
    .into_iter()
    .map(|s| s * 1_000_000);
    decades.chain(long)
}

/// One labelled tick of the span axis.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanAxisTick {
    /// From the start of the axis.
    pub offset_us: i64,
    /// "+0", "+200 µs", "+1.5 ms", "+2 s".
    pub label: String,
    pub percent: f64,
}

/// The time axis of a waterfall: 0 at the earliest span start or saga
/// event, rounded up to a whole number of tick steps.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanAxis {
    pub start_us: i64,
    pub end_us: i64,
    pub step_us: i64,
    pub ticks: Vec<SpanAxisTick>,
}

impl SpanAxis {
    /// The axis over `range` (None: an empty axis of 1 ms).
    pub fn new(range: Option<TimeRange>) -> SpanAxis {
        let range = range.unwrap_or(TimeRange::new(0, 1_000));
        let duration = range.duration_us().max(1);
        let step = tick_steps()
            .find(|step| (duration + step - 1) / step <= SPAN_AXIS_MAX_INTERVALS)
            .unwrap_or_else(|| {
                let days = 86_400_000_000_i64;
                let raw = duration / SPAN_AXIS_MAX_INTERVALS + 1;
                (raw + days - 1) / days * days
            });
        let intervals = ((duration + step - 1) / step).max(1);
        let end_us = range.start_us + intervals * step;
        let ticks = (0..=intervals)
            .map(|k| SpanAxisTick {
                offset_us: k * step,
                label: format!("+{}", format_duration_us(k * step)),
                percent: k as f64 / intervals as f64 * 100.0,
            })
            .collect();
        SpanAxis {
            start_us: range.start_us,
            end_us,
            step_us: step,
            ticks,
        }
    }

    fn range(&self) -> TimeRange {
        TimeRange::new(self.start_us, self.end_us)
    }

    /// Where the instant `t_us` (µs since the epoch) lies, in percent.
    pub fn percent(&self, t_us: i64) -> f64 {
        self.range().percent(t_us)
    }

    /// Left and width of a bar from `start_us` to `end_us`, in percent; at
    /// least [`MIN_BAR_PERCENT`] wide and inside the track.
    pub fn bar(&self, start_us: i64, end_us: i64) -> (f64, f64) {
        let left = self.percent(start_us.min(end_us));
        let right = self.percent(start_us.max(end_us));
        let width = (right - left).clamp(MIN_BAR_PERCENT, 100.0);
        (left.min(100.0 - width), width)
    }
}

/// Trims a fixed-point number: "1.500" → "1.5", "2.000" → "2".
fn trimmed(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A span duration in the largest fitting unit, µs-precise below a second:
/// "850 µs", "1.25 ms", "340 ms", "2.5 s", then as `format_duration_ms`.
pub fn format_duration_us(us: i64) -> String {
    let us = us.max(0);
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{} ms", trimmed(us as f64 / 1_000.0))
    } else if us < 60_000_000 {
        format!("{} s", trimmed(us as f64 / 1_000_000.0))
    } else {
        format_duration_ms(us / 1_000)
    }
}

/// "10,000": counts read at a glance.
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How many service colours the stylesheet defines (`--svc-0` …).
pub const SERVICE_COLOURS: usize = 10;

/// The colour slot of a service: a stable hash (FNV-1a) of its name, so a
/// service keeps its colour across traces, pages and reloads.
pub fn service_colour(service: &str) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in service.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as usize % SERVICE_COLOURS
}

/// The colour slot of each service of a trace: its [`service_colour`],
/// or the next free slot when another service of the trace has it (while
/// slots are free), so the services side by side differ. Services are
/// taken in name order, so the same set always gets the same colours.
pub fn service_colours(services: &[String]) -> HashMap<String, usize> {
    let mut sorted: Vec<&String> = services.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut taken = [false; SERVICE_COLOURS];
    let mut out = HashMap::with_capacity(sorted.len());
    for (n, service) in sorted.into_iter().enumerate() {
        let mut slot = service_colour(service);
        if n < SERVICE_COLOURS {
            while taken[slot] {
                slot = (slot + 1) % SERVICE_COLOURS;
            }
        }
        taken[slot] = true;
        out.insert(service.clone(), slot);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanKind, SpanView};

    const T0: i64 = 1_800_000_000_000_000;

    fn at(us: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_micros(T0 + us).unwrap()
    }

    fn span(id: &str, parent: Option<&str>, start: i64, end: i64) -> SpanView {
        SpanView {
            trace_id: "t".repeat(32),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: format!("op {id}"),
            service: format!("svc-{}", &id[..1]),
            kind: SpanKind::Internal,
            start: at(start),
            end: at(end),
            duration_us: end - start,
            status: SpanStatus::Unset,
            status_message: None,
            attributes: vec![],
            events: vec![],
        }
    }

    fn ids(spans: &[SpanView], tree: &SpanTree, rows: &[usize]) -> Vec<String> {
        rows.iter()
            .map(|&r| spans[tree.rows[r].span].span_id.clone())
            .collect()
    }

    fn order(spans: &[SpanView], tree: &SpanTree) -> Vec<String> {
        ids(spans, tree, &(0..tree.rows.len()).collect::<Vec<_>>())
    }

    #[test]
    fn children_follow_their_parent_by_start_with_depth_and_counts() {
        let spans = vec![
            span("c2", Some("b"), 30, 40),
            span("a", None, 0, 100),
            span("b", Some("a"), 10, 50),
            span("c1", Some("b"), 20, 25),
            span("d", Some("a"), 60, 90),
        ];
        let tree = build_span_tree(&spans);
        assert_eq!(order(&spans, &tree), ["a", "b", "c1", "c2", "d"]);
        let depths: Vec<usize> = tree.rows.iter().map(|r| r.depth).collect();
        assert_eq!(depths, [0, 1, 2, 2, 1]);
        let children: Vec<usize> = tree.rows.iter().map(|r| r.children).collect();
        assert_eq!(children, [2, 2, 0, 0, 0]);
        let subtree: Vec<usize> = tree.rows.iter().map(|r| r.subtree_rows).collect();
        assert_eq!(subtree, [5, 3, 1, 1, 1]);
        assert_eq!(tree.rows[2].parent, Some(1));
        assert_eq!(tree.range, Some(TimeRange::new(T0, T0 + 100)));
        assert_eq!(tree.max_depth, 2);
        assert_eq!(tree.services, ["svc-a", "svc-b", "svc-c", "svc-d"]);
    }

    #[test]
    fn orphans_become_roots_and_errors_bubble_up() {
        let mut spans = vec![
            span("a", None, 0, 10),
            span("b", Some("a"), 1, 5),
            span("c", Some("b"), 2, 3),
            span("x", Some("missing"), 5, 6),
            span("y", Some(""), 7, 8),
        ];
        spans[2].status = SpanStatus::Error;
        let tree = build_span_tree(&spans);
        assert_eq!(order(&spans, &tree), ["a", "b", "c", "x", "y"]);
        assert!(tree.rows[3].orphan && tree.rows[3].depth == 0);
        assert!(!tree.rows[4].orphan, "an empty parent id is a root");
        assert!(tree.rows[0].subtree_error && tree.rows[1].subtree_error);
        assert!(!tree.rows[0].error && tree.rows[2].error);
        assert!(!tree.rows[3].subtree_error);
        assert_eq!(tree.errors, 1);
    }

    #[test]
    fn self_parents_and_cycles_do_not_lose_spans() {
        let spans = vec![
            span("a", Some("a"), 0, 10),
            span("p", Some("q"), 1, 2),
            span("q", Some("p"), 3, 4),
        ];
        let tree = build_span_tree(&spans);
        assert_eq!(order(&spans, &tree), ["a", "p", "q"]);
        assert_eq!(tree.rows[2].parent, Some(1));
        assert_eq!(tree.rows[1].subtree_rows, 2);
    }

    #[test]
    fn a_chain_of_ten_thousand_spans_builds_without_recursion() {
        let spans: Vec<SpanView> = (0..10_000)
            .map(|i| {
                let parent = (i > 0).then(|| format!("s{}", i - 1));
                span(&format!("s{i}"), parent.as_deref(), i, 20_000 - i)
            })
            .collect();
        let tree = build_span_tree(&spans);
        assert_eq!(tree.rows.len(), 10_000);
        assert_eq!(tree.max_depth, 9_999);
        assert_eq!(tree.rows[0].subtree_rows, 10_000);
        let collapsed: HashSet<String> = ["s0".to_string()].into();
        assert_eq!(tree.visible_rows_collapsing(&spans, &collapsed), [0]);
    }

    #[test]
    fn collapsing_hides_subtrees_only() {
        let spans = vec![
            span("a", None, 0, 100),
            span("b", Some("a"), 10, 50),
            span("c1", Some("b"), 20, 25),
            span("c2", Some("b"), 30, 40),
            span("d", Some("a"), 60, 90),
            span("e", Some("d"), 61, 62),
        ];
        let tree = build_span_tree(&spans);
        let none = HashSet::new();
        assert_eq!(tree.visible_rows_collapsing(&spans, &none).len(), 6);
        let b: HashSet<String> = ["b".to_string()].into();
        let visible = tree.visible_rows_collapsing(&spans, &b);
        assert_eq!(ids(&spans, &tree, &visible), ["a", "b", "d", "e"]);
        // A collapsed leaf hides nothing.
        let leaf: HashSet<String> = ["c1".to_string()].into();
        assert_eq!(tree.visible_rows_collapsing(&spans, &leaf).len(), 6);
        // Collapsed inside a collapsed parent: still hidden, and back when
        // the parent opens.
        let both: HashSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(tree.visible_rows_collapsing(&spans, &both), [0]);
        let depth1 = tree.collapsed_below_depth(&spans, 1);
        let expected: HashSet<String> = ["b".to_string(), "d".to_string()].into();
        assert_eq!(depth1, expected);
        let visible = tree.visible_rows_collapsing(&spans, &depth1);
        assert_eq!(ids(&spans, &tree, &visible), ["a", "b", "d"]);
        let depth0 = tree.collapsed_below_depth(&spans, 0);
        assert_eq!(tree.visible_rows_collapsing(&spans, &depth0), [0]);
    }

    #[test]
    fn the_window_covers_the_viewport_and_overscan() {
        assert_eq!(window_slice(0.0, 26.0, 20, 10, 10_000), (0, 30));
        assert_eq!(window_slice(26.0 * 100.0, 26.0, 20, 10, 10_000), (90, 130));
        assert_eq!(
            window_slice(26.0 * 9_980.0, 26.0, 20, 10, 10_000),
            (9_970, 10_000)
        );
        // Scrolled past the end of a list that just shrank.
        assert_eq!(
            window_slice(26.0 * 9_995.0, 26.0, 20, 10, 10_000),
            (9_970, 10_000)
        );
        assert_eq!(window_slice(1e12, 26.0, 20, 10, 5), (0, 5));
        assert_eq!(window_slice(f64::NAN, 26.0, 20, 10, 3), (0, 3));
        assert_eq!(window_slice(-40.0, 26.0, 20, 10, 100), (0, 30));
    }

    #[test]
    fn ranges_union_and_place_instants() {
        let spans = TimeRange::new(100, 200);
        let events = TimeRange::of_times([50, 150]).unwrap();
        let both = spans.union(events);
        assert_eq!(both, TimeRange::new(50, 200));
        assert_eq!(both.percent(50), 0.0);
        assert_eq!(both.percent(125), 50.0);
        assert_eq!(both.percent(500), 100.0);
        assert_eq!(TimeRange::new(5, 5).percent(5), 0.0);
        assert_eq!(TimeRange::of_times([]), None);
        assert_eq!(TimeRange::union_of(None, Some(spans)), Some(spans));
        assert_eq!(TimeRange::new(9, 3), TimeRange::new(3, 9));
    }

    #[test]
    fn the_axis_rounds_out_to_whole_ticks_with_exact_labels() {
        let axis = SpanAxis::new(Some(TimeRange::new(T0, T0 + 930)));
        assert_eq!(axis.step_us, 200);
        assert_eq!(axis.end_us, T0 + 1_000);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            ["+0 µs", "+200 µs", "+400 µs", "+600 µs", "+800 µs", "+1 ms"]
        );
        assert_eq!(axis.percent(T0 + 500), 50.0);
        let axis = SpanAxis::new(Some(TimeRange::new(T0, T0 + 2_400_000)));
        assert_eq!(axis.step_us, 500_000);
        assert_eq!(axis.ticks[3].label, "+1.5 s");
        let axis = SpanAxis::new(Some(TimeRange::new(T0, T0 + 10 * 86_400_000_000)));
        assert!(axis.ticks.len() as i64 <= SPAN_AXIS_MAX_INTERVALS + 1);
        assert!(axis.end_us >= T0 + 10 * 86_400_000_000);
        let empty = SpanAxis::new(None);
        assert!(empty.end_us > empty.start_us);
        let instant = SpanAxis::new(Some(TimeRange::new(T0, T0)));
        assert_eq!(instant.ticks.len(), 2);
    }

    #[test]
    fn bars_stay_visible_and_inside_the_track() {
        let axis = SpanAxis::new(Some(TimeRange::new(0, 1_000)));
        assert_eq!(axis.bar(0, 500), (0.0, 50.0));
        assert_eq!(axis.bar(250, 250), (25.0, MIN_BAR_PERCENT));
        let (left, width) = axis.bar(1_000, 1_000);
        assert!((left + width - 100.0).abs() < 1e-9);
        assert_eq!(axis.bar(500, 0), (0.0, 50.0));
    }

    #[test]
    fn durations_counts_and_colours() {
        assert_eq!(format_duration_us(850), "850 µs");
        assert_eq!(format_duration_us(1_250), "1.25 ms");
        assert_eq!(format_duration_us(340_000), "340 ms");
        assert_eq!(format_duration_us(2_500_000), "2.5 s");
        assert_eq!(format_duration_us(190_000_000), "3 m 10 s");
        assert_eq!(format_duration_us(-3), "0 µs");
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(10_000), "10,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(
            service_colour("payment-service"),
            service_colour("payment-service")
        );
        assert!(service_colour("x") < SERVICE_COLOURS);
        let slots: HashSet<usize> = ["order", "payment", "stock", "shipping", "gateway"]
            .iter()
            .map(|s| service_colour(s))
            .collect();
        assert!(slots.len() > 1, "services spread over the palette");
        let names: Vec<String> = [
            "order-service",
            "payment-service",
            "inventory-service",
            "a",
            "b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let colours = service_colours(&names);
        let distinct: HashSet<usize> = colours.values().copied().collect();
        assert_eq!(distinct.len(), names.len(), "a trace's services differ");
        assert_eq!(
            colours,
            service_colours(&names.iter().rev().cloned().collect::<Vec<_>>())
        );
    }
}
