//! Redaction of payload fields and header values before anything is stored
//! (`[redact]` in the rules file). A plain name redacts that field at any
//! depth; a JSON pointer (`/customer/card/number`) redacts one exact place.
//! Header names are compared case-insensitively.

use sagascope_model::Header;
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
}
