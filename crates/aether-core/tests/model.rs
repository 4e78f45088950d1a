//! Property test: random operation sequences (save, batch, reads, snapshots, reopen) run
//! against each backend and against a simple model; any divergence fails.
//!
//! Cases per backend: `AETHER_MODEL_CASES` (default 2000; `make soak` raises it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use aether_core::{
    ActorSnapshot, Durability, Error, Event, EventStore, MemoryStore, Options, SledStore,
    SnapshotStore, Timestamp,
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
        1 => Just(Op::Reopen),
    ]
}

fn event(actor: &str, version: i64, salt: usize) -> Event {
    let mut e = Event::new(
        format!("{actor}/{version}/{salt}"),
        "Modelled",
        actor,
        version,
    )
    .with_data("salt", salt);
    e.timestamp = Timestamp::from_unix_nanos(version as i128 * 1_000 + salt as i128);
    e
}

#[derive(Default)]
struct Model {
    streams: BTreeMap<String, Vec<Event>>,
    log: Vec<Event>,
    snapshots: BTreeMap<String, i64>,
}

impl Model {
    fn latest(&self, actor: &str) -> i64 {
        self.streams
            .get(actor)
            .and_then(|s| s.last())
            .map_or(0, |e| e.version)
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
                let stored = model.snapshots.get(actor).copied();
                match s.save_snapshot(&snap) {
                    Ok(()) => {
                        prop_assert!(stored.is_none_or(|v| *version >= v));
                        model.snapshots.insert(actor.into(), *version);
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
                prop_assert_eq!(got, model.snapshots.get(actor).copied());
            }
            Op::Reopen => subject.reopen(),
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
