//! Check a store's files (format 2) without opening it as a store: every segment of the
//! log read frame by frame, and the sled index checked against it in both directions.
//! [`SledStore::open`](crate::SledStore::open) would repair part of what this wants to see
//! (index the log's tail, cut a torn write, drop stale index entries), so nothing here goes
//! through it; the directory is taken through the store's own lock
//! ([`dirlock`](crate::sled_store::dirlock)), as the store takes it. This is what
//! `aether verify` prints.
//!
//! What is checked:
//! - the `FORMAT` file and the index's format;
//! - every segment: its header, its frames (with the store's forensics, so a write cut
//!   short by a crash is told apart from damage to an acknowledged record), every record's
//!   structure, every event's JSON against the actor and version it is stored under, and
//!   each actor's versions growing;
//! - the log's sequence continuity, within and across segments, and that it starts at 1;
//! - sealed segments against their lengths in the `segments` tree, and its chaining;
//! - the index against the log both ways: every `index` entry points to a record start that
//!   holds that actor's last version of the record at that first sequence, and every
//!   events record of the log has its entries; `positions` entries point to record starts;
//!   `actors` numbers are unique and name every indexed actor;
//! - the `snapshots` tree against the snapshot records of the log;
//! - the high-water mark: at a record boundary, not past the log's end.
//!
//! A finding is a [problem](Severity::Problem) or a [note](Severity::Note). Notes are what a
//! crash or kill leaves by design and the next open deals with (a torn tail, records past
//! the high-water mark not yet indexed, index entries of saves never acknowledged). Damage
//! a crash cannot leave is a problem even when it is repairable (a missing or unreadable
//! index: the next open, or `aether reindex`, rebuilds it), so a store is sound only when
//! there are no problems.
//!
//! ```
//! use aether_core::{verify, Event, EventStore, SledStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = SledStore::open(dir.path())?;
//! store.save_event(&Event::new("e1", "Opened", "account-1", 1))?;
//! store.close()?; // checkpointed: the index covers every record
//! drop(store);
//! let report = verify::verify(dir.path(), &verify::VerifyOptions::default())?;
//! assert!(report.is_sound(), "{:?}", report.findings);
//! assert_eq!((report.records, report.events, report.index_entries), (1, 1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event};
use crate::sled_store::index::{
    decode_run, decode_sealed, decode_snapshot, split_key, split_snapshot_key, Hwm, FORMAT_VERSION,
    META_CLEAN, META_FORMAT, META_HWM, TREE_ACTORS, TREE_INDEX, TREE_META, TREE_POSITIONS,
    TREE_SEGMENTS, TREE_SNAPSHOTS,
};
use crate::sled_store::record::{self, Record};
use crate::sled_store::segment::{self, SegmentFile, SegmentId, SEGMENT_HEADER_LEN};
use crate::sled_store::{dirlock, frame, is_format1, FORMAT_FILE, SLED_DIR};

/// How to verify.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Problems kept in [`VerifyReport::findings`]; all of them are counted in
    /// [`VerifyReport::problems`] (and all reach the callback of [`verify_with`]).
    pub max_problems: usize,
    /// How long to wait while another handle holds the store.
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

/// Whether a finding is damage or a condition the next open deals with by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Damage or an inconsistency: data may be lost or misreported, or the index must be
    /// rebuilt.
    Problem,
    /// What a crash or kill leaves behind; the next open deals with it.
    Note,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FindingKind {
    /// The `FORMAT` file or the index names another format, or `FORMAT` is missing.
    UnknownFormat,
    /// Segments missing from the start, the middle or the end of the log.
    MissingSegment,
    /// A segment whose header is damaged or does not match its file name.
    SegmentHeader,
    /// A damaged frame that held an acknowledged save, or intact records the log's end
    /// hides.
    DamagedRecord,
    /// The last frame is one bit away from an intact frame, where a write cut short can
    /// leave that too: the next open drops it, losing that save if it was acknowledged.
    DamagedTail,
    /// Sequences missing between two records, or a record out of order.
    SequenceGap,
    /// A sealed segment whose length differs from the one recorded when it was sealed, or
    /// that holds bytes after its last record.
    SealedLength,
    /// An event whose JSON does not decode or names another actor or version.
    MalformedEvent,
    /// An actor's versions that do not grow with the sequence.
    VersionOrder,
    /// The store has no index (`sled/`); the next open or `aether reindex` rebuilds it.
    IndexMissing,
    /// sled cannot open the index; the next open moves it aside and rebuilds it.
    IndexUnreadable,
    /// A key or value of the index that does not decode.
    MalformedIndex,
    /// An index entry that does not point to the start of a record.
    IndexPointsNowhere,
    /// An index entry whose record does not hold that actor's version as its last.
    IndexMismatch,
    /// An events record the index has no entry for.
    UnindexedRecord,
    /// An index entry for a record past the log's end.
    StaleIndexEntry,
    /// A `positions` entry that does not point to the record it names.
    Position,
    /// A snapshot that does not decode, or differs from the log's snapshot records.
    Snapshot,
    /// The index's high-water mark is past the log's end or not at a record boundary.
    HighWaterMark,
    /// Note: the store was not closed cleanly.
    UncleanClose,
    /// Note: the log ends in a write cut short by a crash.
    TornTail,
    /// Note: non-zero bytes after the log's end that are not records.
    StrayBytes,
}

impl FindingKind {
    /// The kind as `aether verify` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::UnknownFormat => "unknown format",
            FindingKind::MissingSegment => "missing segment",
            FindingKind::SegmentHeader => "damaged segment header",
            FindingKind::DamagedRecord => "damaged record",
            FindingKind::DamagedTail => "damaged last record",
            FindingKind::SequenceGap => "sequence gap",
            FindingKind::SealedLength => "sealed length",
            FindingKind::MalformedEvent => "malformed event",
            FindingKind::VersionOrder => "version order broken",
            FindingKind::IndexMissing => "index missing",
            FindingKind::IndexUnreadable => "index unreadable",
            FindingKind::MalformedIndex => "malformed index",
            FindingKind::IndexPointsNowhere => "index entry points nowhere",
            FindingKind::IndexMismatch => "index entry mismatch",
            FindingKind::UnindexedRecord => "record with no index entry",
            FindingKind::StaleIndexEntry => "index entry past the log's end",
            FindingKind::Position => "position entry wrong",
            FindingKind::Snapshot => "snapshot",
            FindingKind::HighWaterMark => "high-water mark",
            FindingKind::UncleanClose => "unclean close",
            FindingKind::TornTail => "torn tail",
            FindingKind::StrayBytes => "stray bytes",
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
    /// Problem or note.
    pub severity: Severity,
    /// What it is about.
    pub kind: FindingKind,
    /// Where: `log/00000000000000000001.seg`, `sequence 3, actor "a" version 2`, `index`…
    pub place: String,
    /// What exactly is wrong.
    pub detail: String,
}

impl Finding {
    /// Whether it is a problem.
    pub fn is_problem(&self) -> bool {
        self.severity == Severity::Problem
    }
}

/// As `aether verify` prints it: `problem: {place}: {kind}: {detail}` or
/// `note: {place}: {detail}`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Problem => {
                write!(f, "problem: {}: {}: {}", self.place, self.kind, self.detail)
            }
            Severity::Note => write!(f, "note: {}: {}", self.place, self.detail),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Problems (at most [`VerifyOptions::max_problems`]) and notes, in the order found.
    pub findings: Vec<Finding>,
    /// Every problem found, including those not kept in `findings`.
    pub problems: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes of the segment files (their apparent length, zero fill included).
    pub log_bytes: u64,
    /// Intact records read from the log (events and snapshot records).
    pub records: u64,
    /// Events in those records.
    pub events: u64,
    /// The last event sequence in the log (0 when it holds none).
    pub last_sequence: u64,
    /// Entries of the `index` tree.
    pub index_entries: u64,
    /// Entries of the `snapshots` tree.
    pub snapshots: u64,
    /// Whether the index was there and sled could open it.
    pub index_read: bool,
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

/// The passes of [`verify_with`], for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The segments, in bytes.
    Log,
    /// The index entries.
    Index,
}

impl Pass {
    /// A label for a progress display.
    pub fn label(self) -> &'static str {
        match self {
            Pass::Log => "verify: log segments (bytes)",
            Pass::Index => "verify: index entries",
        }
    }
}

/// What [`verify_with`] tells its callback while it works.
#[derive(Debug, Clone, Copy)]
pub enum VerifyEvent<'a> {
    /// A pass starts; `total` is the work expected (bytes, or index entries).
    PassStarted { pass: Pass, total: u64 },
    /// `done` units of the pass are checked.
    PassProgress { pass: Pass, done: u64 },
    /// The pass is over.
    PassFinished { pass: Pass },
    /// A problem or note, as soon as it is found (every problem, even past
    /// [`VerifyOptions::max_problems`]).
    Found(&'a Finding),
}

/// `1234567` → `1,234,567`: how findings and the CLI write counts.
#[doc(hidden)]
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

/// Verify the store at `path`.
///
/// Fails with [`Error::InvalidInput`] when `path` holds no store (or one in format 1, naming
/// `aether migrate`), [`Error::Locked`] when another handle holds it past
/// `options.lock_timeout`, and [`Error::Storage`] when its files cannot be read. Everything
/// wrong inside the files is a finding.
pub fn verify(path: &Path, options: &VerifyOptions) -> Result<VerifyReport> {
    verify_with(path, options, &mut |_| {})
}

/// [`verify`], telling `events` of progress and of each finding as it is made.
pub fn verify_with(
    path: &Path,
    options: &VerifyOptions,
    events: &mut dyn FnMut(VerifyEvent<'_>),
) -> Result<VerifyReport> {
    require_store(path)?;
    let held = dirlock::lock_store(path, options.lock_timeout)?;
    let mut v = Verifier {
        options,
        events,
        report: VerifyReport::default(),
    };
    v.check_format_file(path);
    let index = v.open_index(&held, path, options.lock_timeout)?;
    let state = match &index {
        Some(t) => v.read_meta(t)?,
        None => IndexState::default(),
    };
    let log = v.read_log(path, &state)?;
    if let Some(t) = &index {
        v.check_index(t, &log, &state)?;
    }
    drop(index);
    drop(held);
    Ok(v.report)
}

/// Refuse a path that holds no format-2 store, without creating anything.
fn require_store(path: &Path) -> Result<()> {
    if is_format1(path) {
        return Err(Error::invalid(
            "path",
            format!(
                "{} holds a store in format 1 (events in sled); convert it with `aether migrate {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    let has_segments = segment::list(&path.join(segment::LOG_DIR))
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    if !path.join(FORMAT_FILE).is_file() && !has_segments {
        return Err(Error::invalid(
            "path",
            format!(
                "{} is not an aether store (it has no {FORMAT_FILE} file and no log)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The sled trees verify reads.
struct Trees {
    _db: sled::Db,
    actors: sled::Tree,
    index: sled::Tree,
    positions: sled::Tree,
    snapshots: sled::Tree,
    segments: sled::Tree,
    meta: sled::Tree,
}

/// What the index's `meta` tree says.
#[derive(Debug, Default)]
struct IndexState {
    clean: bool,
    hwm: Option<Hwm>,
}

/// One events record of the log.
#[derive(Debug, Clone, Copy)]
struct RecordInfo {
    first_sequence: u64,
    /// Index into `Log::segments`.
    segment: u32,
    offset: u64,
    /// Its actors' last versions: `Log::lasts[lasts.0..lasts.1]`.
    lasts: (u32, u32),
}

/// A snapshot record of the log: the newest of its actor.
#[derive(Debug, Clone, Copy)]
struct SnapshotInfo {
    version: i64,
    past_hwm: bool,
}

/// What reading the log found.
#[derive(Debug, Default)]
struct Log {
    segments: Vec<SegmentFile>,
    /// Events records in log order (their first sequences grow).
    records: Vec<RecordInfo>,
    /// (actor, last version in the record, seen by an index entry).
    lasts: Vec<(u32, i64, bool)>,
    actor_numbers: HashMap<Vec<u8>, u32>,
    actor_names: Vec<Vec<u8>>,
    /// The newest snapshot record of each actor.
    snapshots: HashMap<u32, SnapshotInfo>,
    /// The checksum of every snapshot record's JSON, by (actor, version): the index keeps
    /// a history of each actor's newest snapshots.
    snapshot_crcs: HashMap<(u32, i64), u32>,
    /// The sequence after the log's last event.
    next_sequence: u64,
}

impl Log {
    fn actor(&mut self, name: &[u8]) -> u32 {
        if let Some(&n) = self.actor_numbers.get(name) {
            return n;
        }
        let n = self.actor_names.len() as u32;
        self.actor_names.push(name.to_vec());
        self.actor_numbers.insert(name.to_vec(), n);
        n
    }

    /// The segment the store reads a record with first sequence `sequence` from: the last
    /// one whose base is not after it.
    fn segment_for(&self, sequence: u64) -> Option<u32> {
        let i = self.segments.partition_point(|s| {
            s.id <= SegmentId {
                base: sequence,
                gen: u32::MAX,
            }
        });
        i.checked_sub(1).map(|i| i as u32)
    }

    fn record(&self, first_sequence: u64) -> Option<usize> {
        self.records
            .binary_search_by_key(&first_sequence, |r| r.first_sequence)
            .ok()
    }
}

fn actor_text(actor: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(actor))
}

fn event_place(sequence: u64, actor: &[u8], version: i64) -> String {
    format!(
        "sequence {sequence}, actor {} version {version}",
        actor_text(actor)
    )
}

fn segment_place(id: SegmentId) -> String {
    format!("{}/{}", segment::LOG_DIR, id.file_name())
}

const PROGRESS_EVERY: u64 = 4096;

struct Verifier<'a> {
    options: &'a VerifyOptions,
    events: &'a mut dyn FnMut(VerifyEvent<'_>),
    report: VerifyReport,
}

impl Verifier<'_> {
    fn found(
        &mut self,
        severity: Severity,
        kind: FindingKind,
        place: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let finding = Finding {
            severity,
            kind,
            place: place.into(),
            detail: detail.into(),
        };
        (self.events)(VerifyEvent::Found(&finding));
        if severity == Severity::Problem {
            self.report.problems += 1;
            let kept = self.report.problem_findings().count();
            if kept >= self.options.max_problems {
                return;
            }
        }
        self.report.findings.push(finding);
    }

    fn problem(&mut self, kind: FindingKind, place: impl Into<String>, detail: impl Into<String>) {
        self.found(Severity::Problem, kind, place, detail);
    }

    fn check_format_file(&mut self, path: &Path) {
        let expected = format!(
            "aether store format {}\n",
            String::from_utf8_lossy(FORMAT_VERSION)
        );
        match std::fs::read_to_string(path.join(FORMAT_FILE)) {
            Ok(text) if text == expected => {}
            Ok(text) => self.problem(
                FindingKind::UnknownFormat,
                FORMAT_FILE,
                format!("it says {:?}; this build reads {:?}", text.trim(), expected.trim()),
            ),
            Err(e) => self.problem(
                FindingKind::UnknownFormat,
                FORMAT_FILE,
                format!("cannot be read ({e}); the log has segments, so the next open refuses the store until it is restored (it reads {expected:?})"),
            ),
        }
    }

    /// Open sled through the store's routine; `None` (a finding) when it is missing or
    /// sled cannot open it.
    fn open_index(
        &mut self,
        held: &dirlock::DirLock,
        path: &Path,
        timeout: Duration,
    ) -> Result<Option<Trees>> {
        let sled_dir = path.join(SLED_DIR);
        if !sled_dir.join("db").is_file() {
            self.problem(
                FindingKind::IndexMissing,
                SLED_DIR,
                "the store has no index; the next open, or `aether reindex`, rebuilds it from the log",
            );
            return Ok(None);
        }
        // Verify only reads: no background flusher.
        let opened = dirlock::open_sled(
            held,
            &sled_dir,
            |c| c.cache_capacity(64 << 20).flush_every_ms(None),
            timeout,
        )
        .and_then(|db| {
            Ok(Trees {
                actors: db.open_tree(TREE_ACTORS)?,
                index: db.open_tree(TREE_INDEX)?,
                positions: db.open_tree(TREE_POSITIONS)?,
                snapshots: db.open_tree(TREE_SNAPSHOTS)?,
                segments: db.open_tree(TREE_SEGMENTS)?,
                meta: db.open_tree(TREE_META)?,
                _db: db,
            })
        });
        match opened {
            Ok(t) => {
                self.report.index_read = true;
                Ok(Some(t))
            }
            Err(e @ Error::Locked { .. }) => Err(e),
            Err(e) => {
                self.problem(
                    FindingKind::IndexUnreadable,
                    SLED_DIR,
                    format!("sled cannot open the index ({e}); the next open moves it aside and rebuilds it from the log, as `aether reindex` does"),
                );
                Ok(None)
            }
        }
    }

    fn read_meta(&mut self, t: &Trees) -> Result<IndexState> {
        let mut state = IndexState {
            clean: t.meta.get(META_CLEAN)?.is_some(),
            hwm: None,
        };
        if let Some(format) = t.meta.get(META_FORMAT)? {
            if format.as_ref() != FORMAT_VERSION {
                self.problem(
                    FindingKind::UnknownFormat,
                    "index",
                    format!(
                        "the index says format {:?}; this build reads {:?}",
                        String::from_utf8_lossy(&format),
                        String::from_utf8_lossy(FORMAT_VERSION)
                    ),
                );
            }
        }
        if let Some(v) = t.meta.get(META_HWM)? {
            match Hwm::decode(&v) {
                Some(h) => state.hwm = Some(h),
                None => self.problem(
                    FindingKind::MalformedIndex,
                    "index meta",
                    "the high-water mark does not decode",
                ),
            }
        }
        if !state.clean {
            self.found(
                Severity::Note,
                FindingKind::UncleanClose,
                "index",
                "the store was not closed cleanly (or its process was killed); the next open reads the log past the index's high-water mark",
            );
        }
        Ok(state)
    }

    /// Whether a finding about the log past the high-water mark is what an unclean close
    /// leaves (a note) or damage (a problem).
    fn severity_past_hwm(state: &IndexState, past_hwm: bool) -> Severity {
        if past_hwm && !state.clean {
            Severity::Note
        } else {
            Severity::Problem
        }
    }

    fn read_log(&mut self, path: &Path, state: &IndexState) -> Result<Log> {
        let dir = path.join(segment::LOG_DIR);
        let segments = segment::list(&dir).map_err(|e| Error::storage("listing the log", e))?;
        let total: u64 = segments.iter().map(|s| s.len).sum();
        self.report.segments = segments.len() as u64;
        self.report.log_bytes = total;
        (self.events)(VerifyEvent::PassStarted {
            pass: Pass::Log,
            total,
        });
        let mut log = Log {
            segments,
            next_sequence: 1,
            ..Log::default()
        };
        // The last version seen of each actor (index into `actor_names`).
        let mut latest: Vec<i64> = Vec::new();
        let mut hwm_checked = false;
        let mut done = 0u64;
        for i in 0..log.segments.len() {
            let s = log.segments[i].clone();
            let last = i + 1 == log.segments.len();
            let place = segment_place(s.id);
            if s.id.base != log.next_sequence || (i == 0 && s.id.gen != 0) {
                let detail = if i == 0 {
                    format!(
                        "the log starts with {}: the segments holding sequences 1..{} are missing",
                        s.id.file_name(),
                        s.id.base
                    )
                } else if s.id.base > log.next_sequence {
                    format!(
                        "the log continues at sequence {} after sequence {}: the segments holding sequences {}..{} are missing",
                        s.id.base,
                        log.next_sequence - 1,
                        log.next_sequence,
                        s.id.base
                    )
                } else {
                    format!(
                        "it is named for sequence {}, but the segments before it reach sequence {}",
                        s.id.base,
                        log.next_sequence - 1
                    )
                };
                self.problem(FindingKind::MissingSegment, &place, detail);
                log.next_sequence = s.id.base.max(1);
            }
            let file = File::open(&s.path)
                .map_err(|e| Error::storage(format!("opening {}", s.path.display()), e))?;
            // SAFETY: a read-only map of a file no one writes while the store's lock is held.
            let map = match s.len {
                0 => None,
                _ => Some(
                    unsafe { memmap2::Mmap::map(&file) }
                        .map_err(|e| Error::storage(format!("mapping {}", s.path.display()), e))?,
                ),
            };
            let data: &[u8] = map.as_deref().unwrap_or(&[]);
            let seal = match segment::read_header(data, s.id) {
                Err(why) => {
                    self.problem(
                        FindingKind::SegmentHeader,
                        &place,
                        format!("the segment {why}; the next open refuses the store"),
                    );
                    done += s.len;
                    continue;
                }
                Ok(seal) => seal,
            };
            if let (true, Some(seal)) = (last, seal) {
                self.problem(
                    FindingKind::MissingSegment,
                    &place,
                    format!(
                        "the newest segment is sealed, so the one after it (sequences from {}) existed and is missing",
                        seal.next_base
                    ),
                );
            }
            let hwm_here = state.hwm.filter(|h| h.segment == s.id);
            let mut hwm_sequence = hwm_here
                .filter(|h| h.end == SEGMENT_HEADER_LEN)
                .map(|_| log.next_sequence - 1);
            let salt = s.id.salt();
            let mut at = SEGMENT_HEADER_LEN as usize;
            let mut after_damage = false;
            loop {
                let scan = segment::scan(data, s.id, at);
                for f in &scan.frames {
                    let past_hwm = state
                        .hwm
                        .is_none_or(|h| (s.id, f.at as u64) >= (h.segment, h.end));
                    let payload = f.payload(data);
                    match record::parse(payload) {
                        Ok(
                            r @ Record::Events {
                                first_sequence,
                                count,
                                ..
                            },
                        ) => {
                            if first_sequence != log.next_sequence {
                                let detail = if first_sequence > log.next_sequence {
                                    format!(
                                        "the record at offset {} starts at sequence {first_sequence}, where {} was due: sequences {}..{} are missing{}",
                                        f.at,
                                        log.next_sequence,
                                        log.next_sequence,
                                        first_sequence - 1,
                                        if after_damage { " (they were in the damaged region before it)" } else { "" }
                                    )
                                } else {
                                    format!(
                                        "the record at offset {} starts at sequence {first_sequence}, but the log already reached sequence {}",
                                        f.at,
                                        log.next_sequence - 1
                                    )
                                };
                                self.problem(FindingKind::SequenceGap, &place, detail);
                            }
                            let lasts_start = log.lasts.len() as u32;
                            for e in r.events() {
                                let Ok(e) = e else { break };
                                let actor = log.actor(e.actor_id) as usize;
                                if latest.len() <= actor {
                                    latest.resize(actor + 1, 0);
                                }
                                self.check_event(&e, latest[actor]);
                                latest[actor] = latest[actor].max(e.version);
                                let lasts = &mut log.lasts[lasts_start as usize..];
                                match lasts.iter_mut().find(|l| l.0 == actor as u32) {
                                    Some(l) => l.1 = e.version,
                                    None => log.lasts.push((actor as u32, e.version, false)),
                                }
                                self.report.events += 1;
                            }
                            log.records.push(RecordInfo {
                                first_sequence,
                                segment: i as u32,
                                offset: f.at as u64,
                                lasts: (lasts_start, log.lasts.len() as u32),
                            });
                            log.next_sequence = first_sequence + count as u64;
                        }
                        Ok(Record::Snapshot {
                            actor_id,
                            version,
                            json,
                        }) => {
                            self.check_snapshot_json(
                                &format!("snapshot record at offset {} of {place}", f.at),
                                json,
                                actor_id,
                                version,
                            );
                            let actor = log.actor(actor_id);
                            let crc = crc32fast::hash(json);
                            log.snapshot_crcs.insert((actor, version), crc);
                            let newer = log
                                .snapshots
                                .get(&actor)
                                .is_none_or(|old| old.version <= version);
                            if newer {
                                log.snapshots
                                    .insert(actor, SnapshotInfo { version, past_hwm });
                            }
                        }
                        // `scan` stops at a payload that does not parse.
                        Err(_) => {}
                    }
                    self.report.records += 1;
                    after_damage = false;
                    if hwm_here.is_some_and(|h| h.end == f.next as u64) {
                        hwm_sequence = Some(log.next_sequence - 1);
                    }
                }
                at = scan.end;
                match scan.ending {
                    frame::Ending::End => {
                        if !last {
                            if seal.is_none()
                                || seal.is_some_and(|x| x.frames_end == scan.end as u64)
                                    && segment::sealed_len_after(scan.end as u64) != s.len
                            {
                                self.found(
                                    Severity::Note,
                                    FindingKind::SealedLength,
                                    &place,
                                    "a crash came while this segment was being sealed (the next one exists); the next open finishes sealing it",
                                );
                            } else if segment::sealed_len_after(scan.end as u64) != s.len {
                                self.problem(
                                    FindingKind::SealedLength,
                                    &place,
                                    format!(
                                        "the sealed segment's records end at offset {} but it is {} bytes: the next open refuses the store",
                                        scan.end, s.len
                                    ),
                                );
                            }
                            break;
                        }
                        if s.len <= scan.end as u64 && s.len % 4096 != 0 {
                            self.problem(
                                FindingKind::DamagedRecord,
                                &place,
                                format!(
                                    "the newest segment ends at offset {} right after its records, with none of the zero fill that runs ahead of the writer: it was truncated; the next open refuses the store",
                                    s.len
                                ),
                            );
                        }
                        if let Some(next) = frame::intact_frame_after(data, at, salt) {
                            self.problem(
                                FindingKind::DamagedRecord,
                                &place,
                                format!(
                                    "the log ends at offset {at} (zeros or a foreign frame), but intact records follow at offset {next}: the next open would drop them"
                                ),
                            );
                            at = next;
                            after_damage = true;
                            continue;
                        }
                        let dirty = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                        if dirty > at {
                            self.found(
                                Severity::Note,
                                FindingKind::StrayBytes,
                                &place,
                                format!(
                                    "non-zero bytes after the log's end at offset {at} (up to offset {dirty}) are not records of this segment; the next open zeroes them"
                                ),
                            );
                        }
                        break;
                    }
                    frame::Ending::Damaged(d) => {
                        self.problem(
                            FindingKind::DamagedRecord,
                            &place,
                            format!("{d}; the next open refuses the store (acknowledged saves are in it)"),
                        );
                        match d {
                            frame::Damage::BeforeIntact { intact_at, .. } => {
                                at = intact_at;
                                after_damage = true;
                                continue;
                            }
                            _ => break,
                        }
                    }
                    frame::Ending::CutShort {
                        one_bit_from_intact,
                    } => {
                        if !last {
                            self.problem(
                                FindingKind::DamagedRecord,
                                &place,
                                format!("the sealed segment has a damaged record at offset {at}; the next open refuses the store"),
                            );
                        } else if let Some((bit_at, sequences)) = one_bit_from_intact {
                            self.problem(
                                FindingKind::DamagedTail,
                                &place,
                                format!(
                                    "the last frame (offset {at}, {}) differs from an intact frame by one bit at offset {bit_at}, where a write cut short can leave that too: the next open drops it, losing that save if it was acknowledged",
                                    frame::describe_sequences(sequences)
                                ),
                            );
                        } else {
                            let dirty = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                            let severity = Self::severity_past_hwm(
                                state,
                                state
                                    .hwm
                                    .is_none_or(|h| (s.id, at as u64) >= (h.segment, h.end)),
                            );
                            self.found(
                                severity,
                                FindingKind::TornTail,
                                &place,
                                format!(
                                    "a write cut short by a crash ({} bytes at offset {at}, never acknowledged); the next open cuts it",
                                    dirty.saturating_sub(at)
                                ),
                            );
                        }
                        break;
                    }
                }
            }
            if let Some(h) = hwm_here {
                hwm_checked = true;
                match hwm_sequence {
                    _ if h.end > at as u64 => self.problem(
                        FindingKind::HighWaterMark,
                        &place,
                        format!(
                            "the index covers the log up to offset {} of this segment, past the log's end at offset {at}: acknowledged records are missing from it",
                            h.end
                        ),
                    ),
                    None => self.problem(
                        FindingKind::HighWaterMark,
                        &place,
                        format!("the index's high-water mark (offset {}) is not at a record boundary", h.end),
                    ),
                    Some(seq) if seq != h.sequence => self.problem(
                        FindingKind::HighWaterMark,
                        &place,
                        format!(
                            "the index's high-water mark says sequence {} at offset {}, but the log there is at sequence {seq}",
                            h.sequence, h.end
                        ),
                    ),
                    Some(_) => {}
                }
            }
            done += s.len;
            (self.events)(VerifyEvent::PassProgress {
                pass: Pass::Log,
                done,
            });
        }
        if let Some(h) = state.hwm {
            if !(hwm_checked || h.sequence == 0 && log.segments.is_empty()) {
                self.problem(
                    FindingKind::MissingSegment,
                    segment::LOG_DIR,
                    format!(
                        "the index covers sequences through {} in segment {}, which is missing",
                        h.sequence,
                        h.segment.file_name()
                    ),
                );
            }
            if h.sequence >= log.next_sequence {
                self.problem(
                    FindingKind::HighWaterMark,
                    segment::LOG_DIR,
                    format!(
                        "the index covers sequences through {}, but the log ends at sequence {}",
                        h.sequence,
                        log.next_sequence - 1
                    ),
                );
            }
        }
        self.report.last_sequence = log.next_sequence - 1;
        (self.events)(VerifyEvent::PassFinished { pass: Pass::Log });
        Ok(log)
    }

    fn check_event(&mut self, e: &record::RecordEvent<'_>, previous: i64) {
        let place = || event_place(e.sequence, e.actor_id, e.version);
        match Event::from_json(e.json) {
            Ok(ev) if ev.actor_id.as_bytes() == e.actor_id && ev.version == e.version => {}
            Ok(ev) => self.problem(
                FindingKind::MalformedEvent,
                place(),
                format!(
                    "the record's JSON holds actor {:?} version {}",
                    ev.actor_id, ev.version
                ),
            ),
            Err(err) => self.problem(
                FindingKind::MalformedEvent,
                place(),
                format!("the JSON does not decode as an event: {err}"),
            ),
        }
        if e.version <= previous {
            self.problem(
                FindingKind::VersionOrder,
                place(),
                format!("an earlier sequence already holds version {previous} of this actor"),
            );
        }
    }

    fn check_snapshot_json(&mut self, place: &str, json: &[u8], actor: &[u8], version: i64) {
        match serde_json::from_slice::<ActorSnapshot>(json) {
            Ok(s) if s.actor_id.as_bytes() == actor && s.version == version => {}
            Ok(s) => self.problem(
                FindingKind::Snapshot,
                place,
                format!(
                    "stored as actor {} version {version}, but it holds actor {:?} version {}",
                    actor_text(actor),
                    s.actor_id,
                    s.version
                ),
            ),
            Err(e) => self.problem(
                FindingKind::Snapshot,
                place,
                format!("the JSON does not decode as a snapshot: {e}"),
            ),
        }
    }

    fn check_index(&mut self, t: &Trees, log: &Log, state: &IndexState) -> Result<()> {
        let mut log_lasts = log.lasts.clone();
        // actors: number → name, and the log's actor for it.
        let mut names: HashMap<u64, Vec<u8>> = HashMap::new();
        for item in t.actors.iter() {
            let (k, v) = item?;
            let Ok(n) = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes) else {
                self.problem(
                    FindingKind::MalformedIndex,
                    format!("actor {}", actor_text(&k)),
                    "its number does not decode",
                );
                continue;
            };
            if let Some(other) = names.insert(n, k.to_vec()) {
                self.problem(
                    FindingKind::MalformedIndex,
                    format!("actor {}", actor_text(&k)),
                    format!("its number {n} is also actor {}'s", actor_text(&other)),
                );
            }
        }

        (self.events)(VerifyEvent::PassStarted {
            pass: Pass::Index,
            total: log.lasts.len() as u64,
        });
        let stale = |first_sequence: u64| first_sequence >= log.next_sequence;
        let mut stale_entries = 0u64;
        for item in t.index.iter() {
            let (k, v) = item?;
            self.report.index_entries += 1;
            if self.report.index_entries % PROGRESS_EVERY == 0 {
                (self.events)(VerifyEvent::PassProgress {
                    pass: Pass::Index,
                    done: self.report.index_entries,
                });
            }
            let (Some((number, key_version)), Some(run)) = (split_key(&k), decode_run(&v)) else {
                self.problem(
                    FindingKind::MalformedIndex,
                    "index",
                    format!("the entry with key {k:02x?} does not decode"),
                );
                continue;
            };
            if run.last().map(|r| r.last_version as u64) != Some(key_version) {
                self.problem(
                    FindingKind::MalformedIndex,
                    format!("index run of actor number {number} version {key_version}"),
                    "its key does not name its last record's version",
                );
            }
            for entry in run {
                let version = entry.last_version;
                let Some(name) = names.get(&number) else {
                    self.problem(
                        FindingKind::MalformedIndex,
                        format!("index entry of actor number {number} version {version}"),
                        "no actor has that number",
                    );
                    continue;
                };
                let place = event_place(entry.first_sequence, name, version);
                let Some(r) = log.record(entry.first_sequence) else {
                    if stale(entry.first_sequence) {
                        if state.clean {
                            self.problem(
                            FindingKind::StaleIndexEntry,
                            place,
                            format!(
                                "the index points past the log's end (sequence {}): an acknowledged record is missing from the log",
                                log.next_sequence - 1
                            ),
                        );
                        } else {
                            stale_entries += 1;
                        }
                    } else {
                        self.problem(
                            FindingKind::IndexPointsNowhere,
                            place,
                            "no record of the log starts at this sequence",
                        );
                    }
                    continue;
                };
                let rec = log.records[r];
                let seg = &log.segments[rec.segment as usize];
                if log.segment_for(entry.first_sequence) != Some(rec.segment)
                    || entry.offset as u64 != rec.offset
                {
                    self.problem(
                    FindingKind::IndexPointsNowhere,
                    place,
                    format!(
                        "the entry points to offset {} of the segment the sequence maps to, but the record is at offset {} of {}",
                        entry.offset,
                        rec.offset,
                        segment_place(seg.id)
                    ),
                );
                    continue;
                }
                let actor = log.actor_numbers.get(name.as_slice()).copied();
                let lasts = &mut log_lasts[rec.lasts.0 as usize..rec.lasts.1 as usize];
                match lasts.iter_mut().find(|l| Some(l.0) == actor) {
                    Some(l) if l.1 == version => l.2 = true,
                    Some(l) => {
                        self.problem(
                            FindingKind::IndexMismatch,
                            place,
                            format!("the record's last version of this actor is {}", l.1),
                        );
                    }
                    None => self.problem(
                        FindingKind::IndexMismatch,
                        place,
                        "the record holds no event of this actor",
                    ),
                }
            }
        }
        if stale_entries > 0 {
            self.found(
                Severity::Note,
                FindingKind::StaleIndexEntry,
                "index",
                format!(
                    "{} entries point past the log's end (saves never acknowledged, or buffered saves lost with the OS); the next open removes them",
                    thousands(stale_entries)
                ),
            );
        }
        let mut unindexed_past_hwm = 0u64;
        for rec in &log.records {
            let past_hwm = state.hwm.is_none_or(|h| rec.first_sequence > h.sequence);
            for l in &log_lasts[rec.lasts.0 as usize..rec.lasts.1 as usize] {
                if l.2 {
                    continue;
                }
                if Self::severity_past_hwm(state, past_hwm) == Severity::Note {
                    unindexed_past_hwm += 1;
                } else {
                    self.problem(
                        FindingKind::UnindexedRecord,
                        event_place(rec.first_sequence, &log.actor_names[l.0 as usize], l.1),
                        format!(
                            "the record at offset {} of {} has no index entry for this actor",
                            rec.offset,
                            segment_place(log.segments[rec.segment as usize].id)
                        ),
                    );
                }
            }
        }
        if unindexed_past_hwm > 0 {
            self.found(
                Severity::Note,
                FindingKind::UnindexedRecord,
                "index",
                format!(
                    "{} index entries for records past the high-water mark are not written yet; the next open indexes them from the log",
                    thousands(unindexed_past_hwm)
                ),
            );
        }
        (self.events)(VerifyEvent::PassFinished { pass: Pass::Index });

        self.check_positions(t, log, state)?;
        self.check_segments_tree(t, log, state)?;
        self.check_snapshots(t, log, state, &names)?;
        Ok(())
    }

    fn check_positions(&mut self, t: &Trees, log: &Log, state: &IndexState) -> Result<()> {
        for item in t.positions.iter() {
            let (k, v) = item?;
            let (Ok(seq), Ok(offset)) = (
                <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes),
                <[u8; 4]>::try_from(v.as_ref()).map(u32::from_be_bytes),
            ) else {
                self.problem(
                    FindingKind::MalformedIndex,
                    "positions",
                    format!("the entry with key {k:02x?} does not decode"),
                );
                continue;
            };
            let place = format!("position of sequence {seq}");
            match log.record(seq) {
                Some(r) => {
                    let rec = log.records[r];
                    if log.segment_for(seq) != Some(rec.segment) || offset as u64 != rec.offset {
                        self.problem(
                            FindingKind::Position,
                            place,
                            format!(
                                "it says offset {offset}, but the record is at offset {} of {}",
                                rec.offset,
                                segment_place(log.segments[rec.segment as usize].id)
                            ),
                        );
                    }
                }
                None if seq >= log.next_sequence && !state.clean => {}
                None => self.problem(
                    FindingKind::Position,
                    place,
                    "no record of the log starts at this sequence",
                ),
            }
        }
        Ok(())
    }

    fn check_segments_tree(&mut self, t: &Trees, log: &Log, state: &IndexState) -> Result<()> {
        let mut recorded: HashMap<SegmentId, (u64, u64)> = HashMap::new();
        for item in t.segments.iter() {
            let (k, v) = item?;
            let id = (k.len() == 12).then(|| SegmentId {
                base: u64::from_be_bytes(k[..8].try_into().unwrap()),
                gen: u32::from_be_bytes(k[8..].try_into().unwrap()),
            });
            match (id, decode_sealed(&v)) {
                (Some(id), Some(sealed)) => {
                    recorded.insert(id, sealed);
                }
                _ => self.problem(
                    FindingKind::MalformedIndex,
                    "segments",
                    format!("the entry with key {k:02x?} does not decode"),
                ),
            }
        }
        for (i, s) in log.segments.iter().enumerate() {
            let place = segment_place(s.id);
            let next = log.segments.get(i + 1);
            match (recorded.remove(&s.id), next) {
                (Some((len, next_base)), Some(next)) => {
                    if s.len != len {
                        self.problem(
                            FindingKind::SealedLength,
                            &place,
                            format!(
                                "it is {} bytes but was sealed at {len}{}",
                                s.len,
                                if s.len < len { ": acknowledged records are missing from it" } else { "" }
                            ),
                        );
                    }
                    if next.id.base != next_base {
                        self.problem(
                            FindingKind::MissingSegment,
                            &place,
                            format!(
                                "it was sealed with sequence {next_base} next, but the next segment is {}",
                                next.id.file_name()
                            ),
                        );
                    }
                }
                (Some((_, next_base)), None) => self.problem(
                    FindingKind::MissingSegment,
                    &place,
                    format!(
                        "it was sealed, but the segment after it (from sequence {next_base}) is missing"
                    ),
                ),
                (None, Some(_)) => {
                    let severity = if state.clean { Severity::Problem } else { Severity::Note };
                    self.found(
                        severity,
                        FindingKind::SealedLength,
                        &place,
                        "the sealed segment's length is not recorded in the index; the next open records it",
                    );
                }
                (None, None) => {}
            }
        }
        let mut missing: Vec<_> = recorded.into_keys().collect();
        missing.sort();
        for id in missing {
            self.problem(
                FindingKind::MissingSegment,
                segment_place(id),
                "the index records this sealed segment, but its file is missing",
            );
        }
        Ok(())
    }

    fn check_snapshots(
        &mut self,
        t: &Trees,
        log: &Log,
        state: &IndexState,
        names: &HashMap<u64, Vec<u8>>,
    ) -> Result<()> {
        let mut seen_actors: Vec<(Vec<u8>, i64)> = Vec::new();
        for item in t.snapshots.iter() {
            let (k, v) = item?;
            self.report.snapshots += 1;
            let Some((number, version)) = split_snapshot_key(&k) else {
                self.problem(
                    FindingKind::MalformedIndex,
                    "snapshots",
                    format!("the entry with key {k:02x?} does not decode"),
                );
                continue;
            };
            let Some(name) = names.get(&number) else {
                self.problem(
                    FindingKind::MalformedIndex,
                    format!("snapshot of actor number {number} version {version}"),
                    "no actor has that number",
                );
                continue;
            };
            let place = format!("snapshot of actor {} version {version}", actor_text(name));
            let Some(json) = decode_snapshot(&v) else {
                self.problem(FindingKind::Snapshot, place, "its checksum does not match");
                continue;
            };
            self.check_snapshot_json(&place, json, name, version);
            seen_actors.push((name.clone(), version));
            let in_log = log
                .actor_numbers
                .get(name.as_slice())
                .and_then(|a| log.snapshots.get(a).map(|s| (*a, *s)));
            match in_log {
                None => self.problem(
                    FindingKind::Snapshot,
                    place,
                    "the log holds no snapshot record of this actor",
                ),
                Some((actor, s)) => {
                    let logged = log.snapshot_crcs.get(&(actor, version));
                    if logged.is_some_and(|&crc| crc != crc32fast::hash(json)) {
                        self.problem(
                            FindingKind::Snapshot,
                            place,
                            "it differs from the log's snapshot record of that version",
                        );
                    } else if version > s.version {
                        self.problem(
                            FindingKind::Snapshot,
                            place,
                            format!(
                                "the log's newest snapshot record of this actor is version {}",
                                s.version
                            ),
                        );
                    } else if logged.is_none() {
                        self.problem(
                            FindingKind::Snapshot,
                            place,
                            "the log holds no snapshot record of this version",
                        );
                    }
                }
            }
        }
        // The newest snapshot of each actor must be the log's newest.
        let mut tree_newest: HashMap<&[u8], (i64, usize)> = HashMap::new();
        for (name, version) in &seen_actors {
            let e = tree_newest.entry(name.as_slice()).or_insert((*version, 0));
            e.0 = e.0.max(*version);
            e.1 += 1;
        }
        let mut actors: Vec<_> = log.snapshots.iter().collect();
        actors.sort_by_key(|(a, _)| **a);
        for (actor, s) in actors {
            let name = &log.actor_names[*actor as usize];
            let place = format!(
                "snapshot of actor {} version {}",
                actor_text(name),
                s.version
            );
            match tree_newest.get(name.as_slice()) {
                Some((v, _)) if *v == s.version => {}
                Some((v, _)) if *v > s.version => {} // reported above
                other => {
                    let severity = Self::severity_past_hwm(state, s.past_hwm);
                    self.found(
                        severity,
                        FindingKind::Snapshot,
                        place,
                        match other {
                            Some((v, _)) => format!(
                                "the log's newest snapshot record of this actor is not in the index, which holds version {v}; the next open {}",
                                if severity == Severity::Note { "indexes it" } else { "does not read it again: `aether reindex` does" }
                            ),
                            None => format!(
                                "the log's snapshot record is not in the index; the next open {}",
                                if severity == Severity::Note { "indexes it" } else { "does not read it again: `aether reindex` does" }
                            ),
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// One item of the log, as [`walk_log`] hands it out.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum LogItem<'a> {
    /// An event of an intact record.
    Event {
        sequence: u64,
        actor_id: &'a [u8],
        version: i64,
        json: &'a [u8],
    },
    /// Part of the log that cannot be read: the segment and why (the events in it are
    /// skipped).
    Damaged { place: &'a str, detail: &'a str },
}

/// Hand the events of the log from sequence `from_sequence` on to `each`, in order, until
/// it returns `false`: read-only, straight from the segments (the truth), past damage
/// where an intact record follows it. A write cut short by a crash ends the log, as it
/// does for the store. For `aether inspect`.
#[doc(hidden)]
pub fn walk_log(
    path: &Path,
    lock_timeout: Duration,
    from_sequence: u64,
    each: &mut dyn FnMut(LogItem<'_>) -> bool,
) -> Result<()> {
    require_store(path)?;
    let _held = dirlock::lock_store(path, lock_timeout)?;
    let segments = segment::list(&path.join(segment::LOG_DIR))
        .map_err(|e| Error::storage("listing the log", e))?;
    let start = segments
        .partition_point(|s| {
            s.id <= SegmentId {
                base: from_sequence,
                gen: u32::MAX,
            }
        })
        .saturating_sub(1);
    for s in &segments[start..] {
        let place = segment_place(s.id);
        let file = File::open(&s.path)
            .map_err(|e| Error::storage(format!("opening {}", s.path.display()), e))?;
        if s.len == 0 {
            continue;
        }
        // SAFETY: a read-only map of a file no one writes while the store's lock is held.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::storage(format!("mapping {}", s.path.display()), e))?;
        let data: &[u8] = &map;
        if let Err(why) = segment::check_header(data, s.id) {
            let detail = format!("the segment {why}; its events are skipped");
            if !each(LogItem::Damaged {
                place: &place,
                detail: &detail,
            }) {
                return Ok(());
            }
            continue;
        }
        let mut at = SEGMENT_HEADER_LEN as usize;
        loop {
            let scan = segment::scan(data, s.id, at);
            for f in &scan.frames {
                if f.sequences.1 < from_sequence {
                    continue;
                }
                let Ok(r) = record::parse(f.payload(data)) else {
                    continue;
                };
                for e in r.events().flatten() {
                    if e.sequence < from_sequence {
                        continue;
                    }
                    let item = LogItem::Event {
                        sequence: e.sequence,
                        actor_id: e.actor_id,
                        version: e.version,
                        json: e.json,
                    };
                    if !each(item) {
                        return Ok(());
                    }
                }
            }
            let frame::Ending::Damaged(d) = scan.ending else {
                break;
            };
            let detail = format!("{d}; the events in it are skipped");
            if !each(LogItem::Damaged {
                place: &place,
                detail: &detail,
            }) {
                return Ok(());
            }
            match d {
                frame::Damage::BeforeIntact { intact_at, .. } => at = intact_at,
                _ => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sled_store::{Durability, Options, SledStore};
    use crate::{EventStore, SnapshotStore};

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    fn ev(actor: &str, version: i64) -> Event {
        Event::new(format!("{actor}-{version}"), "Happened", actor, version)
            .with_data("pad", "x".repeat(700))
    }

    /// A closed store over several segments: 220 events of 3 actors in 210 records (10
    /// batches of 2), and 10 snapshots of one actor.
    fn store(path: &Path) {
        let mut options = Options::with_durability(Durability::Buffered);
        options.segment_size = 64 * 1024;
        let s = SledStore::open_with(path, options).unwrap();
        for v in 1..=100 {
            for a in ["a", "b"] {
                s.save_event(&ev(a, v)).unwrap();
            }
            if v % 10 == 0 {
                s.save_events(&[ev("c", v / 10 * 2 - 1), ev("c", v / 10 * 2)])
                    .unwrap();
                s.save_snapshot(&ActorSnapshot {
                    actor_id: "a".into(),
                    version: v,
                    state: None,
                    timestamp: crate::Timestamp::from_unix_nanos(0),
                })
                .unwrap();
            }
        }
        s.close().unwrap();
    }

    fn segments(path: &Path) -> Vec<SegmentFile> {
        segment::list(&path.join(segment::LOG_DIR)).unwrap()
    }

    fn kinds(r: &VerifyReport) -> Vec<(Severity, FindingKind)> {
        r.findings.iter().map(|f| (f.severity, f.kind)).collect()
    }

    #[test]
    fn a_sound_store_over_several_segments_has_no_findings() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        assert!(segments(dir.path()).len() > 2);
        let r = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(r.findings.is_empty(), "{:#?}", r.findings);
        assert!(r.is_sound());
        assert_eq!(r.events, 220);
        assert_eq!(r.last_sequence, 220);
        // One run per actor per flush: at most one entry per save, at least one per actor.
        assert!((3..=210).contains(&r.index_entries), "{}", r.index_entries);
        // Ten snapshots of one actor were saved; the default retention keeps three.
        assert_eq!(r.snapshots, 3);
        assert_eq!(r.records, 210 + 10);
        assert!(r.index_read);
    }

    #[test]
    fn a_damaged_byte_in_a_sealed_segment_is_named() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let first = &segments(dir.path())[0];
        let mut bytes = std::fs::read(&first.path).unwrap();
        bytes[SEGMENT_HEADER_LEN as usize + 100] ^= 0x04;
        std::fs::write(&first.path, bytes).unwrap();
        let r = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(!r.is_sound());
        let damaged = r
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::DamagedRecord)
            .unwrap();
        assert_eq!(damaged.place, "log/00000000000000000001.seg");
        assert!(
            damaged
                .detail
                .contains("frame at offset 512 is damaged and an intact frame follows"),
            "{damaged}"
        );
        // The record lost to it: its sequence is missing and its index entry points nowhere.
        assert!(
            kinds(&r).contains(&(Severity::Problem, FindingKind::SequenceGap)),
            "{:#?}",
            r.findings
        );
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == FindingKind::IndexPointsNowhere
                    && f.place == "sequence 1, actor \"a\" version 1"),
            "{:#?}",
            r.findings
        );
    }

    #[test]
    fn a_missing_index_is_a_problem_until_reindexed() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        std::fs::remove_dir_all(dir.path().join(SLED_DIR)).unwrap();
        let r = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert_eq!(kinds(&r), [(Severity::Problem, FindingKind::IndexMissing)]);
        assert!(
            !dir.path().join(SLED_DIR).exists(),
            "verify created an index"
        );
        assert_eq!(r.events, 220);
        crate::sled_store::reindex(dir.path(), Options::default()).unwrap();
        let r = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(r.findings.is_empty(), "{:#?}", r.findings);
    }

    #[test]
    fn a_missing_middle_segment_and_a_shortened_one_are_named() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let segs = segments(dir.path());
        std::fs::remove_file(&segs[1].path).unwrap();
        let f = File::options().write(true).open(&segs[0].path).unwrap();
        f.set_len(segs[0].len - 8).unwrap();
        let r = verify(dir.path(), &VerifyOptions::default()).unwrap();
        let k = kinds(&r);
        assert!(
            k.contains(&(Severity::Problem, FindingKind::MissingSegment)),
            "{:#?}",
            r.findings
        );
        assert!(
            k.contains(&(Severity::Problem, FindingKind::SealedLength)),
            "{:#?}",
            r.findings
        );
        assert!(
            k.contains(&(Severity::Problem, FindingKind::IndexPointsNowhere)),
            "{:#?}",
            r.findings
        );
    }

    #[test]
    fn no_store_and_format_1_are_refused_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing");
        assert!(matches!(
            verify(&missing, &VerifyOptions::default()),
            Err(Error::InvalidInput { .. })
        ));
        assert!(!missing.exists());
        let old = dir.path().join("old");
        std::fs::create_dir_all(old.join(SLED_DIR)).unwrap();
        std::fs::write(old.join("aether.wal"), [0u8; 16]).unwrap();
        match verify(&old, &VerifyOptions::default()) {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("aether migrate")),
            other => panic!("{other:?}"),
        }
    }
}
