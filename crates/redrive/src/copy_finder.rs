//! Finds the copies a stopped runner produced but never recorded: the
//! runner that takes a job over reads each target topic of the items left
//! in flight, from shortly before they were claimed (from the start on a
//! broker that cannot look offsets up by time) to the end of every
//! partition, for messages whose `x-retry-of` and `x-retry-count` are an
//! item's. Only sound once the stopped runner can produce no more: its
//! lease (60 s) outlasts its producer's delivery timeout (30 s), after
//! which librdkafka gives every copy up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sagascope_model::{RETRY_COUNT_HEADER, RETRY_OF_HEADER};
use sagascope_store::InFlightItem;

use crate::RedriveConfig;

/// How far before its claim a copy's timestamp may be, in seconds (clocks
/// of the producing host and the broker apart).
const CLOCK_MARGIN_S: i64 = 300;
/// Per broker request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// For reading one topic to its end.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub(crate) enum FindError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("`{0}` was not read to its end within {1:?}")]
    TooSlow(String, Duration),
}

/// The (partition, offset) of each item's copy found, by attempt id.
pub(crate) fn find_copies(
    config: &RedriveConfig,
    items: &[InFlightItem],
) -> Result<HashMap<String, (i32, i64)>, FindError> {
    let mut client = ClientConfig::new();
    for (key, value) in &config.client_properties {
        client.set(key, value);
    }
    let consumer: BaseConsumer = client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "sagascope-redrive-copy-finder")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("client.id", "sagascope-redrive")
        .create()?;
    let mut since: BTreeMap<&str, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for item in items {
        let at = since
            .entry(item.target_topic.as_str())
            .or_insert(item.requested_at);
        *at = (*at).min(item.requested_at);
    }
    let wanted: HashMap<(&str, u32), &InFlightItem> = items
        .iter()
        .map(|i| ((i.dead_letter_id.as_str(), i.retry_count), i))
        .collect();
    let mut found = HashMap::new();
    for (topic, since) in since {
        read_topic(
            &consumer,
            topic,
            since - chrono::Duration::seconds(CLOCK_MARGIN_S),
            &wanted,
            &mut found,
        )?;
    }
    Ok(found)
}

/// Reads `topic` from `since` to the end of each partition.
fn read_topic(
    consumer: &BaseConsumer,
    topic: &str,
    since: chrono::DateTime<chrono::Utc>,
    wanted: &HashMap<(&str, u32), &InFlightItem>,
    found: &mut HashMap<String, (i32, i64)>,
) -> Result<(), FindError> {
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let since = lookup(consumer, topic, &partitions, since.timestamp_millis());
    // Kafka answers "none" for a time after the partition's last message;
    // a broker that cannot look offsets up by time (librdkafka's mock
    // cluster) answers "none" even for time 0 of a partition that has
    // messages: such a broker's partitions are read from the start.
    let epoch = lookup(consumer, topic, &partitions, 0);
    let mut assignment = TopicPartitionList::new();
    let mut open: HashSet<i32> = HashSet::new();
    for partition in partitions {
        let start = match since.get(&partition) {
            Some(Offset::Offset(offset)) if *offset >= 0 => Offset::Offset(*offset),
            Some(Offset::End) if matches!(epoch.get(&partition), Some(Offset::Offset(o)) if *o >= 0) =>
            {
                // Nothing was written there since: no copy to find.
                continue;
            }
            _ => Offset::Beginning,
        };
        assignment.add_partition_offset(topic, partition, start)?;
        open.insert(partition);
    }
    if open.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + READ_TIMEOUT;
    while !open.is_empty() {
        if Instant::now() >= deadline {
            consumer.unassign()?;
            return Err(FindError::TooSlow(topic.to_string(), READ_TIMEOUT));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => {
                consumer.unassign()?;
                return Err(error.into());
            }
            Some(Ok(message)) => {
                let Some(headers) = message.headers() else {
                    continue;
                };
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                };
                let (Some(of), Some(count)) = (
                    header(RETRY_OF_HEADER),
                    header(RETRY_COUNT_HEADER).and_then(|c| c.parse::<u32>().ok()),
                ) else {
                    continue;
                };
                if let Some(item) = wanted.get(&(of, count)) {
                    if item.target_topic == topic {
                        found
                            .entry(item.attempt_id.clone())
                            .or_insert((message.partition(), message.offset()));
                    }
                }
            }
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// The first offset of each partition at or after `millis` (the broker's
/// answer; empty when it gave none).
fn lookup(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    millis: i64,
) -> HashMap<i32, Offset> {
    let mut times = TopicPartitionList::new();
    for partition in partitions {
        if times
            .add_partition_offset(topic, *partition, Offset::Offset(millis))
            .is_err()
        {
            return HashMap::new();
        }
    }
    match consumer.offsets_for_times(times, REQUEST_TIMEOUT) {
        Ok(found) => found
            .elements_for_topic(topic)
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect(),
        Err(_) => HashMap::new(),
    }
}
