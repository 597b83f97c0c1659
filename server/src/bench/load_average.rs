//! The machine's load average (`/proc/loadavg`), printed beside every
//! measured phase: on a shared machine a figure means little without the
//! load it was taken under, and the 1-minute figure says whether other
//! work (builds, tests) competed for the CPUs during the phase.

use std::fmt;

/// Runnable (and uninterruptible) tasks averaged over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

impl LoadAverage {
    /// Now, if the kernel tells (Linux); None elsewhere.
    pub fn now() -> Option<LoadAverage> {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| LoadAverage::parse(&text))
    }

    /// `0.52 0.58 0.59 1/467 12345`: the first three fields.
    fn parse(text: &str) -> Option<LoadAverage> {
        let mut fields = text.split_whitespace().map(str::parse::<f64>);
        Some(LoadAverage {
            one: fields.next()?.ok()?,
            five: fields.next()?.ok()?,
            fifteen: fields.next()?.ok()?,
        })
    }
}

impl fmt::Display for LoadAverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} {:.2} {:.2}", self.one, self.five, self.fifteen)
    }
}

/// "1.98 0.89 0.35", or "n/a" where the kernel does not tell.
pub fn text(load: Option<LoadAverage>) -> String {
    load.map_or_else(|| "n/a".to_string(), |l| l.to_string())
}

/// "load 1.98 0.89 0.35": the suffix of a phase's progress line.
pub fn now_text() -> String {
    format!("load {}", text(LoadAverage::now()))
}

/// The line each benchmark starts with: the load it found, against the
/// CPUs there are (a 1-minute load near or above the CPU count means the
/// figures that follow are lower bounds).
pub fn print_at_start(scenario: &str) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "sagascope bench {scenario}: load average (1/5/15 min) {} on {cpus} CPUs",
        text(LoadAverage::now())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_averages() {
        let load = LoadAverage::parse("1.98 0.89 0.35 3/250 1234\n").unwrap();
        assert_eq!(
            load,
            LoadAverage {
                one: 1.98,
                five: 0.89,
                fifteen: 0.35
            }
        );
        assert_eq!(load.to_string(), "1.98 0.89 0.35");
        assert_eq!(LoadAverage::parse("1.0 2.0"), None);
        assert_eq!(LoadAverage::parse("x 2.0 3.0"), None);
        assert_eq!(text(None), "n/a");
    }
}
