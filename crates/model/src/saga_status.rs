use serde::{Deserialize, Serialize};

/// The state of one saga instance, derived from its events by the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    Running,
    Completed,
    Failed,
    Compensating,
    Compensated,
    CompensationFailed,
    TimedOut,
    /// Running or compensating, but no event for longer than the saga
    /// type's timeout. Cleared when events resume.
    Stalled,
}

impl SagaStatus {
    pub const ALL: [SagaStatus; 8] = [
        SagaStatus::Running,
        SagaStatus::Completed,
        SagaStatus::Failed,
        SagaStatus::Compensating,
        SagaStatus::Compensated,
        SagaStatus::CompensationFailed,
        SagaStatus::TimedOut,
        SagaStatus::Stalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Running => "running",
            SagaStatus::Completed => "completed",
            SagaStatus::Failed => "failed",
            SagaStatus::Compensating => "compensating",
            SagaStatus::Compensated => "compensated",
            SagaStatus::CompensationFailed => "compensation_failed",
            SagaStatus::TimedOut => "timed_out",
            SagaStatus::Stalled => "stalled",
        }
    }

    /// Human label for badges; the badge also carries an icon so colour is never
    /// the only signal.
    pub fn label(self) -> &'static str {
        match self {
            SagaStatus::Running => "Running",
            SagaStatus::Completed => "Completed",
            SagaStatus::Failed => "Failed",
            SagaStatus::Compensating => "Compensating",
            SagaStatus::Compensated => "Compensated",
            SagaStatus::CompensationFailed => "Compensation failed",
            SagaStatus::TimedOut => "Timed out",
            SagaStatus::Stalled => "Stalled",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            SagaStatus::Running => "◌",
            SagaStatus::Completed => "✓",
            SagaStatus::Failed => "✕",
            SagaStatus::Compensating => "↺",
            SagaStatus::Compensated => "↶",
            SagaStatus::CompensationFailed => "⚠",
            SagaStatus::TimedOut => "⏱",
            SagaStatus::Stalled => "◷",
        }
    }

    pub fn parse(text: &str) -> Option<SagaStatus> {
        SagaStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            SagaStatus::Running | SagaStatus::Compensating | SagaStatus::Stalled
        )
    }
}

impl std::fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_through_parse_and_serde() {
        for status in SagaStatus::ALL {
            assert_eq!(SagaStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(SagaStatus::parse("RUNNING"), None);
    }
}
