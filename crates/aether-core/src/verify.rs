//! Check a sled store's files without opening it as a store: every index entry, record and
//! snapshot read straight from sled, and the write-ahead log (`aether.wal`) read by its
//! documented layout. [`SledStore::open`](crate::SledStore::open) would repair what this
//! wants to see (replay the log, roll back a cut-short batch), so nothing here goes through
//! it. This is what `aether verify` prints.
//!
//! Two passes over sled: the `sequence` index in order (gaps, entries pointing nowhere,
//! records whose sequence differs from their entry), then the `events` tree in key order
//! (records that do not decode, records no entry points to, versions whose sequences go
//! backwards); then the snapshots and the log. Conditions the next open repairs by design —
//! saves still in the log after an unclean close, or a last batch cut short by a crash —
//! are [notes](Severity::Note), not problems.
//!
//! ```
//! use aether_core::{verify, Event, EventStore, SledStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = SledStore::open(dir.path())?;
//! store.save_event(&Event::new("e1", "Opened", "account-1", 1))?;
//! drop(store);
//! let report = verify::verify(dir.path(), &verify::VerifyOptions::default())?;
//! assert!(report.is_sound(), "{:?}", report.findings);
//! assert_eq!(report.records, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event};
use crate::sled_store::layout::{self, decode_event_record, decode_sequence_entry};

/// How to verify.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Problems kept in [`VerifyReport::findings`]; all of them are counted in
    /// [`VerifyReport::problems`] (and all are passed to the callback of [`verify_sled`]).
    pub max_problems: usize,
    /// How long [`verify`] retries while another handle holds the store's lock.
    pub lock_timeout: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            max_problems: usize::MAX,
            lock_timeout: Duration::from_secs(2),
        }
    }
}

/// Whether a finding is damage or a condition the next open repairs by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Damage or an inconsistency: data may be lost or misreported.
    Problem,
    /// Expected after a crash or an unclean close; the next open deals with it.
    Note,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FindingKind {
    /// The `meta` tree names a format this build does not read.
    UnknownFormat,
    /// A `sequence` key that is not 8 bytes.
    MalformedIndexKey,
    /// A `sequence` entry that does not decode, or names a batch that does not contain it.
    MalformedIndexEntry,
    /// Sequences with no index entry.
    SequenceGap,
    /// An index entry whose record is missing.
    IndexEntryPointsNowhere,
    /// An event record that does not decode (checksum, JSON, or the wrong actor/version).
    MalformedRecord,
    /// A record carrying another sequence than its index entry.
    SequenceMismatch,
    /// An `events` key that does not split into actor and version.
    MalformedKey,
    /// An actor's versions whose sequences do not grow.
    VersionOrderBroken,
    /// A record no index entry points to.
    RecordWithNoIndexEntry,
    /// A snapshot that does not decode or holds another actor or version.
    MalformedSnapshot,
    /// `aether.wal` could not be read at all (an I/O error).
    LogUnreadable,
    /// Both header slots of the log are damaged: its checkpoint is unknown.
    LogHeaderUnreadable,
    /// One header slot of the log is damaged; the checkpoint comes from the other one.
    DamagedLogHeader,
    /// Non-zero bytes in the log where its format writes zeros (after a header slot's
    /// checkpoint, the rest of the header area, the padding after a frame): the file is
    /// damaged there, though no save is affected.
    StrayBytes,
    /// The log's checkpoint names a record sled does not hold: sled lost acknowledged data.
    CheckpointAheadOfData,
    /// Frames that are lost although they hold acknowledged saves (damage mid-log, or
    /// intact frames after the log's end).
    DamagedLog,
    /// The log's last frame is damaged, not cut short by a crash (the next open refuses the
    /// store rather than drop that save); or it may be damaged (one bit away from an intact
    /// frame where a write cut short can leave that too), or the file ends inside it: the
    /// next open drops it, losing that save if it was acknowledged.
    DamagedLogTail,
    /// The log continues past a gap after the data in sled.
    LogAheadOfData,
    /// Note: the last batch was cut short by a crash; the next open rolls it back.
    BatchCutShort,
    /// Note: the store has no `aether.wal`.
    NoLog,
    /// Note: saves are in the log but not yet in sled; the next open replays them.
    UncleanClose,
}

impl FindingKind {
    /// The kind as `aether verify` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::UnknownFormat => "unknown format",
            FindingKind::MalformedIndexKey => "malformed index key",
            FindingKind::MalformedIndexEntry => "malformed index entry",
            FindingKind::SequenceGap => "sequence gap",
            FindingKind::IndexEntryPointsNowhere => "index entry points nowhere",
            FindingKind::MalformedRecord => "malformed record",
            FindingKind::SequenceMismatch => "sequence mismatch",
            FindingKind::MalformedKey => "malformed key",
            FindingKind::VersionOrderBroken => "version order broken",
            FindingKind::RecordWithNoIndexEntry => "record with no index entry",
            FindingKind::MalformedSnapshot => "malformed snapshot",
            FindingKind::LogUnreadable => "unreadable",
            FindingKind::LogHeaderUnreadable => "unreadable header",
            FindingKind::DamagedLogHeader => "damaged header",
            FindingKind::StrayBytes => "stray bytes",
            FindingKind::CheckpointAheadOfData => "checkpoint ahead of the data",
            FindingKind::DamagedLog => "damaged log",
            FindingKind::DamagedLogTail => "damaged last frame",
            FindingKind::LogAheadOfData => "log ahead of the data",
            FindingKind::BatchCutShort => "batch cut short",
            FindingKind::NoLog => "no log",
            FindingKind::UncleanClose => "unclean close",
        }
    }

    /// Whether findings of this kind are problems or notes.
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::BatchCutShort | FindingKind::NoLog | FindingKind::UncleanClose => {
                Severity::Note
            }
            _ => Severity::Problem,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem or note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about (and whether it is a problem or a note).
    pub kind: FindingKind,
    /// Where: `sequence 3, actor "a" version 2`, `snapshot of actor "a"`, `aether.wal`, …
    pub place: String,
    /// What exactly is wrong.
    pub detail: String,
}

impl Finding {
    /// Problem or note.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// Whether it is a problem.
    pub fn is_problem(&self) -> bool {
        self.severity() == Severity::Problem
    }
}

/// As `aether verify` prints it: `problem: {place}: {kind}: {detail}` or `note: {detail}`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity() {
            Severity::Problem => {
                write!(f, "problem: {}: {}: {}", self.place, self.kind, self.detail)
            }
            Severity::Note => write!(f, "note: {}", self.detail),
        }
    }
}

/// What was found in the write-ahead log, in short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSummary {
    /// The store has no `aether.wal`.
    Missing,
    /// It could not be read, or its header is unreadable.
    Unreadable,
    /// It was read.
    Read,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Problems (at most [`VerifyOptions::max_problems`]) and notes, in the order found.
    pub findings: Vec<Finding>,
    /// Every problem found, including those not kept in `findings`.
    pub problems: u64,
    /// Entries in the `sequence` index.
    pub index_entries: u64,
    /// Records in the `events` tree.
    pub records: u64,
    /// Snapshots.
    pub snapshots: u64,
    /// The last sequence in sled's index (0 when empty or unreadable).
    pub head: u64,
    /// What became of the write-ahead log.
    pub log: LogSummary,
}

impl VerifyReport {
    /// No problems (notes are fine).
    pub fn is_sound(&self) -> bool {
        self.problems == 0
    }

    /// The problems kept.
    pub fn problem_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_problem())
    }

    /// The notes.
    pub fn notes(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.is_problem())
    }
}

/// The two passes over sled, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The `sequence` index, in order.
    SequenceIndex,
    /// The `events` tree, in key order.
    EventRecords,
}

impl Pass {
    /// A label for a progress display.
    pub fn label(self) -> &'static str {
        match self {
            Pass::SequenceIndex => "verify: sequence index",
            Pass::EventRecords => "verify: event records",
        }
    }
}

/// What [`verify_sled`] tells its callback while it works.
#[derive(Debug, Clone, Copy)]
pub enum VerifyEvent<'a> {
    /// A pass starts; `total` is the number of index entries the store should hold.
    PassStarted {
        /// Which pass.
        pass: Pass,
        /// Expected items (the last sequence).
        total: u64,
    },
    /// `done` items of the pass are checked (reported every 4,096 items).
    PassProgress {
        /// Which pass.
        pass: Pass,
        /// Items checked so far.
        done: u64,
    },
    /// The pass is over.
    PassFinished {
        /// Which pass.
        pass: Pass,
    },
    /// A problem or note, as soon as it is found (every problem, even past
    /// [`VerifyOptions::max_problems`]).
    Found(&'a Finding),
}

/// Open the sled database of the store at `path` directly (no store recovery) and verify it.
///
/// Fails with [`Error::InvalidInput`] when `path` holds no `sled/` folder, [`Error::Locked`]
/// when another handle holds the store past `options.lock_timeout`, and [`Error::Corrupt`]
/// or [`Error::Storage`] when sled cannot open or read its files (damage sled itself
/// detects). sled's own recovery may rewrite its files while opening them.
pub fn verify(path: &Path, options: &VerifyOptions) -> Result<VerifyReport> {
    let db = open_sled_direct(path, options.lock_timeout)?;
    verify_sled(&db, path, options, &mut |_| {})
}

/// Open a store's sled database without the store's recovery, retrying while it is locked.
pub fn open_sled_direct(path: &Path, lock_timeout: Duration) -> Result<sled::Db> {
    let sled_dir = path.join("sled");
    if !sled_dir.is_dir() {
        return Err(Error::invalid(
            "path",
            format!(
                "{} is not an aether store (it has no sled/ folder)",
                path.display()
            ),
        ));
    }
    let deadline = Instant::now() + lock_timeout;
    loop {
        match sled::Config::new()
            .path(&sled_dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(64 << 20)
            // Verify only reads: no background flusher.
            .flush_every_ms(None)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(sled::Error::Corruption { at, .. }) => {
                return Err(Error::Corrupt {
                    sequence: 0,
                    location: match at {
                        Some(at) => {
                            format!("sled's data files in {} (at {at})", sled_dir.display())
                        }
                        None => format!("sled's data files in {}", sled_dir.display()),
                    },
                    cause: "sled cannot open its files: they are damaged".into(),
                })
            }
            Err(sled::Error::Unsupported(why)) => {
                // sled reads its version and settings from `conf` (and its snapshot): a
                // damaged file reads as a database of another version.
                return Err(Error::Corrupt {
                    sequence: 0,
                    location: format!("sled's configuration in {}", sled_dir.display()),
                    cause: format!(
                        "sled refuses to open its files ({why}): they are damaged, or were written by another sled version"
                    ),
                });
            }
            Err(e) => {
                return Err(Error::storage(
                    format!("opening the sled database in {}", sled_dir.display()),
                    std::io::Error::other(e.to_string()),
                ))
            }
        }
    }
}

struct Collector<'a> {
    findings: Vec<Finding>,
    problems: u64,
    kept_problems: usize,
    max_problems: usize,
    events: &'a mut dyn FnMut(VerifyEvent<'_>),
}

impl Collector<'_> {
    fn add(&mut self, kind: FindingKind, place: &str, detail: impl fmt::Display) {
        let finding = Finding {
            kind,
            place: place.to_owned(),
            detail: detail.to_string(),
        };
        (self.events)(VerifyEvent::Found(&finding));
        if finding.is_problem() {
            self.problems += 1;
            if self.kept_problems >= self.max_problems {
                return;
            }
            self.kept_problems += 1;
        }
        self.findings.push(finding);
    }

    fn note(&mut self, kind: FindingKind, place: &str, detail: impl fmt::Display) {
        debug_assert_eq!(kind.severity(), Severity::Note);
        self.add(kind, place, detail);
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

/// `1234567` → `1,234,567`: how verify's messages write counts and sequences. Public so
/// that tools printing a report beside those messages (the `aether` command) write numbers
/// the same way.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const PROGRESS_EVERY: u64 = 4096;

/// Verify the store at `path` whose sled database `db` the caller opened directly (e.g.
/// with [`open_sled_direct`]). `events` hears of progress and of each finding as it is made.
/// Fails only when sled cannot read its own files; everything else is a finding.
pub fn verify_sled(
    db: &sled::Db,
    path: &Path,
    options: &VerifyOptions,
    events: &mut dyn FnMut(VerifyEvent<'_>),
) -> Result<VerifyReport> {
    let events_tree = db.open_tree(layout::TREE_EVENTS)?;
    let sequence = db.open_tree(layout::TREE_SEQUENCE)?;
    let snapshots = db.open_tree(layout::TREE_SNAPSHOTS)?;
    let meta = db.open_tree(layout::TREE_META)?;
    let mut report = Collector {
        findings: Vec::new(),
        problems: 0,
        kept_problems: 0,
        max_problems: options.max_problems,
        events,
    };

    if let Some(format) = meta.get(layout::META_FORMAT)? {
        if format.as_ref() != layout::FORMAT_VERSION {
            report.add(
                FindingKind::UnknownFormat,
                "meta",
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
                && events_tree
                    .get(entry.event_key)?
                    .and_then(|raw| decode_event_record(&raw).ok().map(|r| r.sequence))
                    == Some(last);
            if !complete && entry.batch_first <= last {
                cut_short = Some((entry.batch_first, last));
                report.note(
                    FindingKind::BatchCutShort,
                    "sequence index",
                    format!(
                        "the last batch (sequences {}..={last}) was cut short by a crash; the next open rolls it back",
                        entry.batch_first
                    ),
                );
            }
        }
    }
    let in_cut_short = |seq: u64| cut_short.is_some_and(|(a, b)| (a..=b).contains(&seq));

    // Pass 1: the sequence index.
    (report.events)(VerifyEvent::PassStarted {
        pass: Pass::SequenceIndex,
        total: head,
    });
    let mut index_entries = 0u64;
    let mut expected = 1u64;
    // Records already reported as malformed through their entry, so pass 2 stays quiet.
    let mut reported_keys: HashSet<Vec<u8>> = HashSet::new();
    for item in sequence.iter() {
        let (key, value) = item?;
        index_entries += 1;
        if index_entries % PROGRESS_EVERY == 0 {
            (report.events)(VerifyEvent::PassProgress {
                pass: Pass::SequenceIndex,
                done: index_entries,
            });
        }
        let seq = match layout::parse_sequence_key(&key) {
            Ok(s) => s,
            Err(e) => {
                report.add(FindingKind::MalformedIndexKey, "sequence index", e);
                continue;
            }
        };
        if seq == 0 {
            report.add(
                FindingKind::MalformedIndexEntry,
                "sequence 0",
                "sequences start at 1",
            );
        } else if seq > expected {
            let missing = if seq - expected == 1 {
                format!("sequence {expected} has no index entry")
            } else {
                format!("sequences {expected}..={} have no index entry", seq - 1)
            };
            report.add(
                FindingKind::SequenceGap,
                &format!("sequence {expected}"),
                missing,
            );
        }
        expected = seq + 1;
        let entry = match decode_sequence_entry(&value) {
            Ok(entry) => entry,
            Err(e) => {
                report.add(
                    FindingKind::MalformedIndexEntry,
                    &format!("sequence {seq}"),
                    e,
                );
                continue;
            }
        };
        let Ok((actor, version)) = layout::split_event_key(entry.event_key) else {
            // decode_sequence_entry checked the key; never reached.
            continue;
        };
        let here = place(Some(seq), actor, version);
        if !(entry.batch_first <= seq && seq <= entry.batch_last) {
            report.add(
                FindingKind::MalformedIndexEntry,
                &here,
                format!(
                    "it names batch {}..={}, which does not contain it",
                    entry.batch_first, entry.batch_last
                ),
            );
        }
        let Some(raw) = events_tree.get(entry.event_key)? else {
            if !in_cut_short(seq) {
                report.add(
                    FindingKind::IndexEntryPointsNowhere,
                    &here,
                    "no record at that key",
                );
            }
            continue;
        };
        match decode_event_record(&raw) {
            Err(e) => {
                report.add(FindingKind::MalformedRecord, &here, e);
                reported_keys.insert(entry.event_key.to_vec());
            }
            Ok(rec) if rec.sequence != seq => {
                report.add(
                    FindingKind::SequenceMismatch,
                    &here,
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
    (report.events)(VerifyEvent::PassFinished {
        pass: Pass::SequenceIndex,
    });

    // Pass 2: the records.
    (report.events)(VerifyEvent::PassStarted {
        pass: Pass::EventRecords,
        total: head,
    });
    let mut records = 0u64;
    let mut previous: Option<(Vec<u8>, u64, u64)> = None; // actor, version, sequence
    for item in events_tree.iter() {
        let (key, value) = item?;
        records += 1;
        if records % PROGRESS_EVERY == 0 {
            (report.events)(VerifyEvent::PassProgress {
                pass: Pass::EventRecords,
                done: records,
            });
        }
        let (actor, version) = match layout::split_event_key(&key) {
            Ok(split) => split,
            Err(e) => {
                report.add(
                    FindingKind::MalformedKey,
                    &format!("events key {}", String::from_utf8_lossy(&key)),
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
                    report.add(FindingKind::MalformedRecord, &place(seq, actor, version), e);
                }
                continue;
            }
        };
        let here = place(Some(rec.sequence), actor, version);
        if version == 0 {
            report.add(FindingKind::MalformedKey, &here, "versions start at 1");
        }
        match Event::from_json(rec.json) {
            Err(e) => report.add(FindingKind::MalformedRecord, &here, format!("JSON: {e}")),
            Ok(event) if event.actor_id.as_bytes() != actor || event.version as u64 != version => {
                report.add(
                    FindingKind::MalformedRecord,
                    &here,
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
                report.add(
                    FindingKind::VersionOrderBroken,
                    &here,
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
            report.add(
                FindingKind::RecordWithNoIndexEntry,
                &here,
                format!("no index entry of sequence {} points to it", rec.sequence),
            );
        }
    }
    (report.events)(VerifyEvent::PassFinished {
        pass: Pass::EventRecords,
    });

    // Snapshots.
    let mut snapshot_count = 0u64;
    for item in snapshots.iter() {
        let (key, value) = item?;
        snapshot_count += 1;
        let actor = actor_of_key(&key).unwrap_or(&key);
        let here = format!("snapshot of actor {:?}", String::from_utf8_lossy(actor));
        match layout::decode_snapshot_record(&value) {
            Err(e) => report.add(FindingKind::MalformedSnapshot, &here, e),
            Ok((version, json)) => match serde_json::from_slice::<ActorSnapshot>(json) {
                Err(e) => report.add(FindingKind::MalformedSnapshot, &here, format!("JSON: {e}")),
                Ok(s) if s.actor_id.as_bytes() != actor || s.version != version => report.add(
                    FindingKind::MalformedSnapshot,
                    &here,
                    format!("it holds actor {:?} version {}", s.actor_id, s.version),
                ),
                Ok(_) => {}
            },
        }
    }

    // The write-ahead log: its checkpoint must not be ahead of sled, and what it holds must
    // reach the next open intact.
    const LOG: &str = "aether.wal";
    let log = match read_wal(path) {
        Err(e) => {
            report.add(FindingKind::LogUnreadable, LOG, e);
            LogSummary::Unreadable
        }
        Ok(WalState::Missing) => {
            report.note(
                FindingKind::NoLog,
                LOG,
                "the store has no aether.wal (it was never opened by the library)",
            );
            LogSummary::Missing
        }
        Ok(WalState::Unreadable(why)) => {
            report.add(FindingKind::LogHeaderUnreadable, LOG, why);
            LogSummary::Unreadable
        }
        Ok(WalState::Read(info)) => {
            for damage in &info.header_damage {
                report.add(FindingKind::DamagedLogHeader, LOG, damage);
            }
            for stray in &info.stray_bytes {
                report.add(FindingKind::StrayBytes, LOG, stray);
            }
            if let Some(ckpt) = info.checkpoint.filter(|c| c.sequence > 0) {
                let found = match sequence.get(layout::sequence_key(ckpt.sequence))? {
                    None => None,
                    Some(entry) => match decode_sequence_entry(&entry) {
                        Err(_) => None,
                        Ok(entry) => events_tree.get(entry.event_key)?.and_then(|raw| {
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
                    report.add(
                        FindingKind::CheckpointAheadOfData,
                        LOG,
                        format!(
                            "events through sequence {} were checkpointed as durable in sled, but sled {what}; the library will refuse to open this store (data loss)",
                            ckpt.sequence
                        ),
                    );
                }
            }
            if let Some(damage) = &info.damage {
                report.add(
                    FindingKind::DamagedLog,
                    LOG,
                    format!("{damage}; acknowledged saves after it are lost"),
                );
            }
            if let Some(tail) = &info.damaged_tail {
                report.add(FindingKind::DamagedLogTail, LOG, tail);
            }
            if info.pending_frames > 0 {
                // Replay applies the frames in order, each continuing the data.
                let mut replayed = head;
                for &(first, last) in &info.pending_batches {
                    if first > replayed + 1 {
                        let detail = if replayed == head {
                            format!("the log continues at sequence {first} but sled ends at {head}")
                        } else {
                            format!(
                                "the log continues at sequence {first} after a frame ending at {replayed}"
                            )
                        };
                        report.add(FindingKind::LogAheadOfData, LOG, detail);
                        break;
                    }
                    replayed = replayed.max(last);
                }
                let (first, last) = info.pending_sequences;
                report.note(
                    FindingKind::UncleanClose,
                    LOG,
                    format!(
                        "the store was not closed cleanly: {} saves (sequences {}..={}) are in aether.wal but not yet in sled; the next open replays them",
                        thousands(info.pending_frames),
                        thousands(first),
                        thousands(last)
                    ),
                );
            }
            LogSummary::Read
        }
    };

    Ok(VerifyReport {
        findings: report.findings,
        problems: report.problems,
        index_entries,
        records,
        snapshots: snapshot_count,
        head,
        log,
    })
}

// ---------------------------------------------------------------------------------------
// The write-ahead log, read by the store's own reader (`sled_store/wal.rs`: `wal::scan`),
// so verify sees the log exactly as the next open will. On top of what recovery needs,
// verify checks the bytes the format writes as zeros, and damage the store does not refuse
// to open over (a log truncated inside its last frame, intact frames past the log's end).

use crate::sled_store::wal;
use wal::{Damage, Ending, Slot, FRAME_HEADER_LEN, RECORDS_START, SLOT_DATA_LEN, SLOT_LEN};

const WAL_FILE: &str = wal::FILE_NAME;

/// The checkpoint recorded in the log header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalCheckpoint {
    /// Bumped at each checkpoint; frames carry the generation they were written in.
    pub generation: u64,
    /// The last sequence sled held durably at the checkpoint (0: none yet).
    pub sequence: u64,
    /// The CRC of that sequence's event record.
    pub crc: u32,
}

impl From<wal::Checkpoint> for WalCheckpoint {
    fn from(c: wal::Checkpoint) -> Self {
        WalCheckpoint {
            generation: c.generation,
            sequence: c.sequence,
            crc: c.crc,
        }
    }
}

/// What the log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalState {
    /// The store has no `aether.wal` (never opened durably, or not an aether store).
    Missing,
    /// Both header slots are damaged: the checkpoint is unknown (the store refuses to open).
    Unreadable(String),
    /// The header was read.
    Read(WalInfo),
}

/// The checkpoint, the frames written after it, and any damage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WalInfo {
    /// `None` for a log that was never checkpointed (all zero).
    pub checkpoint: Option<WalCheckpoint>,
    /// Frames the next open replays: saves not yet checkpointed into sled.
    pub pending_frames: u64,
    /// Lowest and highest event sequence in those frames (0, 0 when none hold events).
    pub pending_sequences: (u64, u64),
    /// First and last sequence of each pending frame, in log order ((0, 0): a snapshot).
    pub pending_batches: Vec<(u64, u64)>,
    /// Frames lost although they hold acknowledged saves: a damaged frame followed by
    /// intact ones (the store refuses to open), or intact frames after the log's end (the
    /// store would not see them).
    pub damage: Option<String>,
    /// The log's last frame is damaged rather than cut short: it was written in full (it is
    /// one flipped bit away from an intact frame in a sector that was written, or its
    /// checksum matches over a payload that does not parse) and the store refuses to open;
    /// or it is one bit away from an intact frame in a sector that is all zero, which a
    /// write cut short could leave too, or the file ends inside it, and the store drops it
    /// as a write cut short.
    pub damaged_tail: Option<String>,
    /// A damaged header slot (the other one holds the checkpoint).
    pub header_damage: Vec<String>,
    /// Non-zero bytes where the format writes zeros: after a slot's checkpoint, in the rest
    /// of the header area, in the padding after a live frame.
    pub stray_bytes: Vec<String>,
}

/// Read the log of the store at `store_dir`.
pub fn read_wal(store_dir: &Path) -> std::io::Result<WalState> {
    let path = store_dir.join(WAL_FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WalState::Missing),
        Err(e) => return Err(e),
    };
    Ok(analyse_wal(&data, &path))
}

/// What [`read_wal`] reports for a log whose bytes are `data` (a copy of a store's
/// `aether.wal`, say); `path` names it in the messages. Reads the bytes exactly as the
/// store's recovery does.
pub fn analyse_wal(data: &[u8], path: &Path) -> WalState {
    let Ok(scan) = wal::scan(data) else {
        return WalState::Unreadable(format!(
            "{}: both header slots are damaged or in an unknown format",
            path.display()
        ));
    };
    let checkpoint = scan.checkpoint.map(WalCheckpoint::from);
    let mut info = WalInfo {
        checkpoint,
        ..WalInfo::default()
    };

    // The header area: each slot is either all zero (never written) or a valid checkpoint
    // followed by zeros; the rest of the first 4 KiB is zero.
    for (i, slot) in scan.slots.iter().enumerate() {
        let offset = i * SLOT_LEN;
        let lost = scan.lost_slot == Some(offset);
        let lost_note = || {
            format!(
                "; it held the newest checkpoint (generation {}), as the frames of that generation after it show, which the next open replays",
                scan.generation
            )
        };
        match slot {
            Slot::Valid(_) => {
                let raw = &data[offset..offset + SLOT_LEN];
                if let Some(pos) = raw[SLOT_DATA_LEN + 4..].iter().position(|&b| b != 0) {
                    info.stray_bytes.push(format!(
                        "the header slot at offset {offset} holds a non-zero byte at offset {} after its checkpoint",
                        offset + SLOT_DATA_LEN + 4 + pos
                    ));
                }
            }
            Slot::Empty if lost => info.header_damage.push(format!(
                "the header slot at offset {offset} is all zero; the checkpoint comes from the other slot{}{}",
                describe_checkpoint(checkpoint),
                lost_note()
            )),
            Slot::Empty => {}
            Slot::Damaged => info.header_damage.push(format!(
                "the header slot at offset {offset} is damaged; the checkpoint comes from the other slot{}{}",
                describe_checkpoint(checkpoint),
                if lost { lost_note() } else { String::new() }
            )),
        }
    }
    let reserved = data
        .get(2 * SLOT_LEN..(RECORDS_START as usize).min(data.len()))
        .unwrap_or_default();
    if let Some(pos) = reserved.iter().position(|&b| b != 0) {
        info.stray_bytes.push(format!(
            "the header area holds a non-zero byte at offset {}, where it must be zero",
            2 * SLOT_LEN + pos
        ));
    }

    for frame in &scan.frames {
        let pad = frame.at + FRAME_HEADER_LEN + frame.payload_len;
        if let Some(pos) = data[pad..frame.next.min(data.len())]
            .iter()
            .position(|&b| b != 0)
        {
            info.stray_bytes.push(format!(
                "the padding after the frame at offset {} holds a non-zero byte at offset {}",
                frame.at,
                pad + pos
            ));
        }
        let (first, last) = frame.sequences;
        info.pending_frames += 1;
        info.pending_batches.push((first, last));
        if first > 0 {
            let (lo, hi) = &mut info.pending_sequences;
            *lo = if *lo == 0 { first } else { (*lo).min(first) };
            *hi = (*hi).max(last);
        }
    }

    let (at, generation) = (scan.end, scan.generation);
    const REFUSES: &str = "it was damaged, not cut short by a crash; the store refuses to open rather than drop that save";
    match scan.ending {
        Ending::Damaged(Damage::BeforeIntact { at, intact_at }) => {
            info.damage = Some(format!(
                "frame at offset {at} is damaged and an intact frame follows at offset {intact_at}"
            ));
        }
        Ending::Damaged(Damage::OneBitFromIntact {
            at,
            bit_at,
            sequences,
        }) => {
            info.damaged_tail = Some(format!(
                "the last frame (offset {at}, {}) differs from an intact frame by one bit at offset {bit_at}: {REFUSES}",
                wal::describe_sequences(sequences)
            ));
        }
        Ending::Damaged(Damage::Unparseable { at }) => {
            info.damaged_tail = Some(format!(
                "the last frame (offset {at}) matches its checksum but its payload does not parse (another format version?); the store refuses to open"
            ));
        }
        Ending::CutShort {
            one_bit_from_intact: Some((bit_at, sequences)),
        } => {
            info.damaged_tail = Some(format!(
                "the last frame (offset {at}, {}) differs from an intact frame by one bit at offset {bit_at}: it was damaged, or a crash cut its write short before a sector where the frame holds a single set bit and zero fill remains; the next open drops it, so that save is lost if it was acknowledged",
                wal::describe_sequences(sequences)
            ));
        }
        Ending::CutShort {
            one_bit_from_intact: None,
        } => {
            if wal::be_u64(data, at + 8) == Some(generation)
                && wal::be_u32(data, at)
                    .is_some_and(|len| at + FRAME_HEADER_LEN + len as usize > data.len())
            {
                info.damaged_tail = Some(format!(
                    "the file ends inside its last frame (offset {at}, {} bytes long): the log was truncated; the next open drops that frame, so its save is lost if it was acknowledged",
                    data.len()
                ));
            }
        }
        Ending::End => {
            if let Some(probe) = wal::intact_frame_after(data, at, generation) {
                // Acknowledged saves follow what looks like the end of the log: the store
                // would never see them.
                info.damage = Some(format!(
                    "the log ends at offset {at} but an intact frame follows at offset {probe}"
                ));
            } else if at < data.len()
                && at + FRAME_HEADER_LEN > data.len()
                && data[at..].iter().any(|&b| b != 0)
            {
                info.damaged_tail = Some(format!(
                    "the file ends inside the header of a frame at offset {at}: the log was truncated"
                ));
            }
        }
    }
    WalState::Read(info)
}

fn describe_checkpoint(checkpoint: Option<WalCheckpoint>) -> String {
    checkpoint.map_or(String::new(), |c| {
        format!(" (generation {}, sequence {})", c.generation, c.sequence)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventStore, Options, SledStore, SnapshotStore};

    fn wait_unlocked() {
        // sled frees a closed handle's lock lazily.
        std::thread::sleep(Duration::from_millis(50));
    }

    #[test]
    fn reads_the_checkpoint_of_a_closed_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = SledStore::open(&path).unwrap();
        for v in 1..=3 {
            store.save_event(&Event::new("e", "T", "a", v)).unwrap();
        }
        store.close().unwrap();
        match read_wal(&path).unwrap() {
            WalState::Read(info) => {
                assert_eq!(info.checkpoint.unwrap().sequence, 3);
                assert_eq!(info.pending_frames, 0);
                assert!(info.damage.is_none());
                assert!(info.damaged_tail.is_none());
                assert!(info.header_damage.is_empty(), "{:?}", info.header_damage);
                assert!(info.stray_bytes.is_empty(), "{:?}", info.stray_bytes);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(read_wal(dir.path()).unwrap(), WalState::Missing);
    }

    #[test]
    fn single_bit_fix_finds_every_bit() {
        let message: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        let crc = crc32fast::hash(&message);
        assert_eq!(wal::single_bit_fix(&message, crc), None);
        for byte in 0..message.len() {
            for bit in 0..8u8 {
                let mut m = message.clone();
                m[byte] ^= 1 << bit;
                assert_eq!(wal::single_bit_fix(&m, crc), Some((byte, bit)));
            }
        }
        let mut two = message.clone();
        two[3] ^= 1;
        two[150] ^= 4;
        assert_eq!(wal::single_bit_fix(&two, crc), None);
    }

    /// A store whose log holds `n` single-event frames not yet in sled (a crash image).
    fn crashed_store(root: &Path, n: i64) -> std::path::PathBuf {
        let live = root.join("live");
        let image = root.join("image");
        let options = Options {
            wal_capacity: 64 * 1024,
            ..Options::default()
        };
        let store = SledStore::open_with(&live, options).unwrap();
        for v in 1..=n {
            store
                .save_event(&Event::new(format!("e{v}"), "T", "a", v))
                .unwrap();
        }
        store
            .save_snapshot(&ActorSnapshot {
                actor_id: "a".into(),
                version: n,
                state: None,
                timestamp: crate::Timestamp::from_unix_nanos(0),
            })
            .unwrap();
        std::fs::create_dir_all(image.join("sled")).unwrap();
        for entry in std::fs::read_dir(live.join("sled")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), image.join("sled").join(entry.file_name())).unwrap();
            }
        }
        std::fs::copy(live.join(WAL_FILE), image.join(WAL_FILE)).unwrap();
        drop(store);
        image
    }

    fn wal_info(data: &[u8]) -> WalInfo {
        match analyse_wal(data, Path::new("aether.wal")) {
            WalState::Read(info) => info,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_the_live_log_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let image = crashed_store(dir.path(), 3);
        let data = std::fs::read(image.join(WAL_FILE)).unwrap();
        let info = wal_info(&data);
        assert_eq!(info.pending_frames, 4, "{info:?}");
        assert_eq!(info.pending_batches[3], (0, 0));
        assert!(info.damage.is_none() && info.damaged_tail.is_none());
        assert!(info.header_damage.is_empty(), "{:?}", info.header_damage);
        assert!(info.stray_bytes.is_empty(), "{:?}", info.stray_bytes);
        // Every bit of every frame (headers included), and of the header slots.
        let mut end = RECORDS_START as usize;
        while let wal::FrameAt::Intact(_, next) =
            wal::frame_at(&data, end, info.checkpoint.unwrap().generation)
        {
            end = next;
        }
        let mut slots = (0..SLOT_DATA_LEN + 4).collect::<Vec<_>>();
        slots.extend(SLOT_LEN..SLOT_LEN + SLOT_DATA_LEN + 4);
        for byte in (RECORDS_START as usize..end)
            .chain(slots)
            .chain([100, 2000])
        {
            for bit in 0..8 {
                let mut d = data.clone();
                d[byte] ^= 1 << bit;
                match analyse_wal(&d, Path::new("aether.wal")) {
                    WalState::Read(i) => assert!(
                        i.damage.is_some()
                            || i.damaged_tail.is_some()
                            || !i.header_damage.is_empty()
                            || !i.stray_bytes.is_empty(),
                        "byte {byte} bit {bit}: {i:?}"
                    ),
                    WalState::Unreadable(_) => {}
                    WalState::Missing => unreachable!(),
                }
            }
        }
        // Zero fill after the live frames is not part of the log; a flip there is not
        // damage to anything (the store reads it as a write cut short).
        let mut d = data.clone();
        d[end + 40] ^= 1;
        let i = wal_info(&d);
        assert!(i.damage.is_none() && i.damaged_tail.is_none(), "{i:?}");
        assert_eq!(i.pending_frames, 4);
        // A log truncated inside its last frame.
        let i = wal_info(&data[..end - 20]);
        assert!(i.damaged_tail.is_some(), "{i:?}");
    }

    #[test]
    fn a_torn_last_write_is_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let image = crashed_store(dir.path(), 3);
        let mut data = std::fs::read(image.join(WAL_FILE)).unwrap();
        let gen = wal_info(&data).checkpoint.unwrap().generation;
        let mut last = RECORDS_START as usize;
        let mut at = RECORDS_START as usize;
        while let wal::FrameAt::Intact(_, next) = wal::frame_at(&data, at, gen) {
            last = at;
            at = next;
        }
        // The last frame's second half never reached the disk: zero fill remains.
        let mid = (last + at) / 2;
        data[mid..at].fill(0);
        let i = wal_info(&data);
        assert!(i.damage.is_none() && i.damaged_tail.is_none(), "{i:?}");
        assert_eq!(i.pending_frames, 3);
    }

    #[test]
    fn verify_reports_structured_findings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let store = SledStore::open(&path).unwrap();
            for v in 1..=3 {
                store
                    .save_event(&Event::new(format!("e{v}"), "T", "a", v))
                    .unwrap();
            }
            store.close().unwrap();
        }
        wait_unlocked();
        let report = verify(&path, &VerifyOptions::default()).unwrap();
        assert!(report.is_sound(), "{report:?}");
        assert_eq!(
            (report.index_entries, report.records, report.head),
            (3, 3, 3)
        );
        assert_eq!(report.log, LogSummary::Read);
        {
            let db = sled::open(path.join("sled")).unwrap();
            db.open_tree(layout::TREE_EVENTS)
                .unwrap()
                .insert(layout::event_key(b"a", 2), &b"garbage"[..])
                .unwrap();
            db.flush().unwrap();
        }
        wait_unlocked();
        let options = VerifyOptions {
            max_problems: 0,
            ..VerifyOptions::default()
        };
        let mut seen = Vec::new();
        let db = open_sled_direct(&path, Duration::from_secs(2)).unwrap();
        let report = verify_sled(&db, &path, &options, &mut |e| {
            if let VerifyEvent::Found(f) = e {
                seen.push(f.clone());
            }
        })
        .unwrap();
        assert_eq!(report.problems, 1);
        assert!(report.findings.is_empty(), "{report:?}");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, FindingKind::MalformedRecord);
        assert_eq!(seen[0].place, "sequence 2, actor \"a\" version 2");
        assert!(seen[0]
            .to_string()
            .starts_with("problem: sequence 2, actor \"a\" version 2: malformed record: "));
        assert!(matches!(
            verify(dir.path(), &VerifyOptions::default()),
            Err(Error::InvalidInput { .. })
        ));
    }
}
