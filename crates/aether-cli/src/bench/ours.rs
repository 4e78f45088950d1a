//! The phases run against our store (either backend): interleaved saves with deliberate
//! conflicts while a consumer drains EventStored, batch appends, replay (decoded and raw),
//! latest-version lookups and a store-wide `read_all` scan.
//!
//! Each phase is timed by wall clock from its first call to its last; every call's latency
//! goes into a histogram. Writers never share an actor, so every conflict is deliberate and
//! anything else the store returns is counted as unexpected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aether_core::{Error, EventStore};
use hdrhistogram::Histogram;

use super::report::{histogram, record, OpStats};
use super::workload::Workload;
use crate::util::Progress;

/// How the EventStored consumer waits for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consumer {
    /// Drain whatever arrived every millisecond, as an event loop's tick would.
    Polling,
    /// Block on the channel: the lowest delay, but every save wakes the consumer's thread
    /// (a futex call), which on a small machine is a visible share of a buffered save.
    Blocking,
}

/// The polling consumer's tick.
pub const POLL_TICK: Duration = Duration::from_millis(1);

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

/// What one writer thread did in one slice.
struct WriterSlice {
    writer: usize,
    next: usize,
    saves: Histogram<u64>,
    conflicts: Histogram<u64>,
    latest: Vec<(u32, i64)>,
    unexpected: u64,
    first_unexpected: Option<String>,
}

fn unix_nanos_now() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The EventStored consumer: one thread for the runner's life, draining the store's
/// channel and recording each notification's delay from the save's commit timestamp.
#[derive(Debug)]
struct ConsumerThread {
    /// Saves it should see before it stops; `u64::MAX` while saves are still running.
    expected: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<(Histogram<u64>, u64, Instant)>,
}

impl ConsumerThread {
    fn start(store: &Arc<dyn EventStore>, mode: Consumer) -> ConsumerThread {
        let receiver = store.event_stored_receiver();
        // Notifications of an earlier phase are not this one's.
        while receiver.try_recv().is_ok() {}
        let expected = Arc::new(AtomicU64::new(u64::MAX));
        let target = expected.clone();
        let handle = std::thread::spawn(move || {
            let mut hist = histogram();
            let mut received = 0u64;
            let mut last_at = Instant::now();
            let mut deadline: Option<Instant> = None;
            loop {
                let next = match mode {
                    // Parked on the channel: each save pays to wake it.
                    Consumer::Blocking => receiver.recv_timeout(Duration::from_millis(20)).ok(),
                    // An event loop that drains what arrived once per tick.
                    Consumer::Polling => receiver.try_recv().ok().or_else(|| {
                        std::thread::sleep(POLL_TICK);
                        None
                    }),
                };
                match next {
                    Some(note) => {
                        let delay = unix_nanos_now() - note.timestamp.unix_nanos();
                        hist.saturating_record(delay.max(1) as u64);
                        received += 1;
                        last_at = Instant::now();
                    }
                    None => {
                        let want = target.load(Ordering::Acquire);
                        if want != u64::MAX {
                            let deadline = *deadline
                                .get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                            if received >= want || Instant::now() >= deadline {
                                break;
                            }
                        }
                    }
                }
            }
            (hist, received, last_at)
        });
        ConsumerThread { expected, handle }
    }
}

/// The interleaved save workload on one store, run in one or more time slices (the
/// comparison alternates slices with its peers). Writers never share an actor, so every
/// conflict is deliberate and any other outcome is counted as unexpected.
pub struct SaveRunner<'w> {
    store: Arc<dyn EventStore>,
    work: &'w Workload,
    parts: Vec<Vec<usize>>,
    next: Vec<usize>,
    saves: Histogram<u64>,
    conflicts: Histogram<u64>,
    latest: Vec<i64>,
    unexpected: u64,
    first_unexpected: Option<String>,
    /// Wall time spent in slices.
    busy: Duration,
    started: Instant,
    consumer: ConsumerThread,
    dropped_before: u64,
    attempted: AtomicU64,
}

impl std::fmt::Debug for SaveRunner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveRunner")
            .field("next", &self.next)
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

impl<'w> SaveRunner<'w> {
    pub fn new(
        store: Arc<dyn EventStore>,
        work: &'w Workload,
        writers: usize,
        consumer: Consumer,
    ) -> Self {
        let parts = work.partition(writers);
        let dropped_before = store.metrics().event_stored_dropped;
        let consumer = ConsumerThread::start(&store, consumer);
        SaveRunner {
            next: vec![0; parts.len()],
            parts,
            saves: histogram(),
            conflicts: histogram(),
            latest: vec![0; work.actors.len()],
            unexpected: 0,
            first_unexpected: None,
            busy: Duration::ZERO,
            started: Instant::now(),
            consumer,
            dropped_before,
            attempted: AtomicU64::new(0),
            store,
            work,
        }
    }

    /// Events stored so far.
    pub fn stored(&self) -> u64 {
        self.saves.len()
    }

    /// Whether every writer has run out of operations.
    pub fn exhausted(&self) -> bool {
        self.parts
            .iter()
            .zip(&self.next)
            .all(|(part, &next)| next >= part.len())
    }

    /// Run every writer with work left until `until` (or its work runs out); returns the
    /// slice's wall time. `progress` is updated while the writers run.
    pub fn run_slice(&mut self, until: Instant, mut progress: Option<&mut Progress>) -> Duration {
        let slice_started = Instant::now();
        let (store, work, attempted) = (&self.store, self.work, &self.attempted);
        let results: Vec<WriterSlice> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .parts
                .iter()
                .zip(&self.next)
                .enumerate()
                .filter(|(_, (part, &next))| next < part.len())
                .map(|(writer, (part, &next))| {
                    s.spawn(move || {
                        write_until(store, work, writer, &part[next..], next, until, attempted)
                    })
                })
                .collect();
            while !handles.iter().all(|h| h.is_finished()) {
                std::thread::sleep(Duration::from_millis(20));
                if let Some(p) = progress.as_deref_mut() {
                    p.set(attempted.load(Ordering::Relaxed));
                }
            }
            handles
                .into_iter()
                .map(|h| h.join().expect("writer thread panicked"))
                .collect()
        });
        let elapsed = slice_started.elapsed();
        self.busy += elapsed;
        for r in results {
            self.next[r.writer] = r.next;
            self.saves.add(&r.saves).expect("same histogram bounds");
            self.conflicts
                .add(&r.conflicts)
                .expect("same histogram bounds");
            for (actor, version) in r.latest {
                let slot = &mut self.latest[actor as usize];
                *slot = (*slot).max(version);
            }
            self.unexpected += r.unexpected;
            if self.first_unexpected.is_none() {
                self.first_unexpected = r.first_unexpected;
            }
        }
        elapsed
    }

    /// Stop the consumer (once it has seen every save, or after 2 s) and report.
    pub fn finish(self, name: String) -> SavePhase {
        let capped = !self.exhausted();
        self.consumer
            .expected
            .store(self.saves.len(), Ordering::Release);
        let (delivery, received, last_at) = self
            .consumer
            .handle
            .join()
            .expect("consumer thread panicked");
        let mut saves = OpStats::new(name, self.saves.len(), self.saves.len(), self.busy);
        saves.hist = self.saves;
        let mut conflicts = OpStats::new(
            "save_event rejected (conflict)",
            self.conflicts.len(),
            0,
            self.busy,
        );
        conflicts.hist = self.conflicts;
        conflicts.has_rate = false;
        // Deliveries keep pace with the saves: their rate is over the time saves ran.
        let delivery_time = last_at
            .saturating_duration_since(self.started)
            .min(self.busy);
        let mut event_stored =
            OpStats::new("EventStored delivery", received, received, delivery_time);
        event_stored.hist = delivery;
        SavePhase {
            saves,
            conflicts,
            event_stored,
            event_stored_dropped: self.store.metrics().event_stored_dropped - self.dropped_before,
            latest: self.latest,
            unexpected: self.unexpected,
            first_unexpected: self.first_unexpected,
            capped,
        }
    }
}

/// One writer's share of a slice: `ops` (indices into the workload, starting at position
/// `first` of its partition) until `until`.
fn write_until(
    store: &Arc<dyn EventStore>,
    work: &Workload,
    writer: usize,
    ops: &[usize],
    first: usize,
    until: Instant,
    attempted: &AtomicU64,
) -> WriterSlice {
    let mut r = WriterSlice {
        writer,
        next: first,
        saves: histogram(),
        conflicts: histogram(),
        latest: Vec::new(),
        unexpected: 0,
        first_unexpected: None,
    };
    for (n, &i) in ops.iter().enumerate() {
        // Reading the clock every call would cost more than the precision is worth.
        if n % 8 == 0 && Instant::now() >= until {
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
            (Err(Error::VersionConflict { .. }), true) => record(&mut r.conflicts, dt),
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
        r.next += 1;
        attempted.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// The whole save workload with `writers` threads in one slice of at most `cap`.
pub fn save_phase(
    store: &Arc<dyn EventStore>,
    work: &Workload,
    writers: usize,
    cap: Duration,
    consumer: Consumer,
    label: &str,
) -> SavePhase {
    let mut runner = SaveRunner::new(store.clone(), work, writers, consumer);
    let mut progress = Progress::new(label, work.ops.len() as u64, false);
    runner.run_slice(Instant::now() + cap, Some(&mut progress));
    progress.finish();
    runner.finish(format!("save_event ({writers} writers)"))
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
