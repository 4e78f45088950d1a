//! Commits on JetStream where they can break: a condition on an actor the commit does not
//! write to is checked by the server in the same step as the commit, never by a read
//! before it. Writers commit under the condition "the gate actor has no events" while
//! another connection writes the gate; no event committed under that condition may land
//! after the gate's event. Both ways a condition is carried are raced: on a message of
//! the commit that has no check of its own (a commit of two events), and as the stream's
//! expected last sequence (a commit of one event, no message free to carry it), on a
//! single server and on a 3-node cluster with R3 streams (where a check on a subject
//! with a write in flight at the leader is refused and retried).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_core::{CommitEntry, Error, Event, EventStore, ExpectedState, Timestamp};
use aether_jetstream::{JetStreamOptions, JetStreamStore};
use common::{require_nats, Cluster, NatsServer};

fn ev(actor: &str, n: u64) -> Event {
    let mut e = Event::new(format!("{actor}-{n}"), "Gated", actor, 0);
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + n as i128);
    e
}

fn open(urls: &str, replicas: usize) -> Arc<JetStreamStore> {
    let mut o = JetStreamOptions::default();
    o.replicas = replicas;
    o.connect_timeout = Duration::from_secs(10);
    Arc::new(common::open_when_ready(urls, o))
}

/// Writers commit under "the gate has no events" until each has committed; then another
/// handle writes the gate, and the writers go on until each has been refused. No event
/// committed under the condition may come after the gate's.
fn gate_race(open: &dyn Fn() -> Arc<JetStreamStore>, rounds: usize) {
    for round in 0..rounds {
        let gate = format!("gate-{round}");
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Arc<Vec<(AtomicU64, AtomicU64)>> = Arc::new(
            (0..4)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        );
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = open();
                let stop = stop.clone();
                let gate = gate.clone();
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let actor = format!("w{w}-{gate}");
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 2;
                        // Writers 0 and 1: two events (the second carries the condition);
                        // writers 2 and 3: one event (the stream's end carries it).
                        let events: Vec<Event> = if w < 2 {
                            vec![ev(&actor, n), ev(&actor, n + 1)]
                        } else {
                            vec![ev(&actor, n)]
                        };
                        match store.commit(&[
                            CommitEntry::new(&actor, ExpectedState::Any, &events),
                            CommitEntry::condition(&gate, ExpectedState::NoStream),
                        ]) {
                            Ok(_) => {
                                progress[w].0.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(Error::CommitConflict { conflicts }) => {
                                assert_eq!(conflicts.len(), 1);
                                assert_eq!(conflicts[0].actor_id, gate);
                                assert_eq!(conflicts[0].current_version, 1);
                                progress[w].1.fetch_add(1, Ordering::Relaxed);
                            }
                            // The stream-wide check can lose to the other writers until
                            // the store's retry budget runs out, and a cluster may be
                            // electing a leader: whatever landed passed the server's
                            // check, which is what the test verifies.
                            Err(Error::Timeout { .. } | Error::Unavailable { .. }) => {}
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                    actor
                })
            })
            .collect();
        let wait_for = |what: &str, f: &dyn Fn(&(AtomicU64, AtomicU64)) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !progress.iter().all(f) {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: {what} within 30 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("every writer commits", &|p| p.0.load(Ordering::Relaxed) > 0);
        let gatekeeper = open();
        let gate_seq = gatekeeper
            .save_event(&Event::new(format!("{gate}-1"), "Closed", &gate, 1))
            .unwrap();
        wait_for("every writer is refused", &|p| {
            p.1.load(Ordering::Relaxed) > 0
        });
        stop.store(true, Ordering::Relaxed);
        let actors: Vec<String> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let all = gatekeeper.read_all(1, usize::MAX).unwrap();
        for actor in &actors {
            let late: Vec<_> = all
                .iter()
                .filter(|e| &e.event.actor_id == actor && e.sequence > gate_seq)
                .map(|e| e.sequence)
                .collect();
            assert!(
                late.is_empty(),
                "{actor}: committed under 'gate has no events' after the gate's event (sequence {gate_seq}): {late:?}"
            );
        }
        let counts: Vec<_> = progress
            .iter()
            .map(|p| (p.0.load(Ordering::Relaxed), p.1.load(Ordering::Relaxed)))
            .collect();
        println!("round {round}: gate at {gate_seq}, (committed, refused) per writer {counts:?}");
    }
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_condition_on_an_unwritten_actor_is_checked_by_the_server() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    gate_race(&|| open(&server.url(), 1), 3);
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_condition_is_checked_by_the_server_on_an_r3_cluster() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path());
    gate_race(&|| open(&cluster.urls(), 3), 1);
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_view_another_handle_moved_is_reported_as_it_is_and_many_conditions_fit() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let mine = open(&server.url(), 1);
    let other = open(&server.url(), 1);
    // `mine` learns "a" and "d" at version 1.
    mine.save_event(&Event::new("a-1", "T", "a", 1)).unwrap();
    mine.save_event(&Event::new("d-1", "T", "d", 1)).unwrap();
    // Another handle moves "d" on; the conflict reports it as it is now.
    other.save_event(&Event::new("d-2", "T", "d", 2)).unwrap();
    let a = [Event::new("a-2", "T", "a", 2)];
    let err = mine
        .commit(&[
            CommitEntry::new("a", ExpectedState::Exact(1), &a),
            CommitEntry::condition("d", ExpectedState::Exact(1)),
        ])
        .unwrap_err();
    match err {
        Error::CommitConflict { conflicts } => {
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            assert_eq!(
                (conflicts[0].actor_id.as_str(), conflicts[0].current_version),
                ("d", 2)
            );
        }
        other => panic!("expected a commit conflict, got {other:?}"),
    }
    assert_eq!(mine.last_sequence().unwrap(), 3);
    // Condition met: one event and one condition (the stream's end carries it).
    let c = mine
        .commit(&[
            CommitEntry::new("a", ExpectedState::Exact(1), &a),
            CommitEntry::condition("d", ExpectedState::Exact(2)),
        ])
        .unwrap();
    assert_eq!((c.first_sequence, c.last_sequence), (4, 4));
    // Many conditions, few messages: still one commit, still all checked.
    let b = [
        Event::new("b-1", "T", "b", 0),
        Event::new("b-2", "T", "b", 0),
    ];
    let c = other
        .commit(&[
            CommitEntry::new("b", ExpectedState::NoStream, &b),
            CommitEntry::condition("a", ExpectedState::Exact(2)),
            CommitEntry::condition("d", ExpectedState::Exact(2)),
            CommitEntry::condition("e", ExpectedState::NoStream),
        ])
        .unwrap();
    assert_eq!((c.first_sequence, c.last_sequence), (5, 6));
    assert_eq!(c.actors[0].last_version, 2);
}
