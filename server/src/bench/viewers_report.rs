//! The verdicts and the report of `bench viewers` (`viewers.rs`): each
//! viewer judged against what it had to see, and the table.

use std::path::Path;
use std::time::Duration;

use super::live_stream::Coords;
use super::viewer_api_clients::{ApiLog, KINDS};
use super::viewer_streams::ViewerLog;
use super::viewers::{Phase, ViewersArgs, RATE_KEPT, TARGET_RSS_BYTES};
use super::{group_digits, mib, ms_text, percentile, rate_text, Report};

/// One viewer's verdict.
#[derive(Default, Clone, Copy)]
pub struct Verdict {
    expected: u64,
    received: u64,
    lagged_notices: u64,
    told_gap: u64,
    silent_gap: u64,
    errored: bool,
}

impl Verdict {
    fn missed(&self) -> u64 {
        self.expected - self.received
    }
}

pub fn judge(log: &ViewerLog, expected: impl Iterator<Item = Coords>) -> Verdict {
    let (mut total, mut received) = (0, 0);
    for coords in expected {
        total += 1;
        received += u64::from(log.events.contains(coords));
    }
    Verdict {
        expected: total,
        received,
        lagged_notices: log.lagged_notices,
        told_gap: log.told_gap,
        silent_gap: log.silent_gap,
        errored: log.error.is_some(),
    }
}

fn spread(values: &mut [u64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    values.sort_unstable();
    format!(
        "min {} / median {} / max {}",
        group_digits(values[0]),
        group_digits(values[values.len() / 2]),
        group_digits(values[values.len() - 1])
    )
}

pub struct ReportInput<'a> {
    pub args: &'a ViewersArgs,
    pub url: &'a str,
    pub baseline: &'a Phase,
    pub watched: &'a Phase,
    pub whole: &'a [Verdict],
    pub per_saga: &'a [Verdict],
    pub not_stored: u64,
    pub elsewhere: u64,
    pub refused: usize,
    pub first_error: Option<String>,
    pub sequenced: bool,
    pub viewers_drained: bool,
    pub failed_deliveries: u64,
    pub api: &'a ApiLog,
    pub api_elapsed: Duration,
    pub hwm: u64,
    pub rss_at_start: u64,
    pub server_exit: Option<std::process::ExitStatus>,
    pub log: &'a Path,
}

pub fn report(input: ReportInput<'_>) {
    let ReportInput {
        args,
        baseline,
        watched,
        whole,
        per_saga,
        ..
    } = input;
    let mut report = Report::default();
    let rate_target = format!("≥ {:.0} % of offered", RATE_KEPT * 100.0);
    for (name, phase) in [
        ("baseline, no viewers", baseline),
        ("with viewers", watched),
    ] {
        report
            .info(
                format!("ingest offered ({name})"),
                rate_text(phase.produced, phase.elapsed),
            )
            .under(phase.load);
        report
            .check(
                format!("ingest stored ({name})"),
                format!(
                    "{} ({:.1} %)",
                    rate_text(phase.stored, phase.elapsed),
                    100.0 * phase.stored_rate() / phase.offered_rate().max(1e-9)
                ),
                rate_target.clone(),
                phase.kept(),
            )
            .under(phase.load);
        report
            .info(
                format!("backlog when production stopped ({name})"),
                format!(
                    "{} events, stored all within {}",
                    group_digits(phase.backlog_at_end),
                    phase
                        .caught_up_after
                        .map_or("— (not caught up)".to_string(), ms_text)
                ),
            )
            .under(phase.load);
    }
    report.info(
        "stored rate with viewers ÷ baseline",
        format!(
            "{:.3}",
            watched.stored_rate() / baseline.stored_rate().max(1e-9)
        ),
    );

    let all: Vec<&Verdict> = whole.iter().chain(per_saga).collect();
    let missed_viewers = all.iter().filter(|v| v.missed() > 0).count();
    let silent_viewers = all
        .iter()
        .filter(|v| v.missed() > 0 && v.lagged_notices == 0)
        .count();
    let missed: u64 = all.iter().map(|v| v.missed()).sum();
    let errored = all.iter().filter(|v| v.errored).count() + input.refused;
    report.info(
        "viewers (whole stream + one saga each)",
        format!(
            "{} + {}",
            group_digits(whole.len() as u64),
            group_digits(per_saga.len() as u64)
        ),
    );
    let mut received: Vec<u64> = whole.iter().map(|v| v.received).collect();
    report.info(
        "whole-stream viewer: events received",
        format!(
            "{} of {} expected",
            spread(&mut received),
            group_digits(whole.first().map_or(0, |v| v.expected))
        ),
    );
    let saga_expected: u64 = per_saga.iter().map(|v| v.expected).sum();
    let saga_received: u64 = per_saga.iter().map(|v| v.received).sum();
    report.info(
        "saga viewers: events received (sum)",
        format!(
            "{} of {} expected",
            group_digits(saga_received),
            group_digits(saga_expected)
        ),
    );
    report
        .check(
            "viewers that missed an event",
            format!(
                "{} ({} events)",
                group_digits(missed_viewers as u64),
                group_digits(missed)
            ),
            "0",
            missed_viewers == 0 && !all.is_empty(),
        )
        .under(watched.load);
    report.check(
        "  of them never told (`lagged`): silent misses",
        group_digits(silent_viewers as u64),
        "0",
        silent_viewers == 0,
    );
    let lagged_viewers = all.iter().filter(|v| v.lagged_notices > 0).count();
    report.info(
        "viewers told `lagged` (must resync)",
        format!(
            "{} ({} notices)",
            group_digits(lagged_viewers as u64),
            group_digits(all.iter().map(|v| v.lagged_notices).sum())
        ),
    );
    if input.sequenced {
        let silent: u64 = whole.iter().map(|v| v.silent_gap).sum();
        let told: u64 = whole.iter().map(|v| v.told_gap).sum();
        report.check(
            "whole-stream sequence gaps: silent (told)",
            format!("{} ({})", group_digits(silent), group_digits(told)),
            "0 silent",
            silent == 0,
        );
    } else {
        report.note("the server numbers no messages (no SSE `id:`): sequence gaps not checked");
    }
    report.check(
        "viewer errors and disconnects",
        group_digits(errored as u64),
        "0",
        errored == 0,
    );

    let api = input.api;
    let mut every: Vec<Duration> = api.samples.iter().flatten().copied().collect();
    every.sort_unstable();
    let errors: u64 = api.errors.iter().sum();
    report.info(
        "API requests (all kinds)",
        format!(
            "{} in {:.0} s",
            group_digits(every.len() as u64 + errors),
            input.api_elapsed.as_secs_f64()
        ),
    );
    let pcts = |sorted: &[Duration]| {
        format!(
            "{} / {} / {}",
            ms_text(percentile(sorted, 50.0)),
            ms_text(percentile(sorted, 95.0)),
            ms_text(percentile(sorted, 99.0))
        )
    };
    report
        .info("API p50 / p95 / p99, all", pcts(&every))
        .under(watched.load);
    for (kind, samples) in KINDS.iter().zip(&api.samples) {
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        report.info(
            format!("  {kind} ({})", group_digits(sorted.len() as u64)),
            pcts(&sorted),
        );
    }
    report.check("API errors", group_digits(errors), "0", errors == 0);

    report
        .check(
            "server peak RSS (VmHWM)",
            mib(input.hwm),
            format!("< {}", mib(TARGET_RSS_BYTES)),
            input.hwm > 0 && input.hwm < TARGET_RSS_BYTES,
        )
        .under(watched.load);
    report.info(
        "server RSS: at start / peak baseline / peak with viewers",
        format!(
            "{} / {} / {}",
            mib(input.rss_at_start),
            mib(baseline.peak_rss),
            mib(watched.peak_rss)
        ),
    );
    if let Some(status) = input.server_exit {
        report.check(
            "server still running",
            format!("exited: {status}"),
            "yes",
            false,
        );
    }
    if input.failed_deliveries > 0 {
        report.note(format!(
            "{} deliveries failed (the producer's, not the server's)",
            group_digits(input.failed_deliveries)
        ));
    }
    if input.not_stored > 0 {
        report.note(format!(
            "{} events of the phase were not stored by the end of its drain, so never \
             broadcast: not judged (the ingest fell behind; the mock broker deletes what lies \
             more than 5 MiB or 100,000 messages behind a partition's end)",
            group_digits(input.not_stored)
        ));
    }
    if input.elsewhere > 0 {
        report.note(format!(
            "{} events of the watched sagas are stored under another saga id (merged): not \
             judged for their saga viewer",
            group_digits(input.elsewhere)
        ));
    }
    if !input.viewers_drained {
        report.note(format!(
            "not every viewer had all it must see {} s after the phase",
            args.drain_seconds
        ));
    }
    if let Some(error) = &input.first_error {
        report.note(format!("first viewer error: {error}"));
    }
    if let Some(error) = &api.first_error {
        report.note(format!("first API error: {error}"));
    }
    report.note(format!(
        "store {}; {} s per phase; API clients pause {} ms after each answer; server log {}",
        sagascope_store::redact_url(input.url),
        args.seconds,
        args.api_think_ms,
        input.log.display()
    ));
    report.print("sagascope bench viewers");
}
