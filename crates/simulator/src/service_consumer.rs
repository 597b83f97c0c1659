//! A service of the demo that reads the saga traffic in its own consumer
//! group, as the real services do: the payment service consumes
//! `payments.events`. It works in bursts (a bounded number of messages, then
//! a commit, then a pause), so its committed offsets trail the high
//! watermark by a few messages and `--watch-groups` has a visible, bounded
//! lag to show.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::watch;

use crate::topics::PAYMENT_EVENTS_TOPIC;
use crate::SimulatorError;

/// The consumer group of the demo's payment service.
pub const PAYMENT_SERVICE_GROUP: &str = "shop-payment-service";

/// How long a burst waits for its first message (the group may still be
/// joining) and then for each next one before it counts as caught up.
const FIRST_MESSAGE_WAIT: Duration = Duration::from_millis(500);
const NEXT_MESSAGE_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct ServiceConsumerConfig {
    pub brokers: String,
    pub group_id: String,
    pub topic: String,
    /// Pause after each burst; offsets are committed after each burst.
    pub burst_every: Duration,
    /// Most messages handled per burst: the service's processing rate is
    /// at most `max_per_burst / burst_every`.
    pub max_per_burst: usize,
}

impl ServiceConsumerConfig {
    /// The payment service: up to 400 messages every 8 s (50/s), far above
    /// the demo's default rate on its topic (under 1/s), so its lag is
    /// whatever arrived since its last burst: a few messages.
    pub fn payment_service(brokers: impl Into<String>) -> ServiceConsumerConfig {
        ServiceConsumerConfig {
            brokers: brokers.into(),
            group_id: PAYMENT_SERVICE_GROUP.into(),
            topic: PAYMENT_EVENTS_TOPIC.into(),
            burst_every: Duration::from_secs(8),
            max_per_burst: 400,
        }
    }
}

pub struct ServiceConsumer {
    consumer: StreamConsumer,
    config: ServiceConsumerConfig,
}

impl ServiceConsumer {
    /// Creates the consumer and subscribes it (it joins its group).
    pub fn new(config: ServiceConsumerConfig) -> Result<ServiceConsumer, SimulatorError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .create()?;
        consumer.subscribe(&[&config.topic])?;
        Ok(ServiceConsumer { consumer, config })
    }

    /// Consumes in bursts until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(group = %self.config.group_id, topic = %self.config.topic, "service consumer started");
        while !*shutdown.borrow() {
            if self.burst().await > 0 {
                self.commit();
            }
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(self.config.burst_every) => {}
            }
        }
        tracing::info!(group = %self.config.group_id, "service consumer stopped");
    }

    /// Handles up to `max_per_burst` messages, stopping early when none
    /// arrives for a moment; returns how many it handled.
    async fn burst(&self) -> usize {
        let mut handled = 0;
        while handled < self.config.max_per_burst {
            let wait = if handled == 0 {
                FIRST_MESSAGE_WAIT
            } else {
                NEXT_MESSAGE_WAIT
            };
            match tokio::time::timeout(wait, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    // "Processing" is marking it done.
                    if let Err(error) = self.consumer.store_offset_from_message(&message) {
                        tracing::warn!(%error, "service consumer could not store an offset");
                    }
                    handled += 1;
                }
                Ok(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                ))) => break,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "service consumer could not consume");
                    break;
                }
                Err(_caught_up) => break,
            }
        }
        handled
    }

    fn commit(&self) {
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Async) {
            tracing::warn!(%error, "service consumer could not commit");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::{Offset, TopicPartitionList};

    use super::*;
    use crate::MockKafka;

    /// The distinct committed offsets of `group` on `topic`/0, asked as an
    /// outsider every 100 ms, until `last` is committed.
    fn watch_commits(brokers: &str, group: &str, topic: &str, last: i64) -> Vec<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.last() != Some(&last) {
            assert!(Instant::now() < deadline, "never caught up: {seen:?}");
            let mut request = TopicPartitionList::new();
            request
                .add_partition_offset(topic, 0, Offset::Invalid)
                .unwrap();
            let answer = consumer
                .committed_offsets(request, Duration::from_secs(5))
                .unwrap();
            if let Offset::Offset(now) = answer.elements()[0].offset() {
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_in_bounded_bursts_until_caught_up() {
        let kafka = MockKafka::start(1, &[PAYMENT_EVENTS_TOPIC], 1).unwrap();
        let brokers = kafka.bootstrap_servers().to_string();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        for i in 0..25 {
            producer
                .send(
                    FutureRecord::<(), str>::to(PAYMENT_EVENTS_TOPIC).payload(&i.to_string()),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
        let config = ServiceConsumerConfig {
            burst_every: Duration::from_millis(1500),
            max_per_burst: 10,
            ..ServiceConsumerConfig::payment_service(brokers.clone())
        };
        let service = ServiceConsumer::new(config).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(service.run(stop_rx));

        let seen = tokio::task::spawn_blocking(move || {
            watch_commits(&brokers, PAYMENT_SERVICE_GROUP, PAYMENT_EVENTS_TOPIC, 25)
        })
        .await
        .unwrap();
        // At most 10 per burst (25 takes three), and only ever forward.
        assert!(seen.len() >= 3, "{seen:?}");
        assert!(
            seen.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= 10),
            "{seen:?}"
        );
        assert!(seen[0] <= 10, "{seen:?}");

        stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    }
}
