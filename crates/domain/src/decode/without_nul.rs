//! Postgres `TEXT` cannot hold U+0000, and a header value or JSON string
//! may carry one (`"id": "a\u0000b"`, a binary `id` header). One such
//! event failed its whole batch's transaction on Postgres, and the ingest
//! retried that batch forever: it stalled at the message (found by
//! `crates/ingest/tests/bad_input_on_real_brokers.rs`). So every text
//! column of an event shows a NUL as U+2400 (␀), as ingest errors do
//! (`sagascope_ingest::first_bytes`), on both stores alike. Headers and
//! payload are stored as JSON text, where serde writes it as `\u0000`:
//! they keep it.

use crate::saga_event::SagaEvent;

/// What a NUL becomes in the stored text.
const NUL_SHOWN_AS: &str = "\u{2400}";

pub(crate) fn without_nul(mut event: SagaEvent) -> SagaEvent {
    fn clean(text: &mut String) {
        if text.contains('\0') {
            *text = text.replace('\0', NUL_SHOWN_AS);
        }
    }
    clean(&mut event.event_id);
    clean(&mut event.saga_id);
    clean(&mut event.event_type);
    for text in [
        &mut event.explicit_saga_id,
        &mut event.saga_type,
        &mut event.step,
        &mut event.trace_id,
        &mut event.span_id,
        &mut event.request_id,
        &mut event.source_type,
        &mut event.source_id,
        &mut event.error,
    ]
    .into_iter()
    .flatten()
    {
        clean(text);
    }
    event.correlation_keys.iter_mut().for_each(clean);
    event.business_keys.iter_mut().for_each(clean);
    event
}

#[cfg(test)]
mod tests {
    use crate::decode::test_support::{ingested_at, message};
    use crate::Decoder;

    #[test]
    fn no_text_column_of_an_event_holds_a_nul() {
        let outbox = message(
            "events.order",
            Some("order\u{0}1"),
            r#"{"order_id":"o\u00001","error":"bad\u0000"}"#,
            &[
                ("id", "evt\u{0}1"),
                ("type", "Order\u{0}Failed"),
                ("saga_id", "saga\u{0}1"),
            ],
        );
        let event = Decoder::default().decode(&outbox, ingested_at()).unwrap();
        let columns = serde_json::to_value(&event).unwrap();
        let mut texts = vec![];
        for (field, value) in columns.as_object().unwrap() {
            if field == "headers" || field == "payload" {
                continue;
            }
            match value {
                serde_json::Value::String(text) => texts.push(text.clone()),
                serde_json::Value::Array(items) => {
                    texts.extend(items.iter().filter_map(|i| i.as_str()).map(str::to_string))
                }
                _ => {}
            }
        }
        assert!(texts.iter().all(|t| !t.contains('\0')), "{texts:?}");
        assert_eq!(event.event_id, "evt\u{2400}1");
        assert_eq!(event.event_type, "Order\u{2400}Failed");
        assert_eq!(event.explicit_saga_id.as_deref(), Some("saga\u{2400}1"));
        // The stored JSON keeps the byte, escaped.
        assert!(event.headers.iter().any(|h| h.value == "evt\u{0}1"));
    }
}
