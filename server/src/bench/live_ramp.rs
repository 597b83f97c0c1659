//! The ramp of `bench live`: steady steps of increasing rate, each judged
//! on produce → SSE p99 < 1 s with nothing missing. The first step that
//! misses ends the ramp; the answer is the highest step before it — the
//! highest steady rate the machine sustained *in this run*, a figure that
//! still means something when other work shares the CPUs (each step
//! carries the load average it ran under).

use std::time::Duration;

use super::load_average::{self, LoadAverage};
use super::{group_digits, mib, ms_text, percentile, print_columns, Column, Report};

pub const TARGET_P99: Duration = Duration::from_secs(1);
pub const TARGET_RSS_BYTES: u64 = 256 * 1024 * 1024;
/// The rate: p99 < 1 s with nothing missing, RSS < 256 MB.
pub const TARGET_RATE: u64 = 20_000;
/// A step whose producer reached less than this share of its rate did
/// not test that rate (the producer shares the CPUs with what it feeds).
const RATE_REACHED: f64 = 0.97;

/// What one step measured.
pub struct Step {
    /// The asked rate, events/s.
    pub rate: u64,
    pub produced: u64,
    /// Steady production time.
    pub elapsed: Duration,
    /// Produce → SSE latencies of the events that arrived, sorted.
    pub latencies: Vec<Duration>,
    pub missing: u64,
    pub failed_deliveries: u64,
    /// Messages the server's stream dropped for this client.
    pub lagged_messages: u64,
    pub peak_rss: u64,
    /// CPU cores used while producing (`CpuMeter`).
    pub cpu: String,
    /// When the step ended (drain included).
    pub load: Option<LoadAverage>,
}

impl Step {
    pub fn achieved(&self) -> f64 {
        super::per_second(self.produced, self.elapsed)
    }

    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 99.0)
    }

    /// Why the step missed; None if it held.
    pub fn miss(&self) -> Option<&'static str> {
        if self.latencies.is_empty() {
            Some("nothing arrived")
        } else if self.missing > 0 {
            Some("events missing")
        } else if self.failed_deliveries > 0 {
            Some("deliveries failed")
        } else if self.p99() >= TARGET_P99 {
            Some("p99 ≥ 1 s")
        } else if self.achieved() < self.rate as f64 * RATE_REACHED {
            Some("rate not reached")
        } else {
            None
        }
    }
}

/// The rates to step through: ascending, without repeats or zeros.
pub fn ramp(rates: &[u64]) -> Vec<u64> {
    let mut rates: Vec<u64> = rates.iter().copied().filter(|r| *r > 0).collect();
    rates.sort_unstable();
    rates.dedup();
    rates
}

/// The highest rate that held, if any (steps stop at the first miss, so
/// it is the last one that held).
pub fn highest_steady(steps: &[Step]) -> Option<u64> {
    steps
        .iter()
        .take_while(|s| s.miss().is_none())
        .map(|s| s.rate)
        .last()
}

/// "highest steady rate with p99 < 1 s: 15 000 events/s" and what bounds
/// it.
pub fn answer(steps: &[Step]) -> String {
    let highest = highest_steady(steps);
    let bound = match steps.iter().find(|s| s.miss().is_some()) {
        Some(missed) => format!(
            "the {} events/s step missed: {}",
            group_digits(missed.rate),
            missed.miss().unwrap_or_default()
        ),
        None => "every step held; give higher --rates to find the limit".to_string(),
    };
    match highest {
        Some(rate) => format!(
            "highest steady rate with p99 < 1 s: {} events/s ({bound})",
            group_digits(rate)
        ),
        None => format!("highest steady rate with p99 < 1 s: none of the steps ({bound})"),
    }
}

/// One line a step, in the order they ran.
pub fn print_steps(steps: &[Step]) {
    let columns = [
        Column::right("rate/s"),
        Column::right("produced/s"),
        Column::right("delivered"),
        Column::right("missing"),
        Column::right("p50"),
        Column::right("p99"),
        Column::right("max"),
        Column::right("peak RSS"),
        Column::right("lagged"),
        Column::left("CPU cores"),
        Column::left("load 1/5/15"),
        Column::left("result"),
    ];
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                group_digits(s.rate),
                group_digits(s.achieved().round() as u64),
                group_digits(s.latencies.len() as u64),
                group_digits(s.missing),
                ms_text(percentile(&s.latencies, 50.0)),
                ms_text(s.p99()),
                ms_text(s.latencies.last().copied().unwrap_or_default()),
                mib(s.peak_rss),
                group_digits(s.lagged_messages),
                s.cpu.clone(),
                load_average::text(s.load),
                match s.miss() {
                    None => "held".to_string(),
                    Some(why) => format!("MISS: {why}"),
                },
            ]
        })
        .collect();
    println!();
    println!("sagascope bench live: the ramp");
    print_columns(&columns, &rows);
}

/// The figures at 20,000 events/s: from that step if the ramp ran
/// it, a MISS if the ramp stopped below it, no verdict if the rates did
/// not include it.
pub fn report_target(report: &mut Report, steps: &[Step], rates: &[u64]) {
    let name = |what: &str| format!("{what} at {}/s", group_digits(TARGET_RATE));
    let p99_target = format!("< {}", ms_text(TARGET_P99));
    let rss_target = format!("< {}", mib(TARGET_RSS_BYTES));
    if let Some(step) = steps.iter().find(|s| s.rate == TARGET_RATE) {
        let p99 = step.p99();
        report
            .check(
                name("latency p99 (produce → SSE)"),
                ms_text(p99),
                p99_target,
                !step.latencies.is_empty() && p99 < TARGET_P99,
            )
            .under(step.load);
        report
            .check(
                name("events missing on the stream"),
                group_digits(step.missing),
                "0",
                step.missing == 0 && !step.latencies.is_empty(),
            )
            .under(step.load);
        report
            .check(
                name("peak RSS of this process"),
                mib(step.peak_rss),
                rss_target,
                step.peak_rss < TARGET_RSS_BYTES,
            )
            .under(step.load);
    } else if rates.contains(&TARGET_RATE) {
        let stopped = steps.last().map_or(0, |s| s.rate);
        let value = format!("not run: stopped at {}/s", group_digits(stopped));
        report.check(
            name("latency p99 (produce → SSE)"),
            value.clone(),
            p99_target,
            false,
        );
        report.check(
            name("events missing on the stream"),
            value.clone(),
            "0",
            false,
        );
        report.check(name("peak RSS of this process"), value, rss_target, false);
    } else {
        report.note(format!(
            "{} events/s is not among --rates: no verdict on the issue's targets",
            group_digits(TARGET_RATE)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: u64, p99_ms: u64, missing: u64) -> Step {
        Step {
            rate,
            produced: rate * 10,
            elapsed: Duration::from_secs(10),
            latencies: vec![Duration::from_millis(p99_ms); 100],
            missing,
            failed_deliveries: 0,
            lagged_messages: 0,
            peak_rss: 0,
            cpu: String::new(),
            load: None,
        }
    }

    #[test]
    fn the_answer_is_the_last_step_before_the_first_miss() {
        let steps = [
            step(2_500, 40, 0),
            step(5_000, 90, 0),
            step(10_000, 1_400, 0),
        ];
        assert_eq!(highest_steady(&steps), Some(5_000));
        assert_eq!(
            answer(&steps),
            "highest steady rate with p99 < 1 s: 5 000 events/s \
             (the 10 000 events/s step missed: p99 ≥ 1 s)"
        );
        let missing = [step(2_500, 40, 3)];
        assert_eq!(highest_steady(&missing), None);
        assert!(answer(&missing).contains("none of the steps"));
        assert_eq!(highest_steady(&[step(2_500, 40, 0)]), Some(2_500));
    }

    #[test]
    fn a_step_the_producer_could_not_reach_is_a_miss() {
        let mut slow = step(30_000, 200, 0);
        slow.produced = 25_000 * 10;
        assert_eq!(slow.miss(), Some("rate not reached"));
        let mut empty = step(2_500, 0, 0);
        empty.latencies.clear();
        assert_eq!(empty.miss(), Some("nothing arrived"));
    }

    #[test]
    fn rates_run_lowest_first_once() {
        assert_eq!(
            ramp(&[20_000, 0, 5_000, 20_000, 2_500]),
            [2_500, 5_000, 20_000]
        );
    }
}
