//! Consumer-group lag against librdkafka's mock cluster and Tansu (one
//! body each): known messages, known commits, hand-computed lag.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use sagascope_ingest::{watch_group_lag, GroupLagBoard, GroupLagPoller, GroupWatchConfig};
use sagascope_model::{AlertLevel, GroupLag};
use sagascope_test_brokers::{BrokerKind, TestBroker};
use tokio::sync::watch;

const PLACED: &str = "orders.placed";
const SHIPPED: &str = "orders.shipped";
const AUDIT: &str = "audit.trail";

/// Messages produced per (topic, partition); every topic has 2 partitions.
const PRODUCED: [(&str, i32, usize); 4] = [
    (PLACED, 0, 5),
    (PLACED, 1, 3),
    (SHIPPED, 1, 1),
    (AUDIT, 0, 4),
];

/// `billing` reads orders.placed/0 and commits after its first 2 messages.
const BILLING: &str = "billing";
const BILLING_COMMITTED: i64 = 2;

async fn cluster(broker: BrokerKind) -> TestBroker {
    let kafka = TestBroker::start(broker, &[PLACED, SHIPPED, AUDIT], 2).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    // One message per produce request, each awaited. That matters on
    // Tansu 0.6: it answers ListOffsets "latest" with the base offset of
    // the partition's newest batch + 1, so its high watermarks are right
    // only while every batch holds one record (a batch of 10 reads as 1).
    for (topic, partition, count) in PRODUCED {
        for i in 0..count {
            let payload = format!("{topic}-{partition}-{i}");
            producer
                .send(
                    FutureRecord::<(), str>::to(topic)
                        .partition(partition)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }
    let brokers = kafka.bootstrap_servers().to_string();
    tokio::task::spawn_blocking(move || commit_billing(&brokers))
        .await
        .unwrap();
    kafka
}

/// Consumes the first messages of orders.placed/0 as `billing` (assigned,
/// not subscribed) and commits the offset after them.
fn commit_billing(brokers: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", BILLING)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(PLACED, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut consumed = 0;
    while consumed < BILLING_COMMITTED {
        assert!(Instant::now() < deadline, "billing never got its messages");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            assert_eq!(message.offset(), consumed);
            consumed += 1;
        }
    }
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(PLACED, 0, Offset::Offset(BILLING_COMMITTED))
        .unwrap();
    consumer.commit(&commit, CommitMode::Sync).unwrap();
}

fn config(kafka: &TestBroker, groups: &[&str], topics: &[&str]) -> GroupWatchConfig {
    GroupWatchConfig::new(
        kafka.bootstrap_servers(),
        groups.iter().map(|g| g.to_string()).collect(),
        topics.iter().map(|t| t.to_string()).collect(),
    )
}

/// (topic, partition, high watermark, committed, lag) of every partition.
fn rows(group: &GroupLag) -> Vec<(String, i32, i64, Option<i64>, i64)> {
    group
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.group, group.group);
            (
                p.topic.clone(),
                p.partition,
                p.high_watermark,
                p.committed,
                p.lag,
            )
        })
        .collect()
}

fn row(
    topic: &str,
    partition: i32,
    high: i64,
    committed: Option<i64>,
    lag: i64,
) -> (String, i32, i64, Option<i64>, i64) {
    (topic.to_string(), partition, high, committed, lag)
}

async fn poll_once(config: &GroupWatchConfig) -> Vec<GroupLag> {
    let poller = GroupLagPoller::new(config).unwrap();
    let groups = poller.poll().await;
    poller.close().await;
    groups
}

async fn lag_is_high_watermark_minus_committed_per_partition(broker: BrokerKind) {
    let kafka = cluster(broker).await;
    let before = chrono::Utc::now();
    let groups = poll_once(&config(&kafka, &[BILLING, "nobody"], &[PLACED])).await;
    assert_eq!(groups.len(), 2);

    let billing = &groups[0];
    assert_eq!(billing.group, BILLING);
    assert_eq!(billing.error, None);
    assert_eq!(billing.level, AlertLevel::Ok);
    assert!(billing.observed_at.is_some_and(|at| at >= before));
    // orders.placed/0: 5 messages, committed 2 → 3 behind; /1: 3 messages,
    // nothing committed → 3 − low 0 = 3.
    assert_eq!(
        rows(billing),
        vec![row(PLACED, 0, 5, Some(2), 3), row(PLACED, 1, 3, None, 3)]
    );
    assert_eq!(billing.lag, 6);

    // Nobody ever committed as `nobody`: all of it is lag, from the low
    // watermark (0: nothing was ever deleted).
    let nobody = &groups[1];
    assert_eq!(nobody.group, "nobody");
    assert_eq!(nobody.error, None);
    assert_eq!(
        rows(nobody),
        vec![row(PLACED, 0, 5, None, 5), row(PLACED, 1, 3, None, 3)]
    );
    assert_eq!(nobody.lag, 8);

    // Watching did not disturb billing: a second poll sees the same offsets.
    let again = poll_once(&config(&kafka, &[BILLING], &[PLACED])).await;
    assert_eq!(rows(&again[0]), rows(billing));
}

async fn a_pattern_watches_every_matching_topic_the_group_reads(broker: BrokerKind) {
    let kafka = cluster(broker).await;
    let groups = poll_once(&config(&kafka, &["nobody", BILLING], &["^orders\\..*"])).await;

    // No commits anywhere: every partition of both orders topics, none of
    // audit.trail. orders.shipped: 0 messages on 0, 1 on 1.
    assert_eq!(groups[0].group, "nobody");
    assert_eq!(
        rows(&groups[0]),
        vec![
            row(PLACED, 0, 5, None, 5),
            row(PLACED, 1, 3, None, 3),
            row(SHIPPED, 0, 0, None, 0),
            row(SHIPPED, 1, 1, None, 1),
        ]
    );
    assert_eq!(groups[0].lag, 9);

    // billing has committed on orders.placed only: orders.shipped is not
    // its topic and does not count.
    assert_eq!(groups[1].group, BILLING);
    assert_eq!(
        rows(&groups[1]),
        vec![row(PLACED, 0, 5, Some(2), 3), row(PLACED, 1, 3, None, 3)]
    );
    assert_eq!(groups[1].lag, 6);
}

async fn the_watch_publishes_on_the_board_until_shutdown(broker: BrokerKind) {
    let kafka = cluster(broker).await;
    let mut config = config(&kafka, &[BILLING, BILLING, AUDIT], &[PLACED, AUDIT]);
    config.interval = Duration::from_millis(200);
    let board = Arc::new(GroupLagBoard::default());
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(watch_group_lag(config, board.clone(), stop_rx));

    let deadline = Instant::now() + Duration::from_secs(30);
    let groups = loop {
        let groups = board.snapshot();
        if !groups.is_empty() {
            break groups;
        }
        assert!(Instant::now() < deadline, "nothing published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The duplicate is dropped; a group named like a topic is just a group.
    assert_eq!(
        groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(),
        vec![BILLING, AUDIT]
    );
    assert_eq!(groups[0].lag, 6);
    // audit.trail/0: 4, /1: 0, orders.placed: 5 + 3, nothing committed.
    assert_eq!(groups[1].lag, 4 + 5 + 3);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the watch stops on shutdown")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_an_error_per_group_not_a_panic() {
    // Nothing listens on port 1.
    let mut config = GroupWatchConfig::new(
        "127.0.0.1:1",
        vec!["a".into(), "b".into()],
        vec![PLACED.into()],
    );
    config.request_timeout = Duration::from_millis(500);
    let groups = poll_once(&config).await;
    assert_eq!(groups.len(), 2);
    for (group, name) in groups.iter().zip(["a", "b"]) {
        assert_eq!(group.group, name);
        assert!(group.partitions.is_empty());
        assert_eq!(group.lag, 0);
        let error = group.error.as_deref().unwrap();
        assert!(error.contains("metadata"), "{error}");
    }

    let mut bad = config.clone();
    bad.topics = vec!["^(".into()];
    assert!(GroupLagPoller::new(&bad).is_err());
    // The watch publishes the configuration error instead of failing.
    let board = Arc::new(GroupLagBoard::default());
    let (_stop, stop_rx) = watch::channel(false);
    watch_group_lag(bad, board.clone(), stop_rx).await;
    let groups = board.snapshot();
    assert_eq!(groups.len(), 2);
    assert!(groups[0]
        .error
        .as_deref()
        .unwrap()
        .contains("invalid topic pattern `^(`"));
}

sagascope_test_brokers::on_both_brokers!(
    lag_is_high_watermark_minus_committed_per_partition,
    a_pattern_watches_every_matching_topic_the_group_reads,
    the_watch_publishes_on_the_board_until_shutdown,
);
