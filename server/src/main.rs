use clap::Parser;
use sagascope::cli::{Cli, Command};
use sagascope::{commands, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.log);
    match cli.command {
        Command::Serve(args) => commands::serve(args).await,
        Command::Demo(args) => commands::demo(args).await,
        Command::Simulate(args) => sagascope::simulate_command::simulate(args).await,
        Command::Migrate(args) => commands::migrate(args).await,
        Command::Reproject(args) => commands::reproject(args).await,
        Command::Bench(args) => sagascope::bench::run(args).await,
        Command::User(args) => sagascope::auth::admin_cli::user(args).await,
        Command::Token(args) => sagascope::auth::admin_cli::token(args).await,
    }
}
