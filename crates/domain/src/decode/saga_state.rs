//! Saga state events emitted by orchestrators (seed 004 `saga_state_changed`):
//! `saga_id`, `correlation_id`, `status`, step fields, `error`, `timestamp`.
//! In that shape `saga_id` names the saga definition and `correlation_id` the
//! instance; other frameworks send the instance id as `saga_id`.

use sagascope_model::{Phase, Timestamp};
use serde_json::{Map, Value};

use super::fields::{coords_id, parse_timestamp, string_field, trace_context};
use super::DecodeError;
use crate::saga_event::{RawMessage, SagaEvent};

const FORMAT: &str = "saga state";

pub fn looks_like_saga_state(object: &Map<String, Value>) -> bool {
    object.contains_key("status")
        && (object.contains_key("saga_id") || object.contains_key("correlation_id"))
}

/// Status spellings of common frameworks, case-insensitive.
pub fn phase_of_status(status: &str) -> Option<Phase> {
    let normalised = status.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    Some(match normalised.as_str() {
        "STARTED" | "CREATED" => Phase::SagaStarted,
        "RUNNING" | "STEP_STARTED" | "EXECUTING_STEP" => Phase::StepStarted,
        "STEP_COMPLETED" | "STEP_SUCCEEDED" => Phase::StepSucceeded,
        "STEP_FAILED" => Phase::StepFailed,
        "COMPENSATION_STARTED" | "COMPENSATING" | "COMPENSATING_STEP" => Phase::CompensationStarted,
        "STEP_COMPENSATED" => Phase::StepCompensated,
        "COMPENSATION_FAILED" => Phase::CompensationFailed,
        "COMPENSATED" => Phase::SagaCompensated,
        "COMPLETED" | "SUCCEEDED" => Phase::SagaCompleted,
        "FAILED" => Phase::SagaFailed,
        "TIMED_OUT" | "TIMEOUT" => Phase::SagaTimedOut,
        _ => return None,
    })
}

pub fn decode(
    message: &RawMessage,
    object: &Map<String, Value>,
    ingested_at: Timestamp,
) -> Result<SagaEvent, DecodeError> {
    let status = string_field(object, &["status"]).ok_or(DecodeError::MissingField {
        format: FORMAT,
        field: "status",
    })?;
    let phase =
        phase_of_status(&status).ok_or_else(|| DecodeError::UnknownStatus(status.clone()))?;
    let definition = string_field(object, &["saga_id", "sagaId"]);
    let correlation = string_field(object, &["correlation_id", "correlationId"]);
    let (saga_id, definition_name) = match (correlation, definition) {
        (Some(instance), definition) => (instance, definition),
        (None, Some(instance)) => (instance, None),
        (None, None) => {
            return Err(DecodeError::MissingField {
                format: FORMAT,
                field: "saga_id",
            })
        }
    };
    let saga_type =
        string_field(object, &["saga_type", "sagaType", "saga_name"]).or(definition_name);
    let step = string_field(
        object,
        &[
            "step",
            "current_step",
            "compensating_step",
            "compensated_step",
            "failed_step",
            "failed_compensation_step",
        ],
    );
    let error = string_field(
        object,
        &["error", "compensation_error", "error_message", "reason"],
    );
    let trace = trace_context(message, Some(object));
    let occurred_at = ["timestamp", "occurred_at", "updated_at"]
        .iter()
        .find_map(|f| object.get(*f).and_then(parse_timestamp))
        .or(message.timestamp)
        .unwrap_or(ingested_at);
    let event_id = string_field(object, &["event_id", "eventId"])
        .or_else(|| message.header("id"))
        .unwrap_or_else(|| coords_id(message));

    let mut business_keys: Vec<String> = Vec::new();
    if let Some(Value::Object(context)) = object.get("context_data") {
        for (name, value) in context {
            if name.ends_with("_id") {
                if let Some(text) = value.as_str().filter(|t| !t.is_empty()) {
                    business_keys.push(text.to_string());
                }
            }
        }
    }
    if let Some(key) = message.key_text().filter(|k| *k != saga_id) {
        business_keys.push(key);
    }
    business_keys.sort();
    business_keys.dedup();
    let mut headers = message.headers_as_text();
    trace.report_rejected(&mut headers);

    Ok(SagaEvent {
        event_id,
        saga_id: saga_id.clone(),
        explicit_saga_id: Some(saga_id),
        rule_classified: false,
        correlation_rank: 0,
        correlation_keys: Vec::new(),
        saga_type,
        step,
        phase,
        event_type: string_field(object, &["event_type", "eventType"])
            .unwrap_or_else(|| status.to_ascii_uppercase()),
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        request_id: message
            .header("request_id")
            .or_else(|| string_field(object, &["request_id"])),
        business_keys,
        occurred_at,
        published_at: message.timestamp,
        ingested_at,
        source_type: None,
        source_id: None,
        coords: message.coords.clone(),
        headers,
        payload: Value::Object(object.clone()),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ingested_at, message};
    use super::super::Decoder;
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn seed_004_shape_uses_correlation_id_as_the_instance() {
        let value = r#"{"saga_id":"order_fulfillment","correlation_id":"ord-7f3a","saga_type":"order",
            "status":"STEP_FAILED","failed_step":"AuthorizePayment","error":"card declined",
            "timestamp":"2025-11-21T10:00:01.250000","context_data":{"order_id":"O-1001","amount":42}}"#;
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let msg = message(
            "saga.state",
            Some("ord-7f3a"),
            value,
            &[("traceparent", traceparent)],
        );
        let event = Decoder::default().decode(&msg, ingested_at()).unwrap();
        assert_eq!(event.saga_id, "ord-7f3a");
        assert_eq!(event.saga_type.as_deref(), Some("order"));
        assert_eq!(event.phase, Phase::StepFailed);
        assert_eq!(event.step.as_deref(), Some("AuthorizePayment"));
        assert_eq!(event.error.as_deref(), Some("card declined"));
        assert_eq!(event.event_type, "STEP_FAILED");
        assert_eq!(
            event.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(event.span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(event.business_keys, vec!["O-1001".to_string()]);
        assert_eq!(
            event.occurred_at,
            chrono::Utc
                .with_ymd_and_hms(2025, 11, 21, 10, 0, 1)
                .unwrap()
                + chrono::Duration::milliseconds(250)
        );
        assert_eq!(event.published_at, msg.timestamp);
        assert_eq!(event.event_id, "saga.state/2/41");
    }

    #[test]
    fn instance_id_as_saga_id_and_lower_case_statuses() {
        let value = r#"{"saga_id":"chat-1","saga_type":"chat_message","status":"compensation_failed",
            "failed_compensation_step":"SaveMessageToMongo","compensation_error":"mongo down","event_id":"e-9"}"#;
        let event = Decoder::default()
            .decode(&message("saga.state", None, value, &[]), ingested_at())
            .unwrap();
        assert_eq!(event.saga_id, "chat-1");
        assert_eq!(event.saga_type.as_deref(), Some("chat_message"));
        assert_eq!(event.phase, Phase::CompensationFailed);
        assert_eq!(event.step.as_deref(), Some("SaveMessageToMongo"));
        assert_eq!(event.error.as_deref(), Some("mongo down"));
        assert_eq!(event.event_id, "e-9");
        assert_eq!(
            event.occurred_at,
            message("t", None, "", &[]).timestamp.unwrap()
        );
    }

    #[test]
    fn every_documented_status_has_a_phase() {
        for status in [
            "STARTED",
            "RUNNING",
            "STEP_COMPLETED",
            "STEP_FAILED",
            "COMPENSATION_STARTED",
            "COMPENSATING_STEP",
            "STEP_COMPENSATED",
            "COMPENSATION_FAILED",
            "COMPENSATED",
            "COMPLETED",
            "FAILED",
            "TIMED_OUT",
            "timed-out",
        ] {
            assert!(phase_of_status(status).is_some(), "{status}");
        }
        let err = Decoder::default().decode(
            &message(
                "saga.state",
                None,
                r#"{"saga_id":"x","status":"PAUSED"}"#,
                &[],
            ),
            ingested_at(),
        );
        assert_eq!(err, Err(DecodeError::UnknownStatus("PAUSED".into())));
    }
}
