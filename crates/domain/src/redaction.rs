//! Redaction of payload fields and header values before anything is stored
//! (`[redact]` in the rules file). A plain name redacts that field at any
//! depth; a JSON pointer (`/customer/card/number`) redacts one exact place.
//! Header names are compared case-insensitively.

use sagascope_model::{ByteText, DeadLetterDetail, Header};
use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Deeper than this, payloads are not walked (they are bounded by the
/// decoder's nesting limit anyway); the walk never recurses without bound.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Default)]
pub struct Redaction {
    names: Vec<String>,
    pointers: Vec<String>,
    headers: Vec<String>,
}

impl Redaction {
    /// `fields`: names or JSON pointers; an empty entry or a lone `/` is an
    /// error (returned as the offending text).
    pub fn new(fields: &[String], headers: &[String]) -> Result<Redaction, String> {
        let mut redaction = Redaction::default();
        for field in fields {
            let field = field.trim();
            if field.is_empty() || field == "/" {
                return Err(field.to_string());
            }
            if field.starts_with('/') {
                redaction.pointers.push(field.to_string());
            } else {
                redaction.names.push(field.to_string());
            }
        }
        redaction.headers = headers.iter().map(|h| h.trim().to_string()).collect();
        Ok(redaction)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.pointers.is_empty() && self.headers.is_empty()
    }

    /// Redacts in place; returns how many values were replaced.
    pub fn apply(&self, payload: &mut Value, headers: &mut [Header]) -> usize {
        let mut count = 0;
        for pointer in &self.pointers {
            if let Some(slot) = payload.pointer_mut(pointer) {
                *slot = Value::String(REDACTED.to_string());
                count += 1;
            }
        }
        if !self.names.is_empty() {
            count += self.redact_names(payload, 0);
        }
        for header in headers.iter_mut() {
            if self
                .headers
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&header.key))
            {
                header.value = REDACTED.to_string();
                count += 1;
            }
        }
        count
    }

    /// Redacts a dead letter for display: the JSON value's fields and the
    /// named headers, as [`Redaction::apply`] does for events (events are
    /// redacted before they are stored; dead letters are stored byte-exact
    /// because a re-drive must produce exactly what failed, so they are
    /// redacted on the way out). A value that is not JSON text cannot have
    /// fields redacted and is left as it is. Sets and returns
    /// `redacted_values`.
    pub fn apply_to_dead_letter(&self, detail: &mut DeadLetterDetail) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut count = 0;
        if let Some(value) = detail.value.as_mut().filter(|v| !v.base64) {
            if let Ok(mut json) = serde_json::from_str::<Value>(&value.text) {
                let replaced = self.apply(&mut json, &mut []);
                if replaced > 0 {
                    *value = ByteText::of(json.to_string().as_bytes());
                    count += replaced;
                }
            }
        }
        for header in detail.headers.iter_mut() {
            let named = self
                .headers
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&header.key));
            if named && header.value.is_some() {
                header.value = Some(ByteText::of(REDACTED.as_bytes()));
                count += 1;
            }
        }
        detail.redacted_values = count;
        count
    }

    fn redact_names(&self, value: &mut Value, depth: usize) -> usize {
        if depth > MAX_DEPTH {
            return 0;
        }
        let mut count = 0;
        match value {
            Value::Object(object) => {
                for (key, child) in object.iter_mut() {
                    if self.names.iter().any(|name| name == key) {
                        *child = Value::String(REDACTED.to_string());
                        count += 1;
                    } else {
                        count += self.redact_names(child, depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    count += self.redact_names(item, depth + 1);
                }
            }
            _ => {}
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_anywhere_pointers_exactly_and_headers_by_name() {
        let redaction = Redaction::new(
            &["email".into(), "/card/number".into(), "/missing".into()],
            &["Authorization".into()],
        )
        .unwrap();
        let mut payload = json!({
            "email": "a@b.c",
            "card": {"number": "4111", "brand": "visa"},
            "items": [{"email": "x@y.z", "sku": 1}],
            "number": 7
        });
        let mut headers = vec![
            Header {
                key: "authorization".into(),
                value: "Bearer t".into(),
            },
            Header {
                key: "id".into(),
                value: "e-1".into(),
            },
        ];
        assert_eq!(redaction.apply(&mut payload, &mut headers), 4);
        assert_eq!(
            payload,
            json!({
                "email": REDACTED,
                "card": {"number": REDACTED, "brand": "visa"},
                "items": [{"email": REDACTED, "sku": 1}],
                "number": 7
            })
        );
        assert_eq!(headers[0].value, REDACTED);
        assert_eq!(headers[1].value, "e-1");
        assert!(Redaction::new(&["/".into()], &[]).is_err());
        assert!(Redaction::default().is_empty());
    }

    #[test]
    fn dead_letters_are_redacted_for_display_only_where_json_and_named() {
        let redaction = Redaction::new(&["email".into()], &["Authorization".into()]).unwrap();
        let detail = |value: ByteText| -> DeadLetterDetail {
            serde_json::from_value(json!({
                "id": "t.DLT/0/1", "dlq_topic": "t.DLT", "dlq_partition": 0, "dlq_offset": 1,
                "dead_lettered_at": "2026-11-21T10:00:00Z", "ingested_at": "2026-11-21T10:00:00Z",
                "format": "spring", "original_topic": "t", "original_partition": 0,
                "original_offset": 7, "exception_class": null, "exception_message": null,
                "failure_group": "t|-|-", "saga_id": null, "saga_type": null,
                "declared_saga_id": null, "trace_id": null, "event_id": null, "event_type": null,
                "state": "new", "state_changed_at": "2026-11-21T10:00:00Z", "state_reason": null,
                "retry_of": null, "retry_count": 0, "failed_again_of": null,
                "dlq_timestamp": null, "key": null, "value": value,
                "headers": [
                    {"key": "AUTHORIZATION", "value": {"text": "Bearer s3cret", "base64": false, "size": 13}},
                    {"key": "traceparent", "value": {"text": "00-ab", "base64": false, "size": 5}},
                    {"key": "authorization", "value": null}
                ],
                "stacktrace": null, "original_timestamp": null, "original_consumer_group": null
            }))
            .unwrap()
        };
        let mut json_letter = detail(ByteText::of(br#"{"order":{"email":"a@b.c","id":1}}"#));
        assert_eq!(redaction.apply_to_dead_letter(&mut json_letter), 2);
        assert_eq!(json_letter.redacted_values, 2);
        let shown = json_letter.value.unwrap().text;
        assert!(
            !shown.contains("a@b.c") && shown.contains(REDACTED),
            "{shown}"
        );
        assert_eq!(
            json_letter.headers[0].value.as_ref().unwrap().text,
            REDACTED
        );
        assert_eq!(json_letter.headers[1].value.as_ref().unwrap().text, "00-ab");
        assert_eq!(json_letter.headers[2].value, None);

        let mut binary = detail(ByteText::of(&[0xff, 0x00, 0x01]));
        assert_eq!(redaction.apply_to_dead_letter(&mut binary), 1);
        assert_eq!(
            binary.value.unwrap().to_bytes().unwrap(),
            vec![0xff, 0x00, 0x01]
        );

        let mut untouched = detail(ByteText::of(br#"{"email":"a@b.c"}"#));
        assert_eq!(Redaction::default().apply_to_dead_letter(&mut untouched), 0);
        assert!(untouched.value.unwrap().text.contains("a@b.c"));
    }
}
