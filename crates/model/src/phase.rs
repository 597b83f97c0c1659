use serde::{Deserialize, Serialize};

/// What one event means for its saga (DESIGN.md, "Canonical event").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    SagaStarted,
    StepStarted,
    StepSucceeded,
    StepFailed,
    CompensationStarted,
    StepCompensated,
    CompensationFailed,
    SagaCompleted,
    SagaFailed,
    SagaCompensated,
    SagaTimedOut,
    Event,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::SagaStarted,
        Phase::StepStarted,
        Phase::StepSucceeded,
        Phase::StepFailed,
        Phase::CompensationStarted,
        Phase::StepCompensated,
        Phase::CompensationFailed,
        Phase::SagaCompleted,
        Phase::SagaFailed,
        Phase::SagaCompensated,
        Phase::SagaTimedOut,
        Phase::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::SagaStarted => "saga_started",
            Phase::StepStarted => "step_started",
            Phase::StepSucceeded => "step_succeeded",
            Phase::StepFailed => "step_failed",
            Phase::CompensationStarted => "compensation_started",
            Phase::StepCompensated => "step_compensated",
            Phase::CompensationFailed => "compensation_failed",
            Phase::SagaCompleted => "saga_completed",
            Phase::SagaFailed => "saga_failed",
            Phase::SagaCompensated => "saga_compensated",
            Phase::SagaTimedOut => "saga_timed_out",
            Phase::Event => "event",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Compensation rows are drawn indented and amber on the timeline.
    pub fn is_compensation(self) -> bool {
        matches!(
            self,
            Phase::CompensationStarted
                | Phase::StepCompensated
                | Phase::CompensationFailed
                | Phase::SagaCompensated
        )
    }

    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Phase::StepFailed | Phase::CompensationFailed | Phase::SagaFailed | Phase::SagaTimedOut
        )
    }

    /// Phases that end a saga.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::SagaCompleted | Phase::SagaFailed | Phase::SagaCompensated | Phase::SagaTimedOut
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::SagaStarted => "Saga started",
            Phase::StepStarted => "Step started",
            Phase::StepSucceeded => "Step succeeded",
            Phase::StepFailed => "Step failed",
            Phase::CompensationStarted => "Compensating",
            Phase::StepCompensated => "Step compensated",
            Phase::CompensationFailed => "Compensation failed",
            Phase::SagaCompleted => "Saga completed",
            Phase::SagaFailed => "Saga failed",
            Phase::SagaCompensated => "Saga compensated",
            Phase::SagaTimedOut => "Saga timed out",
            Phase::Event => "Event",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_round_trip() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
        assert!(Phase::SagaCompensated.is_compensation());
        assert!(!Phase::SagaCompensated.is_failure());
        assert!(Phase::SagaTimedOut.is_terminal());
    }
}
