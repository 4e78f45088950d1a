//! `aether`: benchmark, inspect, verify, export and import aether event stores, and inject
//! faults for recovery tests.
//!
//! Exit status: 0 on success; 1 when the command found problems (`verify`) or rejected part
//! of its input (`import`, `inspect` skipping a malformed record); 2 on usage and I/O
//! errors, including a store held by another process.

mod bench;
mod debug;
mod stats;
mod transfer;
mod util;
mod verify;
mod walfile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use util::{Failure, EXIT_FAILURE};

#[derive(Debug, Parser)]
#[command(
    name = "aether",
    version,
    about = "Benchmark, inspect, verify, export and import aether event stores",
    long_about = "Benchmark, inspect, verify, export and import aether event stores.\n\n\
        A store is a directory holding sled/ (sled's files) and aether.wal. Commands that read \
        a store open it exclusively: if another process holds it, they say so and exit with \
        status 2.\n\nExit status: 0 success; 1 problems found or input rejected; 2 usage or I/O error."
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
    /// Fault injection for recovery tests (the store must be closed).
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The store directory (holding sled/ and aether.wal).
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
    /// Saves sit in sled's buffers until it writes them (about every 500 ms) or a flush.
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

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Overwrite one stored event record (store must be closed).
    CorruptRecord(CorruptRecordArgs),
    /// Delete one sequence index entry, leaving its record orphaned (store must be closed).
    RemoveIndexEntry(RemoveIndexEntryArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("damage").required(true).args(["garbage", "flip_bit"])))]
pub struct CorruptRecordArgs {
    /// The store directory.
    pub path: PathBuf,
    /// The actor whose record to damage.
    #[arg(long, value_name = "ID")]
    pub actor: String,
    /// The version of the record to damage.
    #[arg(long, value_name = "V")]
    pub version: i64,
    /// Replace the record with bytes of the same length that are not a record.
    #[arg(long)]
    pub garbage: bool,
    /// Flip bit N of the stored value (bit N % 8 of byte N / 8).
    #[arg(long, value_name = "N")]
    pub flip_bit: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RemoveIndexEntryArgs {
    /// The store directory.
    pub path: PathBuf,
    /// The sequence whose index entry to delete.
    #[arg(long, value_name = "S")]
    pub sequence: u64,
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
        Command::Debug(cmd) => debug::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(Failure(msg)) => {
            eprintln!("aether: error: {msg}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
