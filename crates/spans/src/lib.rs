//! OTLP trace decoding (filled in by the spans work).
