//! Classification rules (`--rules PATH`, TOML; `rules.example.toml` is the
//! commented reference): which saga type, step and phase a named domain
//! event means, how each saga type's events are correlated into instances,
//! its stall timeout, which events are not sagas at all, which payload fields
//! are redacted, and per-topic decoder overrides. With no file, defaults by
//! name suffix still give readable timelines.
//!
//! ```toml
//! [[saga]]
//! type = "scan_reward"
//! start = ["ImageRegistered"]
//! correlate = ["trace_id", "/scan_id"]
//! [saga.events]
//! ScanCompleted = { step = "Scan", phase = "step_succeeded" }
//! "*Failed" = { phase = "step_failed" }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use sagascope_model::Phase;
use serde::Deserialize;

use crate::decode::Format;
use crate::event_names::{self, NameMeaning};
use crate::glob::glob_match;
use crate::redaction::Redaction;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot parse rules: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("rules: event `{event}` of saga type `{saga_type}` has unknown phase `{phase}`")]
    UnknownPhase {
        saga_type: String,
        event: String,
        phase: String,
    },
    #[error("rules: saga type `{saga_type}` has timeout `{timeout}`; use a number with ms, s, m or h, such as \"30s\"")]
    BadTimeout { saga_type: String, timeout: String },
    #[error("rules: saga type `{saga_type}` correlates by `{given}`; use saga_id, trace_id, aggregate_id or a JSON pointer such as \"/order_id\"")]
    BadCorrelation { saga_type: String, given: String },
    #[error("rules: topic `{topic}` has unknown format `{format}`; use one of {}", Format::NAMES.join(", "))]
    UnknownFormat { topic: String, format: String },
    #[error("rules: redaction path `{0}` is not a field name or a JSON pointer starting with `/`")]
    BadRedaction(String),
}

/// What a rule (or the defaults) says an event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub saga_type: Option<String>,
    pub step: Option<String>,
    pub phase: Phase,
}

/// Where a saga instance id may come from, tried in the configured order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrelationSource {
    /// The id the message itself names (`saga_id`, `correlation_id`, the
    /// CloudEvents `sagaid` extension…). Exclusive: an event that carries
    /// one is never merged by its other keys.
    SagaId,
    /// The W3C trace id (from `traceparent` or a trace id header/field).
    TraceId,
    /// The aggregate id (outbox `aggregateid`, CloudEvents `subject`, the
    /// Kafka key), scoped by aggregate type.
    AggregateId,
    /// A JSON pointer into the payload, such as `/order_id`, scoped by saga
    /// type.
    Pointer(String),
}

impl CorrelationSource {
    fn parse(text: &str) -> Option<CorrelationSource> {
        match text.trim() {
            "saga_id" => Some(CorrelationSource::SagaId),
            "trace_id" => Some(CorrelationSource::TraceId),
            "aggregate_id" => Some(CorrelationSource::AggregateId),
            pointer if pointer.starts_with('/') && pointer.len() > 1 => {
                Some(CorrelationSource::Pointer(pointer.to_string()))
            }
            _ => None,
        }
    }
}

/// The correlation order of events with no rule: the explicit saga id, then
/// the trace id, then the aggregate id (the event id is the last resort).
pub const DEFAULT_CORRELATION: [CorrelationSource; 3] = [
    CorrelationSource::SagaId,
    CorrelationSource::TraceId,
    CorrelationSource::AggregateId,
];

/// Events that are not part of any saga (entity change streams such as
/// product events) are grouped by aggregate, then trace.
pub const STREAM_CORRELATION: [CorrelationSource; 2] =
    [CorrelationSource::AggregateId, CorrelationSource::TraceId];

#[derive(Debug, Clone, Default)]
pub struct Rules {
    by_event_type: HashMap<String, Classification>,
    /// Glob patterns, most literal characters first.
    event_globs: Vec<(String, Classification)>,
    /// (saga type, name or glob) of start events.
    start_events: Vec<(String, String)>,
    timeouts: HashMap<String, Duration>,
    /// Per saga type, forward step → the steps of its compensation events.
    compensations: std::collections::BTreeMap<String, crate::CompensationPairs>,
    correlation: HashMap<String, Vec<CorrelationSource>>,
    topic_formats: Vec<(String, Format)>,
    not_saga_events: Vec<String>,
    not_saga_topics: Vec<String>,
    redaction: Redaction,
    thresholds: Vec<crate::thresholds::Threshold>,
    dead_letter: crate::dead_letter::GenericDeadLetterFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    threshold: Vec<crate::thresholds::Threshold>,
    #[serde(default)]
    saga: Vec<SagaRuleFile>,
    #[serde(default)]
    topic: Vec<TopicRuleFile>,
    #[serde(default)]
    not_saga: NotSagaFile,
    #[serde(default)]
    redact: RedactFile,
    /// The generic dead-letter form (header / JSON pointer names).
    #[serde(default)]
    dead_letter: crate::dead_letter::GenericDeadLetterFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SagaRuleFile {
    #[serde(rename = "type")]
    saga_type: String,
    /// e.g. "30s", "5m", "1h", "500ms".
    timeout: Option<String>,
    #[serde(default)]
    start: Vec<String>,
    #[serde(default)]
    correlate: Vec<String>,
    #[serde(default)]
    events: HashMap<String, EventRuleFile>,
    /// Forward step → the step its compensation events name
    /// (`ReserveStock = "ReleaseStock"`), for compensation integrity.
    #[serde(default)]
    compensations: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRuleFile {
    step: Option<String>,
    phase: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicRuleFile {
    /// Topic name or glob.
    #[serde(rename = "match")]
    pattern: String,
    format: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NotSagaFile {
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    topics: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RedactFile {
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    headers: Vec<String>,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

fn literal_len(pattern: &str) -> usize {
    pattern.chars().filter(|c| !matches!(c, '*' | '?')).count()
}

impl Rules {
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let file: RulesFile = toml::from_str(text)?;
        let mut rules = Rules::default();
        for saga in file.saga {
            let saga_type = saga.saga_type;
            if let Some(text) = &saga.timeout {
                let timeout = parse_duration(text).ok_or_else(|| RulesError::BadTimeout {
                    saga_type: saga_type.clone(),
                    timeout: text.clone(),
                })?;
                rules.timeouts.insert(saga_type.clone(), timeout);
            }
            if !saga.correlate.is_empty() {
                let order = saga
                    .correlate
                    .iter()
                    .map(|source| {
                        CorrelationSource::parse(source).ok_or_else(|| RulesError::BadCorrelation {
                            saga_type: saga_type.clone(),
                            given: source.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                rules.correlation.insert(saga_type.clone(), order);
            }
            for start in saga.start {
                rules.start_events.push((saga_type.clone(), start));
            }
            if !saga.compensations.is_empty() {
                let pairs = rules.compensations.entry(saga_type.clone()).or_default();
                for (forward, compensation) in saga.compensations {
                    pairs.entry(forward).or_default().insert(compensation);
                }
            }
            for (event, rule) in saga.events {
                let phase = Phase::parse(&rule.phase).ok_or_else(|| RulesError::UnknownPhase {
                    saga_type: saga_type.clone(),
                    event: event.clone(),
                    phase: rule.phase.clone(),
                })?;
                let classification = Classification {
                    saga_type: Some(saga_type.clone()),
                    // A glob's step defaults to the event's own name (filled
                    // in when matched).
                    step: rule
                        .step
                        .or_else(|| (!is_glob(&event)).then(|| event.clone())),
                    phase,
                };
                if is_glob(&event) {
                    rules.event_globs.push((event, classification));
                } else {
                    rules.by_event_type.insert(event, classification);
                }
            }
        }
        rules
            .event_globs
            .sort_by(|(a, _), (b, _)| literal_len(b).cmp(&literal_len(a)).then(a.cmp(b)));
        for topic in file.topic {
            let format = Format::parse(&topic.format).ok_or_else(|| RulesError::UnknownFormat {
                topic: topic.pattern.clone(),
                format: topic.format.clone(),
            })?;
            rules.topic_formats.push((topic.pattern, format));
        }
        rules.thresholds = file.threshold;
        rules.not_saga_events = file.not_saga.events;
        rules.not_saga_topics = file.not_saga.topics;
        rules.redaction = Redaction::new(&file.redact.fields, &file.redact.headers)
            .map_err(RulesError::BadRedaction)?;
        rules.dead_letter = file.dead_letter;
        Ok(rules)
    }

    /// Alert thresholds: the defaults with the file's `[[threshold]]`s.
    pub fn thresholds(&self) -> crate::thresholds::Thresholds {
        crate::thresholds::Thresholds::with(&self.thresholds)
    }

    /// Stall timeouts by saga type, from the rules file.
    pub fn timeouts(&self) -> &HashMap<String, Duration> {
        &self.timeouts
    }

    /// The step ↔ compensation pairs the rules declare, by saga type.
    pub fn compensation_pairs(
        &self,
    ) -> &std::collections::BTreeMap<String, crate::CompensationPairs> {
        &self.compensations
    }

    /// The correlation order for events of this saga type (the defaults
    /// when the type has none or is not known).
    pub fn correlation(&self, saga_type: Option<&str>) -> &[CorrelationSource] {
        saga_type
            .and_then(|t| self.correlation.get(t))
            .map(Vec::as_slice)
            .unwrap_or(&DEFAULT_CORRELATION)
    }

    /// True when the rules file gives this saga type a `correlate` order
    /// (all of its keys then merge instances).
    pub fn has_correlation(&self, saga_type: &str) -> bool {
        self.correlation.contains_key(saga_type)
    }

    /// The decoder forced for this topic, if a `[[topic]]` rule names one.
    pub fn format_for_topic(&self, topic: &str) -> Option<Format> {
        self.topic_formats
            .iter()
            .find(|(pattern, _)| glob_match(pattern, topic))
            .map(|(_, format)| *format)
    }

    /// True for events the `[not_saga]` section excludes from sagas (by the
    /// event name, its last dotted segment, or the topic).
    pub fn is_not_saga(&self, event_type: &str, topic: &str) -> bool {
        let short = short_name(event_type);
        self.not_saga_events
            .iter()
            .any(|p| glob_match(p, event_type) || glob_match(p, short))
            || self.not_saga_topics.iter().any(|p| glob_match(p, topic))
    }

    pub fn redaction(&self) -> &Redaction {
        &self.redaction
    }

    /// Where the generic dead-letter form keeps origin and failure (the
    /// `[dead_letter]` table); empty when not configured.
    pub fn dead_letter_fields(&self) -> &crate::dead_letter::GenericDeadLetterFields {
        &self.dead_letter
    }

    /// For names with or without a namespace (the CloudEvents type
    /// `com.shop.order.PaymentFailed`): an exact rule for the full name,
    /// then for the last segment; then globs, on the full name and then the
    /// last segment; then start events; else the name defaults
    /// ([`default_classification`], by the last segment).
    pub fn classify(&self, event_type: &str) -> Classification {
        let short = short_name(event_type);
        let candidates = [event_type, short];
        for name in candidates {
            if let Some(rule) = self.by_event_type.get(name) {
                return rule.clone();
            }
        }
        for name in candidates {
            if let Some((_, rule)) = self
                .event_globs
                .iter()
                .find(|(pattern, _)| glob_match(pattern, name))
            {
                let mut rule = rule.clone();
                rule.step.get_or_insert_with(|| short.to_string());
                return rule;
            }
        }
        for name in candidates {
            if let Some((saga_type, _)) = self
                .start_events
                .iter()
                .find(|(_, pattern)| glob_match(pattern, name))
            {
                return Classification {
                    saga_type: Some(saga_type.clone()),
                    step: Some(short.to_string()),
                    phase: Phase::SagaStarted,
                };
            }
        }
        default_classification(event_type)
    }
}

/// The last dotted segment of a namespaced name (`com.shop.PaymentFailed` →
/// `PaymentFailed`), or the whole name when that segment is blank.
fn short_name(event_type: &str) -> &str {
    match event_type.rsplit('.').next() {
        Some(short) if !short.trim().is_empty() => short,
        _ => event_type,
    }
}

/// Defaults by name (see [`crate::event_names`]; the last dotted segment of
/// a namespaced name, case-insensitively, whole words only):
///
/// | name ends in | phase |
/// |---|---|
/// | Failed, Failure, Rejected, Declined, Error, Errored, TimedOut, Timeout, Aborted, Expired | `step_failed` |
/// | Compensated, Released, Cancelled/Canceled, Refunded, Reverted, RolledBack, Undone | `step_compensated` |
/// | Requested, Request, Command, Cmd, Started, Initiated with a compensation word (Compensat…, Release, Refund, Cancel…, Revert, Rollback, Undo), or starts with Compensate | `compensation_started` |
/// | Completed, Succeeded, Acquired, Updated, Confirmed, Finished | `step_succeeded` |
/// | anything else | `event` |
///
/// The step is the last dotted segment (the last two when the last is a
/// single word: `com.acme.payment.failed` → `payment.failed`). The saga
/// type stays open (the projection uses the first event's aggregate type
/// or name, and infers an undeclared saga's outcome from these phases).
pub fn default_classification(event_type: &str) -> Classification {
    let phase = match event_names::meaning(event_type) {
        NameMeaning::Failure => Phase::StepFailed,
        NameMeaning::CompensationFailure => Phase::CompensationFailed,
        NameMeaning::Compensated => Phase::StepCompensated,
        NameMeaning::CompensationRequest => Phase::CompensationStarted,
        NameMeaning::Success => Phase::StepSucceeded,
        NameMeaning::Plain => Phase::Event,
    };
    Classification {
        saga_type: None,
        step: Some(event_names::default_step(event_type)),
        phase,
    }
}

/// "500ms", "30s", "5m", "1h" (a bare number means seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => n,
        "" | "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (millis > 0).then(|| Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [[saga]]
        type = "scan_reward"
        [saga.events]
        ImageRegistered = { step = "RegisterImage", phase = "saga_started" }
        ProfileUpdated = { phase = "saga_completed" }
    "#;

    #[test]
    fn rules_map_event_names_to_type_step_and_phase() {
        let rules = Rules::parse(EXAMPLE).unwrap();
        assert_eq!(
            rules.classify("ImageRegistered"),
            Classification {
                saga_type: Some("scan_reward".into()),
                step: Some("RegisterImage".into()),
                phase: Phase::SagaStarted
            }
        );
        assert_eq!(
            rules.classify("ProfileUpdated").step.as_deref(),
            Some("ProfileUpdated")
        );
    }

    #[test]
    fn unknown_names_fall_back_to_suffix_defaults() {
        let rules = Rules::default();
        assert_eq!(rules.classify("PaymentFailed").phase, Phase::StepFailed);
        assert_eq!(
            rules.classify("StockReleased").phase,
            Phase::StepCompensated
        );
        assert_eq!(
            rules.classify("CharacterAcquired").phase,
            Phase::StepSucceeded
        );
        assert_eq!(rules.classify("ImageRegistered").phase, Phase::Event);
        assert_eq!(rules.classify("ImageRegistered").saga_type, None);
    }

    #[test]
    fn defaults_tell_failures_compensation_requests_and_done_apart() {
        let rules = Rules::default();
        for (name, phase, step) in [
            ("PaymentRejected", Phase::StepFailed, "PaymentRejected"),
            ("PaymentTimedOut", Phase::StepFailed, "PaymentTimedOut"),
            (
                "com.acme.payment.failed",
                Phase::StepFailed,
                "payment.failed",
            ),
            (
                "com.acme.payment.Declined",
                Phase::StepFailed,
                "payment.Declined",
            ),
            (
                "ReleaseStockRequested",
                Phase::CompensationStarted,
                "ReleaseStockRequested",
            ),
            (
                "CancelOrderCommand",
                Phase::CompensationStarted,
                "CancelOrderCommand",
            ),
            (
                "com.acme.stock.release_requested",
                Phase::CompensationStarted,
                "release_requested",
            ),
            ("StockReleased", Phase::StepCompensated, "StockReleased"),
            (
                "TransferRolledBack",
                Phase::StepCompensated,
                "TransferRolledBack",
            ),
            (
                "com.acme.stock.released",
                Phase::StepCompensated,
                "stock.released",
            ),
            ("OrderConfirmed", Phase::StepSucceeded, "OrderConfirmed"),
            ("PaymentRequested", Phase::Event, "PaymentRequested"),
        ] {
            let c = rules.classify(name);
            assert_eq!((c.phase, c.step.as_deref()), (phase, Some(step)), "{name}");
            assert_eq!(c.saga_type, None);
        }
        // A rule for the name still wins over the defaults.
        let rules = Rules::parse(
            "[[saga]]\ntype='order'\n[saga.events]\nReleaseStockRequested = { step = 'Release', phase = 'step_started' }\n",
        )
        .unwrap();
        assert_eq!(
            rules.classify("ReleaseStockRequested").phase,
            Phase::StepStarted
        );
    }

    #[test]
    fn qualified_names_fall_back_to_their_last_segment() {
        let rules = Rules::parse(
            "[[saga]]\ntype='order'\n[saga.events]\n\"com.shop.order.Placed\" = { step = 'Place', phase = 'saga_started' }\nPaymentFailed = { step = 'Pay', phase = 'step_failed' }\n",
        )
        .unwrap();
        assert_eq!(
            rules.classify("com.shop.order.Placed").phase,
            Phase::SagaStarted
        );
        let payment = rules.classify("com.shop.order.PaymentFailed");
        assert_eq!(payment.saga_type.as_deref(), Some("order"));
        assert_eq!(payment.step.as_deref(), Some("Pay"));
        let stock = rules.classify("com.shop.stock.StockReleased");
        assert_eq!(stock.saga_type, None);
        assert_eq!(stock.step.as_deref(), Some("StockReleased"));
        assert_eq!(stock.phase, Phase::StepCompensated);
        assert_eq!(
            rules.classify("trailing.").step.as_deref(),
            Some("trailing.")
        );
    }

    #[test]
    fn globs_match_after_exact_names_most_specific_first() {
        let rules = Rules::parse(
            r#"
            [[saga]]
            type = "order"
            start = ["Order*Created"]
            [saga.events]
            "Payment*" = { step = "Payment", phase = "step_started" }
            "Payment*Failed" = { phase = "step_failed" }
            PaymentAuthorized = { step = "Payment", phase = "step_succeeded" }
            "Stock?eleased" = { step = "ReserveStock", phase = "step_compensated" }
            "#,
        )
        .unwrap();
        assert_eq!(
            rules.classify("PaymentAuthorized").phase,
            Phase::StepSucceeded
        );
        let failed = rules.classify("com.shop.PaymentCaptureFailed");
        assert_eq!(failed.phase, Phase::StepFailed);
        assert_eq!(failed.step.as_deref(), Some("PaymentCaptureFailed"));
        assert_eq!(failed.saga_type.as_deref(), Some("order"));
        assert_eq!(rules.classify("PaymentRequested").phase, Phase::StepStarted);
        assert_eq!(
            rules.classify("StockReleased").step.as_deref(),
            Some("ReserveStock")
        );
        let start = rules.classify("OrderDraftCreated");
        assert_eq!(start.phase, Phase::SagaStarted);
        assert_eq!(start.saga_type.as_deref(), Some("order"));
        assert_eq!(rules.classify("Unrelated").saga_type, None);
    }

    #[test]
    fn correlation_order_topic_formats_and_not_saga_streams() {
        let rules = Rules::parse(
            r#"
            [[saga]]
            type = "order"
            correlate = ["trace_id", "/order/id", "aggregate_id"]
            [[topic]]
            match = "payments.*"
            format = "cloudevents"
            [not_saga]
            events = ["Product*"]
            topics = ["audit.log"]
            "#,
        )
        .unwrap();
        assert_eq!(
            rules.correlation(Some("order")),
            &[
                CorrelationSource::TraceId,
                CorrelationSource::Pointer("/order/id".into()),
                CorrelationSource::AggregateId
            ]
        );
        assert_eq!(rules.correlation(Some("chat")), &DEFAULT_CORRELATION);
        assert_eq!(rules.correlation(None), &DEFAULT_CORRELATION);
        assert_eq!(
            rules.format_for_topic("payments.events"),
            Some(Format::CloudEvents)
        );
        assert_eq!(rules.format_for_topic("orders"), None);
        assert!(rules.is_not_saga("com.shop.ProductRegistered", "catalog"));
        assert!(rules.is_not_saga("Anything", "audit.log"));
        assert!(!rules.is_not_saga("OrderCreated", "orders"));
    }

    #[test]
    fn mistakes_in_the_file_are_clear_errors() {
        for (text, expected) in [
            (
                "[[saga]]\ntype='x'\ncorrelate=['order_id']\n",
                "correlates by `order_id`",
            ),
            (
                "[[topic]]\nmatch='t'\nformat='avro'\n",
                "unknown format `avro`",
            ),
            ("[redact]\nfields=['']\n", "redaction path ``"),
            (
                "[[saga]]\ntype='x'\ntimout='5s'\n",
                "unknown field `timout`",
            ),
        ] {
            let err = Rules::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn compensations_pair_forward_steps_with_their_compensation_steps() {
        let rules = Rules::parse(
            "[[saga]]\ntype='order'\ncompensations = { ReserveStock = 'ReleaseStock', ChargeCard = 'RefundCard' }\n",
        )
        .unwrap();
        let pairs = &rules.compensation_pairs()["order"];
        assert!(pairs["ReserveStock"].contains("ReleaseStock"));
        assert!(pairs["ChargeCard"].contains("RefundCard"));
        assert!(Rules::parse("[[saga]]\ntype='x'\n")
            .unwrap()
            .compensation_pairs()
            .is_empty());
    }

    #[test]
    fn timeouts_per_saga_type() {
        let rules =
            Rules::parse("[[saga]]\ntype='order'\ntimeout='30s'\n[[saga]]\ntype='chat'\n").unwrap();
        assert_eq!(
            rules.timeouts().get("order"),
            Some(&Duration::from_secs(30))
        );
        assert_eq!(rules.timeouts().get("chat"), None);
        let err = Rules::parse("[[saga]]\ntype='x'\ntimeout='soon'\n").unwrap_err();
        assert!(err.to_string().contains("timeout `soon`"), "{err}");
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), None);
    }

    #[test]
    fn the_dead_letter_table_configures_the_generic_form() {
        use crate::dead_letter::GenericField;
        assert!(!Rules::default().dead_letter_fields().is_configured());
        let rules = Rules::parse(
            "[dead_letter]\noriginal_topic = { header = 'x-original-topic' }\nreason = { header = 'x-error', pointer = '/error/message' }\n",
        )
        .unwrap();
        let fields = rules.dead_letter_fields();
        assert_eq!(
            fields.original_topic,
            Some(GenericField::from_header("x-original-topic"))
        );
        assert_eq!(
            fields.reason.as_ref().and_then(|r| r.pointer.as_deref()),
            Some("/error/message")
        );
        for (text, expected) in [
            (
                "[dead_letter]\nreasn = { header = 'x' }\n",
                "unknown field `reasn`",
            ),
            (
                "[dead_letter]\nreason = { pointer = 'error' }\n",
                "must start with `/`",
            ),
        ] {
            let err = Rules::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_bad_phase_is_a_clear_error() {
        let err = Rules::parse("[[saga]]\ntype='x'\n[saga.events]\nA = { phase = 'done' }\n")
            .unwrap_err();
        assert!(err.to_string().contains("unknown phase `done`"), "{err}");
    }
}
