//! Group commit: the coordination between saves that share one log sync.
//!
//! A saver [`submit`](GroupCommit::submit)s its log payload and notes and gets a ticket,
//! then [`wait_durable`](GroupCommit::wait_durable)s on it. Whoever finds no sync running
//! becomes the leader: it takes everything pending as one [`Group`], has the [`GroupLog`]
//! write and sync it, raises the visible high-water mark, publishes the group's notes, and
//! wakes the others. Saves arriving meanwhile form the next group.
//!
//! Contracts, checked under loom by `tests/loom.rs`:
//! - a wait returns `Ok` only once a sync covering its ticket has returned `Ok`, and the
//!   group's notes have been published;
//! - every note is published exactly once, in ticket order, after the sync holding it;
//! - [`visible`](GroupCommit::visible) never passes the last record synced;
//! - after a failed sync no other sync starts, and every wait not already durable (then
//!   or later) fails instead of blocking.
//!
//! A leader that panics inside the [`GroupLog`] counts as a failed sync (with
//! [`LEADER_PANICKED`]): the other waiters get an error rather than block forever. loom
//! cannot unwind, so this is tested by the unit tests below instead.
//!
//! The module knows nothing of sled or the log format, so loom can drive the real code:
//! its locks and atomics are `std::sync`'s, or loom's when built with
//! `RUSTFLAGS="--cfg aether_loom"`. Loom builds also carry `breaks`: deliberate breaks of
//! this protocol, one at a time, so `make test-loom-breaks` can show that the model check
//! catches each of them. Other builds compile none of it.

use std::fmt;
use std::time::{Duration, Instant};

#[cfg(aether_loom)]
use loom::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
#[cfg(not(aether_loom))]
use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};

#[cfg(aether_loom)]
use breaks::Break;

/// Deliberate breaks of the group-commit protocol, for loom builds only: with
/// `AETHER_LOOM_BREAK=<name>` set, the code below misbehaves in that one way, and
/// `tests/loom.rs` must fail. Each break is a single `#[cfg(aether_loom)]` step added
/// to the real code, so the code without them is the code other builds compile.
#[cfg(aether_loom)]
pub mod breaks {
    use std::sync::OnceLock;

    /// The variable that selects a break.
    pub const ENV: &str = "AETHER_LOOM_BREAK";

    /// One way to break the protocol.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Break {
        /// The leader publishes the group's notes before its sync.
        PublishBeforeSync,
        /// The leader raises `visible` before its sync.
        VisibleBeforeSync,
        /// The leader never publishes the notes of a group it synced.
        NoPublication,
        /// A leader that finished wakes one waiter instead of all of them.
        NotifyOneAfterLeading,
        /// A leader that finished wakes nobody.
        NoNotifyAfterLeading,
        /// A save in flight gives up its count without holding `pending`.
        InFlightReleaseUnlocked,
        /// A save in flight gives up its count without waking the leader waiting for it.
        InFlightReleaseWithoutNotify,
        /// A failed sync is not recorded: the next waiter leads another sync.
        FailureNotRecorded,
        /// A waiter checks for a failed sync before checking whether its ticket is
        /// already durable, so a durable save can get an error.
        FailureCheckedBeforeDurable,
        /// The leader never marks itself leading: two syncs can run at once.
        NoLeaderFlag,
    }

    impl Break {
        /// Every break.
        pub const ALL: [Break; 10] = [
            Break::PublishBeforeSync,
            Break::VisibleBeforeSync,
            Break::NoPublication,
            Break::NotifyOneAfterLeading,
            Break::NoNotifyAfterLeading,
            Break::InFlightReleaseUnlocked,
            Break::InFlightReleaseWithoutNotify,
            Break::FailureNotRecorded,
            Break::FailureCheckedBeforeDurable,
            Break::NoLeaderFlag,
        ];

        /// Its name in `AETHER_LOOM_BREAK`.
        pub fn name(self) -> &'static str {
            match self {
                Break::PublishBeforeSync => "publish-before-sync",
                Break::VisibleBeforeSync => "visible-before-sync",
                Break::NoPublication => "no-publication",
                Break::NotifyOneAfterLeading => "notify-one-after-leading",
                Break::NoNotifyAfterLeading => "no-notify-after-leading",
                Break::InFlightReleaseUnlocked => "in-flight-release-unlocked",
                Break::InFlightReleaseWithoutNotify => "in-flight-release-without-notify",
                Break::FailureNotRecorded => "failure-not-recorded",
                Break::FailureCheckedBeforeDurable => "failure-checked-before-durable",
                Break::NoLeaderFlag => "no-leader-flag",
            }
        }

        /// Whether this break is the one selected.
        pub fn on(self) -> bool {
            selected() == Some(self)
        }
    }

    /// The break `AETHER_LOOM_BREAK` names, if any; panics on a name that is not one, so
    /// a typo cannot pass for a break that was caught.
    pub fn selected() -> Option<Break> {
        static SELECTED: OnceLock<Option<Break>> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let name = std::env::var(ENV).ok()?;
            let found = Break::ALL.into_iter().find(|b| b.name() == name);
            Some(found.unwrap_or_else(|| {
                let names: Vec<_> = Break::ALL.iter().map(|b| b.name()).collect();
                panic!("unknown {ENV}={name:?}; the breaks are {names:?}")
            }))
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The last record a group (or the whole log) holds: its sequence and CRC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub sequence: u64,
    pub crc: u32,
}

/// Payloads and notes submitted since the last group was taken, in ticket order.
#[derive(Debug)]
pub struct Group<N> {
    pub payloads: Vec<Vec<u8>>,
    /// Total length of `payloads`.
    pub bytes: usize,
    pub notes: Vec<N>,
    /// Ticket of the last payload; tickets are consecutive, one per payload.
    pub last_ticket: u64,
    /// Latest record submitted so far, in this group or (if it has none) before it.
    pub last: Position,
}

impl<N> Group<N> {
    /// An empty group that continues after `last_ticket` and `last`.
    fn after(last_ticket: u64, last: Position) -> Group<N> {
        Group {
            payloads: Vec::new(),
            bytes: 0,
            notes: Vec::new(),
            last_ticket,
            last,
        }
    }
}

/// What a group commit leader drives: the log it syncs and where notes go.
pub trait GroupLog<N> {
    type Error: fmt::Display;

    /// Write `group.payloads` after everything written before and make them durable.
    /// Called by one leader at a time, for consecutive groups, never after an error.
    fn write_and_sync(&self, group: &Group<N>) -> Result<(), Self::Error>;

    /// Announce a note whose payload is durable; called in ticket order, exactly once.
    fn publish(&self, note: N);
}

/// A sync failed: no later save can become durable until the store is reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailed(pub String);

#[derive(Debug, Default)]
struct CommitState {
    durable_ticket: u64,
    leading: bool,
    failed: Option<String>,
}

/// Tickets, the pending group, leader election and the visible high-water mark.
#[derive(Debug)]
pub struct GroupCommit<N> {
    /// Submissions waiting for the next leader. Submitters hold their own writer lock
    /// around [`GroupCommit::submit`], so ticket order is their sequence order.
    pending: Mutex<Group<N>>,
    state: Mutex<CommitState>,
    /// Signalled (with `state` held) when a leader finishes, well or badly.
    committed: Condvar,
    /// Signalled (with `pending` held) when a save in flight has joined the pending group
    /// or given up, so a waiting leader can start its sync.
    joined: Condvar,
    in_flight: AtomicUsize,
    /// Highest sequence readers may see.
    visible: AtomicU64,
    /// How long a leader waits for saves already in flight to join its group.
    window: Duration,
}

/// A save between [`GroupCommit::enter`] and its submission (or failure); see `window`.
#[derive(Debug)]
#[must_use = "the save counts as in flight until this is dropped"]
pub struct InFlight<'a, N>(&'a GroupCommit<N>);

impl<N> Drop for InFlight<'_, N> {
    fn drop(&mut self) {
        // Under `pending`, so a leader waiting for this save cannot miss the wakeup.
        let _pending = lock(&self.0.pending);
        #[cfg(aether_loom)]
        let _pending = (!Break::InFlightReleaseUnlocked.on()).then_some(_pending);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        #[cfg(aether_loom)]
        if Break::InFlightReleaseWithoutNotify.on() {
            return;
        }
        self.0.joined.notify_one();
    }
}

/// Why waits fail after a leader panicked inside its [`GroupLog`].
pub const LEADER_PANICKED: &str = "the group commit leader panicked; reopen the store";

/// Armed while a leader runs the [`GroupLog`] without holding `state`. If the leader
/// unwinds (a panic there; the C ABI catches it, and the store lives on), dropping it
/// fails the group commit, clears `leading` and wakes every waiter: they return an error
/// instead of waiting forever for a leader that is gone. The panic itself propagates.
struct LeaderUnwinding<'a, N> {
    commit: &'a GroupCommit<N>,
    armed: bool,
}

impl<N> Drop for LeaderUnwinding<'_, N> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // `lock` ignores poisoning, so this cannot panic again while unwinding, and later
        // calls see the failure rather than a poisoned mutex.
        let mut state = lock(&self.commit.state);
        state.leading = false;
        state.failed = Some(LEADER_PANICKED.to_string());
        self.commit.committed.notify_all();
    }
}

impl<N> GroupCommit<N> {
    /// A group commit over a log that holds everything through `head`, which is visible.
    pub fn new(head: Position, window: Duration) -> GroupCommit<N> {
        GroupCommit {
            pending: Mutex::new(Group::after(0, head)),
            state: Mutex::new(CommitState::default()),
            committed: Condvar::new(),
            joined: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            visible: AtomicU64::new(head.sequence),
            window,
        }
    }

    /// Count a save as in flight until the guard drops: a leader with a window waits for
    /// it to submit (or fail) rather than leave it to the next sync.
    pub fn enter(&self) -> InFlight<'_, N> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }

    /// Queue `payload` and its `notes` for the next sync and return its ticket. `last` is
    /// the payload's last record, `None` if it holds none (a snapshot).
    ///
    /// Callers serialise their submissions in record order (`SledStore`: under its writer
    /// lock), so tickets, sequences and notes all grow together.
    pub fn submit(
        &self,
        payload: Vec<u8>,
        notes: impl IntoIterator<Item = N>,
        last: Option<Position>,
    ) -> u64 {
        let mut pending = lock(&self.pending);
        pending.bytes += payload.len();
        pending.payloads.push(payload);
        pending.notes.extend(notes);
        if let Some(last) = last {
            pending.last = last;
        }
        pending.last_ticket += 1;
        pending.last_ticket
    }

    /// The ticket of the latest submission: waiting for it waits for all of them.
    pub fn last_ticket(&self) -> u64 {
        lock(&self.pending).last_ticket
    }

    /// Highest sequence readers may see.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Let readers see through `sequence` (never lowers the mark).
    pub fn raise_visible(&self, sequence: u64) {
        self.visible.fetch_max(sequence, Ordering::AcqRel);
    }

    /// [`raise_visible`](Self::raise_visible) with a plain store, for callers that hold one
    /// lock around every change of the mark and never lower it (buffered saves, which
    /// bypass the group commit, under `SledStore`'s writer lock).
    pub fn set_visible(&self, sequence: u64) {
        self.visible.store(sequence, Ordering::Release);
    }

    /// Block until ticket `ticket` is durable, leading a group commit if no one is.
    pub fn wait_durable<L: GroupLog<N>>(&self, ticket: u64, log: &L) -> Result<(), SyncFailed> {
        let mut state = lock(&self.state);
        loop {
            #[cfg(aether_loom)]
            if let (true, Some(f)) = (Break::FailureCheckedBeforeDurable.on(), &state.failed) {
                return Err(SyncFailed(f.clone()));
            }
            if state.durable_ticket >= ticket {
                return Ok(());
            }
            if let Some(f) = &state.failed {
                return Err(SyncFailed(f.clone()));
            }
            if state.leading {
                state = self
                    .committed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.leading = true;
            #[cfg(aether_loom)]
            if Break::NoLeaderFlag.on() {
                state.leading = false;
            }
            drop(state);
            // Until disarmed, a panic in the `GroupLog` (or its error's `Display`) fails
            // the group commit and wakes the waiters, instead of leaving `leading` set.
            let mut unwinding = LeaderUnwinding {
                commit: self,
                armed: true,
            };
            let result = self.lead(log).map_err(|e| e.to_string());
            unwinding.armed = false;
            state = lock(&self.state);
            state.leading = false;
            match result {
                Ok(t) => state.durable_ticket = state.durable_ticket.max(t),
                Err(e) => state.failed = Some(e),
            }
            #[cfg(aether_loom)]
            if Break::FailureNotRecorded.on() {
                state.failed = None;
            }
            #[cfg(aether_loom)]
            if Break::NoNotifyAfterLeading.on() {
                continue;
            }
            #[cfg(aether_loom)]
            if Break::NotifyOneAfterLeading.on() {
                self.committed.notify_one();
                continue;
            }
            self.committed.notify_all();
        }
    }

    /// Write and sync everything pending as one group; returns the last ticket made durable.
    fn lead<L: GroupLog<N>>(&self, log: &L) -> Result<u64, L::Error> {
        // Saves already in flight join this sync rather than wait for the next one. The
        // leader sleeps (not spins: on two cores the savers need the CPU) until they have
        // joined or the window has passed.
        let group = {
            let mut pending = lock(&self.pending);
            if !self.window.is_zero() {
                let deadline = Instant::now() + self.window;
                while self.in_flight.load(Ordering::Acquire) > 0 {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    pending = self
                        .joined
                        .wait_timeout(pending, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            let next = Group::after(pending.last_ticket, pending.last);
            std::mem::replace(&mut *pending, next)
        };
        if group.payloads.is_empty() {
            return Ok(group.last_ticket);
        }
        #[cfg(aether_loom)]
        let group = {
            let mut group = group;
            if Break::PublishBeforeSync.on() {
                std::mem::take(&mut group.notes)
                    .into_iter()
                    .for_each(|note| log.publish(note));
            }
            if Break::VisibleBeforeSync.on() {
                self.raise_visible(group.last.sequence);
            }
            group
        };
        log.write_and_sync(&group)?;
        self.raise_visible(group.last.sequence);
        #[cfg(aether_loom)]
        if Break::NoPublication.on() {
            return Ok(group.last_ticket);
        }
        for note in group.notes {
            log.publish(note);
        }
        Ok(group.last_ticket)
    }
}

#[cfg(all(test, not(aether_loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, Receiver, Sender};
    use std::sync::Arc;
    use std::thread;

    /// How long a wait that should fail may take before the test calls it a hang.
    const HANG: Duration = Duration::from_secs(10);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum PanicIn {
        WriteAndSync,
        Publish,
    }

    /// Its first sync says it has started, waits to be released, then panics (or returns
    /// and lets `publish` panic).
    #[derive(Debug)]
    struct PanickingLog {
        panic_in: PanicIn,
        syncs: AtomicUsize,
        started: Mutex<Sender<()>>,
        release: Mutex<Receiver<()>>,
    }

    impl GroupLog<u64> for PanickingLog {
        type Error = String;

        fn write_and_sync(&self, _group: &Group<u64>) -> Result<(), String> {
            if self.syncs.fetch_add(1, Ordering::SeqCst) == 0 {
                lock(&self.started).send(()).unwrap();
                lock(&self.release).recv().unwrap();
                if self.panic_in == PanicIn::WriteAndSync {
                    panic!("injected panic in write_and_sync");
                }
            }
            Ok(())
        }

        fn publish(&self, _note: u64) {
            if self.panic_in == PanicIn::Publish {
                panic!("injected panic in publish");
            }
        }
    }

    /// `wait_durable(ticket)` on a thread of its own; its result, or `None` after `HANG`.
    fn wait_or_hang(
        commit: &Arc<GroupCommit<u64>>,
        log: &Arc<PanickingLog>,
        ticket: u64,
    ) -> Option<Result<(), SyncFailed>> {
        let (done, result) = mpsc::channel();
        let (commit, log) = (Arc::clone(commit), Arc::clone(log));
        // Not joined: if the wait hangs, the test fails and the thread is left blocked.
        thread::spawn(move || {
            let _ = done.send(commit.wait_durable(ticket, &*log));
        });
        result.recv_timeout(HANG).ok()
    }

    fn leader_panic_fails_the_waiters(panic_in: PanicIn) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let log = Arc::new(PanickingLog {
            panic_in,
            syncs: AtomicUsize::new(0),
            started: Mutex::new(started_tx),
            release: Mutex::new(release_rx),
        });
        let commit = Arc::new(GroupCommit::new(Position::default(), Duration::ZERO));
        let last = |sequence| Some(Position { sequence, crc: 0 });

        // A submits ticket 1 and leads its sync.
        let ticket_a = commit.submit(vec![1], [1], last(1));
        let leader = {
            let (commit, log) = (Arc::clone(&commit), Arc::clone(&log));
            thread::spawn(move || commit.wait_durable(ticket_a, &*log))
        };
        started
            .recv_timeout(HANG)
            .expect("A never started its sync");

        // B submits ticket 2 (the next group) and waits behind A.
        let ticket_b = commit.submit(vec![2], [2], last(2));
        assert!(ticket_b > ticket_a);
        let waiter = {
            let (done, result) = mpsc::channel();
            let (commit, log) = (Arc::clone(&commit), Arc::clone(&log));
            thread::spawn(move || {
                let _ = done.send(commit.wait_durable(ticket_b, &*log));
            });
            result
        };
        // Give B time to block on the condvar (if it is late, it meets the failure
        // instead; without the guard it would hang either way).
        thread::sleep(Duration::from_millis(100));
        release.send(()).unwrap();

        // A's panic propagates out of wait_durable.
        let payload = leader.join().expect_err("the leader should have panicked");
        let message = payload.downcast_ref::<&str>().copied().unwrap_or("");
        assert!(message.starts_with("injected panic"), "{message:?}");

        let failed = Err(SyncFailed(LEADER_PANICKED.to_string()));
        let b = waiter
            .recv_timeout(HANG)
            .expect("B hung after the leader panicked");
        assert_eq!(b, failed);

        // Later waits fail too, without starting another sync.
        let ticket_c = commit.submit(vec![3], [3], last(3));
        assert_eq!(wait_or_hang(&commit, &log, ticket_c), Some(failed.clone()));
        assert_eq!(wait_or_hang(&commit, &log, ticket_b), Some(failed.clone()));
        assert_eq!(log.syncs.load(Ordering::SeqCst), 1);
        // Nothing stays poisoned into a panic: the same call from this thread fails too.
        assert_eq!(commit.wait_durable(ticket_c, &*log), failed);
    }

    #[test]
    fn leader_panic_in_write_and_sync_fails_the_waiters() {
        leader_panic_fails_the_waiters(PanicIn::WriteAndSync);
    }

    #[test]
    fn leader_panic_in_publish_fails_the_waiters() {
        leader_panic_fails_the_waiters(PanicIn::Publish);
    }
}
