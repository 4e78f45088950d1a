//! Property test: random operation sequences (save, batch, commits across actors with
//! expected states and automatic versions, retries, bounded and filtered reads, snapshot
//! history, reopen) run against each backend and against a simple model; any divergence
//! fails. The model decides every outcome by its own rules, never by calling the library.
//!
//! Cases per backend: `AETHER_MODEL_CASES` (default 2000; `make soak` raises it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use aether_core::{
    ActorSnapshot, AppendStatus, CommitEntry, Direction, Durability, Error, Event, EventFilter,
    EventRange, EventStore, ExpectedState, MemoryStore, Options, SledStore, SnapshotStore,
    Timestamp,
};
use proptest::prelude::*;

const ACTORS: [&str; 4] = ["a", "ab", "a\u{0}b", "ü"];

#[derive(Debug, Clone)]
enum Op {
    Save {
        actor: usize,
        delta: i64,
    },
    Batch {
        actor: usize,
        delta: i64,
        steps: Vec<i64>,
    },
    Get {
        actor: usize,
        from: i64,
    },
    Latest {
        actor: usize,
    },
    ReadAll {
        from: u64,
        limit: usize,
    },
    Snapshot {
        actor: usize,
        version: i64,
    },
    GetSnapshot {
        actor: usize,
    },
    /// Entries: (actor, mode 0..5, Exact's offset from the latest, event count, automatic
    /// versions, explicit first version's offset from the latest).
    Commit {
        entries: Vec<(usize, u8, i64, usize, bool, i64)>,
    },
    /// Send the `back`-th newest successful commit again.
    Retry {
        back: usize,
    },
    Range {
        actor: usize,
        from: i64,
        to: i64,
        limit: usize,
        backward: bool,
    },
    Filtered {
        from: u64,
        limit: usize,
        types: u8,
        prefix: usize,
    },
    SnapshotAt {
        actor: usize,
        at: i64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let actor = 0..ACTORS.len();
    prop_oneof![
        4 => (actor.clone(), -1i64..=3).prop_map(|(actor, delta)| Op::Save { actor, delta }),
        2 => (actor.clone(), -1i64..=2, prop::collection::vec(0i64..=2, 0..4))
            .prop_map(|(actor, delta, steps)| Op::Batch { actor, delta, steps }),
        2 => (actor.clone(), -1i64..=6).prop_map(|(actor, from)| Op::Get { actor, from }),
        1 => actor.clone().prop_map(|actor| Op::Latest { actor }),
        1 => (0u64..12, 0usize..6).prop_map(|(from, limit)| Op::ReadAll { from, limit }),
        1 => (actor.clone(), 0i64..8).prop_map(|(actor, version)| Op::Snapshot { actor, version }),
        1 => actor.clone().prop_map(|actor| Op::GetSnapshot { actor }),
        2 => prop::collection::vec(
            (actor.clone(), 0u8..5, -1i64..=1, 0usize..3, any::<bool>(), -1i64..=2),
            1..4,
        )
        .prop_map(|entries| Op::Commit { entries }),
        1 => (0usize..3).prop_map(|back| Op::Retry { back }),
        1 => (actor.clone(), -1i64..8, -1i64..10, 0usize..5, any::<bool>()).prop_map(
            |(actor, from, to, limit, backward)| Op::Range { actor, from, to, limit, backward }
        ),
        1 => (0u64..12, 0usize..6, 0u8..4, 0usize..3)
            .prop_map(|(from, limit, types, prefix)| Op::Filtered { from, limit, types, prefix }),
        1 => (actor.clone(), -1i64..9).prop_map(|(actor, at)| Op::SnapshotAt { actor, at }),
        1 => Just(Op::Reopen),
    ]
}

fn event(actor: &str, version: i64, salt: usize) -> Event {
    let kind = if salt % 3 == 0 { "Other" } else { "Modelled" };
    let mut e = Event::new(format!("{actor}/{version}/{salt}"), kind, actor, version)
        .with_data("salt", salt);
    e.timestamp = Timestamp::from_unix_nanos(version as i128 * 1_000 + salt as i128);
    e
}

/// One entry of a commit as sent: actor, expected state, events.
type SentEntry = (String, ExpectedState, Vec<Event>);

#[derive(Default)]
struct Model {
    streams: BTreeMap<String, Vec<Event>>,
    log: Vec<Event>,
    /// Per actor, the kept snapshot versions (the newest RETENTION).
    snapshots: BTreeMap<String, Vec<i64>>,
    /// Successful commits, as sent.
    commits: Vec<Vec<SentEntry>>,
}

const RETENTION: usize = aether_core::DEFAULT_SNAPSHOT_RETENTION as usize;

/// The model's own reading of an expectation.
fn holds(expected: ExpectedState, latest: i64) -> bool {
    match expected {
        ExpectedState::NoStream => latest == 0,
        ExpectedState::StreamExists => latest > 0,
        ExpectedState::Exact(v) => latest == v,
        _ => true,
    }
}

impl Model {
    fn latest(&self, actor: &str) -> i64 {
        self.streams
            .get(actor)
            .and_then(|s| s.last())
            .map_or(0, |e| e.version)
    }
    /// The sequence of the stored event of `actor` at `version`.
    fn sequence_of(&self, actor: &str, version: i64) -> Option<(u64, &Event)> {
        self.log
            .iter()
            .enumerate()
            .find(|(_, e)| e.actor_id == actor && e.version == version)
            .map(|(i, e)| (i as u64 + 1, e))
    }

    fn append(&mut self, events: &[Event]) {
        for e in events {
            self.streams
                .entry(e.actor_id.clone())
                .or_default()
                .push(e.clone());
            self.log.push(e.clone());
        }
    }
}

enum Subject {
    // Boxed like the sled variant: a MemoryStore is a few hundred bytes inline.
    Memory(Box<MemoryStore>),
    Sled(Box<Option<SledStore>>, PathBuf, Durability),
}

impl Subject {
    fn store(&self) -> &dyn SnapshotStore {
        match self {
            Subject::Memory(s) => &**s,
            Subject::Sled(s, _, _) => s.as_ref().as_ref().unwrap(),
        }
    }
    fn reopen(&mut self) {
        if let Subject::Sled(store, path, durability) = self {
            store.take().unwrap().close().unwrap();
            **store = Some(SledStore::open_with(&*path, options(*durability)).unwrap());
        }
    }
}

fn options(durability: Durability) -> Options {
    let mut o = Options::with_durability(durability);
    o.segment_size = 64 * 1024; // many rolls per case
    o
}

fn run(ops: &[Op], mut subject: Subject) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let s = subject.store();
        match op {
            Op::Save { actor, delta } => {
                let actor = ACTORS[*actor];
                let current = model.latest(actor);
                let e = event(actor, current + delta, i);
                match s.save_event(&e) {
                    Ok(seq) => {
                        prop_assert!(
                            *delta > 0,
                            "save of v{} over v{current} succeeded",
                            e.version
                        );
                        model.append(&[e]);
                        prop_assert_eq!(seq, model.log.len() as u64);
                    }
                    Err(Error::VersionConflict {
                        current_version,
                        attempted_version,
                        ..
                    }) => {
                        prop_assert!(*delta <= 0);
                        prop_assert_eq!((current_version, attempted_version), (current, e.version));
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("save: {e}"))),
                }
            }
            Op::Batch {
                actor,
                delta,
                steps,
            } => {
                let actor = ACTORS[*actor];
                let current = model.latest(actor);
                let mut version = current + delta;
                let mut batch = vec![event(actor, version, i)];
                for step in steps {
                    version += step;
                    batch.push(event(actor, version, i));
                }
                let well_formed = steps.iter().all(|s| *s > 0);
                match s.save_events(&batch) {
                    Ok(seq) => {
                        prop_assert!(well_formed && *delta > 0);
                        model.append(&batch);
                        prop_assert_eq!(seq, model.log.len() as u64);
                    }
                    Err(Error::InvalidInput { .. }) => prop_assert!(!well_formed),
                    Err(Error::VersionConflict {
                        current_version, ..
                    }) => {
                        prop_assert!(well_formed && *delta <= 0);
                        prop_assert_eq!(current_version, current);
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("batch: {e}"))),
                }
            }
            Op::Get { actor, from } => {
                let actor = ACTORS[*actor];
                let expected: Vec<Event> = model
                    .streams
                    .get(actor)
                    .map(|v| v.iter().filter(|e| e.version >= *from).cloned().collect())
                    .unwrap_or_default();
                prop_assert_eq!(&s.get_events(actor, *from).unwrap(), &expected);
                let with_errors = s.get_events_with_errors(actor, *from).unwrap();
                prop_assert!(!with_errors.has_errors());
                prop_assert_eq!(&with_errors.events, &expected);
            }
            Op::Latest { actor } => {
                let actor = ACTORS[*actor];
                prop_assert_eq!(s.get_latest_version(actor).unwrap(), model.latest(actor));
            }
            Op::ReadAll { from, limit } => {
                let got = s.read_all(*from, *limit).unwrap();
                let start = from.max(&1) - 1;
                let expected: Vec<(u64, Event)> = model
                    .log
                    .iter()
                    .enumerate()
                    .skip(start as usize)
                    .take(*limit)
                    .map(|(i, e)| (i as u64 + 1, e.clone()))
                    .collect();
                let got: Vec<(u64, Event)> =
                    got.into_iter().map(|e| (e.sequence, e.event)).collect();
                prop_assert_eq!(got, expected);
                prop_assert_eq!(s.last_sequence().unwrap(), model.log.len() as u64);
            }
            Op::Snapshot { actor, version } => {
                let actor = ACTORS[*actor];
                let snap = ActorSnapshot {
                    actor_id: actor.into(),
                    version: *version,
                    state: None,
                    timestamp: Timestamp::ZERO,
                };
                let stored = model.snapshots.get(actor).and_then(|v| v.last()).copied();
                match s.save_snapshot(&snap) {
                    Ok(()) => {
                        prop_assert!(stored.is_none_or(|v| *version >= v));
                        let kept = model.snapshots.entry(actor.into()).or_default();
                        if kept.last() == Some(version) {
                            kept.pop();
                        }
                        kept.push(*version);
                        if kept.len() > RETENTION {
                            kept.remove(0);
                        }
                    }
                    Err(Error::StaleSnapshot {
                        current_version, ..
                    }) => {
                        prop_assert_eq!(Some(current_version), stored);
                        prop_assert!(*version < current_version);
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("snapshot: {e}"))),
                }
            }
            Op::GetSnapshot { actor } => {
                let actor = ACTORS[*actor];
                let got = s.get_latest_snapshot(actor).unwrap().map(|s| s.version);
                prop_assert_eq!(
                    got,
                    model.snapshots.get(actor).and_then(|v| v.last()).copied()
                );
            }
            Op::SnapshotAt { actor, at } => {
                let actor = ACTORS[*actor];
                let got = s.get_snapshot(actor, *at).unwrap().map(|s| s.version);
                let want = model
                    .snapshots
                    .get(actor)
                    .and_then(|v| v.iter().rev().find(|v| **v <= *at))
                    .copied();
                prop_assert_eq!(got, want);
            }
            Op::Commit { entries } => {
                let sent: Vec<SentEntry> = entries
                    .iter()
                    .enumerate()
                    .map(|(k, &(actor, mode, offset, count, auto, first))| {
                        let actor = ACTORS[actor];
                        let latest = model.latest(actor);
                        let expected = match mode {
                            0 => ExpectedState::Increasing,
                            1 => ExpectedState::Any,
                            2 => ExpectedState::NoStream,
                            3 => ExpectedState::StreamExists,
                            _ => ExpectedState::Exact((latest + offset).max(0)),
                        };
                        let events = (0..count)
                            .map(|n| {
                                let version = if auto { 0 } else { latest + first + n as i64 };
                                event(actor, version, i * 100 + k * 10 + n)
                            })
                            .collect();
                        (actor.to_string(), expected, events)
                    })
                    .collect();
                commit_against_model(s, &mut model, sent)?;
            }
            Op::Retry { back } => {
                if let Some(sent) = model.commits.iter().rev().nth(*back).cloned() {
                    commit_against_model(s, &mut model, sent)?;
                }
            }
            Op::Range {
                actor,
                from,
                to,
                limit,
                backward,
            } => {
                let actor = ACTORS[*actor];
                let mut range = EventRange::new(*from, *to).limit(*limit);
                if *backward {
                    range = range.backward();
                }
                let got = s.get_events_range(actor, &range);
                if from > to {
                    let refused = matches!(got, Err(Error::InvalidInput { field: "range", .. }));
                    prop_assert!(refused, "a reversed range gave {:?}", got);
                } else {
                    let mut want: Vec<Event> = model
                        .streams
                        .get(actor)
                        .map(|v| {
                            v.iter()
                                .filter(|e| (*from..=*to).contains(&e.version))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    if range.direction == Direction::Backward {
                        want.reverse();
                    }
                    want.truncate(*limit);
                    prop_assert_eq!(got.unwrap(), want);
                }
            }
            Op::Filtered {
                from,
                limit,
                types,
                prefix,
            } => {
                let filter = EventFilter {
                    event_types: match types {
                        0 => vec![],
                        1 => vec!["Modelled".into()],
                        2 => vec!["Other".into()],
                        _ => vec!["Other".into(), "Modelled".into()],
                    },
                    actor_prefix: ["", "a", "ab"][*prefix].into(),
                };
                let got: Vec<(u64, Event)> = s
                    .read_all_filtered(*from, *limit, &filter)
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.sequence, e.event))
                    .collect();
                let start = from.max(&1) - 1;
                let want: Vec<(u64, Event)> = model
                    .log
                    .iter()
                    .enumerate()
                    .skip(start as usize)
                    .filter(|(_, e)| {
                        e.actor_id.starts_with(&filter.actor_prefix)
                            && (filter.event_types.is_empty()
                                || filter.event_types.contains(&e.event_type))
                    })
                    .take(*limit)
                    .map(|(i, e)| (i as u64 + 1, e.clone()))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Reopen => subject.reopen(),
        }
    }
    Ok(())
}

/// Send a commit to the store and decide, by the model's rules, what must happen.
fn commit_against_model(
    s: &dyn SnapshotStore,
    model: &mut Model,
    sent: Vec<SentEntry>,
) -> Result<(), TestCaseError> {
    let entries: Vec<CommitEntry> = sent
        .iter()
        .map(|(a, x, ev)| CommitEntry::new(a, *x, ev))
        .collect();
    let got = s.commit(&entries);
    let mut actors: Vec<&str> = sent.iter().map(|(a, _, _)| a.as_str()).collect();
    actors.sort();
    actors.dedup();
    let bad_shape = actors.len() != sent.len()
        || sent.iter().any(|(_, _, ev)| {
            let auto = ev.iter().filter(|e| e.version == 0).count();
            (auto > 0 && auto < ev.len())
                || ev.iter().any(|e| e.version < 0)
                || ev
                    .windows(2)
                    .any(|w| w[0].version != 0 && w[1].version <= w[0].version)
        });
    if bad_shape {
        prop_assert!(
            matches!(got, Err(Error::InvalidInput { .. })),
            "expected invalid input, got {:?}",
            got
        );
        return Ok(());
    }
    let latest: Vec<i64> = sent.iter().map(|(a, _, _)| model.latest(a)).collect();
    let failed: Vec<(String, i64)> = sent
        .iter()
        .zip(&latest)
        .filter(|((_, x, ev), &l)| {
            let explicit_ok = ev.first().is_none_or(|e| e.version == 0 || e.version > l);
            !holds(*x, l) || !explicit_ok
        })
        .map(|((a, _, _), &l)| (a.clone(), l))
        .collect();
    if failed.is_empty() {
        let c = got.map_err(|e| TestCaseError::fail(format!("commit: {e}")))?;
        prop_assert_eq!(c.status, AppendStatus::Appended);
        let first = model.log.len() as u64 + 1;
        let mut written = Vec::new();
        for ((a, _, ev), &l) in sent.iter().zip(&latest) {
            for (n, e) in ev.iter().enumerate() {
                let mut stored = e.clone();
                if e.version == 0 {
                    stored.version = l + 1 + n as i64;
                }
                written.push(stored);
            }
            let _ = a;
        }
        model.append(&written);
        if written.is_empty() {
            prop_assert_eq!((c.first_sequence, c.last_sequence), (0, 0));
        } else {
            prop_assert_eq!(
                (c.first_sequence, c.last_sequence),
                (first, model.log.len() as u64)
            );
            model.commits.push(sent);
        }
        return Ok(());
    }
    // A retry: every entry with events has known versions, stored under the same IDs.
    let mut stored_seqs = Vec::new();
    let mut retry = sent.iter().any(|(_, _, ev)| !ev.is_empty());
    for (a, x, ev) in sent.iter().filter(|(_, _, ev)| !ev.is_empty()) {
        let base = match (ev[0].version, x) {
            (0, ExpectedState::NoStream) => Some(0),
            (0, ExpectedState::Exact(v)) => Some(*v),
            (0, _) => None,
            (v, _) => Some(v - 1),
        };
        let Some(base) = base else {
            retry = false;
            break;
        };
        for (n, e) in ev.iter().enumerate() {
            match model.sequence_of(a, base + 1 + n as i64) {
                Some((seq, stored)) if stored.id == e.id => stored_seqs.push(seq),
                _ => retry = false,
            }
        }
    }
    if retry {
        let c = got.map_err(|e| TestCaseError::fail(format!("retry: {e}")))?;
        prop_assert_eq!(c.status, AppendStatus::AlreadyAppended);
        prop_assert_eq!(c.first_sequence, *stored_seqs.iter().min().unwrap());
        prop_assert_eq!(c.last_sequence, *stored_seqs.iter().max().unwrap());
        return Ok(());
    }
    match got {
        Err(Error::CommitConflict { conflicts }) => {
            let got: Vec<(String, i64)> = conflicts
                .into_iter()
                .map(|c| (c.actor_id, c.current_version))
                .collect();
            prop_assert_eq!(got, failed);
        }
        other => {
            return Err(TestCaseError::fail(format!(
                "expected a conflict, got {other:?}"
            )))
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("AETHER_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000)
}

fn sled_subject(durability: Durability) -> (Subject, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStore::open_with(&path, options(durability)).unwrap();
    (Subject::Sled(Box::new(Some(store)), path, durability), dir)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn memory_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops, Subject::Memory(Box::new(MemoryStore::new())))?;
    }

    #[test]
    fn sled_buffered_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let (subject, _dir) = sled_subject(Durability::Buffered);
        run(&ops, subject)?;
    }

    #[test]
    fn sled_durable_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let (subject, _dir) = sled_subject(Durability::Durable);
        run(&ops, subject)?;
    }
}
