//! Process-crash harness (sled's pattern): the test re-runs its own binary as a child that
//! writes to a store and prints every acknowledgement, kills it with SIGKILL at a random
//! moment (sometimes while it is still opening), reopens the store and checks that nothing
//! acknowledged was lost.
//!
//! - Durable mode: every acknowledged event is present and byte-identical, versions are
//!   strictly increasing per actor, the sequence is gapless and ends at the head, and every
//!   `EventStored` the child received names an event that survived.
//! - Buffered mode: the same, since a buffered save is in the log file (the OS's page
//!   cache) before it returns; only an OS crash or power loss can lose buffered saves.
//! - Commits across actors are all or nothing: the child commits to "pair-x" and
//!   "pair-y" together, so after every kill their histories must be identical.
//!
//! `AETHER_CRASH_CYCLES` sets the number of cycles per mode (default 200; `make soak`
//! raises it), `AETHER_CRASH_CYCLES_PER_STORE` how many of them share one store (default
//! 200), `AETHER_CRASH_JOBS` how many stores are crashed side by side (default 1).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aether_core::{
    ActorSnapshot, CommitEntry, Durability, Event, EventStore, ExpectedState, Options, SledStore,
    SnapshotStore, Timestamp,
};
use serde_json::json;

const CHILD_ENV: &str = "AETHER_CRASH_CHILD";
const MODE_ENV: &str = "AETHER_CRASH_MODE";

fn ev(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "Crashed", actor, version)
        .with_data("version", version)
        .with_data(
            "body",
            json!({"text": format!("{actor}:{version}:{}", "p".repeat(200)), "n": [1, 2.5, "x"]}),
        );
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128 * 7);
    e
}

fn options(durability: Durability) -> Options {
    let mut o = Options::with_durability(durability);
    o.segment_size = 256 * 1024; // roll often, so kills land in rolls too
    o.checkpoint_interval = Duration::from_millis(20); // and in checkpoints
    o.lock_timeout = Duration::from_secs(10);
    o
}

/// xorshift: deterministic randomness without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The child: write until killed, printing what was acknowledged. Ignored, so it never
/// counts as a test of its own; `run_child` starts it with `--ignored --exact`.
#[test]
#[ignore = "helper: the child process of the crash tests (run_child)"]
fn crash_child() {
    let path = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("crash_child runs only as run_child's child ({CHILD_ENV} unset)")
    });
    let durability: Durability = std::env::var(MODE_ENV).unwrap().parse().unwrap();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = {
        let out = out.clone();
        move |line: String| {
            let mut o = out.lock().unwrap();
            writeln!(o, "{line}").unwrap();
            o.flush().unwrap();
        }
    };
    let store = Arc::new(SledStore::open_with(&path, options(durability)).unwrap());
    // libtest prints "test crash_child ... " without a newline first.
    say("\nOPEN".into());
    {
        let store = store.clone();
        let say = say.clone();
        std::thread::spawn(move || loop {
            if let Some(n) = store.poll_event_stored(Duration::from_millis(50)) {
                say(format!("NOTE {} {} {}", n.sequence, n.actor_id, n.version));
            }
        });
    }
    let seed = std::process::id() as u64 * 2_654_435_761 + 1;
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let store = store.clone();
            let say = say.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed + t * 7919);
                for op in 0u64.. {
                    // Actors overlap between writers, so some saves conflict.
                    let actor = format!("actor-{}", rng.below(6));
                    let latest = store.get_latest_version(&actor).unwrap();
                    let count = if rng.below(10) < 3 {
                        1 + rng.below(4) as i64
                    } else {
                        1
                    };
                    let batch: Vec<Event> = (1..=count).map(|i| ev(&actor, latest + i)).collect();
                    match store.save_events(&batch) {
                        Ok(seq) => say(format!("ACK {actor} {} {count} {seq}", latest + 1)),
                        Err(e) if e.is_conflict() => {}
                        Err(e) => panic!("save failed: {e}"),
                    }
                    if op % 25 == 0 {
                        let snap = ActorSnapshot {
                            actor_id: actor.clone(),
                            version: latest,
                            state: None,
                            timestamp: Timestamp::ZERO,
                        };
                        let _ = store.save_snapshot(&snap);
                    }
                }
            })
        })
        .collect();
    // Commits across actors: "pair-x" and "pair-y" always move together, one record per
    // commit, so after any kill their histories must be identical (all or nothing).
    let pairs = {
        let store = store.clone();
        let say = say.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0x9e37_79b9);
            loop {
                let latest = store.get_latest_version("pair-x").unwrap();
                let count = 1 + rng.below(3) as i64;
                let xs: Vec<Event> = (1..=count).map(|i| ev("pair-x", latest + i)).collect();
                let ys: Vec<Event> = (1..=count).map(|i| ev("pair-y", latest + i)).collect();
                let c = store
                    .commit(&[
                        CommitEntry::new("pair-x", ExpectedState::Exact(latest), &xs),
                        CommitEntry::new("pair-y", ExpectedState::Exact(latest), &ys),
                    ])
                    .unwrap_or_else(|e| panic!("commit failed: {e}"));
                let seq = c.last_sequence;
                say(format!("ACK pair-x {} {count} {seq}", latest + 1));
                say(format!("ACK pair-y {} {count} {seq}", latest + 1));
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    pairs.join().unwrap();
}

#[derive(Default)]
struct Seen {
    opened: bool,
    acked: BTreeSet<(String, i64)>,
    notified: BTreeSet<(String, i64)>,
}

fn run_child(path: &Path, durability: Durability, kill_after: Duration) -> Seen {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(MODE_ENV, durability.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Seen::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["OPEN"] => seen.opened = true,
                ["ACK", actor, first, count, _seq] => {
                    let (first, count): (i64, i64) =
                        (first.parse().unwrap(), count.parse().unwrap());
                    for v in first..first + count {
                        seen.acked.insert((actor.to_string(), v));
                    }
                }
                ["NOTE", _seq, actor, version] => {
                    seen.notified
                        .insert((actor.to_string(), version.parse().unwrap()));
                }
                _ => {}
            }
        }
        seen
    });
    std::thread::sleep(kill_after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Reopen and check the invariants; returns the acknowledged events that are missing.
fn check_store(
    path: &Path,
    acked: &BTreeSet<(String, i64)>,
    notified: &BTreeSet<(String, i64)>,
) -> Vec<(String, i64)> {
    let store = SledStore::open_with(path, options(Durability::Durable))
        .unwrap_or_else(|e| panic!("reopen after kill failed: {e}"));
    let all = store.read_all(1, usize::MAX).unwrap();
    let head = store.last_sequence().unwrap();
    assert_eq!(
        all.len() as u64,
        head,
        "read_all must return the whole gapless sequence"
    );
    let mut per_actor: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (i, se) in all.iter().enumerate() {
        assert_eq!(se.sequence, i as u64 + 1, "sequence gap");
        assert_eq!(
            se.event,
            ev(&se.event.actor_id, se.event.version),
            "payload changed"
        );
        per_actor
            .entry(&se.event.actor_id)
            .or_default()
            .push(se.event.version);
    }
    for (actor, versions) in &per_actor {
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions of {actor} not increasing"
        );
        let stored = store.get_events(actor, 0).unwrap();
        assert_eq!(
            stored.iter().map(|e| e.version).collect::<Vec<_>>(),
            *versions
        );
    }
    // A commit across actors is all or nothing: the pair's histories are identical, and
    // each commit's events are consecutive (x's, then y's).
    let (xs, ys) = (
        per_actor.get("pair-x").cloned().unwrap_or_default(),
        per_actor.get("pair-y").cloned().unwrap_or_default(),
    );
    assert_eq!(
        xs, ys,
        "a commit across actors was cut: pair-x and pair-y differ"
    );
    let seq_of: BTreeMap<(&str, i64), u64> = all
        .iter()
        .map(|se| ((se.event.actor_id.as_str(), se.event.version), se.sequence))
        .collect();
    for w in xs.windows(2) {
        // Within one commit, x's events are followed directly by y's of the same count.
        let (x0, x1) = (seq_of[&("pair-x", w[0])], seq_of[&("pair-x", w[1])]);
        if x1 == x0 + 1 {
            continue;
        }
        let y0 = seq_of[&("pair-y", w[0])];
        assert!(
            y0 > x0 && y0 < x1,
            "the commit holding pair-x v{} is split",
            w[0]
        );
    }
    // Versions are strictly increasing per actor (checked above): binary search, so a
    // cycle's check stays near linear in the store's size over a long soak (it was
    // quadratic: 2,000 cycles took hours).
    let survived = |actor: &str, version: &i64| {
        per_actor
            .get(actor)
            .is_some_and(|vs| vs.binary_search(version).is_ok())
    };
    for (actor, version) in notified {
        assert!(
            survived(actor, version),
            "EventStored was emitted for {actor} v{version}, which did not survive"
        );
    }
    let lost = acked
        .iter()
        .filter(|(a, v)| !survived(a, v))
        .cloned()
        .collect();
    store.close().unwrap();
    lost
}

/// The harness's store directory: removed when the test passes, kept (and its path printed)
/// when a check panics, so a failing cycle can be examined with `aether verify`.
struct StoreDir(Option<tempfile::TempDir>);

impl StoreDir {
    fn new() -> Self {
        StoreDir(Some(tempfile::tempdir().unwrap()))
    }

    fn store(&self) -> std::path::PathBuf {
        self.0.as_ref().unwrap().path().join("store")
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!(
                    "crash harness: store kept for diagnosis at {}",
                    dir.keep().display()
                );
            }
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// What one store's kills added up to.
#[derive(Default)]
struct Tally {
    cycles: u64,
    acks: usize,
    distinct: usize,
    kills_before_open: u64,
}

/// `cycles` kills of a child writing to one new store, each followed by a full check of
/// everything acknowledged to that store so far. Store 0 keeps the seed the harness always
/// had; `done` counts cycles across stores for progress lines.
fn crash_one_store(
    durability: Durability,
    index: u64,
    cycles: u64,
    done: &AtomicU64,
    total: u64,
) -> Tally {
    let dir = StoreDir::new();
    let path = dir.store();
    let mut rng = Rng(0x5eed_cafe ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut acked = BTreeSet::new();
    let mut notified = BTreeSet::new();
    let mut tally = Tally::default();
    for cycle in 0..cycles {
        // Mostly mid-write; one kill in ten lands early, often while the store is opening.
        let delay = if rng.below(10) == 0 {
            rng.below(15)
        } else {
            20 + rng.below(120)
        };
        let seen = run_child(&path, durability, Duration::from_millis(delay));
        tally.kills_before_open += u64::from(!seen.opened);
        tally.acks += seen.acked.len();
        acked.extend(seen.acked);
        notified.extend(seen.notified);
        let lost = check_store(&path, &acked, &notified);
        assert!(
            lost.is_empty(),
            "store {index}, cycle {cycle}: acknowledged events lost: {lost:?}"
        );
        tally.cycles += 1;
        let overall = done.fetch_add(1, Ordering::Relaxed) + 1;
        if overall % 100 == 0 {
            eprintln!(
                "crash harness ({}): {overall} of {total} cycles, lost 0",
                durability.as_str()
            );
        }
    }
    tally.distinct = acked.len();
    if cycles >= 10 {
        assert!(
            acked.iter().any(|(a, _)| a == "pair-x"),
            "store {index}: no commit across actors was acknowledged in {cycles} cycles"
        );
    }
    tally
}

/// `AETHER_CRASH_CYCLES` kills in all (default 200), on a new store every
/// `AETHER_CRASH_CYCLES_PER_STORE` (default 200): each cycle re-reads and checks its whole
/// store, so one store over thousands of cycles would make the run quadratic.
/// `AETHER_CRASH_JOBS` stores run side by side (default 1).
#[test]
fn durable_saves_survive_sigkill() {
    saves_survive_sigkill(Durability::Durable);
}

#[test]
fn buffered_saves_survive_sigkill() {
    saves_survive_sigkill(Durability::Buffered);
}

fn saves_survive_sigkill(durability: Durability) {
    let total = env_or("AETHER_CRASH_CYCLES", 200);
    let per_store = env_or("AETHER_CRASH_CYCLES_PER_STORE", 200).max(1);
    let jobs = env_or("AETHER_CRASH_JOBS", 1).max(1);
    let stores = total.div_ceil(per_store);
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let tallies = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(stores) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= stores {
                    break;
                }
                let cycles = per_store.min(total - index * per_store);
                let tally = crash_one_store(durability, index, cycles, &done, total);
                tallies.lock().unwrap().push(tally);
            });
        }
    });
    let tallies = tallies.into_inner().unwrap();
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let (cycles, acks) = (sum(|t| t.cycles), sum(|t| t.acks as u64));
    eprintln!(
        "crash harness ({}): {cycles} cycles on {stores} store(s), {acks} acknowledged saves, {} distinct events, {} kills before open completed, lost 0",
        durability.as_str(),
        sum(|t| t.distinct as u64),
        sum(|t| t.kills_before_open)
    );
    assert_eq!(cycles, total);
    assert!(acks > 0, "the child never acknowledged anything");
}
