//! The phases run against our store (either backend): interleaved saves with deliberate
//! conflicts while a consumer drains EventStored, batch appends, replay (decoded and raw),
//! latest-version lookups and a store-wide `read_all` scan.
//!
//! Each phase is timed by wall clock from its first call to its last; every call's latency
//! goes into a histogram. Writers never share an actor, so every conflict is deliberate and
//! anything else the store returns is counted as unexpected.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aether_core::{Error, EventStore};
use hdrhistogram::Histogram;

use super::report::{histogram, record, OpStats};
use super::workload::Workload;
use crate::util::Progress;

/// What the save phase measured.
#[derive(Debug)]
pub struct SavePhase {
    pub saves: OpStats,
    pub conflicts: OpStats,
    pub event_stored: OpStats,
    /// Notifications the store's channel dropped (nobody drained in time).
    pub event_stored_dropped: u64,
    /// Latest stored version per actor (for checking replay and lookups).
    pub latest: Vec<i64>,
    /// Outcomes other than the expected ones, with the first one's description.
    pub unexpected: u64,
    pub first_unexpected: Option<String>,
    /// Whether the time cap stopped the phase before the workload ran out.
    pub capped: bool,
}

struct WriterResult {
    saves: Histogram<u64>,
    conflicts: Histogram<u64>,
    latest: Vec<(u32, i64)>,
    unexpected: u64,
    first_unexpected: Option<String>,
    capped: bool,
    finished: Instant,
}

fn unix_nanos_now() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Run the interleaved saves with `writers` threads for at most `cap`, while one consumer
/// drains the store's EventStored channel and measures delivery delay.
pub fn save_phase(
    store: &Arc<dyn EventStore>,
    work: &Workload,
    writers: usize,
    cap: Duration,
    label: &str,
) -> SavePhase {
    let parts = work.partition(writers);
    let done = AtomicU64::new(0);
    let writers_done = AtomicBool::new(false);
    let stored_total = AtomicU64::new(0);
    let start = Barrier::new(writers + 1);
    let receiver = store.event_stored_receiver();
    // Drop notifications left by an earlier phase so delivery delays are this phase's.
    while receiver.try_recv().is_ok() {}
    let dropped_before = store.metrics().event_stored_dropped;
    let mut progress = Progress::new(label, work.ops.len() as u64, false);

    let (results, consumer, started) = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut hist = histogram();
            let mut received = 0u64;
            let mut last_at = Instant::now();
            let mut deadline: Option<Instant> = None;
            loop {
                match receiver.recv_timeout(Duration::from_millis(20)) {
                    Ok(note) => {
                        let delay = unix_nanos_now() - note.timestamp.unix_nanos();
                        hist.saturating_record(delay.max(1) as u64);
                        received += 1;
                        last_at = Instant::now();
                    }
                    Err(_) => {
                        if writers_done.load(Ordering::Acquire) {
                            let target = stored_total.load(Ordering::Acquire);
                            let deadline = *deadline
                                .get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                            if received >= target || Instant::now() >= deadline {
                                break;
                            }
                        }
                    }
                }
            }
            (hist, received, last_at)
        });

        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                let (store, done, start) = (store, &done, &start);
                s.spawn(move || {
                    let mut r = WriterResult {
                        saves: histogram(),
                        conflicts: histogram(),
                        latest: Vec::new(),
                        unexpected: 0,
                        first_unexpected: None,
                        capped: false,
                        finished: Instant::now(),
                    };
                    start.wait();
                    let deadline = Instant::now() + cap;
                    for (n, &i) in part.iter().enumerate() {
                        // Checking the clock every call would cost more than it saves.
                        if n % 16 == 0 && Instant::now() >= deadline {
                            r.capped = true;
                            break;
                        }
                        let op = &work.ops[i];
                        let t0 = Instant::now();
                        let outcome = store.save_event(&op.event);
                        let dt = t0.elapsed();
                        match (outcome, op.conflict) {
                            (Ok(_), false) => {
                                record(&mut r.saves, dt);
                                r.latest.push((op.actor, op.event.version));
                            }
                            (Err(Error::VersionConflict { .. }), true) => {
                                record(&mut r.conflicts, dt)
                            }
                            (other, conflict) => {
                                r.unexpected += 1;
                                r.first_unexpected.get_or_insert_with(|| {
                                    format!(
                                        "saving actor {:?} version {} (conflict expected: {conflict}) gave {other:?}",
                                        op.event.actor_id, op.event.version
                                    )
                                });
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    r.finished = Instant::now();
                    r
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            progress.set(done.load(Ordering::Relaxed));
        }
        let results: Vec<WriterResult> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect();
        let stored: u64 = results.iter().map(|r| r.saves.len()).sum();
        stored_total.store(stored, Ordering::Release);
        writers_done.store(true, Ordering::Release);
        let consumer = consumer.join().expect("consumer thread panicked");
        (results, consumer, started)
    });
    progress.finish();

    let finished = results.iter().map(|r| r.finished).max().unwrap_or(started);
    let elapsed = finished.duration_since(started);
    let mut saves = histogram();
    let mut conflicts = histogram();
    let mut latest = vec![0i64; work.actors.len()];
    let mut unexpected = 0;
    let mut first_unexpected = None;
    let mut capped = false;
    for r in results {
        saves.add(&r.saves).expect("same histogram bounds");
        conflicts.add(&r.conflicts).expect("same histogram bounds");
        for (actor, version) in r.latest {
            let slot = &mut latest[actor as usize];
            *slot = (*slot).max(version);
        }
        unexpected += r.unexpected;
        if first_unexpected.is_none() {
            first_unexpected = r.first_unexpected;
        }
        capped |= r.capped;
    }
    let mut save_stats = OpStats::new(
        format!("save_event ({writers} writers)"),
        saves.len(),
        saves.len(),
        elapsed,
    );
    save_stats.hist = saves;
    let mut conflict_stats = OpStats::new(
        "save_event rejected (conflict)",
        conflicts.len(),
        0,
        elapsed,
    );
    conflict_stats.hist = conflicts;
    conflict_stats.has_rate = false;
    let (delivery, received, last_at) = consumer;
    let mut event_stored = OpStats::new(
        "EventStored delivery",
        received,
        received,
        last_at.max(started).duration_since(started),
    );
    event_stored.hist = delivery;
    SavePhase {
        saves: save_stats,
        conflicts: conflict_stats,
        event_stored,
        event_stored_dropped: store.metrics().event_stored_dropped - dropped_before,
        latest,
        unexpected,
        first_unexpected,
        capped,
    }
}

/// `save_events` of pre-built batches, one writer, for at most `cap`.
pub fn batch_phase(
    store: &Arc<dyn EventStore>,
    work: &Workload,
    cap: Duration,
) -> (OpStats, u64, Option<String>) {
    let mut hist = histogram();
    let mut events = 0u64;
    let mut failures = 0u64;
    let mut first_failure = None;
    let mut progress = Progress::new("bench: batch appends", work.batches.len() as u64, false);
    let started = Instant::now();
    let deadline = started + cap;
    for (n, batch) in work.batches.iter().enumerate() {
        if Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        let outcome = store.save_events(&batch.events);
        let dt = t0.elapsed();
        match outcome {
            Ok(_) => {
                record(&mut hist, dt);
                events += batch.events.len() as u64;
            }
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert_with(|| e.to_string());
            }
        }
        if n % 8 == 0 {
            progress.set(n as u64 + 1);
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    let size = work.batches.first().map_or(0, |b| b.events.len());
    let mut stats = OpStats::new(
        format!("save_events (batch of {size})"),
        hist.len(),
        events,
        elapsed,
    );
    stats.hist = hist;
    (stats, failures, first_failure)
}

/// Replay every actor, decoded (`get_events`) or raw (`get_events_json`), checking that each
/// returns as many events as were stored. Returns the stats and the number of mismatches.
pub fn replay_phase(
    store: &Arc<dyn EventStore>,
    work: &Workload,
    latest: &[i64],
    raw: bool,
) -> (OpStats, u64) {
    let mut hist = histogram();
    let mut events = 0u64;
    let mut mismatches = 0u64;
    let label = if raw {
        "bench: replay raw"
    } else {
        "bench: replay decoded"
    };
    let mut progress = Progress::new(label, work.actors.len() as u64, true);
    let started = Instant::now();
    for (i, actor) in work.actors.iter().enumerate() {
        let t0 = Instant::now();
        // `None`: the call failed or returned the wrong number of events.
        let count = if raw {
            store.get_events_json(actor, 1).ok().and_then(|json| {
                // Parsing would measure serde_json, not the store: check the shape only.
                let expected = latest[i].max(0) as usize;
                let shaped = json.first() == Some(&b'[')
                    && json.last() == Some(&b']')
                    && (expected == 0) == (json.len() == 2);
                shaped.then_some(expected)
            })
        } else {
            store
                .get_events(actor, 1)
                .ok()
                .map(|e| e.len())
                .filter(|&n| n as i64 == latest[i])
        };
        record(&mut hist, t0.elapsed());
        match count {
            Some(n) => events += n as u64,
            None => mismatches += 1,
        }
        if i % 64 == 0 {
            progress.set(i as u64);
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    let name = if raw {
        "get_events_json (replay, raw)"
    } else {
        "get_events (replay, decoded)"
    };
    let mut stats = OpStats::new(name, hist.len(), events, elapsed);
    stats.hist = hist;
    (stats, mismatches)
}

/// Latest-version lookups of random actors; returns the stats and wrong answers.
pub fn latest_phase(
    store: &Arc<dyn EventStore>,
    work: &Workload,
    latest: &[i64],
) -> (OpStats, u64) {
    let mut hist = histogram();
    let mut wrong = 0u64;
    let started = Instant::now();
    for &actor in &work.lookups {
        let t0 = Instant::now();
        let v = store.get_latest_version(&work.actors[actor as usize]);
        record(&mut hist, t0.elapsed());
        if v.ok() != Some(latest[actor as usize]) {
            wrong += 1;
        }
    }
    let elapsed = started.elapsed();
    let mut stats = OpStats::new("get_latest_version", hist.len(), hist.len(), elapsed);
    stats.hist = hist;
    (stats, wrong)
}

/// The whole store in sequence order, in pages of 1,000 (a catching-up consumer).
pub fn read_all_phase(store: &Arc<dyn EventStore>) -> (OpStats, Option<String>) {
    let mut hist = histogram();
    let mut events = 0u64;
    let mut failure = None;
    let started = Instant::now();
    let mut from = 1;
    loop {
        let t0 = Instant::now();
        match store.read_all(from, 1000) {
            Ok(page) => {
                record(&mut hist, t0.elapsed());
                let Some(last) = page.last() else { break };
                if last.sequence + 1 != from + page.len() as u64 {
                    failure.get_or_insert_with(|| format!("gap in read_all page from {from}"));
                }
                from = last.sequence + 1;
                events += page.len() as u64;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let mut stats = OpStats::new("read_all (pages of 1,000)", hist.len(), events, elapsed);
    stats.hist = hist;
    (stats, failure)
}
