//! Races at scale: 8 threads × 10,000 saves on overlapping actors, on every backend.
//! Exactly one winner per (actor, version), the sequence gapless, every success notified
//! exactly once and in sequence order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Barrier};

use aether_core::{
    Durability, Error, Event, EventStore, MemoryStore, Options, SledStore, Timestamp,
};

const THREADS: usize = 8;
const SAVES_PER_THREAD: usize = 10_000;
const ACTORS: u64 = 24;

fn race(store: Arc<dyn EventStore>) {
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                let mut wins = Vec::new();
                let mut conflicts = 0u64;
                barrier.wait();
                for i in 0..SAVES_PER_THREAD {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let actor = format!("actor-{}", rng % ACTORS);
                    let version = store.get_latest_version(&actor).unwrap() + 1;
                    let mut e = Event::new(format!("t{t}-{i}"), "Raced", &actor, version);
                    e.timestamp = Timestamp::from_unix_nanos(i as i128);
                    // Every tenth attempt is a batch of two.
                    let result = if i % 10 == 0 {
                        let mut second = e.clone();
                        second.id.push_str("-b");
                        second.version += 1;
                        store.save_events(&[e.clone(), second])
                    } else {
                        store.save_event(&e)
                    };
                    match result {
                        Ok(seq) => wins.push((seq, actor, version, e.id)),
                        Err(Error::VersionConflict {
                            attempted_version,
                            current_version,
                            ..
                        }) => {
                            assert_eq!(attempted_version, version);
                            assert!(current_version >= version);
                            conflicts += 1;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
                (wins, conflicts)
            })
        })
        .collect();
    let mut winners: HashMap<(String, i64), String> = HashMap::new();
    let mut conflicts = 0;
    for t in threads {
        let (wins, c) = t.join().unwrap();
        conflicts += c;
        for (_, actor, version, id) in wins {
            assert!(
                winners.insert((actor.clone(), version), id).is_none(),
                "{actor} v{version} won twice"
            );
        }
    }
    assert!(conflicts > 0, "the threads never raced");
    let all = store.read_all(1, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, store.last_sequence().unwrap());
    let mut per_actor: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (i, se) in all.iter().enumerate() {
        assert_eq!(se.sequence, i as u64 + 1, "sequence gap");
        per_actor
            .entry(se.event.actor_id.clone())
            .or_default()
            .push(se.event.version);
    }
    for (actor, versions) in &per_actor {
        assert_eq!(
            *versions,
            (1..=versions.len() as i64).collect::<Vec<_>>(),
            "{actor}"
        );
        // The stored event of each saved version is the winner's.
        for stored in store.get_events(actor, 0).unwrap() {
            if let Some(id) = winners.get(&(actor.clone(), stored.version)) {
                assert_eq!(&stored.id, id);
            }
        }
    }
    let notes: Vec<_> = store.event_stored_receiver().try_iter().collect();
    assert_eq!(
        notes.len(),
        all.len(),
        "every success notified exactly once"
    );
    for (n, se) in notes.iter().zip(&all) {
        assert_eq!((n.sequence, &n.event_id), (se.sequence, &se.event.id));
    }
    eprintln!(
        "race: {} threads x {SAVES_PER_THREAD} saves: {} events stored, {conflicts} conflicts",
        THREADS,
        all.len()
    );
}

fn sled(durability: Durability) -> (Arc<dyn EventStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::with_durability(durability);
    o.event_stored_capacity = 1 << 20;
    let s = SledStore::open_with(dir.path().join("store"), o).unwrap();
    (Arc::new(s), dir)
}

#[test]
fn memory_race() {
    race(Arc::new(MemoryStore::with_capacity(1 << 20).unwrap()));
}

#[test]
fn sled_buffered_race() {
    let (s, _dir) = sled(Durability::Buffered);
    race(s);
}

#[test]
fn sled_durable_race() {
    let (s, _dir) = sled(Durability::Durable);
    race(s);
}
