//! JSON shapes of the overview and `/api/v1/metrics/*`: outcome counts,
//! rates and percentiles per saga type and step, outbox and consumer lag,
//! consumer-group lag, ingest health and alerts.
//!
//! Counts are a cohort: the sagas that *started* in the window, by their
//! current status. Durations and percentiles are in milliseconds, read from
//! histograms whose buckets keep two significant digits (1234 ms is counted
//! as 1200 ms): a percentile is exact for values with two significant
//! digits and at most 10 % low otherwise.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The time windows of the overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MetricsWindow {
    #[serde(rename = "15m")]
    Minutes15,
    #[default]
    #[serde(rename = "1h")]
    Hour1,
    #[serde(rename = "6h")]
    Hours6,
    #[serde(rename = "24h")]
    Hours24,
    #[serde(rename = "7d")]
    Days7,
}

impl MetricsWindow {
    pub const ALL: [MetricsWindow; 5] = [
        MetricsWindow::Minutes15,
        MetricsWindow::Hour1,
        MetricsWindow::Hours6,
        MetricsWindow::Hours24,
        MetricsWindow::Days7,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetricsWindow::Minutes15 => "15m",
            MetricsWindow::Hour1 => "1h",
            MetricsWindow::Hours6 => "6h",
            MetricsWindow::Hours24 => "24h",
            MetricsWindow::Days7 => "7d",
        }
    }

    /// Parses `15m|1h|6h|24h|7d`; an empty value is the default (1 h).
    pub fn parse(text: &str) -> Result<MetricsWindow, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(MetricsWindow::default());
        }
        MetricsWindow::ALL
            .into_iter()
            .find(|w| w.as_str() == text)
            .ok_or_else(|| format!("unknown window `{text}`; expected one of 15m, 1h, 6h, 24h, 7d"))
    }

    pub fn seconds(self) -> i64 {
        match self {
            MetricsWindow::Minutes15 => 15 * 60,
            MetricsWindow::Hour1 => 3600,
            MetricsWindow::Hours6 => 6 * 3600,
            MetricsWindow::Hours24 => 24 * 3600,
            MetricsWindow::Days7 => 7 * 24 * 3600,
        }
    }

    /// The rollup grain the window reads, so that every window reads a
    /// bounded number of buckets (at most 60): minutes up to 1 h, 10
    /// minutes for 6 h, hours for 24 h, 6 hours for 7 d. Each chart point
    /// is a whole number of buckets.
    pub fn grain_seconds(self) -> i64 {
        match self {
            MetricsWindow::Minutes15 | MetricsWindow::Hour1 => 60,
            MetricsWindow::Hours6 => 600,
            MetricsWindow::Hours24 => 3600,
            MetricsWindow::Days7 => 6 * 3600,
        }
    }

    /// Width of one point of the charts and sparklines.
    pub fn point_seconds(self) -> i64 {
        match self {
            MetricsWindow::Minutes15 => 60,
            MetricsWindow::Hour1 => 120,
            MetricsWindow::Hours6 => 600,
            MetricsWindow::Hours24 => 3600,
            MetricsWindow::Days7 => 6 * 3600,
        }
    }

    /// `[from, to)` in epoch microseconds for a window ending now: whole
    /// grain buckets, the last one being the current (partial) bucket.
    pub fn bounds_us(self, now_us: i64) -> (i64, i64) {
        let grain = self.grain_seconds() * 1_000_000;
        let to = now_us.div_euclid(grain) * grain + grain;
        (to - self.seconds() * 1_000_000, to)
    }
}

/// Sagas by current status (running includes compensating).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeCounts {
    pub started: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub compensated: i64,
    pub compensation_failed: i64,
    pub timed_out: i64,
    pub stalled: i64,
    /// completed + failed + compensated + compensation_failed + timed_out.
    pub finished: i64,
    /// Sagas that ran at least one compensation step.
    pub began_compensating: i64,
}

impl OutcomeCounts {
    /// failed / finished; None when nothing finished.
    pub fn failure_rate(&self) -> Option<f64> {
        ratio(self.failed, self.finished)
    }

    /// began compensating / finished; None when nothing finished.
    pub fn compensation_rate(&self) -> Option<f64> {
        ratio(self.began_compensating, self.finished)
    }

    pub fn add(&mut self, other: &OutcomeCounts) {
        self.started += other.started;
        self.running += other.running;
        self.completed += other.completed;
        self.failed += other.failed;
        self.compensated += other.compensated;
        self.compensation_failed += other.compensation_failed;
        self.timed_out += other.timed_out;
        self.stalled += other.stalled;
        self.finished += other.finished;
        self.began_compensating += other.began_compensating;
    }
}

pub fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Nearest-rank percentiles in milliseconds; None without samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Percentiles {
    pub count: i64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

/// One point of a saga type's sparklines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatePoint {
    pub at: Timestamp,
    pub started: i64,
    pub finished: i64,
    pub failed: i64,
    pub began_compensating: i64,
    pub failure_rate: Option<f64>,
    pub compensation_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepMetrics {
    pub step: String,
    /// Sagas started in the window that reached this step.
    pub executions: i64,
    /// Of those, the ones where the step failed.
    pub failures: i64,
    pub failure_rate: Option<f64>,
    pub duration: Percentiles,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SagaTypeMetrics {
    pub saga_type: String,
    pub counts: OutcomeCounts,
    pub failure_rate: Option<f64>,
    pub compensation_rate: Option<f64>,
    /// Start to end of the finished sagas.
    pub duration: Percentiles,
    /// Sagas started per minute over the window.
    pub throughput_per_min: f64,
    pub series: Vec<RatePoint>,
    /// Slowest p95 first.
    pub steps: Vec<StepMetrics>,
    /// The worst alert level among this type's alerts.
    pub level: AlertLevel,
}

/// Lag figures of one topic, over the window or one chart point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LagStats {
    /// Outbox relay lag: Kafka timestamp − outbox `created_at`.
    pub relay: Percentiles,
    /// Consumer lag: ingested − Kafka timestamp, of the messages produced
    /// after the consumer got their partition (steady state; the
    /// thresholds watch this one).
    pub consumer: Percentiles,
    /// Catch-up: ingested − Kafka timestamp of the backlog, the messages
    /// that were already in Kafka when the consumer got their partition
    /// (history read at start, after a restart or a rebalance). Shown as
    /// information, never checked against a threshold.
    #[serde(default)]
    pub catchup: Percentiles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LagPoint {
    pub at: Timestamp,
    pub lag: LagStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicLag {
    pub topic: String,
    /// Events ingested from the topic in the window.
    pub events: i64,
    pub lag: LagStats,
    pub series: Vec<LagPoint>,
    pub level: AlertLevel,
}

/// High watermark − committed offset of one partition for one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupPartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub high_watermark: i64,
    /// None when the group has committed nothing on the partition (its lag
    /// is then counted from the low watermark).
    pub committed: Option<i64>,
    pub lag: i64,
}

/// One watched consumer group (`--watch-groups`), summed over partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupLag {
    pub group: String,
    pub lag: i64,
    pub partitions: Vec<GroupPartitionLag>,
    /// Why the last poll of this group failed, if it did.
    pub error: Option<String>,
    pub observed_at: Option<Timestamp>,
    pub level: AlertLevel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestHealth {
    /// starting, running, degraded, stopped, or `not_consuming` (no ingest).
    pub state: String,
    pub reason: Option<String>,
    /// Events ingested per second over the window (from the rollups).
    pub events_per_second: f64,
    /// Ingest errors per second over the window.
    pub errors_per_second: f64,
    pub events: i64,
    pub errors: i64,
    /// sagascope's own consumer-group lag in messages, when it is known.
    pub own_lag: Option<i64>,
    /// This process's latest catch-up, if its consumer had any backlog.
    #[serde(default)]
    pub catchup: Option<IngestCatchUp>,
    pub series: Vec<IngestPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CatchUpState {
    /// Backlog messages are still being read.
    CatchingUp,
    /// Every assigned partition got past its backlog.
    CaughtUp,
}

/// The catch-up of this process's consumer: the backlog is the messages
/// that were already in Kafka when it got its partitions (offsets below
/// each partition's high watermark at assignment), at start, after a
/// restart or after a rebalance. Reading them takes a while and their
/// ingested − Kafka time is their age, not a delay: it is reported here
/// and in `LagStats::catchup`, never as consumer lag, never as an alert.
/// Each replica reports its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestCatchUp {
    pub state: CatchUpState,
    /// When the partitions were assigned.
    pub began_at: Timestamp,
    /// When the last partition got past its backlog.
    pub ended_at: Option<Timestamp>,
    /// `ended_at` (or now) − `began_at`.
    pub duration_ms: i64,
    /// Backlog messages at assignment: high watermark − start offset,
    /// summed over the partitions (offsets: compacted or transactional
    /// topics have fewer messages).
    pub backlog: i64,
    /// Backlog messages read and stored so far.
    pub consumed: i64,
    /// Backlog messages not read yet.
    pub remaining: i64,
    /// The oldest backlog message's age when it was read (ingested − its
    /// Kafka timestamp).
    pub oldest_age_ms: Option<i64>,
    /// Partitions assigned in this catch-up.
    pub partitions: i64,
}

impl IngestCatchUp {
    /// "Caught up with 1,234 messages of history in 41 s" or "Catching
    /// up: 120 messages behind" (the UI adds the time).
    pub fn summary(&self) -> String {
        match self.state {
            CatchUpState::CaughtUp => format!(
                "Caught up with {} {} of history in {}",
                group_thousands(self.consumed),
                if self.consumed == 1 {
                    "message"
                } else {
                    "messages"
                },
                crate::format_duration_ms(self.duration_ms)
            ),
            CatchUpState::CatchingUp => format!(
                "Catching up: {} {} behind",
                group_thousands(self.remaining),
                if self.remaining == 1 {
                    "message"
                } else {
                    "messages"
                },
            ),
        }
    }
}

/// `12,345` (counts here are never negative).
fn group_thousands(n: i64) -> String {
    crate::span_tree::group_thousands(n.max(0) as usize)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestPoint {
    pub at: Timestamp,
    pub events: i64,
    pub errors: i64,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    #[default]
    Ok,
    Warning,
    Critical,
}

impl AlertLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Ok => "ok",
            AlertLevel::Warning => "warning",
            AlertLevel::Critical => "critical",
        }
    }
}

/// A breached threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// failure_rate, compensation_rate, stalled, duration_p95_ms,
    /// relay_lag_p95_ms, consumer_lag_p95_ms, group_lag, dlq_depth.
    pub metric: String,
    /// The saga type, topic or group it concerns.
    pub subject: String,
    pub level: AlertLevel,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// The overview's DLQ card. Depth counts dead letters in an open state
/// (`new`, `retry_requested`, `failed_again`: see
/// `DeadLetterState::OPEN`), whatever the window; the age is now minus the
/// oldest open one's `dead_lettered_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqSummary {
    /// True when DLQ topics are consumed (`--dlq-topics`).
    pub available: bool,
    /// Why the figures are missing, when they are.
    pub note: String,
    /// Open dead letters over every DLQ topic.
    #[serde(default)]
    pub depth: i64,
    #[serde(default)]
    pub oldest_open_at: Option<Timestamp>,
    #[serde(default)]
    pub oldest_age_ms: Option<i64>,
    /// Per DLQ topic, deepest first, each with its threshold level.
    #[serde(default)]
    pub topics: Vec<crate::DlqTopicDepth>,
    /// The worst topic's level.
    #[serde(default)]
    pub level: AlertLevel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverviewMetrics {
    pub window: MetricsWindow,
    pub from: Timestamp,
    pub to: Timestamp,
    pub point_seconds: i64,
    pub totals: OutcomeCounts,
    pub saga_types: Vec<SagaTypeMetrics>,
    pub topics: Vec<TopicLag>,
    pub groups: Vec<GroupLag>,
    pub ingest: IngestHealth,
    pub dlq: DlqSummary,
    pub alerts: Vec<Alert>,
    /// Sagas started in the window that read compensated while a forward
    /// step that completed has no compensation event ("incomplete
    /// compensation"; `GET /api/v1/sagas?incomplete_compensation=true`).
    #[serde(default)]
    pub incomplete_compensations: u64,
}

/// `GET /api/v1/metrics/lag`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LagReport {
    pub window: MetricsWindow,
    pub from: Timestamp,
    pub to: Timestamp,
    pub point_seconds: i64,
    pub topics: Vec<TopicLag>,
    pub groups: Vec<GroupLag>,
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertList {
    pub window: MetricsWindow,
    pub alerts: Vec<Alert>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_cover_whole_buckets() {
        for w in MetricsWindow::ALL {
            assert_eq!(MetricsWindow::parse(w.as_str()), Ok(w));
            assert_eq!(w.seconds() % w.point_seconds(), 0);
            assert_eq!(w.point_seconds() % w.grain_seconds(), 0);
            // A bounded read: the window's buckets, the open one included.
            assert!(w.seconds() / w.grain_seconds() <= 60, "{w:?}");
        }
        assert_eq!(MetricsWindow::parse(""), Ok(MetricsWindow::Hour1));
        assert!(MetricsWindow::parse("2h").unwrap_err().contains("15m, 1h"));
        // 10:07:30 with a 15 min window: 09:53 .. 10:08.
        let now = 36_450_000_000;
        let (from, to) = MetricsWindow::Minutes15.bounds_us(now);
        assert_eq!(to, 36_480_000_000);
        assert_eq!(from, 35_580_000_000);
    }

    #[test]
    fn catch_up_reads_as_information() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut c = IngestCatchUp {
            state: CatchUpState::CatchingUp,
            began_at: at,
            ended_at: None,
            duration_ms: 2_000,
            backlog: 1_234,
            consumed: 1_114,
            remaining: 120,
            oldest_age_ms: Some(1_740_000),
            partitions: 9,
        };
        assert_eq!(c.summary(), "Catching up: 120 messages behind");
        c.state = CatchUpState::CaughtUp;
        c.consumed = 1_234;
        c.remaining = 0;
        c.duration_ms = 41_000;
        assert_eq!(
            c.summary(),
            "Caught up with 1,234 messages of history in 41.0 s"
        );
        c.consumed = 1;
        assert!(c.summary().starts_with("Caught up with 1 message of"));
    }

    #[test]
    fn rates_divide_by_finished() {
        let counts = OutcomeCounts {
            failed: 1,
            finished: 4,
            began_compensating: 2,
            ..OutcomeCounts::default()
        };
        assert_eq!(counts.failure_rate(), Some(0.25));
        assert_eq!(counts.compensation_rate(), Some(0.5));
        assert_eq!(OutcomeCounts::default().failure_rate(), None);
    }
}
