//! Logging setup. Returns a guard held by `main` for the process lifetime;
//! the OpenTelemetry exporter (a later issue) flushes from its Drop.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

#[must_use = "dropping the guard ends telemetry"]
pub struct TelemetryGuard(());

pub fn init(args: &LogArgs) -> TelemetryGuard {
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match args.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init(),
    };
    if let Err(error) = result {
        eprintln!("telemetry already initialised: {error}");
    }
    TelemetryGuard(())
}
