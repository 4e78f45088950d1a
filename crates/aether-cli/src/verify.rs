//! `aether verify`: read every index entry, record and snapshot of a store straight from
//! sled (never through `SledStore`, whose open would repair what we want to see) and report
//! each malformed value and each inconsistency between them and the write-ahead log.
//!
//! Two passes: the `sequence` index in order (gaps, entries pointing nowhere, records whose
//! sequence differs from their entry), then the `events` tree in key order (records that do
//! not decode, records no entry points to, versions whose sequences go backwards).
//! Conditions the next open repairs by design — saves still in the log after an unclean
//! close, or a last batch cut short by a crash — are notes, not problems.

use std::collections::HashSet;
use std::process::ExitCode;

use aether_core::sled_store::layout::{self, decode_event_record, decode_sequence_entry};
use aether_core::{ActorSnapshot, Event};

use crate::util::{self, CmdResult, Progress, EXIT_PROBLEMS};
use crate::walfile::{self, WalState};
use crate::VerifyArgs;

/// Stores with fewer events than this get no progress bar: they take well under a second.
const PROGRESS_THRESHOLD: u64 = 20_000;

struct Report {
    problems: u64,
    max_listed: usize,
    listed: usize,
}

impl Report {
    fn problem(&mut self, place: &str, kind: &str, detail: impl std::fmt::Display) {
        self.problems += 1;
        if self.listed < self.max_listed {
            self.listed += 1;
            println!("problem: {place}: {kind}: {detail}");
        } else if self.listed == self.max_listed {
            self.listed += 1;
            println!("problem: … more problems are counted but not listed (--max-listed)");
        }
    }

    fn note(&self, detail: impl std::fmt::Display) {
        println!("note: {detail}");
    }
}

fn place(sequence: Option<u64>, actor: &[u8], version: u64) -> String {
    let actor = String::from_utf8_lossy(actor);
    match sequence {
        Some(s) => format!("sequence {s}, actor {actor:?} version {version}"),
        None => format!("actor {actor:?} version {version}"),
    }
}

fn actor_of_key(key: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    (key.len() == 4 + len).then(|| &key[4..])
}

pub fn run(args: &VerifyArgs) -> CmdResult<ExitCode> {
    let db = util::open_sled_direct(&args.path)?;
    let events = db.open_tree(layout::TREE_EVENTS)?;
    let sequence = db.open_tree(layout::TREE_SEQUENCE)?;
    let snapshots = db.open_tree(layout::TREE_SNAPSHOTS)?;
    let meta = db.open_tree(layout::TREE_META)?;
    let mut report = Report {
        problems: 0,
        max_listed: args.max_listed,
        listed: 0,
    };

    if let Some(format) = meta.get(layout::META_FORMAT)? {
        if format.as_ref() != layout::FORMAT_VERSION {
            report.problem(
                "meta",
                "unknown format",
                format!(
                    "the store says format {:?}; this build reads {:?}",
                    String::from_utf8_lossy(&format),
                    String::from_utf8_lossy(layout::FORMAT_VERSION)
                ),
            );
        }
    }

    // The last batch, if a crash cut it short: the next open rolls it back.
    let mut head = 0;
    let mut cut_short: Option<(u64, u64)> = None;
    if let Some((key, value)) = sequence.last()? {
        if let (Ok(last), Ok(entry)) = (
            layout::parse_sequence_key(&key),
            decode_sequence_entry(&value),
        ) {
            head = last;
            let complete = last == entry.batch_last
                && events
                    .get(entry.event_key)?
                    .and_then(|raw| decode_event_record(&raw).ok().map(|r| r.sequence))
                    == Some(last);
            if !complete && entry.batch_first <= last {
                cut_short = Some((entry.batch_first, last));
                report.note(format!(
                    "the last batch (sequences {}..={last}) was cut short by a crash; the next open rolls it back",
                    entry.batch_first
                ));
            }
        }
    }
    let in_cut_short = |seq: u64| cut_short.is_some_and(|(a, b)| (a..=b).contains(&seq));
    let show_progress = util::stderr_is_terminal() && head >= PROGRESS_THRESHOLD;

    // Pass 1: the sequence index.
    let mut progress = show_progress.then(|| Progress::new("verify: sequence index", head, true));
    let mut index_entries = 0u64;
    let mut expected = 1u64;
    // Records already reported as malformed through their entry, so pass 2 stays quiet.
    let mut reported_keys: HashSet<Vec<u8>> = HashSet::new();
    for item in sequence.iter() {
        let (key, value) = item?;
        index_entries += 1;
        if let Some(p) = progress.as_mut() {
            if index_entries % 4096 == 0 {
                p.set(index_entries);
            }
        }
        let seq = match layout::parse_sequence_key(&key) {
            Ok(s) => s,
            Err(e) => {
                report.problem("sequence index", "malformed index key", e);
                continue;
            }
        };
        if seq == 0 {
            report.problem(
                "sequence 0",
                "malformed index entry",
                "sequences start at 1",
            );
        } else if seq > expected {
            let missing = if seq - expected == 1 {
                format!("sequence {expected} has no index entry")
            } else {
                format!("sequences {expected}..={} have no index entry", seq - 1)
            };
            report.problem(&format!("sequence {expected}"), "sequence gap", missing);
        }
        expected = seq + 1;
        let entry = match decode_sequence_entry(&value) {
            Ok(entry) => entry,
            Err(e) => {
                report.problem(&format!("sequence {seq}"), "malformed index entry", e);
                continue;
            }
        };
        let (actor, version) = layout::split_event_key(entry.event_key)
            .expect("decode_sequence_entry checked the key");
        let here = place(Some(seq), actor, version);
        if !(entry.batch_first <= seq && seq <= entry.batch_last) {
            report.problem(
                &here,
                "malformed index entry",
                format!(
                    "it names batch {}..={}, which does not contain it",
                    entry.batch_first, entry.batch_last
                ),
            );
        }
        let Some(raw) = events.get(entry.event_key)? else {
            if !in_cut_short(seq) {
                report.problem(&here, "index entry points nowhere", "no record at that key");
            }
            continue;
        };
        match decode_event_record(&raw) {
            Err(e) => {
                report.problem(&here, "malformed record", e);
                reported_keys.insert(entry.event_key.to_vec());
            }
            Ok(rec) if rec.sequence != seq => {
                report.problem(
                    &here,
                    "sequence mismatch",
                    format!(
                        "the record carries sequence {}, its index entry says {seq}",
                        rec.sequence
                    ),
                );
                reported_keys.insert(entry.event_key.to_vec());
            }
            Ok(_) => {}
        }
    }
    if let Some(p) = progress.take() {
        p.finish();
    }

    // Pass 2: the records.
    let mut progress = show_progress.then(|| Progress::new("verify: event records", head, true));
    let mut records = 0u64;
    let mut previous: Option<(Vec<u8>, u64, u64)> = None; // actor, version, sequence
    for item in events.iter() {
        let (key, value) = item?;
        records += 1;
        if let Some(p) = progress.as_mut() {
            if records % 4096 == 0 {
                p.set(records);
            }
        }
        let (actor, version) = match layout::split_event_key(&key) {
            Ok(split) => split,
            Err(e) => {
                report.problem(
                    &format!("events key {}", String::from_utf8_lossy(&key)),
                    "malformed key",
                    e,
                );
                continue;
            }
        };
        let rec = match decode_event_record(&value) {
            Ok(rec) => rec,
            Err(e) => {
                if !reported_keys.contains(key.as_ref()) {
                    let claimed = layout::claimed_sequence(&value);
                    let seq = (claimed > 0).then_some(claimed);
                    report.problem(&place(seq, actor, version), "malformed record", e);
                }
                continue;
            }
        };
        let here = place(Some(rec.sequence), actor, version);
        if version == 0 {
            report.problem(&here, "malformed key", "versions start at 1");
        }
        match Event::from_json(rec.json) {
            Err(e) => report.problem(&here, "malformed record", format!("JSON: {e}")),
            Ok(event) if event.actor_id.as_bytes() != actor || event.version as u64 != version => {
                report.problem(
                    &here,
                    "malformed record",
                    format!(
                        "it holds actor {:?} version {}",
                        event.actor_id, event.version
                    ),
                );
            }
            Ok(_) => {}
        }
        if let Some((prev_actor, prev_version, prev_seq)) = &previous {
            if prev_actor.as_slice() == actor && rec.sequence <= *prev_seq {
                report.problem(
                    &here,
                    "version order broken",
                    format!(
                        "its sequence is not after that of version {prev_version} (sequence {prev_seq})"
                    ),
                );
            }
        }
        previous = Some((actor.to_vec(), version, rec.sequence));
        if reported_keys.contains(key.as_ref()) {
            continue;
        }
        let linked = match sequence.get(layout::sequence_key(rec.sequence))? {
            Some(entry) => match decode_sequence_entry(&entry) {
                Ok(entry) => entry.event_key == key.as_ref(),
                Err(_) => true, // reported in pass 1
            },
            None => false,
        };
        if !linked {
            report.problem(
                &here,
                "record with no index entry",
                format!("no index entry of sequence {} points to it", rec.sequence),
            );
        }
    }
    if let Some(p) = progress.take() {
        p.finish();
    }

    // Snapshots.
    let mut snapshot_count = 0u64;
    for item in snapshots.iter() {
        let (key, value) = item?;
        snapshot_count += 1;
        let actor = actor_of_key(&key).unwrap_or(&key);
        let here = format!("snapshot of actor {:?}", String::from_utf8_lossy(actor));
        match layout::decode_snapshot_record(&value) {
            Err(e) => report.problem(&here, "malformed snapshot", e),
            Ok((version, json)) => match serde_json::from_slice::<ActorSnapshot>(json) {
                Err(e) => report.problem(&here, "malformed snapshot", format!("JSON: {e}")),
                Ok(s) if s.actor_id.as_bytes() != actor || s.version != version => report.problem(
                    &here,
                    "malformed snapshot",
                    format!("it holds actor {:?} version {}", s.actor_id, s.version),
                ),
                Ok(_) => {}
            },
        }
    }

    // The write-ahead log's checkpoint must not be ahead of sled.
    let wal_summary = match walfile::read(&args.path) {
        Err(e) => {
            report.problem("aether.wal", "unreadable", e);
            "the write-ahead log (unreadable)"
        }
        Ok(WalState::Missing) => {
            report.note("the store has no aether.wal (it was never opened by the library)");
            "no write-ahead log"
        }
        Ok(WalState::Unreadable(why)) => {
            report.problem("aether.wal", "unreadable header", why);
            "the write-ahead log (unreadable)"
        }
        Ok(WalState::Read(info)) => {
            if let Some(ckpt) = info.checkpoint.filter(|c| c.sequence > 0) {
                let found = match sequence.get(layout::sequence_key(ckpt.sequence))? {
                    None => None,
                    Some(entry) => match decode_sequence_entry(&entry) {
                        Err(_) => None,
                        Ok(entry) => events.get(entry.event_key)?.and_then(|raw| {
                            decode_event_record(&raw)
                                .ok()
                                .map(|r| (r.sequence == ckpt.sequence, r.crc))
                        }),
                    },
                };
                let what = match found {
                    Some((true, crc)) if crc == ckpt.crc => None,
                    Some(_) => Some("holds a different or damaged record there".to_owned()),
                    None => Some(format!(
                        "has no readable record there (its index ends at sequence {head})"
                    )),
                };
                if let Some(what) = what {
                    report.problem(
                        "aether.wal",
                        "checkpoint ahead of the data",
                        format!(
                            "events through sequence {} were checkpointed as durable in sled, but sled {what}; the library will refuse to open this store (data loss)",
                            ckpt.sequence
                        ),
                    );
                }
            }
            if let Some(damage) = info.damage {
                report.problem(
                    "aether.wal",
                    "damaged log",
                    format!("{damage}; acknowledged saves after it are lost"),
                );
            }
            if info.pending_frames > 0 {
                let (first, last) = info.pending_sequences;
                if first > head + 1 {
                    report.problem(
                        "aether.wal",
                        "log ahead of the data",
                        format!("the log continues at sequence {first} but sled ends at {head}"),
                    );
                }
                report.note(format!(
                    "the store was not closed cleanly: {} saves (sequences {}..={}) are in aether.wal but not yet in sled; the next open replays them",
                    util::thousands(info.pending_frames),
                    util::thousands(first),
                    util::thousands(last)
                ));
            }
            "the write-ahead log"
        }
    };

    println!(
        "checked {} index entries, {} records, {} snapshots and {wal_summary}: {}",
        util::thousands(index_entries),
        util::thousands(records),
        util::thousands(snapshot_count),
        match report.problems {
            0 => "sound".to_owned(),
            1 => "1 problem found".to_owned(),
            n => format!("{} problems found", util::thousands(n)),
        }
    );
    Ok(if report.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}
