// The conformance rules of appends beyond the seed (expected states, automatic versions,
// idempotent retries, commits across actors), snapshot history, and bounded and
// filtered reads. `include!`d after `suite.rs` (whose helpers it uses) by each backend's
// conformance test that implements them, and invoked as `appends_conformance!(...)`.

use aether_core::{
    AppendStatus, CommitEntry, Committed, Direction, EventFilter, EventRange, ExpectedState,
};

fn expect_commit_conflict(r: aether_core::Result<Committed>, want: &[(&str, ExpectedState, i64, i64)]) {
    match r {
        Err(Error::CommitConflict { conflicts }) => {
            let got: Vec<_> = conflicts
                .iter()
                .map(|c| {
                    (
                        c.actor_id.as_str(),
                        c.expected,
                        c.attempted_version,
                        c.current_version,
                    )
                })
                .collect();
            assert_eq!(got, want);
        }
        other => panic!("expected a commit conflict, got {other:?}"),
    }
}

fn with_type(mut e: Event, t: &str) -> Event {
    e.event_type = t.into();
    e
}

fn expected_states_are_checked_and_a_failure_writes_nothing(f: Factory) {
    use ExpectedState::*;
    let metrics = Arc::new(Metrics::new());
    let b = f(1024, None, Some(metrics.clone()));
    let s = &b.store;
    expect_commit_conflict(
        s.append("a", StreamExists, &[ev("a", 1)]),
        &[("a", StreamExists, 1, 0)],
    );
    expect_commit_conflict(s.append("a", Exact(1), &[ev("a", 1)]), &[("a", Exact(1), 1, 0)]);
    let c = s.append("a", NoStream, &[ev("a", 1), ev("a", 2)]).unwrap();
    assert_eq!(c.status, AppendStatus::Appended);
    assert_eq!((c.first_sequence, c.last_sequence), (1, 2));
    expect_commit_conflict(s.append("a", NoStream, &[ev("a", 3)]), &[("a", NoStream, 3, 2)]);
    expect_commit_conflict(s.append("a", Exact(1), &[ev("a", 3)]), &[("a", Exact(1), 3, 2)]);
    // Whatever the mode, explicit versions must pass the latest (new IDs: not a retry).
    let fresh = |v: i64| {
        let mut e = ev("a", v);
        e.id = format!("fresh-{v}");
        e
    };
    expect_commit_conflict(s.append("a", Any, &[fresh(2)]), &[("a", Any, 2, 2)]);
    expect_commit_conflict(
        s.append("a", Increasing, &[fresh(1)]),
        &[("a", Increasing, 1, 2)],
    );
    assert_eq!(s.last_sequence().unwrap(), 2);
    assert_eq!(drain(s.as_ref()).len(), 2, "no EventStored after a failed append");
    assert_eq!(metrics.snapshot().version_conflicts, 6);
    s.append("a", Exact(2), &[ev("a", 3)]).unwrap();
    s.append("a", StreamExists, &[ev("a", 5)]).unwrap();
    s.append("a", Any, &[ev("a", 6)]).unwrap();
    let c = s.append("a", Increasing, &[ev("a", 9)]).unwrap();
    assert_eq!(c.last_sequence, 6);
    assert_eq!(versions(&s.get_events("a", 0).unwrap()), [1, 2, 3, 5, 6, 9]);
    // Exact(0) is the same condition as NoStream.
    s.append("b", Exact(0), &[ev("b", 1)]).unwrap();
    let err = s.append("b", Exact(0), &[ev("b", 2)]).unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("\"b\" expected version 0, has version 1"), "{err}");
}

fn automatic_versions_follow_the_latest(f: Factory) {
    let b = open(f);
    let s = &b.store;
    s.save_event(&ev("a", 4)).unwrap();
    let auto = [ev("a", 0), ev("a", 0), ev("a", 0)];
    let c = s.append("a", ExpectedState::Any, &auto).unwrap();
    assert_eq!((c.actors[0].first_version, c.actors[0].last_version), (5, 7));
    assert_eq!((c.first_sequence, c.last_sequence), (2, 4));
    let stored = s.get_events("a", 5).unwrap();
    assert_eq!(versions(&stored), [5, 6, 7]);
    // The stored encoding carries the assigned version.
    let mut want = ev("a", 0);
    want.version = 5;
    assert_eq!(stored[0], want);
    let json = s.get_events_json("a", 5).unwrap();
    let decoded: Vec<Event> = serde_json::from_slice(&json).unwrap();
    assert_eq!(decoded, stored);
    let notes: Vec<_> = drain(s.as_ref()).iter().map(|n| (n.version, n.sequence)).collect();
    assert_eq!(notes, [(4, 1), (5, 2), (6, 3), (7, 4)]);
    // A new actor starts at 1; an expectation still applies.
    let c = s.append("new", ExpectedState::NoStream, &[ev("new", 0)]).unwrap();
    assert_eq!(c.actors[0].last_version, 1);
    let mut another = ev("new", 0);
    another.id = "another".into();
    expect_commit_conflict(
        s.append("new", ExpectedState::Exact(0), &[another]),
        &[("new", ExpectedState::Exact(0), 0, 1)],
    );
    assert_eq!(s.get_latest_version("a").unwrap(), 7);
}

fn a_retry_of_a_stored_commit_is_already_appended(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let first = s.append("a", ExpectedState::NoStream, &[ev("a", 1), ev("a", 2)]).unwrap();
    s.save_event(&ev("z", 1)).unwrap();
    drain(s.as_ref());
    // The same events again: success, the stored sequences, nothing written or announced.
    let again = s.append("a", ExpectedState::NoStream, &[ev("a", 1), ev("a", 2)]).unwrap();
    assert_eq!(again.status, AppendStatus::AlreadyAppended);
    assert_eq!((again.first_sequence, again.last_sequence), (first.first_sequence, first.last_sequence));
    assert_eq!(again.actors, first.actors);
    let part = s.append("a", ExpectedState::Any, &[ev("a", 2)]).unwrap();
    assert_eq!((part.status, part.first_sequence), (AppendStatus::AlreadyAppended, 2));
    assert_eq!(s.last_sequence().unwrap(), 3);
    assert!(drain(s.as_ref()).is_empty());
    // The same version with another ID is a conflict.
    let mut other = ev("a", 2);
    other.id = "someone-else".into();
    expect_commit_conflict(s.append("a", ExpectedState::Any, &[other]), &[("a", ExpectedState::Any, 2, 2)]);
    // A retry that also carries a new event is not a retry.
    expect_commit_conflict(
        s.append("a", ExpectedState::Any, &[ev("a", 2), ev("a", 3)]),
        &[("a", ExpectedState::Any, 2, 2)],
    );
    // Automatic versions are recognised under Exact and NoStream.
    let auto = [ev("q", 0), ev("q", 0)];
    let mut auto_ids = auto.clone();
    auto_ids[0].id = "q-first".into();
    auto_ids[1].id = "q-second".into();
    let c = s.append("q", ExpectedState::Exact(0), &auto_ids).unwrap();
    let r = s.append("q", ExpectedState::Exact(0), &auto_ids).unwrap();
    assert_eq!((r.status, r.last_sequence), (AppendStatus::AlreadyAppended, c.last_sequence));
    // Explicit versions with gaps: a retry too, also when the actor has moved on since.
    let gapped = [ev("g", 3), ev("g", 10)];
    let c = s.append("g", ExpectedState::NoStream, &gapped).unwrap();
    let mut between = ev("g", 11);
    between.id = "not-the-retry".into();
    s.append("g", ExpectedState::Any, &[between]).unwrap();
    let r = s.append("g", ExpectedState::NoStream, &gapped).unwrap();
    assert_eq!(r.status, AppendStatus::AlreadyAppended);
    assert_eq!((r.first_sequence, r.last_sequence), (c.first_sequence, c.last_sequence));
    let mut wrong = gapped.clone();
    wrong[1].id = "other".into();
    expect_commit_conflict(
        s.append("g", ExpectedState::NoStream, &wrong),
        &[("g", ExpectedState::NoStream, 3, 11)],
    );
    // Gapped versions over an actor that has every version in between: a conflict (the
    // events in the gaps are not the commit's), never a retry and never a crash.
    for v in 1..=12 {
        s.save_event(&ev("h", v)).unwrap();
    }
    let mut other_ids = [ev("h", 3), ev("h", 10)];
    other_ids[0].id = "x3".into();
    other_ids[1].id = "x10".into();
    expect_commit_conflict(
        s.append("h", ExpectedState::NoStream, &other_ids),
        &[("h", ExpectedState::NoStream, 3, 12)],
    );
    // The seed's save_event keeps its rule: a repeated event is a version conflict.
    expect_conflict(s.save_event(&ev("a", 2)), "a", 2, 2);
    // A commit across actors is a retry only if every entry's events are stored.
    let x = [ev("x", 1)];
    let y = [ev("y", 1)];
    let both = [
        CommitEntry::new("x", ExpectedState::NoStream, &x),
        CommitEntry::new("y", ExpectedState::NoStream, &y),
    ];
    let c = s.commit(&both).unwrap();
    let r = s.commit(&both).unwrap();
    assert_eq!(r.status, AppendStatus::AlreadyAppended);
    assert_eq!((r.first_sequence, r.last_sequence), (c.first_sequence, c.last_sequence));
    let y2 = [ev("y", 2)];
    let mixed = [
        CommitEntry::new("x", ExpectedState::NoStream, &x),
        CommitEntry::new("y", ExpectedState::NoStream, &y2),
    ];
    expect_commit_conflict(
        s.commit(&mixed),
        &[("x", ExpectedState::NoStream, 1, 1), ("y", ExpectedState::NoStream, 2, 1)],
    );
}

fn an_event_id_is_one_event_per_actor_and_version(f: Factory) {
    // Event identity is (actor, version): the same ID at another version or on another
    // actor is another event and is stored; a retry (same actor, version and ID) is
    // recognised; the same version with another ID is a conflict. The same on every
    // backend (JetStream's deduplication included).
    let b = open(f);
    let s = &b.store;
    let with_id = |actor: &str, v: i64, id: &str| {
        let mut e = ev(actor, v);
        e.id = id.into();
        e
    };
    assert_eq!(s.save_event(&with_id("a", 1, "same")).unwrap(), 1);
    assert_eq!(s.save_event(&with_id("a", 2, "same")).unwrap(), 2);
    assert_eq!(s.save_event(&with_id("b", 1, "same")).unwrap(), 3);
    let c = s
        .save_events(&[with_id("a", 3, "same"), with_id("a", 4, "same")])
        .unwrap();
    assert_eq!(c, 5);
    let c = s
        .commit(&[
            CommitEntry::new("c", ExpectedState::NoStream, &[with_id("c", 1, "same")]),
            CommitEntry::new("d", ExpectedState::NoStream, &[with_id("d", 1, "same")]),
        ])
        .unwrap();
    assert_eq!((c.status, c.first_sequence, c.last_sequence), (AppendStatus::Appended, 6, 7));
    // A retry of a stored event, right away: recognised, nothing written.
    let r = s.append("a", ExpectedState::Any, &[with_id("a", 2, "same")]).unwrap();
    assert_eq!((r.status, r.first_sequence), (AppendStatus::AlreadyAppended, 2));
    // The seed's save keeps its rule: a stored version conflicts, whatever the ID.
    expect_conflict(s.save_event(&with_id("a", 2, "same")), "a", 2, 4);
    expect_commit_conflict(
        s.append("a", ExpectedState::Any, &[with_id("a", 4, "other")]),
        &[("a", ExpectedState::Any, 4, 4)],
    );
    assert_eq!(s.last_sequence().unwrap(), 7);
    let ids: Vec<_> = s.read_all(1, 100).unwrap().iter().map(|e| (e.event.actor_id.clone(), e.event.version)).collect();
    assert_eq!(ids.len(), 7);
    assert!(s.read_all(1, 100).unwrap().iter().all(|e| e.event.id == "same"));
}

fn commits_across_actors_are_all_or_nothing(f: Factory) {
    use ExpectedState::*;
    let b = open(f);
    let s = &b.store;
    s.save_event(&ev("b", 1)).unwrap();
    s.save_event(&ev("c", 1)).unwrap();
    drain(s.as_ref());
    let a = [ev("a", 1), ev("a", 2)];
    let bb = [ev("b", 2)];
    let cc = [ev("c", 0)];
    let c = s
        .commit(&[
            CommitEntry::new("a", NoStream, &a),
            CommitEntry::new("b", Exact(1), &bb),
            CommitEntry::new("c", StreamExists, &cc),
            CommitEntry::condition("d", NoStream),
        ])
        .unwrap();
    assert_eq!((c.first_sequence, c.last_sequence), (3, 6));
    let per: Vec<_> = c.actors.iter().map(|a| (a.actor_id.as_str(), a.first_version, a.last_version)).collect();
    assert_eq!(per, [("a", 1, 2), ("b", 2, 2), ("c", 2, 2)]);
    let notes: Vec<_> = drain(s.as_ref())
        .iter()
        .map(|n| (n.actor_id.clone(), n.version, n.sequence))
        .collect();
    assert_eq!(
        notes,
        [("a".into(), 1, 3), ("a".into(), 2, 4), ("b".into(), 2, 5), ("c".into(), 2, 6)]
    );
    let all: Vec<_> = s.read_all(3, 10).unwrap().iter().map(|e| (e.sequence, e.event.actor_id.clone())).collect();
    assert_eq!(all, [(3, "a".into()), (4, "a".into()), (5, "b".into()), (6, "c".into())]);
    // Two failed conditions: both reported, nothing written, nothing announced.
    let a3 = [ev("a", 3)];
    let b9 = [ev("b", 9)];
    let e9 = [ev("e", 1)];
    expect_commit_conflict(
        s.commit(&[
            CommitEntry::new("a", Exact(2), &a3),
            CommitEntry::new("b", Exact(1), &b9),
            CommitEntry::new("e", NoStream, &e9),
            CommitEntry::condition("c", NoStream),
        ]),
        &[("b", Exact(1), 9, 2), ("c", NoStream, 0, 2)],
    );
    assert_eq!(s.last_sequence().unwrap(), 6);
    assert_eq!(s.get_latest_version("a").unwrap(), 2);
    assert_eq!(s.get_latest_version("e").unwrap(), 0);
    assert!(drain(s.as_ref()).is_empty());
    // A condition-only commit checks and writes nothing.
    let c = s.commit(&[CommitEntry::condition("a", Exact(2))]).unwrap();
    assert_eq!((c.first_sequence, c.last_sequence, c.actors.len()), (0, 0, 0));
    expect_commit_conflict(
        s.commit(&[CommitEntry::condition("a", Exact(1))]),
        &[("a", Exact(1), 0, 2)],
    );
    assert_eq!(s.last_sequence().unwrap(), 6);
    // After the commit, each actor replays its own events only.
    assert_eq!(versions(&s.get_events("b", 0).unwrap()), [1, 2]);
    assert_eq!(s.get_events("a", 0).unwrap(), a.to_vec());
}

fn bad_commits_are_refused_and_write_nothing(f: Factory) {
    let b = open(f);
    let s = &b.store;
    s.save_event(&ev("a", 1)).unwrap();
    let mixed = [ev("a", 0), ev("a", 3)];
    let a2 = [ev("a", 2)];
    let foreign = [ev("b", 2)];
    let cases: Vec<(Vec<CommitEntry>, &str)> = vec![
        (vec![], "entries"),
        (vec![CommitEntry::new("a", ExpectedState::Any, &mixed)], "version"),
        (
            vec![
                CommitEntry::new("a", ExpectedState::Any, &a2),
                CommitEntry::condition("a", ExpectedState::StreamExists),
            ],
            "entries",
        ),
        (vec![CommitEntry::new("a", ExpectedState::Any, &foreign)], "actorId"),
        (vec![CommitEntry::condition("", ExpectedState::Any)], "actorId"),
        (vec![CommitEntry::condition("a", ExpectedState::Exact(-1))], "expected"),
    ];
    for (entries, field) in cases {
        match s.commit(&entries) {
            Err(Error::InvalidInput { field: got, .. }) => assert_eq!(got, field, "{entries:?}"),
            other => panic!("{entries:?}: expected invalid {field}, got {other:?}"),
        }
    }
    let too_many: Vec<Event> = (2..=10_002).map(|v| ev("a", v)).collect();
    assert!(matches!(
        s.append("a", ExpectedState::Any, &too_many),
        Err(Error::InvalidInput { field: "events", .. })
    ));
    let mut huge = ev("a", 2);
    huge.data_mut().insert("blob".into(), "x".repeat(1 << 20).into());
    assert!(matches!(
        s.append("a", ExpectedState::Any, &[huge]),
        Err(Error::InvalidInput { field: "event", .. })
    ));
    assert!(matches!(
        s.get_events_range("a", &EventRange::new(5, 4)),
        Err(Error::InvalidInput { field: "range", .. })
    ));
    assert!(matches!(
        s.get_events_range_json("a", &EventRange::new(5, 4)),
        Err(Error::InvalidInput { field: "range", .. })
    ));
    assert_eq!(s.last_sequence().unwrap(), 1);
    assert_eq!(s.get_latest_version("a").unwrap(), 1);
}

fn snapshot_history_keeps_the_newest_and_answers_at_or_below(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let snap = |v: i64| ActorSnapshot {
        actor_id: "a".into(),
        version: v,
        state: Some(json!({"v": v}).as_object().unwrap().clone()),
        timestamp: Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
    };
    assert_eq!(s.get_snapshot("a", 100).unwrap(), None);
    for v in [2, 4, 6, 8] {
        s.save_snapshot(&snap(v)).unwrap();
    }
    // The default retention keeps the newest three.
    assert_eq!(aether_core::DEFAULT_SNAPSHOT_RETENTION, 3);
    assert_eq!(s.get_snapshot("a", 100).unwrap(), Some(snap(8)));
    assert_eq!(s.get_snapshot("a", 8).unwrap(), Some(snap(8)));
    assert_eq!(s.get_snapshot("a", 7).unwrap(), Some(snap(6)));
    assert_eq!(s.get_snapshot("a", 4).unwrap(), Some(snap(4)));
    assert_eq!(s.get_snapshot("a", 3).unwrap(), None, "version 2 was dropped");
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snap(8)));
    // Below the newest: refused, the history unchanged.
    assert!(matches!(s.save_snapshot(&snap(5)), Err(Error::StaleSnapshot { current_version: 8, .. })));
    assert_eq!(s.get_snapshot("a", 5).unwrap(), Some(snap(4)));
    assert_eq!(s.get_snapshot("b", 5).unwrap(), None);
}

fn bounded_and_backward_reads(f: Factory) {
    let b = open(f);
    let s = &b.store;
    for v in 1..=20 {
        s.save_event(&ev("a", v)).unwrap();
        s.save_event(&ev("ab", v)).unwrap();
    }
    let read = |r: EventRange| versions(&s.get_events_range("a", &r).unwrap());
    assert_eq!(read(EventRange::new(5, 8)), [5, 6, 7, 8]);
    assert_eq!(read(EventRange::new(5, 8).limit(2)), [5, 6]);
    assert_eq!(read(EventRange::new(5, 8).backward()), [8, 7, 6, 5]);
    assert_eq!(read(EventRange::new(5, 8).backward().limit(3)), [8, 7, 6]);
    assert_eq!(read(EventRange::last(1)), [20]);
    assert_eq!(read(EventRange::last(3)), [20, 19, 18]);
    assert_eq!(read(EventRange::new(19, i64::MAX)), [19, 20]);
    assert_eq!(read(EventRange::new(-5, 2)), [1, 2]);
    assert_eq!(read(EventRange::new(21, 30)), Vec::<i64>::new());
    assert_eq!(read(EventRange::new(7, 7)), [7]);
    assert_eq!(read(EventRange::new(1, 20).limit(0)), Vec::<i64>::new());
    assert_eq!(EventRange::last(1).direction, Direction::Backward);
    assert!(s.get_events_range("nobody", &EventRange::last(1)).unwrap().is_empty());
    // The JSON form holds the same events, in the same order.
    let json = s.get_events_range_json("a", &EventRange::new(3, 6).backward()).unwrap();
    let decoded: Vec<Event> = serde_json::from_slice(&json).unwrap();
    assert_eq!(decoded, vec![ev("a", 6), ev("a", 5), ev("a", 4), ev("a", 3)]);
    assert_eq!(s.get_events_range_json("nobody", &EventRange::default()).unwrap(), b"[]");
    // Events of a commit across actors read back per actor, in both directions.
    let x = [ev("a", 21), ev("a", 22)];
    let y = [ev("ab", 21)];
    s.commit(&[
        CommitEntry::new("a", ExpectedState::Any, &x),
        CommitEntry::new("ab", ExpectedState::Any, &y),
    ])
    .unwrap();
    assert_eq!(read(EventRange::last(3)), [22, 21, 20]);
    assert_eq!(read(EventRange::new(20, 21)), [20, 21]);
}

fn filtered_read_all_applies_types_and_actor_prefix(f: Factory) {
    let b = open(f);
    let s = &b.store;
    let mut expected_placed = Vec::new();
    for v in 1..=10 {
        let t = if v % 3 == 0 { "Placed" } else { "Other" };
        s.save_event(&with_type(ev("order-1", v), t)).unwrap();
        s.save_event(&with_type(ev("user-1", v), t)).unwrap();
        if t == "Placed" {
            expected_placed.push(((v - 1) * 2 + 1) as u64);
            expected_placed.push(((v - 1) * 2 + 2) as u64);
        }
    }
    let seqs = |from: u64, limit: usize, filter: &EventFilter| -> Vec<u64> {
        s.read_all_filtered(from, limit, filter).unwrap().iter().map(|e| e.sequence).collect()
    };
    assert_eq!(seqs(1, 100, &EventFilter::event_types(["Placed"])), expected_placed);
    assert_eq!(seqs(1, 3, &EventFilter::event_types(["Placed"])), expected_placed[..3]);
    assert_eq!(seqs(7, 100, &EventFilter::event_types(["Placed"])), expected_placed[2..]);
    let orders = seqs(1, 100, &EventFilter::actor_prefix("order-"));
    assert_eq!(orders, (0..10).map(|i| i * 2 + 1).collect::<Vec<u64>>());
    let both = EventFilter {
        event_types: vec!["Placed".into(), "Missing".into()],
        actor_prefix: "user".into(),
    };
    assert_eq!(seqs(1, 100, &both), [6, 12, 18]);
    assert_eq!(seqs(1, 100, &EventFilter::event_types(["Missing"])), Vec::<u64>::new());
    assert_eq!(seqs(1, 100, &EventFilter::default()).len(), 20);
    assert_eq!(seqs(1, 0, &EventFilter::default()), Vec::<u64>::new());
    // The JSON form: the same events, in read_all_sequenced_json's layout.
    let json = s.read_all_filtered_json(1, 100, &both).unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["sequence"], 6);
    assert_eq!(items[0]["event"]["eventType"], "Placed");
    let full = s.read_all_sequenced_json(6, 1).unwrap();
    assert_eq!(&json[..full.len() - 1], &full[..full.len() - 1], "same bytes as read_all");
}

/// `appends_conformance!(a, b)`: the rules above against factories `a` and `b`, with the
/// same attribute convention as `conformance!`.
macro_rules! appends_conformance {
    ($($(#[$attr:meta])* $backend:ident),* $(,)?) => {$(
        mod $backend {
            #[test] $(#[$attr])* fn expected_states_are_checked_and_a_failure_writes_nothing() { super::expected_states_are_checked_and_a_failure_writes_nothing(super::super::$backend) }
            #[test] $(#[$attr])* fn automatic_versions_follow_the_latest() { super::automatic_versions_follow_the_latest(super::super::$backend) }
            #[test] $(#[$attr])* fn a_retry_of_a_stored_commit_is_already_appended() { super::a_retry_of_a_stored_commit_is_already_appended(super::super::$backend) }
            #[test] $(#[$attr])* fn an_event_id_is_one_event_per_actor_and_version() { super::an_event_id_is_one_event_per_actor_and_version(super::super::$backend) }
            #[test] $(#[$attr])* fn commits_across_actors_are_all_or_nothing() { super::commits_across_actors_are_all_or_nothing(super::super::$backend) }
            #[test] $(#[$attr])* fn bad_commits_are_refused_and_write_nothing() { super::bad_commits_are_refused_and_write_nothing(super::super::$backend) }
            #[test] $(#[$attr])* fn snapshot_history_keeps_the_newest_and_answers_at_or_below() { super::snapshot_history_keeps_the_newest_and_answers_at_or_below(super::super::$backend) }
            #[test] $(#[$attr])* fn bounded_and_backward_reads() { super::bounded_and_backward_reads(super::super::$backend) }
            #[test] $(#[$attr])* fn filtered_read_all_applies_types_and_actor_prefix() { super::filtered_read_all_applies_types_and_actor_prefix(super::super::$backend) }
        }
    )*};
}
