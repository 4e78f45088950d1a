//! Model check of the durable mode's group commit (`src/sled_store/commit.rs`) with loom:
//! every interleaving of a few savers, up to a preemption bound, through the real code,
//! with a fake log that checks what it is asked to sync.
//!
//! Run with `make test-loom`, which builds with `RUSTFLAGS="--cfg aether_loom"` (the
//! group commit's locks and atomics become loom's) into a target folder of its own.
//!
//! In every interleaving:
//! - a save returns `Ok` only after a sync covering its ticket returned, and after its
//!   note was published; it returns an error only after a sync failed, and only if its
//!   ticket was not durable;
//! - syncs run one at a time, over consecutive tickets, each payload exactly once, never
//!   after a failed one;
//! - notes are published exactly once, in sequence order, only after their sync; all of
//!   them are, unless a sync failed;
//! - `visible` never passes the last sequence synced, and ends equal to it;
//! - nobody waits forever (loom reports a deadlock when every live thread is blocked, so
//!   a lost wakeup fails the test).
//!
//! A failed check prints its assertion under the scenario's name, then loom aborts the
//! binary (its threads cannot unwind). `LOOM_LOG=1 LOOM_LOCATION=1` on that one test
//! prints the interleaving that failed.
//!
//! That these checks catch real mistakes is itself tested: `make test-loom-breaks` runs
//! `every_deliberate_break_is_caught`, which reruns the scenarios once per deliberate break
//! of the protocol (`commit::breaks`, selected by `AETHER_LOOM_BREAK`) and requires each
//! run to fail on one of these checks or on a deadlock.
#![cfg(aether_loom)]

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use aether_core::sled_store::commit::breaks::{self, Break};
use aether_core::sled_store::commit::{Group, GroupCommit, GroupLog, Position, SyncFailed};
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// What one simulated thread does, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Save one event: a payload with one record and one note.
    Event,
    /// Save a snapshot: a payload without records or notes.
    Snapshot,
    /// `flush`: wait for the latest ticket handed out.
    Flush,
    /// A reader looks at the visible mark.
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Note {
    ticket: u64,
    sequence: u64,
}

/// What has really happened so far, in the order loom ran it. A std mutex: it adds no
/// scheduling points, and no loom operation happens while it is held (loom runs all
/// threads on one OS thread).
#[derive(Debug, Default)]
struct Timeline {
    /// Per ticket (index `ticket - 1`): its note, if it saved an event.
    submitted: Vec<Option<Note>>,
    syncing: bool,
    syncs: usize,
    failed: bool,
    synced_ticket: u64,
    synced_sequence: u64,
    published: Vec<Note>,
}

/// The store's writer lock: record order is ticket order.
#[derive(Debug, Default)]
struct Writer {
    last_sequence: u64,
    last_ticket: u64,
}

#[derive(Debug)]
struct World {
    commit: GroupCommit<Note>,
    writer: Mutex<Writer>,
    /// Stands for the write and fdatasync: a point where other threads may run.
    disk: AtomicU64,
    /// The sync call (counting from 0) that fails, if any.
    failing_sync: Option<usize>,
    timeline: StdMutex<Timeline>,
}

fn payload(ticket: u64) -> Vec<u8> {
    ticket.to_le_bytes().to_vec()
}

impl GroupLog<Note> for World {
    type Error = String;

    fn write_and_sync(&self, group: &Group<Note>) -> Result<(), String> {
        {
            let mut t = self.timeline.lock().unwrap();
            assert!(!t.syncing, "two syncs at once");
            assert!(!t.failed, "a sync started after one failed");
            t.syncing = true;
            let first = t.synced_ticket + 1;
            let count = group.payloads.len() as u64;
            assert!(count > 0, "an empty group was synced");
            assert_eq!(
                group.last_ticket,
                first + count - 1,
                "the group does not continue the log"
            );
            for (i, p) in group.payloads.iter().enumerate() {
                assert_eq!(p, &payload(first + i as u64), "payload out of order");
            }
            assert_eq!(group.bytes, 8 * count as usize);
            let submitted = &t.submitted[first as usize - 1..group.last_ticket as usize];
            let notes: Vec<Note> = submitted.iter().flatten().copied().collect();
            assert_eq!(
                group.notes, notes,
                "the group's notes are not its payloads'"
            );
            let last_sequence = t.submitted[..group.last_ticket as usize]
                .iter()
                .flatten()
                .last()
                .map_or(0, |n| n.sequence);
            assert_eq!(group.last.sequence, last_sequence);
            assert_eq!(group.last.crc, last_sequence as u32);
        }
        self.disk.fetch_add(1, Ordering::Relaxed);
        let mut t = self.timeline.lock().unwrap();
        t.syncing = false;
        let call = t.syncs;
        t.syncs += 1;
        if self.failing_sync == Some(call) {
            t.failed = true;
            return Err("injected sync failure".into());
        }
        t.synced_ticket = group.last_ticket;
        t.synced_sequence = group.last.sequence;
        Ok(())
    }

    fn publish(&self, note: Note) {
        let mut t = self.timeline.lock().unwrap();
        assert!(
            note.ticket <= t.synced_ticket,
            "{note:?} published before its sync"
        );
        let next = t.published.last().map_or(1, |n| n.sequence + 1);
        assert_eq!(note.sequence, next, "published out of order or twice");
        t.published.push(note);
    }
}

impl World {
    /// A save as `SledStore::append` does it: in flight, submit under the writer lock,
    /// then wait for durability.
    fn save(&self, op: Op) {
        let in_flight = self.commit.enter();
        let (ticket, note) = {
            let mut w = self.writer.lock().unwrap();
            w.last_ticket += 1;
            let ticket = w.last_ticket;
            let note = (op == Op::Event).then(|| {
                w.last_sequence += 1;
                Note {
                    ticket,
                    sequence: w.last_sequence,
                }
            });
            self.timeline.lock().unwrap().submitted.push(note);
            let last = note.map(|n| Position {
                sequence: n.sequence,
                crc: n.sequence as u32,
            });
            let got = self.commit.submit(payload(ticket), note, last);
            assert_eq!(got, ticket, "tickets out of step with the writer");
            (ticket, note)
        };
        drop(in_flight);
        let result = self.commit.wait_durable(ticket, self);
        self.check_returned(ticket, note, result);
    }

    fn check_returned(&self, ticket: u64, note: Option<Note>, result: Result<(), SyncFailed>) {
        let visible = self.commit.visible();
        let t = self.timeline.lock().unwrap();
        assert!(
            visible <= t.synced_sequence,
            "visible {visible} passed the synced {}",
            t.synced_sequence
        );
        match result {
            Ok(()) => {
                assert!(
                    t.synced_ticket >= ticket,
                    "ticket {ticket} returned Ok, but only {} is synced",
                    t.synced_ticket
                );
                if let Some(note) = note {
                    assert!(
                        t.published.contains(&note),
                        "ticket {ticket} returned Ok before its note was published"
                    );
                }
            }
            Err(SyncFailed(cause)) => {
                assert!(t.failed, "error without a failed sync: {cause}");
                assert_eq!(cause, "injected sync failure");
                assert!(
                    t.synced_ticket < ticket,
                    "durable ticket {ticket} got an error"
                );
            }
        }
    }

    fn run(&self, op: Op) {
        match op {
            Op::Event | Op::Snapshot => self.save(op),
            Op::Flush => {
                let ticket = self.commit.last_ticket();
                let result = self.commit.wait_durable(ticket, self);
                self.check_returned(ticket, None, result);
            }
            Op::Read => {
                let visible = self.commit.visible();
                let synced = self.timeline.lock().unwrap().synced_sequence;
                assert!(
                    visible <= synced,
                    "visible {visible} passed the synced {synced}"
                );
            }
        }
    }

    /// Once every thread is done.
    fn check_end(&self) {
        let visible = self.commit.visible();
        let t = self.timeline.lock().unwrap();
        assert!(!t.syncing);
        assert_eq!(visible, t.synced_sequence, "visible lags the last sync");
        let expected: Vec<Note> = t.submitted[..t.synced_ticket as usize]
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_eq!(t.published, expected, "synced notes not all published");
        if !t.failed {
            assert_eq!(
                t.synced_ticket,
                t.submitted.len() as u64,
                "a save was never synced"
            );
        }
    }
}

struct Scenario {
    threads: Vec<Vec<Op>>,
    failing_sync: Option<usize>,
    window: Duration,
    preemption_bound: Option<usize>,
}

impl Scenario {
    fn new(threads: &[&[Op]]) -> Scenario {
        Scenario {
            threads: threads.iter().map(|t| t.to_vec()).collect(),
            failing_sync: None,
            window: Duration::ZERO,
            preemption_bound: None,
        }
    }

    fn failing_sync(mut self, call: usize) -> Scenario {
        self.failing_sync = Some(call);
        self
    }

    /// loom's `wait_timeout` never times out: a leader waits until the savers in flight
    /// have joined, which is the interesting case. The window is long enough never to pass.
    fn window(mut self) -> Scenario {
        self.window = Duration::from_secs(3600);
        self
    }

    fn preemption_bound(mut self, bound: usize) -> Scenario {
        self.preemption_bound = Some(bound);
        self
    }

    fn check(self) {
        let mut builder = loom::model::Builder::new();
        // LOOM_MAX_PREEMPTIONS, when set, overrides the scenario's bound.
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = self.preemption_bound;
        }
        let Scenario {
            threads,
            failing_sync,
            window,
            ..
        } = self;
        let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = executions.clone();
        builder.check(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let world = Arc::new(World {
                commit: GroupCommit::new(Position::default(), window),
                writer: Mutex::new(Writer::default()),
                disk: AtomicU64::new(0),
                failing_sync,
                timeline: StdMutex::new(Timeline::default()),
            });
            let (first, rest) = threads.split_first().expect("a thread");
            let handles: Vec<_> = rest
                .iter()
                .map(|ops| {
                    let world = world.clone();
                    let ops = ops.clone();
                    thread::spawn(move || ops.iter().for_each(|&op| world.run(op)))
                })
                .collect();
            first.iter().for_each(|&op| world.run(op));
            for h in handles {
                h.join().unwrap();
            }
            world.check_end();
        });
        println!(
            "{}: {} interleavings",
            std::thread::current().name().unwrap_or("scenario"),
            executions.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

use Op::*;

/// Every interleaving, without a preemption bound.
#[test]
fn two_savers_exhaustively() {
    Scenario::new(&[&[Event], &[Event]]).check();
}

#[test]
fn two_savers_and_a_reader() {
    Scenario::new(&[&[Event], &[Event], &[Read, Read]])
        .preemption_bound(3)
        .check();
}

#[test]
fn three_savers() {
    Scenario::new(&[&[Event], &[Event], &[Event]])
        .preemption_bound(4)
        .check();
}

#[test]
fn two_savers_two_saves_each() {
    Scenario::new(&[&[Event, Event], &[Snapshot, Event]])
        .preemption_bound(4)
        .check();
}

#[test]
fn flush_covers_every_save_returned() {
    Scenario::new(&[&[Event, Event], &[Flush], &[Snapshot]])
        .preemption_bound(3)
        .check();
}

#[test]
fn first_sync_fails() {
    Scenario::new(&[&[Event], &[Event], &[Event]])
        .failing_sync(0)
        .preemption_bound(4)
        .check();
}

#[test]
fn second_sync_fails() {
    Scenario::new(&[&[Event, Event], &[Event], &[Snapshot]])
        .failing_sync(1)
        .preemption_bound(3)
        .check();
}

#[test]
fn window_waits_for_saves_in_flight() {
    Scenario::new(&[&[Event], &[Event], &[Event]])
        .window()
        .preemption_bound(3)
        .check();
}

#[test]
fn window_with_a_failed_sync() {
    Scenario::new(&[&[Event, Event], &[Event]])
        .window()
        .failing_sync(0)
        .check();
}

/// Each deliberate break of the protocol makes the scenarios above fail: this reruns this
/// binary once per break, with `AETHER_LOOM_BREAK` naming it, and requires the run to fail
/// on a check of this file or on loom's deadlock report, not on anything else (a panic in
/// the break's own setup, a crash, a timeout).
#[test]
#[ignore = "reruns the scenarios once per break, a few minutes: make test-loom-breaks"]
fn every_deliberate_break_is_caught() {
    let exe = std::env::current_exe().unwrap();
    let mut missed = Vec::new();
    for b in Break::ALL {
        let started = std::time::Instant::now();
        let out = std::process::Command::new(&exe)
            .env(breaks::ENV, b.name())
            .env_remove("LOOM_MAX_PREEMPTIONS")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The first panic: "thread 'SCENARIO' (ID) panicked at PATH:LINE:COL:", then its
        // message on the next line.
        let mut lines = text.lines();
        let caught = lines
            .by_ref()
            .find(|l| l.contains(" panicked at "))
            .map(|at| (at, lines.next().unwrap_or("")))
            .filter(|(at, message)| {
                at.contains("tests/loom.rs:") || message.starts_with("deadlock; threads")
            });
        match (out.status.success(), caught) {
            (false, Some((at, message))) => {
                let scenario = at.split('\'').nth(1).unwrap_or("?");
                let message: String = message.chars().take(80).collect();
                println!(
                    "{:<34} caught in {:.1?} by {scenario}: {message}",
                    b.name(),
                    started.elapsed()
                );
            }
            _ => {
                println!("{:<34} NOT CAUGHT ({})", b.name(), out.status);
                missed.push((b.name(), text));
            }
        }
    }
    for (name, text) in &missed {
        eprintln!("---- {name} ----\n{text}");
    }
    assert!(
        missed.is_empty(),
        "breaks the model check did not catch: {:?}",
        missed.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    println!("all {} deliberate breaks caught", Break::ALL.len());
}
