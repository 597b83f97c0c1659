//! The simulator's span export, read back by sagascope's own OTLP JSON
//! decoder (the receiver's): nothing rejected, and every span as made.

use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sagascope_model::{SpanKind, SpanStatus};
use sagascope_simulator::{
    encode_otlp_json, spans_of_saga, PlannedOutcome, SagaKind, SagaPlan, SimulatedSpanKind,
};

#[test]
fn sagascope_decodes_every_simulated_span() {
    let mut rng = StdRng::seed_from_u64(41);
    let base = Utc.timestamp_millis_opt(1_763_719_200_123).unwrap();
    for (kind, outcome) in [
        (SagaKind::Order, PlannedOutcome::Compensated),
        (SagaKind::ChatMessage, PlannedOutcome::CompensationFailed),
        (SagaKind::ScanReward, PlannedOutcome::Completed),
        (SagaKind::OrderChoreography, PlannedOutcome::Compensated),
    ] {
        let plan = SagaPlan::with_outcome(kind, outcome, &mut rng);
        let made = spans_of_saga(&plan, base);
        let decoded = sagascope_spans::decode_json(&encode_otlp_json(&made)).unwrap();
        assert_eq!(decoded.rejected, 0, "{:?}", decoded.reasons);
        assert_eq!(decoded.spans.len(), made.len());
        for span in &made {
            let view = decoded
                .spans
                .iter()
                .find(|v| v.span_id == span.span_id)
                .unwrap_or_else(|| panic!("{} missing", span.name));
            assert_eq!(view.trace_id, plan.trace_id);
            assert_eq!(view.parent_span_id, span.parent_span_id);
            assert_eq!(view.name, span.name);
            assert_eq!(view.service, span.service);
            let kind = match span.kind {
                SimulatedSpanKind::Internal => SpanKind::Internal,
                SimulatedSpanKind::Server => SpanKind::Server,
                SimulatedSpanKind::Client => SpanKind::Client,
                SimulatedSpanKind::Producer => SpanKind::Producer,
                SimulatedSpanKind::Consumer => SpanKind::Consumer,
            };
            assert_eq!(view.kind, kind);
            let expected_status = if span.error.is_some() {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            };
            assert_eq!(view.status, expected_status);
            assert_eq!(view.status_message, span.error);
            assert_eq!(view.events.len(), span.events.len());
            assert!(view
                .attributes
                .iter()
                .any(|a| a.key == "saga.id" && a.value == plan.saga_id));
        }
    }
}
