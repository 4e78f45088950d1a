//! Corruption trials: flip bits in or truncate the store's files, or write malformed values
//! into records, then open and read everything. Every trial must end in one of:
//! - open refuses with a clear error (data loss, corrupt, storage), or
//! - open succeeds and every acknowledged event is either returned intact or reported
//!   (as a replay error or a read error) — never a wrong payload returned as good, never
//!   a silently shorter history;
//!
//! and never in a panic. `AETHER_CORRUPTION_TRIALS` sets the count (default 1000).
//!
//! Before the store opens a damaged copy (opening repairs), `aether verify`'s checks
//! ([`aether_core::verify`]) run on an identical copy: they must never panic, must find
//! nothing wrong with the undamaged controls, and must report a problem (or fail with an
//! error naming the damage) in every trial where the damage reached the data — the store
//! refused to open, or reported a replay or read error. Injections the store never notices
//! (dead space in sled's files, the log's unused tail) are counted, with how many of them
//! verify flagged anyway.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_core::sled_store::layout;
use aether_core::verify::{self, FindingKind, VerifyOptions, VerifyReport};
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

/// Three templates: a cleanly closed store; the image of a store taken while it was still
/// open after durable saves (what a crash leaves: sled partly written, the log full); and
/// the same with a log small enough to have been recycled several times, so that its
/// frames lie where the same-sized frames of earlier generations were.
fn templates(root: &Path) -> [PathBuf; 3] {
    let clean = root.join("clean");
    let crashed = root.join("crashed");
    let recycled = root.join("recycled");
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
    {
        let live = root.join("live-recycled");
        let mut o = options();
        o.wal_capacity = 24 * 1024;
        let s = SledStore::open_with(&live, o).unwrap();
        fill(&s);
        copy_dir(&live, &recycled);
        match verify::read_wal(&recycled).unwrap() {
            verify::WalState::Read(info) => {
                let generation = info.checkpoint.unwrap().generation;
                assert!(
                    generation >= 4,
                    "the log was recycled only to generation {generation}"
                );
                assert!(
                    info.pending_frames > 0,
                    "no frames after the last checkpoint"
                );
            }
            other => panic!("the recycled template's log: {other:?}"),
        }
    }
    [clean, crashed, recycled]
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

/// What a trial damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    Control,
    SledBitFlip,
    SledTruncation,
    LogBitFlip,
    MalformedRecord,
}

/// Apply one random fault to the store at `dir`; returns what and a description.
fn inject(dir: &Path, rng: &mut Rng) -> (Category, String) {
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
            (
                Category::SledBitFlip,
                format!("flip bit {bit} of byte {at} in {}", f.display()),
            )
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
            (
                Category::SledTruncation,
                format!("truncate {} from {len} to {to}", f.display()),
            )
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
            (
                Category::LogBitFlip,
                format!("flip bit {bit} of byte {at} in the log"),
            )
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
            (
                Category::MalformedRecord,
                format!("malformed record for {a} v{v}"),
            )
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
/// payload; returns whether the damage reached the data (the store refused to open, or
/// reported a replay or read error).
fn check(dir: &Path, fault: &str, tally: &mut Tally) -> bool {
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
            return true;
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
        false
    } else {
        tally.opened_with_reported_damage += 1;
        true
    }
}

/// What verify said about a damaged copy.
#[derive(Debug)]
enum Verdict {
    Sound,
    Problems(VerifyReport),
    /// sled itself could not open or read its files.
    Failed(Error),
}

impl Verdict {
    fn flagged(&self) -> bool {
        !matches!(self, Verdict::Sound)
    }
}

/// Run verify on a copy of `dir` (sled's own recovery may rewrite files as it opens them,
/// and the store must see the damage as injected); panics if verify panics.
fn run_verify(dir: &Path, scratch: &Path, fault: &str) -> Verdict {
    copy_dir(dir, scratch);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        verify::verify(scratch, &VerifyOptions::default())
    }));
    fs::remove_dir_all(scratch).unwrap();
    match outcome {
        Ok(Ok(report)) if report.is_sound() => Verdict::Sound,
        Ok(Ok(report)) => Verdict::Problems(report),
        Ok(Err(e)) => {
            assert!(
                matches!(e, Error::Corrupt { .. } | Error::Storage { .. }),
                "{fault}: verify failed with an error that does not name damage: {e}"
            );
            Verdict::Failed(e)
        }
        Err(panic) => panic!("{fault}: verify panicked: {}", panic_message(&*panic)),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Per category of injection: how the damage and verify's findings line up.
#[derive(Debug, Default)]
struct Found {
    trials: u64,
    /// The store refused to open or reported damage.
    data_affecting: u64,
    /// … and verify reported a problem.
    found_problems: u64,
    /// … and verify failed naming the damage (sled could not open its files).
    found_error: u64,
    /// The store opened and returned everything intact.
    harmless: u64,
    /// … yet verify reported a problem.
    harmless_flagged: u64,
}

#[derive(Debug, Default)]
struct VerifyTally {
    by_category: BTreeMap<Category, Found>,
    /// Trials in whose findings each kind of problem appears.
    kinds: BTreeMap<FindingKind, u64>,
}

impl VerifyTally {
    fn add(&mut self, category: Category, data_affecting: bool, verdict: &Verdict) {
        let f = self.by_category.entry(category).or_default();
        f.trials += 1;
        if data_affecting {
            f.data_affecting += 1;
            match verdict {
                Verdict::Problems(_) => f.found_problems += 1,
                Verdict::Failed(_) => f.found_error += 1,
                Verdict::Sound => {}
            }
        } else {
            f.harmless += 1;
            if verdict.flagged() {
                f.harmless_flagged += 1;
            }
        }
        if let Verdict::Problems(report) = verdict {
            let mut kinds: Vec<_> = report.problem_findings().map(|p| p.kind).collect();
            kinds.sort();
            kinds.dedup();
            for k in kinds {
                *self.kinds.entry(k).or_default() += 1;
            }
        }
    }
}

impl fmt::Display for VerifyTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<18} {:>7} {:>14} {:>15} {:>13} {:>9} {:>17}",
            "injection",
            "trials",
            "data-affecting",
            "verify: problem",
            "verify: error",
            "harmless",
            "harmless flagged"
        )?;
        let mut total = Found::default();
        for (category, c) in &self.by_category {
            writeln!(
                f,
                "{:<18} {:>7} {:>14} {:>15} {:>13} {:>9} {:>17}",
                format!("{category:?}"),
                c.trials,
                c.data_affecting,
                c.found_problems,
                c.found_error,
                c.harmless,
                c.harmless_flagged
            )?;
            total.trials += c.trials;
            total.data_affecting += c.data_affecting;
            total.found_problems += c.found_problems;
            total.found_error += c.found_error;
            total.harmless += c.harmless;
            total.harmless_flagged += c.harmless_flagged;
        }
        writeln!(
            f,
            "{:<18} {:>7} {:>14} {:>15} {:>13} {:>9} {:>17}",
            "total",
            total.trials,
            total.data_affecting,
            total.found_problems,
            total.found_error,
            total.harmless,
            total.harmless_flagged
        )?;
        write!(
            f,
            "trials with each kind of problem found: {:?}",
            self.kinds
        )
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
    let mut verified = VerifyTally::default();
    let scratch = root.path().join("verify");
    let mut verify_time = Duration::ZERO;
    let started = Instant::now();
    for trial in 0..trials {
        let template = &templates[(trial % 3) as usize];
        let dir = root.path().join(format!("trial-{trial}"));
        copy_dir(template, &dir);
        // Trials 0 to 2: no fault, every template must open intact.
        let (category, fault) = if trial < 3 {
            (Category::Control, "no fault".to_owned())
        } else {
            inject(&dir, &mut rng)
        };
        let fault = format!("trial {trial} ({fault})");
        // Verify first: the store's open repairs what verify must see.
        let t = Instant::now();
        let verdict = run_verify(&dir, &scratch, &fault);
        verify_time += t.elapsed();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&dir, &fault, &mut tally)));
        let data_affecting = match outcome {
            Ok(affected) => affected,
            Err(panic) => panic!("{fault}: {}", panic_message(&*panic)),
        };
        if category == Category::Control {
            assert!(
                !data_affecting && !verdict.flagged(),
                "{fault}: verify reports problems in an undamaged store: {verdict:?}"
            );
        }
        if data_affecting {
            assert!(
                verdict.flagged(),
                "{fault}: the damage reached the data but verify found nothing"
            );
        }
        if std::env::var("AETHER_SHOW").is_ok() {
            match &verdict {
                Verdict::Problems(r) => {
                    for p in r.problem_findings() {
                        eprintln!("{fault}: affecting={data_affecting}: {p}");
                    }
                }
                Verdict::Failed(e) => eprintln!("{fault}: affecting={data_affecting}: {e}"),
                Verdict::Sound => eprintln!("{fault}: affecting={data_affecting}: sound"),
            }
        }
        verified.add(category, data_affecting, &verdict);
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("corruption trials: {trials}: {tally:?}");
    eprintln!(
        "verify on each damaged copy, before the store opened it ({:.1} s of {:.1} s):\n{verified}",
        verify_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(tally.opened_intact >= 3);
    let total = verified.by_category.values().fold((0, 0), |(a, f), c| {
        (a + c.data_affecting, f + c.found_problems + c.found_error)
    });
    assert_eq!(
        total.1, total.0,
        "verify must find every data-affecting injection"
    );
}
