//! What one saga contributes to the rollups: its start bucket, type,
//! status, whether it compensated, its duration and its steps. The store
//! subtracts a saga's old fact and adds its new one whenever the saga
//! changes, so the rollups always equal the sum over the current sagas.

use sagascope_model::SagaStatus;

use crate::projection::SagaProjection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaFact {
    pub saga_type: String,
    pub started_us: i64,
    pub status: SagaStatus,
    pub began_compensating: bool,
    /// Start to end, once finished.
    pub duration_ms: Option<i64>,
    pub steps: Vec<StepFact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFact {
    pub step: String,
    pub failed: bool,
    pub duration_ms: i64,
}

impl SagaFact {
    /// The fact of a saga whose stored status is `status` (the stall sweep
    /// may have set `stalled` or an inferred outcome that the projection
    /// alone does not know). None for non-saga streams.
    pub fn of(projection: &SagaProjection, status: SagaStatus) -> Option<SagaFact> {
        if !projection.is_saga() {
            return None;
        }
        let started = projection.started_at_us();
        let duration_ms = status.is_finished().then(|| {
            // An inferred outcome has no end event: it ended with its last.
            let end = projection
                .ended_at_us()
                .unwrap_or_else(|| projection.last_event_at_us());
            (end - started).max(0) / 1000
        });
        Some(SagaFact {
            saga_type: projection.saga_type(),
            started_us: started,
            status,
            began_compensating: projection.compensating,
            duration_ms,
            steps: step_facts(projection),
        })
    }
}

/// A step's duration runs from its first event to its last; a step with a
/// single event (a choreography's "StockReserved") took the time since the
/// previous step's last event (or since the saga started).
fn step_facts(projection: &SagaProjection) -> Vec<StepFact> {
    let started = projection.started_at_us();
    projection
        .steps
        .iter()
        .map(|(step, span)| {
            let duration_us = if span.last_us > span.first_us {
                span.last_us - span.first_us
            } else {
                let previous = projection
                    .steps
                    .iter()
                    .filter(|(other, s)| *other != step && s.last_us <= span.first_us)
                    .map(|(_, s)| s.last_us)
                    .max()
                    .unwrap_or(started);
                span.first_us - previous
            };
            StepFact {
                step: step.clone(),
                failed: span.failed,
                duration_ms: duration_us.max(0) / 1000,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::StepSpan;

    fn span(first_ms: i64, last_ms: i64, failed: bool) -> StepSpan {
        StepSpan {
            first_us: first_ms * 1000,
            last_us: last_ms * 1000,
            failed,
        }
    }

    #[test]
    fn steps_time_their_own_events_or_the_gap_before_them() {
        let mut p = SagaProjection::new("s1");
        p.saga_like = true;
        p.first = Some(crate::projection::Keyed {
            at_us: 0,
            event_id: "e0".into(),
            value: "order".into(),
        });
        p.last = Some(crate::projection::Keyed {
            at_us: 900_000,
            event_id: "e9".into(),
            value: (),
        });
        p.steps.insert("Reserve".into(), span(100, 400, false));
        p.steps.insert("Pay".into(), span(700, 700, true));
        p.steps.insert("Create".into(), span(0, 0, false));
        let fact = SagaFact::of(&p, SagaStatus::Failed).unwrap();
        assert_eq!(fact.duration_ms, Some(900), "inferred end = last event");
        let by_name: Vec<(&str, bool, i64)> = fact
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.failed, s.duration_ms))
            .collect();
        assert_eq!(
            by_name,
            vec![
                ("Create", false, 0),
                ("Pay", true, 300),
                ("Reserve", false, 300)
            ]
        );
        assert_eq!(
            SagaFact::of(&p, SagaStatus::Running).unwrap().duration_ms,
            None
        );
        p.saga_like = false;
        assert!(SagaFact::of(&p, SagaStatus::Running).is_none());
    }
}
