// The conformance suite's rules, written once and `include!`d by every backend's test:
// `crates/aether-core/tests/conformance.rs` (memory, sled) and
// `crates/aether-jetstream/tests/conformance.rs` (NATS JetStream).
//
// The including file defines `struct Backend { store: Arc<dyn SnapshotStore>, .. }` (plus
// whatever keeps the store's files or server alive) and one factory function per backend,
// then invokes `conformance!(factory, ...)`. It must not import the names imported here.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use aether_core::{
    ActorSnapshot, BusMessage, Error, Event, EventBus, Metrics, SnapshotStore, Timestamp,
    INTERNAL_NAMESPACE,
};
use serde_json::json;

/// How to build a store with a given EventStored capacity and optional bus/metrics.
type Factory = fn(usize, Option<Arc<EventBus>>, Option<Arc<Metrics>>) -> Backend;

fn open(f: Factory) -> Backend {
    f(1 << 16, None, None)
}

/// A deterministic event: equal arguments give equal events.
fn ev(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "Tested", actor, version)
        .with_data("n", version)
        .with_data(
            "nested",
            json!({"list": [1, "two", {"three": 3.5}], "none": null}),
        );
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128 * 1_000);
    e
}

fn versions(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.version).collect()
}

fn expect_conflict(r: aether_core::Result<u64>, actor: &str, attempted: i64, current: i64) {
    match r {
        Err(Error::VersionConflict {
            actor_id,
            attempted_version,
            current_version,
        }) => {
            assert_eq!(actor_id, actor);
            assert_eq!(attempted_version, attempted);
            assert_eq!(current_version, current);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
}

fn drain(store: &dyn SnapshotStore) -> Vec<aether_core::EventStored> {
    let rx = store.event_stored_receiver();
    rx.try_iter().collect()
}

// ---------------------------------------------------------------------------------------

fn save_then_get_events_is_inclusive_and_ordered(f: Factory) {
    let b = open(f);
    let s = &b.store;
    for v in [1, 2, 3, 5, 8] {
        s.save_event(&ev("order-1", v)).unwrap();
    }
    assert_eq!(
        versions(&s.get_events("order-1", 0).unwrap()),
        [1, 2, 3, 5, 8]
    );
    assert_eq!(versions(&s.get_events("order-1", 3).unwrap()), [3, 5, 8]);
    assert_eq!(versions(&s.get_events("order-1", 4).unwrap()), [5, 8]);
    assert_eq!(
        versions(&s.get_events("order-1", -7).unwrap()),
        [1, 2, 3, 5, 8]
    );
    assert!(s.get_events("order-1", 9).unwrap().is_empty());
    assert!(s.get_events("nobody", 0).unwrap().is_empty());
    assert_eq!(s.get_events("order-1", 1).unwrap()[2], ev("order-1", 3));
}

fn latest_version_is_zero_for_unknown_actor(f: Factory) {
    let b = open(f);
    let s = &b.store;
    assert_eq!(s.get_latest_version("nobody").unwrap(), 0);
    s.save_event(&ev("a", 4)).unwrap();
    assert_eq!(s.get_latest_version("a").unwrap(), 4);
    assert_eq!(s.get_latest_version("nobody").unwrap(), 0);
}

fn conflicts_carry_details_and_write_nothing(f: Factory) {
    let metrics = Arc::new(Metrics::new());
    let b = f(1024, None, Some(metrics.clone()));
    let s = &b.store;
    s.save_event(&ev("a", 1)).unwrap();
    s.save_event(&ev("a", 2)).unwrap();
    let before = drain(s.as_ref());
    assert_eq!(before.len(), 2);
    expect_conflict(s.save_event(&ev("a", 2)), "a", 2, 2);
    expect_conflict(s.save_event(&ev("a", 1)), "a", 1, 2);
    let mut changed = ev("a", 2);
    changed.event_type = "Other".into();
    expect_conflict(s.save_event(&changed), "a", 2, 2);
    // Version 0 and negative versions conflict even for a new actor.
    expect_conflict(s.save_event(&ev("new", 0)), "new", 0, 0);
    expect_conflict(s.save_event(&ev("new", -3)), "new", -3, 0);
    assert_eq!(s.get_events("a", 0).unwrap(), vec![ev("a", 1), ev("a", 2)]);
    assert!(s.get_events("new", 0).unwrap().is_empty());
    assert_eq!(s.last_sequence().unwrap(), 2);
    assert!(
        drain(s.as_ref()).is_empty(),
        "no EventStored after a failed save"
    );
    let m = metrics.snapshot();
    assert_eq!(m.version_conflicts, 5);
    assert_eq!(m.events_saved, 2);
    assert_eq!(s.metrics(), m);
    // The seed's message format.
    let err = s.save_event(&ev("a", 2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "version conflict: actor \"a\" has version 2, cannot save version 2"
    );
}

fn event_stored_follows_each_success_with_the_right_fields(f: Factory) {
    let bus = Arc::new(EventBus::new());
    let internal = bus.subscribe(INTERNAL_NAMESPACE);
    let other = bus.subscribe("orders");
    let b = f(1024, Some(bus.clone()), None);
    let s = &b.store;
    let before = Timestamp::now();
    s.save_event(&ev("a", 1)).unwrap();
    s.save_events(&[ev("b", 1), ev("b", 2)]).unwrap();
    let _ = s.save_event(&ev("a", 1)); // conflict: nothing published
    let polled: Vec<_> = std::iter::from_fn(|| s.poll_event_stored(Duration::ZERO)).collect();
    let got: Vec<_> = polled
        .iter()
        .map(|n| {
            (
                n.event_id.as_str(),
                n.actor_id.as_str(),
                n.version,
                n.sequence,
            )
        })
        .collect();
    assert_eq!(
        got,
        [("a-1", "a", 1, 1), ("b-1", "b", 1, 2), ("b-2", "b", 2, 3)]
    );
    for n in &polled {
        assert!(n.timestamp.unix_nanos() >= before.unix_nanos());
        assert!(n.timestamp.unix_nanos() <= Timestamp::now().unix_nanos());
    }
    let on_bus: Vec<_> = internal.try_iter().collect();
    assert_eq!(
        on_bus,
        polled
            .iter()
            .cloned()
            .map(BusMessage::EventStored)
            .collect::<Vec<_>>()
    );
    assert!(other.try_recv().is_err());
    assert_eq!(s.metrics().event_stored_published, 3);
    // Nothing more arrives; a timed poll returns None after waiting.
    assert!(s.poll_event_stored(Duration::from_millis(20)).is_none());
}

fn a_slow_consumer_never_blocks_saves(f: Factory) {
    let b = f(4, None, None);
    let s = &b.store;
    for v in 1..=10 {
        s.save_event(&ev("a", v)).unwrap();
    }
    let m = s.metrics();
    assert_eq!((m.event_stored_published, m.event_stored_dropped), (10, 6));
    let seqs: Vec<_> = drain(s.as_ref()).iter().map(|n| n.sequence).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    // The consumer sees the gap and catches up from the sequence.
    let rest = s.read_all(5, 100).unwrap();
    assert_eq!(
        rest.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (5..=10).collect::<Vec<_>>()
    );
}

fn batches_are_atomic(f: Factory) {
    let b = open(f);
    let s = &b.store;
    s.save_event(&ev("a", 1)).unwrap();
    let seq = s
        .save_events(&[ev("a", 2), ev("a", 3), ev("a", 7)])
        .unwrap();
    assert_eq!(seq, 4);
    // Conflict on the first event: names it, writes nothing.
    expect_conflict(s.save_events(&[ev("a", 7), ev("a", 8)]), "a", 7, 7);
    assert_eq!(versions(&s.get_events("a", 0).unwrap()), [1, 2, 3, 7]);
    // Malformed batches: nothing written, the field named.
    let bad: Vec<Vec<Event>> = vec![
        vec![],
        vec![ev("a", 8), ev("b", 9)],
        vec![ev("a", 9), ev("a", 9)],
        vec![ev("a", 10), ev("a", 9)],
    ];
    for batch in bad {
        match s.save_events(&batch) {
            Err(Error::InvalidInput { field, .. }) => {
                assert!(["events", "actorId", "version"].contains(&field))
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }
    assert_eq!(s.get_latest_version("a").unwrap(), 7);
    assert_eq!(s.last_sequence().unwrap(), 4);
    assert_eq!(drain(s.as_ref()).len(), 4);
}

fn the_sequence_is_gapless_across_actors(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let mut expected = Vec::new();
    for round in 1..=5 {
        for actor in ["x", "y", "z"] {
            s.save_event(&ev(actor, round)).unwrap();
            expected.push((actor.to_owned(), round));
        }
        let _ = s.save_event(&ev("x", round)); // conflicts consume no sequence
    }
    let all = s.read_all(0, 1000).unwrap();
    assert_eq!(all.len(), 15);
    for (i, se) in all.iter().enumerate() {
        assert_eq!(se.sequence, i as u64 + 1);
        assert_eq!((se.event.actor_id.clone(), se.event.version), expected[i]);
    }
    let page: Vec<_> = s
        .read_all(7, 3)
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(page, [7, 8, 9]);
    assert!(s.read_all(16, 10).unwrap().is_empty());
    assert!(s.read_all(1, 0).unwrap().is_empty());
    assert_eq!(s.last_sequence().unwrap(), 15);
    // The sequenced JSON that C and Go read: each event's own encoding, in order.
    for (from, limit) in [(1, 1000), (7, 3), (15, 5), (16, 10), (1, 0)] {
        let mut want = b"[".to_vec();
        for (i, e) in s.read_all(from, limit).unwrap().iter().enumerate() {
            if i > 0 {
                want.push(b',');
            }
            aether_core::store::push_sequenced_prefix(&mut want, e.sequence);
            e.event.write_json(&mut want);
            want.push(b'}');
        }
        want.push(b']');
        assert_eq!(
            String::from_utf8(s.read_all_sequenced_json(from, limit).unwrap()).unwrap(),
            String::from_utf8(want).unwrap(),
            "from {from}, limit {limit}"
        );
    }
}

fn actor_ids_never_see_each_other(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let long = "x".repeat(4000);
    let ids = [
        "a",
        "ab",
        "a\u{0}b",
        "a\u{0}",
        "b",
        "ünï©ødé-🦀",
        long.as_str(),
    ];
    for (i, id) in ids.iter().enumerate() {
        for v in 1..=(i as i64 + 1) {
            s.save_event(&ev(id, v)).unwrap();
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let got = s.get_events(id, 0).unwrap();
        assert_eq!(got.len(), i + 1, "actor {id:?}");
        assert!(got.iter().all(|e| e.actor_id == *id));
        assert_eq!(s.get_latest_version(id).unwrap(), i as i64 + 1);
    }
    assert_eq!(s.get_latest_version("a\u{0}c").unwrap(), 0);
}

fn invalid_input_is_named_and_writes_nothing(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let cases: Vec<(Event, &str)> = vec![
        (ev("", 1), "actorId"),
        (ev(&"y".repeat(5000), 1), "actorId"),
        (ev("big", 1).with_data("blob", "z".repeat(2 << 20)), "event"),
    ];
    for (event, field) in cases {
        match s.save_event(&event) {
            Err(Error::InvalidInput { field: f, reason }) => {
                assert_eq!(f, field);
                assert!(!reason.is_empty());
            }
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    assert_eq!(s.last_sequence().unwrap(), 0);
    assert_eq!(s.get_latest_version("big").unwrap(), 0);
    let snap = ActorSnapshot {
        actor_id: String::new(),
        ..ActorSnapshot::default()
    };
    assert!(matches!(
        s.save_snapshot(&snap),
        Err(Error::InvalidInput {
            field: "actorId",
            ..
        })
    ));
}

/// An event of `actor` at `version` whose JSON encoding is exactly `len` bytes.
fn event_of_len(actor: &str, version: i64, len: usize) -> Event {
    let base = ev(actor, version).with_data("blob", "");
    let short = base.to_json().len();
    assert!(len >= short, "{len} is shorter than an empty event ({short})");
    let e = ev(actor, version).with_data("blob", "z".repeat(len - short));
    assert_eq!(e.to_json().len(), len);
    e
}

fn expect_invalid<T: std::fmt::Debug>(r: aether_core::Result<T>, field: &str) {
    match r {
        Err(Error::InvalidInput { field: f, .. }) if f == field => {}
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

/// The documented limits hold at their edges on every backend: an event (and a snapshot)
/// encoding to exactly `max_record_len` (1 MiB), a batch of exactly `max_batch_len`
/// (10,000) events and one of exactly `max_batch_bytes` (64 MiB) are stored and read back
/// whole; one byte or one event more is refused, naming the field, and writes nothing.
fn limits_hold_at_their_edges(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let limits = aether_core::Limits::default();
    let max = limits.max_record_len;

    // One event of exactly 1 MiB, and one a byte longer.
    let big = event_of_len("edge-event", 1, max);
    expect_invalid(s.save_event(&event_of_len("edge-event", 1, max + 1)), "event");
    assert_eq!(s.last_sequence().unwrap(), 0);
    assert_eq!(s.save_event(&big).unwrap(), 1);
    assert_eq!(s.get_events_json("edge-event", 1).unwrap().len(), max + 2);
    assert_eq!(s.get_events("edge-event", 1).unwrap(), vec![big]);

    // A snapshot of exactly 1 MiB, and one a byte longer.
    let mut snap = ActorSnapshot {
        actor_id: "edge-event".into(),
        version: 1,
        ..ActorSnapshot::default()
    };
    let blob = |n: usize| {
        let mut m = serde_json::Map::new();
        m.insert("blob".into(), json!("s".repeat(n)));
        Some(m)
    };
    snap.state = blob(0);
    let with_blob = snap.to_json().len();
    snap.state = blob(max - with_blob);
    assert_eq!(snap.to_json().len(), max);
    let mut too_big = snap.clone();
    too_big.state = blob(max - with_blob + 1);
    expect_invalid(s.save_snapshot(&too_big), "snapshot");
    s.save_snapshot(&snap).unwrap();
    assert_eq!(s.get_latest_snapshot("edge-event").unwrap(), Some(snap));

    // A batch of exactly 10,000 events, and one of 10,001.
    let n = limits.max_batch_len as i64;
    let many: Vec<Event> = (1..=n + 1).map(|v| ev("edge-count", v)).collect();
    expect_invalid(s.save_events(&many), "events");
    assert_eq!(s.get_latest_version("edge-count").unwrap(), 0);
    let many = &many[..n as usize];
    assert_eq!(s.save_events(many).unwrap(), 1 + n as u64);
    let back = s.get_events("edge-count", 1).unwrap();
    assert_eq!(back.len(), n as usize);
    assert!(back.iter().eq(many.iter()));
    let page = s.read_all(2, usize::MAX).unwrap();
    assert_eq!(page.len(), n as usize);
    for (i, e) in page.iter().enumerate() {
        assert_eq!(e.sequence, 2 + i as u64);
        assert_eq!(e.event.version, 1 + i as i64);
    }

    // A batch of exactly 64 MiB (64 events of exactly 1 MiB), and one event more.
    let per_batch = limits.max_batch_bytes / max;
    assert_eq!(per_batch * max, limits.max_batch_bytes);
    let heavy: Vec<Event> = (1..=per_batch as i64 + 1)
        .map(|v| event_of_len("edge-bytes", v, if v as usize > per_batch { 300 } else { max }))
        .collect();
    expect_invalid(s.save_events(&heavy), "events");
    assert_eq!(s.get_latest_version("edge-bytes").unwrap(), 0);
    let first = s.last_sequence().unwrap() + 1;
    assert_eq!(
        s.save_events(&heavy[..per_batch]).unwrap(),
        first + per_batch as u64 - 1
    );
    let back = s.get_events("edge-bytes", 1).unwrap();
    assert_eq!(back.len(), per_batch);
    assert!(back.iter().eq(heavy[..per_batch].iter()));
}

fn snapshots_keep_the_latest_and_reject_stale_ones(f: Factory) {
    let b = open(f);
    let s = &b.store;
    assert_eq!(s.get_latest_snapshot("a").unwrap(), None);
    let snap = |v: i64| ActorSnapshot {
        actor_id: "a".into(),
        version: v,
        state: Some(
            json!({"total": v, "items": ["x"]})
                .as_object()
                .unwrap()
                .clone(),
        ),
        timestamp: Timestamp::parse_rfc3339("2024-05-06T07:08:09.5+02:00").unwrap(),
    };
    s.save_snapshot(&snap(5)).unwrap();
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snap(5)));
    s.save_snapshot(&snap(9)).unwrap();
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snap(9)));
    match s.save_snapshot(&snap(3)) {
        Err(Error::StaleSnapshot {
            attempted_version: 3,
            current_version: 9,
            ..
        }) => {}
        other => panic!("expected a stale snapshot, got {other:?}"),
    }
    let mut same = snap(9);
    same.state = None;
    s.save_snapshot(&same).unwrap();
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(same));
    assert_eq!(s.get_latest_snapshot("ab").unwrap(), None);
    assert_eq!(s.metrics().snapshots_saved, 3);
}

/// A snapshot reads back as its JSON decodes, on every backend: a float with an integral
/// value (`2.0`) is written as Go writes it (`2`) and so reads back as the integer 2, while
/// other floats stay floats.
fn snapshots_read_back_as_their_json_decodes(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let state = json!({"whole": 2.0, "half": 2.5, "int": 2, "nested": {"list": [1.0, -0.5]}});
    let snap = ActorSnapshot {
        actor_id: "floats".into(),
        version: 1,
        state: Some(state.as_object().unwrap().clone()),
        timestamp: Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
    };
    s.save_snapshot(&snap).unwrap();
    let got = s.get_latest_snapshot("floats").unwrap().unwrap();
    let decoded: ActorSnapshot = serde_json::from_slice(&snap.to_json()).unwrap();
    assert_eq!(got, decoded);
    assert_eq!(got.to_json(), snap.to_json());
    let got_state = got.state.unwrap();
    assert!(got_state["whole"].is_i64(), "2.0 read back as {:?}", got_state["whole"]);
    assert_eq!(got_state["whole"], json!(2));
    assert!(got_state["half"].is_f64());
    assert!(got_state["nested"]["list"][0].is_i64());
    assert!(got_state["nested"]["list"][1].is_f64());
}

fn events_round_trip_unchanged(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let mut e = ev("rt", 1);
    e.command_id = "cmd-1".into();
    e.set_correlation_id("corr");
    e.set_trace_id("trace");
    e.timestamp = Timestamp::parse_rfc3339("2023-03-04T05:06:07.000000123-08:00").unwrap();
    e.data_mut()
        .insert("big".into(), json!(9_007_199_254_740_993u64));
    e.data_mut().insert("html".into(), json!("<a&b>\u{2028}"));
    let mut nil = ev("rt", 2);
    nil.data = None;
    s.save_events(&[e.clone(), nil.clone()]).unwrap();
    let got = s.get_events("rt", 0).unwrap();
    assert_eq!(got, vec![e.clone(), nil.clone()]);
    let json = s.get_events_json("rt", 1).unwrap();
    let mut expected = b"[".to_vec();
    expected.extend(e.to_json());
    expected.push(b',');
    expected.extend(nil.to_json());
    expected.push(b']');
    assert_eq!(
        String::from_utf8(json).unwrap(),
        String::from_utf8(expected).unwrap()
    );
    assert_eq!(s.get_events_json("nobody", 0).unwrap(), b"[]");
    let with_errors = s.get_events_with_errors("rt", 2).unwrap();
    assert!(!with_errors.has_errors());
    assert_eq!(with_errors.events, vec![nil]);
}

fn racing_writers_get_one_winner_per_version(f: Factory) {
    let b = f(1 << 20, None, None);
    let s = b.store.clone();
    const THREADS: usize = 8;
    const VERSIONS: i64 = 60;
    let actors = ["r1", "r2", "r3"];
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut wins = Vec::new();
                for v in 1..=VERSIONS {
                    for a in actors {
                        let mut e = ev(a, v);
                        e.id = format!("{a}-{v}-t{t}");
                        match s.save_event(&e) {
                            Ok(_) => wins.push((a, v)),
                            Err(Error::VersionConflict {
                                attempted_version,
                                current_version,
                                ..
                            }) => {
                                assert_eq!(attempted_version, v);
                                assert!(current_version >= v, "{current_version} < {v}");
                            }
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    }
                }
                wins
            })
        })
        .collect();
    let mut wins = Vec::new();
    for h in handles {
        wins.extend(h.join().unwrap());
    }
    let unique: HashSet<_> = wins.iter().collect();
    assert_eq!(unique.len(), wins.len(), "a version was won twice");
    assert_eq!(wins.len(), actors.len() * VERSIONS as usize);
    let all = s.read_all(1, usize::MAX).unwrap();
    assert_eq!(all.len(), wins.len());
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.sequence, i as u64 + 1);
    }
    // Per actor, stored versions are exactly 1..=VERSIONS, each notified exactly once.
    let notes = drain(s.as_ref());
    assert_eq!(notes.len(), wins.len());
    let mut per_actor: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for n in &notes {
        per_actor
            .entry(n.actor_id.clone())
            .or_default()
            .push(n.version);
    }
    for a in actors {
        assert_eq!(
            per_actor[a],
            (1..=VERSIONS).collect::<Vec<_>>(),
            "actor {a}"
        );
        assert_eq!(versions(&s.get_events(a, 0).unwrap()), per_actor[a]);
    }
    let seqs: Vec<u64> = notes.iter().map(|n| n.sequence).collect();
    assert_eq!(seqs, (1..=wins.len() as u64).collect::<Vec<_>>());
}

fn close_stops_writes_but_keeps_what_was_saved(f: Factory) {
    let b = open(f);
    let s = &b.store;
    s.save_event(&ev("a", 1)).unwrap();
    s.close().unwrap();
    s.close().unwrap(); // idempotent
    assert!(matches!(s.save_event(&ev("a", 2)), Err(Error::Closed(_))));
    assert!(matches!(
        s.save_events(&[ev("b", 1)]),
        Err(Error::Closed(_))
    ));
    let snap = ActorSnapshot {
        actor_id: "a".into(),
        version: 1,
        ..ActorSnapshot::default()
    };
    assert!(matches!(s.save_snapshot(&snap), Err(Error::Closed(_))));
    assert_eq!(s.get_events("a", 0).unwrap(), vec![ev("a", 1)]);
    assert_eq!(s.get_latest_version("a").unwrap(), 1);
}

/// `conformance!(a, b)` runs every rule against factories `a` and `b`. Attributes before a
/// factory go on each of its tests: `conformance!(#[cfg_attr(skip, ignore = "why")] a)`
/// builds them ignored, so a backend that is missing (and allowed to be: see the including
/// file) shows as ignored in the runner's counts, never as passed.
macro_rules! conformance {
    ($($(#[$attr:meta])* $backend:ident),* $(,)?) => {$(
        mod $backend {
            #[test] $(#[$attr])* fn save_then_get_events_is_inclusive_and_ordered() { super::save_then_get_events_is_inclusive_and_ordered(super::$backend) }
            #[test] $(#[$attr])* fn latest_version_is_zero_for_unknown_actor() { super::latest_version_is_zero_for_unknown_actor(super::$backend) }
            #[test] $(#[$attr])* fn conflicts_carry_details_and_write_nothing() { super::conflicts_carry_details_and_write_nothing(super::$backend) }
            #[test] $(#[$attr])* fn event_stored_follows_each_success_with_the_right_fields() { super::event_stored_follows_each_success_with_the_right_fields(super::$backend) }
            #[test] $(#[$attr])* fn a_slow_consumer_never_blocks_saves() { super::a_slow_consumer_never_blocks_saves(super::$backend) }
            #[test] $(#[$attr])* fn batches_are_atomic() { super::batches_are_atomic(super::$backend) }
            #[test] $(#[$attr])* fn the_sequence_is_gapless_across_actors() { super::the_sequence_is_gapless_across_actors(super::$backend) }
            #[test] $(#[$attr])* fn actor_ids_never_see_each_other() { super::actor_ids_never_see_each_other(super::$backend) }
            #[test] $(#[$attr])* fn invalid_input_is_named_and_writes_nothing() { super::invalid_input_is_named_and_writes_nothing(super::$backend) }
            #[test] $(#[$attr])* fn limits_hold_at_their_edges() { super::limits_hold_at_their_edges(super::$backend) }
            #[test] $(#[$attr])* fn snapshots_keep_the_latest_and_reject_stale_ones() { super::snapshots_keep_the_latest_and_reject_stale_ones(super::$backend) }
            #[test] $(#[$attr])* fn events_round_trip_unchanged() { super::events_round_trip_unchanged(super::$backend) }
            #[test] $(#[$attr])* fn snapshots_read_back_as_their_json_decodes() { super::snapshots_read_back_as_their_json_decodes(super::$backend) }
            #[test] $(#[$attr])* fn close_stops_writes_but_keeps_what_was_saved() { super::close_stops_writes_but_keeps_what_was_saved(super::$backend) }
            #[test] $(#[$attr])* fn racing_writers_get_one_winner_per_version() { super::racing_writers_get_one_winner_per_version(super::$backend) }
        }
    )*};
}
