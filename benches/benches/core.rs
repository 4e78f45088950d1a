//! Criterion suites for aether-core's stores, with their baselines in the same run.
//!
//! `cargo bench -p aether-benches --bench core` (defaults: 1 s warm-up, 3 s measurement,
//! 10 samples; criterion's `--warm-up-time`/`--measurement-time`/`--sample-size` override).
//! Stores live under `target/aether-bench` (see `aether_benches::bench_root`); the page
//! cache is written back (`sync`) before each group, so one group's delayed writeback does
//! not land in the next one's `fdatasync`s.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use aether_benches::*;
use aether_core::{Durability, Event, EventStore, MemoryStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Events a memory store may hold before the bench swaps in a fresh one (untimed), so a
/// long run does not grow without bound.
const MEMORY_STORE_CAP: usize = 1_000_000;

/// Save `iters` batches of `batch_len` events from a batch pool.
fn time_batches(
    store: &dyn EventStore,
    pool: &mut EventPool,
    batch_len: usize,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let batch = pool.take(batch_len);
        let start = Instant::now();
        black_box(store.save_events(batch).expect("save_events"));
        total += start.elapsed();
    }
    total
}

/// `iters` events saved by [`WRITER_THREADS`] threads, each to its own actors; wall time.
fn time_concurrent_saves(store: &dyn EventStore, pools: &mut [EventPool], iters: u64) -> Duration {
    let threads = pools.len();
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = pools
            .iter_mut()
            .enumerate()
            .map(|(t, pool)| {
                let share = iters as usize / threads + usize::from(t < iters as usize % threads);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut left = share;
                    while left > 0 {
                        // A rewind here is a few thousand integer additions, negligible
                        // next to a durable save.
                        let chunk = pool.take(left);
                        for event in chunk {
                            black_box(store.save_event(event).expect("save"));
                        }
                        left -= chunk.len();
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("writer thread");
        }
        start.elapsed()
    })
}

fn round_robin_pool() -> EventPool {
    let pool = EventPool::round_robin(&actor_ids(ACTORS), POOL_VERSIONS_PER_ACTOR);
    let mean = assert_event_size(&pool);
    eprintln!("workload: {ACTORS} actors round-robin, events of {mean} bytes of JSON on average");
    pool
}

fn save(c: &mut Criterion) {
    settle();
    let mut group = c.benchmark_group("save");
    group.throughput(Throughput::Elements(1));
    let mut pool = round_robin_pool();

    let mut memory = MemoryStore::new();
    let mut in_memory = 0usize;
    group.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            if in_memory + iters as usize > MEMORY_STORE_CAP {
                memory = MemoryStore::new();
                in_memory = 0;
            }
            in_memory += iters as usize;
            time_saves(&memory, &mut pool, iters)
        })
    });
    drop(memory);

    for (name, durability) in [
        ("sled_buffered", Durability::Buffered),
        ("sled_durable_1_writer", Durability::Durable),
    ] {
        let (_dir, store) = open_store(name, durability);
        let mut pool = round_robin_pool_quiet();
        settle();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_saves(&store, &mut pool, iters))
        });
    }

    settle();
    let (_dir, store) = open_store("sled_durable_8_writers", Durability::Durable);
    let shares = split_actors(&actor_ids(ACTORS), WRITER_THREADS);
    let mut pools: Vec<EventPool> = shares
        .iter()
        .map(|actors| EventPool::round_robin(actors, POOL_VERSIONS_PER_ACTOR))
        .collect();
    group.bench_function("sled_durable_8_writers", |b| {
        b.iter_custom(|iters| time_concurrent_saves(&store, &mut pools, iters))
    });
    group.finish();
}

fn round_robin_pool_quiet() -> EventPool {
    EventPool::round_robin(&actor_ids(ACTORS), POOL_VERSIONS_PER_ACTOR)
}

fn baselines(c: &mut Criterion) {
    settle();
    let pool = round_robin_pool_quiet();

    let mut raw = RawSled::new(&pool);
    let mut group = c.benchmark_group("raw_sled_insert");
    group.throughput(Throughput::Elements(1));
    group.bench_function("insert", |b| {
        b.iter_custom(|iters| raw.insert_timed(iters as usize))
    });
    group.finish();
    drop(raw);

    settle();
    let mut disk = DiskAppender::new();
    let mut group = c.benchmark_group("disk_fdatasync");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_4k", |b| b.iter(|| disk.append_sync()));
    group.finish();

    let json: Vec<Vec<u8>> = pool
        .events()
        .iter()
        .take(1_000)
        .map(Event::to_json)
        .collect();
    let mut group = c.benchmark_group("serde_json_parse");
    group.throughput(Throughput::Elements(json.len() as u64));
    group.bench_function("event_from_json_x1000", |b| {
        b.iter(|| {
            for bytes in &json {
                black_box(Event::from_json(bytes).expect("parse"));
            }
        })
    });
    group.finish();
}

fn batch_save(c: &mut Criterion) {
    settle();
    const BATCH: usize = 100;
    let actors = actor_ids(100);
    let mut group = c.benchmark_group("batch_save");
    group.throughput(Throughput::Elements(BATCH as u64));

    let mut memory = MemoryStore::new();
    let mut in_memory = 0usize;
    let mut pool = EventPool::batches(&actors, BATCH);
    group.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            if in_memory + iters as usize * BATCH > MEMORY_STORE_CAP {
                memory = MemoryStore::new();
                in_memory = 0;
            }
            in_memory += iters as usize * BATCH;
            time_batches(&memory, &mut pool, BATCH, iters)
        })
    });
    drop(memory);

    for (name, durability) in [
        ("sled_buffered", Durability::Buffered),
        ("sled_durable", Durability::Durable),
    ] {
        let (_dir, store) = open_store(name, durability);
        let mut pool = EventPool::batches(&actors, BATCH);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_batches(&store, &mut pool, BATCH, iters))
        });
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    settle();
    let (_dir, store) = open_store("replay", Durability::Buffered);
    let sizes = [(1_000usize, "1k"), (100_000, "100k")];
    // The raw sled peer: the same events' JSON in a tree of its own, keyed actor‖version.
    let raw_dir = scratch_dir("raw-sled-replay");
    let (_raw_db, tree) = raw_sled_open(&raw_dir.path().join("sled"));
    for (count, label) in sizes {
        let actor = format!("replay-{label}");
        let events = actor_events(&actor, count);
        save_all(&store, &events, 1_000);
        raw_sled_load(&tree, &events);
    }
    let mut scanned = Vec::new();
    let mut group = c.benchmark_group("replay");
    for (count, label) in sizes {
        let actor = format!("replay-{label}");
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("get_events", label), &actor, |b, actor| {
            b.iter(|| black_box(store.get_events(actor, 0).expect("replay")))
        });
        group.bench_with_input(
            BenchmarkId::new("get_events_json", label),
            &actor,
            |b, actor| b.iter(|| black_box(store.get_events_json(actor, 0).expect("replay"))),
        );
        group.bench_with_input(
            BenchmarkId::new("raw_sled_scan", label),
            &actor,
            |b, actor| b.iter(|| black_box(raw_scan(&tree, actor, &mut scanned))),
        );
    }
    group.finish();
}

fn reads_over_filled_store(c: &mut Criterion) {
    settle();
    const PER_ACTOR: usize = 100;
    let actors = actor_ids(ACTORS);
    let (_dir, store) = open_store("reads", Durability::Buffered);
    fill_round_robin(&store, &actors, PER_ACTOR);
    settle();

    let mut group = c.benchmark_group("latest_version");
    let mut rng = XorShift::new(42);
    let picks: Vec<&str> = (0..65_536)
        .map(|_| actors[rng.below(ACTORS as u64) as usize].as_str())
        .collect();
    let mut i = 0usize;
    group.bench_function("sled_1000x100_random_actor", |b| {
        b.iter(|| {
            i = (i + 1) & (picks.len() - 1);
            black_box(store.get_latest_version(picks[i]).expect("latest version"))
        })
    });
    group.finish();
    let hist = latest_version_histogram(&store, &actors, 100_000);
    eprintln!(
        "latest_version (hdrhistogram, 100k lookups): p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs",
        percentile_us(&hist, 50.0),
        percentile_us(&hist, 99.0),
        percentile_us(&hist, 99.9),
        hist.max() as f64 / 1_000.0
    );

    const PAGE: usize = 1_000;
    let total = (ACTORS * PER_ACTOR) as u64;
    let mut group = c.benchmark_group("read_all");
    group.throughput(Throughput::Elements(PAGE as u64));
    let mut from = 1u64;
    group.bench_function("page_1000_of_100k", |b| {
        b.iter(|| {
            let page = store.read_all(from, PAGE).expect("read_all");
            from = if from + PAGE as u64 > total {
                1
            } else {
                from + PAGE as u64
            };
            black_box(page)
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = save, baselines, batch_save, replay, reads_over_filled_store
}
criterion_main!(benches);
