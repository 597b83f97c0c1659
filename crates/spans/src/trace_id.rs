//! Which texts name a trace whose spans can be looked up.

/// A trace id as lowercase hex: 32 hex digits (any case), or 16 (the
/// 64-bit ids of older Jaeger clients, padded on the left as Jaeger does).
/// All zeros is invalid (W3C).
pub fn parse_trace_id(text: &str) -> Option<String> {
    let text = text.trim();
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) || text.bytes().all(|b| b == b'0') {
        return None;
    }
    match text.len() {
        32 => Some(text.to_ascii_lowercase()),
        16 => Some(format!("{}{}", "0".repeat(16), text.to_ascii_lowercase())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_normalised_and_others_refused() {
        assert_eq!(
            parse_trace_id(" 5B8EFFF798038103D269B633813FC60C ").as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(
            parse_trace_id("d269b633813fc60c").as_deref(),
            Some("0000000000000000d269b633813fc60c")
        );
        for bad in [
            "",
            "0".repeat(32).as_str(),
            "xyz",
            "5b8efff798038103d269b633813fc60",
            "trace-of-ord-1",
        ] {
            assert_eq!(parse_trace_id(bad), None, "{bad}");
        }
    }
}
