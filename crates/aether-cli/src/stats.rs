//! `aether stats`: what a store holds, read through the store (which runs recovery at open
//! and says so on stderr) and its index.

use std::process::ExitCode;

use aether_core::sled_store::{index, segment};
use aether_core::EventStore;
use serde::Serialize;

use crate::util::{self, CmdResult};
use crate::StatsArgs;

#[derive(Debug, Serialize)]
struct Stats {
    path: String,
    format: String,
    durability: String,
    actors: u64,
    events: u64,
    snapshots: u64,
    last_sequence: u64,
    segments: u64,
    /// Bytes allocated on disk (`du`): the log, its zero fill ahead of the writer and the
    /// spare segment, and the index.
    size_on_disk_bytes: u64,
    /// The files' lengths added up.
    apparent_size_bytes: u64,
    /// Of the log's bytes, zero-filled space not yet written: the rest of the active
    /// segment and the spare segment.
    preallocated_bytes: u64,
    /// What opening the store found and did (empty after a clean close).
    open_report: Vec<String>,
}

pub fn run(args: &StatsArgs) -> CmdResult<ExitCode> {
    util::require_store(&args.path)?;
    let store = util::open_store(&args.path, None)?;
    let db = store.sled();
    let actors = db.open_tree(index::TREE_ACTORS)?.len() as u64;
    let snapshots = db.open_tree(index::TREE_SNAPSHOTS)?.len() as u64;
    // Sequences are gapless from 1: the last one is the number of events.
    let last_sequence = store.last_sequence()?;
    // Opening records the high-water mark at the log's head.
    let hwm = db
        .open_tree(index::TREE_META)?
        .get(index::META_HWM)?
        .and_then(|v| index::Hwm::decode(&v));
    let open_report = store.open_report().lines();
    let durability = store.durability().as_str().to_owned();
    store.close()?;
    drop(store);

    let log_dir = args.path.join(segment::LOG_DIR);
    let segments = segment::list(&log_dir).map_err(util::io_failure(format_args!(
        "listing {}",
        log_dir.display()
    )))?;
    let mut preallocated = std::fs::metadata(log_dir.join("spare")).map_or(0, |m| m.len());
    if let (Some(active), Some(h)) = (segments.last(), hwm) {
        if h.segment == active.id {
            preallocated += active.len.saturating_sub(h.end);
        }
    }
    let (allocated, apparent) = util::dir_size(&args.path);
    let stats = Stats {
        path: args.path.display().to_string(),
        format: String::from_utf8_lossy(index::FORMAT_VERSION).into_owned(),
        durability,
        actors,
        events: last_sequence,
        snapshots,
        last_sequence,
        segments: segments.len() as u64,
        size_on_disk_bytes: allocated,
        apparent_size_bytes: apparent,
        preallocated_bytes: preallocated,
        open_report,
    };

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("stats serialize")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows = [
        ("store", stats.path.clone()),
        ("format", stats.format.clone()),
        (
            "durability",
            format!("{} (the mode it was last opened with)", stats.durability),
        ),
        ("actors", util::thousands(stats.actors)),
        ("events", util::thousands(stats.events)),
        ("snapshots", util::thousands(stats.snapshots)),
        ("last sequence", util::thousands(stats.last_sequence)),
        ("segments", util::thousands(stats.segments)),
        (
            "size on disk",
            format!(
                "{} ({} apparent, of which {} preallocated zero fill)",
                util::bytes(stats.size_on_disk_bytes),
                util::bytes(stats.apparent_size_bytes),
                util::bytes(stats.preallocated_bytes)
            ),
        ),
    ];
    for (name, value) in rows {
        println!("{name:<16} {value}");
    }
    Ok(ExitCode::SUCCESS)
}
