//! The `sluice` binary.

mod api;
mod config;
mod dev;
mod groups;
mod tls;

use clap::{Parser, Subcommand};

/// Decoding sizes arrays from counts on the wire; this allocator keeps a
/// hostile count from aborting the broker (see `alloc_guard`).
#[global_allocator]
static ALLOC: sluice_protocol::ReserveLargeAllocations = sluice_protocol::ReserveLargeAllocations;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible streaming service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker with embedded storage (SQLite catalog, local objects).
    Dev(config::DevArgs),
    /// Consumer groups of a running broker: list, describe.
    Groups {
        #[command(subcommand)]
        command: groups::GroupsCommand,
        #[command(flatten)]
        api: api::ApiArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Groups { command, api } = cli.command {
        // Operator commands print their failure as one line and exit 1.
        if let Err(e) = groups::run(command, &api) {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Dev(args) => runtime.block_on(dev::run(args.resolve()?)),
        Command::Groups { .. } => Ok(()),
    }
}
