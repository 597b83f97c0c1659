//! Alert thresholds, per metric and optionally per saga type, topic or
//! group (`[[threshold]]` in the rules file). The defaults come from the
//! design documents: outbox relay lag and consumer lag above 5 s warn, a
//! DLQ deeper than 100 warns and deeper than 1000 is critical. Failure and
//! compensation rate thresholds are off until configured.

use sagascope_model::AlertLevel;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMetric {
    /// failed / finished, 0..1.
    FailureRate,
    /// began compensating / finished, 0..1.
    CompensationRate,
    /// Sagas started in the window that are stalled now.
    Stalled,
    DurationP95Ms,
    RelayLagP95Ms,
    ConsumerLagP95Ms,
    /// Messages behind, summed over a group's partitions.
    GroupLag,
    DlqDepth,
}

impl ThresholdMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdMetric::FailureRate => "failure_rate",
            ThresholdMetric::CompensationRate => "compensation_rate",
            ThresholdMetric::Stalled => "stalled",
            ThresholdMetric::DurationP95Ms => "duration_p95_ms",
            ThresholdMetric::RelayLagP95Ms => "relay_lag_p95_ms",
            ThresholdMetric::ConsumerLagP95Ms => "consumer_lag_p95_ms",
            ThresholdMetric::GroupLag => "group_lag",
            ThresholdMetric::DlqDepth => "dlq_depth",
        }
    }
}

/// One `[[threshold]]`: a breach is `value > warning` (or `> critical`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub metric: ThresholdMetric,
    /// The saga type, topic or group it applies to; all when absent.
    #[serde(default, alias = "saga_type", alias = "topic", alias = "group")]
    pub subject: Option<String>,
    #[serde(default)]
    pub warning: Option<f64>,
    #[serde(default)]
    pub critical: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    list: Vec<Threshold>,
}

impl Default for Thresholds {
    fn default() -> Self {
        let general = |metric, warning, critical| Threshold {
            metric,
            subject: None,
            warning,
            critical,
        };
        Thresholds {
            list: vec![
                general(ThresholdMetric::RelayLagP95Ms, Some(5000.0), None),
                general(ThresholdMetric::ConsumerLagP95Ms, Some(5000.0), None),
                general(ThresholdMetric::DlqDepth, Some(100.0), Some(1000.0)),
            ],
        }
    }
}

impl Thresholds {
    /// The defaults overridden by `configured`: a configured threshold for
    /// the same metric and subject replaces the default one.
    pub fn with(configured: &[Threshold]) -> Thresholds {
        let mut thresholds = Thresholds::default();
        for t in configured {
            thresholds
                .list
                .retain(|d| !(d.metric == t.metric && d.subject == t.subject));
            thresholds.list.push(t.clone());
        }
        thresholds
    }

    /// The threshold for a subject: its own, else the general one.
    pub fn find(&self, metric: ThresholdMetric, subject: &str) -> Option<&Threshold> {
        self.list
            .iter()
            .find(|t| t.metric == metric && t.subject.as_deref() == Some(subject))
            .or_else(|| {
                self.list
                    .iter()
                    .find(|t| t.metric == metric && t.subject.is_none())
            })
    }

    /// The level of a value and the threshold it crossed.
    pub fn level(&self, metric: ThresholdMetric, subject: &str, value: f64) -> (AlertLevel, f64) {
        let Some(t) = self.find(metric, subject) else {
            return (AlertLevel::Ok, f64::NAN);
        };
        match (t.critical, t.warning) {
            (Some(c), _) if value > c => (AlertLevel::Critical, c),
            (_, Some(w)) if value > w => (AlertLevel::Warning, w),
            _ => (AlertLevel::Ok, t.warning.or(t.critical).unwrap_or(f64::NAN)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides_by_subject() {
        let t = Thresholds::default();
        assert_eq!(
            t.level(ThresholdMetric::ConsumerLagP95Ms, "orders", 5001.0),
            (AlertLevel::Warning, 5000.0)
        );
        assert_eq!(
            t.level(ThresholdMetric::ConsumerLagP95Ms, "orders", 5000.0)
                .0,
            AlertLevel::Ok
        );
        assert_eq!(
            t.level(ThresholdMetric::DlqDepth, "x.DLT", 1001.0).0,
            AlertLevel::Critical
        );
        assert_eq!(
            t.level(ThresholdMetric::FailureRate, "order", 1.0).0,
            AlertLevel::Ok
        );
        let t = Thresholds::with(&[
            Threshold {
                metric: ThresholdMetric::FailureRate,
                subject: Some("order".into()),
                warning: Some(0.05),
                critical: Some(0.2),
            },
            Threshold {
                metric: ThresholdMetric::ConsumerLagP95Ms,
                subject: None,
                warning: Some(1000.0),
                critical: None,
            },
        ]);
        assert_eq!(
            t.level(ThresholdMetric::FailureRate, "order", 0.1),
            (AlertLevel::Warning, 0.05)
        );
        assert_eq!(
            t.level(ThresholdMetric::FailureRate, "order", 0.3),
            (AlertLevel::Critical, 0.2)
        );
        assert_eq!(
            t.level(ThresholdMetric::FailureRate, "chat", 0.3).0,
            AlertLevel::Ok
        );
        assert_eq!(
            t.level(ThresholdMetric::ConsumerLagP95Ms, "t", 1500.0).0,
            AlertLevel::Warning
        );
    }

    #[test]
    fn the_rules_file_sets_thresholds_by_saga_type_topic_or_group() {
        let rules = crate::Rules::parse(
            "[[threshold]]\nmetric = \"failure_rate\"\nsaga_type = \"order\"\nwarning = 0.05\n\n\
             [[threshold]]\nmetric = \"consumer_lag_p95_ms\"\ntopic = \"payments.events\"\nwarning = 100\n",
        )
        .unwrap();
        let t = rules.thresholds();
        assert_eq!(
            t.level(ThresholdMetric::FailureRate, "order", 0.06).0,
            AlertLevel::Warning
        );
        assert_eq!(
            t.level(ThresholdMetric::ConsumerLagP95Ms, "payments.events", 150.0)
                .0,
            AlertLevel::Warning
        );
        assert_eq!(
            t.level(ThresholdMetric::ConsumerLagP95Ms, "other", 150.0).0,
            AlertLevel::Ok
        );
        let err = crate::Rules::parse("[[threshold]]\nmetric = \"latency\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `latency`"), "{err}");
    }
}
