//! The saga projection: a summary merged from events one at a time.
//!
//! Every field is a min, a max, a flag or a set union over the events, each
//! ordered by a total key (occurred_at, then event_id), so the final state
//! is the same for any arrival order. Duplicates are removed before merging
//! (the store inserts events idempotently on event_id and merges only the
//! new ones); `event_count` is the one field that relies on that.
//!
//! A saga known only from the defaults (no saga type from the rules or the
//! messages, no explicit saga id: a choreography correlated by trace id)
//! has no declared end. Its status comes from what its events' names say
//! ([`crate::event_names`], as soon as each event is merged): the latest
//! compensation event decides compensating (a request) or compensated (a
//! done event); else a failure makes it failed, unless a later
//! `{Type}Completed`/`Confirmed`/`Finished` event completed it; else that
//! completion event alone makes it completed. Such an outcome rests on an
//! event, so it has an end time (that event's) and is not shown as
//! inferred; only the stall sweep's quiet inference
//! ([`SagaProjection::quiet_status`]) is.
//!
//! Trace ids and business keys are kept up to [`MAX_KEPT_IDS`] each: the
//! smallest ones (a set's N smallest values do not depend on the order they
//! came in), with a flag once there were more. A long-lived stream meets a
//! new trace id with nearly every event, and its projection is rewritten
//! whole with every batch; search does not need the sets, it reads
//! `saga_keys`, where every id stays.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use sagascope_model::{Phase, SagaStatus, SagaSummary, Timestamp};
use serde::{Deserialize, Serialize};

use crate::event_names;
use crate::saga_event::SagaEvent;

/// How many trace ids, and how many business keys, a projection keeps.
pub const MAX_KEPT_IDS: usize = 32;

/// Adds `value` to `kept`, which holds the [`MAX_KEPT_IDS`] smallest values
/// seen; `more` turns true once more than that many distinct values were
/// seen (whatever their order: the (N+1)th distinct value to arrive finds
/// the set full). A set stored before the cap is trimmed here too, as a
/// rebuild from the events would trim it.
fn keep_smallest(kept: &mut BTreeSet<String>, more: &mut bool, value: &str) {
    if !kept.contains(value) {
        if kept.len() >= MAX_KEPT_IDS && kept.last().is_some_and(|last| value > last.as_str()) {
            *more = true;
        } else {
            kept.insert(value.to_string());
        }
    }
    while kept.len() > MAX_KEPT_IDS {
        kept.pop_last();
        *more = true;
    }
}

/// A value remembered together with the key of the event it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyed<T> {
    pub at_us: i64,
    pub event_id: String,
    pub value: T,
}

impl<T> Keyed<T> {
    fn key(&self) -> (i64, &str) {
        (self.at_us, &self.event_id)
    }
}

fn keep_min<T>(slot: &mut Option<Keyed<T>>, candidate: Keyed<T>) {
    if slot
        .as_ref()
        .is_none_or(|current| candidate.key() < current.key())
    {
        *slot = Some(candidate);
    }
}

fn keep_max<T>(slot: &mut Option<Keyed<T>>, candidate: Keyed<T>) {
    if slot
        .as_ref()
        .is_none_or(|current| candidate.key() > current.key())
    {
        *slot = Some(candidate);
    }
}

/// The persisted merge state of one saga instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaProjection {
    pub saga_id: String,
    /// Earliest event: start time, and its aggregate type (or else its
    /// name) as the fallback saga type.
    pub first: Option<Keyed<String>>,
    pub last: Option<Keyed<()>>,
    /// Earliest event that named a saga type.
    pub saga_type: Option<Keyed<String>>,
    /// Latest event that named a step.
    pub current_step: Option<Keyed<String>>,
    /// Earliest failure: (step, reason).
    pub failure: Option<Keyed<(Option<String>, Option<String>)>>,
    /// Latest terminal phase. Ties at the same instant go to the larger event id.
    pub terminal: Option<Keyed<Phase>>,
    /// A failed compensation is sticky: it stays visible even if a
    /// COMPENSATED arrives later (DESIGN.md).
    pub compensation_failed: Option<Keyed<()>>,
    pub compensating: bool,
    /// The [`MAX_KEPT_IDS`] smallest trace ids of the events.
    pub trace_ids: BTreeSet<String>,
    /// The [`MAX_KEPT_IDS`] smallest business keys of the events.
    pub business_keys: BTreeSet<String>,
    /// The events carry more trace ids than `trace_ids` keeps.
    #[serde(default)]
    pub more_trace_ids: bool,
    /// The events carry more business keys than `business_keys` keeps.
    #[serde(default)]
    pub more_business_keys: bool,
    pub event_count: i64,
    /// True once any event has saga meaning: an explicit saga id, a saga
    /// type from the rules, or a phase other than a plain event. Groups
    /// without it (entity streams such as product events) are kept for
    /// traces and search but not listed as sagas.
    #[serde(default = "saga_like_by_default")]
    pub saga_like: bool,
    /// True once any event named its saga id itself.
    #[serde(default)]
    pub explicit_id: bool,
    /// The (at most) two smallest distinct names of step-bearing events: a
    /// group whose events hop across two or more event types is a saga even
    /// when no rule gives them meaning (a choreography correlated by trace
    /// id), while a lone entity-change event is not, and neither is a
    /// `[not_saga]` stream (its events carry no step).
    #[serde(default)]
    pub type_sample: BTreeSet<String>,
    /// Per step: its first and last event and whether it failed (for the
    /// per-step metrics).
    #[serde(default)]
    pub steps: BTreeMap<String, StepSpan>,
    /// Latest compensation request or done event (`compensation_started`,
    /// `step_compensated`, `saga_compensated`): for an undeclared saga,
    /// compensating or compensated.
    #[serde(default)]
    pub last_compensation: Option<Keyed<Phase>>,
    /// Latest failure (`failure` keeps the earliest, for its step and
    /// reason): a completion after it wins for an undeclared saga.
    #[serde(default)]
    pub last_failure: Option<Keyed<()>>,
    /// Latest completion-named event (`OrderCompleted`,
    /// `com.acme.order.completed`) per entity it names (`order`), matched
    /// against the saga type when the status is read (the type is the
    /// earliest event's, which may still change).
    #[serde(default)]
    pub completions: BTreeMap<String, Keyed<()>>,
    /// The flow node ([`crate::flow_learning::flow_node_name`]) of the
    /// latest event: where a learned flow says what comes next, or that
    /// the instance has ended.
    #[serde(default)]
    pub last_node: Option<Keyed<String>>,
    /// Steps with a `step_succeeded` event: forward work that a
    /// compensation must undo ([`crate::compensation_integrity`]).
    #[serde(default)]
    pub succeeded_steps: BTreeSet<String>,
    /// Steps named by a compensation request or done event.
    #[serde(default)]
    pub compensation_steps: BTreeSet<String>,
}

/// The events of one step of a saga, reduced to min/max/flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpan {
    pub first_us: i64,
    pub last_us: i64,
    pub failed: bool,
}

fn saga_like_by_default() -> bool {
    true
}

/// The fallback saga type of an instance: the first event's aggregate type
/// when it is a plain name (not a CloudEvents source URI), else its name.
fn fallback_type(event: &SagaEvent) -> String {
    match &event.source_type {
        Some(t)
            if !t.is_empty()
                && t.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            t.clone()
        }
        _ => event.event_type.clone(),
    }
}

pub fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> Timestamp {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

impl SagaProjection {
    pub fn new(saga_id: impl Into<String>) -> SagaProjection {
        SagaProjection {
            saga_id: saga_id.into(),
            first: None,
            last: None,
            saga_type: None,
            current_step: None,
            failure: None,
            terminal: None,
            compensation_failed: None,
            compensating: false,
            trace_ids: BTreeSet::new(),
            business_keys: BTreeSet::new(),
            more_trace_ids: false,
            more_business_keys: false,
            event_count: 0,
            saga_like: false,
            explicit_id: false,
            type_sample: BTreeSet::new(),
            steps: BTreeMap::new(),
            last_compensation: None,
            last_failure: None,
            completions: BTreeMap::new(),
            last_node: None,
            succeeded_steps: BTreeSet::new(),
            compensation_steps: BTreeSet::new(),
        }
    }

    /// Merges one event that this saga has not seen before.
    pub fn merge(&mut self, event: &SagaEvent) {
        debug_assert_eq!(event.saga_id, self.saga_id);
        let at_us = micros(event.occurred_at);
        fn keyed<T>(at_us: i64, event: &SagaEvent, value: T) -> Keyed<T> {
            Keyed {
                at_us,
                event_id: event.event_id.clone(),
                value,
            }
        }
        self.event_count += 1;
        keep_min(&mut self.first, keyed(at_us, event, fallback_type(event)));
        self.saga_like |= event.explicit_saga_id.is_some()
            || event.saga_type.is_some()
            || event.phase != Phase::Event;
        self.explicit_id |= event.explicit_saga_id.is_some();
        if event.step.is_some() {
            self.type_sample.insert(event.event_type.clone());
            while self.type_sample.len() > 2 {
                self.type_sample.pop_last();
            }
        }
        keep_max(&mut self.last, keyed(at_us, event, ()));
        keep_max(
            &mut self.last_node,
            keyed(at_us, event, crate::flow_learning::flow_node_of(event)),
        );
        if let Some(saga_type) = &event.saga_type {
            keep_min(&mut self.saga_type, keyed(at_us, event, saga_type.clone()));
        }
        if let Some(step) = &event.step {
            keep_max(&mut self.current_step, keyed(at_us, event, step.clone()));
            let failed = matches!(event.phase, Phase::StepFailed | Phase::CompensationFailed);
            self.steps
                .entry(step.clone())
                .and_modify(|span| {
                    span.first_us = span.first_us.min(at_us);
                    span.last_us = span.last_us.max(at_us);
                    span.failed |= failed;
                })
                .or_insert(StepSpan {
                    first_us: at_us,
                    last_us: at_us,
                    failed,
                });
        }
        if matches!(
            event.phase,
            Phase::StepFailed | Phase::SagaFailed | Phase::SagaTimedOut | Phase::CompensationFailed
        ) || (event.error.is_some() && event.phase.is_failure())
        {
            keep_min(
                &mut self.failure,
                keyed(at_us, event, (event.step.clone(), event.error.clone())),
            );
            keep_max(&mut self.last_failure, keyed(at_us, event, ()));
        }
        if let Some(step) = &event.step {
            match event.phase {
                Phase::StepSucceeded => {
                    self.succeeded_steps.insert(step.clone());
                }
                Phase::CompensationStarted | Phase::StepCompensated | Phase::SagaCompensated => {
                    self.compensation_steps.insert(step.clone());
                }
                _ => {}
            }
        }
        if matches!(
            event.phase,
            Phase::CompensationStarted | Phase::StepCompensated | Phase::SagaCompensated
        ) {
            keep_max(
                &mut self.last_compensation,
                keyed(at_us, event, event.phase),
            );
        }
        if let Some(entity) = event_names::completion_entity(&event.event_type) {
            let candidate = keyed(at_us, event, ());
            match self.completions.get_mut(&entity) {
                Some(current) if candidate.key() > current.key() => *current = candidate,
                Some(_) => {}
                None => {
                    self.completions.insert(entity, candidate);
                }
            }
        }
        if event.phase.is_terminal() {
            keep_max(&mut self.terminal, keyed(at_us, event, event.phase));
        }
        if event.phase == Phase::CompensationFailed {
            keep_min(&mut self.compensation_failed, keyed(at_us, event, ()));
        }
        if event.phase.is_compensation() {
            self.compensating = true;
        }
        if let Some(trace_id) = &event.trace_id {
            keep_smallest(&mut self.trace_ids, &mut self.more_trace_ids, trace_id);
        }
        for key in &event.business_keys {
            keep_smallest(&mut self.business_keys, &mut self.more_business_keys, key);
        }
    }

    pub fn status(&self) -> SagaStatus {
        if self.compensation_failed.is_some() {
            return SagaStatus::CompensationFailed;
        }
        match self.terminal.as_ref().map(|t| t.value) {
            Some(Phase::SagaCompleted) => SagaStatus::Completed,
            Some(Phase::SagaFailed) => SagaStatus::Failed,
            Some(Phase::SagaCompensated) => SagaStatus::Compensated,
            Some(Phase::SagaTimedOut) => SagaStatus::TimedOut,
            _ => match self.named_outcome() {
                Some((status, _)) => status,
                None if self.compensating => SagaStatus::Compensating,
                None => SagaStatus::Running,
            },
        }
    }

    /// Known only from the defaults: no saga type from the rules or the
    /// messages, and no explicit saga id (a choreography correlated by
    /// trace id or aggregate). Its outcome comes from its events' names.
    pub fn is_undeclared(&self) -> bool {
        self.saga_type.is_none() && !self.explicit_id
    }

    /// The outcome of an undeclared saga by its events' names (see the
    /// module doc), with the time of the event that decided it; None for
    /// declared sagas and while nothing decided one (running).
    fn named_outcome(&self) -> Option<(SagaStatus, i64)> {
        if !self.is_undeclared() {
            return None;
        }
        if let Some(latest) = &self.last_compensation {
            let status = if latest.value == Phase::CompensationStarted {
                SagaStatus::Compensating
            } else {
                SagaStatus::Compensated
            };
            return Some((status, latest.at_us));
        }
        let entities = event_names::type_entities(&self.saga_type());
        let completion = self
            .completions
            .iter()
            .filter(|(entity, _)| entities.contains(entity))
            .map(|(_, k)| k)
            .max_by(|a, b| a.key().cmp(&b.key()));
        match (completion, &self.last_failure) {
            (Some(done), Some(failed)) if done.key() > failed.key() => {
                Some((SagaStatus::Completed, done.at_us))
            }
            (_, Some(failed)) => Some((SagaStatus::Failed, failed.at_us)),
            (Some(done), None) => Some((SagaStatus::Completed, done.at_us)),
            (None, None) => None,
        }
    }

    /// Listed as a saga (see `saga_like` and `type_sample`), or kept as a
    /// stream of events only.
    pub fn is_saga(&self) -> bool {
        self.saga_like || self.type_sample.len() >= 2
    }

    /// What a quiet saga becomes once its timeout passes. Sagas whose type
    /// or id the messages or rules state are `stalled` (None): they have
    /// a known end that has not come. A choreography known only from the
    /// defaults has no end event anyone declared, so its quiet end is its
    /// outcome so far (shown as inferred): a compensation still asked for
    /// becomes compensated, a saga with no failure, compensation or
    /// completion event completed. (Failures and compensations done end it
    /// at once: `status` is already failed or compensated, which the sweep
    /// leaves alone.)
    pub fn quiet_status(&self) -> Option<SagaStatus> {
        if !self.is_undeclared() {
            return None;
        }
        match self.status() {
            SagaStatus::Compensating => Some(SagaStatus::Compensated),
            SagaStatus::Running if self.failure.is_some() => Some(SagaStatus::Failed),
            SagaStatus::Running => Some(SagaStatus::Completed),
            _ => None,
        }
    }

    pub fn saga_type(&self) -> String {
        self.saga_type
            .as_ref()
            .or(self.first.as_ref())
            .map(|k| k.value.clone())
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// The stored form of the forward steps its own events leave
    /// uncompensated (the `missing_compensations` column): a JSON array,
    /// None when nothing is missing.
    pub fn missing_compensations_column(&self) -> Option<String> {
        let missing = self.summary_missing_compensations();
        (!missing.is_empty()).then(|| serde_json::to_string(&missing).unwrap_or_default())
    }

    fn summary_missing_compensations(&self) -> Vec<String> {
        crate::compensation_integrity::missing_compensations(
            &crate::compensation_integrity::CompensatedSteps::of(self),
            self.status(),
            &Default::default(),
        )
    }

    /// The flow node of the latest event.
    pub fn last_node(&self) -> Option<&str> {
        self.last_node.as_ref().map(|k| k.value.as_str())
    }

    pub fn started_at_us(&self) -> i64 {
        self.first.as_ref().map(|k| k.at_us).unwrap_or_default()
    }

    pub fn last_event_at_us(&self) -> i64 {
        self.last.as_ref().map(|k| k.at_us).unwrap_or_default()
    }

    /// When the saga finished: its latest terminal event or its failed
    /// compensation, whichever is later; for an undeclared saga with a
    /// finished outcome by name, the event that decided it.
    pub fn ended_at_us(&self) -> Option<i64> {
        let terminal = self.terminal.as_ref().map(|k| k.at_us);
        let stuck = self.compensation_failed.as_ref().map(|k| k.at_us);
        terminal.max(stuck).or_else(|| {
            self.named_outcome()
                .filter(|(status, _)| status.is_finished())
                .map(|(_, at_us)| at_us)
        })
    }

    pub fn summary(&self) -> SagaSummary {
        let started = self.started_at_us();
        let ended = self.ended_at_us();
        let (failed_step, failure_reason) = self
            .failure
            .as_ref()
            .map(|k| k.value.clone())
            .unwrap_or((None, None));
        SagaSummary {
            saga_id: self.saga_id.clone(),
            saga_type: self.saga_type(),
            status: self.status(),
            started_at: from_micros(started),
            ended_at: ended.map(from_micros),
            duration_ms: ended.map(|e| (e - started).max(0) / 1000),
            current_step: self.current_step.as_ref().map(|k| k.value.clone()),
            failed_step,
            failure_reason,
            // A projection stored before the cap may hold more until its
            // next event: the summary is capped all the same.
            trace_ids: self.trace_ids.iter().take(MAX_KEPT_IDS).cloned().collect(),
            more_trace_ids: self.more_trace_ids || self.trace_ids.len() > MAX_KEPT_IDS,
            business_keys: self
                .business_keys
                .iter()
                .take(MAX_KEPT_IDS)
                .cloned()
                .collect(),
            more_business_keys: self.more_business_keys || self.business_keys.len() > MAX_KEPT_IDS,
            event_count: self.event_count,
            last_event_at: from_micros(self.last_event_at_us()),
            // An outcome by name rests on an event: not inferred. Only the
            // stall sweep's quiet inference is (set by the store).
            status_inferred: false,
            inferred_from: None,
            last_node: self.last_node().map(str::to_string),
            // Judged against the type's flow by the server (crates/flows).
            waiting_on: None,
            // By the saga's own events only; the store's row adds what the
            // type's learned pairs say.
            missing_compensations: self.summary_missing_compensations(),
        }
    }
}

/// Projects a whole set of events, skipping repeated event ids (keeps the
/// first), the way the store does across batches.
pub fn project_all<'a>(
    saga_id: &str,
    events: impl IntoIterator<Item = &'a SagaEvent>,
) -> SagaProjection {
    let mut seen = std::collections::HashSet::new();
    let mut projection = SagaProjection::new(saga_id);
    for event in events {
        if seen.insert(event.event_id.clone()) {
            projection.merge(event);
        }
    }
    projection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(values: &[String]) -> (BTreeSet<String>, bool) {
        let mut set = BTreeSet::new();
        let mut more = false;
        for value in values {
            keep_smallest(&mut set, &mut more, value);
        }
        (set, more)
    }

    fn ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|n| format!("id-{n:03}")).collect()
    }

    #[test]
    fn up_to_the_cap_every_id_is_kept_and_nothing_is_flagged() {
        let (set, more) = kept(&ids(0..MAX_KEPT_IDS));
        assert_eq!(set.len(), MAX_KEPT_IDS);
        assert!(!more);
        let (_, more) = kept(&[ids(0..MAX_KEPT_IDS), ids(0..MAX_KEPT_IDS)].concat());
        assert!(!more, "repeats are not more ids");
    }

    #[test]
    fn beyond_the_cap_the_smallest_are_kept_and_more_is_flagged() {
        let mut values = ids(0..MAX_KEPT_IDS + 1);
        values.reverse();
        let (set, more) = kept(&values);
        assert_eq!(set, ids(0..MAX_KEPT_IDS).into_iter().collect());
        assert!(more);
        // A larger id arriving at a full set is not kept but counts.
        let (set, more) = kept(&ids(0..MAX_KEPT_IDS + 1));
        assert_eq!(set, ids(0..MAX_KEPT_IDS).into_iter().collect());
        assert!(more);
    }

    #[test]
    fn a_set_stored_before_the_cap_is_trimmed_by_the_next_event() {
        let mut set: BTreeSet<String> = ids(0..100).into_iter().collect();
        let mut more = false;
        keep_smallest(&mut set, &mut more, "id-050");
        assert_eq!(set, ids(0..MAX_KEPT_IDS).into_iter().collect());
        assert!(more);
    }

    #[test]
    fn the_summary_lists_at_most_the_cap_and_says_there_are_more() {
        let mut projection = SagaProjection::new("s");
        projection.trace_ids = ids(0..100).into_iter().collect();
        projection.business_keys = ids(0..3).into_iter().collect();
        let summary = projection.summary();
        assert_eq!(summary.trace_ids, ids(0..MAX_KEPT_IDS));
        assert!(summary.more_trace_ids);
        assert_eq!(summary.business_keys, ids(0..3));
        assert!(!summary.more_business_keys);
    }

    #[test]
    fn a_projection_stored_without_the_flags_reads_as_not_truncated() {
        let mut stored = serde_json::to_value(SagaProjection::new("s")).unwrap();
        let fields = stored.as_object_mut().unwrap();
        fields.remove("more_trace_ids");
        fields.remove("more_business_keys");
        let read: SagaProjection = serde_json::from_value(stored).unwrap();
        assert_eq!(read, SagaProjection::new("s"));
    }
}
