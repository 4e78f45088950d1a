//! Corruption trials: flip bits in or truncate the store's files, or write malformed values
//! into records, then open and read everything. Every trial must end in one of:
//! - open refuses with a clear error (data loss, corrupt, storage), or
//! - open succeeds and every acknowledged event is either returned intact or reported
//!   (as a replay error or a read error) — never a wrong payload returned as good, never
//!   a silently shorter history;
//!
//! and never in a panic. `AETHER_CORRUPTION_TRIALS` sets the count (default 1000).

use std::collections::BTreeMap;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use aether_core::sled_store::layout;
use aether_core::{Durability, Error, Event, EventStore, Options, SledStore, Timestamp};
use serde_json::json;

const ACTORS: usize = 5;
const VERSIONS: i64 = 40;

fn ev(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "Corrupted", actor, version)
        .with_data("body", json!({"text": "t".repeat(150), "v": version}));
    e.timestamp = Timestamp::from_unix_nanos(version as i128 * 1_000_003);
    e
}

fn actor(i: usize) -> String {
    format!("actor-{i}")
}

fn options() -> Options {
    let mut o = Options::with_durability(Durability::Durable);
    o.wal_capacity = 256 * 1024;
    o
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else if entry.metadata().unwrap().len() > 0 {
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// Two templates: a cleanly closed store, and the image of a store taken while it was
/// still open after durable saves (what a crash leaves: sled partly written, the log full).
fn templates(root: &Path) -> [PathBuf; 2] {
    let clean = root.join("clean");
    let crashed = root.join("crashed");
    let fill = |s: &SledStore| {
        for v in 1..=VERSIONS {
            for a in 0..ACTORS {
                s.save_event(&ev(&actor(a), v)).unwrap();
            }
        }
    };
    {
        let s = SledStore::open_with(&clean, options()).unwrap();
        fill(&s);
        s.close().unwrap();
    }
    {
        let live = root.join("live");
        let s = SledStore::open_with(&live, options()).unwrap();
        fill(&s);
        copy_dir(&live, &crashed);
    }
    [clean, crashed]
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Apply one random fault to the store at `dir`; returns a description.
fn inject(dir: &Path, rng: &mut Rng) -> String {
    let all = files(dir);
    let wal: Vec<_> = all
        .iter()
        .filter(|p| p.ends_with("aether.wal"))
        .cloned()
        .collect();
    let sled: Vec<_> = all
        .iter()
        .filter(|p| !p.ends_with("aether.wal"))
        .cloned()
        .collect();
    match rng.below(10) {
        0..=4 => {
            let f = &sled[rng.below(sled.len() as u64) as usize];
            let mut bytes = fs::read(f).unwrap();
            let at = rng.below(bytes.len() as u64) as usize;
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            fs::write(f, bytes).unwrap();
            format!("flip bit {bit} of byte {at} in {}", f.display())
        }
        5 | 6 => {
            let f = &sled[rng.below(sled.len() as u64) as usize];
            let len = fs::metadata(f).unwrap().len();
            let to = rng.below(len);
            fs::OpenOptions::new()
                .write(true)
                .open(f)
                .unwrap()
                .set_len(to)
                .unwrap();
            format!("truncate {} from {len} to {to}", f.display())
        }
        7 => {
            let f = &wal[0];
            let mut bytes = fs::read(f).unwrap();
            // Bias towards the header and the frames actually written.
            let span = (bytes.len() as u64).min(96 * 1024);
            let at = rng.below(span) as usize;
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            fs::write(f, bytes).unwrap();
            format!("flip bit {bit} of byte {at} in the log")
        }
        _ => {
            // A malformed value written into a record through sled itself.
            let a = actor(rng.below(ACTORS as u64) as usize);
            let v = 1 + rng.below(VERSIONS as u64);
            let value: Vec<u8> = match rng.below(3) {
                0 => b"not a record".to_vec(),
                1 => layout::encode_event_record(v, b"{\"id\":1}"),
                _ => {
                    let mut r = layout::encode_event_record(v, &ev(&a, v as i64).to_json());
                    let at = 13 + rng.below(r.len() as u64 - 13) as usize;
                    r[at] ^= 0x20;
                    r
                }
            };
            let db = sled::open(dir.join("sled")).unwrap();
            db.open_tree(layout::TREE_EVENTS)
                .unwrap()
                .insert(layout::event_key(a.as_bytes(), v), value)
                .unwrap();
            db.flush().unwrap();
            format!("malformed record for {a} v{v}")
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    refused: BTreeMap<&'static str, u64>,
    opened_intact: u64,
    opened_with_reported_damage: u64,
}

/// Open and read everything; panics (the test's failure) on a silent loss or a wrong
/// payload; returns how the trial ended.
fn check(dir: &Path, fault: &str, tally: &mut Tally) {
    let store = match SledStore::open_with(dir, options()) {
        Ok(s) => s,
        Err(e) => {
            let kind = match e {
                Error::DataLoss(_) => "data loss",
                Error::Corrupt { .. } => "corrupt",
                Error::Storage { .. } => {
                    if std::env::var("AETHER_SHOW").is_ok() {
                        eprintln!("{fault}: {e}");
                    }
                    "storage"
                }
                other => panic!("{fault}: open failed with an unexpected error: {other}"),
            };
            *tally.refused.entry(kind).or_default() += 1;
            return;
        }
    };
    let mut reported = 0;
    for a in 0..ACTORS {
        let id = actor(a);
        match store.get_events_with_errors(&id, 0) {
            Ok(r) => {
                for e in &r.events {
                    assert_eq!(
                        *e,
                        ev(&id, e.version),
                        "{fault}: wrong payload returned as good"
                    );
                }
                let got = r.events.len() + r.errors.len();
                assert!(
                    got >= VERSIONS as usize,
                    "{fault}: silent loss: {id} has {} events and {} errors of {VERSIONS}",
                    r.events.len(),
                    r.errors.len()
                );
                reported += r.errors.len();
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::Corrupt { .. } | Error::Storage { .. }),
                    "{fault}: {e}"
                );
                reported += 1;
            }
        }
    }
    if reported == 0 {
        // Nothing reported: then everything must be there, in the sequence too.
        let all = store
            .read_all(1, usize::MAX)
            .unwrap_or_else(|e| panic!("{fault}: {e}"));
        assert_eq!(
            all.len(),
            ACTORS * VERSIONS as usize,
            "{fault}: sequence lost events silently"
        );
        tally.opened_intact += 1;
    } else {
        tally.opened_with_reported_damage += 1;
    }
}

#[test]
fn corruption_is_refused_or_reported_never_silent() {
    let trials: u64 = std::env::var("AETHER_CORRUPTION_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1000);
    let root = tempfile::tempdir().unwrap();
    let templates = templates(root.path());
    let mut rng = Rng(0xc0ff_ee11);
    let mut tally = Tally::default();
    for trial in 0..trials {
        let template = &templates[(trial % 2) as usize];
        let dir = root.path().join(format!("trial-{trial}"));
        copy_dir(template, &dir);
        // Trial 0 and 1: no fault, both templates must open intact.
        let fault = if trial < 2 {
            "no fault".to_owned()
        } else {
            inject(&dir, &mut rng)
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&dir, &fault, &mut tally)));
        if let Err(panic) = outcome {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("trial {trial} ({fault}): {msg}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("corruption trials: {trials}: {tally:?}");
    assert!(tally.opened_intact >= 2);
}
