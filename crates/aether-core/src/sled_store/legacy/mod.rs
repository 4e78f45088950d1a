//! The format-1 store (events in sled, a write-ahead log beside it), kept only so that
//! `aether migrate` can read a store written by an earlier version: open it (its recovery
//! replays the write-ahead log), then read its events in sequence order and its snapshots.
//! Nothing else opens this format.

#![allow(dead_code)]

pub(crate) mod layout;
pub(crate) mod wal;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event, EventStored, ReplayError, ReplayResult, SequencedEvent};
use crate::notify::{EventBus, Metrics, MetricsSnapshot, Notifier, DEFAULT_CHANNEL_CAPACITY};
use crate::store::{EventStore, Limits, SnapshotStore};
use crate::timestamp::Timestamp;

use super::commit::{Group, GroupCommit, GroupLog, Position};
use super::Durability;
use layout::*;
use wal::{PayloadBuilder, TreeId, Wal};

/// How to open a format-1 store.
#[derive(Debug, Clone)]
pub(crate) struct LegacyOptions {
    /// What a returned save guarantees.
    pub durability: Durability,
    /// Undrained EventStored notifications kept before new ones are dropped (and counted).
    pub event_stored_capacity: usize,
    /// sled's page cache size in bytes.
    pub cache_capacity: u64,
    /// Size limits on actor IDs, records and batches.
    pub limits: Limits,
    /// How long to retry when the store's lock is held (sled releases it lazily on close).
    pub lock_timeout: Duration,
    /// Size of the write-ahead log before a checkpoint recycles it.
    pub wal_capacity: u64,
    /// How long a group-commit leader waits for saves already in flight to join its sync.
    /// Zero by default: saves arriving while a sync runs form the next group anyway; a
    /// wait can pay off with many cores and many writers.
    pub group_commit_window: Duration,
}

impl Default for LegacyOptions {
    fn default() -> Self {
        LegacyOptions {
            durability: Durability::default(),
            event_stored_capacity: DEFAULT_CHANNEL_CAPACITY,
            cache_capacity: 256 << 20,
            limits: Limits::default(),
            lock_timeout: Duration::from_secs(2),
            wal_capacity: 16 << 20,
            // Measured on 2 cores: waiting for savers in flight lowered 8-writer throughput
            // (2.3x the 1-writer rate against 2.75x without waiting); saves that arrive
            // during a sync already form the next group.
            group_commit_window: Duration::ZERO,
        }
    }
}

/// Most actors whose latest version the writer remembers; past it the map starts over
/// (a miss costs one sled seek, so this only bounds memory).
const LATEST_CACHE_ACTORS: usize = 100_000;

/// State guarded by the write lock.
#[derive(Debug, Default)]
struct Writer {
    last_sequence: u64,
    last_crc: u32,
    /// Latest stored version of recently written actors: the version check without a
    /// sled seek (which was over a third of a buffered save). Only the writer, under
    /// this lock, changes versions, so the map cannot go stale.
    latest: HashMap<String, i64>,
    closed: bool,
}

#[derive(Debug)]
struct WalState {
    wal: Wal,
    last_sequence: u64,
    last_crc: u32,
}

/// The sled-backed store. Thread-safe: share it with `Arc`. Closing (or dropping) it
/// checkpoints; a process holds a store exclusively.
pub(crate) struct LegacyStore {
    path: PathBuf,
    sled_dir: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    sequence: sled::Tree,
    snapshots: sled::Tree,
    durability: Durability,
    limits: Limits,
    notifier: Notifier,
    writer: Mutex<Writer>,
    /// Commit tickets (one per logged payload, durable mode), the group commit, and the
    /// highest sequence readers may see (durable mode: durable; buffered: stored).
    commit: GroupCommit<EventStored>,
    wal: Mutex<WalState>,
    closed: AtomicBool,
    /// Set when a failed write may have left state the store cannot vouch for: writes are
    /// refused until the store is reopened (recovery then sorts it out).
    failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for LegacyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyStore")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_sled(held: &super::dirlock::DirLock, dir: &Path, opts: &LegacyOptions) -> Result<sled::Db> {
    let durability = opts.durability;
    let cache = opts.cache_capacity;
    super::dirlock::open_sled(
        held,
        dir,
        |c| {
            c.cache_capacity(cache)
                .mode(sled::Mode::HighThroughput)
                .flush_every_ms(match durability {
                    // The write-ahead log makes saves durable; sled is synced at checkpoints.
                    Durability::Durable => None,
                    Durability::Buffered => Some(500),
                })
        },
        opts.lock_timeout,
    )
}

/// `fsync` every file and directory under sled's folder (after `Db::flush`): sled's own
/// flush uses `sync_file_range`, which reaches neither the disk cache nor metadata.
fn sync_tree_files(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        if ty.is_dir() {
            sync_tree_files(&entry.path())?;
        } else if ty.is_file() {
            fs::File::open(entry.path())?.sync_all()?;
        }
    }
    wal::sync_dir(dir)
}

fn corrupt(sequence: u64, location: String, cause: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        sequence,
        location,
        cause: cause.to_string(),
    }
}

fn decode_event(json: &[u8], actor_id: &[u8], version: u64) -> std::result::Result<Event, String> {
    let event = Event::from_json(json).map_err(|e| e.to_string())?;
    if event.actor_id.as_bytes() != actor_id || event.version as u64 != version {
        return Err(format!(
            "record holds actor {:?} version {}, but is stored under actor {:?} version {version}",
            event.actor_id,
            event.version,
            String::from_utf8_lossy(actor_id)
        ));
    }
    Ok(event)
}

impl LegacyStore {
    /// Open (or create) a store in directory `path`.
    ///
    /// Recovery runs here: the write-ahead log is replayed into sled, a batch cut short by
    /// a crash is rolled back, and a sled that lost acknowledged data is refused with
    /// [`Error::DataLoss`]. If another handle holds the store, retries for
    /// `options.lock_timeout` and then fails with [`Error::Locked`].
    pub fn open_with(
        held: &super::dirlock::DirLock,
        path: impl AsRef<Path>,
        options: LegacyOptions,
    ) -> Result<LegacyStore> {
        let path = path.as_ref().to_path_buf();
        fs::create_dir_all(&path)
            .map_err(|e| Error::storage(format!("creating {}", path.display()), e))?;
        let sled_dir = path.join("sled");
        let db = open_sled(held, &sled_dir, &options)?;
        let events = db.open_tree(TREE_EVENTS)?;
        let sequence = db.open_tree(TREE_SEQUENCE)?;
        let snapshots = db.open_tree(TREE_SNAPSHOTS)?;
        let meta = db.open_tree(TREE_META)?;
        if let Some(format) = meta.get(META_FORMAT)? {
            if format.as_ref() != FORMAT_VERSION {
                return Err(Error::invalid(
                    "path",
                    format!(
                        "{} holds store format {:?}; this build reads format {:?}",
                        path.display(),
                        String::from_utf8_lossy(&format),
                        String::from_utf8_lossy(FORMAT_VERSION)
                    ),
                ));
            }
        }

        let (wal, recovered) = Wal::open(&path, options.wal_capacity)
            .map_err(|e| Error::storage("reading the write-ahead log", e))?;
        if let Some(damage) = recovered.damage {
            return Err(Error::DataLoss(format!(
                "the write-ahead log is damaged and acknowledged saves after the damage cannot be recovered: {damage}"
            )));
        }
        let ckpt = recovered.checkpoint;
        if ckpt.sequence > 0 {
            match record_crc_at(&sequence, &events, ckpt.sequence) {
                Ok(Some(crc)) if crc == ckpt.crc => {}
                found => {
                    let head = sequence
                        .last()?
                        .and_then(|(k, _)| parse_sequence_key(&k).ok())
                        .unwrap_or(0);
                    let what = match found {
                        Ok(Some(_)) => "holds a different record there".to_owned(),
                        Ok(None) => "has no record there".to_owned(),
                        Err(e) => format!("cannot read it ({e})"),
                    };
                    return Err(Error::DataLoss(format!(
                        "events through sequence {} were acknowledged as durable, but the sled data in {} {what} (its last sequence is {head}); the data file was damaged or truncated — restore it from a backup",
                        ckpt.sequence,
                        sled_dir.display()
                    )));
                }
            }
        }

        // Replay the log: idempotent puts, in commit order, without gaps.
        let mut head = sequence
            .last()?
            .and_then(|(k, _)| parse_sequence_key(&k).ok())
            .unwrap_or(0);
        for payload in &recovered.payloads {
            if payload.first_sequence > head + 1 {
                return Err(Error::DataLoss(format!(
                    "the write-ahead log continues at sequence {} but the store ends at {head}",
                    payload.first_sequence
                )));
            }
            for (tree, key, value) in &payload.puts {
                let tree = match tree {
                    TreeId::Events => &events,
                    TreeId::Sequence => &sequence,
                    TreeId::Snapshots => &snapshots,
                };
                tree.insert(key.as_slice(), value.as_slice())?;
            }
            head = head.max(payload.last_sequence);
        }
        recover_tail(&sequence, &events)?;
        let head = sequence
            .last()?
            .map(|(k, _)| parse_sequence_key(&k))
            .transpose()
            .map_err(|e| corrupt(0, "sequence index".into(), e))?
            .unwrap_or(0);
        let head_crc = if head > 0 {
            record_crc_at(&sequence, &events, head)
                .map_err(|e| corrupt(head, "sequence index".into(), e))?
                .ok_or_else(|| corrupt(head, "sequence index".into(), "record missing"))?
        } else {
            0
        };
        meta.insert(META_FORMAT, FORMAT_VERSION)?;
        meta.insert(META_DURABILITY, options.durability.as_str())?;

        let store = LegacyStore {
            path,
            sled_dir,
            db,
            events,
            sequence,
            snapshots,
            durability: options.durability,
            limits: options.limits,
            notifier: Notifier::new(options.event_stored_capacity),
            writer: Mutex::new(Writer {
                last_sequence: head,
                last_crc: head_crc,
                ..Writer::default()
            }),
            commit: GroupCommit::new(
                Position {
                    sequence: head,
                    crc: head_crc,
                },
                options.group_commit_window,
            ),
            wal: Mutex::new(WalState {
                wal,
                last_sequence: head,
                last_crc: head_crc,
            }),
            closed: AtomicBool::new(false),
            failure: Mutex::new(None),
        };
        if store.durability == Durability::Durable {
            lock(&store.wal)
                .wal
                .preallocate()
                .map_err(|e| Error::storage("preallocating the write-ahead log", e))?;
        }
        // Everything recovered is now made durable in sled and the log starts afresh.
        store.checkpoint()?;
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

    /// The underlying sled database (for tools and tests that inspect the layout).
    pub fn sled(&self) -> &sled::Db {
        &self.db
    }

    fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.checkpoint();
        lock(&self.writer).closed = true;
        result
    }

    /// Flush sled, sync its files, and record the checkpoint in the log header. Holds the
    /// write lock, so the checkpoint covers every save returned so far.
    fn checkpoint(&self) -> Result<()> {
        let writer = lock(&self.writer);
        self.check_failure()?;
        if self.durability == Durability::Durable {
            self.wait_durable(self.commit.last_ticket())?;
        }
        let mut wal = lock(&self.wal);
        self.checkpoint_wal(&mut wal, writer.last_sequence, writer.last_crc)?;
        wal.last_sequence = writer.last_sequence;
        wal.last_crc = writer.last_crc;
        self.commit.raise_visible(writer.last_sequence);
        Ok(())
    }

    fn checkpoint_wal(&self, wal: &mut WalState, sequence: u64, crc: u32) -> Result<()> {
        self.db.flush()?;
        sync_tree_files(&self.sled_dir).map_err(|e| Error::storage("syncing sled's files", e))?;
        wal.wal
            .checkpoint(sequence, crc)
            .map_err(|e| Error::storage("writing the log checkpoint", e))
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

    /// Latest stored version of `actor_id` among records with sequence <= `visible`.
    fn latest_version(&self, actor_id: &str, visible: u64) -> Result<i64> {
        let prefix = actor_key(actor_id.as_bytes());
        let mut bound = event_key(actor_id.as_bytes(), u64::MAX);
        loop {
            let Some((key, value)) = self.events.get_lt(&bound)? else {
                return Ok(0);
            };
            if key.len() != prefix.len() + 8 || !key.starts_with(&prefix) {
                return Ok(0);
            }
            let version = u64::from_be_bytes(key[prefix.len()..].try_into().expect("8 bytes"));
            match decode_event_record(&value) {
                Ok(rec) if rec.sequence > visible => bound = key.to_vec(),
                _ => return Ok(version as i64),
            }
        }
    }

    fn append(&self, events: &[Event]) -> Result<u64> {
        self.limits.check_batch(events)?;
        let mut records = Vec::with_capacity(events.len());
        let mut total = 0;
        for event in events {
            // Encode straight after the header: the JSON is never copied again.
            let mut record = event_record_header(384);
            event.write_json(&mut record);
            let json_len = record.len() - EVENT_HEADER_LEN;
            self.limits.check_record_len("event", json_len)?;
            total += record.len();
            records.push(record);
        }
        self.limits.check_batch_bytes(total)?;
        let in_flight = self.commit.enter();
        let result = self.append_locked(events, records);
        drop(in_flight);
        let (last_sequence, ticket) = result?;
        if self.durability == Durability::Durable {
            self.wait_durable(ticket)?;
        }
        Ok(last_sequence)
    }

    fn append_locked(&self, events: &[Event], mut records: Vec<Vec<u8>>) -> Result<(u64, u64)> {
        let actor_id = &events[0].actor_id;
        let mut writer = lock(&self.writer);
        if writer.closed {
            return Err(Error::Closed("the store was closed".into()));
        }
        self.check_failure()?;
        let current = match writer.latest.get(actor_id.as_str()) {
            Some(&v) => v,
            None => self.latest_version(actor_id, u64::MAX)?,
        };
        if events[0].version <= current {
            self.notifier.metrics().add_conflict();
            return Err(Error::VersionConflict {
                actor_id: actor_id.clone(),
                attempted_version: events[0].version,
                current_version: current,
            });
        }
        let first = writer.last_sequence + 1;
        let last = writer.last_sequence + events.len() as u64;
        let keys: Vec<Vec<u8>> = events
            .iter()
            .map(|e| event_key(actor_id.as_bytes(), e.version as u64))
            .collect();
        let mut last_crc = 0;
        for (i, record) in records.iter_mut().enumerate() {
            last_crc = seal_event_record(record, first + i as u64);
        }
        let entries: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| encode_sequence_entry(first, last, k))
            .collect();
        let durable = self.durability == Durability::Durable;
        let payload = durable.then(|| {
            let size = records.iter().map(Vec::len).sum::<usize>() * 2;
            let mut p = PayloadBuilder::new(first, last, size);
            for (i, entry) in entries.iter().enumerate() {
                p.put(TreeId::Sequence, &sequence_key(first + i as u64), entry);
            }
            for (key, record) in keys.iter().zip(&records) {
                p.put(TreeId::Events, key, record);
            }
            p.finish()
        });

        // Index entries first, then records: a crash leaves at worst a batch whose last
        // record is missing, which recovery rolls back.
        let mut written: Vec<(&sled::Tree, Vec<u8>)> = Vec::with_capacity(events.len() * 2);
        let outcome = (|| -> Result<()> {
            for (i, entry) in entries.into_iter().enumerate() {
                let key = sequence_key(first + i as u64);
                self.sequence.insert(key, entry)?;
                written.push((&self.sequence, key.to_vec()));
            }
            for (key, record) in keys.iter().zip(records) {
                self.events.insert(key.as_slice(), record)?;
                written.push((&self.events, key.clone()));
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            for (tree, key) in written.iter().rev() {
                if tree.remove(key).is_err() {
                    *lock(&self.failure) = Some(format!(
                        "a failed save could not be rolled back ({e}); reopen the store to recover"
                    ));
                    break;
                }
            }
            return Err(e);
        }
        writer.last_sequence = last;
        writer.last_crc = last_crc;
        let newest = events[events.len() - 1].version;
        match writer.latest.get_mut(actor_id.as_str()) {
            Some(v) => *v = newest,
            None => {
                if writer.latest.len() >= LATEST_CACHE_ACTORS {
                    writer.latest.clear();
                }
                writer.latest.insert(actor_id.clone(), newest);
            }
        }
        self.notifier
            .metrics()
            .add_events_saved(events.len() as u64);
        let now = Timestamp::now();
        let notes = events.iter().enumerate().map(|(i, e)| EventStored {
            event_id: e.id.clone(),
            actor_id: actor_id.clone(),
            version: e.version,
            timestamp: now,
            sequence: first + i as u64,
        });
        match payload {
            Some(payload) => {
                let position = Position {
                    sequence: last,
                    crc: last_crc,
                };
                Ok((last, self.commit.submit(payload, notes, Some(position))))
            }
            None => {
                // Buffered: visible and announced now, in commit order (under the lock).
                self.commit.set_visible(last);
                for n in notes {
                    self.notifier.publish(n);
                }
                Ok((last, 0))
            }
        }
    }

    /// Block until commit ticket `ticket` is durable, leading a group commit if no one is.
    fn wait_durable(&self, ticket: u64) -> Result<()> {
        self.commit.wait_durable(ticket, self).map_err(|failed| {
            Error::storage(
                "group commit",
                std::io::Error::other(log_failure_message(&failed.0)),
            )
        })
    }

    /// Write and sync one group to the log, checkpointing first if it would not fit.
    fn write_group(&self, group: &Group<EventStored>) -> Result<()> {
        let mut wal = lock(&self.wal);
        if wal.wal.needs_checkpoint(group.bytes, group.payloads.len()) {
            let (seq, crc) = (wal.last_sequence, wal.last_crc);
            self.checkpoint_wal(&mut wal, seq, crc)?;
        }
        wal.wal
            .append(group.payloads.iter().map(Vec::as_slice))
            .map_err(|e| Error::storage("writing the write-ahead log", e))?;
        if group.last.sequence > wal.last_sequence {
            wal.last_sequence = group.last.sequence;
            wal.last_crc = group.last.crc;
        }
        Ok(())
    }

    fn scan_actor(
        &self,
        actor_id: &str,
        from_version: i64,
        mut each: impl FnMut(
            &[u8],
            u64,
            std::result::Result<EventRecord<'_>, LayoutError>,
            &[u8],
        ) -> Result<()>,
    ) -> Result<()> {
        let start = event_key(actor_id.as_bytes(), from_version.max(0) as u64);
        let end = event_key(actor_id.as_bytes(), u64::MAX);
        let visible = self.visible();
        for item in self.events.range(start.as_slice()..=end.as_slice()) {
            let (key, value) = item?;
            let version = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"));
            let record = decode_event_record(&value);
            if let Ok(r) = &record {
                // Versions grow with sequence within an actor: the rest is newer still.
                if r.sequence > visible {
                    break;
                }
            }
            each(actor_id.as_bytes(), version, record, &value)?;
        }
        Ok(())
    }

    fn location(actor_id: &[u8], version: u64) -> String {
        format!(
            "actor {:?} version {version}",
            String::from_utf8_lossy(actor_id)
        )
    }
}

fn log_failure_message(cause: &str) -> String {
    format!("a write to the log failed ({cause}); reopen the store")
}

/// The durable mode's group commit writes through the store's log and announces through
/// its notifier.
impl GroupLog<EventStored> for LegacyStore {
    type Error = Error;

    fn write_and_sync(&self, group: &Group<EventStored>) -> Result<()> {
        let result = self.write_group(group);
        if let Err(e) = &result {
            // Before any waiter learns of the failure, so no save slips in after it.
            lock(&self.failure).get_or_insert_with(|| log_failure_message(&e.to_string()));
        }
        result
    }

    fn publish(&self, note: EventStored) {
        self.notifier.publish(note);
    }
}

/// The CRC of the record at `sequence`, `None` if the index or record is missing.
fn record_crc_at(
    sequence: &sled::Tree,
    events: &sled::Tree,
    seq: u64,
) -> std::result::Result<Option<u32>, String> {
    let Some(entry) = sequence.get(sequence_key(seq)).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let entry = decode_sequence_entry(&entry).map_err(|e| e.to_string())?;
    let Some(record) = events.get(entry.event_key).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let record = decode_event_record(&record).map_err(|e| e.to_string())?;
    Ok((record.sequence == seq).then_some(record.crc))
}

/// Roll back the last batch if a crash cut it short. sled recovers a prefix of its log
/// and a batch writes all its index entries before its records, so the batch is complete
/// exactly when its last index entry exists and its record carries that sequence.
fn recover_tail(sequence: &sled::Tree, events: &sled::Tree) -> Result<()> {
    let Some((key, value)) = sequence.last()? else {
        return Ok(());
    };
    let last = parse_sequence_key(&key).map_err(|e| corrupt(0, "sequence index".into(), e))?;
    let entry =
        decode_sequence_entry(&value).map_err(|e| corrupt(last, "sequence index".into(), e))?;
    let complete = last == entry.batch_last
        && record_crc_at(sequence, events, last)
            .map_err(|e| corrupt(last, "sequence index".into(), e))?
            .is_some();
    if complete {
        return Ok(());
    }
    for seq in entry.batch_first..=last {
        let Some(value) = sequence.remove(sequence_key(seq))? else {
            continue;
        };
        if let Ok(entry) = decode_sequence_entry(&value) {
            if let Some(record) = events.get(entry.event_key)? {
                if decode_event_record(&record).map(|r| r.sequence) == Ok(seq) {
                    events.remove(entry.event_key)?;
                }
            }
        }
    }
    Ok(())
}

impl Drop for LegacyStore {
    fn drop(&mut self) {
        // Best effort: an unclean close is recovered at the next open anyway.
        let _ = self.shutdown();
    }
}

impl EventStore for LegacyStore {
    fn save_event(&self, event: &Event) -> Result<u64> {
        self.append(std::slice::from_ref(event))
    }

    fn save_events(&self, events: &[Event]) -> Result<u64> {
        self.append(events)
    }

    fn get_events(&self, actor_id: &str, from_version: i64) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        self.scan_actor(actor_id, from_version, |actor, version, record, raw| {
            let rec = record
                .map_err(|e| corrupt(claimed_sequence(raw), Self::location(actor, version), e))?;
            let event = decode_event(rec.json, actor, version)
                .map_err(|e| corrupt(rec.sequence, Self::location(actor, version), e))?;
            out.push(event);
            Ok(())
        })?;
        Ok(out)
    }

    fn get_events_with_errors(&self, actor_id: &str, from_version: i64) -> Result<ReplayResult> {
        let mut result = ReplayResult::default();
        self.scan_actor(actor_id, from_version, |actor, version, record, raw| {
            let decoded = record
                .map_err(|e| (claimed_sequence(raw), e.to_string()))
                .and_then(|rec| {
                    decode_event(rec.json, actor, version).map_err(|e| (rec.sequence, e))
                });
            match decoded {
                Ok(event) => result.events.push(event),
                Err((sequence, cause)) => result.errors.push(ReplayError {
                    sequence,
                    raw: raw.to_vec(),
                    cause: format!("{}: {cause}", Self::location(actor, version)),
                }),
            }
            Ok(())
        })?;
        self.notifier
            .metrics()
            .add_replay_errors(result.errors.len() as u64);
        Ok(result)
    }

    fn get_events_json(&self, actor_id: &str, from_version: i64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(4096);
        out.push(b'[');
        self.scan_actor(actor_id, from_version, |actor, version, record, raw| {
            // The CRC proves these are the bytes we encoded: no need to decode them.
            let rec = record
                .map_err(|e| corrupt(claimed_sequence(raw), Self::location(actor, version), e))?;
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(rec.json);
            Ok(())
        })?;
        out.push(b']');
        Ok(out)
    }

    fn get_latest_version(&self, actor_id: &str) -> Result<i64> {
        self.latest_version(actor_id, self.visible())
    }

    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>> {
        let visible = self.visible();
        let mut out = Vec::with_capacity(limit.min(4096));
        if limit == 0 {
            return Ok(out);
        }
        for item in self.sequence.range(sequence_key(from_sequence.max(1))..) {
            let (key, value) = item?;
            let seq =
                parse_sequence_key(&key).map_err(|e| corrupt(0, "sequence index".into(), e))?;
            if seq > visible {
                break;
            }
            let entry = decode_sequence_entry(&value)
                .map_err(|e| corrupt(seq, "sequence index".into(), e))?;
            let (actor, version) = split_event_key(entry.event_key)
                .map_err(|e| corrupt(seq, "sequence index".into(), e))?;
            let location = Self::location(actor, version);
            let Some(raw) = self.events.get(entry.event_key)? else {
                return Err(corrupt(
                    seq,
                    location,
                    "index entry points to a missing record",
                ));
            };
            let rec = decode_event_record(&raw).map_err(|e| corrupt(seq, location.clone(), e))?;
            if rec.sequence != seq {
                return Err(corrupt(
                    seq,
                    location,
                    format!("record carries sequence {}", rec.sequence),
                ));
            }
            let event =
                decode_event(rec.json, actor, version).map_err(|e| corrupt(seq, location, e))?;
            out.push(SequencedEvent {
                sequence: seq,
                event,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn last_sequence(&self) -> Result<u64> {
        Ok(self.visible())
    }

    fn flush(&self) -> Result<()> {
        match self.durability {
            Durability::Durable => {
                // Every save returned so far has its ticket by now.
                self.wait_durable(self.commit.last_ticket())
            }
            Durability::Buffered => self.checkpoint(),
        }
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

impl SnapshotStore for LegacyStore {
    fn save_snapshot(&self, snapshot: &ActorSnapshot) -> Result<()> {
        self.limits.check_actor_id(&snapshot.actor_id)?;
        let json = snapshot.to_json();
        self.limits.check_record_len("snapshot", json.len())?;
        let record = encode_snapshot_record(snapshot.version, &json);
        let key = actor_key(snapshot.actor_id.as_bytes());
        let ticket = {
            let writer = lock(&self.writer);
            if writer.closed {
                return Err(Error::Closed("the store was closed".into()));
            }
            self.check_failure()?;
            if let Some(existing) = self.snapshots.get(&key)? {
                // A damaged stored snapshot is replaced rather than blocking new ones.
                if let Ok((current, _)) = decode_snapshot_record(&existing) {
                    if snapshot.version < current {
                        return Err(Error::StaleSnapshot {
                            actor_id: snapshot.actor_id.clone(),
                            attempted_version: snapshot.version,
                            current_version: current,
                        });
                    }
                }
            }
            let payload = (self.durability == Durability::Durable).then(|| {
                let mut p = PayloadBuilder::new(0, 0, key.len() + record.len());
                p.put(TreeId::Snapshots, &key, &record);
                p.finish()
            });
            self.snapshots.insert(key, record)?;
            self.notifier.metrics().add_snapshot();
            match payload {
                Some(payload) => self.commit.submit(payload, [], None),
                None => 0,
            }
        };
        if ticket > 0 {
            self.wait_durable(ticket)?;
        }
        Ok(())
    }

    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>> {
        let Some(raw) = self.snapshots.get(actor_key(actor_id.as_bytes()))? else {
            return Ok(None);
        };
        let location = format!("snapshot of actor {actor_id:?}");
        let (_, json) =
            decode_snapshot_record(&raw).map_err(|e| corrupt(0, location.clone(), e))?;
        let snapshot: ActorSnapshot =
            serde_json::from_slice(json).map_err(|e| corrupt(0, location, e))?;
        Ok(Some(snapshot))
    }
}

impl LegacyStore {
    /// Hand each stored batch, in sequence order, to `each` with its first sequence:
    /// the batches as they were saved, so a migrated store gives every event the same
    /// sequence.
    pub(crate) fn for_each_batch(
        &self,
        mut each: impl FnMut(u64, Vec<Event>) -> Result<()>,
    ) -> Result<()> {
        let mut batch: Vec<Event> = Vec::new();
        let mut batch_first = 0;
        for item in self.sequence.iter() {
            let (key, value) = item?;
            let seq =
                parse_sequence_key(&key).map_err(|e| corrupt(0, "sequence index".into(), e))?;
            let entry = decode_sequence_entry(&value)
                .map_err(|e| corrupt(seq, "sequence index".into(), e))?;
            let (actor, version) = split_event_key(entry.event_key)
                .map_err(|e| corrupt(seq, "sequence index".into(), e))?;
            let location = Self::location(actor, version);
            let raw = self
                .events
                .get(entry.event_key)?
                .ok_or_else(|| corrupt(seq, location.clone(), "record missing"))?;
            let rec = decode_event_record(&raw).map_err(|e| corrupt(seq, location.clone(), e))?;
            let event =
                decode_event(rec.json, actor, version).map_err(|e| corrupt(seq, location, e))?;
            if batch.is_empty() {
                batch_first = entry.batch_first;
            }
            batch.push(event);
            if seq == entry.batch_last {
                each(batch_first, std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            each(batch_first, batch)?;
        }
        Ok(())
    }

    /// Every stored snapshot.
    pub(crate) fn for_each_snapshot(
        &self,
        mut each: impl FnMut(ActorSnapshot) -> Result<()>,
    ) -> Result<()> {
        for item in self.snapshots.iter() {
            let (_, raw) = item?;
            let (_, json) =
                decode_snapshot_record(&raw).map_err(|e| corrupt(0, "a snapshot".into(), e))?;
            let snapshot: ActorSnapshot =
                serde_json::from_slice(json).map_err(|e| corrupt(0, "a snapshot".into(), e))?;
            each(snapshot)?;
        }
        Ok(())
    }
}
