//! Jaeger v2's query API: `GET {base}/api/v3/traces/{trace_id}` answers
//! `{"result": {"resourceSpans": [...]}}` (OTLP JSON in the gRPC gateway's
//! envelope), or an `{"error": {"httpCode": 404, …}}` envelope.

use serde_json::Value;

pub(crate) fn trace_url(base_url: &str, trace_id: &str) -> String {
    format!("{base_url}/api/v3/traces/{trace_id}")
}

/// The OTLP document inside the answer; None for "trace not found".
pub(crate) fn unwrap_answer(mut value: Value) -> Result<Option<Value>, String> {
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        let code = error.get("httpCode").and_then(Value::as_i64);
        if code == Some(404) {
            return Ok(None);
        }
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(format!("error {}: {message}", code.unwrap_or_default()));
    }
    if let Some(result) = value.get_mut("result") {
        return Ok(Some(result.take()));
    }
    if value.get("resourceSpans").is_some() {
        return Ok(Some(value));
    }
    Err("neither `result` nor `resourceSpans` in the answer".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_envelope_is_opened() {
        let inner = json!({"resourceSpans": []});
        assert_eq!(
            unwrap_answer(json!({"result": inner.clone()})),
            Ok(Some(inner.clone()))
        );
        assert_eq!(unwrap_answer(inner.clone()), Ok(Some(inner)));
        assert_eq!(
            unwrap_answer(json!({"error": {"httpCode": 404, "message": "trace not found"}})),
            Ok(None)
        );
        assert!(
            unwrap_answer(json!({"error": {"httpCode": 500, "message": "boom"}}))
                .unwrap_err()
                .contains("boom")
        );
        assert!(unwrap_answer(json!({"data": []})).is_err());
        assert_eq!(
            trace_url("http://jaeger:16686", "abc"),
            "http://jaeger:16686/api/v3/traces/abc"
        );
    }
}
