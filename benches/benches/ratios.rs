//! The ratio summary: each target of the store is a ratio to a baseline measured side by
//! side in this one run, so a shared, noisy machine moves both sides alike.
//!
//! Every comparison runs its two sides in alternating rounds (A B, B A, A B, ...) of a
//! fixed time budget each; a round's ratio compares two neighbouring measurements, so slow
//! drift cancels, and the reported ratio is the median over the rounds (with its range).
//!
//! `cargo bench -p aether-benches --bench ratios [-- --rounds N --secs S]`
//! (defaults: 10 rounds of 0.3 s per side; the whole run takes about a minute). Before
//! each comparison the page cache is written back (`sync`), so one comparison's delayed
//! writeback does not slow the next one's `fdatasync`s.
//!
//! `-- --only SIDE [--secs S]` runs one side alone for S seconds (default 10), for a
//! profiler: `perf record -g target/release/deps/ratios-* --only buffered-save`. Sides:
//! buffered-save, raw-insert, durable-1, disk-append-sync, disk-overwrite-sync, durable-8,
//! durable-8-window, replay, parse, parse-drop, replay-json, raw-scan, latest-version.
//!
//! Rows marked "context" have no target: they show a stricter or a looser baseline, or a
//! configuration to compare with, next to the row above them.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use aether_benches::*;
use aether_core::{Durability, Event, EventStore, MemoryStore, Options};

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
fn measure<'a>(s: &Settings, rows: &mut Vec<Row>, pair: Pair, a: &mut Side<'a>, b: &mut Side<'a>) {
    if let Some(only) = &s.only {
        for (name, side) in [(pair.a, a), (pair.b, b)] {
            if name == only {
                let (ops, took) = side(s.only_secs);
                eprintln!("{name}: {}", human(ops as f64 / took.as_secs_f64()));
            }
        }
        return;
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

    // Buffered save vs raw sled insert of the same records under the same keys.
    if wanted(&["buffered-save", "raw-insert"]) {
        let mut pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
        let mean = assert_event_size(&pool);
        eprintln!("workload: {ACTORS} actors round-robin, {mean}-byte events");
        let mut raw = RawSled::new(&pool);
        let (_dir, store) = open_store("ratio-buffered", Durability::Buffered);
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
            target: Some(0.6),
            aim: Some(0.7),
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
    }

    // Durable save (1 writer) vs the disk's append + fdatasync; 8 writers vs 1.
    let durable_sides = [
        "durable-1",
        "disk-append-sync",
        "disk-overwrite-sync",
        "durable-8",
        "durable-8-window",
    ];
    if wanted(&durable_sides) {
        let mut pool = EventPool::round_robin(&actors, POOL_VERSIONS_PER_ACTOR);
        let (_dir1, durable1) = open_store("ratio-durable-1", Durability::Durable);
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
                target: Some(0.75),
                aim: None,
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        {
            // Context: the log is preallocated and overwritten in place, so its syncs
            // carry no file-size metadata; this is the stricter floor for that design.
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
                target: Some(3.0),
                aim: Some(4.0),
            };
            measure(&s, &mut rows, pair, &mut a, &mut b);
        }
        // Context: the same with a group-commit window (the leader waits up to 300 µs for
        // saves in flight to join its sync; the default, above, does not wait), which
        // shows what the window costs or gains on this machine.
        let mut options = Options::with_durability(Durability::Durable);
        options.group_commit_window = Duration::from_micros(300);
        let (_dir8w, durable8w) = open_store_with("ratio-durable-8-window", options);
        let mut a = concurrent_saves(&durable8w, &mut pools);
        let mut b = saves(&durable1, &mut pool);
        let pair = Pair {
            row: "  context: same, group_commit_window 300 µs",
            a: "durable-8-window",
            b: "durable-1",
            a_unit: "saves",
            b_unit: "saves",
            target: None,
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
    }

    // Replay vs parsing and scanning the same stored bytes.
    if wanted(&["replay", "parse", "parse-drop", "replay-json", "raw-scan"]) {
        let (_dir, store) = open_store("ratio-replay", Durability::Buffered);
        // The same store as the criterion `replay` group: a 1k-event actor (replayed here)
        // beside a 100k-event one, so sled's cache and the heap are not toy-sized.
        let actor = "replay-1k";
        fill_actor(&store, actor, 1_000);
        fill_actor(&store, "replay-100k", 100_000);
        let tree = events_tree(&store);
        let json = stored_json(&tree, actor);
        assert_eq!(json.len(), 1_000);
        let n = json.len() as u64;

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
            target: Some(0.7),
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
            black_box(raw_scan(&tree, actor));
        });
        let pair = Pair {
            row: "replay get_events_json / raw sled scan",
            a: "replay-json",
            b: "raw-scan",
            a_unit: "events",
            b_unit: "records",
            target: Some(0.5),
            aim: None,
        };
        measure(&s, &mut rows, pair, &mut a, &mut b);
    }

    // latest_version latency on 1,000 actors x 100 events.
    if wanted(&["latest-version"]) {
        let (_dir, store) = open_store("ratio-latest", Durability::Buffered);
        let fill_start = Instant::now();
        fill_round_robin(&store, &actors, 100);
        eprintln!(
            "filled 1,000 actors x 100 events in {:.1} s",
            fill_start.elapsed().as_secs_f64()
        );
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
