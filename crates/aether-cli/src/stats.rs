//! `aether stats`: what a store holds, read from sled directly through the public layout.

use std::process::ExitCode;

use aether_core::sled_store::layout;
use serde::Serialize;

use crate::util::{self, CmdResult};
use crate::walfile::{self, WalState};
use crate::StatsArgs;

#[derive(Debug, Serialize)]
struct Stats {
    path: String,
    format: Option<String>,
    durability: Option<String>,
    actors: u64,
    events: u64,
    snapshots: u64,
    last_sequence: u64,
    size_on_disk_bytes: u64,
    apparent_size_bytes: u64,
    wal: String,
    /// Saves in the write-ahead log that the next open replays into sled (an unclean close).
    wal_pending_saves: u64,
}

pub fn run(args: &StatsArgs) -> CmdResult<ExitCode> {
    let db = util::open_sled_direct(&args.path)?;
    let events = db.open_tree(layout::TREE_EVENTS)?;
    let sequence = db.open_tree(layout::TREE_SEQUENCE)?;
    let snapshots = db.open_tree(layout::TREE_SNAPSHOTS)?;
    let meta = db.open_tree(layout::TREE_META)?;

    // One actor's events are one key range, so actors are counted as changes of prefix.
    let mut actors = 0u64;
    let mut count = 0u64;
    let mut previous_actor: Vec<u8> = Vec::new();
    for key in events.iter().keys() {
        let key = key?;
        count += 1;
        let actor = layout::split_event_key(&key)
            .map(|(a, _)| a)
            .unwrap_or(&key[..]);
        if count == 1 || actor != previous_actor.as_slice() {
            actors += 1;
            previous_actor.clear();
            previous_actor.extend_from_slice(actor);
        }
    }
    let last_sequence = match sequence.last()? {
        Some((k, _)) => layout::parse_sequence_key(&k).unwrap_or(0),
        None => 0,
    };
    let text = |key: &[u8]| -> CmdResult<Option<String>> {
        Ok(meta
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    };
    let (wal, pending) = match walfile::read(&args.path) {
        Ok(WalState::Missing) => ("missing".to_owned(), 0),
        Ok(WalState::Unreadable(why)) => (format!("unreadable: {why}"), 0),
        Ok(WalState::Read(info)) => {
            let ckpt = info.checkpoint.map_or(0, |c| c.sequence);
            if info.pending_frames == 0 {
                (
                    format!("clean (checkpoint at sequence {})", util::thousands(ckpt)),
                    0,
                )
            } else {
                (
                    format!(
                        "{} saves not yet checkpointed into sled (sequences {}..={}); the next open replays them",
                        util::thousands(info.pending_frames),
                        util::thousands(info.pending_sequences.0),
                        util::thousands(info.pending_sequences.1)
                    ),
                    info.pending_frames,
                )
            }
        }
        Err(e) => (format!("unreadable: {e}"), 0),
    };
    let stats = Stats {
        path: args.path.display().to_string(),
        format: text(layout::META_FORMAT)?,
        durability: text(layout::META_DURABILITY)?,
        actors,
        events: count,
        snapshots: snapshots.len() as u64,
        last_sequence,
        size_on_disk_bytes: 0,
        apparent_size_bytes: 0,
        wal,
        wal_pending_saves: pending,
    };
    drop((events, sequence, snapshots, meta));
    drop(db);
    let (allocated, apparent) = util::dir_size(&args.path);
    let stats = Stats {
        size_on_disk_bytes: allocated,
        apparent_size_bytes: apparent,
        ..stats
    };

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("stats serialize")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let unknown = || "unknown".to_owned();
    let rows = [
        ("store", stats.path.clone()),
        ("format", stats.format.clone().unwrap_or_else(unknown)),
        (
            "durability",
            stats
                .durability
                .clone()
                .map(|d| format!("{d} (the mode it was last opened with)"))
                .unwrap_or_else(unknown),
        ),
        ("actors", util::thousands(stats.actors)),
        ("events", util::thousands(stats.events)),
        ("snapshots", util::thousands(stats.snapshots)),
        ("last sequence", util::thousands(stats.last_sequence)),
        (
            "size on disk",
            format!(
                "{} ({} apparent)",
                util::bytes(stats.size_on_disk_bytes),
                util::bytes(stats.apparent_size_bytes)
            ),
        ),
        ("write-ahead log", stats.wal.clone()),
    ];
    for (name, value) in rows {
        println!("{name:<16} {value}");
    }
    Ok(ExitCode::SUCCESS)
}
