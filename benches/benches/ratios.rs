//! The ratio summary: each target of the store is a ratio to a baseline measured side by
//! side in this one run, so a shared, noisy machine moves both sides alike.
//!
//! Every comparison runs its two sides in alternating rounds (A B, B A, A B, ...) of a
//! fixed time budget each; a round's ratio compares two neighbouring measurements, so slow
//! drift cancels, and the reported ratio is the median over the rounds (with its range).
//!
//! `cargo bench -p aether-benches --bench ratios [-- --rounds N --secs S]`
//! (defaults: 10 rounds of 0.3 s per side; the whole run takes about two minutes). Before
//! each comparison the page cache is written back (`sync`), so one comparison's delayed
//! writeback does not slow the next one's `fdatasync`s.
//!
//! `-- --only SIDE [--secs S]` runs one side alone for S seconds (default 10), for a
//! profiler: `perf record -g target/release/deps/ratios-* --only buffered-save`. Sides:
//! buffered-save, raw-insert, sqlite-normal, durable-1, sqlite-full, disk-append-sync,
//! disk-overwrite-sync, durable-8, durable-8-window, durable-batch, sqlite-batch-full,
//! sqlite-batch-full-encoding, batch-encoding,
//! replay, parse, parse-drop, replay-json, raw-scan, read-all-json, sqlite-scan,
//! latest-version, commit-10x10, batch-100, retry, last-event, read-all-filtered,
//! read-all-raw.
//!
//! Rows marked "context" have no target: they show a stricter or a looser baseline, or a
//! configuration to compare with, next to the row above them.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use aether_benches::*;
use aether_core::{Durability, Event, EventStore, MemoryStore, Options, SledStore};

/// One side of a comparison: does work for at least `budget` of timed work and returns
/// (operations, timed duration). Setup it needs between timed stretches is not counted.
type Side<'a> = dyn FnMut(Duration) -> (u64, Duration) + 'a;

struct Settings {
    rounds: usize,
    budget: Duration,
    /// Run only this side, for `only_secs`, and print no table.
    only: Option<String>,
    only_secs: Duration,
}

fn settings() -> Settings {
    let mut s = Settings {
        rounds: 10,
        budget: Duration::from_millis(300),
        only: None,
        only_secs: Duration::from_secs(10),
    };
    let mut secs = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].as_str(), value) {
            ("--rounds", Some(v)) => {
                s.rounds = v.parse().expect("--rounds takes a number");
                i += 1;
            }
            ("--secs", Some(v)) => {
                secs = Some(Duration::from_secs_f64(
                    v.parse().expect("--secs takes seconds"),
                ));
                i += 1;
            }
            ("--only", Some(v)) => {
                s.only = Some(v.clone());
                i += 1;
            }
            // `cargo bench` passes `--bench` and any filter; they do not apply here.
            _ => {}
        }
        i += 1;
    }
    match (secs, &s.only) {
        (Some(d), Some(_)) => s.only_secs = d,
        (Some(d), None) => s.budget = d,
        _ => {}
    }
    s.rounds = s.rounds.max(2);
    s
}

#[derive(Debug)]
struct Comparison {
    a_rates: Vec<f64>,
    b_rates: Vec<f64>,
    ratios: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Comparison {
    fn ratio(&self) -> f64 {
        median(&self.ratios)
    }
    fn a_rate(&self) -> f64 {
        median(&self.a_rates)
    }
    fn spread(&self) -> (f64, f64) {
        let min = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.ratios.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
}

fn rate(side: &mut Side<'_>, budget: Duration) -> f64 {
    let (ops, took) = side(budget);
    ops as f64 / took.as_secs_f64()
}

/// What a comparison is called and reports.
struct Pair {
    row: &'static str,
    /// Side names, for `--only`.
    a: &'static str,
    b: &'static str,
    a_unit: &'static str,
    b_unit: &'static str,
    /// `None` for a context row that has no target.
    target: Option<f64>,
    aim: Option<f64>,
}

/// Alternate A and B (ABBA order), after one short untimed warm-up of each, and add the
/// row; or, with `--only`, run just the named side.
fn measure<'a>(
    s: &Settings,
    rows: &mut Vec<Row>,
    pair: Pair,
    a: &mut Side<'a>,
    b: &mut Side<'a>,
) -> Option<Comparison> {
    if let Some(only) = &s.only {
        for (name, side) in [(pair.a, a), (pair.b, b)] {
            if name == only {
                let (ops, took) = side(s.only_secs);
                eprintln!("{name}: {}", human(ops as f64 / took.as_secs_f64()));
            }
        }
        return None;
    }
    settle();
    eprint!("{}: per-round ratios", pair.row);
    a(s.budget / 4);
    b(s.budget / 4);
    let mut c = Comparison {
        a_rates: Vec::new(),
        b_rates: Vec::new(),
        ratios: Vec::new(),
    };
    for round in 0..s.rounds {
        let (ra, rb) = if round % 2 == 0 {
            let ra = rate(a, s.budget);
            (ra, rate(b, s.budget))
        } else {
            let rb = rate(b, s.budget);
            (rate(a, s.budget), rb)
        };
        eprint!(" {:.3}", ra / rb);
        c.a_rates.push(ra);
        c.b_rates.push(rb);
        c.ratios.push(ra / rb);
    }
    eprintln!();
    rows.push(Row {
        name: pair.row,
        a: format!("{} {}", human(median(&c.a_rates)), pair.a_unit),
        b: format!("{} {}", human(median(&c.b_rates)), pair.b_unit),
        value: c.ratio(),
        spread: Some(c.spread()),
        target: pair.target,
        aim: pair.aim,
        higher_is_better: true,
        unit: "",
    });
    Some(c)
}

/// Save single events from `pool` until `budget` of saving time has passed.
fn saves<'a>(
    store: &'a dyn EventStore,
    pool: &'a mut EventPool,
) -> impl FnMut(Duration) -> (u64, Duration) + 'a {
    move |budget| {
        let mut ops = 0u64;
        let mut took = Duration::ZERO;
        while took < budget {
            let chunk = pool.take(16);
            let start = Instant::now();
            for event in chunk {
                black_box(store.save_event(event).expect("save"));
            }
            took += start.elapsed();
            ops += chunk.len() as u64;
        }
        (ops, took)
    }
}

/// [`WRITER_THREADS`] threads saving to their own actors until the deadline; wall time.
fn concurrent_saves<'a>(
    store: &'a dyn EventStore,
    pools: &'a mut [EventPool],
) -> impl FnMut(Duration) -> (u64, Duration) + 'a {
    move |budget| {
        let barrier = Barrier::new(pools.len() + 1);
        std::thread::scope(|s| {
            let handles: Vec<_> = pools
                .iter_mut()
                .map(|pool| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let deadline = Instant::now() + budget;
                        let mut ops = 0u64;
                        while Instant::now() < deadline {
                            // Rewinding the pool is a few thousand integer additions,
                            // negligible next to a durable save.
                            let event = &pool.take(1)[0];
                            black_box(store.save_event(event).expect("save"));
                            ops += 1;
                        }
                        ops
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let ops = handles.into_iter().map(|h| h.join().expect("writer")).sum();
            (ops, start.elapsed())
        })
    }
}

/// Repeat `op` (worth `per_op` operations) until `budget` has passed.
fn repeat<'a>(
    per_op: u64,
    mut op: impl FnMut() + 'a,
) -> impl FnMut(Duration) -> (u64, Duration) + 'a {
    move |budget| {
        let start = Instant::now();
        let mut ops = 0u64;
        while start.elapsed() < budget {
            op();
            ops += per_op;
        }
        (ops, start.elapsed())
    }
}

struct Row {
    name: &'static str,
    a: String,
    b: String,
    value: f64,
    spread: Option<(f64, f64)>,
    target: Option<f64>,
    aim: Option<f64>,
    higher_is_better: bool,
    unit: &'static str,
}

impl Row {
    fn status(&self) -> String {
        let ok = |t: f64| {
            if self.higher_is_better {
                self.value >= t
            } else {
                self.value <= t
            }
        };
        let status = match (self.target.map(ok), self.aim.map(ok)) {
            (None, _) => "context",
            (Some(true), Some(true)) => "met (aim met)",
            (Some(true), _) => "met",
            (Some(false), _) => "MISSED",
        };
        // Rounds that disagree by more than 1.5x mean the machine changed under the run
        // (another job's I/O or CPU): the median is still the best guess, but say so.
        match self.spread {
            Some((lo, hi)) if hi > 1.5 * lo => format!("{status}, noisy"),
            _ => status.to_owned(),
        }
    }
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k/s", rate / 1e3)
    } else {
        format!("{rate:.0}/s")
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("RATIO SUMMARY (medians of alternating rounds; range = min..max of per-round ratios)");
    println!(
        "{:<44} {:>22} {:>22} {:>7} {:>15} {:>12} status",
        "target", "A", "B", "value", "range", "goal"
    );
    for r in rows {
        let op = if r.higher_is_better { ">=" } else { "<=" };
        let goal = match (r.target, r.aim) {
            (None, _) => String::new(),
            (Some(target), Some(aim)) => format!("{op}{target} ({aim})"),
            (Some(target), None) => format!("{op}{target}{}", r.unit),
        };
        let range = r
            .spread
            .map(|(lo, hi)| format!("{lo:.2}..{hi:.2}"))
            .unwrap_or_default();
        println!(
            "{:<44} {:>22} {:>22} {:>7.2} {:>15} {:>12} {}",
            r.name,
            r.a,
            r.b,
            r.value,
            range,
            goal,
            r.status()
        );
    }
}

/// `synced_commits / syncs` of a durable store: saves that shared one `fdatasync`.
fn saves_per_sync(rows: &mut Vec<Row>, name: &'static str, store: &SledStore) {
    let m = store.metrics();
    let per = m.synced_commits as f64 / m.syncs.max(1) as f64;
    eprintln!(
        "{name}: {} commits over {} fdatasyncs",
        m.synced_commits, m.syncs
    );
    rows.push(Row {
        name,
        a: format!("{} commits", m.synced_commits),
        b: format!("{} syncs", m.syncs),
        value: per,
        spread: None,
        target: None,
        aim: None,
        higher_is_better: true,
        unit: "",
    });
}

/// A side that saves from `pool` to SQLite, one transaction per save (the JSON prepared).
fn sqlite_saves<'a>(
    db: &'a mut Sqlite,
    pool: &'a mut EventPool,
    json: &'a [Vec<u8>],
) -> impl FnMut(Duration) -> (u64, Duration) + 'a {
    move |budget| {
        let mut ops = 0u64;
        let mut took = Duration::ZERO;
        while took < budget {
            let (first, chunk) = pool.take_at(16);
            let start = Instant::now();
            for (i, event) in chunk.iter().enumerate() {
                assert!(db.save(event, &json[first + i]), "SQLite refused a save");
            }
            took += start.elapsed();
            ops += chunk.len() as u64;
        }
        (ops, took)
    }
}

fn pool_json(pool: &EventPool) -> Vec<Vec<u8>> {
    pool.events().iter().map(Event::to_json).collect()
}

fn main() {
    let s = settings();
    let started = Instant::now();
    eprintln!(
        "aether ratios: {} rounds x {:?} per side; stores under {} ({} CPUs)",
        s.rounds,
        s.budget,
        bench_root().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let actors = actor_ids(ACTORS);
    let mut rows = Vec::new();
    let wanted = |sides: &[&str]| match s.only.as_deref() {
        None => true,
        Some(only) => sides.contains(&only),
    };

    // Buffered save vs raw sled inserts of the same JSON, and vs SQLite NORMAL.
    if wanted(&["buffered-save", "raw-insert", "sqlite-normal"]) {
        let mut pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
        let mean = assert_event_size(&pool);
        eprintln!("workload: {ACTORS} actors round-robin, {mean}-byte events");
        let (_dir, store) = open_store("ratio-buffered", Durability::Buffered);
        {
            let mut raw = RawSled::new(&pool);
            let mut a = saves(&store, &mut pool);
            let mut b = |budget: Duration| {
                let mut took = Duration::ZERO;
                let mut ops = 0;
                while took < budget {
                    took += raw.insert_timed(16);
                    ops += 16;
                }
                (ops, took)
            };
            let pair = Pair {
                row: "buffered save / raw sled insert",
                a: "buffered-save",
                b: "raw-insert",
                a_unit: "saves",
                b_unit: "inserts",
                target: Some(1.2),
                aim: None,
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        let mut sqlite_pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
        let json = pool_json(&sqlite_pool);
        let mut sqlite = Sqlite::new("sqlite-normal", "NORMAL");
        let mut a = saves(&store, &mut pool);
        let mut b = sqlite_saves(&mut sqlite, &mut sqlite_pool, &json);
        let pair = Pair {
            row: "buffered save / SQLite NORMAL",
            a: "buffered-save",
            b: "sqlite-normal",
            a_unit: "saves",
            b_unit: "saves",
            target: Some(3.0),
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
    }

    // Durable save (1 writer) vs SQLite FULL and the disk's append + fdatasync; 8 writers
    // vs 1; batches of 100 vs SQLite 100-row transactions.
    let durable_sides = [
        "durable-1",
        "sqlite-full",
        "disk-append-sync",
        "disk-overwrite-sync",
        "durable-8",
        "durable-8-window",
    ];
    if wanted(&durable_sides) {
        let mut pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
        let (_dir1, durable1) = open_store("ratio-durable-1", Durability::Durable);
        {
            let mut sqlite_pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
            let json = pool_json(&sqlite_pool);
            let mut sqlite = Sqlite::new("sqlite-full", "FULL");
            let mut a = saves(&durable1, &mut pool);
            let mut b = sqlite_saves(&mut sqlite, &mut sqlite_pool, &json);
            let pair = Pair {
                row: "durable save, 1 writer / SQLite FULL",
                a: "durable-1",
                b: "sqlite-full",
                a_unit: "saves",
                b_unit: "saves",
                target: Some(1.2),
                aim: None,
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        {
            let mut disk = DiskAppender::new();
            let mut a = saves(&durable1, &mut pool);
            let mut b = repeat(1, || disk.append_sync());
            let pair = Pair {
                row: "durable save, 1 writer / append+fdatasync",
                a: "durable-1",
                b: "disk-append-sync",
                a_unit: "saves",
                b_unit: "syncs",
                target: Some(1.0),
                aim: None,
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        {
            // Context: the log's space is zero-filled and synced ahead of the writer, so
            // its syncs carry no file-size metadata; this is the stricter floor for that.
            let mut disk = DiskOverwriter::new();
            let mut a = saves(&durable1, &mut pool);
            let mut b = repeat(1, || disk.write_sync());
            let pair = Pair {
                row: "  context: same / overwrite+fdatasync",
                a: "durable-1",
                b: "disk-overwrite-sync",
                a_unit: "saves",
                b_unit: "syncs",
                target: None,
                aim: None,
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        let (_dir8, durable8) = open_store("ratio-durable-8", Durability::Durable);
        let mut pools: Vec<EventPool> = split_actors(&actors, WRITER_THREADS)
            .iter()
            .map(|share| EventPool::round_robin(share, POOL_VERSIONS_PER_ACTOR * 2))
            .collect();
        {
            let mut a = concurrent_saves(&durable8, &mut pools);
            let mut b = saves(&durable1, &mut pool);
            let pair = Pair {
                row: "durable save, 8 writers / 1 writer",
                a: "durable-8",
                b: "durable-1",
                a_unit: "saves",
                b_unit: "saves",
                target: Some(4.0),
                aim: None,
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        if s.only.is_none() {
            saves_per_sync(&mut rows, "  saves per fdatasync, 1 writer", &durable1);
            saves_per_sync(&mut rows, "  saves per fdatasync, 8 writers", &durable8);
        }
        // Context: the same with a group-commit window (the leader waits 300 µs for saves
        // in flight; the default is no window), to show what a window costs or gains here.
        let mut options = Options::with_durability(Durability::Durable);
        options.group_commit_window = Duration::from_micros(300);
        let (_dir8w, durable8w) = open_store_with("ratio-durable-8-window", options);
        let mut a = concurrent_saves(&durable8w, &mut pools);
        let mut b = saves(&durable1, &mut pool);
        let pair = Pair {
            row: "  context: 8 writers, 300 µs window / 1 writer",
            a: "durable-8-window",
            b: "durable-1",
            a_unit: "saves",
            b_unit: "saves",
            target: None,
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
        if s.only.is_none() {
            saves_per_sync(&mut rows, "  saves per fdatasync, 8 w., window", &durable8w);
        }
    }

    if wanted(&[
        "durable-batch",
        "sqlite-batch-full",
        "sqlite-batch-full-encoding",
        "batch-encoding",
        "batch-encoding-serde",
    ]) {
        const BATCH: usize = 100;
        let batch_actors = actor_ids(100);
        let (_dir, store) = open_store("ratio-batch", Durability::Durable);
        let mut pool = EventPool::batches(&batch_actors, BATCH);
        let mut sqlite_pool = EventPool::batches(&batch_actors, BATCH);
        let json = pool_json(&sqlite_pool);
        let mut sqlite = Sqlite::new("sqlite-batch", "FULL");
        let mut a = |budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            while took < budget {
                let batch = pool.take(BATCH);
                let start = Instant::now();
                black_box(store.save_events(batch).expect("save_events"));
                took += start.elapsed();
                ops += batch.len() as u64;
            }
            (ops, took)
        };
        let mut b = |budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            while took < budget {
                let (first, batch) = sqlite_pool.take_at(BATCH);
                let refs: Vec<&[u8]> = json[first..first + batch.len()]
                    .iter()
                    .map(Vec::as_slice)
                    .collect();
                let start = Instant::now();
                assert!(sqlite.save_batch(batch, &refs), "SQLite refused a batch");
                took += start.elapsed();
                ops += batch.len() as u64;
            }
            (ops, took)
        };
        let pair = Pair {
            row: "durable batch of 100 / SQLite 100-row tx FULL",
            a: "durable-batch",
            b: "sqlite-batch-full",
            a_unit: "events",
            b_unit: "events",
            target: Some(2.0),
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);

        // Context: the SQLite peer above is handed each event's JSON ready-made, while a
        // save encodes it. Here SQLite's timed part encodes the batch too (into one reused
        // buffer), so both sides do the same work from the same `Event`s.
        let mut encoded = Vec::with_capacity(BATCH * 400);
        let mut ends = Vec::with_capacity(BATCH);
        let mut b = |budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            while took < budget {
                let batch = sqlite_pool.take(BATCH);
                let start = Instant::now();
                encoded.clear();
                ends.clear();
                for e in batch {
                    e.write_json(&mut encoded);
                    ends.push(encoded.len());
                }
                let refs: Vec<&[u8]> = (0..ends.len())
                    .map(|i| &encoded[if i == 0 { 0 } else { ends[i - 1] }..ends[i]])
                    .collect();
                assert!(sqlite.save_batch(batch, &refs), "SQLite refused a batch");
                took += start.elapsed();
                ops += batch.len() as u64;
            }
            (ops, took)
        };
        let pair = Pair {
            row: "  context: same / SQLite tx, encoding timed",
            a: "durable-batch",
            b: "sqlite-batch-full-encoding",
            a_unit: "events",
            b_unit: "events",
            target: None,
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);

        // Context: the batch's JSON encoding alone, the part of a save that is CPU work
        // rather than the device's flush: how much of a batch it is.
        let mut encode_pool = EventPool::batches(&batch_actors, BATCH);
        let mut b = |budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            let mut out = Vec::with_capacity(BATCH * 400);
            while took < budget {
                let batch = encode_pool.take(BATCH);
                let start = Instant::now();
                out.clear();
                for e in batch {
                    e.write_json(&mut out);
                }
                black_box(&out);
                took += start.elapsed();
                ops += batch.len() as u64;
            }
            (ops, took)
        };
        let pair = Pair {
            row: "  context: same / its JSON encoding alone",
            a: "durable-batch",
            b: "batch-encoding",
            a_unit: "events",
            b_unit: "events",
            target: None,
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);

        // Context: the hand-written encoder a save uses against the serde path it replaced
        // (`json::to_writer_go` on the derived `Serialize`, the same bytes), same events.
        let encode = |pool: &mut EventPool, serde: bool, budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            let mut out = Vec::with_capacity(BATCH * 400);
            while took < budget {
                let batch = pool.take(BATCH);
                let start = Instant::now();
                out.clear();
                for e in batch {
                    if serde {
                        aether_core::json::to_writer_go(&mut out, e).expect("encode");
                    } else {
                        e.write_json(&mut out);
                    }
                }
                black_box(&out);
                took += start.elapsed();
                ops += batch.len() as u64;
            }
            (ops, took)
        };
        let mut hand_pool = EventPool::batches(&batch_actors, BATCH);
        let mut serde_pool = EventPool::batches(&batch_actors, BATCH);
        let mut a = |budget: Duration| encode(&mut hand_pool, false, budget);
        let mut b = |budget: Duration| encode(&mut serde_pool, true, budget);
        let pair = Pair {
            row: "  context: JSON encode, hand-written / serde",
            a: "batch-encoding",
            b: "batch-encoding-serde",
            a_unit: "events",
            b_unit: "events",
            target: None,
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
    }

    // Replay vs parsing and scanning the same stored bytes.
    if wanted(&["replay", "parse", "parse-drop", "replay-json", "raw-scan"]) {
        let (_dir, store) = open_store("ratio-replay", Durability::Buffered);
        // The same store as the criterion `replay` group: a 1k-event actor (replayed here)
        // beside a 100k-event one, so the cache and the heap are not toy-sized. The raw
        // sled peer holds the same two actors.
        let actor = "replay-1k";
        let events = actor_events(actor, 1_000);
        let big = actor_events("replay-100k", 100_000);
        save_all(&store, &events, 1_000);
        save_all(&store, &big, 1_000);
        let raw_dir = scratch_dir("raw-sled-replay");
        let (_raw_db, tree) = raw_sled_open(&raw_dir.path().join("sled"));
        raw_sled_load(&tree, &events);
        raw_sled_load(&tree, &big);
        drop(big);
        let json: Vec<Vec<u8>> = events.iter().map(Event::to_json).collect();
        let n = json.len() as u64;
        // Both sides hand back the same bytes.
        let mut scanned = Vec::new();
        assert_eq!(raw_scan(&tree, actor, &mut scanned), 1_000);
        assert!(
            store.get_events_json(actor, 0).expect("replay") == scanned,
            "the raw sled peer holds other bytes than the store"
        );

        let mut a = repeat(n, || {
            black_box(store.get_events(actor, 0).expect("replay"));
        });
        // The same output as a replay: a Vec of the 1,000 parsed events.
        let mut b = repeat(n, || {
            let events: Vec<Event> = json
                .iter()
                .map(|bytes| Event::from_json(bytes).expect("parse"))
                .collect();
            black_box(events);
        });
        let pair = Pair {
            row: "replay get_events / serde_json parse",
            a: "replay",
            b: "parse",
            a_unit: "events",
            b_unit: "events",
            target: Some(0.8),
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);

        // Context: a parse loop that drops each event at once reuses the same hot heap
        // chunks; no replay, which must hand back all 1,000 events, can reach it.
        let mut a = repeat(n, || {
            black_box(store.get_events(actor, 0).expect("replay"));
        });
        let mut b = repeat(n, || {
            for bytes in &json {
                black_box(Event::from_json(bytes).expect("parse"));
            }
        });
        let pair = Pair {
            row: "  context: same / parse, dropping each event",
            a: "replay",
            b: "parse-drop",
            a_unit: "events",
            b_unit: "events",
            target: None,
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);

        let mut a = repeat(n, || {
            black_box(store.get_events_json(actor, 0).expect("replay"));
        });
        let mut b = repeat(n, || {
            black_box(raw_scan(&tree, actor, &mut scanned));
        });
        let pair = Pair {
            row: "replay get_events_json / raw sled scan",
            a: "replay-json",
            b: "raw-scan",
            a_unit: "events",
            b_unit: "records",
            target: Some(1.0),
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
    }

    // A store of 1,000 actors x 100 events, saved round-robin: read_all against SQLite's
    // ordered scan of the same rows, disk bytes per event, and latest_version latency.
    if wanted(&["read-all-json", "sqlite-scan", "latest-version"]) {
        const PER_ACTOR: usize = 100;
        let (_dir, store) = open_store("ratio-filled", Durability::Buffered);
        let events = round_robin_events(&actors, PER_ACTOR);
        let fill_start = Instant::now();
        save_all(&store, &events, 1);
        eprintln!(
            "filled 1,000 actors x {PER_ACTOR} events in {:.1} s",
            fill_start.elapsed().as_secs_f64()
        );
        let total = events.len() as u64;
        let payload: u64 = events.iter().map(|e| e.to_json().len() as u64).sum();
        // Every byte in the store's directory, zero fill ahead of the writer included,
        // after a flush (the index on disk, the high-water mark recorded).
        store.flush().expect("flush");
        let disk = store.disk_bytes();
        if s.only.is_none() {
            eprintln!(
                "disk: {disk} bytes for {total} events of {payload} JSON bytes ({:.0} bytes per event; log/ {}, sled/ {})",
                disk as f64 / total as f64,
                dir_bytes(&store.path().join("log")),
                dir_bytes(&store.path().join("sled")),
            );
            rows.push(Row {
                name: "disk bytes per event / payload bytes",
                a: format!("{:.0} B/event", disk as f64 / total as f64),
                b: format!("{:.0} B/event", payload as f64 / total as f64),
                value: disk as f64 / payload as f64,
                spread: None,
                target: Some(1.5),
                aim: None,
                higher_is_better: false,
                unit: "",
            });
        }

        if wanted(&["read-all-json", "sqlite-scan"]) {
            const PAGE: usize = 1_000;
            let mut sqlite = Sqlite::new("sqlite-scan", "NORMAL");
            sqlite.load(&events);
            let mut page = Vec::new();
            // Both sides hand back the same bytes.
            let (ours, last) = store.read_all_json(1, PAGE).expect("read_all_json");
            assert_eq!(sqlite.read_page_json(1, PAGE, &mut page), last as i64);
            assert!(ours == page, "SQLite holds other bytes than the store");
            let mut from = 1u64;
            let mut a = |budget: Duration| {
                let start = Instant::now();
                let mut ops = 0u64;
                while start.elapsed() < budget {
                    let (json, last) = store.read_all_json(from, PAGE).expect("read_all_json");
                    black_box(json);
                    ops += last + 1 - from;
                    from = if last >= total { 1 } else { last + 1 };
                }
                (ops, start.elapsed())
            };
            let mut sqlite_from = 1i64;
            let mut b = |budget: Duration| {
                let start = Instant::now();
                let mut ops = 0u64;
                while start.elapsed() < budget {
                    let last = sqlite.read_page_json(sqlite_from, PAGE, &mut page);
                    ops += (last + 1 - sqlite_from) as u64;
                    sqlite_from = if last >= sqlite.rows() { 1 } else { last + 1 };
                }
                (ops, start.elapsed())
            };
            let pair = Pair {
                row: "read_all_json / SQLite ORDER BY seq scan",
                a: "read-all-json",
                b: "sqlite-scan",
                a_unit: "events",
                b_unit: "rows",
                target: Some(2.0),
                aim: None,
            };
            if let Some(c) = measure(&s, &mut rows, pair, &mut a, &mut b) {
                rows.push(Row {
                    name: "read_all_json (M events/s)",
                    a: format!("pages of {PAGE}"),
                    b: String::new(),
                    value: c.a_rate() / 1e6,
                    spread: None,
                    target: Some(5.0),
                    aim: None,
                    higher_is_better: true,
                    unit: "",
                });
            }
        }

        if wanted(&["latest-version"]) {
            settle();
            if s.only.is_some() {
                let deadline = Instant::now() + s.only_secs;
                let mut lookups = 0u64;
                while Instant::now() < deadline {
                    lookups += latest_version_histogram(&store, &actors, 100_000).len();
                }
                eprintln!("latest-version: {lookups} lookups");
            } else {
                let hist = latest_version_histogram(&store, &actors, 100_000);
                let (p50, p99) = (percentile_us(&hist, 50.0), percentile_us(&hist, 99.0));
                eprintln!(
                    "latest_version: p50 {p50:.2} µs, p99 {p99:.2} µs, p99.9 {:.2} µs, max {:.1} µs",
                    percentile_us(&hist, 99.9),
                    hist.max() as f64 / 1e3
                );
                let latency = |name, value, target| Row {
                    name,
                    a: format!("{} lookups", hist.len()),
                    b: String::new(),
                    value,
                    spread: None,
                    target: Some(target),
                    aim: None,
                    higher_is_better: false,
                    unit: " µs",
                };
                rows.push(latency("latest_version p50 (µs)", p50, 2.0));
                rows.push(latency("latest_version p99 (µs)", p99, 10.0));
            }
        }
    }

    appends(&s, &mut rows, &wanted);

    if s.only.is_some() {
        return;
    }
    // Context, not a target: the memory store's save rate on the same workload.
    {
        let mut pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
        let memory = MemoryStore::new();
        let mut side = saves(&memory, &mut pool);
        let (ops, took) = side(s.budget);
        eprintln!(
            "context: memory store saves {}",
            human(ops as f64 / took.as_secs_f64())
        );
    }

    print_table(&rows);
    println!(
        "(finished in {:.0} s; stores were under {})",
        started.elapsed().as_secs_f64(),
        bench_root().display()
    );
}

/// The appends issue's targets: a commit across 10 actors against a one-actor batch of the
/// same 100 events, an idempotent retry, the last event of a long stream, a filtered
/// `read_all` against the unfiltered one.
fn appends(s: &Settings, rows: &mut Vec<Row>, wanted: &dyn Fn(&[&str]) -> bool) {
    use aether_core::{CommitEntry, EventFilter, EventRange, ExpectedState};

    if wanted(&["commit-10x10", "batch-100"]) {
        let (_dir, store) = open_store("ratio-commit", Durability::Durable);
        let mut pool = EventPool::batches(&actor_ids(1_000), 10);
        let batch_actors: Vec<String> = actor_ids(100).iter().map(|a| format!("b-{a}")).collect();
        let mut batch_pool = EventPool::batches(&batch_actors, 100);
        let mut a = |budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            while took < budget {
                let parts: Vec<Vec<Event>> = (0..10).map(|_| pool.take(10).to_vec()).collect();
                let entries: Vec<CommitEntry> = parts
                    .iter()
                    .map(|p| CommitEntry::new(&p[0].actor_id, ExpectedState::Increasing, p))
                    .collect();
                let start = Instant::now();
                black_box(store.commit(&entries).expect("commit"));
                took += start.elapsed();
                ops += 100;
            }
            (ops, took)
        };
        let mut b = |budget: Duration| {
            let mut ops = 0u64;
            let mut took = Duration::ZERO;
            while took < budget {
                let batch = batch_pool.take(100);
                let start = Instant::now();
                black_box(store.save_events(batch).expect("save_events"));
                took += start.elapsed();
                ops += batch.len() as u64;
            }
            (ops, took)
        };
        let pair = Pair {
            row: "commit 10 actors x 10 / batch of 100 (durable)",
            a: "commit-10x10",
            b: "batch-100",
            a_unit: "events",
            b_unit: "events",
            target: Some(0.9),
            aim: None,
        };
        measure(s, rows, pair, &mut a, &mut b);
    }

    if wanted(&["retry", "last-event"]) {
        let (_dir, store) = open_store("appends-latency", Durability::Buffered);
        let actors = actor_ids(1_000);
        save_all(&store, &round_robin_events(&actors, 10), 1);
        // The long stream as commands usually build one, a save at a time; beside it (as
        // context) one saved in batches of 1000, whose last event ends a 1000-event record.
        save_all(&store, &actor_events("long-10k", 10_000), 1);
        save_all(&store, &actor_events("long-10k-batched", 10_000), 1_000);
        store.flush().expect("flush");
        settle();
        // A retry of a stored single-event append: Exact(v - 1) with the same event.
        let mut rng = XorShift::new(11);
        let stored = round_robin_events(&actors, 10);
        let picks: Vec<usize> = (0..100_000)
            .map(|_| rng.below(stored.len() as u64) as usize)
            .collect();
        let retry = |i: usize| {
            let e = &stored[picks[i]];
            let c = store
                .append(
                    &e.actor_id,
                    ExpectedState::Exact(e.version - 1),
                    std::slice::from_ref(e),
                )
                .expect("retry");
            black_box(c);
        };
        for i in 0..10_000 {
            retry(i);
        }
        let hist = latency_histogram(picks.len(), retry);
        let last = |actor: &str| {
            black_box(
                store
                    .get_events_range(actor, &EventRange::last(1))
                    .expect("last event"),
            )
        };
        for _ in 0..10_000 {
            last("long-10k");
            last("long-10k-batched");
        }
        let last_hist = latency_histogram(100_000, |_| {
            last("long-10k");
        });
        let batched_hist = latency_histogram(100_000, |_| {
            last("long-10k-batched");
        });
        for (name, h, target) in [
            ("idempotent retry p50 (µs)", &hist, Some(10.0)),
            ("last event of 10k p50 (µs)", &last_hist, Some(5.0)),
            ("  context: saved in batches of 1000", &batched_hist, None),
        ] {
            let p50 = percentile_us(h, 50.0);
            eprintln!(
                "{name}: p50 {p50:.2} µs, p99 {:.2} µs",
                percentile_us(h, 99.0)
            );
            rows.push(Row {
                name,
                a: format!("{} calls", h.len()),
                b: String::new(),
                value: p50,
                spread: None,
                target,
                aim: None,
                higher_is_better: false,
                unit: " µs",
            });
        }
    }

    if wanted(&["read-all-filtered", "read-all-raw"]) {
        let (_dir, store) = open_store("appends-filtered", Durability::Buffered);
        let mut events = round_robin_events(&actor_ids(1_000), 100);
        for (i, e) in events.iter_mut().enumerate() {
            e.event_type = format!("Type{}", i % 10);
        }
        save_all(&store, &events, 1);
        store.flush().expect("flush");
        let total = events.len() as u64;
        drop(events);
        const PAGE: usize = 1_000;
        let filter = EventFilter::event_types(["Type3"]);
        // Filtered: events scanned per second (the whole store per pass, a tenth returned).
        let mut a = |budget: Duration| {
            let start = Instant::now();
            let mut ops = 0u64;
            while start.elapsed() < budget {
                black_box(
                    store
                        .read_all_filtered_json(1, usize::MAX, &filter)
                        .expect("filtered"),
                );
                ops += total;
            }
            (ops, start.elapsed())
        };
        let mut from = 1u64;
        let mut b = |budget: Duration| {
            let start = Instant::now();
            let mut ops = 0u64;
            while start.elapsed() < budget {
                let (json, last) = store.read_all_json(from, PAGE).expect("read_all_json");
                black_box(json);
                ops += last + 1 - from;
                from = if last >= total { 1 } else { last + 1 };
            }
            (ops, start.elapsed())
        };
        let pair = Pair {
            row: "filtered read_all (1 type in 10) / raw read_all, events scanned",
            a: "read-all-filtered",
            b: "read-all-raw",
            a_unit: "events",
            b_unit: "events",
            target: Some(0.5),
            aim: None,
        };
        measure(s, rows, pair, &mut a, &mut b);
    }
}
