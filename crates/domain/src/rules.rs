//! Classification rules: which saga type, step and phase a named domain event
//! means. Loaded from a TOML file (`--rules PATH`); with no file, defaults by
//! name suffix still give readable timelines.
//!
//! ```toml
//! [[saga]]
//! type = "scan_reward"
//! [saga.events]
//! ImageRegistered = { step = "RegisterImage", phase = "saga_started" }
//! ProfileUpdated  = { step = "UpdateProfile", phase = "saga_completed" }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use sagascope_model::Phase;
use serde::Deserialize;

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
}

/// What a rule (or the defaults) says an event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub saga_type: Option<String>,
    pub step: Option<String>,
    pub phase: Phase,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    by_event_type: HashMap<String, Classification>,
    /// Per saga type: how long without an event before a running saga is
    /// `stalled`.
    timeouts: HashMap<String, Duration>,
}

#[derive(Deserialize)]
struct RulesFile {
    #[serde(default)]
    saga: Vec<SagaRuleFile>,
}

#[derive(Deserialize)]
struct SagaRuleFile {
    #[serde(rename = "type")]
    saga_type: String,
    /// e.g. "30s", "5m", "1h", "500ms".
    timeout: Option<String>,
    #[serde(default)]
    events: HashMap<String, EventRuleFile>,
}

#[derive(Deserialize)]
struct EventRuleFile {
    step: Option<String>,
    phase: String,
}

impl Rules {
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let file: RulesFile = toml::from_str(text)?;
        let mut by_event_type = HashMap::new();
        let mut timeouts = HashMap::new();
        for saga in file.saga {
            if let Some(text) = &saga.timeout {
                let timeout = parse_duration(text).ok_or_else(|| RulesError::BadTimeout {
                    saga_type: saga.saga_type.clone(),
                    timeout: text.clone(),
                })?;
                timeouts.insert(saga.saga_type.clone(), timeout);
            }
            for (event, rule) in saga.events {
                let phase = Phase::parse(&rule.phase).ok_or_else(|| RulesError::UnknownPhase {
                    saga_type: saga.saga_type.clone(),
                    event: event.clone(),
                    phase: rule.phase.clone(),
                })?;
                let classification = Classification {
                    saga_type: Some(saga.saga_type.clone()),
                    step: rule.step.or_else(|| Some(event.clone())),
                    phase,
                };
                by_event_type.insert(event, classification);
            }
        }
        Ok(Rules {
            by_event_type,
            timeouts,
        })
    }

    /// Stall timeouts by saga type, from the rules file.
    pub fn timeouts(&self) -> &HashMap<String, Duration> {
        &self.timeouts
    }

    /// The rule for this event name, else the defaults.
    pub fn classify(&self, event_type: &str) -> Classification {
        self.by_event_type
            .get(event_type)
            .cloned()
            .unwrap_or_else(|| default_classification(event_type))
    }

    /// For dotted, namespaced names such as the CloudEvents type
    /// `com.shop.order.PaymentFailed`: the rule for the full name, else the
    /// rule for the last segment (`PaymentFailed`), else the defaults for the
    /// last segment.
    pub fn classify_qualified(&self, event_type: &str) -> Classification {
        if let Some(rule) = self.by_event_type.get(event_type) {
            return rule.clone();
        }
        match event_type.rsplit('.').next() {
            Some(short) if !short.trim().is_empty() => self.classify(short),
            _ => self.classify(event_type),
        }
    }
}

const COMPENSATION_SUFFIXES: [&str; 5] = [
    "Compensated",
    "Released",
    "Cancelled",
    "Refunded",
    "Reverted",
];
const SUCCESS_SUFFIXES: [&str; 4] = ["Completed", "Succeeded", "Acquired", "Updated"];

/// Defaults by name: `*Failed` → step failed, `*Compensated|Released|…` →
/// step compensated, `*Completed|Succeeded|…` → step succeeded; anything else
/// is a plain event. The saga type stays open (the projection uses the first
/// event's name).
pub fn default_classification(event_type: &str) -> Classification {
    let phase = if event_type.ends_with("Failed") {
        Phase::StepFailed
    } else if COMPENSATION_SUFFIXES
        .iter()
        .any(|s| event_type.ends_with(s))
    {
        Phase::StepCompensated
    } else if SUCCESS_SUFFIXES.iter().any(|s| event_type.ends_with(s)) {
        Phase::StepSucceeded
    } else {
        Phase::Event
    };
    Classification {
        saga_type: None,
        step: Some(event_type.to_string()),
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
    fn qualified_names_fall_back_to_their_last_segment() {
        let rules = Rules::parse(
            "[[saga]]\ntype='order'\n[saga.events]\n\"com.shop.order.Placed\" = { step = 'Place', phase = 'saga_started' }\nPaymentFailed = { step = 'Pay', phase = 'step_failed' }\n",
        )
        .unwrap();
        assert_eq!(
            rules.classify_qualified("com.shop.order.Placed").phase,
            Phase::SagaStarted
        );
        let payment = rules.classify_qualified("com.shop.order.PaymentFailed");
        assert_eq!(payment.saga_type.as_deref(), Some("order"));
        assert_eq!(payment.step.as_deref(), Some("Pay"));
        let stock = rules.classify_qualified("com.shop.stock.StockReleased");
        assert_eq!(stock.saga_type, None);
        assert_eq!(stock.step.as_deref(), Some("StockReleased"));
        assert_eq!(stock.phase, Phase::StepCompensated);
        assert_eq!(
            rules.classify_qualified("trailing.").step.as_deref(),
            Some("trailing.")
        );
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
    fn a_bad_phase_is_a_clear_error() {
        let err = Rules::parse("[[saga]]\ntype='x'\n[saga.events]\nA = { phase = 'done' }\n")
            .unwrap_err();
        assert!(err.to_string().contains("unknown phase `done`"), "{err}");
    }
}
