//! Simulated spans as an OTLP/HTTP JSON trace export (the protobuf JSON
//! mapping of `ExportTraceServiceRequest`): `resourceSpans` → `scopeSpans`
//! → `spans`, lowerCamelCase field names, trace and span ids as lowercase
//! hex (OTLP's exception to the base64 of bytes), 64-bit integers
//! (`startTimeUnixNano`, `intValue`) as strings, enums (`kind`,
//! `status.code`) as integers. One resource per service.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::span_shapes::{AttributeValue, Attributes, SimulatedSpan};
use crate::spans_of_saga::service_version;

/// The instrumentation scope the simulated services report.
pub const SCOPE_NAME: &str = "sagascope-simulator";

/// `deployment.environment` of every simulated service.
pub const DEPLOYMENT_ENVIRONMENT: &str = "demo";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportTraceServiceRequest {
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    resource: Resource,
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Serialize)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Serialize)]
struct ScopeSpans {
    scope: Scope,
    spans: Vec<Span>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    parent_span_id: String,
    name: String,
    kind: i32,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    status: Status,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    time_unix_nano: String,
    name: String,
    attributes: Vec<KeyValue>,
}

#[derive(Serialize)]
struct Status {
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    /// 0 unset, 1 ok, 2 error.
    code: i32,
}

#[derive(Serialize)]
struct KeyValue {
    key: String,
    value: AnyValue,
}

// The variant names are OTLP's JSON field names (`stringValue`, …).
#[allow(clippy::enum_variant_names)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum AnyValue {
    StringValue(String),
    IntValue(String),
    BoolValue(bool),
}

fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: match value {
                AttributeValue::Text(text) => AnyValue::StringValue(text.clone()),
                AttributeValue::Int(number) => AnyValue::IntValue(number.to_string()),
                AttributeValue::Bool(flag) => AnyValue::BoolValue(*flag),
            },
        })
        .collect()
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: AnyValue::StringValue(value.into()),
    }
}

fn unix_nanos(at: DateTime<Utc>) -> String {
    at.timestamp_nanos_opt()
        .unwrap_or_default()
        .max(0)
        .to_string()
}

fn span(simulated: &SimulatedSpan) -> Span {
    Span {
        trace_id: simulated.trace_id.clone(),
        span_id: simulated.span_id.clone(),
        parent_span_id: simulated.parent_span_id.clone().unwrap_or_default(),
        name: simulated.name.clone(),
        kind: simulated.kind as i32,
        start_time_unix_nano: unix_nanos(simulated.start),
        end_time_unix_nano: unix_nanos(simulated.end),
        attributes: key_values(&simulated.attributes),
        events: simulated
            .events
            .iter()
            .map(|event| Event {
                time_unix_nano: unix_nanos(event.at),
                name: event.name.clone(),
                attributes: key_values(&event.attributes),
            })
            .collect(),
        status: match &simulated.error {
            Some(message) => Status {
                message: message.clone(),
                code: 2,
            },
            None => Status {
                message: String::new(),
                code: 0,
            },
        },
    }
}

/// The OTLP/HTTP JSON body exporting `spans`, grouped by service.
pub fn encode_otlp_json(spans: &[SimulatedSpan]) -> Vec<u8> {
    let mut by_service: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for simulated in spans {
        by_service
            .entry(simulated.service.as_str())
            .or_default()
            .push(span(simulated));
    }
    let request = ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Resource {
                    attributes: vec![
                        text("service.name", service),
                        text("service.version", &service_version(service)),
                        text("service.namespace", "shop"),
                        text("deployment.environment", DEPLOYMENT_ENVIRONMENT),
                        text("deployment.environment.name", DEPLOYMENT_ENVIRONMENT),
                        text("telemetry.sdk.name", SCOPE_NAME),
                    ],
                },
                scope_spans: vec![ScopeSpans {
                    scope: Scope {
                        name: SCOPE_NAME,
                        version: env!("CARGO_PKG_VERSION"),
                    },
                    spans,
                }],
            })
            .collect(),
    };
    serde_json::to_vec(&request).expect("span JSON always serializes")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::Value;

    use super::*;
    use crate::saga_plans::{PlannedOutcome, SagaKind, SagaPlan};
    use crate::spans_of_saga::spans_of_saga;

    fn is_hex(value: &Value, len: usize) -> bool {
        value.as_str().is_some_and(|s| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    }

    /// The OTLP JSON mapping: one resource per service with its
    /// attributes, hex ids, nanosecond strings, integer kinds and codes.
    #[test]
    fn spans_encode_as_otlp_json() {
        let mut rng = StdRng::seed_from_u64(31);
        let plan = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Compensated, &mut rng);
        let base = Utc.timestamp_millis_opt(1_763_719_200_123).unwrap();
        let spans = spans_of_saga(&plan, base);
        let body: Value = serde_json::from_slice(&encode_otlp_json(&spans)).unwrap();
        let resources = body["resourceSpans"].as_array().unwrap();
        let mut services = Vec::new();
        let mut count = 0;
        let mut errors = 0;
        for resource in resources {
            let attribute = |key: &str| {
                resource["resource"]["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == key)
                    .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
            };
            let service = attribute("service.name").unwrap();
            assert!(attribute("service.version").unwrap().starts_with("1."));
            assert_eq!(attribute("deployment.environment").as_deref(), Some("demo"));
            services.push(service.clone());
            let scope = &resource["scopeSpans"][0];
            assert_eq!(scope["scope"]["name"], SCOPE_NAME);
            for span in scope["spans"].as_array().unwrap() {
                count += 1;
                assert_eq!(span["traceId"], plan.trace_id.as_str());
                assert!(is_hex(&span["spanId"], 16), "{span}");
                assert!(span["parentSpanId"].is_null() || is_hex(&span["parentSpanId"], 16));
                let kind = span["kind"].as_i64().unwrap();
                assert!((1..=5).contains(&kind), "{kind}");
                let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
                let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
                assert!(start <= end && start > 1_700_000_000_000_000_000);
                let code = span["status"]["code"].as_i64().unwrap();
                if code == 2 {
                    errors += 1;
                    assert!(span["status"]["message"].as_str().is_some());
                }
                for attribute in span["attributes"].as_array().unwrap() {
                    let value = attribute["value"].as_object().unwrap();
                    assert_eq!(value.len(), 1, "{attribute}");
                    if let Some(int) = value.get("intValue") {
                        int.as_str().unwrap().parse::<i64>().unwrap();
                    }
                }
                for event in span["events"].as_array().unwrap() {
                    event["timeUnixNano"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap();
                    assert_eq!(event["name"], "exception");
                }
            }
        }
        assert_eq!(count, spans.len());
        assert!(errors >= 1);
        let mut sorted = services.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), services.len(), "one resource per service");
        assert!(services.contains(&"order-service".to_string()));
        assert!(services.contains(&"inventory-service".to_string()));
        assert!(services.contains(&"payment-service".to_string()));
    }
}
