//! The generic dead-letter form: teams with a home-grown DLQ producer name
//! the headers and/or JSON value fields that carry the origin and the
//! failure, instead of sagascope guessing. Meant to be the `[dead_letter]`
//! table of the rules TOML:
//!
//! ```toml
//! [dead_letter]
//! original_topic = { header = "x-original-topic", pointer = "/meta/topic" }
//! original_offset = { header = "x-original-offset" }
//! reason = { pointer = "/error/message" }
//! ```

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{first_header, parse_integer, Failure, OriginalCoords};
use crate::saga_event::RawMessage;

/// Where one field is read from: a header, else a JSON pointer into the
/// value. Both may be given; the header wins because it is cheaper and
/// usually what a DLQ producer adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericField {
    #[serde(default)]
    pub header: Option<String>,
    /// RFC 6901, e.g. `/error/message`; refused at load time unless it
    /// starts with `/`, so a typo cannot silently never match.
    #[serde(default, deserialize_with = "json_pointer")]
    pub pointer: Option<String>,
}

impl GenericField {
    pub fn from_header(name: &str) -> GenericField {
        GenericField {
            header: Some(name.to_string()),
            pointer: None,
        }
    }

    pub fn from_pointer(pointer: &str) -> GenericField {
        GenericField {
            header: None,
            pointer: Some(pointer.to_string()),
        }
    }
}

/// The configured generic form; all fields optional. Unknown keys are
/// refused so a misspelt field is a config error, not a silent no-op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenericDeadLetterFields {
    pub original_topic: Option<GenericField>,
    pub original_partition: Option<GenericField>,
    pub original_offset: Option<GenericField>,
    /// The failure text (the exception message).
    pub reason: Option<GenericField>,
    pub exception_class: Option<GenericField>,
    pub stacktrace: Option<GenericField>,
}

impl GenericDeadLetterFields {
    /// True when at least one field is configured.
    pub fn is_configured(&self) -> bool {
        self.fields().into_iter().any(Option::is_some)
    }

    fn fields(&self) -> [&Option<GenericField>; 6] {
        [
            &self.original_topic,
            &self.original_partition,
            &self.original_offset,
            &self.reason,
            &self.exception_class,
            &self.stacktrace,
        ]
    }
}

fn json_pointer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let pointer = String::deserialize(deserializer)?;
    if pointer.starts_with('/') {
        Ok(Some(pointer))
    } else {
        Err(serde::de::Error::custom(format!(
            "JSON pointer `{pointer}` must start with `/` (e.g. `/error/message`)"
        )))
    }
}

/// The generic failure, or None when no configured field was found (the
/// message is then of unknown format).
pub(super) fn read(
    message: &RawMessage,
    fields: &GenericDeadLetterFields,
    payload: Option<&Value>,
) -> Option<Failure> {
    if !fields.is_configured() {
        return None;
    }
    let text = |field: &Option<GenericField>| text_field(message, payload, field.as_ref());
    let topic = text(&fields.original_topic);
    let partition = integer_field(message, payload, fields.original_partition.as_ref())
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 0);
    let offset =
        integer_field(message, payload, fields.original_offset.as_ref()).filter(|n| *n >= 0);
    let failure = Failure {
        exception_class: text(&fields.exception_class),
        exception_message: text(&fields.reason),
        stacktrace: text(&fields.stacktrace),
        original: None,
    };
    if topic.is_none() && partition.is_none() && offset.is_none() && failure == Failure::default() {
        return None;
    }
    Some(Failure {
        original: topic.map(|topic| OriginalCoords {
            topic,
            partition,
            offset,
            timestamp: None,
            consumer_group: None,
        }),
        ..failure
    })
}

fn pointed<'a>(payload: Option<&'a Value>, field: &GenericField) -> Option<&'a Value> {
    payload?.pointer(field.pointer.as_deref()?)
}

fn text_field(
    message: &RawMessage,
    payload: Option<&Value>,
    field: Option<&GenericField>,
) -> Option<String> {
    let field = field?;
    field
        .header
        .as_deref()
        .and_then(|name| message.header(name))
        .or_else(|| match pointed(payload, field)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

fn integer_field(
    message: &RawMessage,
    payload: Option<&Value>,
    field: Option<&GenericField>,
) -> Option<i64> {
    let field = field?;
    // Text or big-endian binary, like Spring's headers; the caller refuses
    // negative values as the Spring and Connect readers do.
    let from_header = field
        .header
        .as_deref()
        .and_then(|name| first_header(message, name))
        .and_then(parse_integer);
    from_header.or_else(|| match pointed(payload, field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

    fn by_headers() -> GenericDeadLetterFields {
        GenericDeadLetterFields {
            original_topic: Some(GenericField::from_header("x-original-topic")),
            original_partition: Some(GenericField::from_header("x-original-partition")),
            original_offset: Some(GenericField::from_header("x-original-offset")),
            reason: Some(GenericField::from_header("x-error-message")),
            exception_class: Some(GenericField::from_header("x-error-class")),
            stacktrace: None,
        }
    }

    fn by_pointers() -> GenericDeadLetterFields {
        GenericDeadLetterFields {
            original_topic: Some(GenericField::from_pointer("/source/topic")),
            original_partition: Some(GenericField::from_pointer("/source/partition")),
            original_offset: Some(GenericField::from_pointer("/source/offset")),
            reason: Some(GenericField::from_pointer("/error/message")),
            exception_class: Some(GenericField::from_pointer("/error/type")),
            stacktrace: Some(GenericField::from_pointer("/error/stack")),
        }
    }

    #[test]
    fn by_header_names() {
        let message = dlq_message(
            Some(b"\x00\x01binary avro"),
            &[
                ("x-original-topic", b"events.inventory"),
                ("x-original-partition", b"1"),
                ("x-original-offset", b"5012"),
                ("x-error-message", b"Stock for SKU-77 below zero"),
                ("x-error-class", b"StockError"),
                ("correlation_id", b"ord-7f3a"),
            ],
        );
        assert_eq!(
            decode_dead_letter(&message, &by_headers()),
            DeadLetter {
                format: DeadLetterFormat::Generic,
                original: Some(OriginalCoords {
                    topic: "events.inventory".into(),
                    partition: Some(1),
                    offset: Some(5_012),
                    timestamp: None,
                    consumer_group: None,
                }),
                exception_class: Some("StockError".into()),
                exception_message: Some("Stock for SKU-77 below zero".into()),
                failure_group: "events.inventory|StockError|Stock for SKU-<n> below zero".into(),
                saga_id: Some("ord-7f3a".into()),
                ..unknown(&message)
            }
        );
    }

    #[test]
    fn by_json_pointers() {
        let value = br#"{
            "source": {"topic": "events.payment", "partition": 2, "offset": "77"},
            "error": {"type": "PaymentTimeout", "message": "Gateway timed out after 3000 ms",
                      "stack": "PaymentTimeout: Gateway timed out\n  at pay()"},
            "payload": {"saga_id": "ord-7f3a"},
            "correlationId": "ord-7f3a"
        }"#;
        let message = dlq_message(Some(value), &[]);
        assert_eq!(
            decode_dead_letter(&message, &by_pointers()),
            DeadLetter {
                format: DeadLetterFormat::Generic,
                original: Some(OriginalCoords {
                    topic: "events.payment".into(),
                    partition: Some(2),
                    offset: Some(77),
                    timestamp: None,
                    consumer_group: None,
                }),
                exception_class: Some("PaymentTimeout".into()),
                exception_message: Some("Gateway timed out after 3000 ms".into()),
                stacktrace: Some("PaymentTimeout: Gateway timed out\n  at pay()".into()),
                failure_group: "events.payment|PaymentTimeout|Gateway timed out after <n> ms"
                    .into(),
                saga_id: Some("ord-7f3a".into()),
                ..unknown(&message)
            }
        );
    }

    #[test]
    fn the_header_wins_and_nothing_found_is_unknown() {
        let fields = GenericDeadLetterFields {
            original_topic: Some(GenericField {
                header: Some("x-topic".into()),
                pointer: Some("/topic".into()),
            }),
            ..GenericDeadLetterFields::default()
        };
        let both = dlq_message(
            Some(br#"{"topic":"from-value"}"#),
            &[("X-Topic", b"from-header")],
        );
        assert_eq!(
            decode_dead_letter(&both, &fields).original.unwrap().topic,
            "from-header"
        );
        let value_only = dlq_message(Some(br#"{"topic":"from-value"}"#), &[]);
        assert_eq!(
            decode_dead_letter(&value_only, &fields)
                .original
                .unwrap()
                .topic,
            "from-value"
        );
        let neither = dlq_message(Some(br#"{"topic":{"nested":true}}"#), &[]);
        assert_eq!(decode_dead_letter(&neither, &fields), unknown(&neither));
        // Not configured at all: unknown, whatever the message holds.
        assert_eq!(decode(&both).format, DeadLetterFormat::Unknown);
    }

    #[test]
    fn found_but_without_a_topic_is_generic_without_origin() {
        let message = dlq_message(None, &[("x-error-message", b"boom")]);
        let letter = decode_dead_letter(&message, &by_headers());
        assert_eq!(letter.format, DeadLetterFormat::Generic);
        assert_eq!(letter.original, None);
        assert_eq!(letter.failure_group, "-|-|boom");
    }

    #[test]
    fn loads_from_a_toml_table_and_refuses_typos() {
        #[derive(Debug, serde::Deserialize)]
        struct Rules {
            dead_letter: GenericDeadLetterFields,
        }
        let rules: Rules = toml::from_str(
            r#"
            [dead_letter]
            original_topic = { header = "x-original-topic", pointer = "/meta/topic" }
            reason = { pointer = "/error/message" }
            "#,
        )
        .unwrap();
        assert_eq!(
            rules.dead_letter,
            GenericDeadLetterFields {
                original_topic: Some(GenericField {
                    header: Some("x-original-topic".into()),
                    pointer: Some("/meta/topic".into()),
                }),
                reason: Some(GenericField::from_pointer("/error/message")),
                ..GenericDeadLetterFields::default()
            }
        );
        for bad in [
            "[dead_letter]\noriginal_topik = { header = \"x\" }",
            "[dead_letter]\nreason = { heder = \"x\" }",
            "[dead_letter]\nreason = { pointer = \"error.message\" }",
        ] {
            assert!(toml::from_str::<Rules>(bad).is_err(), "{bad}");
        }
    }
}
