//! OTLP trace exports into span records. Both encodings end in the same
//! conversion of one proto `Span` (`span_conversion.rs`); a span that
//! cannot be shown (bad id length, no start time, end before start, …) is
//! rejected on its own and counted, the others are kept, as OTLP's
//! `partialSuccess` asks.

mod attribute_text;
mod otlp_json;
mod otlp_protobuf;
mod span_conversion;

use sagascope_model::SpanView;

pub use otlp_json::{decode_json, decode_json_value, JsonDialect};
pub use otlp_protobuf::decode_protobuf;
pub use span_conversion::SpanRejection;

/// How many rejection reasons a result keeps (the count is exact).
const KEPT_REASONS: usize = 5;

/// A request that could not be read at all: nothing of it is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the body is not an OTLP ExportTraceServiceRequest in protobuf: {0}")]
    InvalidProtobuf(String),
    #[error("the body is not OTLP JSON: {0}")]
    InvalidJson(String),
    #[error("the OTLP JSON has an unexpected shape: {0}")]
    UnexpectedShape(String),
}

/// The spans of one request that can be shown, and what was rejected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedSpans {
    pub spans: Vec<SpanView>,
    /// Spans left out; OTLP's `partialSuccess.rejectedSpans`.
    pub rejected: u64,
    /// The first few reasons, each naming the span.
    pub reasons: Vec<String>,
}

impl DecodedSpans {
    pub(crate) fn reject(&mut self, span_name: &str, reason: impl std::fmt::Display) {
        self.rejected += 1;
        if self.reasons.len() < KEPT_REASONS {
            let name = if span_name.is_empty() {
                "(unnamed)"
            } else {
                span_name
            };
            self.reasons.push(format!("span `{name}`: {reason}"));
        }
    }

    /// OTLP's `partialSuccess.errorMessage`: None when nothing was rejected.
    pub fn error_message(&self) -> Option<String> {
        (self.rejected > 0).then(|| {
            let more = self.rejected.saturating_sub(self.reasons.len() as u64);
            let mut message = format!(
                "{} span(s) rejected: {}",
                self.rejected,
                self.reasons.join("; ")
            );
            if more > 0 {
                message.push_str(&format!("; and {more} more"));
            }
            message
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_message_counts_all_and_names_a_few() {
        let mut decoded = DecodedSpans::default();
        assert_eq!(decoded.error_message(), None);
        for i in 0..7 {
            decoded.reject(&format!("s{i}"), "end before start");
        }
        decoded.reject("", "no start time");
        let message = decoded.error_message().unwrap();
        assert!(
            message.starts_with("8 span(s) rejected: span `s0`: end before start"),
            "{message}"
        );
        assert!(message.ends_with("and 3 more"), "{message}");
        assert_eq!(decoded.reasons.len(), KEPT_REASONS);
    }
}
