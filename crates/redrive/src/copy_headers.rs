//! The headers of a re-driven copy: the dead letter's own, in order,
//! without what the DLQ added (`kafka_dlt-*` of Spring, `__connect.errors.*`
//! of Kafka Connect) or an earlier re-drive set (`x-retry-of`,
//! `x-retry-count`), then `x-retry-of: {dead letter id}` and
//! `x-retry-count: {n}`. Everything else — `traceparent` included — is
//! kept byte-exact.

use sagascope_model::{RETRY_COUNT_HEADER, RETRY_OF_HEADER};

/// Header names of the DLQ's own failure report, dropped from the copy.
const DLQ_PREFIXES: [&str; 2] = ["kafka_dlt-", "__connect.errors."];

fn starts_with_ignore_case(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Whether a stored header travels with the copy.
pub fn is_kept(name: &str) -> bool {
    !DLQ_PREFIXES
        .iter()
        .any(|prefix| starts_with_ignore_case(name, prefix))
        && !name.eq_ignore_ascii_case(RETRY_OF_HEADER)
        && !name.eq_ignore_ascii_case(RETRY_COUNT_HEADER)
}

/// The copy's headers (see the module doc).
pub fn redrive_headers(
    stored: &[(String, Option<Vec<u8>>)],
    dead_letter_id: &str,
    retry_count: u32,
) -> Vec<(String, Option<Vec<u8>>)> {
    stored
        .iter()
        .filter(|(name, _)| is_kept(name))
        .cloned()
        .chain([
            (
                RETRY_OF_HEADER.to_string(),
                Some(dead_letter_id.as_bytes().to_vec()),
            ),
            (
                RETRY_COUNT_HEADER.to_string(),
                Some(retry_count.to_string().into_bytes()),
            ),
        ])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &[u8]) -> (String, Option<Vec<u8>>) {
        (name.to_string(), Some(value.to_vec()))
    }

    #[test]
    fn dlq_headers_go_and_the_rest_stays_in_order_byte_exact() {
        let stored = vec![
            h(
                "traceparent",
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            h("id", &[0xff, 0x00, 0x01]),
            ("null-valued".to_string(), None),
            h("x-retry-of", b"orders.DLT/0/1"),
            h("X-Retry-Count", b"1"),
            h(
                "kafka_dlt-exception-fqcn",
                b"java.lang.IllegalStateException",
            ),
            h("KAFKA_DLT-original-offset", &7_i64.to_be_bytes()),
            h("__connect.errors.topic", b"orders"),
            h("type", b"OrderPlaced"),
            h("type", b"duplicate names are kept too"),
        ];
        let copy = redrive_headers(&stored, "orders.DLT/0/9", 2);
        assert_eq!(
            copy,
            vec![
                stored[0].clone(),
                stored[1].clone(),
                stored[2].clone(),
                stored[8].clone(),
                stored[9].clone(),
                h("x-retry-of", b"orders.DLT/0/9"),
                h("x-retry-count", b"2"),
            ]
        );
    }
}
