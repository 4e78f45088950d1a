//! Bounded and backward reads on JetStream past the versions the conformance suite uses:
//! the binary search for a range's first message (past version 64) and the widening
//! window of backward reads, against the same reads done the plain way (every event of
//! the actor, then filtered), on actors with and without gaps in their versions,
//! interleaved with another actor's messages.

mod common;

use aether_core::{CommitEntry, Direction, Event, EventRange, EventStore, ExpectedState};
use aether_jetstream::JetStreamOptions;
use common::{require_nats, NatsServer};

fn plain(all: &[Event], r: &EventRange) -> Vec<i64> {
    let mut v: Vec<i64> = all
        .iter()
        .map(|e| e.version)
        .filter(|v| r.contains(*v))
        .collect();
    if r.direction == Direction::Backward {
        v.reverse();
    }
    v.truncate(r.limit);
    v
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn ranges_far_into_an_actor_match_a_full_read() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let s = common::open_when_ready(&server.url(), JetStreamOptions::default());
    // "dense": versions 1..=300; "gappy": 3, 6, 9, … (every third); "noise" in between.
    for chunk in 0..30 {
        let dense: Vec<Event> = (1..=10)
            .map(|i| Event::new(format!("d{chunk}-{i}"), "T", "dense", chunk * 10 + i))
            .collect();
        let gappy: Vec<Event> = (1..=10)
            .map(|i| Event::new(format!("g{chunk}-{i}"), "T", "gappy", (chunk * 10 + i) * 3))
            .collect();
        let noise = [Event::new(format!("n{chunk}"), "T", "noise", 0)];
        s.commit(&[
            CommitEntry::new("dense", ExpectedState::Any, &dense),
            CommitEntry::new("noise", ExpectedState::Any, &noise),
            CommitEntry::new("gappy", ExpectedState::Any, &gappy),
        ])
        .unwrap();
    }
    for actor in ["dense", "gappy"] {
        let all = s.get_events(actor, 0).unwrap();
        assert_eq!(all.len(), 300);
        let ranges = [
            EventRange::new(100, 110),
            EventRange::new(65, 65),
            EventRange::new(66, 900),
            EventRange::new(250, 260).backward(),
            EventRange::new(200, i64::MAX).limit(7),
            EventRange::last(1),
            EventRange::last(5),
            EventRange::last(299),
            EventRange::last(1000),
            EventRange::new(1, 150).backward().limit(4),
            EventRange::new(901, 2000),
            EventRange::new(70, 70),
        ];
        for r in ranges {
            let got: Vec<i64> = s
                .get_events_range(actor, &r)
                .unwrap()
                .iter()
                .map(|e| e.version)
                .collect();
            assert_eq!(got, plain(&all, &r), "{actor} {r:?}");
            let json = s.get_events_range_json(actor, &r).unwrap();
            let decoded: Vec<Event> = serde_json::from_slice(&json).unwrap();
            assert_eq!(decoded.iter().map(|e| e.version).collect::<Vec<_>>(), got);
        }
    }
}
