//! W3C trace context (`traceparent`) parsing.

/// The ids of a valid `traceparent` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. All-zero ids
/// and version `ff` are invalid per the specification.
pub fn parse_traceparent(header: &str) -> Option<TraceParent> {
    let parts: Vec<&str> = header.trim().split('-').collect();
    if parts.len() < 4 {
        return None;
    }
    let (version, trace_id, span_id, flags) = (parts[0], parts[1], parts[2], parts[3]);
    let shapes_ok = version.len() == 2
        && trace_id.len() == 32
        && span_id.len() == 16
        && flags.len() == 2
        && [version, trace_id, span_id, flags]
            .iter()
            .all(|p| is_lower_hex(p));
    if !shapes_ok || version == "ff" || (version == "00" && parts.len() != 4) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(TraceParent {
        trace_id: trace_id.to_string(),
        span_id: span_id.to_string(),
    })
}

/// A plain trace id from a `trace_id` header or field: accepted when it looks
/// like an id (hex, dashes, letters, 8–64 chars, not all zeros), normalised
/// to lower case. A whole valid `traceparent` given as a trace id yields its
/// trace id.
pub fn normalise_trace_id(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(parent) = parse_traceparent(text) {
        return Some(parent.trace_id);
    }
    let ok = (8..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !text.bytes().all(|b| b == b'0' || b == b'-' || b == b'_');
    ok.then(|| text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_specification_example() {
        let parsed =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.span_id, "00f067aa0ba902b7");
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn plain_trace_ids_are_normalised_or_refused() {
        assert_eq!(
            normalise_trace_id(" ABCDEF0123456789 "),
            Some("abcdef0123456789".into())
        );
        assert_eq!(normalise_trace_id("short"), None);
        assert_eq!(normalise_trace_id("has spaces in it"), None);
        assert_eq!(
            normalise_trace_id("00000000-0000-0000-0000-000000000000"),
            None
        );
        assert_eq!(
            normalise_trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into())
        );
    }
}
