//! Commits on JetStream where they can break: a condition on an actor the commit does not
//! write to is checked by the server in the same step as the commit, never by a read
//! before it. Writers commit under the condition "the gate actor has no events" while
//! another connection writes the gate; no event committed under that condition may land
//! after the gate's event. Both ways a condition is carried are raced: on a message of
//! the commit that has no check of its own (a commit of two events), and as the stream's
//! expected last sequence (a commit of one event, no message free to carry it).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aether_core::{CommitEntry, Error, Event, EventStore, ExpectedState, Timestamp};
use aether_jetstream::{JetStreamOptions, JetStreamStore};
use common::{require_nats, NatsServer};

fn ev(actor: &str, n: u64) -> Event {
    let mut e = Event::new(format!("{actor}-{n}"), "Gated", actor, 0);
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + n as i128);
    e
}

fn open(server: &NatsServer) -> Arc<JetStreamStore> {
    Arc::new(common::open_when_ready(
        &server.url(),
        JetStreamOptions::default(),
    ))
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
    for round in 0..3 {
        let gate = format!("gate-{round}");
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = open(&server);
                let stop = stop.clone();
                let gate = gate.clone();
                std::thread::spawn(move || {
                    let actor = format!("w{w}-{gate}");
                    let (mut ok, mut refused) = (0u64, 0u64);
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
                            Ok(_) => ok += 1,
                            Err(Error::CommitConflict { conflicts }) => {
                                assert_eq!(conflicts.len(), 1);
                                assert_eq!(conflicts[0].actor_id, gate);
                                assert_eq!(conflicts[0].current_version, 1);
                                refused += 1;
                            }
                            // The stream-wide check can lose to the other writers until
                            // the store's retry budget runs out: refused, nothing written.
                            Err(Error::Timeout { outcome, .. }) => {
                                assert_eq!(outcome, aether_core::Outcome::NotApplied);
                            }
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                    (actor, ok, refused)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400));
        let gatekeeper = open(&server);
        let gate_seq = gatekeeper
            .save_event(&Event::new(format!("{gate}-1"), "Closed", &gate, 1))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<_> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let all = gatekeeper.read_all(1, usize::MAX).unwrap();
        for (actor, ok, refused) in &results {
            assert!(*ok > 0, "{actor} committed nothing before the gate");
            assert!(*refused > 0, "{actor} was never refused after the gate");
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
        println!("round {round}: gate at {gate_seq}, writers {results:?}");
    }
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
    let mine = open(&server);
    let other = open(&server);
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
