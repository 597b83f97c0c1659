//! sagascope's domain: the canonical [`SagaEvent`], the decoders that produce
//! it from Kafka messages, classification [`Rules`] and the order-independent
//! [`SagaProjection`]. Pure code: no I/O, so everything here is unit-tested.

pub mod compensation_integrity;
pub mod correlate;
pub mod dead_letter;
pub mod decode;
pub mod event_names;
pub mod flow_learning;
pub mod glob;
pub mod histogram;
pub mod projection;
pub mod redaction;
pub mod rules;
pub mod saga_event;
pub mod saga_facts;
pub mod thresholds;
pub mod trace_context;

pub use compensation_integrity::{
    learn_compensation_pairs, missing_compensations, CompensatedSteps, CompensationPairs,
};
pub use correlate::{correlate, Correlation};
pub use dead_letter::{
    decode_dead_letter, failure_group, normalise_message, DeadLetter, DeadLetterFormat,
    GenericDeadLetterFields, GenericField, OriginalCoords,
};
pub use decode::{DecodeError, Decoder, Format, DEFAULT_MAX_PAYLOAD_BYTES, TRUNCATED_HEADER};
pub use flow_learning::{
    flow_node_name, flow_node_of, is_state_event, learn_flow, learned_terminals, FlowEvent,
    FlowInstance, LearnContext,
};
pub use projection::{from_micros, micros, project_all, SagaProjection, StepSpan, MAX_KEPT_IDS};
pub use rules::{Classification, CorrelationSource, Rules, RulesError};
pub use saga_event::{KafkaCoords, RawMessage, SagaEvent};
pub use saga_facts::{SagaFact, StepFact};
pub use thresholds::{Threshold, ThresholdMetric, Thresholds};
