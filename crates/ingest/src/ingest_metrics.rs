//! The ingest's Prometheus series, through the `metrics` facade: the server
//! installs the exporter and serves `GET /metrics`; without a recorder
//! (library tests) the calls are no-ops. Counters restart at zero with the
//! process, as Prometheus expects; the read model keeps the full history.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use sagascope_domain::KafkaCoords;
use sagascope_model::{CatchUpState, IngestCatchUp, SagaStatus, Timestamp};
use sagascope_store::{BatchOutcome, IngestBatch};

/// Registers the help text of every series once, at start.
pub fn describe_ingest_metrics() {
    describe_counter!(
        "sagascope_ingest_messages_total",
        "Kafka messages consumed (events, ingest errors and ignored messages)."
    );
    describe_counter!(
        "sagascope_ingest_events_total",
        "New events written to the read model (redeliveries not counted)."
    );
    describe_counter!(
        "sagascope_ingest_duplicates_total",
        "Messages whose event id was already stored (redelivery after a restart)."
    );
    describe_counter!(
        "sagascope_ingest_ignored_total",
        "Messages understood and deliberately not events (Debezium updates, deletes, tombstones of an outbox table)."
    );
    describe_counter!(
        "sagascope_ingest_errors_total",
        "Messages that could not be decoded, or duplicate ids with a different body, by topic."
    );
    describe_counter!(
        "sagascope_ingest_reused_coordinates_total",
        "Dead letters and ingest errors stored at (topic, partition, offset) coordinates that already held a different message, as when a topic was deleted and recreated; both are kept. By topic."
    );
    describe_histogram!(
        "sagascope_ingest_batch_duration_seconds",
        Unit::Seconds,
        "Time of one ingest batch from its hand-over to the pipeline to its store commit: decode, the wait behind the batch before it, and the store transaction."
    );
    describe_histogram!(
        "sagascope_outbox_relay_lag_seconds",
        Unit::Seconds,
        "Kafka timestamp minus the event's own time (outbox created_at): how long the relay took, by topic."
    );
    describe_histogram!(
        "sagascope_consumer_lag_seconds",
        Unit::Seconds,
        "Ingest time minus Kafka timestamp: how far sagascope's own consumer is behind, by topic; messages that were already in Kafka when the consumer started (its catch-up) are left out: see sagascope_catchup_lag_seconds."
    );
    describe_histogram!(
        "sagascope_catchup_lag_seconds",
        Unit::Seconds,
        "Ingest time minus Kafka timestamp of the backlog, the messages that were already in Kafka when the consumer got their partition (history read at start), by topic."
    );
    describe_counter!(
        "sagascope_ingest_catchup_messages_total",
        "Backlog messages read by the start-up catch-up."
    );
    describe_gauge!(
        "sagascope_ingest_catchup_remaining",
        "Backlog messages the start-up catch-up has not read yet (0 once caught up)."
    );
    describe_gauge!(
        "sagascope_ingest_catching_up",
        "1 while the consumer reads the backlog it found at start, else 0."
    );
    describe_counter!(
        "sagascope_sagas_started_total",
        "Saga instances seen for the first time, by saga type."
    );
    describe_counter!(
        "sagascope_saga_compensations_total",
        "Sagas that began compensating, by saga type."
    );
    describe_counter!(
        "sagascope_saga_outcomes_total",
        "Sagas that reached a final status (completed, failed, compensated, compensation_failed, timed_out), by type and status. A saga that ends again after reopening (a choreography without rules: failed, then compensating, then compensated) counts once per end; the overview's rollups count each saga once, by its current status."
    );
    describe_histogram!(
        "sagascope_saga_duration_seconds",
        Unit::Seconds,
        "Start to end of finished sagas, by type and final status."
    );
    describe_histogram!(
        "sagascope_saga_step_duration_seconds",
        Unit::Seconds,
        "Step durations of finished sagas (first to last event of the step, or the gap since the previous step for a one-event step), by type and step."
    );
    describe_counter!(
        "sagascope_saga_step_failures_total",
        "Failed steps of finished sagas, by type and step."
    );
    describe_counter!(
        "sagascope_ingest_dead_letters_total",
        "New dead letters stored from the DLQ topics (--dlq-topics), by DLQ topic."
    );
    describe_gauge!(
        "sagascope_dlq_depth",
        "Open dead letters (states new, retry_requested, failed_again) per DLQ topic, read from the store at each scrape."
    );
    describe_gauge!(
        "sagascope_consumer_group_lag",
        "Messages a watched consumer group (--watch-groups, and sagascope's own) is behind: high watermark minus committed offset, or minus the low watermark where the group has committed nothing; by group, topic and partition."
    );
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// Records one committed batch (`batch` tells which messages were backlog;
/// `backlog_messages` of the `messages` were).
pub fn record_batch(
    messages: usize,
    backlog_messages: usize,
    ignored: usize,
    outcome: &BatchOutcome,
    batch: &IngestBatch,
    took: Duration,
) {
    counter!("sagascope_ingest_messages_total").increment(messages as u64);
    counter!("sagascope_ingest_events_total").increment(outcome.new_events.len() as u64);
    counter!("sagascope_ingest_duplicates_total").increment(outcome.duplicates as u64);
    counter!("sagascope_ingest_ignored_total").increment(ignored as u64);
    histogram!("sagascope_ingest_batch_duration_seconds").record(took.as_secs_f64());
    for error in &outcome.errors {
        counter!("sagascope_ingest_errors_total", "topic" => error.topic.clone()).increment(1);
    }
    for coords in &outcome.reused_coordinates {
        counter!("sagascope_ingest_reused_coordinates_total", "topic" => coords.topic.clone())
            .increment(1);
    }
    for letter in &outcome.dead_letters {
        counter!("sagascope_ingest_dead_letters_total", "topic" => letter.dlq_topic.clone())
            .increment(1);
    }
    for event in &outcome.new_events {
        let Some(published) = event.published_at else {
            continue;
        };
        let topic = event.topic.clone();
        histogram!("sagascope_outbox_relay_lag_seconds", "topic" => topic.clone())
            .record(seconds_between(event.occurred_at, published).max(0.0));
        let coords = KafkaCoords {
            topic: event.topic.clone(),
            partition: i32::try_from(event.partition).unwrap_or_default(),
            offset: event.offset,
        };
        let series = if batch.is_backlog(&coords) {
            "sagascope_catchup_lag_seconds"
        } else {
            "sagascope_consumer_lag_seconds"
        };
        histogram!(series, "topic" => topic)
            .record(seconds_between(published, event.ingested_at).max(0.0));
    }
    if backlog_messages > 0 {
        counter!("sagascope_ingest_catchup_messages_total").increment(backlog_messages as u64);
    }
    for change in &outcome.transitions {
        let saga_type = change.saga_type.clone();
        if change.from.is_none() {
            counter!("sagascope_sagas_started_total", "saga_type" => saga_type.clone())
                .increment(1);
        }
        if change.began_compensating {
            counter!("sagascope_saga_compensations_total", "saga_type" => saga_type.clone())
                .increment(1);
        }
        let ended_before = change.from.is_some_and(SagaStatus::is_finished);
        if change.to.is_finished() && !ended_before {
            let status = change.to.as_str();
            counter!("sagascope_saga_outcomes_total", "saga_type" => saga_type.clone(), "status" => status)
                .increment(1);
            if let Some(ms) = change.duration_ms {
                histogram!("sagascope_saga_duration_seconds", "saga_type" => saga_type.clone(), "status" => status)
                    .record(ms as f64 / 1000.0);
            }
            for step in &change.steps {
                histogram!("sagascope_saga_step_duration_seconds", "saga_type" => saga_type.clone(), "step" => step.step.clone())
                    .record(step.duration_ms as f64 / 1000.0);
                if step.failed {
                    counter!("sagascope_saga_step_failures_total", "saga_type" => saga_type.clone(), "step" => step.step.clone())
                        .increment(1);
                }
            }
        }
    }
}

/// The catch-up's gauges, after each batch and while idle.
pub fn record_catch_up(catch_up: Option<&IngestCatchUp>) {
    let (catching_up, remaining) = match catch_up {
        Some(c) if c.state == CatchUpState::CatchingUp => (1.0, c.remaining as f64),
        _ => (0.0, 0.0),
    };
    gauge!("sagascope_ingest_catching_up").set(catching_up);
    gauge!("sagascope_ingest_catchup_remaining").set(remaining);
}
