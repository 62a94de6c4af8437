//! The `rinnovo` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rinnovo::config::Config;
use rinnovo::startup::{self, Application, StartOptions};

#[derive(Parser)]
#[command(
    name = "rinnovo",
    version,
    about = "Renewal coupons for qualified-signature certificates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the HTTP API (configuration: RINNOVO_* variables).
    Serve {
        /// Load (or refresh) the demo registry, so every renewal status is on show.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load the base seeds (brands) and, with --demo, the demo registry, then exit.
    Seed {
        #[arg(long)]
        demo: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("rinnovo: {error}");
            return ExitCode::from(2);
        }
    };
    rinnovo::telemetry::init(config.log_format);
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rinnovo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => {
            let app = Application::build(config, StartOptions { demo }).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            startup::migrate(config.into()).await?;
            println!("database is up to date");
        }
        Command::Seed { demo } => {
            startup::prepare_database(config.into(), StartOptions { demo }).await?;
            println!(
                "seeds loaded{}",
                if demo { " (with demo registry)" } else { "" }
            );
        }
    }
    Ok(())
}
