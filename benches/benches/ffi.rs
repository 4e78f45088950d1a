//! The same workload through the C ABI (JSON in, as a C caller does) and through the Rust
//! API, side by side: save (memory, sled buffered), replay of one actor's 1,000 events,
//! and draining EventStored notifications.
//!
//! `cargo bench -p aether-benches --bench ffi` (1 s warm-up, 3 s measurement, 10 samples).
//! The C side calls the exports of libaether's rlib (`aether::*`) exactly as C would:
//! pre-encoded JSON bytes in, `aether_bytes` out and freed. Targets (issue "C ABI"): on
//! sled, C ABI save >= 0.8x the Rust API's; C ABI replay (stored JSON handed out) at
//! least as fast as the Rust API's decoded replay; poll >= 1 million notifications/s.

use std::ffi::CString;
use std::hint::black_box;
use std::ptr;
use std::time::{Duration, Instant};

use aether::bytes::aether_bytes_free;
use aether::event_stored::{aether_event_stored_clear_batch, aether_poll_event_stored_batch};
use aether::events::{aether_get_events, aether_save_event, aether_save_events};
use aether::store::{
    aether_sled_options_default, aether_store_close, aether_store_free, aether_store_open_memory,
    aether_store_open_sled,
};
use aether::{aether_bytes, aether_durability, aether_event_stored, aether_sled_options};
use aether::{aether_status, aether_store};
use aether_benches::*;
use aether_core::{Durability, Event, EventStore, MemoryStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Events a memory store may hold before the bench swaps in a fresh one (untimed).
const MEMORY_STORE_CAP: usize = 1_000_000;
/// Events of the replayed actor.
const REPLAY_EVENTS: usize = 1_000;
/// Notifications queued before each timed drain.
const POLL_FILL: usize = 100_000;
/// Notifications taken per `aether_poll_event_stored_batch` call.
const POLL_BATCH: usize = 1_024;

fn ok(status: aether_status, what: &str) {
    assert_eq!(status, aether_status::AETHER_OK, "{what}");
}

/// A store opened through the C ABI, closed and freed on drop.
struct CStore {
    ptr: *mut aether_store,
    _dir: Option<tempfile::TempDir>,
}

impl CStore {
    fn memory(event_stored_capacity: usize) -> CStore {
        let mut ptr = ptr::null_mut();
        // SAFETY: valid out-pointer; NULL err_out.
        ok(
            unsafe { aether_store_open_memory(event_stored_capacity, &mut ptr, ptr::null_mut()) },
            "aether_store_open_memory",
        );
        CStore { ptr, _dir: None }
    }

    fn sled_buffered(label: &str) -> CStore {
        let dir = scratch_dir(label);
        let path = CString::new(dir.path().join("store").to_str().expect("UTF-8 path"))
            .expect("path without NUL");
        let mut options = aether_sled_options::default();
        // SAFETY: valid pointers, borrowed for the calls only.
        unsafe { aether_sled_options_default(&mut options) };
        options.durability = aether_durability::AETHER_DURABILITY_BUFFERED as i32;
        let mut ptr = ptr::null_mut();
        ok(
            unsafe { aether_store_open_sled(path.as_ptr(), &options, &mut ptr, ptr::null_mut()) },
            "aether_store_open_sled",
        );
        CStore {
            ptr,
            _dir: Some(dir),
        }
    }

    fn save(&self, json: &[u8]) {
        // SAFETY: a live store; `json` borrowed for the call; NULL outputs are allowed.
        let status = unsafe {
            aether_save_event(
                self.ptr,
                json.as_ptr(),
                json.len(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        ok(status, "aether_save_event");
    }

    fn save_batch(&self, json_array: &[u8]) {
        // SAFETY: as in `save`.
        let status = unsafe {
            aether_save_events(
                self.ptr,
                json_array.as_ptr(),
                json_array.len(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        ok(status, "aether_save_events");
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        // SAFETY: the handle is live and used by nobody else; freed exactly once.
        unsafe {
            ok(
                aether_store_close(self.ptr, ptr::null_mut()),
                "aether_store_close",
            );
            aether_store_free(self.ptr);
        }
    }
}

/// The round-robin workload as pre-encoded JSON, the way a C caller holds it. When
/// exhausted, every version is raised by the pool's versions per actor and the pool is
/// encoded again (untimed), as `EventPool` does.
struct JsonPool {
    events: Vec<Event>,
    json: Vec<Vec<u8>>,
    next: usize,
}

impl JsonPool {
    fn new() -> JsonPool {
        let events = EventPool::round_robin(&actor_ids(ACTORS), POOL_VERSIONS_PER_ACTOR)
            .events()
            .to_vec();
        let json = events.iter().map(Event::to_json).collect();
        JsonPool {
            events,
            json,
            next: 0,
        }
    }

    fn take(&mut self, max: usize) -> &[Vec<u8>] {
        if self.next == self.json.len() {
            for (event, json) in self.events.iter_mut().zip(&mut self.json) {
                event.version += POOL_VERSIONS_PER_ACTOR as i64;
                *json = event.to_json();
            }
            self.next = 0;
        }
        let start = self.next;
        self.next = (start + max).min(self.json.len());
        &self.json[start..self.next]
    }
}

/// Save `iters` pre-encoded events through `aether_save_event`; only the saving is timed.
fn time_c_saves(store: &CStore, pool: &mut JsonPool, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let chunk = pool.take(left);
        let start = Instant::now();
        for json in chunk {
            store.save(json);
        }
        total += start.elapsed();
        left -= chunk.len();
    }
    total
}

fn ffi_save(c: &mut Criterion) {
    settle();
    let mut group = c.benchmark_group("ffi_save");
    group.throughput(Throughput::Elements(1));

    // Memory: a fresh store (untimed) whenever the current one would pass the cap.
    let mut pool = EventPool::round_robin(&actor_ids(ACTORS), POOL_VERSIONS_PER_ACTOR);
    let mut memory = MemoryStore::new();
    let mut held = 0usize;
    group.bench_function(BenchmarkId::new("rust_api", "memory"), |b| {
        b.iter_custom(|iters| {
            if held + iters as usize > MEMORY_STORE_CAP {
                memory = MemoryStore::new();
                held = 0;
            }
            held += iters as usize;
            time_saves(&memory, &mut pool, iters)
        })
    });
    drop(memory);

    let mut json_pool = JsonPool::new();
    let mut c_memory = CStore::memory(0);
    let mut held = 0usize;
    group.bench_function(BenchmarkId::new("c_abi", "memory"), |b| {
        b.iter_custom(|iters| {
            if held + iters as usize > MEMORY_STORE_CAP {
                c_memory = CStore::memory(0);
                held = 0;
            }
            held += iters as usize;
            time_c_saves(&c_memory, &mut json_pool, iters)
        })
    });
    drop(c_memory);

    settle();
    let (_dir, sled) = open_store("ffi_save_rust", Durability::Buffered);
    let mut pool = EventPool::round_robin(&actor_ids(ACTORS), POOL_VERSIONS_PER_ACTOR);
    group.bench_function(BenchmarkId::new("rust_api", "sled_buffered"), |b| {
        b.iter_custom(|iters| time_saves(&sled, &mut pool, iters))
    });
    drop(sled);

    settle();
    let c_sled = CStore::sled_buffered("ffi_save_c");
    let mut json_pool = JsonPool::new();
    group.bench_function(BenchmarkId::new("c_abi", "sled_buffered"), |b| {
        b.iter_custom(|iters| time_c_saves(&c_sled, &mut json_pool, iters))
    });
    group.finish();
}

/// One actor's `REPLAY_EVENTS` events as a JSON array, for `aether_save_events`.
fn replay_batch_json(actor: &str) -> Vec<u8> {
    let mut out = vec![b'['];
    for v in 1..=REPLAY_EVENTS {
        if v > 1 {
            out.push(b',');
        }
        make_event(actor, v as i64, v as u64).write_json(&mut out);
    }
    out.push(b']');
    out
}

fn c_get_events(store: &CStore, actor: &str) -> usize {
    let mut bytes = aether_bytes {
        ptr: ptr::null_mut(),
        len: 0,
    };
    // SAFETY: a live store, a borrowed actor ID, a writable out-struct; freed below.
    let status = unsafe {
        aether_get_events(
            store.ptr,
            actor.as_ptr(),
            actor.len(),
            0,
            &mut bytes,
            ptr::null_mut(),
        )
    };
    ok(status, "aether_get_events");
    let len = bytes.len;
    // SAFETY: filled by aether_get_events, freed once.
    unsafe { aether_bytes_free(&mut bytes) };
    len
}

fn ffi_replay(c: &mut Criterion) {
    settle();
    let actor = "replay-1k";
    let batch = replay_batch_json(actor);
    let mut group = c.benchmark_group("ffi_replay");
    group.throughput(Throughput::Elements(REPLAY_EVENTS as u64));

    let memory = MemoryStore::new();
    fill_actor(&memory, actor, REPLAY_EVENTS);
    group.bench_function(BenchmarkId::new("rust_api", "memory"), |b| {
        b.iter(|| black_box(memory.get_events(actor, 0).expect("replay")))
    });
    let c_memory = CStore::memory(0);
    c_memory.save_batch(&batch);
    group.bench_function(BenchmarkId::new("c_abi", "memory"), |b| {
        b.iter(|| black_box(c_get_events(&c_memory, actor)))
    });

    let (_dir, sled) = open_store("ffi_replay_rust", Durability::Buffered);
    fill_actor(&sled, actor, REPLAY_EVENTS);
    let c_sled = CStore::sled_buffered("ffi_replay_c");
    c_sled.save_batch(&batch);
    settle();
    group.bench_function(BenchmarkId::new("rust_api", "sled_buffered"), |b| {
        b.iter(|| black_box(sled.get_events(actor, 0).expect("replay")))
    });
    group.bench_function(BenchmarkId::new("c_abi", "sled_buffered"), |b| {
        b.iter(|| black_box(c_get_events(&c_sled, actor)))
    });
    group.finish();
}

fn empty_notification() -> aether_event_stored {
    aether_event_stored {
        event_id: ptr::null(),
        event_id_len: 0,
        actor_id: ptr::null(),
        actor_id_len: 0,
        version: 0,
        timestamp_unix_nanos: 0,
        sequence: 0,
    }
}

/// Drain every waiting notification in batches; returns how many.
fn drain(store: &CStore, batch: &mut [aether_event_stored]) -> usize {
    let mut drained = 0;
    loop {
        let mut count = 0usize;
        // SAFETY: a live store; `batch` is writable for `batch.len()` elements; the
        // filled ones are cleared right after.
        let status = unsafe {
            aether_poll_event_stored_batch(
                store.ptr,
                0,
                batch.as_mut_ptr(),
                batch.len(),
                &mut count,
                ptr::null_mut(),
            )
        };
        if status == aether_status::AETHER_POLL_TIMEOUT {
            return drained;
        }
        ok(status, "aether_poll_event_stored_batch");
        drained += count;
        // SAFETY: the first `count` elements were filled by the poll.
        unsafe { aether_event_stored_clear_batch(batch.as_mut_ptr(), count) };
    }
}

fn ffi_poll(c: &mut Criterion) {
    // 100 actors x 1,000 versions, saved in batches of 1,000 into a fresh memory store.
    let batches: Vec<Vec<u8>> = (0..POLL_FILL / REPLAY_EVENTS)
        .map(|a| replay_batch_json(&actor_id(a)))
        .collect();
    let fill = || {
        let store = CStore::memory(POLL_FILL * 2);
        for batch in &batches {
            store.save_batch(batch);
        }
        store
    };
    let mut batch: Vec<aether_event_stored> =
        (0..POLL_BATCH).map(|_| empty_notification()).collect();
    let mut group = c.benchmark_group("ffi_poll");
    group.throughput(Throughput::Elements(POLL_FILL as u64));
    group.bench_function(BenchmarkId::new("c_abi", "drain_100k_batch_1024"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let store = fill();
                let start = Instant::now();
                let drained = drain(&store, &mut batch);
                total += start.elapsed();
                assert_eq!(drained, POLL_FILL, "every notification drained");
            }
            total
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
    targets = ffi_save, ffi_replay, ffi_poll
}
criterion_main!(benches);
