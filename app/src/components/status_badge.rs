use leptos::prelude::*;
use sagascope_model::{Phase, SagaStatus};

/// A saga status: colour, icon and label together (never colour alone).
#[component]
pub fn StatusBadge(
    status: SagaStatus,
    /// `data-test` value, when a test needs to find this badge.
    #[prop(optional)]
    test: Option<&'static str>,
    /// Inferred when the saga went quiet (no rule declares its end): drawn
    /// dashed with a `≈`, and the title says why.
    #[prop(optional)]
    inferred: bool,
    /// What inferred it (`SagaSummary::inferred_from`): the title says so.
    #[prop(optional_no_strip)]
    inferred_from: Option<String>,
    /// The flow node of the saga's latest event (`SagaSummary::last_node`).
    #[prop(optional_no_strip)]
    last_node: Option<String>,
) -> impl IntoView {
    let title = if inferred {
        format!(
            "Status: {} ({})",
            status.label(),
            inferred_why(inferred_from.as_deref(), last_node.as_deref())
        )
    } else {
        format!("Status: {}", status.label())
    };
    view! {
        <span
            class=format!("badge status-{}{}", status.as_str(), if inferred { " inferred" } else { "" })
            data-status=status.as_str()
            data-inferred=inferred.then_some("true")
            data-test=test
            title=title
        >
            <span class="badge-icon" aria-hidden="true">{status.icon()}</span>
            <span class="badge-label">{if inferred { "≈ " } else { "" }}{status.label()}</span>
        </span>
    }
}

/// Why an inferred status was inferred, for the badge's title.
pub fn inferred_why(inferred_from: Option<&str>, last_node: Option<&str>) -> String {
    match (inferred_from, last_node) {
        (Some("learned_end"), Some(node)) => format!(
            "inferred: the saga stopped at {node}, which ends this type's instances (learned flow)"
        ),
        (Some("learned_end"), None) => {
            "inferred: the saga stopped at an event that ends this type's instances (learned flow)"
                .to_string()
        }
        (Some("learned_quiet"), _) => {
            "inferred: quiet longer than this type's steps usually take (learned flow)".to_string()
        }
        _ => "inferred: the saga went quiet after this outcome and no rule declares its end event"
            .to_string(),
    }
}

/// Icon of an event phase on the timeline.
pub fn phase_icon(phase: Phase) -> &'static str {
    match phase {
        Phase::SagaStarted => "▶",
        Phase::StepStarted => "◌",
        Phase::StepSucceeded => "✓",
        Phase::StepFailed => "✕",
        Phase::CompensationStarted => "↺",
        Phase::StepCompensated => "↶",
        Phase::CompensationFailed => "⚠",
        Phase::SagaCompleted => "✓",
        Phase::SagaFailed => "✕",
        Phase::SagaCompensated => "↶",
        Phase::SagaTimedOut => "⏱",
        Phase::Event => "•",
    }
}

/// Colour family of a phase, for the timeline rail and the row tint.
pub fn phase_tone(phase: Phase) -> &'static str {
    match phase {
        Phase::CompensationFailed => "critical",
        p if p.is_failure() => "failed",
        p if p.is_compensation() => "compensating",
        Phase::SagaCompleted | Phase::StepSucceeded => "completed",
        Phase::SagaStarted | Phase::StepStarted => "running",
        _ => "neutral",
    }
}

/// A phase chip: icon and label.
#[component]
pub fn PhaseLabel(phase: Phase) -> impl IntoView {
    view! {
        <span class=format!("phase tone-{}", phase_tone(phase)) title=phase.as_str()>
            <span class="phase-icon" aria-hidden="true">{phase_icon(phase)}</span>
            <span class="phase-label">{phase.label()}</span>
        </span>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inferred_title_says_from_what() {
        assert_eq!(
            inferred_why(Some("learned_end"), Some("ProfileUpdated")),
            "inferred: the saga stopped at ProfileUpdated, which ends this type's instances (learned flow)"
        );
        assert!(
            inferred_why(Some("learned_quiet"), Some("X")).starts_with("inferred: quiet longer")
        );
        assert!(inferred_why(Some("quiet"), None).contains("no rule declares its end event"));
        assert!(inferred_why(None, None).contains("no rule declares its end event"));
    }
}
