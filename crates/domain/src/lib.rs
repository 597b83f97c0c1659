//! sagascope's domain: the canonical [`SagaEvent`], the decoders that produce
//! it from Kafka messages, classification [`Rules`] and the order-independent
//! [`SagaProjection`]. Pure code: no I/O, so everything here is unit-tested.

pub mod decode;
pub mod projection;
pub mod rules;
pub mod saga_event;
pub mod trace_context;

pub use decode::{DecodeError, Decoder, DEFAULT_MAX_PAYLOAD_BYTES, TRUNCATED_HEADER};
pub use projection::{from_micros, micros, project_all, SagaProjection};
pub use rules::{Classification, Rules, RulesError};
pub use saga_event::{KafkaCoords, RawMessage, SagaEvent};
