//! Consumer-group lag of the groups named in `--watch-groups` (the
//! services' consumers, not only sagascope's own): high watermark −
//! committed offset per topic and partition, polled periodically. The
//! latest poll is kept on a [`GroupLagBoard`] for the overview and /metrics.
//!
//! The poller never joins, subscribes to or commits for a watched group: it
//! holds one `BaseConsumer` per group only to ask the group coordinator for
//! the group's committed offsets (`OffsetFetch`, which needs no
//! membership), and one consumer without a group for the topic metadata and
//! the watermarks (`ListOffsets`). Every librdkafka call blocks, so a poll
//! runs on the blocking pool.
//!
//! Which partitions count for a group: of the topics the watch matches,
//! those on which the group has committed at least once (its uncommitted
//! partitions there count from the low watermark). A group that has
//! committed on none of them — a new group, or a name nobody uses — is
//! shown on all of them, its whole backlog as lag, so a typo in
//! `--watch-groups` is visible instead of silently zero.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use regex::Regex;
use sagascope_model::{AlertLevel, GroupLag, GroupPartitionLag, Timestamp};
use tokio::sync::watch;

/// The latest poll of every watched group.
#[derive(Debug, Default)]
pub struct GroupLagBoard {
    groups: Mutex<Vec<GroupLag>>,
}

impl GroupLagBoard {
    pub fn publish(&self, groups: Vec<GroupLag>) {
        *self.groups.lock().unwrap_or_else(|e| e.into_inner()) = groups;
    }

    pub fn snapshot(&self) -> Vec<GroupLag> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What to watch and how often.
#[derive(Debug, Clone)]
pub struct GroupWatchConfig {
    pub brokers: String,
    /// Consumer groups to watch, in display order (duplicates are dropped).
    pub groups: Vec<String>,
    /// Topic names or librdkafka-style `^regex` patterns, like the ingest's.
    pub topics: Vec<String>,
    /// Time between two polls.
    pub interval: Duration,
    /// Upper bound of each Kafka request of a poll.
    pub request_timeout: Duration,
    /// Extra librdkafka properties (security settings and the like).
    pub client_properties: Vec<(String, String)>,
}

impl GroupWatchConfig {
    pub fn new(
        brokers: impl Into<String>,
        groups: Vec<String>,
        topics: Vec<String>,
    ) -> GroupWatchConfig {
        GroupWatchConfig {
            brokers: brokers.into(),
            groups,
            topics,
            interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            client_properties: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GroupWatchError {
    #[error("invalid topic pattern `{pattern}`: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Topic names and `^regex` patterns, matched as librdkafka's subscription
/// does (a pattern starts with `^`; internal `__` topics only by name).
#[derive(Debug)]
struct TopicMatcher {
    names: HashSet<String>,
    patterns: Vec<Regex>,
}

impl TopicMatcher {
    fn new(topics: &[String]) -> Result<TopicMatcher, GroupWatchError> {
        let mut names = HashSet::new();
        let mut patterns = Vec::new();
        for topic in topics.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            if topic.starts_with('^') {
                patterns.push(Regex::new(topic).map_err(|error| GroupWatchError::Pattern {
                    pattern: topic.to_string(),
                    reason: error.to_string(),
                })?);
            } else {
                names.insert(topic.to_string());
            }
        }
        Ok(TopicMatcher { names, patterns })
    }

    fn matches(&self, topic: &str) -> bool {
        self.names.contains(topic)
            || (!topic.starts_with("__") && self.patterns.iter().any(|p| p.is_match(topic)))
    }
}

/// Client errors (broker down, auth) surface as the failed requests of a
/// poll, in each group's `error`; here they are only logged.
struct WatchContext;

impl ClientContext for WatchContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "group-lag client error");
    }
}

impl ConsumerContext for WatchContext {}

type WatchConsumer = BaseConsumer<WatchContext>;

/// Low and high watermark of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marks {
    topic: String,
    partition: i32,
    low: i64,
    high: i64,
}

struct Clients {
    /// No group: metadata and watermarks.
    cluster: WatchConsumer,
    /// One per watched group, for its committed offsets only.
    groups: Vec<(String, Result<WatchConsumer, String>)>,
    topics: TopicMatcher,
    timeout: Duration,
}

/// Polls the committed offsets of the watched groups and the watermarks of
/// the watched topics. [`watch_group_lag`] runs one periodically.
pub struct GroupLagPoller {
    clients: Arc<Clients>,
}

fn client_config(config: &GroupWatchConfig, group: Option<&str>) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "sagascope-group-lag")
        // Never commit anything for a watched group, not even on close.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    if let Some(group) = group {
        client.set("group.id", group);
    }
    for (key, value) in &config.client_properties {
        client.set(key, value);
    }
    client
}

fn unique_groups(groups: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    groups
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty() && seen.insert(g.to_string()))
        .map(str::to_string)
        .collect()
}

impl GroupLagPoller {
    /// Creates the clients (no request is sent yet). A group whose client
    /// cannot be created reports that at every poll.
    pub fn new(config: &GroupWatchConfig) -> Result<GroupLagPoller, GroupWatchError> {
        let topics = TopicMatcher::new(&config.topics)?;
        let cluster: WatchConsumer =
            client_config(config, None).create_with_context(WatchContext)?;
        let groups = unique_groups(&config.groups)
            .into_iter()
            .map(|group| {
                let consumer = client_config(config, Some(&group))
                    .create_with_context(WatchContext)
                    .map_err(|error| format!("cannot create a client for the group: {error}"));
                (group, consumer)
            })
            .collect();
        Ok(GroupLagPoller {
            clients: Arc::new(Clients {
                cluster,
                groups,
                topics,
                timeout: config.request_timeout,
            }),
        })
    }

    /// The watched groups, in display order.
    pub fn groups(&self) -> Vec<String> {
        self.clients.groups.iter().map(|(g, _)| g.clone()).collect()
    }

    /// One poll of every group, observed now. Failures are reported per
    /// group in `GroupLag::error`.
    pub async fn poll(&self) -> Vec<GroupLag> {
        self.poll_until(None).await.unwrap_or_default()
    }

    /// Like [`GroupLagPoller::poll`], but gives up (None) between two
    /// requests once `stop` turns true.
    async fn poll_until(&self, stop: Option<watch::Receiver<bool>>) -> Option<Vec<GroupLag>> {
        let clients = self.clients.clone();
        let groups = self.groups();
        match tokio::task::spawn_blocking(move || clients.poll(stop.as_ref())).await {
            Ok(polled) => polled,
            Err(error) => {
                let reason = format!("group-lag poll failed: {error}");
                Some(groups.iter().map(|g| failed(g, &reason)).collect())
            }
        }
    }

    /// Drops the clients on the blocking pool (closing a consumer waits for
    /// librdkafka).
    pub async fn close(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

fn failed(group: &str, reason: &str) -> GroupLag {
    GroupLag {
        group: group.to_string(),
        lag: 0,
        partitions: Vec::new(),
        error: Some(reason.to_string()),
        observed_at: Some(chrono::Utc::now()),
        level: AlertLevel::Ok,
    }
}

fn stopping(stop: Option<&watch::Receiver<bool>>) -> bool {
    stop.is_some_and(|s| *s.borrow())
}

impl Clients {
    /// Blocking. None when `stop` turned true midway.
    fn poll(&self, stop: Option<&watch::Receiver<bool>>) -> Option<Vec<GroupLag>> {
        // Serve queued client events (errors, logs) so they do not pile up.
        let _ = self.cluster.poll(Duration::ZERO);
        for (_, consumer) in &self.groups {
            if let Ok(consumer) = consumer {
                let _ = consumer.poll(Duration::ZERO);
            }
        }
        let marks = match self.watermarks(stop) {
            Ok(Some(marks)) => marks,
            Ok(None) => return None,
            Err(reason) => {
                return Some(
                    self.groups
                        .iter()
                        .map(|(g, _)| failed(g, &reason))
                        .collect(),
                );
            }
        };
        let mut polled = Vec::with_capacity(self.groups.len());
        for (group, consumer) in &self.groups {
            if stopping(stop) {
                return None;
            }
            let committed = consumer
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|consumer| self.committed(consumer, &marks));
            polled.push(match committed {
                Ok(committed) => group_lag(group, &marks, &committed, chrono::Utc::now()),
                Err(reason) => failed(group, &reason),
            });
        }
        Some(polled)
    }

    /// The watermarks of every partition of the watched topics, by topic
    /// and partition.
    fn watermarks(
        &self,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<Option<Vec<Marks>>, String> {
        let metadata = self
            .cluster
            .fetch_metadata(None, self.timeout)
            .map_err(|error| format!("cannot read the cluster metadata: {error}"))?;
        let mut partitions: Vec<(String, i32)> = metadata
            .topics()
            .iter()
            // A topic the cluster reports with an error (not there yet) has
            // nothing to lag behind.
            .filter(|t| t.error().is_none() && self.topics.matches(t.name()))
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(|p| (t.name().to_string(), p.id()))
            })
            .collect();
        partitions.sort();
        let mut marks = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            if stopping(stop) {
                return Ok(None);
            }
            let (low, high) = self
                .cluster
                .fetch_watermarks(&topic, partition, self.timeout)
                .map_err(|error| {
                    format!("cannot read the watermarks of {topic}/{partition}: {error}")
                })?;
            marks.push(Marks {
                topic,
                partition,
                low,
                high,
            });
        }
        Ok(Some(marks))
    }

    /// The group's committed offset of every partition (None: nothing
    /// committed), read from the group coordinator without joining.
    fn committed(
        &self,
        consumer: &WatchConsumer,
        marks: &[Marks],
    ) -> Result<BTreeMap<(String, i32), Option<i64>>, String> {
        if marks.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut request = TopicPartitionList::with_capacity(marks.len());
        for m in marks {
            request
                .add_partition_offset(&m.topic, m.partition, Offset::Invalid)
                .map_err(|error| format!("{}/{}: {error}", m.topic, m.partition))?;
        }
        let answer = consumer
            .committed_offsets(request, self.timeout)
            .map_err(|error| format!("cannot read the committed offsets: {error}"))?;
        let mut committed = BTreeMap::new();
        for elem in answer.elements() {
            if let Err(error) = elem.error() {
                return Err(format!(
                    "cannot read the committed offset of {}/{}: {error}",
                    elem.topic(),
                    elem.partition()
                ));
            }
            let offset = match elem.offset() {
                Offset::Offset(offset) if offset >= 0 => Some(offset),
                _ => None,
            };
            committed.insert((elem.topic().to_string(), elem.partition()), offset);
        }
        Ok(committed)
    }
}

/// One group's lag from the watermarks and its committed offsets: of the
/// topics it has committed on, every partition (high − committed, or
/// high − low where it has committed nothing); all of them when it has
/// committed on none.
fn group_lag(
    group: &str,
    marks: &[Marks],
    committed: &BTreeMap<(String, i32), Option<i64>>,
    now: Timestamp,
) -> GroupLag {
    let committed_of = |m: &Marks| {
        committed
            .get(&(m.topic.clone(), m.partition))
            .copied()
            .flatten()
    };
    let consumed_topics: HashSet<&str> = marks
        .iter()
        .filter(|m| committed_of(m).is_some())
        .map(|m| m.topic.as_str())
        .collect();
    let partitions: Vec<GroupPartitionLag> = marks
        .iter()
        .filter(|m| consumed_topics.is_empty() || consumed_topics.contains(m.topic.as_str()))
        .map(|m| {
            let committed = committed_of(m);
            let from = committed.unwrap_or(m.low);
            GroupPartitionLag {
                group: group.to_string(),
                topic: m.topic.clone(),
                partition: m.partition,
                high_watermark: m.high,
                committed,
                lag: (m.high - from).max(0),
            }
        })
        .collect();
    GroupLag {
        group: group.to_string(),
        lag: partitions.iter().map(|p| p.lag).sum(),
        partitions,
        error: None,
        observed_at: Some(now),
        level: AlertLevel::Ok,
    }
}

/// The `sagascope_consumer_group_lag{group,topic,partition}` series set so
/// far. A partition that no longer counts for its group (the group started
/// committing on other topics, a topic went away) is set to 0 rather than
/// left at its last value; a group whose poll failed keeps its values.
#[derive(Debug, Default)]
struct LagGauges {
    set: HashSet<(String, String, i32)>,
}

impl LagGauges {
    fn record(&mut self, groups: &[GroupLag]) {
        let failed: HashSet<&str> = groups
            .iter()
            .filter(|g| g.error.is_some())
            .map(|g| g.group.as_str())
            .collect();
        let mut now = HashSet::new();
        for p in groups
            .iter()
            .filter(|g| g.error.is_none())
            .flat_map(|g| &g.partitions)
        {
            gauge(&p.group, &p.topic, p.partition, p.lag);
            now.insert((p.group.clone(), p.topic.clone(), p.partition));
        }
        for old in std::mem::take(&mut self.set) {
            if now.contains(&old) {
                continue;
            }
            if failed.contains(old.0.as_str()) {
                now.insert(old);
            } else {
                gauge(&old.0, &old.1, old.2, 0);
            }
        }
        self.set = now;
    }
}

fn gauge(group: &str, topic: &str, partition: i32, lag: i64) {
    metrics::gauge!(
        "sagascope_consumer_group_lag",
        "group" => group.to_string(),
        "topic" => topic.to_string(),
        "partition" => partition.to_string()
    )
    .set(lag as f64);
}

/// Polls every `config.interval` (the first poll at once) and publishes each
/// poll on `board` and as Prometheus gauges, until `shutdown` turns true.
/// Never fails: a configuration error is published as every group's error.
pub async fn watch_group_lag(
    config: GroupWatchConfig,
    board: Arc<GroupLagBoard>,
    mut shutdown: watch::Receiver<bool>,
) {
    let poller = match GroupLagPoller::new(&config) {
        Ok(poller) => poller,
        Err(error) => {
            tracing::warn!(%error, "cannot watch consumer groups");
            let reason = error.to_string();
            board.publish(
                unique_groups(&config.groups)
                    .iter()
                    .map(|g| failed(g, &reason))
                    .collect(),
            );
            return;
        }
    };
    tracing::info!(groups = ?poller.groups(), topics = ?config.topics, "watching consumer-group lag");
    let mut tick = tokio::time::interval(config.interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gauges = LagGauges::default();
    loop {
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
            _ = tick.tick() => {
                let Some(groups) = poller.poll_until(Some(shutdown.clone())).await else {
                    break;
                };
                for group in &groups {
                    if let Some(error) = &group.error {
                        tracing::debug!(group = %group.group, %error, "group-lag poll failed");
                    }
                }
                gauges.record(&groups);
                board.publish(groups);
            }
        }
    }
    poller.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(topic: &str, partition: i32, low: i64, high: i64) -> Marks {
        Marks {
            topic: topic.into(),
            partition,
            low,
            high,
        }
    }

    fn at() -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn lag_is_high_minus_committed_or_low_and_only_on_consumed_topics() {
        let marks = vec![
            marks("a", 0, 0, 10),
            marks("a", 1, 4, 7),
            marks("b", 0, 0, 100),
        ];
        let committed = BTreeMap::from([
            (("a".to_string(), 0), Some(6)),
            (("a".to_string(), 1), None),
            (("b".to_string(), 0), None),
        ]);
        let lag = group_lag("g", &marks, &committed, at());
        // a/0: 10 − 6 = 4; a/1: nothing committed, 7 − 4 = 3; b: never read.
        assert_eq!(lag.lag, 7);
        assert_eq!(
            lag.partitions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition, p.committed, p.lag))
                .collect::<Vec<_>>(),
            vec![("a", 0, Some(6), 4), ("a", 1, None, 3)]
        );
        assert_eq!(lag.observed_at, Some(at()));
        assert_eq!(lag.error, None);
    }

    #[test]
    fn a_group_without_commits_owes_every_backlog_and_never_negative_lag() {
        let marks = vec![marks("a", 0, 2, 10), marks("b", 0, 0, 5)];
        let lag = group_lag("new", &marks, &BTreeMap::new(), at());
        assert_eq!(lag.lag, 8 + 5);
        assert_eq!(lag.partitions.len(), 2);
        // A commit ahead of a stale high watermark is no negative lag.
        let committed = BTreeMap::from([(("a".to_string(), 0), Some(12))]);
        assert_eq!(group_lag("g", &marks, &committed, at()).lag, 0);
    }

    #[test]
    fn topics_match_by_name_or_pattern_and_patterns_skip_internal_topics() {
        let m = TopicMatcher::new(&["saga.state".into(), "^events\\..*".into()]).unwrap();
        assert!(m.matches("saga.state"));
        assert!(m.matches("events.scan"));
        assert!(!m.matches("saga.states.old"));
        assert!(!m.matches("catalog.products"));
        let all = TopicMatcher::new(&["^.*".into(), "__consumer_offsets".into()]).unwrap();
        assert!(all.matches("__consumer_offsets"));
        let patterns_only = TopicMatcher::new(&["^.*".into()]).unwrap();
        assert!(!patterns_only.matches("__consumer_offsets"));
        assert!(TopicMatcher::new(&["^(".into()]).is_err());
    }

    /// Records the gauge values set, as "group/topic/partition" → value.
    #[derive(Default)]
    struct Gauges(Arc<Mutex<BTreeMap<String, f64>>>);

    struct OneGauge(String, Arc<Mutex<BTreeMap<String, f64>>>);

    impl metrics::GaugeFn for OneGauge {
        fn increment(&self, _: f64) {}
        fn decrement(&self, _: f64) {}
        fn set(&self, value: f64) {
            self.1.lock().unwrap().insert(self.0.clone(), value);
        }
    }

    impl metrics::Recorder for Gauges {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::noop()
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
        fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            assert_eq!(key.name(), "sagascope_consumer_group_lag");
            let label = |name: &str| {
                key.labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_string())
                    .unwrap()
            };
            let id = format!(
                "{}/{}/{}",
                label("group"),
                label("topic"),
                label("partition")
            );
            metrics::Gauge::from_arc(Arc::new(OneGauge(id, self.0.clone())))
        }
    }

    fn polled(group: &str, partitions: &[(&str, i32, i64)], error: Option<&str>) -> GroupLag {
        let marks: Vec<Marks> = partitions
            .iter()
            .map(|(t, p, lag)| marks(t, *p, 0, *lag))
            .collect();
        let mut lag = group_lag(group, &marks, &BTreeMap::new(), at());
        lag.error = error.map(str::to_string);
        lag
    }

    #[test]
    fn gauges_follow_the_polls_and_partitions_that_stop_counting_go_to_zero() {
        let recorder = Gauges::default();
        let values = recorder.0.clone();
        let read = || values.lock().unwrap().clone();
        let mut gauges = LagGauges::default();
        metrics::with_local_recorder(&recorder, || {
            gauges.record(&[
                polled("svc", &[("a", 0, 7), ("b", 0, 100)], None),
                polled("own", &[("a", 0, 2)], None),
            ]);
            assert_eq!(
                read(),
                BTreeMap::from([
                    ("svc/a/0".to_string(), 7.0),
                    ("svc/b/0".to_string(), 100.0),
                    ("own/a/0".to_string(), 2.0),
                ])
            );
            // svc now counts on a only; own's poll failed: it keeps 2.
            gauges.record(&[
                polled("svc", &[("a", 0, 3)], None),
                polled("own", &[], Some("coordinator unavailable")),
            ]);
            assert_eq!(
                read(),
                BTreeMap::from([
                    ("svc/a/0".to_string(), 3.0),
                    ("svc/b/0".to_string(), 0.0),
                    ("own/a/0".to_string(), 2.0),
                ])
            );
            // own is back without partitions: its old series goes to 0.
            gauges.record(&[
                polled("svc", &[("a", 0, 3)], None),
                polled("own", &[], None),
            ]);
            assert_eq!(read().get("own/a/0"), Some(&0.0));
        });
    }

    #[test]
    fn groups_are_deduplicated_in_order() {
        assert_eq!(
            unique_groups(&["own".into(), " svc ".into(), "own".into(), "".into()]),
            vec!["own".to_string(), "svc".to_string()]
        );
    }
}
