//! Inline SVG charts drawn by our own code: a sparkline for table cells and
//! a small line/area chart with axes. No scripts: the server renders them,
//! and hover values come from SVG `<title>` elements (the browser's
//! tooltip), one per time bucket.
//!
//! Colours come from CSS (`currentColor` of a tone class), so both themes
//! and the status palette apply. Missing values (`None`, e.g. a rate with
//! nothing finished in that bucket) leave a gap instead of drawing zero.

use leptos::prelude::*;
use sagascope_model::Timestamp;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStyle {
    /// A solid line.
    Line,
    /// A thin dashed line (secondary figures such as p50).
    Dashed,
    /// A faint filled area from zero (an envelope such as max).
    Area,
}

/// One series of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    /// Name in the legend and the hover text.
    pub name: String,
    /// CSS class that sets `color` (the stroke/fill use `currentColor`).
    pub tone: &'static str,
    pub style: SeriesStyle,
    /// One value per time bucket; `None` is a gap.
    pub values: Vec<Option<f64>>,
}

/// Formats a value of a chart for labels and hover texts.
pub type ValueFormat = fn(f64) -> String;

/// Rounds up to 1, 2 or 5 × 10ⁿ: the step of readable axis ticks.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Top of the y scale and the tick step: `ticks` steps from zero that
/// cover the largest value (and `floor`, so a flat zero line still has an
/// axis).
pub fn y_scale(max: f64, floor: f64, ticks: u32) -> (f64, f64) {
    let top = max.max(floor).max(f64::MIN_POSITIVE);
    let step = nice_step(top / f64::from(ticks.max(1)));
    let steps = (top / step).ceil().max(1.0);
    (steps * step, step)
}

fn largest(series: &[&[Option<f64>]]) -> f64 {
    series
        .iter()
        .flat_map(|values| values.iter().flatten())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// SVG path of a line through the present values, broken at gaps. An
/// isolated value becomes a zero-length segment, which round caps draw as
/// a dot.
fn line_path(values: &[Option<f64>], x: impl Fn(usize) -> f64, y: impl Fn(f64) -> f64) -> String {
    let mut path = String::new();
    let mut pen_down = false;
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) if v.is_finite() => {
                let command = if pen_down { 'L' } else { 'M' };
                path.push_str(&format!("{command}{:.1} {:.1} ", x(i), y(*v)));
                let next_present = values
                    .get(i + 1)
                    .is_some_and(|n| n.is_some_and(f64::is_finite));
                if !pen_down && !next_present {
                    path.push_str("l0 0 ");
                }
                pen_down = true;
            }
            _ => pen_down = false,
        }
    }
    path.trim_end().to_string()
}

/// SVG path of the area between the line and `base`, one closed shape per
/// run of present values.
fn area_path(
    values: &[Option<f64>],
    x: impl Fn(usize) -> f64,
    y: impl Fn(f64) -> f64,
    base: f64,
    half_bucket: f64,
) -> String {
    let mut path = String::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    let flush = |run: &mut Vec<(f64, f64)>, path: &mut String| {
        if run.is_empty() {
            return;
        }
        // A single bucket gets the width of its bucket.
        if run.len() == 1 {
            let (px, py) = run[0];
            run.clear();
            run.push((px - half_bucket, py));
            run.push((px + half_bucket, py));
        }
        let (first_x, _) = run[0];
        let (last_x, _) = run[run.len() - 1];
        path.push_str(&format!("M{first_x:.1} {base:.1} "));
        for (px, py) in run.iter() {
            path.push_str(&format!("L{px:.1} {py:.1} "));
        }
        path.push_str(&format!("L{last_x:.1} {base:.1} Z "));
        run.clear();
    };
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) if v.is_finite() => run.push((x(i), y(*v))),
            _ => flush(&mut run, &mut path),
        }
    }
    flush(&mut run, &mut path);
    path.trim_end().to_string()
}

/// `10:42` for windows up to a day, `Tue 10:00` beyond.
pub fn time_label(at: &Timestamp, long_window: bool) -> String {
    if long_window {
        at.format("%a %H:%M").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

fn hover_time(at: Option<&Timestamp>, point_seconds: i64) -> String {
    match at {
        Some(at) => {
            let end = *at + chrono::Duration::seconds(point_seconds);
            let same_day = at.date_naive() == end.date_naive();
            if same_day {
                format!(
                    "{}–{} UTC",
                    at.format("%Y-%m-%d %H:%M"),
                    end.format("%H:%M")
                )
            } else {
                format!(
                    "{}–{} UTC",
                    at.format("%Y-%m-%d %H:%M"),
                    end.format("%Y-%m-%d %H:%M")
                )
            }
        }
        None => String::new(),
    }
}

fn value_text(value: Option<f64>, format: ValueFormat) -> String {
    match value {
        Some(v) if v.is_finite() => format(v),
        _ => "no data".to_string(),
    }
}

const SPARK_W: f64 = 60.0;
const SPARK_H: f64 = 22.0;

/// A sparkline for a table cell: the series as a line over a faint area,
/// the last value as a dot, an optional dashed threshold line, and a hover
/// text per bucket.
#[component]
pub fn Sparkline(
    /// One value per bucket; `None` is a gap.
    values: Vec<Option<f64>>,
    /// Start of each bucket (same length as `values`).
    times: Vec<Timestamp>,
    /// Bucket width, for the hover text.
    point_seconds: i64,
    /// What the values are ("failure rate"), for hover and screen readers.
    label: &'static str,
    format: ValueFormat,
    /// CSS class that sets the colour.
    tone: &'static str,
    /// The top of the y scale is at least this (so noise near zero stays
    /// flat).
    #[prop(optional)]
    floor: Option<f64>,
    /// A threshold drawn as a dashed line.
    #[prop(optional_no_strip)]
    threshold: Option<f64>,
    /// Fill the width CSS gives it (cards) instead of the fixed size.
    #[prop(optional)]
    stretch: bool,
    #[prop(optional, into)] test: Option<String>,
) -> impl IntoView {
    let n = values.len().max(1);
    let top = largest(&[&values])
        .max(threshold.unwrap_or(0.0))
        .max(floor.unwrap_or(0.0));
    let top = if top > 0.0 { top * 1.08 } else { 1.0 };
    let pad = 2.0;
    let bucket = SPARK_W / n as f64;
    let x = |i: usize| (i as f64 + 0.5) * bucket;
    let y = |v: f64| pad + (SPARK_H - 2.0 * pad) * (1.0 - (v / top).clamp(0.0, 1.0));
    let line = line_path(&values, x, y);
    let area = area_path(&values, x, y, SPARK_H - pad, bucket / 2.0);
    let last = values
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)));
    // A stretched chart would draw the dot as an ellipse.
    let dot = last.filter(|_| !stretch).map(|(i, v)| (x(i), y(v)));
    let threshold_y = threshold.map(y);
    let max = largest(&[&values]);
    let summary = match last {
        Some((_, v)) => format!(
            "{label} per bucket; latest {}, highest {}",
            format(v),
            format(max)
        ),
        None => format!("{label}: no data in this window"),
    };
    let hovers = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let text = format!(
                "{} — {label}: {}",
                hover_time(times.get(i), point_seconds),
                value_text(*value, format)
            );
            let rx = format!("{:.2}", i as f64 * bucket);
            let rw = format!("{:.2}", bucket);
            view! {
                <rect class="chart-hover" x=rx y="0" width=rw height=SPARK_H.to_string()>
                    <title>{text}</title>
                </rect>
            }
        })
        .collect_view();
    view! {
        <svg
            class=format!("sparkline {tone}")
            width=SPARK_W.to_string()
            height=SPARK_H.to_string()
            viewBox=format!("0 0 {SPARK_W} {SPARK_H}")
            preserveAspectRatio=stretch.then_some("none")
            role="img"
            aria-label=summary
            data-test=test
        >
            <line class="spark-base" vector-effect="non-scaling-stroke" x1="0" x2=SPARK_W.to_string() y1=format!("{:.1}", SPARK_H - pad) y2=format!("{:.1}", SPARK_H - pad)/>
            {threshold_y.map(|ty| view! {
                <line class="chart-threshold" vector-effect="non-scaling-stroke" x1="0" x2=SPARK_W.to_string() y1=format!("{ty:.1}") y2=format!("{ty:.1}")/>
            })}
            <path class="spark-area" d=area/>
            <path class="spark-line" vector-effect="non-scaling-stroke" d=line/>
            {dot.map(|(cx, cy)| view! {
                <circle class="spark-dot" cx=format!("{cx:.1}") cy=format!("{cy:.1}") r="1.8"/>
            })}
            {hovers}
        </svg>
    }
    .into_any()
}

/// A line/area chart with a y axis (ticks from zero, formatted values), a
/// time axis, horizontal grid lines and a hover text per bucket listing
/// every series. Drawn at a fixed pixel size; CSS may shrink it.
#[component]
pub fn LineChart(
    series: Vec<ChartSeries>,
    /// Start of each bucket.
    times: Vec<Timestamp>,
    point_seconds: i64,
    format: ValueFormat,
    /// Accessible name ("relay lag of events.scan").
    #[prop(into)]
    label: String,
    #[prop(optional)] width: Option<u32>,
    #[prop(optional)] height: Option<u32>,
    /// The smallest top of the y scale.
    #[prop(optional)]
    floor: Option<f64>,
    #[prop(optional)] threshold: Option<f64>,
    #[prop(optional, into)] test: Option<String>,
) -> impl IntoView {
    let width = f64::from(width.unwrap_or(360));
    let height = f64::from(height.unwrap_or(120));
    let (left, right, top_pad, bottom) = (50.0, 6.0, 6.0, 16.0);
    let plot_w = width - left - right;
    let plot_h = height - top_pad - bottom;
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(times.len())
        .max(1);
    let all: Vec<&[Option<f64>]> = series.iter().map(|s| s.values.as_slice()).collect();
    let max = largest(&all).max(threshold.unwrap_or(0.0));
    let y_ticks = if plot_h < 50.0 { 1 } else { 3 };
    let (y_top, step) = y_scale(max, floor.unwrap_or(0.0), y_ticks);
    let bucket = plot_w / n as f64;
    let x = move |i: usize| left + (i as f64 + 0.5) * bucket;
    let y = move |v: f64| top_pad + plot_h * (1.0 - (v / y_top).clamp(0.0, 1.0));
    let base = top_pad + plot_h;

    let grid = (0..=((y_top / step).round() as i64))
        .map(|k| {
            let value = k as f64 * step;
            let gy = format!("{:.1}", y(value));
            let ty = format!("{:.1}", y(value) + 3.5);
            let class = if k == 0 { "chart-axis" } else { "chart-grid" };
            view! {
                <line class=class x1=format!("{left:.1}") x2=format!("{:.1}", width - right) y1=gy.clone() y2=gy/>
                <text class="chart-label" x=format!("{:.1}", left - 4.0) y=ty text-anchor="end">{format(value)}</text>
            }
        })
        .collect_view();

    // Time labels: about one per 90 px, at bucket starts.
    let long_window = point_seconds >= 3600 * 6;
    let label_every = ((n as f64 * 90.0 / plot_w).ceil() as usize).max(1);
    let x_labels = times
        .iter()
        .enumerate()
        .filter(|(i, _)| i % label_every == 0)
        .map(|(i, at)| {
            let lx = left + i as f64 * bucket;
            let anchor = if i == 0 { "start" } else { "middle" };
            view! {
                <line class="chart-tick" x1=format!("{lx:.1}") x2=format!("{lx:.1}") y1=format!("{base:.1}") y2=format!("{:.1}", base + 3.0)/>
                <text class="chart-label" x=format!("{lx:.1}") y=format!("{:.1}", height - 3.0) text-anchor=anchor>{time_label(at, long_window)}</text>
            }
        })
        .collect_view();

    let shapes = series
        .iter()
        .map(|s| {
            let class = match s.style {
                SeriesStyle::Line => "chart-line",
                SeriesStyle::Dashed => "chart-line dashed",
                SeriesStyle::Area => "chart-area",
            };
            let d = match s.style {
                SeriesStyle::Area => area_path(&s.values, x, y, base, bucket / 2.0),
                _ => line_path(&s.values, x, y),
            };
            view! { <path class=format!("{class} {}", s.tone) d=d/> }
        })
        .collect_view();

    let threshold_line = threshold.filter(|t| *t <= y_top).map(|t| {
        let ty = format!("{:.1}", y(t));
        let tx = format!("{:.1}", width - right);
        view! {
            <line class="chart-threshold" x1=format!("{left:.1}") x2=tx y1=ty.clone() y2=ty>
                <title>{format!("Threshold: {}", format(t))}</title>
            </line>
        }
    });

    let hovers = (0..n)
        .map(|i| {
            let mut text = hover_time(times.get(i), point_seconds);
            for s in &series {
                text.push_str(&format!(
                    "\n{}: {}",
                    s.name,
                    value_text(s.values.get(i).copied().flatten(), format)
                ));
            }
            let rx = format!("{:.2}", left + i as f64 * bucket);
            let rw = format!("{bucket:.2}");
            view! {
                <rect class="chart-hover" x=rx y=format!("{top_pad:.1}") width=rw height=format!("{plot_h:.1}")>
                    <title>{text}</title>
                </rect>
            }
        })
        .collect_view();

    view! {
        <svg
            class="line-chart"
            width=format!("{width}")
            height=format!("{height}")
            viewBox=format!("0 0 {width} {height}")
            role="img"
            aria-label=label
            data-test=test
        >
            {grid}
            {x_labels}
            {shapes}
            {threshold_line}
            {hovers}
        </svg>
    }
    .into_any()
}

/// The legend of a chart: a swatch per series, in HTML.
#[component]
pub fn ChartLegend(items: Vec<(String, &'static str, SeriesStyle)>) -> impl IntoView {
    let items = items
        .into_iter()
        .map(|(name, tone, style)| {
            let class = match style {
                SeriesStyle::Line => "legend-swatch line",
                SeriesStyle::Dashed => "legend-swatch dashed",
                SeriesStyle::Area => "legend-swatch area",
            };
            view! {
                <li class=format!("legend-item {tone}")>
                    <span class=class aria-hidden="true"></span>
                    {name}
                </li>
            }
        })
        .collect_view();
    view! { <ul class="chart-legend">{items}</ul> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_one_two_or_five() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(380.0), 500.0);
        assert_eq!(nice_step(0.03), 0.05);
        assert_eq!(y_scale(950.0, 0.0, 3), (1000.0, 500.0));
        assert_eq!(y_scale(0.0, 10.0, 2), (10.0, 5.0));
    }

    #[test]
    fn lines_break_at_gaps_and_dot_isolated_values() {
        let values = [Some(1.0), Some(2.0), None, Some(3.0), None];
        let path = line_path(&values, |i| i as f64 * 10.0, |v| v);
        assert_eq!(path, "M0.0 1.0 L10.0 2.0 M30.0 3.0 l0 0");
        assert_eq!(line_path(&[None, None], |i| i as f64, |v| v), "");
    }

    #[test]
    fn areas_close_on_the_base() {
        let path = area_path(&[Some(1.0), Some(2.0)], |i| i as f64, |v| v, 5.0, 0.5);
        assert_eq!(path, "M0.0 5.0 L0.0 1.0 L1.0 2.0 L1.0 5.0 Z");
    }
}
