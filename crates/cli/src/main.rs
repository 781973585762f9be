//! The `sluice` binary.

mod config;
mod dev;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
    }
}
