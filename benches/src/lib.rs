//! Shared workload and baselines for the aether-core benchmarks.
//!
//! Both bench targets (`core`, the criterion suites, and `ratios`, the side-by-side
//! summary) measure the same things the same way:
//! - events of about 300 bytes of JSON with nested data, built once, outside any timed
//!   region, and saved round-robin over [`ACTORS`] actors;
//! - stores on the disk under the workspace's `target/` directory, never on a tmpfs, since
//!   the disk is what the durable numbers are about;
//! - baselines that do the floor of the same work: a raw `sled::Tree::insert` of the same
//!   record bytes under the same keys, an append + `fdatasync` of 4 KiB in the same
//!   directory, a typed `serde_json` parse of the same JSON, a raw sled range scan.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aether_core::sled_store::layout::{decode_event_record, encode_event_record, event_key};
use aether_core::{Durability, Event, EventStore, Options, SledStore};
use hdrhistogram::Histogram;
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
        if self.next == self.events.len() {
            self.rewind();
        }
        let start = self.next;
        let end = (start + max).min(self.events.len());
        self.next = end;
        &self.events[start..end]
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

/// Give one actor `count` events, in batches of 1,000. Setup only.
pub fn fill_actor(store: &dyn EventStore, actor: &str, count: usize) {
    let mut batch = Vec::with_capacity(1_000);
    for v in 1..=count {
        batch.push(make_event(actor, v as i64, v as u64));
        if batch.len() == 1_000 || v == count {
            store.save_events(&batch).expect("filling the actor");
            batch.clear();
        }
    }
    store.flush().expect("flushing the filled store");
}

/// Baseline: raw `sled::Tree::insert`s of the records our store would write, under the same
/// `events` keys, on a sled with default configuration but `Mode::HighThroughput` (as ours).
#[derive(Debug)]
pub struct RawSled {
    _dir: tempfile::TempDir,
    _db: sled::Db,
    tree: sled::Tree,
    /// (actor ID, key, record), round-robin like [`EventPool::round_robin`].
    entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    versions_per_actor: u64,
    next: usize,
}

impl RawSled {
    /// A fresh raw sled whose workload is the records of `pool`'s events.
    pub fn new(pool: &EventPool) -> RawSled {
        let dir = scratch_dir("raw-sled");
        let db = sled::Config::new()
            .path(dir.path().join("sled"))
            .mode(sled::Mode::HighThroughput)
            .open()
            .expect("opening raw sled");
        let tree = db.open_tree("events").expect("opening raw sled tree");
        let entries = pool
            .events()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let record = encode_event_record(i as u64 + 1, &e.to_json());
                let key = event_key(e.actor_id.as_bytes(), e.version as u64);
                (e.actor_id.clone(), key, record)
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
            for (_, key, record) in &self.entries[self.next..end] {
                self.tree
                    .insert(key.as_slice(), record.as_slice())
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
            *key = event_key(actor.as_bytes(), old + self.versions_per_actor);
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
/// `fdatasync` — what the store's write-ahead log does (it is zero-filled once and reused),
/// so no sync has file-size metadata to commit.
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
    /// A zero-filled, fully synced 16 MiB file (the log's default size) in a fresh directory.
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

/// The floor of replaying an actor from sled: iterate its key range, touching every byte
/// count. Returns (records, key + value bytes).
pub fn raw_scan(tree: &sled::Tree, actor_id: &str) -> (usize, usize) {
    let start = event_key(actor_id.as_bytes(), 0);
    let end = event_key(actor_id.as_bytes(), u64::MAX);
    let mut records = 0;
    let mut bytes = 0;
    for item in tree.range(start.as_slice()..=end.as_slice()) {
        let (k, v) = item.expect("raw scan");
        records += 1;
        bytes += k.len() + v.len();
    }
    (records, bytes)
}

/// The JSON of each of the actor's stored records, as the store holds it.
pub fn stored_json(tree: &sled::Tree, actor_id: &str) -> Vec<Vec<u8>> {
    let start = event_key(actor_id.as_bytes(), 0);
    let end = event_key(actor_id.as_bytes(), u64::MAX);
    tree.range(start.as_slice()..=end.as_slice())
        .map(|item| {
            let (_, v) = item.expect("scan");
            decode_event_record(&v).expect("record").json.to_vec()
        })
        .collect()
}

/// The store's `events` tree (sled hands out the same tree for the same name).
pub fn events_tree(store: &SledStore) -> sled::Tree {
    store
        .sled()
        .open_tree(aether_core::sled_store::layout::TREE_EVENTS)
        .expect("opening the events tree")
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
