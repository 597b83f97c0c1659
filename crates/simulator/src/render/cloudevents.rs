//! CloudEvents 1.0 over Kafka (the protocol binding): binary mode puts the
//! attributes in `ce_*` headers and the data in the value; structured mode
//! sends the whole event as `application/cloudevents+json`. The trace
//! context travels as the distributed-tracing extension (`traceparent`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::Headers;
use crate::message::{CloudEvent, CloudEventMode};

/// The value and headers of `event` sent at `at`.
pub fn render(
    event: &CloudEvent,
    mode: CloudEventMode,
    traceparent: &str,
    at: DateTime<Utc>,
) -> (Value, Headers) {
    let time = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    match mode {
        CloudEventMode::Binary => (
            event.data.clone(),
            vec![
                ("ce_specversion".into(), "1.0".into()),
                ("ce_id".into(), event.id.clone()),
                ("ce_type".into(), event.event_type.clone()),
                ("ce_source".into(), event.source.clone()),
                ("ce_time".into(), time),
                ("ce_subject".into(), event.subject.clone()),
                ("ce_traceparent".into(), traceparent.to_string()),
                ("content-type".into(), "application/json".into()),
            ],
        ),
        CloudEventMode::Structured => {
            let value = json!({
                "specversion": "1.0",
                "id": event.id,
                "type": event.event_type,
                "source": event.source,
                "subject": event.subject,
                "time": time,
                "datacontenttype": "application/json",
                "traceparent": traceparent,
                "data": event.data,
            });
            (
                value,
                vec![
                    (
                        "content-type".into(),
                        "application/cloudevents+json; charset=UTF-8".into(),
                    ),
                    ("traceparent".into(), traceparent.to_string()),
                ],
            )
        }
    }
}
