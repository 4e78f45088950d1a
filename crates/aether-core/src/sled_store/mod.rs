//! `SledStore`: the embedded, persistent backend. Events live in the store's own
//! append-only segment log (the truth); sled indexes it.
//!
//! # Layout (store format 2)
//! - `log/`: segment files of CRC-framed commit records, one record per save call
//!   (`segment.rs`, `record.rs`, `frame.rs`).
//! - `sled/`: the index (actor → records, sparse sequence → position), snapshots and
//!   metadata (`index.rs`). Derived from the log: rebuilt from it by `aether reindex`, and
//!   at open when sled is damaged.
//! - `FORMAT`, `LOCK`: the format marker and the directory lock (`dirlock.rs`).
//!
//! # Write path
//! A save (or a commit across actors) validates and encodes its record outside any lock.
//! Under the write lock it checks the versions (from an in-memory map of recently written
//! actors, or one sled seek), appends the record to the log with one `pwrite`, and notes
//! where it is in an in-memory table. A background checkpoint (about every 500 ms, and
//! `flush`/`close`) syncs the log and moves that table to sled: per actor, runs of at
//! most 64 records keyed by the actor and the run's last version.
//!
//! # Durability
//! - [`Durability::Durable`] (the default): the save returns once an `fdatasync` of the
//!   segment covers its record; concurrent saves share one (group commit, `commit.rs`,
//!   model-checked with loom). Survives process crashes, OS crashes and power loss (given
//!   a disk that honours flushes).
//! - [`Durability::Buffered`]: the record is in the file (the OS's page cache) when the
//!   save returns, so killing the process loses nothing; an OS crash or power loss can lose
//!   the saves since the last sync (a background checkpoint syncs about every 500 ms, and
//!   `flush()` at once), never part of a batch.
//!
//! In durable mode, events become visible to readers, and are announced with
//! `EventStored`, only once durable; a conflict that names a version waits until that
//! version is durable, so it never names one readers cannot see.
//!
//! # Recovery
//! At open the log is checked against the index: sealed segments against the lengths the
//! index recorded when it sealed them (a missing or shortened segment is
//! [`Error::DataLoss`] naming it), and records past the index's high-water mark are read
//! and indexed. A torn tail (a write cut short by a crash, never acknowledged) is cut; a
//! damaged record that was written in full is `DataLoss`. A damaged sled is moved aside
//! and the index rebuilt from the log ([`SledStore::open_report`] says so).

// The loom model check (tests/loom.rs) drives the group commit directly.
#[cfg(aether_loom)]
pub mod commit;
#[cfg(not(aether_loom))]
mod commit;
pub mod dirlock;
pub mod frame;
pub mod index;
pub(crate) mod legacy;
pub mod record;
pub mod segment;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::append::{
    self, already_appended, AppendStatus, CommitEntry, Committed, Direction, EventFilter,
    EventRange, ExpectedState, Rule, StoredId,
};
use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event, EventStored, ReplayError, ReplayResult, SequencedEvent};
use crate::notify::{EventBus, Metrics, MetricsSnapshot, Notifier, DEFAULT_CHANNEL_CAPACITY};
use crate::store::{EventStore, Limits, SnapshotStore};
use crate::timestamp::Timestamp;

use commit::{Group, GroupCommit, GroupLog, Position};
use dirlock::DirLock;
use frame::FRAME_HEADER_LEN;
use index::*;
use record::{EventsRecordBuilder, Record};
use segment::{Log, LogOptions, Segment, SegmentFile, SegmentId, SEGMENT_HEADER_LEN};

/// What a successful save guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Returned saves are in the log file (the OS's page cache): they survive the process
    /// being killed, not an OS crash or power loss before the next sync (about 500 ms).
    Buffered,
    /// Returned saves are `fdatasync`ed to the log (group commit).
    #[default]
    Durable,
}

impl Durability {
    /// The name used in options, the CLI and the store's metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Buffered => "buffered",
            Durability::Durable => "durable",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "buffered" => Ok(Durability::Buffered),
            "durable" => Ok(Durability::Durable),
            other => Err(Error::invalid(
                "durability",
                format!("{other:?} is not one of \"buffered\", \"durable\""),
            )),
        }
    }
}

/// Smallest and largest segment size.
pub const SEGMENT_SIZE_RANGE: (u64, u64) = (64 * 1024, 1 << 31);

/// How to open a [`SledStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// What a returned save guarantees.
    pub durability: Durability,
    /// Undrained EventStored notifications kept before new ones are dropped (and counted).
    pub event_stored_capacity: usize,
    /// sled's page cache size in bytes (the index's).
    pub cache_capacity: u64,
    /// Size limits on actor IDs, records and batches.
    pub limits: Limits,
    /// How long to wait when another handle holds the store.
    pub lock_timeout: Duration,
    /// Size at which a log segment is sealed and the next one begins (64 KiB to 2 GiB).
    pub segment_size: u64,
    /// How long a group-commit leader waits for saves already in flight to join its sync.
    /// Zero by default: saves arriving while a sync runs form the next group anyway.
    pub group_commit_window: Duration,
    /// How often the background checkpoint syncs the log and records the index's
    /// high-water mark (buffered mode's loss window on an OS crash).
    pub checkpoint_interval: Duration,
    /// Snapshots kept per actor (the newest ones; 1 or more). Older ones are dropped from
    /// the index as newer ones are saved.
    pub snapshot_retention: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::default(),
            event_stored_capacity: DEFAULT_CHANNEL_CAPACITY,
            cache_capacity: 256 << 20,
            limits: Limits::default(),
            lock_timeout: Duration::from_secs(2),
            segment_size: 128 << 20,
            group_commit_window: Duration::ZERO,
            checkpoint_interval: Duration::from_millis(500),
            snapshot_retention: crate::store::DEFAULT_SNAPSHOT_RETENTION,
        }
    }
}

impl Options {
    /// Options with the given durability and defaults otherwise.
    pub fn with_durability(durability: Durability) -> Options {
        Options {
            durability,
            ..Options::default()
        }
    }
}

/// The store's format marker file.
pub const FORMAT_FILE: &str = "FORMAT";
/// What the `FORMAT` file of a store in this format holds.
pub const FORMAT_TEXT: &str = "aether store format 2\n";
/// The index's folder in a store directory.
pub const SLED_DIR: &str = "sled";

/// Most actors whose state the writer remembers; past it the map starts over (a miss
/// costs a sled seek or two, so this only bounds memory).
const ACTOR_CACHE: usize = 100_000;

/// The most records one index entry (run) holds.
const RUN_MAX: usize = 64;

#[derive(Debug, Clone, Copy)]
struct ActorState {
    number: u64,
    latest: i64,
    /// Commit ticket of the actor's latest save (durable mode), to wait on before a
    /// conflict names that version.
    ticket: u64,
}

/// State guarded by the write lock.
#[derive(Debug)]
struct Writer {
    next_sequence: u64,
    actors: HashMap<String, ActorState>,
    /// Offset of the last `positions` entry, per segment.
    last_sparse: (SegmentId, u64),
    /// Saves since the last checkpoint recorded the high-water mark.
    dirty: bool,
    /// The log position before a snapshot record that is not yet in the index (see
    /// `record_hwm`).
    pending_snapshot: Option<Hwm>,
    closed: bool,
}

/// What opening found and did: recovery that ran, an index rebuilt. Empty after a clean
/// close.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Records read from the log past the index's high-water mark and indexed.
    pub records_indexed: u64,
    /// Bytes of a write cut short by a crash that were cut from the log's tail.
    pub torn_bytes_cut: u64,
    /// Set when the index was rebuilt from the log, with why.
    pub rebuilt: Option<String>,
}

impl OpenReport {
    /// One line per thing that happened, for tools to print.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.rebuilt {
            out.push(format!("the index was rebuilt from the log: {why}"));
        }
        if self.records_indexed > 0 {
            out.push(format!(
                "{} records past the index's high-water mark were indexed from the log",
                self.records_indexed
            ));
        }
        if self.torn_bytes_cut > 0 {
            out.push(format!(
                "{} bytes of a write cut short by a crash were cut from the log's tail",
                self.torn_bytes_cut
            ));
        }
        out
    }
}

struct Trees {
    db: sled::Db,
    actors: sled::Tree,
    index: sled::Tree,
    positions: sled::Tree,
    snapshots: sled::Tree,
    segments: sled::Tree,
    meta: sled::Tree,
}

impl Trees {
    fn open(db: sled::Db) -> Result<Trees> {
        Ok(Trees {
            actors: db.open_tree(TREE_ACTORS)?,
            index: db.open_tree(TREE_INDEX)?,
            positions: db.open_tree(TREE_POSITIONS)?,
            snapshots: db.open_tree(TREE_SNAPSHOTS)?,
            segments: db.open_tree(TREE_SEGMENTS)?,
            meta: db.open_tree(TREE_META)?,
            db,
        })
    }
}

/// The sled-indexed segment-log store. Thread-safe: share it with `Arc`. Closing (or
/// dropping) it checkpoints; a process holds a store exclusively.
pub struct SledStore {
    path: PathBuf,
    durability: Durability,
    limits: Limits,
    ix: Arc<Index>,
    log: Arc<Log>,
    notifier: Notifier,
    writer: Mutex<Writer>,
    commit: GroupCommit<EventStored>,
    /// Serialises snapshot saves: each is checked, logged, made durable and then made
    /// visible before the next is checked.
    snapshot_lock: Mutex<()>,
    /// Snapshots kept per actor.
    snapshot_retention: usize,
    /// Set when a failed write may have left state the store cannot vouch for: writes are
    /// refused until the store is reopened (recovery then sorts it out).
    failure: Mutex<Option<String>>,
    shut: AtomicBool,
    checkpointer: Checkpointer,
    report: OpenReport,
    _lock: DirLock,
}

/// The background checkpoint: about every `checkpoint_interval` it syncs the log and
/// flushes the in-memory index into sled (see [`Index::flush`]). It bounds buffered
/// mode's loss on an OS crash, and how much log a crash leaves to re-read at open.
#[derive(Default)]
struct Checkpointer {
    state: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    fn start(index: Arc<Index>, log: Arc<Log>, every: Duration) -> Checkpointer {
        let c = Checkpointer::default();
        if every.is_zero() {
            return c;
        }
        let state = c.state.clone();
        let t = std::thread::Builder::new()
            .name("aether-checkpoint".into())
            .spawn(move || {
                let (m, cv) = &*state;
                loop {
                    let stop = lock(m);
                    let (stop, _) = cv
                        .wait_timeout(stop, every)
                        .unwrap_or_else(|p| p.into_inner());
                    if *stop {
                        return;
                    }
                    drop(stop);
                    // A failure here is met again, and reported, by the next save's or
                    // close's own sync; the index stays in memory until a flush succeeds.
                    let _ = index.flush(&log);
                }
            });
        if let Ok(t) = t {
            *lock(&c.thread) = Some(t);
        }
        c
    }

    fn stop(&self) {
        *lock(&self.state.0) = true;
        self.state.1.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// Records indexed in memory since the last flush.
#[derive(Debug, Default)]
struct Memtable {
    /// Per actor number, its records in order.
    actors: HashMap<u64, Vec<RunRecord>>,
    /// Sparse `positions` entries (first sequence, offset), in order.
    positions: Vec<(u64, u32)>,
}

/// The index: sled's trees and the records not yet flushed into them. Shared with the
/// background checkpoint.
struct Index {
    t: Trees,
    mem: RwLock<Memtable>,
    /// The log position through which every record is in `mem` or sled (held back before
    /// a snapshot that is logged but not yet in sled): what a flush may record as the
    /// high-water mark.
    indexed: Mutex<Hwm>,
    /// One flush at a time.
    flushing: Mutex<()>,
}

impl Index {
    /// Sync the log, write the records indexed in memory through `indexed` into sled (one
    /// run per actor), record the high-water mark, then drop them from memory. sled keeps
    /// a prefix of its writes, so a high-water mark it kept never covers a record whose run
    /// it lost, and a run never points past what the log holds durably.
    fn flush(&self, log: &Log) -> Result<()> {
        let _one = lock(&self.flushing);
        let hwm = *lock(&self.indexed);
        log.sync()
            .map_err(|e| Error::storage_unknown("syncing the log", e))?;
        let (runs, positions) = {
            let mem = self.mem.read().unwrap_or_else(|p| p.into_inner());
            let runs: Vec<(u64, Vec<RunRecord>)> = mem
                .actors
                .iter()
                .filter_map(|(&actor, recs)| {
                    let upto: Vec<RunRecord> = recs
                        .iter()
                        .take_while(|r| r.first_sequence <= hwm.sequence)
                        .copied()
                        .collect();
                    (!upto.is_empty()).then_some((actor, upto))
                })
                .collect();
            let positions: Vec<(u64, u32)> = mem
                .positions
                .iter()
                .take_while(|(seq, _)| *seq <= hwm.sequence)
                .copied()
                .collect();
            (runs, positions)
        };
        for (actor, recs) in &runs {
            // Runs of at most RUN_MAX records, so a read near an actor's end (its latest
            // version, its last event) decodes one short run, however many records a
            // burst of saves left since the last flush.
            for run in recs.chunks(RUN_MAX) {
                let last = run[run.len() - 1].last_version;
                self.t
                    .index
                    .insert(index_key(*actor, last as u64), encode_run(run))?;
            }
        }
        for (seq, offset) in &positions {
            self.t
                .positions
                .insert(seq.to_be_bytes(), &offset.to_be_bytes())?;
        }
        self.t.meta.insert(META_HWM, &hwm.encode())?;
        let mut mem = self.mem.write().unwrap_or_else(|p| p.into_inner());
        for (actor, _) in &runs {
            if let Some(recs) = mem.actors.get_mut(actor) {
                recs.retain(|r| r.first_sequence > hwm.sequence);
                if recs.is_empty() {
                    mem.actors.remove(actor);
                }
            }
        }
        mem.positions.retain(|(seq, _)| *seq > hwm.sequence);
        Ok(())
    }

    /// The latest version of actor `number` among its records in memory with first
    /// sequence <= `visible`, looked up in place under the read lock (this is the hot
    /// path of `get_latest_version` and of a conflict check for an uncached actor).
    fn mem_latest(&self, number: u64, visible: u64) -> Option<i64> {
        let mem = self.mem.read().unwrap_or_else(|p| p.into_inner());
        let recs = mem.actors.get(&number)?;
        // Records are in sequence order: the last one at or below `visible` is the newest.
        let n = recs.partition_point(|r| r.first_sequence <= visible);
        n.checked_sub(1).map(|i| recs[i].last_version)
    }

    /// The actor's records in memory with last version >= `from_version` and first
    /// sequence <= `visible`, in order, and whether an older record of the actor is in
    /// memory too (then sled holds nothing the caller needs: see `actor_records`). Only
    /// that slice is copied: the caller reads sled after this and must not hold the lock
    /// that saves take while it does.
    fn mem_records(&self, number: u64, from_version: i64, visible: u64) -> (Vec<RunRecord>, bool) {
        let mem = self.mem.read().unwrap_or_else(|p| p.into_inner());
        let Some(recs) = mem.actors.get(&number) else {
            return (Vec::new(), false);
        };
        // Both orders agree: an actor's versions rise with its sequences.
        let from = recs.partition_point(|r| r.last_version < from_version);
        let to = recs
            .partition_point(|r| r.first_sequence <= visible)
            .max(from);
        (recs[from..to].to_vec(), from > 0)
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn corrupt(sequence: u64, location: String, cause: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        sequence,
        location,
        cause: cause.to_string(),
    }
}

fn data_loss(msg: impl Into<String>) -> Error {
    Error::DataLoss(msg.into())
}

fn decode_event(json: &[u8], actor_id: &[u8], version: i64) -> std::result::Result<Event, String> {
    let event = Event::from_json(json).map_err(|e| e.to_string())?;
    if event.actor_id.as_bytes() != actor_id || event.version != version {
        return Err(format!(
            "record holds actor {:?} version {}, but is stored under actor {:?} version {version}",
            event.actor_id,
            event.version,
            String::from_utf8_lossy(actor_id)
        ));
    }
    Ok(event)
}

fn location(actor_id: &[u8], version: i64) -> String {
    format!(
        "actor {:?} version {version}",
        String::from_utf8_lossy(actor_id)
    )
}

/// Whether `path` holds a store of the format before this one (events in sled beside a
/// write-ahead log).
pub fn is_format1(path: &Path) -> bool {
    !path.join(FORMAT_FILE).exists()
        && (path.join(legacy::wal::FILE_NAME).exists() || path.join(SLED_DIR).join("db").exists())
}

/// Rebuild the index of the store at `path` from its log (`aether reindex`). The old index
/// is moved aside to `sled.old` until the new one is complete, then removed.
pub fn reindex(path: impl AsRef<Path>, options: Options) -> Result<OpenReport> {
    options.validate()?;
    let path = path.as_ref().to_path_buf();
    let held = dirlock::lock_store(&path, options.lock_timeout)?;
    if !path.join(FORMAT_FILE).exists() {
        return Err(Error::invalid(
            "path",
            format!("{} holds no store of format 2", path.display()),
        ));
    }
    let old = path.join("sled.old");
    let io = |e| Error::storage("moving the old index aside", e);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io)?;
    }
    if path.join(SLED_DIR).exists() {
        fs::rename(path.join(SLED_DIR), &old).map_err(io)?;
    }
    let store = SledStore::open_locked(held, path, options, Some("aether reindex".into()))?;
    let report = store.open_report().clone();
    store.close()?;
    drop(store);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io)?;
    }
    Ok(report)
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Events copied (each keeps its sequence).
    pub events: u64,
    /// Snapshots copied.
    pub snapshots: u64,
    /// Where the format-1 files were kept.
    pub old_kept_at: PathBuf,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Convert the format-1 store at `path` to format 2 (`aether migrate`), crash-safely: the
/// new store is built beside it (`<path>.migrating`), checked event by event against the
/// old one, and only then swapped in; the old store is kept at `<path>.format1`. Rerun
/// after a crash, it finishes or starts over.
pub fn migrate(path: impl AsRef<Path>) -> Result<MigrateReport> {
    let path = path.as_ref().to_path_buf();
    let new_path = sibling(&path, ".migrating");
    let old_kept = sibling(&path, ".format1");
    let io = |what: &str, e: std::io::Error| Error::storage(what.to_owned(), e);
    if !path.exists() && old_kept.exists() && new_path.join(FORMAT_FILE).exists() {
        // A crash between the two renames: the new store was complete.
        fs::rename(&new_path, &path).map_err(|e| io("moving the new store into place", e))?;
        return Ok(MigrateReport {
            events: 0,
            snapshots: 0,
            old_kept_at: old_kept,
        });
    }
    if !is_format1(&path) {
        return Err(Error::invalid(
            "path",
            format!("{} holds no store of format 1", path.display()),
        ));
    }
    if old_kept.exists() {
        return Err(Error::invalid(
            "path",
            format!("{} is in the way; move it first", old_kept.display()),
        ));
    }
    if new_path.exists() {
        fs::remove_dir_all(&new_path).map_err(|e| io("removing an unfinished migration", e))?;
    }
    let mut report = MigrateReport {
        events: 0,
        snapshots: 0,
        old_kept_at: old_kept.clone(),
    };
    {
        let held = dirlock::lock_store(&path, Duration::from_secs(2))?;
        let old = legacy::LegacyStore::open_with(&held, &path, legacy::LegacyOptions::default())?;
        let new = SledStore::open_with(&new_path, Options::with_durability(Durability::Buffered))?;
        old.for_each_batch(|first, batch| {
            let last = new.save_events(&batch)?;
            if last != first + batch.len() as u64 - 1 {
                return Err(data_loss(format!(
                    "migrating: the batch at sequence {first} took sequences up to {last}"
                )));
            }
            report.events += batch.len() as u64;
            Ok(())
        })?;
        old.for_each_snapshot(|s| {
            new.save_snapshot(&s)?;
            report.snapshots += 1;
            Ok(())
        })?;
        // Check every event against the old store before anything is swapped.
        let mut from = 1;
        loop {
            let a = old.read_all(from, 10_000)?;
            let b = new.read_all(from, 10_000)?;
            if a != b {
                return Err(data_loss(format!(
                    "migrating: the new store differs from the old one from sequence {from}"
                )));
            }
            match a.last() {
                Some(l) => from = l.sequence + 1,
                None => break,
            }
        }
        new.close()?;
        old.close()?;
        drop(old);
        drop(held);
    }
    fs::rename(&path, &old_kept).map_err(|e| io("keeping the old store", e))?;
    if let Some(parent) = path.parent() {
        let _ = frame::sync_dir(parent);
    }
    fs::rename(&new_path, &path).map_err(|e| io("moving the new store into place", e))?;
    if let Some(parent) = path.parent() {
        let _ = frame::sync_dir(parent);
    }
    Ok(report)
}

/// What recovery hands the log writer: where the log continues.
struct Recovery {
    segments: Vec<SegmentFile>,
    end: u64,
    next_sequence: u64,
    report: OpenReport,
    memtable: Memtable,
}

impl SledStore {
    /// Open (or create) a store in directory `path` with default options (durable).
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore> {
        SledStore::open_with(path, Options::default())
    }

    /// Open (or create) a store in directory `path`.
    ///
    /// Recovery runs here (see the module docs). If another handle holds the store, waits
    /// for `options.lock_timeout` and then fails with [`Error::Locked`]. A store written in
    /// format 1 (before the segment log) is refused with an error naming `aether migrate`.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<SledStore> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let held = dirlock::lock_store(&path, options.lock_timeout)?;
        SledStore::open_locked(held, path, options, None)
    }

    fn open_locked(
        held: DirLock,
        path: PathBuf,
        options: Options,
        mut rebuilt: Option<String>,
    ) -> Result<SledStore> {
        if is_format1(&path) {
            return Err(Error::invalid(
                "path",
                format!(
                    "{} holds a store in format 1 (events in sled); this build reads format 2. \
                     Convert it with `aether migrate {}` (the old files are kept beside it)",
                    path.display(),
                    path.display()
                ),
            ));
        }
        let format_path = path.join(FORMAT_FILE);
        match fs::read_to_string(&format_path) {
            Ok(text) if text == FORMAT_TEXT => {}
            Ok(text) => {
                return Err(Error::invalid(
                    "path",
                    format!(
                        "{} says {:?}; this build reads format 2",
                        format_path.display(),
                        text.trim()
                    ),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !segment::list(&path.join(segment::LOG_DIR))
                    .map_err(|e| Error::storage("listing the log", e))?
                    .is_empty()
                {
                    return Err(data_loss(format!(
                        "{} is missing but the log has segments; restore it (it reads {FORMAT_TEXT:?})",
                        format_path.display()
                    )));
                }
                fs::create_dir_all(path.join(segment::LOG_DIR))
                    .and_then(|()| fs::write(&format_path, FORMAT_TEXT))
                    .and_then(|()| frame::sync_dir(&path))
                    .map_err(|e| Error::storage("creating the store", e))?;
            }
            Err(e) => {
                return Err(Error::storage(
                    format!("reading {}", format_path.display()),
                    e,
                ))
            }
        }

        let sled_dir = path.join(SLED_DIR);
        let configure = |c: sled::Config| {
            c.cache_capacity(options.cache_capacity)
                .mode(sled::Mode::HighThroughput)
                .flush_every_ms(Some(500))
        };
        let has_segments = !segment::list(&path.join(segment::LOG_DIR))
            .map_err(|e| Error::storage("listing the log", e))?
            .is_empty();
        if rebuilt.is_none() && has_segments && !sled_dir.join("db").exists() {
            rebuilt = Some(format!("{} was missing", sled_dir.display()));
        }
        let t = match dirlock::open_sled(&held, &sled_dir, configure, options.lock_timeout)
            .and_then(Trees::open)
        {
            Ok(t) => t,
            Err(Error::Corrupt { .. }) | Err(Error::Storage { .. }) if sled_dir.exists() => {
                // The index is derived: move the damaged one aside and rebuild it.
                let aside = path.join("sled.damaged");
                let _ = fs::remove_dir_all(&aside);
                fs::rename(&sled_dir, &aside)
                    .map_err(|e| Error::storage("moving a damaged index aside", e))?;
                rebuilt = Some(format!(
                    "sled could not open its files (moved to {})",
                    aside.display()
                ));
                dirlock::open_sled(&held, &sled_dir, configure, options.lock_timeout)
                    .and_then(Trees::open)?
            }
            Err(e) => return Err(e),
        };
        if let Some(format) = t.meta.get(META_FORMAT)? {
            if format.as_ref() != FORMAT_VERSION {
                return Err(Error::invalid(
                    "path",
                    format!(
                        "the index in {} is of format {:?}; this build reads {:?}",
                        sled_dir.display(),
                        String::from_utf8_lossy(&format),
                        String::from_utf8_lossy(FORMAT_VERSION)
                    ),
                ));
            }
        }
        let log_opts = LogOptions {
            segment_size: options.segment_size,
            sync: options.durability == Durability::Durable,
        };
        let mut recovery = recover(&path, &t, options.snapshot_retention as usize)?;
        recovery.report.rebuilt = rebuilt;
        let log = Log::resume(
            &path,
            &recovery.segments,
            recovery.end,
            recovery.next_sequence,
            log_opts,
        )
        .map_err(|e| Error::storage("opening the log", e))?;
        t.meta.insert(META_FORMAT, FORMAT_VERSION)?;
        t.meta
            .insert(META_DURABILITY, options.durability.as_str())?;
        t.meta.remove(META_CLEAN)?;
        let log = Arc::new(log);
        let head = recovery.next_sequence - 1;
        let (seg, end, _) = log.head();
        let ix = Arc::new(Index {
            t,
            mem: RwLock::new(std::mem::take(&mut recovery.memtable)),
            indexed: Mutex::new(Hwm {
                sequence: head,
                segment: seg,
                end,
            }),
            flushing: Mutex::new(()),
        });
        let store = SledStore {
            path,
            durability: options.durability,
            limits: options.limits,
            checkpointer: Checkpointer::start(ix.clone(), log.clone(), options.checkpoint_interval),
            ix,
            log,
            notifier: Notifier::new(options.event_stored_capacity),
            writer: Mutex::new(Writer {
                next_sequence: recovery.next_sequence,
                actors: HashMap::new(),
                last_sparse: (seg, end),
                dirty: true,
                pending_snapshot: None,
                closed: false,
            }),
            commit: GroupCommit::new(
                Position {
                    sequence: head,
                    crc: 0,
                },
                options.group_commit_window,
            ),
            snapshot_lock: Mutex::new(()),
            snapshot_retention: options.snapshot_retention as usize,
            failure: Mutex::new(None),
            shut: AtomicBool::new(false),
            report: recovery.report,
            _lock: held,
        };
        // What recovery read is made durable and the high-water mark recorded before the
        // first save; the clean mark goes until the next clean close.
        store.checkpoint_locked(&mut lock(&store.writer))?;
        Ok(store)
    }

    /// Also publish EventStored to `bus`'s `__internal__` namespace.
    pub fn with_event_bus(mut self, bus: Arc<EventBus>) -> Self {
        self.notifier.set_event_bus(bus);
        self
    }

    /// Count into shared `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.notifier.set_metrics(metrics);
        self
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability mode the store was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// What opening found and did (recovery, an index rebuilt).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The underlying sled database (the index; for tools and tests).
    pub fn sled(&self) -> &sled::Db {
        &self.ix.t.db
    }

    /// Bytes the store's files take on disk: the log (with its zero fill ahead of the
    /// writer and the spare segment) and the index.
    pub fn disk_bytes(&self) -> u64 {
        segment::dir_disk_bytes(&self.path)
    }

    fn shutdown(&self) -> Result<()> {
        if self.shut.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.checkpointer.stop();
        // Closed under the write lock, after the checkpoint: a save either finished before
        // (and the checkpoint covers it) or sees the store closed.
        let mut w = lock(&self.writer);
        let result = self.checkpoint_locked(&mut w).and_then(|()| {
            self.ix.t.meta.insert(META_CLEAN, b"1")?;
            self.ix.t.db.flush()?;
            Ok(())
        });
        w.closed = true;
        drop(w);
        self.log.stop();
        result
    }

    /// Stop the background threads and refuse writes, without a checkpoint (see `Drop`).
    fn release(&self) {
        if self.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        self.checkpointer.stop();
        lock(&self.writer).closed = true;
        self.log.stop();
    }

    /// Make everything written durable (waiting for group commits in flight), then record
    /// the high-water mark. Holds the write lock, so it covers every save returned so far.
    fn checkpoint_locked(&self, w: &mut Writer) -> Result<()> {
        self.check_failure()?;
        if self.durability == Durability::Durable {
            self.wait_durable(self.commit.last_ticket())?;
        }
        self.ix.flush(&self.log).map_err(|e| self.fail(e))?;
        self.commit.raise_visible(w.next_sequence - 1);
        w.dirty = false;
        Ok(())
    }

    /// Publish how far the index reaches (for the next flush), held back before a
    /// snapshot that is logged but not yet in sled.
    fn publish_indexed(&self, w: &Writer) {
        let (segment, end, next) = self.log.head();
        let head = Hwm {
            sequence: next - 1,
            segment,
            end,
        };
        *lock(&self.ix.indexed) = match w.pending_snapshot {
            Some(p) if (p.segment, p.end) < (head.segment, head.end) => p,
            _ => head,
        };
    }

    fn fail(&self, e: Error) -> Error {
        lock(&self.failure).get_or_insert_with(|| format!("{e}; reopen the store"));
        e
    }

    fn check_failure(&self) -> Result<()> {
        match &*lock(&self.failure) {
            Some(f) => Err(Error::Closed(f.clone())),
            None => Ok(()),
        }
    }

    fn visible(&self) -> u64 {
        self.commit.visible()
    }

    /// The actor's number, if it has one.
    fn actor_number(&self, actor_id: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .ix
            .t
            .actors
            .get(actor_id)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// The actor's state for the writer: cached, or read from sled (unknown actors get a
    /// number when they first save).
    fn writer_actor(&self, w: &mut Writer, actor_id: &str) -> Result<ActorState> {
        if let Some(s) = w.actors.get(actor_id) {
            return Ok(*s);
        }
        let state = match self.actor_number(actor_id.as_bytes())? {
            Some(number) => ActorState {
                number,
                latest: self.latest_indexed(number, u64::MAX)?,
                ticket: 0,
            },
            None => ActorState {
                number: 0,
                latest: 0,
                ticket: 0,
            },
        };
        if w.actors.len() >= ACTOR_CACHE {
            w.actors.clear();
        }
        w.actors.insert(actor_id.to_owned(), state);
        Ok(state)
    }

    /// Give a new actor its number (under the write lock).
    fn intern(&self, w: &mut Writer, actor_id: &str) -> Result<u64> {
        let number = self.ix.t.db.generate_id()? + 1;
        self.ix
            .t
            .actors
            .insert(actor_id.as_bytes(), &number.to_be_bytes())?;
        if let Some(s) = w.actors.get_mut(actor_id) {
            s.number = number;
        }
        Ok(number)
    }

    /// Latest version of actor `number` among records with first sequence <= `visible`.
    /// Memory first: its records are newer than sled's, and a flush writes sled before it
    /// empties memory, so reading in this order never misses a record.
    fn latest_indexed(&self, number: u64, visible: u64) -> Result<i64> {
        if let Some(latest) = self.ix.mem_latest(number, visible) {
            return Ok(latest);
        }
        let mut bound = index_key(number, u64::MAX);
        loop {
            let Some((key, value)) = self.ix.t.index.get_lt(bound)? else {
                return Ok(0);
            };
            let Some((actor, version)) = split_key(&key) else {
                return Err(corrupt(0, "the index".into(), "malformed index key"));
            };
            if actor != number {
                return Ok(0);
            }
            let run = decode_run(&value)
                .ok_or_else(|| corrupt(0, "the index".into(), "damaged index run"))?;
            if let Some(r) = run.iter().rev().find(|r| r.first_sequence <= visible) {
                return Ok(r.last_version);
            }
            bound = index_key(number, version);
        }
    }

    /// The seed's save: one actor's events, each version above the actor's latest, a
    /// conflict reported as [`Error::VersionConflict`], no retry detection.
    fn append(&self, events: &[Event]) -> Result<u64> {
        self.limits.check_batch(events)?;
        let entry = CommitEntry::new(&events[0].actor_id, ExpectedState::Increasing, events);
        Ok(self.write_commit(&[entry], Rule::Seed)?.last_sequence)
    }

    /// Encode `entries` into one events record at the versions they take when each
    /// entry's actor has latest version `latest[i]`.
    fn encode_commit(
        &self,
        entries: &[CommitEntry<'_>],
        latest: &[i64],
        rule: Rule,
    ) -> Result<(Vec<u8>, u32)> {
        let hint = entries.iter().map(|e| e.events.len()).sum::<usize>() * 400;
        let mut builder = EventsRecordBuilder::new(FRAME_HEADER_LEN, hint);
        let mut total = 0;
        for (entry, &l) in entries.iter().zip(latest) {
            if entry.events.is_empty() {
                continue;
            }
            builder.group(entry.actor_id.as_bytes());
            for (i, event) in entry.events.iter().enumerate() {
                let version = rule.version_at(entry, i, l);
                let len = builder.event(version, |out| event.write_json_at_version(version, out));
                self.limits.check_record_len("event", len)?;
                total += len;
            }
        }
        self.limits.check_batch_bytes(total)?;
        Ok(builder.finish())
    }

    /// Write `entries` as one record if every condition holds (see
    /// [`EventStore::commit`]); the seed's saves come through here too, under `Rule::Seed`.
    fn write_commit(&self, entries: &[CommitEntry<'_>], rule: Rule) -> Result<Committed> {
        // Encoded before the writer lock, at the versions the actors have now; an entry
        // with automatic versions whose actor moves meanwhile is encoded again under it.
        let guess: Vec<i64> = entries
            .iter()
            .map(|e| match rule {
                Rule::Expected if e.automatic() => self.get_latest_version(e.actor_id),
                _ => Ok(0),
            })
            .collect::<Result<_>>()?;
        let (mut buf, count) = self.encode_commit(entries, &guess, rule)?;
        let in_flight = self.commit.enter();
        let result = self.commit_locked(entries, rule, &guess, &mut buf, count);
        drop(in_flight);
        match result {
            Ok((committed, ticket)) => {
                if ticket > 0 {
                    self.wait_durable(ticket)?;
                }
                Ok(committed)
            }
            Err(Conflict { error, ticket }) => {
                if ticket > 0 {
                    // The versions a conflict names must be durable before they are named.
                    self.wait_durable(ticket)?;
                }
                if rule == Rule::Expected && error.is_conflict() {
                    if let Some(done) =
                        already_appended(entries, |e, first, last| self.stored_ids(e, first, last))?
                    {
                        return Ok(done);
                    }
                    self.notifier.metrics().add_conflict();
                }
                Err(error)
            }
        }
    }

    /// The actor's stored events with versions `first..=last`, compared with `entry`'s
    /// events by ID (a retry check).
    fn stored_ids(&self, entry: &CommitEntry<'_>, first: i64, last: i64) -> Result<Vec<StoredId>> {
        let mut found = Vec::with_capacity(entry.events.len());
        let range = EventRange::new(first, last);
        self.scan_actor_range(
            entry.actor_id,
            &range,
            |sequence, version, json| {
                // Between gapped versions the actor may have events that are not the
                // entry's: they compare as different.
                let same_id = entry.retry_event(version).is_some_and(|mine| {
                    match append::stored_event_id(json) {
                        Some(id) => id == append::quoted(&mine.id).as_slice(),
                        None => Event::from_json(json).is_ok_and(|e| e.id == mine.id),
                    }
                });
                found.push(StoredId {
                    version,
                    sequence,
                    same_id,
                });
                Ok(true)
            },
            |_, _, _| Ok(()),
        )?;
        Ok(found)
    }

    fn commit_locked(
        &self,
        entries: &[CommitEntry<'_>],
        rule: Rule,
        guess: &[i64],
        buf: &mut Vec<u8>,
        count: u32,
    ) -> std::result::Result<(Committed, u64), Conflict> {
        let mut w = lock(&self.writer);
        if w.closed {
            return Err(Error::Closed("the store was closed".into()).into());
        }
        self.check_failure()?;
        let states = entries
            .iter()
            .map(|e| self.writer_actor(&mut w, e.actor_id))
            .collect::<Result<Vec<_>>>()?;
        let latest: Vec<i64> = states.iter().map(|s| s.latest).collect();
        if let Some(error) = rule.conflict(entries, &latest) {
            if rule == Rule::Seed {
                self.notifier.metrics().add_conflict();
            }
            // The versions it names must be durable before they are named: wait for the
            // newest save of the actors involved.
            let ticket = states.iter().map(|s| s.ticket).max().unwrap_or(0);
            return Err(Conflict { error, ticket });
        }
        if rule == Rule::Expected
            && entries
                .iter()
                .zip(guess.iter().zip(&latest))
                .any(|(e, (g, l))| e.automatic() && g != l)
        {
            let (again, n) = self.encode_commit(entries, &latest, rule)?;
            debug_assert_eq!(n, count);
            *buf = again;
        }
        let actors = rule.committed_actors(entries, &latest);
        if count == 0 {
            // Conditions only: checked, nothing to write.
            return Ok((
                Committed {
                    status: AppendStatus::Appended,
                    first_sequence: 0,
                    last_sequence: 0,
                    actors,
                },
                0,
            ));
        }
        let first = w.next_sequence;
        let last = first + count as u64 - 1;
        record::set_first_sequence(&mut buf[FRAME_HEADER_LEN..], first);
        let written = self
            .log
            .append(buf, count)
            .map_err(|e| self.fail(Error::storage_unknown("writing the log", e)))?;
        w.next_sequence = last + 1;
        w.dirty = true;
        // From here the record is in the log: an index failure leaves it to recovery.
        let indexed = (|| -> Result<Vec<u64>> {
            if let Some(sealed) = written.rolled {
                self.ix.t.segments.insert(
                    segment_key(sealed.id),
                    &encode_sealed(sealed.len, sealed.next_base),
                )?;
            }
            let mut numbers = Vec::with_capacity(entries.len());
            for (entry, state) in entries.iter().zip(&states) {
                numbers.push(match (entry.events.is_empty(), state.number) {
                    (true, n) => n,
                    (false, 0) => self.intern(&mut w, entry.actor_id)?,
                    (false, n) => n,
                });
            }
            let mut mem = self.ix.mem.write().unwrap_or_else(|p| p.into_inner());
            for ((entry, &l), &number) in entries.iter().zip(&latest).zip(&numbers) {
                if let Some((_, newest)) = entry.versions(l) {
                    mem.actors.entry(number).or_default().push(RunRecord {
                        first_sequence: first,
                        offset: written.offset as u32,
                        last_version: newest,
                    });
                }
            }
            if w.last_sparse.0 != written.segment
                || written.offset >= w.last_sparse.1 + SPARSE_EVERY
            {
                mem.positions.push((first, written.offset as u32));
                w.last_sparse = (written.segment, written.offset);
            }
            drop(mem);
            self.publish_indexed(&w);
            Ok(numbers)
        })();
        let numbers = match indexed {
            Ok(n) => n,
            Err(e) => {
                return Err(self
                    .fail(Error::storage_unknown(
                        "indexing a save",
                        std::io::Error::other(e.to_string()),
                    ))
                    .into())
            }
        };
        self.notifier.metrics().add_events_saved(count as u64);
        let now = Timestamp::now();
        let mut notes = Vec::with_capacity(count as usize);
        for (entry, &l) in entries.iter().zip(&latest) {
            for (i, e) in entry.events.iter().enumerate() {
                notes.push(EventStored {
                    event_id: e.id.clone(),
                    actor_id: entry.actor_id.to_string(),
                    version: rule.version_at(entry, i, l),
                    timestamp: now,
                    sequence: first + notes.len() as u64,
                });
            }
        }
        let ticket = match self.durability {
            Durability::Durable => self.commit.submit(
                Vec::new(),
                notes,
                Some(Position {
                    sequence: last,
                    crc: 0,
                }),
            ),
            Durability::Buffered => {
                // Visible and announced now, in commit order (under the lock).
                self.commit.set_visible(last);
                for n in notes {
                    self.notifier.publish(n);
                }
                0
            }
        };
        for (a, number) in actors.iter().zip(
            entries
                .iter()
                .zip(&numbers)
                .filter(|(e, _)| !e.events.is_empty())
                .map(|(_, n)| *n),
        ) {
            w.actors.insert(
                a.actor_id.clone(),
                ActorState {
                    number,
                    latest: a.last_version,
                    ticket,
                },
            );
        }
        Ok((
            Committed {
                status: AppendStatus::Appended,
                first_sequence: first,
                last_sequence: last,
                actors,
            },
            ticket,
        ))
    }

    /// Block until commit ticket `ticket` is durable, leading a group commit if no one is.
    fn wait_durable(&self, ticket: u64) -> Result<()> {
        self.commit.wait_durable(ticket, self).map_err(|failed| {
            Error::storage_unknown(
                "group commit",
                std::io::Error::other(format!(
                    "syncing the log failed ({}); reopen the store",
                    failed.0
                )),
            )
        })
    }

    /// Each record of `number` whose last version is >= `from`, in order, with its first
    /// sequence and segment; stops at records past `visible`.
    fn actor_records(
        &self,
        number: u64,
        from_version: i64,
        visible: u64,
        mut each: impl FnMut(u64, Result<(Arc<Segment>, usize)>) -> Result<bool>,
    ) -> Result<()> {
        // Memory first (see `latest_indexed`); records sled also has are skipped. When
        // memory holds an older record of the actor than any this read needs, every record
        // in sled is older still, and sled is not read at all.
        let (mem, mem_covers) = self.ix.mem_records(number, from_version, visible);
        let start = index_key(number, from_version.max(0) as u64);
        let end = index_key(number, u64::MAX);
        let mut seen = 0u64;
        let found = |r: &RunRecord| {
            self.log
                .segment_for(r.first_sequence)
                .map(|s| (s, r.offset as usize))
                .ok_or_else(|| {
                    corrupt(
                        r.first_sequence,
                        "the index".into(),
                        "no log segment holds this sequence",
                    )
                })
        };
        let sled_runs = (!mem_covers).then(|| self.ix.t.index.range(start..=end));
        for item in sled_runs.into_iter().flatten() {
            let (_, value) = item?;
            let Some(run) = decode_run(&value) else {
                each(0, Err(corrupt(0, "the index".into(), "damaged index run")))?;
                continue;
            };
            // Runs never overlap (recovery drops what sled already holds), but a record
            // read twice would be an event returned twice: skip anything already seen.
            for r in run.iter() {
                if r.last_version < from_version || r.first_sequence <= seen {
                    continue;
                }
                if r.first_sequence > visible {
                    return Ok(());
                }
                seen = r.first_sequence;
                if !each(r.first_sequence, found(r))? {
                    return Ok(());
                }
            }
        }
        for r in mem.iter().filter(|r| r.first_sequence > seen) {
            if !each(r.first_sequence, found(r))? {
                break;
            }
        }
        Ok(())
    }

    /// Visit the actor's events with version >= `from_version` (visible ones), each as
    /// (sequence, version, JSON) or a damaged record (sequence, raw bytes, cause).
    fn scan_actor(
        &self,
        actor_id: &str,
        from_version: i64,
        mut good: impl FnMut(u64, i64, &[u8]) -> Result<()>,
        bad: impl FnMut(u64, &[u8], String) -> Result<()>,
    ) -> Result<()> {
        self.scan_actor_range(
            actor_id,
            &EventRange::new(from_version, i64::MAX),
            |seq, version, json| good(seq, version, json).map(|()| true),
            bad,
        )
    }

    /// Visit the actor's visible events in `range` (its direction, at most its limit),
    /// each as (sequence, version, JSON) until `good` returns `false`, or a damaged record
    /// as (sequence, raw bytes, cause).
    fn scan_actor_range(
        &self,
        actor_id: &str,
        range: &EventRange,
        mut good: impl FnMut(u64, i64, &[u8]) -> Result<bool>,
        mut bad: impl FnMut(u64, &[u8], String) -> Result<()>,
    ) -> Result<()> {
        if range.limit == 0 || range.from > range.to {
            return Ok(());
        }
        let Some(number) = self.actor_number(actor_id.as_bytes())? else {
            return Ok(());
        };
        let visible = self.visible();
        let actor = actor_id.as_bytes();
        let mut taken = 0usize;
        let mut visit = |first: u64, found: Result<(Arc<Segment>, usize)>| -> Result<bool> {
            let (seg, at) = match found {
                Ok(f) => f,
                Err(e) => {
                    bad(first, &[], e.to_string())?;
                    return Ok(true);
                }
            };
            let payload = match seg.payload_at(at) {
                Ok(p) => p,
                Err(cause) => {
                    let data = seg.bytes();
                    let raw = &data[at.min(data.len())..(at + 4096).min(data.len())];
                    bad(first, raw, cause)?;
                    return Ok(true);
                }
            };
            let record = match record::parse_header(payload) {
                Ok(r) => r,
                Err(cause) => {
                    bad(first, payload, cause.to_string())?;
                    return Ok(true);
                }
            };
            if let Record::Events { first_sequence, .. } = record {
                if first_sequence != first {
                    bad(
                        first,
                        payload,
                        format!("the index points to the record of sequence {first_sequence}"),
                    )?;
                    return Ok(true);
                }
            }
            let mut record_events = Vec::new();
            let mut past_to = false;
            for e in record.events() {
                let e = e.map_err(|c| corrupt(first, location(actor, 0), c))?;
                if e.actor_id == actor {
                    past_to |= e.version > range.to;
                    if range.contains(e.version) {
                        record_events.push((e.sequence, e.version, e.json));
                    }
                }
            }
            if range.direction == Direction::Backward {
                record_events.reverse();
            }
            for &(sequence, version, json) in &record_events {
                taken += 1;
                if !good(sequence, version, json)? || taken >= range.limit {
                    return Ok(false);
                }
            }
            // Forward, a record holding a version past `to` ends the range.
            Ok(range.direction == Direction::Backward || !past_to)
        };
        match range.direction {
            Direction::Forward => self.actor_records(number, range.from, visible, visit),
            Direction::Backward => {
                self.actor_records_back(number, range.from, range.to, visible, &mut visit)
            }
        }
    }

    /// Like [`Self::actor_records`], newest record first: each record of `number` that may
    /// hold versions in `from..=to`, through `visible`.
    fn actor_records_back(
        &self,
        number: u64,
        from_version: i64,
        to_version: i64,
        visible: u64,
        each: &mut RecordVisitor<'_>,
    ) -> Result<()> {
        // Memory's records through `visible`; when memory also holds a record older than
        // the range, sled holds only older ones still and is not read.
        let (mem, sled_older) = self.ix.mem_records(number, from_version, visible);
        let found = |r: &RunRecord| {
            self.log
                .segment_for(r.first_sequence)
                .map(|s| (s, r.offset as usize))
                .ok_or_else(|| {
                    corrupt(
                        r.first_sequence,
                        "the index".into(),
                        "no log segment holds this sequence",
                    )
                })
        };
        // Records are visited in falling sequence order; one met twice (in memory and, once
        // flushed, in sled) is skipped.
        let mut lowest = u64::MAX;
        let mut visit = |r: Option<&RunRecord>| -> Result<Option<bool>> {
            let Some(r) = r else {
                return each(0, Err(corrupt(0, "the index".into(), "damaged index run"))).map(Some);
            };
            if r.first_sequence > visible || r.first_sequence >= lowest {
                return Ok(Some(true));
            }
            if r.last_version < from_version {
                return Ok(None);
            }
            lowest = r.first_sequence;
            each(r.first_sequence, found(r)).map(Some)
        };
        for r in mem.iter().rev() {
            match visit(Some(r))? {
                Some(true) => {}
                _ => return Ok(()),
            }
        }
        if sled_older {
            return Ok(());
        }
        let start = index_key(number, from_version.max(0) as u64);
        let mut end = index_key(number, u64::MAX);
        // The run holding `to` is the first whose last version reaches it: newer runs hold
        // only versions above the range.
        if let Some((key, _)) = self
            .ix
            .t
            .index
            .range(index_key(number, to_version.max(0) as u64)..=end)
            .next()
            .transpose()?
        {
            if let Ok(k) = <[u8; 16]>::try_from(key.as_ref()) {
                end = k;
            }
        }
        for item in self.ix.t.index.range(start..=end).rev() {
            let (_, value) = item?;
            let Some(run) = decode_run(&value) else {
                visit(None)?;
                continue;
            };
            for r in run.iter().rev() {
                match visit(Some(r))? {
                    Some(true) => {}
                    _ => return Ok(()),
                }
            }
        }
        Ok(())
    }

    /// Events of the log from sequence `from` on, in order, through `visible`, each handed
    /// to `each` (sequence, actor, version, JSON) until it returns `false`.
    fn scan_log(
        &self,
        from: u64,
        mut each: impl FnMut(u64, &[u8], i64, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let visible = self.visible();
        let from = from.max(1);
        if from > visible {
            return Ok(());
        }
        let mut expected: Option<u64> = None;
        for seg in self.log.segments_from(from) {
            let data = seg.bytes();
            let mut at = SEGMENT_HEADER_LEN as usize;
            if seg.id.base <= from {
                // The nearest sparse position at or before `from` in this segment: in sled,
                // or among those not flushed yet.
                let mut best = None;
                if let Some((k, v)) = self
                    .ix
                    .t
                    .positions
                    .range(seg.id.base.to_be_bytes()..=from.to_be_bytes())
                    .next_back()
                    .transpose()?
                {
                    if let (Ok(k), Ok(off)) = (
                        <[u8; 8]>::try_from(k.as_ref()),
                        <[u8; 4]>::try_from(v.as_ref()),
                    ) {
                        best = Some((u64::from_be_bytes(k), u32::from_be_bytes(off)));
                    }
                }
                {
                    let mem = self.ix.mem.read().unwrap_or_else(|p| p.into_inner());
                    if let Some(&(seq, off)) = mem
                        .positions
                        .iter()
                        .rev()
                        .find(|(seq, _)| *seq <= from && *seq >= seg.id.base)
                    {
                        if best.is_none_or(|(b, _)| seq > b) {
                            best = Some((seq, off));
                        }
                    }
                }
                if let Some((_, off)) = best {
                    at = off as usize;
                }
            }
            let salt = seg.id.salt();
            loop {
                let payload = match frame::frame_at(data, at, salt) {
                    frame::FrameAt::Intact(p, next) => {
                        at = next;
                        p
                    }
                    frame::FrameAt::End => break,
                    frame::FrameAt::Damaged => {
                        return Err(corrupt(
                            expected.unwrap_or(from),
                            format!("offset {at} of {}", seg.path.display()),
                            "damaged frame",
                        ))
                    }
                };
                // The frame's checksum matched; the events are bounds-checked as they are
                // walked (recovery and `aether verify` check the whole structure).
                let record = record::parse_header(payload).map_err(|e| {
                    corrupt(
                        expected.unwrap_or(from),
                        format!("offset {at} of {}", seg.path.display()),
                        e,
                    )
                })?;
                let Record::Events {
                    first_sequence,
                    count,
                    ..
                } = record
                else {
                    continue;
                };
                if let Some(exp) = expected {
                    if first_sequence != exp {
                        return Err(data_loss(format!(
                            "the log jumps from sequence {} to {first_sequence} at {}",
                            exp - 1,
                            seg.path.display()
                        )));
                    }
                }
                expected = Some(first_sequence + count as u64);
                if first_sequence + (count as u64) <= from {
                    continue;
                }
                for e in record.events() {
                    let e = e.map_err(|c| corrupt(first_sequence, "the log".into(), c))?;
                    if e.sequence < from {
                        continue;
                    }
                    if e.sequence > visible || !each(e.sequence, e.actor_id, e.version, e.json)? {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Up to `limit` events from sequence `from_sequence` on, as one JSON array of the
    /// stored encodings (no decoding), and the sequence of the last one (0 if none).
    pub fn read_all_json(&self, from_sequence: u64, limit: usize) -> Result<(Vec<u8>, u64)> {
        let mut out = Vec::with_capacity(limit.min(4096) * 320 + 2);
        out.push(b'[');
        let mut n = 0;
        let mut last = 0;
        if limit > 0 {
            self.scan_log(from_sequence, |seq, _, _, json| {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(json);
                n += 1;
                last = seq;
                Ok(n < limit)
            })?;
        }
        out.push(b']');
        Ok((out, last))
    }
}

/// A failed append: the error, and for a version conflict the ticket of the save that
/// set the version it names.
struct Conflict {
    error: Error,
    ticket: u64,
}

/// Visits a record of an actor: (its first sequence, where it is), returns whether to go on.
type RecordVisitor<'a> = dyn FnMut(u64, Result<(Arc<Segment>, usize)>) -> Result<bool> + 'a;

impl From<Error> for Conflict {
    fn from(error: Error) -> Self {
        Conflict { error, ticket: 0 }
    }
}

/// The durable mode's group commit: one `fdatasync` of the log per group (the records are
/// already in the file), and announcements through the store's notifier.
impl GroupLog<EventStored> for SledStore {
    type Error = Error;

    fn write_and_sync(&self, group: &Group<EventStored>) -> Result<()> {
        let result = self.log.sync();
        match result {
            Ok(()) => {
                self.notifier
                    .metrics()
                    .add_sync(group.payloads.len() as u64);
                Ok(())
            }
            Err(e) => {
                // Before any waiter learns of the failure, so no save slips in after it.
                Err(self.fail(Error::storage_unknown("syncing the log", e)))
            }
        }
    }

    fn publish(&self, note: EventStored) {
        self.notifier.publish(note);
    }
}

/// Read the log against the index: check the sealed segments, index (in memory) what lies
/// past the high-water mark, and cut a torn tail. sled never holds a run past the durable
/// log (runs are written after the log is synced through them), so nothing in it needs
/// undoing.
fn recover(path: &Path, t: &Trees, retention: usize) -> Result<Recovery> {
    let log_dir = path.join(segment::LOG_DIR);
    let segments = segment::list(&log_dir).map_err(|e| Error::storage("listing the log", e))?;
    // The active segment is never sealed: a record of it left by a roll whose new segment
    // a crash lost (buffered mode) no longer applies.
    if let Some(last) = segments.last() {
        t.segments.remove(segment_key(last.id))?;
    }
    let mut report = OpenReport::default();
    let hwm = match t.meta.get(META_HWM)? {
        Some(v) => Some(
            Hwm::decode(&v)
                .ok_or_else(|| corrupt(0, "the index's high-water mark".into(), "malformed"))?,
        ),
        None => None,
    };
    let Some(last_file) = segments.last() else {
        if let Some(h) = hwm.filter(|h| h.sequence > 0) {
            return Err(data_loss(format!(
                "the index covers sequences through {} but the log in {} has no segments",
                h.sequence,
                log_dir.display()
            )));
        }
        return Ok(Recovery {
            segments,
            end: SEGMENT_HEADER_LEN,
            next_sequence: 1,
            report,
            memtable: Memtable::default(),
        });
    };
    if segments[0].id.base != 1 {
        return Err(data_loss(format!(
            "the log in {} starts at sequence {}: the segments before it, with sequences 1..{}, are missing",
            log_dir.display(),
            segments[0].id.base,
            segments[0].id.base
        )));
    }
    // Where indexing resumes: the high-water mark's segment and offset, if that segment is
    // still there; a store whose index is new starts from the first segment.
    let (mut start_idx, mut start_at, mut next_sequence) = (0, SEGMENT_HEADER_LEN as usize, 1);
    if let Some(h) = hwm {
        match segments.iter().position(|s| s.id == h.segment) {
            Some(i) => {
                start_idx = i;
                start_at = h.end as usize;
                next_sequence = h.sequence + 1;
            }
            None => {
                return Err(data_loss(format!(
                    "the index covers sequences through {} in segment {}, which is missing from {}",
                    h.sequence,
                    h.segment.file_name(),
                    log_dir.display()
                )))
            }
        }
    }
    // Sealed segments before the resume point: their recorded lengths and chaining.
    for (i, pair) in segments.windows(2).enumerate() {
        let (s, next) = (&pair[0], &pair[1]);
        let sealed = t
            .segments
            .get(segment_key(s.id))?
            .and_then(|v| decode_sealed(&v));
        match sealed {
            Some((len, next_base)) => {
                if s.len != len {
                    return Err(data_loss(format!(
                        "segment {} is {} bytes but was sealed at {len}: acknowledged records are missing from it",
                        s.path.display(),
                        s.len
                    )));
                }
                if next.id.base != next_base {
                    return Err(data_loss(format!(
                        "the log continues at sequence {} after {}, which ends before sequence {next_base}: segments holding sequences {next_base}..{} are missing",
                        next.id.base,
                        s.path.display(),
                        next.id.base
                    )));
                }
            }
            None if i < start_idx => {
                // Sealed but not recorded (the index was rebuilt from scratch, or a crash
                // came between the roll and the index): it is read below.
                start_idx = start_idx.min(i);
            }
            None => {}
        }
    }
    let mut last_end = start_at as u64;
    let mut memtable = Memtable::default();
    let mut records = 0u64;
    for (i, s) in segments.iter().enumerate().skip(start_idx) {
        let is_last = i + 1 == segments.len();
        let file = fs::File::open(&s.path).map_err(|e| Error::storage("reading the log", e))?;
        // SAFETY: read-only map of a file only this process writes, and not now.
        let map = if s.len == 0 {
            None
        } else {
            Some(
                unsafe { memmap2::Mmap::map(&file) }
                    .map_err(|e| Error::storage("mapping the log", e))?,
            )
        };
        let data: &[u8] = map.as_deref().unwrap_or(&[]);
        let seal = segment::read_header(data, s.id)
            .map_err(|why| data_loss(format!("segment {} {why}", s.path.display())))?;
        if is_last {
            if let Some(seal) = seal {
                // A segment is sealed only once the next one exists.
                return Err(data_loss(format!(
                    "segment {} is sealed, so the segment after it (sequences from {}) existed, but it is missing from {}",
                    s.path.display(),
                    seal.next_base,
                    log_dir.display()
                )));
            }
        }
        let from = if i == start_idx {
            start_at
        } else {
            SEGMENT_HEADER_LEN as usize
        };
        if from > data.len() {
            return Err(data_loss(format!(
                "segment {} is {} bytes, shorter than the {from} bytes the index covers",
                s.path.display(),
                data.len()
            )));
        }
        if i > start_idx && s.id.base != next_sequence {
            return Err(data_loss(format!(
                "the log continues at sequence {} in {}, after sequence {}: sequences {next_sequence}..{} are missing",
                s.id.base,
                s.path.display(),
                next_sequence - 1,
                s.id.base
            )));
        }
        let scan = segment::scan(data, s.id, from);
        let mut last_sparse: Option<usize> = None;
        for f in &scan.frames {
            let payload = f.payload(data);
            match record::parse(payload).expect("scan parsed it") {
                r @ Record::Events {
                    first_sequence,
                    count,
                    ..
                } => {
                    if first_sequence != next_sequence {
                        return Err(data_loss(format!(
                            "the log holds sequence {first_sequence} at offset {} of {} where {next_sequence} was due",
                            f.at,
                            s.path.display()
                        )));
                    }
                    index_record(t, &mut memtable, &r, f.at as u32)?;
                    if last_sparse.is_none_or(|l| f.at >= l + SPARSE_EVERY as usize) {
                        memtable.positions.push((first_sequence, f.at as u32));
                        last_sparse = Some(f.at);
                    }
                    next_sequence = first_sequence + count as u64;
                }
                Record::Snapshot {
                    actor_id,
                    version,
                    json,
                } => apply_snapshot(t, actor_id, version, json, retention)?,
            }
            records += 1;
        }
        match scan.ending {
            frame::Ending::Damaged(d) => {
                return Err(data_loss(format!(
                    "{}: {d}; acknowledged saves after it cannot be recovered",
                    s.path.display()
                )))
            }
            frame::Ending::CutShort { .. } if !is_last => {
                return Err(data_loss(format!(
                    "sealed segment {} has a damaged record at offset {}",
                    s.path.display(),
                    scan.end
                )))
            }
            frame::Ending::CutShort { .. } => {
                let dirty = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                report.torn_bytes_cut = dirty.saturating_sub(scan.end) as u64;
            }
            frame::Ending::End => {}
        }
        let mut len = s.len;
        if !is_last {
            let cut = segment::sealed_len_after(scan.end as u64);
            match seal {
                Some(seal) if seal.frames_end != scan.end as u64 => {
                    return Err(data_loss(format!(
                        "sealed segment {}: its records end at offset {} but it was sealed at {}",
                        s.path.display(),
                        scan.end,
                        seal.frames_end
                    )))
                }
                // A crash while sealing it (the next segment already existed), before or
                // after its header was rewritten: its records are all there (a cut inside
                // them shows as records ending early, above), so finish.
                _ if s.len != cut || seal.is_none() => {
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .open(&s.path)
                        .map_err(|e| Error::storage("sealing a segment", e))?;
                    segment::seal_file(
                        &f,
                        s.id,
                        segment::SealInfo {
                            frames_end: scan.end as u64,
                            next_base: next_sequence,
                        },
                    )
                    .map_err(|e| Error::storage("sealing a segment", e))?;
                    len = cut;
                }
                _ => {}
            }
            t.segments
                .insert(segment_key(s.id), &encode_sealed(len, next_sequence))?;
        } else if scan.ending == frame::Ending::End && s.len <= scan.end as u64 && s.len % 4096 != 0
        {
            // The zero fill always runs ahead of the writer to a page boundary: an active
            // segment that ends right after a record, off a page boundary, was cut.
            return Err(data_loss(format!(
                "segment {} ends right after its record at offset {} with none of the zero fill that runs ahead of the writer: it was truncated, and acknowledged records after that offset may be lost",
                s.path.display(),
                scan.end
            )));
        }
        last_end = scan.end as u64;
    }
    report.records_indexed = records;
    if let Some(h) = hwm {
        if h.sequence >= next_sequence {
            return Err(data_loss(format!(
                "the index covers sequences through {} but the log in {} ends at sequence {}",
                h.sequence,
                log_dir.display(),
                next_sequence - 1
            )));
        }
    }
    let _ = last_file;
    // A crash between a flush's runs and its high-water mark leaves runs in sled that
    // cover records read again above: keep in memory only what sled does not hold yet.
    for (&actor, recs) in memtable.actors.iter_mut() {
        if let Some((key, value)) = t.index.get_lt(index_key(actor, u64::MAX))? {
            if split_key(&key).is_some_and(|(a, _)| a == actor) {
                if let Some(last) = decode_run(&value).and_then(|r| r.last().copied()) {
                    recs.retain(|r| r.first_sequence > last.first_sequence);
                }
            }
        }
    }
    memtable.actors.retain(|_, recs| !recs.is_empty());
    Ok(Recovery {
        segments,
        end: last_end,
        next_sequence,
        report,
        memtable,
    })
}

/// Index one events record found at `offset`, in memory.
fn index_record(t: &Trees, mem: &mut Memtable, r: &Record<'_>, offset: u32) -> Result<()> {
    let Record::Events { first_sequence, .. } = *r else {
        return Ok(());
    };
    // The last version of each actor's group in the record.
    let mut lasts: Vec<(&[u8], i64)> = Vec::with_capacity(1);
    for e in r.events() {
        let e = e.map_err(|c| corrupt(first_sequence, "the log".into(), c))?;
        match lasts.iter_mut().find(|(a, _)| *a == e.actor_id) {
            Some(l) => l.1 = e.version,
            None => lasts.push((e.actor_id, e.version)),
        }
    }
    for (actor, version) in lasts {
        let number = intern_recovering(t, actor)?;
        mem.actors.entry(number).or_default().push(RunRecord {
            first_sequence,
            offset,
            last_version: version,
        });
    }
    Ok(())
}

fn intern_recovering(t: &Trees, actor: &[u8]) -> Result<u64> {
    if let Some(v) = t.actors.get(actor)? {
        if let Ok(b) = <[u8; 8]>::try_from(v.as_ref()) {
            return Ok(u64::from_be_bytes(b));
        }
    }
    let number = t.db.generate_id()? + 1;
    t.actors.insert(actor, &number.to_be_bytes())?;
    Ok(number)
}

/// Keep a snapshot found in the log if it is not older than the actor's newest, and
/// drop all but the newest `retention` of the actor's snapshots.
fn apply_snapshot(
    t: &Trees,
    actor: &[u8],
    version: i64,
    json: &[u8],
    retention: usize,
) -> Result<()> {
    let number = intern_recovering(t, actor)?;
    let current = latest_snapshot_key(t, number, i64::MAX)?;
    if current.as_ref().is_some_and(|(v, _)| *v > version) {
        return Ok(());
    }
    t.snapshots
        .insert(snapshot_key(number, version), encode_snapshot(json))?;
    let range = index_key(number, 0)..=index_key(number, u64::MAX);
    let dropped = t
        .snapshots
        .range(range)
        .rev()
        .skip(retention.max(1))
        .map(|r| r.map(|(k, _)| k))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for key in dropped {
        t.snapshots.remove(key)?;
    }
    Ok(())
}

/// The key and version of the actor's newest snapshot with `version <= at_or_below`.
fn latest_snapshot_key(
    t: &Trees,
    number: u64,
    at_or_below: i64,
) -> Result<Option<(i64, sled::IVec)>> {
    let range = snapshot_key(number, i64::MIN)..=snapshot_key(number, at_or_below);
    let Some((key, _)) = t.snapshots.range(range).next_back().transpose()? else {
        return Ok(None);
    };
    Ok(split_snapshot_key(&key).map(|(_, v)| (v, key)))
}

/// Dropping a store that was not closed releases it without the closing checkpoint (no
/// sync of the log, no index flush): nothing acknowledged is lost, since every save is in
/// the log file when it returns, and the next open indexes the log's tail. `close()`
/// checkpoints first, so the next open has nothing to recover. A drop is therefore cheap
/// wherever it happens (Go runs finalizers, which drop stores nobody closed, on one
/// goroutine).
impl Drop for SledStore {
    fn drop(&mut self) {
        self.release();
    }
}

impl EventStore for SledStore {
    fn save_event(&self, event: &Event) -> Result<u64> {
        self.append(std::slice::from_ref(event))
    }

    fn save_events(&self, events: &[Event]) -> Result<u64> {
        self.append(events)
    }

    fn get_events(&self, actor_id: &str, from_version: i64) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let actor = actor_id.as_bytes();
        self.scan_actor(
            actor_id,
            from_version,
            |seq, version, json| {
                out.push(
                    decode_event(json, actor, version)
                        .map_err(|e| corrupt(seq, location(actor, version), e))?,
                );
                Ok(())
            },
            |seq, _, cause| Err(corrupt(seq, format!("actor {actor_id:?}"), cause)),
        )?;
        Ok(out)
    }

    fn get_events_with_errors(&self, actor_id: &str, from_version: i64) -> Result<ReplayResult> {
        let mut result = ReplayResult::default();
        let actor = actor_id.as_bytes();
        let errors = std::cell::RefCell::new(Vec::new());
        self.scan_actor(
            actor_id,
            from_version,
            |seq, version, json| {
                match decode_event(json, actor, version) {
                    Ok(e) => result.events.push(e),
                    Err(cause) => errors.borrow_mut().push(ReplayError {
                        sequence: seq,
                        raw: json.to_vec(),
                        cause: format!("{}: {cause}", location(actor, version)),
                    }),
                }
                Ok(())
            },
            |seq, raw, cause| {
                errors.borrow_mut().push(ReplayError {
                    sequence: seq,
                    raw: raw.to_vec(),
                    cause: format!("actor {actor_id:?}: {cause}"),
                });
                Ok(())
            },
        )?;
        result.errors = errors.into_inner();
        self.notifier
            .metrics()
            .add_replay_errors(result.errors.len() as u64);
        Ok(result)
    }

    fn get_events_json(&self, actor_id: &str, from_version: i64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(4096);
        out.push(b'[');
        self.scan_actor(
            actor_id,
            from_version,
            |_, _, json| {
                // The frame's CRC proves these are the bytes we encoded.
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(json);
                Ok(())
            },
            |seq, _, cause| Err(corrupt(seq, format!("actor {actor_id:?}"), cause)),
        )?;
        out.push(b']');
        Ok(out)
    }

    fn get_latest_version(&self, actor_id: &str) -> Result<i64> {
        match self.actor_number(actor_id.as_bytes())? {
            Some(n) => self.latest_indexed(n, self.visible()),
            None => Ok(0),
        }
    }

    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>> {
        self.read_all_filtered(from_sequence, limit, &EventFilter::default())
    }

    fn read_all_sequenced_json(&self, from_sequence: u64, limit: usize) -> Result<Vec<u8>> {
        // The stored JSON, copied once out of the mapped log.
        self.read_all_filtered_json(from_sequence, limit, &EventFilter::default())
    }

    fn commit(&self, entries: &[CommitEntry<'_>]) -> Result<Committed> {
        append::check_commit(&self.limits, entries)?;
        self.write_commit(entries, Rule::Expected)
    }

    fn get_events_range(&self, actor_id: &str, range: &EventRange) -> Result<Vec<Event>> {
        range.check()?;
        let mut out = Vec::new();
        let actor = actor_id.as_bytes();
        self.scan_actor_range(
            actor_id,
            range,
            |seq, version, json| {
                out.push(
                    decode_event(json, actor, version)
                        .map_err(|e| corrupt(seq, location(actor, version), e))?,
                );
                Ok(true)
            },
            |seq, _, cause| Err(corrupt(seq, format!("actor {actor_id:?}"), cause)),
        )?;
        Ok(out)
    }

    fn get_events_range_json(&self, actor_id: &str, range: &EventRange) -> Result<Vec<u8>> {
        range.check()?;
        let mut out = Vec::with_capacity(1024);
        out.push(b'[');
        self.scan_actor_range(
            actor_id,
            range,
            |_, _, json| {
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(json);
                Ok(true)
            },
            |seq, _, cause| Err(corrupt(seq, format!("actor {actor_id:?}"), cause)),
        )?;
        out.push(b']');
        Ok(out)
    }

    fn read_all_filtered(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<SequencedEvent>> {
        let mut out = Vec::with_capacity(limit.min(4096));
        if limit == 0 {
            return Ok(out);
        }
        let raw = filter.raw();
        self.scan_log(from_sequence, |seq, actor, version, json| {
            if !raw.matches(actor, json) {
                return Ok(true);
            }
            let event = decode_event(json, actor, version)
                .map_err(|e| corrupt(seq, location(actor, version), e))?;
            // A record in another layout passed the raw test undecided.
            if filter.matches(&event) {
                out.push(SequencedEvent {
                    sequence: seq,
                    event,
                });
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn read_all_filtered_json(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(limit.min(4096) * 360 + 2);
        out.push(b'[');
        let mut n = 0;
        if limit > 0 {
            let raw = filter.raw();
            self.scan_log(from_sequence, |seq, actor, version, json| {
                let pass = match raw.decide(actor, json) {
                    Some(pass) => pass,
                    None => filter.matches(
                        &decode_event(json, actor, version)
                            .map_err(|e| corrupt(seq, location(actor, version), e))?,
                    ),
                };
                if !pass {
                    return Ok(true);
                }
                if n > 0 {
                    out.push(b',');
                }
                crate::store::push_sequenced_prefix(&mut out, seq);
                out.extend_from_slice(json);
                out.push(b'}');
                n += 1;
                Ok(n < limit)
            })?;
        }
        out.push(b']');
        Ok(out)
    }

    fn last_sequence(&self) -> Result<u64> {
        Ok(self.visible())
    }

    fn flush(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        if w.closed {
            return Ok(());
        }
        self.checkpoint_locked(&mut w)?;
        self.ix.t.db.flush()?;
        Ok(())
    }

    /// Checkpoint and refuse further writes. Saves still waiting for their group commit
    /// complete first. Dropping the store releases its files and lock.
    fn close(&self) -> Result<()> {
        self.shutdown()
    }

    fn event_stored_receiver(&self) -> Receiver<EventStored> {
        self.notifier.receiver()
    }

    fn metrics(&self) -> MetricsSnapshot {
        self.notifier.metrics().snapshot()
    }
}

impl SnapshotStore for SledStore {
    fn save_snapshot(&self, snapshot: &ActorSnapshot) -> Result<()> {
        self.limits.check_actor_id(&snapshot.actor_id)?;
        let json = snapshot.to_json();
        self.limits.check_record_len("snapshot", json.len())?;
        let mut buf = record::snapshot_payload(
            FRAME_HEADER_LEN,
            snapshot.actor_id.as_bytes(),
            snapshot.version,
            &json,
        );
        let _one_at_a_time = lock(&self.snapshot_lock);
        let (number, ticket) = {
            let mut w = lock(&self.writer);
            if w.closed {
                return Err(Error::Closed("the store was closed".into()));
            }
            self.check_failure()?;
            let state = self.writer_actor(&mut w, &snapshot.actor_id)?;
            let number = match state.number {
                0 => self.intern(&mut w, &snapshot.actor_id)?,
                n => n,
            };
            if let Some((current, _)) = latest_snapshot_key(&self.ix.t, number, i64::MAX)? {
                if snapshot.version < current {
                    return Err(Error::StaleSnapshot {
                        actor_id: snapshot.actor_id.clone(),
                        attempted_version: snapshot.version,
                        current_version: current,
                    });
                }
            }
            let (segment, end, next) = self.log.head();
            w.pending_snapshot = Some(Hwm {
                sequence: next - 1,
                segment,
                end,
            });
            let written = self
                .log
                .append(&mut buf, 0)
                .map_err(|e| self.fail(Error::storage_unknown("writing the log", e)))?;
            if let Some(sealed) = written.rolled {
                self.ix.t.segments.insert(
                    segment_key(sealed.id),
                    &encode_sealed(sealed.len, sealed.next_base),
                )?;
            }
            w.dirty = true;
            let ticket = match self.durability {
                Durability::Durable => self.commit.submit(Vec::new(), [], None),
                Durability::Buffered => 0,
            };
            (number, ticket)
        };
        if ticket > 0 {
            self.wait_durable(ticket)?;
        }
        // Visible only now that it is as durable as the mode promises.
        apply_snapshot(
            &self.ix.t,
            snapshot.actor_id.as_bytes(),
            snapshot.version,
            &json,
            self.snapshot_retention,
        )
        .map_err(|e| {
            self.fail(Error::storage_unknown(
                "indexing a snapshot",
                std::io::Error::other(e.to_string()),
            ))
        })?;
        let _ = number;
        let mut w = lock(&self.writer);
        w.pending_snapshot = None;
        self.publish_indexed(&w);
        drop(w);
        self.notifier.metrics().add_snapshot();
        Ok(())
    }

    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>> {
        self.get_snapshot(actor_id, i64::MAX)
    }

    fn get_snapshot(&self, actor_id: &str, at_or_below: i64) -> Result<Option<ActorSnapshot>> {
        let Some(number) = self.actor_number(actor_id.as_bytes())? else {
            return Ok(None);
        };
        let Some((_, key)) = latest_snapshot_key(&self.ix.t, number, at_or_below)? else {
            return Ok(None);
        };
        let location = format!("snapshot of actor {actor_id:?}");
        let Some(raw) = self.ix.t.snapshots.get(&key)? else {
            return Ok(None);
        };
        let json = decode_snapshot(&raw)
            .ok_or_else(|| corrupt(0, location.clone(), "snapshot checksum mismatch"))?;
        let snapshot: ActorSnapshot =
            serde_json::from_slice(json).map_err(|e| corrupt(0, location, e))?;
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ActorSnapshot;

    fn ev(actor: &str, version: i64) -> Event {
        let mut e = Event::new(format!("{actor}-{version}"), "Migrated", actor, version)
            .with_data("n", version);
        e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128);
        e
    }

    /// A format-1 store written by the format-1 code, then migrated: every event keeps its
    /// sequence and batch, snapshots come along, the old files are kept beside it.
    #[test]
    fn a_format1_store_migrates_with_its_sequences_and_is_kept_beside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let snapshot = ActorSnapshot {
            actor_id: "a".into(),
            version: 3,
            state: None,
            timestamp: Timestamp::ZERO,
        };
        let old_events = {
            let held = dirlock::lock_store(&path, Duration::from_secs(1)).unwrap();
            let old =
                legacy::LegacyStore::open_with(&held, &path, legacy::LegacyOptions::default())
                    .unwrap();
            old.save_event(&ev("a", 1)).unwrap();
            old.save_events(&[ev("b", 1), ev("b", 2), ev("b", 3)])
                .unwrap();
            old.save_events(&[ev("a", 2), ev("a", 3)]).unwrap();
            old.save_snapshot(&snapshot).unwrap();
            let all = old.read_all(1, 100).unwrap();
            old.close().unwrap();
            all
        };
        assert!(is_format1(&path));
        assert!(matches!(
            SledStore::open(&path),
            Err(Error::InvalidInput { .. })
        ));
        let report = migrate(&path).unwrap();
        assert_eq!((report.events, report.snapshots), (6, 1));
        assert!(report.old_kept_at.join("aether.wal").exists());
        let s = SledStore::open(&path).unwrap();
        assert_eq!(s.read_all(1, 100).unwrap(), old_events);
        assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snapshot));
        assert_eq!(s.save_event(&ev("a", 4)).unwrap(), 7);
        drop(s);
        // Migrating again is refused: the store is of format 2 now.
        assert!(matches!(migrate(&path), Err(Error::InvalidInput { .. })));
    }

    /// A crash between the migration's two renames: rerunning it finishes the swap.
    #[test]
    fn a_migration_cut_between_its_renames_is_finished_by_a_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let new = sibling(&path, ".migrating");
        {
            let s = SledStore::open(&new).unwrap();
            s.save_event(&ev("a", 1)).unwrap();
        }
        fs::create_dir_all(sibling(&path, ".format1")).unwrap();
        migrate(&path).unwrap();
        assert_eq!(
            SledStore::open(&path)
                .unwrap()
                .get_latest_version("a")
                .unwrap(),
            1
        );
    }
}
