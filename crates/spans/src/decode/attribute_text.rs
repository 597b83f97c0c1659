//! Attribute values as text: strings as they are, everything else as JSON
//! (numbers, booleans, arrays, maps; bytes as base64 like the OTLP JSON
//! mapping). The UI renders the text as a text node, so it is escaped there.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use sagascope_model::{base64_encode, SpanAttribute};
use serde_json::json;

pub(crate) fn attribute_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::BytesValue(bytes)) => base64_encode(bytes),
        other => json_of(other).to_string(),
    }
}

fn json_of(value: Option<&Value>) -> serde_json::Value {
    match value {
        None => serde_json::Value::Null,
        Some(Value::StringValue(text)) => json!(text),
        Some(Value::BoolValue(b)) => json!(b),
        Some(Value::IntValue(i)) => json!(i),
        // An index into a string table (profiles); nothing to look it up in.
        Some(Value::StringValueStrindex(index)) => json!(index),
        // NaN and the infinities have no JSON number; OTLP JSON spells them
        // as strings.
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| json!(d.to_string())),
        Some(Value::BytesValue(bytes)) => json!(base64_encode(bytes)),
        Some(Value::ArrayValue(array)) => serde_json::Value::Array(
            array
                .values
                .iter()
                .map(|v| json_of(v.value.as_ref()))
                .collect(),
        ),
        Some(Value::KvlistValue(list)) => serde_json::Value::Object(
            list.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        json_of(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
    }
}

pub(crate) fn attributes(list: &[KeyValue]) -> Vec<SpanAttribute> {
    list.iter()
        .map(|kv| SpanAttribute {
            key: kv.key.clone(),
            value: attribute_text(kv.value.as_ref()),
        })
        .collect()
}

/// The resource's `service.name`, else `unknown_service` (what the SDKs
/// report when none is set).
pub(crate) fn service_name(resource_attributes: &[KeyValue]) -> String {
    resource_attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .map(|kv| attribute_text(kv.value.as_ref()))
        .filter(|name| !name.trim().is_empty() && name != "null")
        .unwrap_or_else(|| "unknown_service".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    #[test]
    fn strings_stay_unquoted_and_the_rest_is_json() {
        assert_eq!(
            attribute_text(Some(&any(Value::StringValue("a \"b\"".into())))),
            "a \"b\""
        );
        assert_eq!(attribute_text(Some(&any(Value::IntValue(-42)))), "-42");
        assert_eq!(attribute_text(Some(&any(Value::BoolValue(true)))), "true");
        assert_eq!(attribute_text(Some(&any(Value::DoubleValue(1.5)))), "1.5");
        assert_eq!(
            attribute_text(Some(&any(Value::DoubleValue(f64::NAN)))),
            "\"NaN\""
        );
        assert_eq!(
            attribute_text(Some(&any(Value::BytesValue(vec![1, 2, 3])))),
            "AQID"
        );
        assert_eq!(attribute_text(None), "null");
        let array = any(Value::ArrayValue(ArrayValue {
            values: vec![any(Value::StringValue("x".into())), any(Value::IntValue(2))],
        }));
        assert_eq!(attribute_text(Some(&array)), r#"["x",2]"#);
        let map = any(Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(any(Value::BoolValue(false))),
                ..Default::default()
            }],
        }));
        assert_eq!(attribute_text(Some(&map)), r#"{"k":false}"#);
    }

    #[test]
    fn the_service_is_the_resource_service_name() {
        let named = vec![KeyValue {
            key: "service.name".into(),
            value: Some(any(Value::StringValue("payments".into()))),
            ..Default::default()
        }];
        assert_eq!(service_name(&named), "payments");
        assert_eq!(service_name(&[]), "unknown_service");
    }
}
