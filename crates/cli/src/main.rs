//! The `sluice` binary.

mod api;
mod config;
mod confirm;
mod credentials;
mod dev;
mod groups;
mod info;
mod output;
mod tenants;
mod tls;
mod tokens;
mod topic_records;
mod topics;
mod wait;

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
    Dev(Box<config::DevArgs>),
    /// Topics: list, create, info, destroy, retention, compaction,
    /// partitions, and their records: write, tail.
    Topics {
        #[command(subcommand)]
        command: topics::TopicsCommand,
        /// With the operator token: the tenant whose topics to act on
        /// (names get its prefix, lists show only its topics). A tenant
        /// token always acts on its own tenant.
        #[arg(long, global = true)]
        tenant: Option<String>,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// Consumer groups of a running broker: list, describe; a tenant's
    /// explicit groups: create, destroy.
    Groups {
        #[command(subcommand)]
        command: groups::GroupsCommand,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// Tenants of a multi-tenant broker: create, list, info, destroy.
    Tenants {
        #[command(subcommand)]
        command: tenants::TenantsCommand,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// A tenant's SASL credentials: create, list, rotate, revoke.
    Credentials {
        #[command(subcommand)]
        command: credentials::CredentialsCommand,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// A tenant's REST API tokens: create, list, revoke.
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// A tenant's plan, status and usage (the given tenant, or a tenant
    /// token's own); for the operator without TENANT, the cluster: brokers,
    /// version and usage by tenant.
    Info {
        /// The tenant.
        tenant: Option<String>,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// Waits until the broker answers on HTTP and Kafka (and, with
    /// --tenant, until the tenant exists); exit 1 on timeout.
    Wait {
        #[command(flatten)]
        args: wait::WaitArgs,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// A tenant's connection config as KEY=value lines (`eval` or dotenv).
    Config {
        /// The tenant; a tenant token's own by default.
        name: Option<String>,
        #[command(flatten)]
        api: api::ApiArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let operated = match cli.command {
        Command::Dev(args) => return run_broker(*args),
        Command::Topics {
            command,
            tenant,
            api,
        } => topics::run(command, tenant.as_deref(), &api),
        Command::Groups { command, api } => groups::run(command, &api),
        Command::Tenants { command, api } => tenants::run(command, &api),
        Command::Credentials { command, api } => credentials::run(command, &api),
        Command::Tokens { command, api } => tokens::run(command, &api),
        Command::Config { name, api } => api
            .require_tenant(name)
            .and_then(|name| tenants::config(&name, &api)),
        Command::Info { tenant, api } => info::run(tenant, &api),
        Command::Wait { args, api } => wait::run(args, &api),
    };
    // Operator commands print their failure as one line and exit 1 (2 for
    // a command-line mistake found after parsing).
    if let Err(e) = operated {
        eprintln!("error: {e:#}");
        let usage = e.downcast_ref::<api::UsageError>().is_some();
        std::process::exit(if usage { 2 } else { 1 });
    }
    Ok(())
}

fn run_broker(args: config::DevArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        // Colour codes only for a terminal (the log goes to stdout), and not
        // with NO_COLOR: log files and journald get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(dev::run(args.resolve()?))
}
