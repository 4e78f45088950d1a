//! Servers killed with SIGKILL while saves are in flight:
//! - one server configured as the README documents (`sync_interval: always`), killed and
//!   restarted several times under concurrent writers (single events and batches): every
//!   acknowledged event is there afterwards, byte for byte, once, and the store-wide
//!   sequence is gapless;
//! - the stream leader of a 3-node R3 cluster, killed under concurrent writers in separate
//!   store handles: nothing acknowledged is lost; the cluster elects a new leader within its
//!   Raft election timeout (nats-server: 4-9 s, randomised) and every writer's saves resume
//!   within one request timeout (1 s here) of the election. The times are printed
//!   (`--nocapture`: `ELECTION:` and `RESUME:` lines).
//!
//! A SIGKILL tests what survives the process dying; `sync_interval: always` is what makes
//! the acknowledgement wait for an fsync, which is the server's promise for a machine crash
//! (not something a process kill can show).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_core::{Error, Event, EventStore, Outcome, Timestamp};
use aether_jetstream::{JetStreamOptions, JetStreamStore};
use common::{require_nats, Cluster, NatsServer};

/// Saves that failed with an unknown outcome (and were retried with the same events).
static UNKNOWN_OUTCOMES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// nats-server's longest Raft election timeout (`maxElectionTimeoutDefault`).
const ELECTION_TIMEOUT: Duration = Duration::from_secs(9);

fn event(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "Deposited", actor, version)
        .with_data("amount", version)
        .with_data("note", "d".repeat(100));
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128);
    e
}

/// Save `events` (one, or a batch), retrying the same events while the outcome is unknown
/// or the server unreachable. `Some(true)` when this call stored them, `Some(false)` when
/// an earlier attempt had (a conflict at their own version). Never gives up on an unknown
/// outcome before 90 s, so every save a writer made is accounted for.
fn save_until_known(store: &JetStreamStore, events: &[Event], stop: &AtomicBool) -> Option<bool> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = if events.len() == 1 {
            store.save_event(&events[0])
        } else {
            store.save_events(events)
        };
        match r {
            Ok(_) => return Some(true),
            Err(Error::VersionConflict {
                current_version, ..
            }) if current_version >= events[0].version => return Some(false),
            Err(e @ (Error::Timeout { .. } | Error::Unavailable { .. })) => {
                if e.outcome() == Outcome::Unknown {
                    UNKNOWN_OUTCOMES.fetch_add(1, Ordering::Relaxed);
                }
                let _ = stop;
                assert!(Instant::now() < deadline, "no answer for 90 s");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("saving {}: {other:?}", events[0].id),
        }
    }
}

/// Every acknowledged event is stored once and byte-identical; each actor's versions run
/// 1..=n without holes; the store-wide sequence is 1..=total without gaps.
fn check_nothing_lost(store: &JetStreamStore, acked: &[Event], actors: &[String]) {
    let mut stored = BTreeMap::new();
    let mut total = 0;
    for actor in actors {
        let events = read(|| store.get_events(actor, 1));
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version, i as i64 + 1, "{actor}: a hole in its versions");
            assert!(stored.insert(e.id.clone(), e.clone()).is_none());
        }
        total += events.len();
    }
    for e in acked {
        let got = stored
            .get(&e.id)
            .unwrap_or_else(|| panic!("acknowledged {} is missing", e.id));
        assert_eq!(got.to_json(), e.to_json(), "{} changed", e.id);
    }
    let all = read(|| store.read_all(1, usize::MAX));
    assert_eq!(all.len(), total);
    let mut ids = HashSet::new();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(
            e.sequence,
            i as u64 + 1,
            "the store-wide sequence has a gap"
        );
        assert!(
            ids.insert(e.event.id.clone()),
            "{} stored twice",
            e.event.id
        );
    }
}

fn read<T>(mut f: impl FnMut() -> aether_core::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e @ (Error::Timeout { .. } | Error::Unavailable { .. }))
                if Instant::now() < deadline =>
            {
                eprintln!("read: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Writers on distinct actors, each saving versions in order (every fourth save a batch of
/// three) until `stop`; returns what each acknowledged, with the time of each
/// acknowledgement.
fn start_writers(
    stores: Vec<Arc<JetStreamStore>>,
    per_store: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(Instant, Event)>>> {
    let mut handles = Vec::new();
    for (s, store) in stores.into_iter().enumerate() {
        for w in 0..per_store {
            let store = store.clone();
            let stop = stop.clone();
            handles.push(std::thread::spawn(move || {
                let actor = format!("writer-{s}-{w}");
                let mut acked = Vec::new();
                let mut version = 1;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let size = if n % 4 == 0 { 3 } else { 1 };
                    let events: Vec<Event> = (version..version + size)
                        .map(|v| event(&actor, v))
                        .collect();
                    match save_until_known(&store, &events, &stop) {
                        Some(true) => {
                            let at = Instant::now();
                            acked.extend(events.into_iter().map(|e| (at, e)));
                        }
                        Some(false) => {}
                        None => break,
                    }
                    version += size;
                }
                acked
            }));
        }
    }
    handles
}

fn opts() -> JetStreamOptions {
    let mut o = JetStreamOptions::default();
    o.connect_timeout = Duration::from_secs(10);
    o.request_timeout = Duration::from_secs(2);
    o
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_single_server_killed_during_saves_loses_no_acknowledged_event() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::single(dir.path());
    assert!(
        std::fs::read_to_string(dir.path().join("server.conf"))
            .unwrap()
            .contains("sync_interval: always"),
        "the single server must run the documented configuration"
    );
    let store = Arc::new(common::open_when_ready(&server.url(), opts()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(vec![store.clone()], 4, stop.clone());
    const CYCLES: usize = 4;
    let mut seen_before_kill = Vec::new();
    for cycle in 0..CYCLES {
        // Wait until saves flow again (since the restart), let them run, then kill the
        // server in the middle of them.
        let flowing = store.metrics().events_saved;
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.metrics().events_saved < flowing + 20 {
            assert!(
                Instant::now() < deadline,
                "saves did not resume within 30 s of restart {cycle}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200 + 150 * cycle as u64));
        seen_before_kill.push(store.metrics().events_saved);
        server.kill();
        std::thread::sleep(Duration::from_millis(300));
        server.restart();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Event> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .map(|(_, e)| e)
        .collect();
    eprintln!(
        "{} acknowledged events over {CYCLES} kills (saved before each kill: {seen_before_kill:?})",
        acked.len()
    );
    assert!(
        seen_before_kill.windows(2).all(|w| w[1] > w[0]),
        "saves did not go on between kills: {seen_before_kill:?}"
    );
    // A fresh handle, as another process would see the store after the crashes.
    let reader = common::open_when_ready(&server.url(), opts());
    let actors: Vec<String> = (0..4).map(|w| format!("writer-0-{w}")).collect();
    check_nothing_lost(&reader, &acked, &actors);
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_cluster_node_killed_during_saves_loses_nothing_and_saves_resume_within_the_election_timeout() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path());
    let mut o = opts();
    o.replicas = 3;
    // A save sent while no leader is elected waits out its request timeout before the
    // retry reaches the new leader: the shorter it is, the closer saves resume to the
    // election. (A timed-out save is retried with the same event: idempotent.)
    o.request_timeout = Duration::from_secs(1);
    let request_timeout = o.request_timeout;
    // Three handles (as three processes would be), each with two writers.
    let stores: Vec<Arc<JetStreamStore>> = (0..3)
        .map(|_| Arc::new(common::open_when_ready(&cluster.urls(), o.clone())))
        .collect();
    let leader = common::stream_leader(&stores[0]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(stores.clone(), 2, stop.clone());
    std::thread::sleep(Duration::from_millis(1500));
    let idx: usize = leader.trim_start_matches('n').parse().unwrap();
    let before = stores[0].metrics().events_saved;
    let killed_at = Instant::now();
    cluster.nodes[idx].kill();
    eprintln!("killed stream leader {leader} after {before} saves by the first handle");
    // When the stream has a new leader, asked of a surviving node.
    let survivor = cluster.nodes[(idx + 1) % 3].url();
    let elected = new_leader_after(&survivor, &leader, killed_at);
    eprintln!("ELECTION: a new stream leader {elected:.2?} after the kill");
    // Let the writers go on for a while.
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<Vec<(Instant, Event)>> =
        writers.into_iter().map(|h| h.join().unwrap()).collect();
    // Per writer: how long after the kill its first save that was acknowledged after the
    // kill completed. Saves acknowledged just after the kill by the old leader count too,
    // so take the first one after a gap: the resumption.
    let mut resumed = Vec::new();
    for (w, acks) in results.iter().enumerate() {
        let after: Vec<Instant> = acks
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t >= killed_at)
            .collect();
        assert!(!after.is_empty(), "writer {w} saved nothing after the kill");
        let mut first = after[0];
        for pair in after.windows(2) {
            if pair[1] - pair[0] > Duration::from_millis(500) {
                first = pair[1];
                break;
            }
        }
        resumed.push(first - killed_at);
    }
    let slowest = *resumed.iter().max().unwrap();
    eprintln!(
        "RESUME: saves resumed {:.2?} after SIGKILL of the stream leader (slowest of {} writers; each: {:?})",
        slowest,
        resumed.len(),
        resumed
            .iter()
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "RESUME: {:.2?} after the new leader was elected",
        slowest.saturating_sub(elected)
    );
    // The server's part: electing a new leader within its election timeout.
    assert!(
        elected <= ELECTION_TIMEOUT + Duration::from_secs(1),
        "the cluster took {elected:?} to elect a new stream leader"
    );
    // The store's part: once there is a leader, every writer's saves land again, at worst
    // after the save in flight to no leader times out. (Before the store recreated a
    // stalled follower itself, saves waited for notifications until the client library
    // noticed two missed 5 s heartbeats: 0.8-2.0 s after the election here.)
    assert!(
        slowest <= elected + request_timeout + Duration::from_millis(500),
        "saves resumed {slowest:?} after the kill, {:?} after the election: the store \
         should resume within one request timeout ({request_timeout:?}) of it",
        slowest.saturating_sub(elected)
    );
    // A leader change mid-save: the saves in flight failed with an unknown outcome (never
    // a conflict or another error, which `save_until_known` would have panicked on), and
    // their retries with the same events stored each exactly once (checked below).
    let unknown = UNKNOWN_OUTCOMES.load(Ordering::Relaxed);
    eprintln!("{unknown} saves had an unknown outcome and were retried");
    assert!(unknown > 0, "no save was in flight when the leader died");
    let acked: Vec<Event> = results.into_iter().flatten().map(|(_, e)| e).collect();
    let actors: Vec<String> = (0..3)
        .flat_map(|s| (0..2).map(move |w| format!("writer-{s}-{w}")))
        .collect();
    eprintln!("{} acknowledged events", acked.len());
    check_nothing_lost(&stores[0], &acked, &actors);
    // And once the killed node is back and another goes, the restarted copy serves.
    cluster.nodes[idx].restart();
    std::thread::sleep(Duration::from_secs(3));
    let other = (idx + 1) % 3;
    cluster.nodes[other].kill();
    check_nothing_lost(&stores[1], &acked, &actors);
}

/// Poll `url` until the events stream reports a leader other than `old`; the time since
/// `since`.
fn new_leader_after(url: &str, old: &str, since: Instant) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Short: with no leader nobody answers, and a long wait would hide the election.
            let reply = client
                .send_request(
                    "$JS.API.STREAM.INFO.AETHER_EVENTS",
                    async_nats::Request::new().timeout(Some(Duration::from_millis(200))),
                )
                .await;
            if let Ok(reply) = reply {
                let info: serde_json::Value =
                    serde_json::from_slice(&reply.payload).unwrap_or_default();
                if let Some(leader) = info["cluster"]["leader"].as_str() {
                    if leader != old {
                        return since.elapsed();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no new stream leader within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}
