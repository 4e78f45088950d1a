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
//! The module knows nothing of sled or the log format, so loom can drive the real code:
//! its locks and atomics are `std::sync`'s, or loom's when built with
//! `RUSTFLAGS="--cfg aether_loom"`.

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
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.joined.notify_one();
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
            drop(state);
            let result = self.lead(log);
            state = lock(&self.state);
            state.leading = false;
            match result {
                Ok(t) => state.durable_ticket = state.durable_ticket.max(t),
                Err(e) => state.failed = Some(e.to_string()),
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
        log.write_and_sync(&group)?;
        self.raise_visible(group.last.sequence);
        for note in group.notes {
            log.publish(note);
        }
        Ok(group.last_ticket)
    }
}
