//! Thresholds → alert levels on the cards and the `/api/v1/alerts` list.

use sagascope_domain::{ThresholdMetric, Thresholds};
use sagascope_model::{format_duration_ms, Alert, AlertLevel, OverviewMetrics};

fn describe(metric: ThresholdMetric, value: f64) -> String {
    match metric {
        ThresholdMetric::FailureRate | ThresholdMetric::CompensationRate => {
            format!("{:.1} %", value * 100.0)
        }
        ThresholdMetric::DurationP95Ms
        | ThresholdMetric::RelayLagP95Ms
        | ThresholdMetric::ConsumerLagP95Ms => format_duration_ms(value as i64),
        ThresholdMetric::Stalled | ThresholdMetric::GroupLag | ThresholdMetric::DlqDepth => {
            format!("{value:.0}")
        }
    }
}

fn label(metric: ThresholdMetric) -> &'static str {
    match metric {
        ThresholdMetric::FailureRate => "failure rate",
        ThresholdMetric::CompensationRate => "compensation rate",
        ThresholdMetric::Stalled => "stalled sagas",
        ThresholdMetric::DurationP95Ms => "p95 duration",
        ThresholdMetric::RelayLagP95Ms => "outbox relay lag p95",
        ThresholdMetric::ConsumerLagP95Ms => "consumer lag p95",
        ThresholdMetric::GroupLag => "consumer-group lag",
        ThresholdMetric::DlqDepth => "DLQ depth",
    }
}

/// A saga type's failure and compensation rates are judged once at least
/// this many of its sagas finished in the window: 2 compensations out of 7
/// finished is 29 %, which says nothing yet (a fresh start, a quiet type)
/// and would page someone.
pub const MIN_FINISHED_FOR_RATE_ALERTS: i64 = 20;

/// Checks every figure that has a threshold; returns the breaches, worst
/// first, and sets the level of each saga type, topic and group.
pub fn evaluate_alerts(thresholds: &Thresholds, overview: &mut OverviewMetrics) -> Vec<Alert> {
    evaluate_alerts_catching_up(thresholds, overview, None)
}

/// Like [`evaluate_alerts`]; the lag of `catching_up` (sagascope's own
/// group, polled before its consumer caught up with the backlog it found at
/// start) is that catch-up, shown on the ingest card, not an alert.
pub fn evaluate_alerts_catching_up(
    thresholds: &Thresholds,
    overview: &mut OverviewMetrics,
    catching_up: Option<&str>,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let mut check = |metric: ThresholdMetric, subject: &str, value: Option<f64>| -> AlertLevel {
        let Some(value) = value else {
            return AlertLevel::Ok;
        };
        let (level, threshold) = thresholds.level(metric, subject, value);
        if level != AlertLevel::Ok {
            alerts.push(Alert {
                metric: metric.as_str().to_string(),
                subject: subject.to_string(),
                level,
                value,
                threshold,
                message: format!(
                    "{subject}: {} {} is above the {} threshold of {}",
                    label(metric),
                    describe(metric, value),
                    level.as_str(),
                    describe(metric, threshold)
                ),
            });
        }
        level
    };
    for t in &mut overview.saga_types {
        let subject = t.saga_type.clone();
        let enough = t.counts.finished >= MIN_FINISHED_FOR_RATE_ALERTS;
        t.level = [
            check(
                ThresholdMetric::FailureRate,
                &subject,
                t.failure_rate.filter(|_| enough),
            ),
            check(
                ThresholdMetric::CompensationRate,
                &subject,
                t.compensation_rate.filter(|_| enough),
            ),
            check(
                ThresholdMetric::Stalled,
                &subject,
                Some(t.counts.stalled as f64),
            ),
            check(
                ThresholdMetric::DurationP95Ms,
                &subject,
                t.duration.p95_ms.map(|v| v as f64),
            ),
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
    }
    for topic in &mut overview.topics {
        let subject = topic.topic.clone();
        topic.level = check(
            ThresholdMetric::RelayLagP95Ms,
            &subject,
            topic.lag.relay.p95_ms.map(|v| v as f64),
        )
        .max(check(
            ThresholdMetric::ConsumerLagP95Ms,
            &subject,
            topic.lag.consumer.p95_ms.map(|v| v as f64),
        ));
    }
    for group in &mut overview.groups {
        let subject = group.group.clone();
        let value = (group.error.is_none() && catching_up != Some(subject.as_str()))
            .then_some(group.lag as f64);
        group.level = check(ThresholdMetric::GroupLag, &subject, value);
    }
    // DLQ depth per DLQ topic (a `topic` subject names a DLQ topic here).
    for topic in &mut overview.dlq.topics {
        let subject = topic.topic.clone();
        topic.level = check(
            ThresholdMetric::DlqDepth,
            &subject,
            Some(topic.depth as f64),
        );
    }
    overview.dlq.level = overview
        .dlq
        .topics
        .iter()
        .map(|t| t.level)
        .max()
        .unwrap_or_default();
    alerts.sort_by(|a, b| {
        b.level
            .cmp(&a.level)
            .then_with(|| a.metric.cmp(&b.metric))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_domain::Threshold;
    use sagascope_model::{
        DlqSummary, DlqTopicDepth, GroupLag, IngestHealth, LagStats, MetricsWindow, OutcomeCounts,
        Percentiles, SagaTypeMetrics, TopicLag,
    };

    fn overview() -> OverviewMetrics {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let counts = OutcomeCounts {
            started: 30,
            failed: 9,
            finished: 30,
            completed: 21,
            ..OutcomeCounts::default()
        };
        OverviewMetrics {
            window: MetricsWindow::Minutes15,
            from: at,
            to: at,
            point_seconds: 60,
            totals: counts,
            saga_types: vec![SagaTypeMetrics {
                saga_type: "order".into(),
                counts,
                failure_rate: counts.failure_rate(),
                compensation_rate: counts.compensation_rate(),
                duration: Percentiles::default(),
                throughput_per_min: 1.0,
                series: vec![],
                steps: vec![],
                level: AlertLevel::Ok,
            }],
            topics: vec![TopicLag {
                topic: "outbox.events".into(),
                events: 5,
                lag: LagStats {
                    relay: Percentiles {
                        count: 5,
                        p95_ms: Some(6000),
                        ..Percentiles::default()
                    },
                    consumer: Percentiles::default(),
                    catchup: Percentiles::default(),
                },
                series: vec![],
                level: AlertLevel::Ok,
            }],
            groups: vec![GroupLag {
                group: "payments".into(),
                lag: 0,
                partitions: vec![],
                error: Some("broker down".into()),
                observed_at: None,
                level: AlertLevel::Ok,
            }],
            ingest: IngestHealth {
                state: "running".into(),
                reason: None,
                events_per_second: 0.0,
                errors_per_second: 0.0,
                events: 0,
                errors: 0,
                own_lag: None,
                catchup: None,
                series: vec![],
            },
            dlq: DlqSummary {
                available: true,
                topics: vec![
                    dlq_topic("orders.DLT", 1001),
                    dlq_topic("payments.events.DLT", 101),
                    dlq_topic("stock.DLT", 100),
                ],
                ..DlqSummary::default()
            },
            alerts: vec![],
            incomplete_compensations: 0,
        }
    }

    fn dlq_topic(topic: &str, depth: i64) -> DlqTopicDepth {
        DlqTopicDepth {
            topic: topic.into(),
            depth,
            total: depth,
            oldest_open_at: None,
            oldest_age_ms: None,
            newest_at: None,
            level: AlertLevel::Ok,
        }
    }

    #[test]
    fn dlq_depth_is_checked_per_dlq_topic() {
        // Defaults: > 100 warns, > 1000 is critical.
        let mut o = overview();
        let alerts = evaluate_alerts(&Thresholds::default(), &mut o);
        let levels: Vec<AlertLevel> = o.dlq.topics.iter().map(|t| t.level).collect();
        assert_eq!(
            levels,
            [AlertLevel::Critical, AlertLevel::Warning, AlertLevel::Ok]
        );
        assert_eq!(o.dlq.level, AlertLevel::Critical);
        assert_eq!(alerts[0].metric, "dlq_depth");
        assert_eq!(
            alerts[0].message,
            "orders.DLT: DLQ depth 1001 is above the critical threshold of 1000"
        );
        // A threshold for one DLQ topic wins over the general one.
        let thresholds = Thresholds::with(&[Threshold {
            metric: sagascope_domain::ThresholdMetric::DlqDepth,
            subject: Some("stock.DLT".into()),
            warning: Some(10.0),
            critical: None,
        }]);
        let mut o = overview();
        evaluate_alerts(&thresholds, &mut o);
        assert_eq!(o.dlq.topics[2].level, AlertLevel::Warning);
    }

    #[test]
    fn the_catch_up_is_never_an_alert_steady_consumer_lag_is() {
        // The demo's first screen: 28 minutes of history read at start on
        // every topic, steady-state consumer lag in milliseconds.
        let history = Percentiles {
            count: 400,
            p50_ms: Some(900_000),
            p95_ms: Some(1_680_000),
            p99_ms: Some(1_740_000),
            max_ms: Some(1_790_000),
        };
        let steady = Percentiles {
            count: 40,
            p50_ms: Some(30),
            p95_ms: Some(120),
            p99_ms: Some(150),
            max_ms: Some(150),
        };
        let mut o = overview();
        o.dlq.topics.clear();
        o.topics[0].lag = LagStats {
            relay: Percentiles::default(),
            consumer: steady,
            catchup: history,
        };
        let started = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        o.ingest.catchup = Some(sagascope_model::IngestCatchUp {
            state: sagascope_model::CatchUpState::CatchingUp,
            began_at: started,
            ended_at: None,
            duration_ms: 3_000,
            backlog: 1_234,
            consumed: 400,
            remaining: 834,
            oldest_age_ms: Some(1_790_000),
            partitions: 27,
        });
        let alerts = evaluate_alerts(&Thresholds::default(), &mut o);
        assert!(alerts.is_empty(), "{alerts:?}");
        assert_eq!(o.topics[0].level, AlertLevel::Ok);

        // Only the backlog, no steady-state sample yet: still calm.
        let mut o = overview();
        o.dlq.topics.clear();
        o.topics[0].lag = LagStats {
            catchup: history,
            ..LagStats::default()
        };
        assert!(evaluate_alerts(&Thresholds::default(), &mut o).is_empty());

        // The same 28 minutes on messages produced after the start is lag.
        let mut o = overview();
        o.dlq.topics.clear();
        o.topics[0].lag = LagStats {
            consumer: history,
            ..LagStats::default()
        };
        let alerts = evaluate_alerts(&Thresholds::default(), &mut o);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].metric, "consumer_lag_p95_ms");
        assert_eq!(alerts[0].level, AlertLevel::Warning);
        assert_eq!(o.topics[0].level, AlertLevel::Warning);
    }

    #[test]
    fn own_group_lag_polled_during_the_catch_up_is_not_an_alert() {
        let mut o = overview();
        o.dlq.topics.clear();
        o.groups[0].error = None;
        o.groups[0].lag = 1074;
        let mut other = o.groups[0].clone();
        other.group = "sagascope".into();
        o.groups.push(other);
        let thresholds = Thresholds::with(&[Threshold {
            metric: sagascope_domain::ThresholdMetric::GroupLag,
            subject: None,
            warning: Some(500.0),
            critical: None,
        }]);
        let alerts = evaluate_alerts_catching_up(&thresholds, &mut o, Some("sagascope"));
        let subjects: Vec<&str> = alerts
            .iter()
            .filter(|a| a.metric == "group_lag")
            .map(|a| a.subject.as_str())
            .collect();
        assert_eq!(subjects, ["payments"], "a service's lag still alerts");
        assert_eq!(o.groups[1].level, AlertLevel::Ok);
        assert_eq!(o.groups[1].lag, 1074, "the figure stays");
        let alerts = evaluate_alerts(&thresholds, &mut o);
        assert_eq!(alerts.iter().filter(|a| a.metric == "group_lag").count(), 2);
    }

    #[test]
    fn breaches_colour_their_subject_and_are_listed_worst_first() {
        // Defaults: relay lag 6 s > 5 s warns; failure rate is off.
        let mut o = overview();
        o.dlq.topics.clear();
        let alerts = evaluate_alerts(&Thresholds::default(), &mut o);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].metric, "relay_lag_p95_ms");
        assert_eq!(alerts[0].subject, "outbox.events");
        assert_eq!((alerts[0].value, alerts[0].threshold), (6000.0, 5000.0));
        assert_eq!(
            alerts[0].message,
            "outbox.events: outbox relay lag p95 6.0 s is above the warning threshold of 5.0 s"
        );
        assert_eq!(o.topics[0].level, AlertLevel::Warning);
        assert_eq!(o.saga_types[0].level, AlertLevel::Ok);
        assert_eq!(
            o.groups[0].level,
            AlertLevel::Ok,
            "a failed poll has no value"
        );

        // Failure rate 30 % against order's own 10 % / 25 %: critical, first.
        let thresholds = Thresholds::with(&[Threshold {
            metric: sagascope_domain::ThresholdMetric::FailureRate,
            subject: Some("order".into()),
            warning: Some(0.1),
            critical: Some(0.25),
        }]);
        let mut o = overview();
        o.dlq.topics.clear();
        let alerts = evaluate_alerts(&thresholds, &mut o);
        assert_eq!(alerts.len(), 2);
        assert_eq!(
            (alerts[0].metric.as_str(), alerts[0].level),
            ("failure_rate", AlertLevel::Critical)
        );
        assert_eq!(alerts[0].value, 0.3);
        assert_eq!(o.saga_types[0].level, AlertLevel::Critical);

        // The same 30 % out of 10 finished sagas is too few to judge.
        let mut o = overview();
        o.dlq.topics.clear();
        let few = OutcomeCounts {
            started: 10,
            failed: 3,
            finished: 10,
            completed: 7,
            ..OutcomeCounts::default()
        };
        o.saga_types[0].counts = few;
        o.saga_types[0].failure_rate = few.failure_rate();
        let alerts = evaluate_alerts(&thresholds, &mut o);
        assert!(
            alerts.iter().all(|a| a.metric != "failure_rate"),
            "{alerts:?}"
        );
        assert_eq!(o.saga_types[0].level, AlertLevel::Ok);
    }
}
