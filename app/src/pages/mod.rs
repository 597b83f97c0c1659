//! One module per page (route).

pub mod api_reference;
pub mod audit;
pub mod dlq_bulk_retry;
pub mod dlq_job;
pub mod dlq_list;
pub mod dlq_message;
pub mod ingest_errors;
pub mod lag;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod saga_detail;
pub mod saga_list;
pub mod saga_type;
pub mod trace;
