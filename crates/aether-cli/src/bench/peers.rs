//! The contenders of `aether bench --compare`: our store's operations and their peers,
//! each given the same prepared bytes: raw sled inserts and range scans (the event JSON in
//! a tree of its own keyed `actor‖version`), the disk's append+fdatasync rate, SQLite (one
//! transaction per save with the same version check, 100-row transactions, and an ordered
//! scan of the same rows as `read_all`), and serde_json decoding the same events.
//!
//! Contenders run in alternating time slices ([`alternate`]), so a change in the machine's
//! load during the run (other processes, the disk's write cache filling) falls on every
//! side of a ratio alike instead of on whichever ran last.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_core::{Event, EventStore, SledStore};
use hdrhistogram::Histogram;
use rusqlite::{params, Connection, TransactionBehavior};

use super::ours::SaveRunner;
use super::report::{histogram, record, OpStats};
use super::workload::Workload;
use crate::util::{self, CmdResult, Failure, Progress};

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure(format!("SQLite: {e}"))
    }
}

/// Something measured in slices.
pub trait Contender {
    /// Work until `until`; `Ok(false)` once there is nothing left to do.
    fn run_slice(&mut self, until: Instant) -> CmdResult<bool>;
    /// Events done so far.
    fn events(&self) -> u64;
}

/// What one contender did in one round: its slice's wall time and events.
pub type Round = Option<(Duration, u64)>;

/// A contender with its time budget and the time it has used.
pub struct Entry<'a> {
    pub contender: &'a mut dyn Contender,
    pub budget: Duration,
    pub busy: Duration,
    pub finished: bool,
    /// One element per round; `None` for rounds it sat out (finished or out of budget).
    pub rounds: Vec<Round>,
}

impl<'a> Entry<'a> {
    pub fn new(contender: &'a mut dyn Contender, budget: Duration) -> Self {
        Entry {
            contender,
            budget,
            busy: Duration::ZERO,
            finished: false,
            rounds: Vec::new(),
        }
    }
}

/// Each entry's busy time and rounds, in order, once `alternate` is done.
pub fn outcome(entries: &[Entry<'_>]) -> (Vec<Duration>, Vec<Vec<Round>>) {
    (
        entries.iter().map(|e| e.busy).collect(),
        entries.iter().map(|e| e.rounds.clone()).collect(),
    )
}

/// Rates (events/s) of two contenders over only the rounds in which both ran: once one
/// has finished, a change in the machine's load would otherwise fall on the other alone.
pub fn overlapping_rates(a: &[Round], b: &[Round]) -> (f64, f64) {
    let (mut ta, mut ea, mut tb, mut eb) = (Duration::ZERO, 0, Duration::ZERO, 0);
    for (ra, rb) in a.iter().zip(b) {
        if let (Some((da, na)), Some((db, nb))) = (ra, rb) {
            ta += *da;
            ea += na;
            tb += *db;
            eb += nb;
        }
    }
    let rate = |n: u64, t: Duration| {
        if t.is_zero() {
            0.0
        } else {
            n as f64 / t.as_secs_f64()
        }
    };
    (rate(ea, ta), rate(eb, tb))
}

/// Run the entries round-robin in slices of `slice` until each has finished its work or
/// used its budget. Each entry's `busy` is the wall time of its own slices.
pub fn alternate(label: &str, entries: &mut [Entry<'_>], slice: Duration) -> CmdResult<()> {
    let total: Duration = entries.iter().map(|e| e.budget).sum();
    let mut progress = Progress::percent(label, total.as_millis() as u64, true);
    loop {
        let mut ran = false;
        for entry in entries.iter_mut() {
            if entry.finished || entry.busy >= entry.budget {
                entry.rounds.push(None);
                continue;
            }
            ran = true;
            let before = entry.contender.events();
            let started = Instant::now();
            let until = started + slice.min(entry.budget - entry.busy);
            let more = entry.contender.run_slice(until)?;
            let elapsed = started.elapsed();
            entry.busy += elapsed;
            entry.finished = !more;
            entry
                .rounds
                .push(Some((elapsed, entry.contender.events() - before)));
        }
        let used: Duration = entries
            .iter()
            .map(|e| {
                if e.finished {
                    e.budget
                } else {
                    e.busy.min(e.budget)
                }
            })
            .sum();
        progress.set(used.as_millis() as u64);
        if !ran {
            break;
        }
    }
    progress.finish();
    Ok(())
}

fn stats(name: impl Into<String>, hist: &Histogram<u64>, events: u64, busy: Duration) -> OpStats {
    let mut s = OpStats::new(name, hist.len(), events, busy);
    s.hist = hist.clone();
    s
}

/// Our interleaved saves.
pub struct OurSaves<'w> {
    pub runner: SaveRunner<'w>,
}

impl Contender for OurSaves<'_> {
    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        self.runner.run_slice(until, None);
        Ok(!self.runner.exhausted())
    }

    fn events(&self) -> u64 {
        self.runner.stored()
    }
}

/// Our `save_events` of the workload's batches.
pub struct OurBatches<'w> {
    pub store: Arc<dyn EventStore>,
    pub work: &'w Workload,
    next: usize,
    hist: Histogram<u64>,
    events: u64,
    pub failure: Option<String>,
}

impl<'w> OurBatches<'w> {
    pub fn new(store: Arc<dyn EventStore>, work: &'w Workload) -> Self {
        OurBatches {
            store,
            work,
            next: 0,
            hist: histogram(),
            events: 0,
            failure: None,
        }
    }

    pub fn stats(&self, name: &str, busy: Duration) -> OpStats {
        stats(name, &self.hist, self.events, busy)
    }
}

impl Contender for OurBatches<'_> {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(batch) = self.work.batches.get(self.next) {
            if Instant::now() >= until {
                return Ok(true);
            }
            let t0 = Instant::now();
            let outcome = self.store.save_events(&batch.events);
            record(&mut self.hist, t0.elapsed());
            match outcome {
                Ok(_) => self.events += batch.events.len() as u64,
                Err(e) => {
                    self.failure.get_or_insert_with(|| e.to_string());
                }
            }
            self.next += 1;
        }
        Ok(false)
    }
}

/// Our replay of every actor, decoded (`get_events`) or raw (`get_events_json`).
pub struct OurReplay<'w> {
    store: Arc<dyn EventStore>,
    work: &'w Workload,
    /// Events stored per actor: what a raw replay returns (checked by the main run).
    latest: &'w [i64],
    raw: bool,
    next: usize,
    hist: Histogram<u64>,
    events: u64,
}

impl<'w> OurReplay<'w> {
    pub fn new(
        store: Arc<dyn EventStore>,
        work: &'w Workload,
        latest: &'w [i64],
        raw: bool,
    ) -> Self {
        OurReplay {
            store,
            work,
            latest,
            raw,
            next: 0,
            hist: histogram(),
            events: 0,
        }
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        let name = if self.raw {
            "get_events_json (replay, raw)"
        } else {
            "get_events (replay, decoded)"
        };
        stats(name, &self.hist, self.events, busy)
    }
}

impl Contender for OurReplay<'_> {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(actor) = self.work.actors.get(self.next) {
            if Instant::now() >= until {
                return Ok(true);
            }
            let t0 = Instant::now();
            let events = if self.raw {
                let json = self.store.get_events_json(actor, 1)?;
                record(&mut self.hist, t0.elapsed());
                std::hint::black_box(json);
                // Counting the array's elements would measure a parser, not the store.
                self.latest[self.next].max(0) as u64
            } else {
                let events = self.store.get_events(actor, 1)?;
                record(&mut self.hist, t0.elapsed());
                events.len() as u64
            };
            self.events += events;
            self.next += 1;
        }
        Ok(false)
    }
}

/// The raw sled peer's key: `len u16 BE ‖ actor ID ‖ version u64 BE`. The length prefix
/// keeps one actor's range free of longer IDs that share its prefix; big-endian versions
/// sort numerically, so an actor's events are one ordered range.
pub fn raw_key(actor_id: &str, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + actor_id.len() + 8);
    key.extend_from_slice(&(actor_id.len() as u16).to_be_bytes());
    key.extend_from_slice(actor_id.as_bytes());
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The successful saves of the workload for the raw sled peer: ([`raw_key`], event JSON),
/// in the order one writer issues them.
pub fn records(work: &Workload) -> Vec<(Vec<u8>, Vec<u8>)> {
    work.ops
        .iter()
        .filter(|op| !op.conflict)
        .map(|op| {
            (
                raw_key(&op.event.actor_id, op.event.version as u64),
                op.json.clone(),
            )
        })
        .collect()
}

/// A bare sled database (`mode(HighThroughput)`, buffered: sled's own 500 ms flush only)
/// and the tree the raw peer keeps events in.
pub fn raw_sled_open(dir: &Path, cache_capacity: u64) -> CmdResult<sled::Tree> {
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_capacity)
        .flush_every_ms(Some(500))
        .open()?;
    Ok(db.open_tree("events")?)
}

/// Raw sled inserts of the same records under the same keys.
pub struct RawInsert {
    tree: sled::Tree,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
    hist: Histogram<u64>,
}

impl RawInsert {
    pub fn new(tree: sled::Tree, records: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        RawInsert {
            tree,
            records,
            next: 0,
            hist: histogram(),
        }
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats("raw sled insert", &self.hist, self.hist.len(), busy)
    }
}

impl Contender for RawInsert {
    fn events(&self) -> u64 {
        self.hist.len()
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some((key, value)) = self.records.get(self.next) {
            if self.next % 8 == 0 && Instant::now() >= until {
                return Ok(true);
            }
            let t0 = Instant::now();
            self.tree.insert(key.as_slice(), value.as_slice())?;
            record(&mut self.hist, t0.elapsed());
            self.next += 1;
        }
        Ok(false)
    }
}

/// Raw sled range scan of each actor, concatenating the JSON as `get_events_json` does.
pub struct RawScan<'w> {
    tree: sled::Tree,
    work: &'w Workload,
    next: usize,
    out: Vec<u8>,
    hist: Histogram<u64>,
    events: u64,
}

impl<'w> RawScan<'w> {
    pub fn new(tree: sled::Tree, work: &'w Workload) -> Self {
        RawScan {
            tree,
            work,
            next: 0,
            out: Vec::with_capacity(1 << 16),
            hist: histogram(),
            events: 0,
        }
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats("raw sled range scan", &self.hist, self.events, busy)
    }
}

impl Contender for RawScan<'_> {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(actor) = self.work.actors.get(self.next) {
            if Instant::now() >= until {
                return Ok(true);
            }
            let t0 = Instant::now();
            let start = raw_key(actor, 0);
            let end = raw_key(actor, u64::MAX);
            self.out.clear();
            self.out.push(b'[');
            for item in self.tree.range(start.as_slice()..=end.as_slice()) {
                let (_, value) = item?;
                if self.out.len() > 1 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(&value);
                self.events += 1;
            }
            self.out.push(b']');
            record(&mut self.hist, t0.elapsed());
            self.next += 1;
        }
        Ok(false)
    }
}

/// The disk's floor for a durable write: 4 KiB appends to a file, each followed by
/// `fdatasync`. Never runs out; its budget ends it.
pub struct DiskAppend {
    file: File,
    path: std::path::PathBuf,
    hist: Histogram<u64>,
}

impl DiskAppend {
    pub fn new(dir: &Path) -> CmdResult<Self> {
        std::fs::create_dir_all(dir).map_err(util::io_failure(dir.display()))?;
        let path = dir.join("append-fdatasync.dat");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(util::io_failure(path.display()))?;
        Ok(DiskAppend {
            file,
            path,
            hist: histogram(),
        })
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats(
            "disk 4 KiB append + fdatasync",
            &self.hist,
            self.hist.len(),
            busy,
        )
    }
}

impl Contender for DiskAppend {
    fn events(&self) -> u64 {
        self.hist.len()
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        let block = [0x5Au8; 4096];
        while Instant::now() < until {
            let t0 = Instant::now();
            self.file
                .write_all(&block)
                .and_then(|()| self.file.sync_data())
                .map_err(util::io_failure(self.path.display()))?;
            record(&mut self.hist, t0.elapsed());
        }
        Ok(true)
    }
}

const SELECT_MAX: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE actor = ?1";
const INSERT: &str = "INSERT INTO events(actor, version, seq, body) VALUES (?1, ?2, ?3, ?4)";

/// SQLite in WAL mode with `synchronous` (NORMAL or FULL) and the comparison's schema.
fn sqlite_open(path: &Path, synchronous: &str) -> CmdResult<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events(
             actor TEXT, version INTEGER, seq INTEGER, body BLOB,
             PRIMARY KEY(actor, version))",
    )?;
    Ok(conn)
}

/// Bytes SQLite's files take (database, WAL and shared memory).
pub fn sqlite_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok()
        })
        .map(|m| m.blocks() * 512)
        .sum()
}

/// One transaction per save with our version rule (SELECT max, then INSERT or roll back),
/// over the same interleaved operations, from one writer.
pub struct SqliteSaves<'w> {
    conn: Connection,
    work: &'w Workload,
    synchronous: &'static str,
    next: usize,
    seq: i64,
    hist: Histogram<u64>,
    pub rejected: u64,
}

impl<'w> SqliteSaves<'w> {
    pub fn new(path: &Path, work: &'w Workload, synchronous: &'static str) -> CmdResult<Self> {
        Ok(SqliteSaves {
            conn: sqlite_open(path, synchronous)?,
            work,
            synchronous,
            next: 0,
            seq: 0,
            hist: histogram(),
            rejected: 0,
        })
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats(
            format!("SQLite save (synchronous={})", self.synchronous),
            &self.hist,
            self.hist.len(),
            busy,
        )
    }
}

impl Contender for SqliteSaves<'_> {
    fn events(&self) -> u64 {
        self.hist.len()
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(op) = self.work.ops.get(self.next) {
            if self.next % 8 == 0 && Instant::now() >= until {
                return Ok(true);
            }
            self.next += 1;
            let t0 = Instant::now();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: i64 = tx
                .prepare_cached(SELECT_MAX)?
                .query_row(params![op.event.actor_id], |r| r.get(0))?;
            if op.event.version <= current {
                tx.rollback()?;
                self.rejected += 1;
                continue;
            }
            self.seq += 1;
            tx.prepare_cached(INSERT)?.execute(params![
                op.event.actor_id,
                op.event.version,
                self.seq,
                op.json
            ])?;
            tx.commit()?;
            record(&mut self.hist, t0.elapsed());
        }
        Ok(false)
    }
}

/// The workload's batches, one SQLite transaction each (SELECT max once, then every row).
pub struct SqliteBatches<'w> {
    conn: Connection,
    work: &'w Workload,
    synchronous: &'static str,
    next: usize,
    seq: i64,
    hist: Histogram<u64>,
    events: u64,
}

impl<'w> SqliteBatches<'w> {
    pub fn new(path: &Path, work: &'w Workload, synchronous: &'static str) -> CmdResult<Self> {
        Ok(SqliteBatches {
            conn: sqlite_open(path, synchronous)?,
            work,
            synchronous,
            next: 0,
            seq: 0,
            hist: histogram(),
            events: 0,
        })
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        let size = self.work.batches.first().map_or(0, |b| b.events.len());
        stats(
            format!("SQLite {size}-row transaction ({})", self.synchronous),
            &self.hist,
            self.events,
            busy,
        )
    }
}

impl Contender for SqliteBatches<'_> {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(batch) = self.work.batches.get(self.next) {
            if Instant::now() >= until {
                return Ok(true);
            }
            self.next += 1;
            let t0 = Instant::now();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let actor = &batch.events[0].actor_id;
            let current: i64 = tx
                .prepare_cached(SELECT_MAX)?
                .query_row(params![actor], |r| r.get(0))?;
            if batch.events[0].version <= current {
                tx.rollback()?;
                continue;
            }
            {
                let mut insert = tx.prepare_cached(INSERT)?;
                for (event, json) in batch.events.iter().zip(&batch.json) {
                    self.seq += 1;
                    insert.execute(params![actor, event.version, self.seq, json])?;
                }
            }
            tx.commit()?;
            record(&mut self.hist, t0.elapsed());
            self.events += batch.events.len() as u64;
        }
        Ok(false)
    }
}

/// Rows of `read_all` pages: both sides read pages of this many events, in sequence
/// order, into one JSON array each, starting over at the first when they reach the end.
pub const READ_ALL_PAGE: usize = 1_000;

/// Our `read_all_json` over the whole store, page after page.
pub struct OurReadAll {
    store: Arc<SledStore>,
    /// Events in the store: sequences `1..=total`.
    total: u64,
    from: u64,
    hist: Histogram<u64>,
    events: u64,
}

impl OurReadAll {
    pub fn new(store: Arc<SledStore>, total: u64) -> Self {
        OurReadAll {
            store,
            total,
            from: 1,
            hist: histogram(),
            events: 0,
        }
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats(
            format!("read_all_json (pages of {READ_ALL_PAGE})"),
            &self.hist,
            self.events,
            busy,
        )
    }
}

impl Contender for OurReadAll {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while Instant::now() < until {
            let t0 = Instant::now();
            let (json, last) = self.store.read_all_json(self.from, READ_ALL_PAGE)?;
            record(&mut self.hist, t0.elapsed());
            std::hint::black_box(json);
            if last < self.from {
                return Err(Failure(format!(
                    "read_all_json from {} returned nothing",
                    self.from
                )));
            }
            self.events += last + 1 - self.from;
            self.from = if last >= self.total { 1 } else { last + 1 };
        }
        Ok(true)
    }
}

/// SQLite's ordered scan of the same rows: `SELECT seq, body ... WHERE seq >= ? ORDER BY
/// seq LIMIT page`, the JSON column concatenated into one array as `read_all_json` does.
/// The sequence is the table's row ID, the order SQLite scans fastest.
pub struct SqliteScan {
    conn: Connection,
    total: i64,
    from: i64,
    out: Vec<u8>,
    hist: Histogram<u64>,
    events: u64,
}

const SCAN_PAGE: &str = "SELECT seq, body FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2";

impl SqliteScan {
    /// A database at `path` holding `rows` (JSON, in sequence order from 1).
    pub fn new<'r>(path: &Path, rows: impl Iterator<Item = &'r [u8]>) -> CmdResult<Self> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch("CREATE TABLE events(seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")?;
        let tx = conn.transaction()?;
        let mut total = 0i64;
        {
            let mut insert = tx.prepare("INSERT INTO events(seq, body) VALUES (?1, ?2)")?;
            for json in rows {
                total += 1;
                insert.execute(params![total, json])?;
            }
        }
        tx.commit()?;
        Ok(SqliteScan {
            conn,
            total,
            from: 1,
            out: Vec::with_capacity(READ_ALL_PAGE * 400),
            hist: histogram(),
            events: 0,
        })
    }

    /// One page from `from` into `self.out`; the last sequence read.
    pub fn page(&mut self, from: i64) -> CmdResult<i64> {
        let mut q = self.conn.prepare_cached(SCAN_PAGE)?;
        let mut rows = q.query(params![from, READ_ALL_PAGE as i64])?;
        self.out.clear();
        self.out.push(b'[');
        let mut last = 0;
        while let Some(row) = rows.next()? {
            if self.out.len() > 1 {
                self.out.push(b',');
            }
            last = row.get::<_, i64>(0)?;
            let body = row.get_ref(1)?;
            let json = body
                .as_blob()
                .map_err(|e| Failure(format!("SQLite: {e}")))?;
            self.out.extend_from_slice(json);
        }
        self.out.push(b']');
        Ok(last)
    }

    /// The JSON of the last page read.
    pub fn last_page(&self) -> &[u8] {
        &self.out
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats(
            format!("SQLite ORDER BY seq scan (pages of {READ_ALL_PAGE})"),
            &self.hist,
            self.events,
            busy,
        )
    }
}

impl Contender for SqliteScan {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while Instant::now() < until {
            let t0 = Instant::now();
            let last = self.page(self.from)?;
            record(&mut self.hist, t0.elapsed());
            if last < self.from {
                return Err(Failure(format!(
                    "SQLite scan from {} read nothing",
                    self.from
                )));
            }
            self.events += (last + 1 - self.from) as u64;
            self.from = if last >= self.total { 1 } else { last + 1 };
        }
        Ok(true)
    }
}

/// serde_json decoding the same stored events (`Event::from_json`) into one `Vec<Event>`
/// per actor, as replay returns them.
pub struct SerdeParse<'w> {
    per_actor: Vec<Vec<&'w [u8]>>,
    next: usize,
    hist: Histogram<u64>,
    events: u64,
}

impl<'w> SerdeParse<'w> {
    /// The events `latest` says are stored, grouped by actor.
    pub fn new(work: &'w Workload, latest: &[i64]) -> Self {
        let mut per_actor: Vec<Vec<&[u8]>> = vec![Vec::new(); work.actors.len()];
        for op in work.ops.iter().filter(|op| !op.conflict) {
            if op.event.version <= latest[op.actor as usize] {
                per_actor[op.actor as usize].push(&op.json);
            }
        }
        SerdeParse {
            per_actor,
            next: 0,
            hist: histogram(),
            events: 0,
        }
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        stats(
            "serde_json parse (Event::from_json)",
            &self.hist,
            self.events,
            busy,
        )
    }
}

impl Contender for SerdeParse<'_> {
    fn events(&self) -> u64 {
        self.events
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(jsons) = self.per_actor.get(self.next) {
            if Instant::now() >= until {
                return Ok(true);
            }
            let t0 = Instant::now();
            let decoded = jsons
                .iter()
                .map(|j| Event::from_json(j))
                .collect::<Result<Vec<Event>, _>>()
                .map_err(|e| Failure(format!("serde_json: {e}")))?;
            record(&mut self.hist, t0.elapsed());
            self.events += decoded.len() as u64;
            self.next += 1;
        }
        Ok(false)
    }
}

/// Encoding the same events to Go-compatible JSON (`Event::to_json`), which every save does
/// before it touches sled: not a target, but it shows how much of a save is encoding.
pub fn json_encode(work: &Workload) -> OpStats {
    let mut hist = histogram();
    let mut bytes = 0usize;
    let started = Instant::now();
    for op in work.ops.iter().filter(|op| !op.conflict) {
        let t0 = Instant::now();
        let json = op.event.to_json();
        record(&mut hist, t0.elapsed());
        bytes += json.len();
    }
    let elapsed = started.elapsed();
    std::hint::black_box(bytes);
    stats(
        "Event::to_json encode (inside every save)",
        &hist,
        hist.len(),
        elapsed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_count_only_rounds_both_ran() {
        let ms = Duration::from_millis;
        // a ran 3 rounds; b finished after 2; a's lonely third round (a slow stretch) is out.
        let a = [
            Some((ms(100), 100)),
            Some((ms(100), 100)),
            Some((ms(100), 1)),
        ];
        let b = [Some((ms(100), 50)), Some((ms(100), 50)), None];
        let (ra, rb) = overlapping_rates(&a, &b);
        assert!((ra - 1000.0).abs() < 1e-6, "{ra}");
        assert!((rb - 500.0).abs() < 1e-6, "{rb}");
        assert_eq!(overlapping_rates(&[None], &[Some((ms(1), 1))]), (0.0, 0.0));
    }
}
