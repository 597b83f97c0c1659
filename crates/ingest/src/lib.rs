//! Kafka → read model. One loop per process: collect a batch (size or
//! linger), decode every message (failures become ingest errors with their
//! coordinates; messages of the DLQ topics become dead letters), write
//! events, dead letters, projections and offsets in one store transaction,
//! then commit the offsets to Kafka and fan the changes out to live
//! subscribers. A crash anywhere loses nothing (offsets are committed
//! after the store) and duplicates nothing (events are idempotent on id).

mod batch;
mod catchup;
mod consumer;
mod dlq_topics;
mod group_lag;
mod ingest_metrics;
mod ingest_status;
mod message_headers;

pub use batch::{decode_batch, first_bytes, DecodedBatch};
pub use catchup::{BacklogEnd, CatchUp, PartitionMarks, QUIET};
pub use consumer::{IngestConfig, IngestError, Ingestor};
pub use dlq_topics::{DlqPatternError, DlqTopics, DEFAULT_DLQ_TOPICS};
pub use group_lag::{
    watch_group_lag, GroupLagBoard, GroupLagPoller, GroupWatchConfig, GroupWatchError,
};
pub use ingest_metrics::{describe_ingest_metrics, record_batch, record_catch_up};
pub use ingest_status::{ConsumerState, IngestStatus, IngestStatusView, UnmatchedSubscription};
pub use message_headers::HEADER_KEY_NOT_UTF8;
