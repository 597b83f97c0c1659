//! Which consumed topics are dead-letter queues (`--dlq-topics`): names, or
//! `^regex` patterns as librdkafka subscribes them. Their messages become
//! dead letters and never reach the saga decoders. The patterns are
//! compiled once and each topic's answer is cached, so routing a message
//! costs a hash lookup.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use regex::Regex;

/// The default of `--dlq-topics`: Spring Kafka's `.DLT` suffix and the
/// common `.dlq` / `.DLQ` ones.
pub const DEFAULT_DLQ_TOPICS: &str = r"^.*\.(DLT|dlq|DLQ)$";

/// More topic names than this and the cache starts over (a regex
/// subscription over a cluster with churning topic names).
const MAX_CACHED_TOPICS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
#[error("invalid DLQ topic pattern `{pattern}`: {source}")]
pub struct DlqPatternError {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

#[derive(Debug, Default)]
pub struct DlqTopics {
    names: HashSet<String>,
    patterns: Vec<Regex>,
    cache: RwLock<HashMap<String, bool>>,
}

impl DlqTopics {
    /// Blank entries are ignored (`--dlq-topics ''` turns DLQs off).
    pub fn new(specs: &[String]) -> Result<DlqTopics, DlqPatternError> {
        let mut topics = DlqTopics::default();
        for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if spec.starts_with('^') {
                let regex = Regex::new(spec).map_err(|source| DlqPatternError {
                    pattern: spec.to_string(),
                    source,
                })?;
                topics.patterns.push(regex);
            } else {
                topics.names.insert(spec.to_string());
            }
        }
        Ok(topics)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.patterns.is_empty()
    }

    pub fn matches(&self, topic: &str) -> bool {
        if self.names.contains(topic) {
            return true;
        }
        if self.patterns.is_empty() {
            return false;
        }
        if let Some(known) = self.cache.read().ok().and_then(|c| c.get(topic).copied()) {
            return known;
        }
        let matched = self.patterns.iter().any(|p| p.is_match(topic));
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= MAX_CACHED_TOPICS {
                cache.clear();
            }
            cache.insert(topic.to_string(), matched);
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_patterns_with_the_default() {
        let topics = DlqTopics::new(&[
            DEFAULT_DLQ_TOPICS.to_string(),
            "legacy-dead-letters".to_string(),
            " ".to_string(),
        ])
        .unwrap();
        for topic in [
            "payments.events.DLT",
            "orders.dlq",
            "orders.DLQ",
            "legacy-dead-letters",
        ] {
            assert!(topics.matches(topic), "{topic}");
            assert!(topics.matches(topic), "{topic} (cached)");
        }
        for topic in [
            "payments.events",
            "orders.DLT.archive",
            "ordersDLT",
            "saga.state",
        ] {
            assert!(!topics.matches(topic), "{topic}");
        }
        assert!(!topics.is_empty());
        assert!(DlqTopics::new(&[String::new()]).unwrap().is_empty());
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let error = DlqTopics::new(&["^orders.(DLT".to_string()]).unwrap_err();
        assert!(error.to_string().contains("`^orders.(DLT`"), "{error}");
    }
}
