//! `aether`: benchmark, inspect, verify, export and import aether event stores; rebuild a
//! store's index and migrate a store of the previous format.
//!
//! Exit status: 0 on success; 1 when the command found problems (`verify`) or rejected part
//! of its input (`import`, `inspect` skipping a malformed record); 2 on usage and I/O
//! errors, including a store held by another process.

mod bench;
mod maintain;
mod stats;
mod transfer;
mod util;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use util::{Failure, EXIT_FAILURE};

#[derive(Debug, Parser)]
#[command(
    name = "aether",
    version,
    about = "Benchmark, inspect, verify, export, import, reindex and migrate aether event stores",
    long_about = "Benchmark, inspect, verify, export, import, reindex and migrate aether event stores.\n\n\
        A store is a directory holding FORMAT, LOCK, log/ (the events, in segment files: the \
        truth) and sled/ (the index, derived from the log). Commands open a store exclusively: \
        if another process holds it, they say so and exit with status 2.\n\nExit status: 0 success; 1 problems found or input rejected; 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an event-sourcing workload and print throughput and latency per operation.
    Bench(bench::BenchArgs),
    /// Count a store's actors, events and snapshots, and show its size and durability mode.
    Stats(StatsArgs),
    /// Print stored events as JSON lines (the stored Go-compatible JSON), e.g. for jq.
    Inspect(InspectArgs),
    /// Check every record and index entry of a store; exit 0 only when it is sound.
    Verify(VerifyArgs),
    /// Print every event in sequence order as JSON lines (input for `aether import`).
    Export(ExportArgs),
    /// Append events from JSON lines with the normal version rule.
    Import(ImportArgs),
    /// Rebuild a store's index (sled/) from its log; the old index is replaced once the new
    /// one is complete.
    Reindex(ReindexArgs),
    /// Convert a store of format 1 (events in sled) to format 2, in place; the old files are
    /// kept beside it at PATH.format1.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The store directory (holding FORMAT, log/ and sled/).
    pub path: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The store directory.
    pub path: PathBuf,
    /// Only this actor's events, in version order (otherwise every event in sequence order).
    #[arg(long, value_name = "ID")]
    pub actor: Option<String>,
    /// With --actor: start at this version (inclusive).
    #[arg(long, value_name = "V", requires = "actor")]
    pub from_version: Option<u64>,
    /// Skip events whose store-wide sequence is lower (inclusive start).
    #[arg(long, value_name = "S")]
    pub from_sequence: Option<u64>,
    /// Print at most N events.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The store directory.
    pub path: PathBuf,
    /// Stop listing problems after this many (they are still counted).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_listed: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store directory.
    pub path: PathBuf,
    /// Start at this sequence (inclusive).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub from_sequence: u64,
}

/// Durability as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Every returned save is fdatasynced (group commit).
    Durable,
    /// Every returned save is in the log file: it survives the process being killed, and
    /// an OS crash or power loss once synced (about every 500 ms, or a flush).
    Buffered,
}

impl From<DurabilityArg> for aether_core::Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Durable => aether_core::Durability::Durable,
            DurabilityArg::Buffered => aether_core::Durability::Buffered,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The store directory (created if it does not exist).
    pub path: PathBuf,
    /// JSON lines to import, one event per line; `-` for standard input.
    pub file: PathBuf,
    /// Group up to N consecutive lines of the same actor into one atomic save.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
    /// Durability of the import's saves [default: the mode the store was written with, or
    /// durable for a new store]. Either way everything is durable when the command returns.
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// The store directory (closed).
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The directory of the format-1 store (closed).
    pub path: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Stats(args) => stats::run(&args),
        Command::Inspect(args) => transfer::inspect(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Export(args) => transfer::export(&args),
        Command::Import(args) => transfer::import(&args),
        Command::Reindex(args) => maintain::reindex(&args),
        Command::Migrate(args) => maintain::migrate(&args),
    };
    match result {
        Ok(code) => code,
        Err(Failure(msg)) => {
            eprintln!("aether: error: {msg}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
