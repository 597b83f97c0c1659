//! sagascope's server: CLI, HTTP (API, SSE, pages) and the wiring of ingest,
//! store and simulator. See docs/ARCHITECTURE.md.

pub mod app_state;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config_reference;
pub mod error;
pub mod http;
pub mod live_frames;
pub mod live_relay;
mod otlp_listener;
pub mod retention;
pub mod run;
pub mod simulate_command;
pub mod span_settings;
mod span_sweep;
pub mod telemetry;
