//! A saga's dead letters on its timeline: rows of their own, at the time
//! they were dead-lettered, between the saga's events. Each names its DLQ
//! topic, exception and state and links to the dead letter's page; for
//! operators a retryable one carries a "Retry failed step" form that comes
//! back to the saga page.

use leptos::prelude::*;
use sagascope_model::{SessionInfo, TimelineEvent};

use crate::components::dead_letter::{
    dead_letter_href, is_retryable, short_class, DeadLetterStateBadge,
};
use crate::components::dead_letter_actions::RetryForm;
use crate::components::timeline::Axis;
use crate::server_fns::SagaDeadLetter;
use crate::time::{absolute, clock, machine, millis, offset};

/// One row of a saga timeline: an event or a dead letter.
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineItem {
    Event(TimelineEvent),
    DeadLetter(SagaDeadLetter),
}

impl TimelineItem {
    /// Key of the row: a dead letter's row is rebuilt when its state
    /// changes, an event's never.
    pub fn key(&self) -> String {
        match self {
            TimelineItem::Event(event) => format!("e:{}", event.event_id),
            TimelineItem::DeadLetter(d) => format!(
                "d:{}:{}:{}",
                d.letter.id,
                d.letter.state.as_str(),
                d.letter.retry_count
            ),
        }
    }
}

/// Events (in time order) and dead letters merged by time; a dead letter
/// goes after the events of the same instant (it failed processing one).
pub fn merge_timeline(events: &[TimelineEvent], letters: &[SagaDeadLetter]) -> Vec<TimelineItem> {
    let mut letters: Vec<&SagaDeadLetter> = letters.iter().collect();
    letters.sort_by(|a, b| {
        (a.letter.dead_lettered_at, &a.letter.id).cmp(&(b.letter.dead_lettered_at, &b.letter.id))
    });
    let mut out = Vec::with_capacity(events.len() + letters.len());
    let mut pending = letters.into_iter().peekable();
    for event in events {
        while let Some(letter) = pending.next_if(|l| l.letter.dead_lettered_at < event.occurred_at)
        {
            out.push(TimelineItem::DeadLetter(letter.clone()));
        }
        out.push(TimelineItem::Event(event.clone()));
    }
    out.extend(pending.map(|l| TimelineItem::DeadLetter(l.clone())));
    out
}

/// Fresh dead letters merged into the shown ones: a letter whose state and
/// retry count did not change keeps its row (and the idempotency key of its
/// form, so a half-typed reason survives); `None` when nothing changed.
pub fn merge_letters(
    shown: &[SagaDeadLetter],
    fresh: Vec<SagaDeadLetter>,
) -> Option<Vec<SagaDeadLetter>> {
    let same = |a: &SagaDeadLetter, b: &SagaDeadLetter| {
        a.letter.state == b.letter.state && a.letter.retry_count == b.letter.retry_count
    };
    let merged: Vec<SagaDeadLetter> = fresh
        .into_iter()
        .map(
            |f| match shown.iter().find(|s| s.letter.id == f.letter.id) {
                Some(s) if same(s, &f) && s.letter == f.letter => s.clone(),
                Some(s) if same(s, &f) => SagaDeadLetter {
                    letter: f.letter,
                    idempotency_key: s.idempotency_key.clone(),
                },
                _ => f,
            },
        )
        .collect();
    (merged != shown).then_some(merged)
}

/// A dead letter's row on the saga timeline.
#[component]
pub fn DeadLetterTimelineRow(
    item: SagaDeadLetter,
    axis: Memo<Axis>,
    session: SessionInfo,
    /// Where the retry form comes back to (the saga page).
    return_to: String,
) -> impl IntoView {
    let SagaDeadLetter {
        letter,
        idempotency_key,
    } = item;
    let at = millis(&letter.dead_lettered_at);
    let offset_text = move || axis.with(|a| offset(at - a.start_ms));
    let tick = move || axis.with(|a| a.tick_style(at));
    let class_full = letter
        .exception_class
        .clone()
        .unwrap_or_else(|| "unknown exception".into());
    let class_short = short_class(&class_full).to_string();
    let coords = format!(
        "{} [{}] @{}",
        letter.dlq_topic, letter.dlq_partition, letter.dlq_offset
    );
    let original = letter
        .original_topic
        .clone()
        .map(|t| format!("failed consuming {t}"))
        .unwrap_or_default();
    let href = dead_letter_href(&letter.id);
    let retry = (session.has_role("operator") && is_retryable(letter.state)).then(|| {
        view! {
            <div class="tl-dlq-actions">
                <RetryForm
                    letter=letter.clone()
                    csrf_token=session.csrf_token.clone().unwrap_or_default()
                    idempotency_key
                    return_to
                    label="Retry failed step"
                    inline=true
                    test="retry-failed-step"
                />
            </div>
        }
    });
    view! {
        <li
            class="tl-row tl-dlq tone-dlq failure"
            data-test="timeline-dead-letter"
            data-id=letter.id.clone()
            data-state=letter.state.as_str()
            data-step=letter.event_type.clone()
        >
            <div class="tl-summary tl-dlq-line">
                <span class="tl-offset num mono" title=absolute(&letter.dead_lettered_at)>{offset_text}</span>
                <span class="tl-phase">
                    <span class="phase tone-dlq" title="A consumer gave up on a message of this saga and sent it to a dead-letter topic">
                        <span class="phase-icon" aria-hidden="true">"✉"</span>
                        <span class="phase-label">"Dead letter"</span>
                    </span>
                </span>
                <span class="tl-step"><DeadLetterStateBadge state=letter.state test="timeline-dead-letter-state"/></span>
                <span class="tl-type mono" title=class_full.clone()>{class_short}</span>
                <span class="tl-topic mono" title=format!("{coords} {original}")>{coords.clone()}</span>
                <span class="tl-track" aria-hidden="true">
                    <span class="tl-tick" style=tick></span>
                </span>
                <time class="tl-time num mono" datetime=machine(&letter.dead_lettered_at) title=absolute(&letter.dead_lettered_at)>
                    {clock(&letter.dead_lettered_at)}
                </time>
                <span class="tl-error tl-dlq-error">
                    <span data-test="timeline-dead-letter-message">
                        {letter.exception_message.clone().unwrap_or_else(|| "(no exception message)".into())}
                    </span>
                    " "
                    <a href=href data-test="timeline-dead-letter-link" class="tl-dlq-link">"open dead letter →"</a>
                </span>
            </div>
            {retry}
        </li>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::DeadLetterState;

    fn event(id: &str, at: &str) -> TimelineEvent {
        serde_json::from_value(serde_json::json!({
            "event_id": id, "saga_id": "s", "phase": "event", "step": null,
            "event_type": "X", "occurred_at": at, "published_at": null, "ingested_at": at,
            "topic": "t", "partition": 0, "offset": 1, "trace_id": null, "span_id": null,
            "headers": [], "payload": {}, "error": null
        }))
        .unwrap()
    }

    fn letter(id: &str, at: &str, state: DeadLetterState) -> SagaDeadLetter {
        let mut letter: sagascope_model::DeadLetterSummary =
            serde_json::from_value(serde_json::json!({
                "id": id, "dlq_topic": "t.DLT", "dlq_partition": 0, "dlq_offset": 1,
                "dead_lettered_at": at, "ingested_at": at, "format": "spring",
                "original_topic": "t", "original_partition": 0, "original_offset": 1,
                "exception_class": null, "exception_message": null, "failure_group": "-|-|-",
                "saga_id": "s", "saga_type": null, "declared_saga_id": null, "trace_id": null,
                "event_id": null, "event_type": null, "state": "new", "state_changed_at": at,
                "state_reason": null, "retry_of": null, "retry_count": 0, "failed_again_of": null
            }))
            .unwrap();
        letter.state = state;
        SagaDeadLetter {
            letter,
            idempotency_key: format!("k-{id}"),
        }
    }

    #[test]
    fn dead_letters_sit_between_events_by_time() {
        let events = [
            event("e1", "2026-11-21T10:00:00Z"),
            event("e2", "2026-11-21T10:00:02Z"),
        ];
        let letters = [
            letter("late", "2026-11-21T10:00:05Z", DeadLetterState::New),
            letter("mid", "2026-11-21T10:00:02Z", DeadLetterState::New),
            letter("early", "2026-11-21T10:00:01Z", DeadLetterState::New),
        ];
        let keys: Vec<String> = merge_timeline(&events, &letters)
            .iter()
            .map(TimelineItem::key)
            .collect();
        assert_eq!(
            keys,
            [
                "e:e1",
                "d:early:new:0",
                "e:e2",
                "d:mid:new:0",
                "d:late:new:0"
            ]
        );
    }

    #[test]
    fn unchanged_letters_keep_their_form_key() {
        let shown = vec![letter("a", "2026-11-21T10:00:00Z", DeadLetterState::New)];
        let mut again = letter("a", "2026-11-21T10:00:00Z", DeadLetterState::New);
        again.idempotency_key = "other".into();
        assert_eq!(merge_letters(&shown, vec![again.clone()]), None);
        let retried = letter("a", "2026-11-21T10:00:00Z", DeadLetterState::Retried);
        let merged = merge_letters(&shown, vec![retried]).unwrap();
        assert_eq!(merged[0].letter.state, DeadLetterState::Retried);
        let added = merge_letters(
            &shown,
            vec![
                again,
                letter("b", "2026-11-21T10:00:01Z", DeadLetterState::New),
            ],
        )
        .unwrap();
        assert_eq!(added[0].idempotency_key, "k-a");
        assert_eq!(added.len(), 2);
    }
}
