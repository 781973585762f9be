//! `sluice-bench`: a load generator on librdkafka that measures produce and consume
//! throughput and latency against any Kafka bootstrap, next to the fdatasync'd
//! sequential write bandwidth of the local disk measured in the same run.
//!
//! This file is only the command line; the work is in the modules below.

mod consume;
mod disk;
mod kafka;
mod payload;
mod produce;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Produce and consume benchmarks for Kafka-compatible brokers.
///
/// Throughput is in MB/s of record values (1 MB = 10^6 bytes, as dd reports it)
/// and records/s. Exit status: 0 on success, 1 when records failed or fell short,
/// 2 when the benchmark could not run.
#[derive(Parser, Debug)]
#[command(name = "sluice-bench", version)]
struct Cli {
    /// Print one JSON object with every figure instead of the text report.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Produce N records of SIZE bytes and report throughput and delivery latency.
    Produce(produce::ProduceArgs),
    /// Read a topic from the beginning and report throughput.
    Consume(consume::ConsumeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sluice-bench: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let disk_args = match &cli.command {
        Command::Produce(args) => &args.disk,
        Command::Consume(args) => &args.disk,
    };
    // Probe the disk first, so its writes do not overlap the benchmark.
    let disk = disk::probe_from_args(disk_args)?;
    let mut report = match &cli.command {
        Command::Produce(args) => produce::run(args)?,
        Command::Consume(args) => consume::run(args)?,
    };
    report.disk = disk;
    if cli.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
