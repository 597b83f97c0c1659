//! Tempo's query API: `GET {base}/api/traces/{trace_id}` answers OTLP JSON
//! as `{"batches": [...]}` (older versions, jsonpb: base64 ids, enum
//! names) or `{"resourceSpans": [...]}`; `/api/v2/traces` wraps it as
//! `{"trace": {...}}`. All are accepted.

use serde_json::Value;

pub(crate) fn trace_url(base_url: &str, trace_id: &str) -> String {
    format!("{base_url}/api/traces/{trace_id}")
}

/// The OTLP document inside the answer (`batches` is read by the query API
/// dialect of the decoder); an empty answer is "not found".
pub(crate) fn unwrap_answer(mut value: Value) -> Result<Option<Value>, String> {
    if let Some(trace) = value.get_mut("trace") {
        return Ok(Some(trace.take()));
    }
    if value.get("batches").is_some() || value.get("resourceSpans").is_some() {
        return Ok(Some(value));
    }
    match value.as_object() {
        Some(object) if object.is_empty() => Ok(None),
        _ => Err("neither `batches`, `resourceSpans` nor `trace` in the answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape_is_opened() {
        let batches = json!({"batches": []});
        assert_eq!(unwrap_answer(batches.clone()), Ok(Some(batches)));
        let otlp = json!({"resourceSpans": []});
        assert_eq!(unwrap_answer(otlp.clone()), Ok(Some(otlp.clone())));
        assert_eq!(
            unwrap_answer(json!({"trace": otlp.clone()})),
            Ok(Some(otlp))
        );
        assert_eq!(unwrap_answer(json!({})), Ok(None));
        assert!(unwrap_answer(json!([1])).is_err());
        assert_eq!(
            trace_url("http://tempo:3200", "abc"),
            "http://tempo:3200/api/traces/abc"
        );
    }
}
