//! Deep links to a trace in Jaeger, Tempo or Grafana from a URL template.

/// The template with every `{trace_id}` replaced. The id is hex (checked
/// by the caller), so it needs no escaping in a URL; a Grafana Explore
/// template carries its JSON already percent-encoded.
pub fn trace_link(template: Option<&str>, trace_id: &str) -> Option<String> {
    let template = template.map(str::trim).filter(|t| !t.is_empty())?;
    Some(template.replace("{trace_id}", trace_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_the_trace_id() {
        assert_eq!(
            trace_link(Some("http://localhost:16686/trace/{trace_id}"), "abc").as_deref(),
            Some("http://localhost:16686/trace/abc")
        );
        assert_eq!(
            trace_link(
                Some("https://grafana/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22{trace_id}%22%7D%5D%7D"),
                "abc"
            )
            .as_deref(),
            Some("https://grafana/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22abc%22%7D%5D%7D")
        );
        assert_eq!(trace_link(None, "abc"), None);
        assert_eq!(trace_link(Some("  "), "abc"), None);
    }
}
