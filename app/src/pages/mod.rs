//! One module per page (route).

pub mod ingest_errors;
pub mod not_found;
pub mod saga_detail;
pub mod saga_list;
pub mod trace;
