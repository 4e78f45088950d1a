//! A 3-node JetStream cluster on 127.0.0.1 (three `nats-server` processes, each with its
//! own client and cluster port and folder) holding R3 streams:
//! - saves go on while the stream leader is killed; after it restarts every acknowledged
//!   event is present exactly once, also once another node is killed (so the restarted
//!   node's copy is part of the quorum that answers);
//! - two client processes racing on the same actors get exactly one winner per version.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aether_core::{Error, Event, EventStore, Timestamp};
use aether_jetstream::{JetStreamOptions, JetStreamStore};
use common::{require_nats, Cluster};

fn cluster_opts() -> JetStreamOptions {
    let mut o = JetStreamOptions::default();
    o.replicas = 3;
    o.connect_timeout = Duration::from_secs(10);
    o.request_timeout = Duration::from_secs(2);
    o
}

/// Save `e`, retrying the same event (same ID) while the outcome is unknown or the cluster
/// unavailable; `true` when this call stored it, `false` when an earlier attempt had.
fn save_through_failures(store: &JetStreamStore, e: &Event) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.save_event(e) {
            Ok(_) => return true,
            Err(Error::VersionConflict {
                current_version, ..
            }) if current_version >= e.version => {
                // Only an earlier attempt of ours can have taken this version.
                return false;
            }
            Err(Error::Timeout { .. } | Error::Unavailable { .. }) => {
                assert!(Instant::now() < deadline, "cluster unavailable for 60 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(other) => panic!("saving {}: {other:?}", e.id),
        }
    }
}

/// Run a read, retrying while the cluster refuses it (a leader is being elected).
fn read<T>(what: &str, mut f: impl FnMut() -> aether_core::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e @ (Error::Timeout { .. } | Error::Unavailable { .. }))
                if Instant::now() < deadline =>
            {
                eprintln!("{what}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

fn check_exactly_once(store: &JetStreamStore, actors: usize, per_actor: i64, acked: &[String]) {
    let mut stored = HashSet::new();
    for a in 0..actors {
        let actor = format!("acct-{a}");
        let events = read(&actor, || store.get_events(&actor, 0));
        assert_eq!(
            events.iter().map(|e| e.version).collect::<Vec<_>>(),
            (1..=per_actor).collect::<Vec<_>>(),
            "{actor}: every version exactly once"
        );
        for e in events {
            assert!(stored.insert(e.id.clone()), "{} stored twice", e.id);
        }
    }
    for id in acked {
        assert!(stored.contains(id), "acknowledged {id} is missing");
    }
    let all = read("read_all", || store.read_all(1, usize::MAX));
    assert_eq!(all.len(), actors * per_actor as usize);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.sequence, i as u64 + 1);
    }
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn saves_go_on_through_a_node_loss_and_every_acknowledged_event_is_kept_once() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path());
    let store = common::open_when_ready(&cluster.urls(), cluster_opts());
    const ACTORS: usize = 5;
    const PER_ACTOR: i64 = 60;
    let total = ACTORS * PER_ACTOR as usize;
    let mut acked = Vec::new();
    let mut victim = None;
    let mut during_outage = 0;
    for i in 0..total {
        if i == total / 3 {
            let leader = common::stream_leader(&store);
            let idx: usize = leader.trim_start_matches('n').parse().unwrap();
            eprintln!("killing stream leader {leader}");
            cluster.nodes[idx].kill();
            victim = Some(idx);
        }
        if i == 2 * total / 3 {
            let idx = victim.unwrap();
            eprintln!("restarting n{idx}");
            cluster.nodes[idx].restart();
        }
        let actor = format!("acct-{}", i % ACTORS);
        let version = (i / ACTORS) as i64 + 1;
        let mut e = Event::new(
            format!("{actor}-{version}"),
            "Deposited",
            actor.as_str(),
            version,
        )
        .with_data("amount", i);
        e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + i as i128);
        if save_through_failures(&store, &e) {
            acked.push(e.id.clone());
            if (total / 3..2 * total / 3).contains(&i) {
                during_outage += 1;
            }
        }
    }
    assert!(during_outage > 0, "no save succeeded with a node down");
    check_exactly_once(&store, ACTORS, PER_ACTOR, &acked);

    // Now lose a different node: the restarted one must hold its share of the quorum.
    let restarted = victim.unwrap();
    let other = (restarted + 1) % 3;
    eprintln!("killing n{other}; n{restarted} (restarted) must serve with the third");
    cluster.nodes[other].kill();
    check_exactly_once(&store, ACTORS, PER_ACTOR, &acked);
}

#[test]
#[ignore = "helper: a racing child process, run by common::race_processes"]
fn race_child() {
    common::race_child_main();
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn two_processes_racing_on_a_cluster_get_one_winner_per_version() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path());
    let store = common::open_when_ready(&cluster.urls(), cluster_opts());
    let wins = common::race_processes(&cluster.urls(), 2, 3, 30);
    common::check_race(&store, &wins, 3, 30);
}
