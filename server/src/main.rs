use clap::Parser;
use sagascope::cli::{Cli, Command};
use sagascope::{commands, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = telemetry::init(&cli.log);
    let result = match cli.command {
        Command::Serve(args) => commands::serve(args).await,
        Command::Demo(args) => commands::demo(args).await,
        Command::Simulate(args) => sagascope::simulate_command::simulate(args).await,
        Command::Migrate(args) => commands::migrate(args).await,
        Command::Reproject(args) => commands::reproject(args).await,
        Command::Bench(args) => sagascope::bench::run(args).await,
        Command::User(args) => sagascope::auth::admin_cli::user(args).await,
        Command::Token(args) => sagascope::auth::admin_cli::token(args).await,
    };
    // The server has stopped: export what is still queued. The flush
    // blocks on the exporters, so it runs on the blocking pool, not on a
    // runtime worker.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    result
}
