//! Shared workload and baselines for the aether-core benchmarks.
//!
//! Both bench targets (`core`, the criterion suites, and `ratios`, the side-by-side
//! summary) measure the same things the same way:
//! - events of about 300 bytes of JSON with nested data, built once, outside any timed
//!   region, and saved round-robin over [`ACTORS`] actors;
//! - stores on the disk under the workspace's `target/` directory, never on a tmpfs, since
//!   the disk is what the durable numbers are about;
//! - baselines that do the floor of the same work: a raw `sled::Tree::insert` of the same
//!   event JSON in a sled tree of its own keyed `actor‖version` (what a store that kept
//!   events in sled would do at the least), an append + `fdatasync` of 4 KiB in the same
//!   directory, a typed `serde_json` parse of the same JSON, a raw sled range scan, and
//!   SQLite (WAL mode) doing the same saves, batches and ordered scan.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aether_core::{Durability, Event, EventStore, Options, SledStore};
use hdrhistogram::Histogram;
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::json;

/// Actors the save workloads interleave over.
pub const ACTORS: usize = 1_000;

/// Versions per actor held by an [`EventPool`] built for round-robin saves: 10k events,
/// reused with higher versions when exhausted.
pub const POOL_VERSIONS_PER_ACTOR: usize = 10;

/// Writer threads of the concurrent durable save workload.
pub const WRITER_THREADS: usize = 8;

/// The ID of actor number `i`.
pub fn actor_id(i: usize) -> String {
    format!("order-{i:06}")
}

/// The IDs of actors `0..n`.
pub fn actor_ids(n: usize) -> Vec<String> {
    (0..n).map(actor_id).collect()
}

/// Split `actors` into `parts` disjoint shares, round-robin (writer `t` owns `t, t+parts, ..`).
pub fn split_actors(actors: &[String], parts: usize) -> Vec<Vec<String>> {
    (0..parts)
        .map(|t| actors.iter().skip(t).step_by(parts).cloned().collect())
        .collect()
}

/// One workload event: an order with a customer, a line item and a shipping address,
/// about 300 bytes of JSON. `salt` varies the numbers so records are not all alike.
pub fn make_event(actor_id: &str, version: i64, salt: u64) -> Event {
    let mut rng = XorShift::new(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version as u64);
    let qty = 1 + rng.below(9);
    let cents = 100 + rng.below(90_000);
    Event::new(format!("evt-{salt:010}"), "OrderPlaced", actor_id, version)
        .with_data(
            "customer",
            json!({"id": format!("c-{:05}", rng.below(100_000)), "tier": "gold"}),
        )
        .with_data(
            "items",
            json!([{"sku": format!("SKU-{:04}", rng.below(10_000)), "qty": qty, "price": cents as f64 / 100.0}]),
        )
        .with_data(
            "ship",
            json!({"method": "express", "addr": {"city": "Lyon", "zip": "69001"}}),
        )
        .with_data("total", (qty * cents) as f64 / 100.0)
}

/// Save `iters` events from `pool` through the Rust API, one `save_event` each; returns
/// only the saving time (pool rewinds happen between timed stretches).
pub fn time_saves(store: &dyn EventStore, pool: &mut EventPool, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let chunk = pool.take(left);
        let start = Instant::now();
        for event in chunk {
            std::hint::black_box(store.save_event(event).expect("save"));
        }
        total += start.elapsed();
        left -= chunk.len();
    }
    total
}

/// Pre-generated events, handed out in order. When exhausted, [`EventPool::take`] raises
/// every version by the versions per actor it holds and starts over, so the same events
/// can be saved again to the same store without regenerating them (event IDs repeat; no
/// store checks them).
#[derive(Debug)]
pub struct EventPool {
    events: Vec<Event>,
    versions_per_actor: i64,
    next: usize,
}

impl EventPool {
    /// `versions_per_actor` events for each actor, interleaved round-robin: event `i` is for
    /// actor `i % actors.len()`.
    pub fn round_robin(actors: &[String], versions_per_actor: usize) -> EventPool {
        let mut events = Vec::with_capacity(actors.len() * versions_per_actor);
        for v in 0..versions_per_actor {
            for (a, actor) in actors.iter().enumerate() {
                let salt = (v * actors.len() + a) as u64;
                events.push(make_event(actor, v as i64 + 1, salt));
            }
        }
        EventPool::from_events(events, versions_per_actor)
    }

    /// `batch_len` consecutive versions per actor, actor after actor: each
    /// `take(batch_len)` is one actor's batch.
    pub fn batches(actors: &[String], batch_len: usize) -> EventPool {
        let mut events = Vec::with_capacity(actors.len() * batch_len);
        for (a, actor) in actors.iter().enumerate() {
            for v in 0..batch_len {
                events.push(make_event(actor, v as i64 + 1, (a * batch_len + v) as u64));
            }
        }
        EventPool::from_events(events, batch_len)
    }

    fn from_events(events: Vec<Event>, versions_per_actor: usize) -> EventPool {
        EventPool {
            events,
            versions_per_actor: versions_per_actor as i64,
            next: 0,
        }
    }

    /// The events, in hand-out order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Up to `max` next events (fewer at the end of the pool, never none). Starts over with
    /// higher versions when the pool is exhausted: call it outside the timed region.
    pub fn take(&mut self, max: usize) -> &[Event] {
        self.take_at(max).1
    }

    /// [`EventPool::take`], with the index in [`EventPool::events`] of the first event
    /// (for peers that keep prepared bytes per event).
    pub fn take_at(&mut self, max: usize) -> (usize, &[Event]) {
        if self.next == self.events.len() {
            self.rewind();
        }
        let start = self.next;
        let end = (start + max).min(self.events.len());
        self.next = end;
        (start, &self.events[start..end])
    }

    fn rewind(&mut self) {
        for e in &mut self.events {
            e.version += self.versions_per_actor;
        }
        self.next = 0;
    }
}

/// The directory benchmark stores live in: `$AETHER_BENCH_DIR`, or `target/aether-bench`
/// of this workspace (honouring `CARGO_TARGET_DIR`). Warns once if it is a tmpfs, where
/// `fdatasync` measures nothing.
pub fn bench_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = match std::env::var_os("AETHER_BENCH_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
                target.join("aether-bench")
            }
        };
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        let root = root.canonicalize().unwrap_or(root);
        if is_tmpfs(&root) {
            eprintln!(
                "warning: {} is on a tmpfs: durable numbers will not reflect a disk (set AETHER_BENCH_DIR)",
                root.display()
            );
        }
        root
    })
}

fn is_tmpfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `statfs` only writes into the zeroed struct we own; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c_path.as_ptr(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC
    }
}

/// Bytes the files under `path` take on disk (allocated blocks), recursively.
pub fn dir_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok().map(|m| (e.path(), m)))
        .map(|(p, m)| {
            if m.is_dir() {
                dir_bytes(&p)
            } else {
                m.blocks() * 512
            }
        })
        .sum()
}

/// Write back every dirty page (`sync(2)`), so the kernel's delayed writeback of what an
/// earlier measurement wrote does not land in a later one's `fdatasync`s. Untimed.
pub fn settle() {
    // SAFETY: `sync` takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// A fresh directory under [`bench_root`], removed when dropped.
pub fn scratch_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{label}-"))
        .tempdir_in(bench_root())
        .expect("creating a scratch directory")
}

/// A sled store in a fresh scratch directory; keep the directory alive as long as the store.
pub fn open_store(label: &str, durability: Durability) -> (tempfile::TempDir, SledStore) {
    open_store_with(label, Options::with_durability(durability))
}

/// [`open_store`] with explicit options.
pub fn open_store_with(label: &str, options: Options) -> (tempfile::TempDir, SledStore) {
    let dir = scratch_dir(label);
    let store =
        SledStore::open_with(dir.path().join("store"), options).expect("opening the sled store");
    (dir, store)
}

/// Save `per_actor` events for each of `actors`, round-robin, one `save_event` each (the
/// commit order a live system has). Setup only.
pub fn fill_round_robin(store: &dyn EventStore, actors: &[String], per_actor: usize) {
    for v in 0..per_actor {
        for (a, actor) in actors.iter().enumerate() {
            let event = make_event(actor, v as i64 + 1, (v * actors.len() + a) as u64);
            store.save_event(&event).expect("filling the store");
        }
    }
    store.flush().expect("flushing the filled store");
}

/// Versions `1..=count` of one actor. Each event's timestamp is the time it was made, so
/// a peer that must hold the same bytes as a store gets the very events the store saved
/// ([`save_all`]), not a second call's.
pub fn actor_events(actor: &str, count: usize) -> Vec<Event> {
    (1..=count)
        .map(|v| make_event(actor, v as i64, v as u64))
        .collect()
}

/// The events [`fill_round_robin`] saves, in its order (the store's sequence order; the
/// timestamps are the time of this call, see [`actor_events`]).
pub fn round_robin_events(actors: &[String], per_actor: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(actors.len() * per_actor);
    for v in 0..per_actor {
        for (a, actor) in actors.iter().enumerate() {
            events.push(make_event(
                actor,
                v as i64 + 1,
                (v * actors.len() + a) as u64,
            ));
        }
    }
    events
}

/// Save `events` in order, in batches of `batch` (1 for single saves), then flush. Setup only.
pub fn save_all(store: &dyn EventStore, events: &[Event], batch: usize) {
    for chunk in events.chunks(batch.max(1)) {
        if chunk.len() == 1 {
            store.save_event(&chunk[0]).expect("filling the store");
        } else {
            store.save_events(chunk).expect("filling the store");
        }
    }
    store.flush().expect("flushing the filled store");
}

/// Give one actor `count` events ([`actor_events`]), in batches of 1,000. Setup only.
pub fn fill_actor(store: &dyn EventStore, actor: &str, count: usize) {
    for batch in actor_events(actor, count).chunks(1_000) {
        store.save_events(batch).expect("filling the actor");
    }
    store.flush().expect("flushing the filled store");
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

/// A bare sled database like ours (default configuration, `Mode::HighThroughput`) and the
/// tree the raw peer keeps events in.
pub fn raw_sled_open(dir: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .open()
        .expect("opening raw sled");
    let tree = db.open_tree("events").expect("opening raw sled tree");
    (db, tree)
}

/// Insert `events`' JSON under [`raw_key`]s into `tree`. Setup only.
pub fn raw_sled_load(tree: &sled::Tree, events: &[Event]) {
    for e in events {
        tree.insert(raw_key(&e.actor_id, e.version as u64), e.to_json())
            .expect("loading raw sled");
    }
    tree.flush().expect("flushing raw sled");
}

/// Baseline: raw `sled::Tree::insert`s of the same event JSON our store writes, keyed
/// [`raw_key`]`(actor, version)` in a tree of its own: the least a store keeping events in
/// sled would do per save (one insert, no version check, no log).
#[derive(Debug)]
pub struct RawSled {
    _dir: tempfile::TempDir,
    _db: sled::Db,
    tree: sled::Tree,
    /// (actor ID, key, JSON), round-robin like [`EventPool::round_robin`].
    entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    versions_per_actor: u64,
    next: usize,
}

impl RawSled {
    /// A fresh raw sled whose workload is `pool`'s events.
    pub fn new(pool: &EventPool) -> RawSled {
        let dir = scratch_dir("raw-sled");
        let (db, tree) = raw_sled_open(&dir.path().join("sled"));
        let entries = pool
            .events()
            .iter()
            .map(|e| {
                let key = raw_key(&e.actor_id, e.version as u64);
                (e.actor_id.clone(), key, e.to_json())
            })
            .collect();
        RawSled {
            _dir: dir,
            _db: db,
            tree,
            entries,
            versions_per_actor: pool.versions_per_actor as u64,
            next: 0,
        }
    }

    /// Insert the next `n` records; returns the time spent in `insert` only.
    pub fn insert_timed(&mut self, n: usize) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            if self.next == self.entries.len() {
                self.rewind();
            }
            let end = (self.next + left).min(self.entries.len());
            let start = Instant::now();
            for (_, key, json) in &self.entries[self.next..end] {
                self.tree
                    .insert(key.as_slice(), json.as_slice())
                    .expect("raw sled insert");
            }
            total += start.elapsed();
            left -= end - self.next;
            self.next = end;
        }
        total
    }

    fn rewind(&mut self) {
        for (actor, key, _) in &mut self.entries {
            let old = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"));
            *key = raw_key(actor, old + self.versions_per_actor);
        }
        self.next = 0;
    }
}

/// Baseline: the disk's append + `fdatasync` rate, 4 KiB at a time, in a bench directory.
#[derive(Debug)]
pub struct DiskAppender {
    _dir: tempfile::TempDir,
    file: File,
    block: Vec<u8>,
}

impl Default for DiskAppender {
    fn default() -> Self {
        DiskAppender::new()
    }
}

impl DiskAppender {
    /// An empty append-only file in a fresh scratch directory.
    pub fn new() -> DiskAppender {
        let dir = scratch_dir("fdatasync");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("append.log"))
            .expect("creating the append file");
        DiskAppender {
            _dir: dir,
            file,
            block: vec![0xA5; 4096],
        }
    }

    /// Append 4 KiB and `fdatasync`.
    pub fn append_sync(&mut self) {
        self.file.write_all(&self.block).expect("appending");
        self.file.sync_data().expect("fdatasync");
    }
}

/// Context baseline: 4 KiB written in place into a preallocated, synced file, then
/// `fdatasync` — what the store's segment log does (its space is zero-filled and synced
/// ahead of the writer), so no sync has file-size metadata to commit.
#[derive(Debug)]
pub struct DiskOverwriter {
    _dir: tempfile::TempDir,
    file: File,
    block: Vec<u8>,
    offset: u64,
    capacity: u64,
}

impl Default for DiskOverwriter {
    fn default() -> Self {
        DiskOverwriter::new()
    }
}

impl DiskOverwriter {
    /// A zero-filled, fully synced 16 MiB file in a fresh directory.
    pub fn new() -> DiskOverwriter {
        let dir = scratch_dir("overwrite");
        let capacity = 16u64 << 20;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("prealloc.log"))
            .expect("creating the preallocated file");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(capacity >> 20) {
            file.write_all(&zeros).expect("preallocating");
        }
        file.sync_all().expect("syncing the preallocated file");
        File::open(dir.path())
            .and_then(|d| d.sync_all())
            .expect("syncing the directory");
        DiskOverwriter {
            _dir: dir,
            file,
            block: vec![0xA5; 4096],
            offset: 0,
            capacity,
        }
    }

    /// Overwrite the next 4 KiB (wrapping at the end) and `fdatasync`.
    pub fn write_sync(&mut self) {
        use std::os::unix::fs::FileExt;
        if self.offset + self.block.len() as u64 > self.capacity {
            self.offset = 0;
        }
        self.file
            .write_all_at(&self.block, self.offset)
            .expect("overwriting");
        self.file.sync_data().expect("fdatasync");
        self.offset += self.block.len() as u64;
    }
}

/// The floor of replaying an actor from sled, with the same output as `get_events_json`:
/// iterate its [`raw_key`] range and concatenate the values into one JSON array. Returns
/// the records read.
pub fn raw_scan(tree: &sled::Tree, actor_id: &str, out: &mut Vec<u8>) -> usize {
    let start = raw_key(actor_id, 0);
    let end = raw_key(actor_id, u64::MAX);
    out.clear();
    out.push(b'[');
    let mut records = 0;
    for item in tree.range(start.as_slice()..=end.as_slice()) {
        let (_, json) = item.expect("raw scan");
        if records > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&json);
        records += 1;
    }
    out.push(b']');
    records
}

/// The SQLite peer: WAL mode, `synchronous` NORMAL or FULL, one table holding each event's
/// JSON, with the sequence as the row ID (the fastest order SQLite can scan in) and a
/// unique (actor, version) index that the version check reads.
#[derive(Debug)]
pub struct Sqlite {
    _dir: tempfile::TempDir,
    conn: Connection,
    seq: i64,
}

const SQLITE_SCHEMA: &str = "CREATE TABLE events(
    seq INTEGER PRIMARY KEY, actor TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
    UNIQUE(actor, version))";
const SQLITE_MAX: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE actor = ?1";
const SQLITE_INSERT: &str = "INSERT INTO events(seq, actor, version, body) VALUES (?1, ?2, ?3, ?4)";
const SQLITE_PAGE: &str = "SELECT seq, body FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2";

impl Sqlite {
    /// A fresh database in its own scratch directory.
    pub fn new(label: &str, synchronous: &str) -> Sqlite {
        let dir = scratch_dir(label);
        let conn = Connection::open(dir.path().join("events.db")).expect("opening SQLite");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("WAL mode");
        conn.pragma_update(None, "synchronous", synchronous)
            .expect("synchronous");
        conn.execute_batch(SQLITE_SCHEMA).expect("SQLite schema");
        Sqlite {
            _dir: dir,
            conn,
            seq: 0,
        }
    }

    /// One save as our store does it: in one transaction, read the actor's latest version,
    /// refuse a stale one, insert. Returns whether the event was stored.
    pub fn save(&mut self, event: &Event, json: &[u8]) -> bool {
        self.save_batch(std::slice::from_ref(event), &[json])
    }

    /// One batch of one actor's consecutive events in one transaction, checked once.
    pub fn save_batch(&mut self, events: &[Event], json: &[&[u8]]) -> bool {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("SQLite begin");
        let current: i64 = tx
            .prepare_cached(SQLITE_MAX)
            .and_then(|mut q| q.query_row(params![events[0].actor_id], |r| r.get(0)))
            .expect("SQLite version check");
        if events[0].version <= current {
            tx.rollback().expect("SQLite rollback");
            return false;
        }
        {
            let mut insert = tx.prepare_cached(SQLITE_INSERT).expect("SQLite insert");
            for (e, j) in events.iter().zip(json) {
                self.seq += 1;
                insert
                    .execute(params![self.seq, e.actor_id, e.version, j])
                    .expect("SQLite insert");
            }
        }
        tx.commit().expect("SQLite commit");
        true
    }

    /// Load `events` in one transaction (setup only).
    pub fn load(&mut self, events: &[Event]) {
        for chunk in events.chunks(10_000) {
            let json: Vec<Vec<u8>> = chunk.iter().map(Event::to_json).collect();
            let refs: Vec<&[u8]> = json.iter().map(Vec::as_slice).collect();
            let tx = self.conn.transaction().expect("SQLite begin");
            {
                let mut insert = tx.prepare_cached(SQLITE_INSERT).expect("SQLite insert");
                for (e, j) in chunk.iter().zip(refs) {
                    self.seq += 1;
                    insert
                        .execute(params![self.seq, e.actor_id, e.version, j])
                        .expect("SQLite insert");
                }
            }
            tx.commit().expect("SQLite commit");
        }
    }

    /// Rows stored.
    pub fn rows(&self) -> i64 {
        self.seq
    }

    /// Up to `limit` rows from `from_seq` on, in sequence order, as one JSON array (the
    /// output `read_all_json` gives); returns the last sequence read (0 if none).
    pub fn read_page_json(&self, from_seq: i64, limit: usize, out: &mut Vec<u8>) -> i64 {
        let mut q = self.conn.prepare_cached(SQLITE_PAGE).expect("SQLite page");
        let mut rows = q
            .query(params![from_seq, limit as i64])
            .expect("SQLite page");
        out.clear();
        out.push(b'[');
        let mut last = 0;
        while let Some(row) = rows.next().expect("SQLite row") {
            if out.len() > 1 {
                out.push(b',');
            }
            last = row.get::<_, i64>(0).expect("seq");
            out.extend_from_slice(row.get_ref(1).expect("body").as_blob().expect("blob"));
        }
        out.push(b']');
        last
    }
}

/// A small, fast, deterministic generator (xorshift64*), so no `rand` dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Latencies of `n` calls of `op`, each timed alone with `Instant`, in nanoseconds.
pub fn latency_histogram(n: usize, mut op: impl FnMut(usize)) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for i in 0..n {
        let start = Instant::now();
        op(i);
        let nanos = start.elapsed().as_nanos() as u64;
        hist.record(nanos.max(1)).expect("recording a latency");
    }
    hist
}

/// `get_latest_version` latencies over `n` random actors of `0..actors`.
pub fn latest_version_histogram(
    store: &dyn EventStore,
    actors: &[String],
    n: usize,
) -> Histogram<u64> {
    let mut rng = XorShift::new(7);
    let picks: Vec<usize> = (0..n)
        .map(|_| rng.below(actors.len() as u64) as usize)
        .collect();
    // Warm the path (and the page cache) before recording.
    for p in picks.iter().take(10_000) {
        std::hint::black_box(
            store
                .get_latest_version(&actors[*p])
                .expect("latest version"),
        );
    }
    latency_histogram(n, |i| {
        std::hint::black_box(
            store
                .get_latest_version(&actors[picks[i]])
                .expect("latest version"),
        );
    })
}

/// Nanoseconds of a percentile as microseconds.
pub fn percentile_us(hist: &Histogram<u64>, percentile: f64) -> f64 {
    hist.value_at_percentile(percentile) as f64 / 1_000.0
}

/// Check the workload's event size: the brief is "about 300 bytes".
pub fn assert_event_size(pool: &EventPool) -> usize {
    let total: usize = pool.events().iter().map(|e| e.to_json().len()).sum();
    let mean = total / pool.events().len().max(1);
    assert!(
        (250..=350).contains(&mean),
        "workload events encode to {mean} bytes on average, not about 300"
    );
    mean
}
