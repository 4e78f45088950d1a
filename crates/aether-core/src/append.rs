//! Appends beyond the seed's rule, and the reads that go with them: what every backend
//! shares so that each applies one contract.
//!
//! - [`ExpectedState`]: what an append expects of an actor's stream before it writes.
//! - [`CommitEntry`] / [`Committed`]: one actor's part of a commit, and what a commit did.
//!   A commit across actors is all or nothing: one record, consecutive sequences.
//! - Automatic versions: an entry whose events all have version 0 is given the actor's
//!   latest + 1, + 2, … when it is written.
//! - Idempotent retries: a commit whose events are already stored (same actors, versions
//!   and event IDs) succeeds as [`AppendStatus::AlreadyAppended`] with the stored
//!   sequences. The check runs only after a condition failed, so the hot path pays nothing.
//! - [`EventRange`] and [`EventFilter`]: bounded, backward and filtered reads.

use std::collections::HashSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::store::Limits;

/// What an append expects of an actor's stream. Whatever the mode, explicit versions must
/// be greater than the actor's latest: versions only ever increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExpectedState {
    /// The seed's rule, and the default: the first event's version is greater than the
    /// actor's latest (gaps allowed). With automatic versions there is nothing to check.
    #[default]
    Increasing,
    /// No expectation: the same check as `Increasing`, under the name other stores give
    /// it (KurrentDB's `Any`), for callers that say so explicitly.
    Any,
    /// The actor has no events.
    NoStream,
    /// The actor has at least one event.
    StreamExists,
    /// The actor's latest version is exactly this (0: the actor has no events).
    Exact(i64),
}

impl ExpectedState {
    /// Whether an actor whose latest version is `latest` meets this expectation.
    pub fn holds(self, latest: i64) -> bool {
        match self {
            ExpectedState::Increasing | ExpectedState::Any => true,
            ExpectedState::NoStream => latest == 0,
            ExpectedState::StreamExists => latest > 0,
            ExpectedState::Exact(v) => latest == v,
        }
    }

    /// The version just before an automatic-version append's first event, when the
    /// expectation alone determines it (`Exact(v)`: v; `NoStream`: 0). A retry of such an
    /// append can be recognised as already stored.
    pub fn known_base(self) -> Option<i64> {
        match self {
            ExpectedState::NoStream => Some(0),
            ExpectedState::Exact(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for ExpectedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedState::Increasing => f.write_str("increasing versions"),
            ExpectedState::Any => f.write_str("any state"),
            ExpectedState::NoStream => f.write_str("no stream"),
            ExpectedState::StreamExists => f.write_str("an existing stream"),
            ExpectedState::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// One actor's part of a commit: its expectation and the events to append (none: a
/// condition-only entry, which checks the actor's state and writes nothing to it).
///
/// Every event's `actor_id` must be the entry's. Versions are either all explicit
/// (strictly increasing, from 1) or all 0 (automatic: latest + 1, + 2, …).
#[derive(Debug, Clone, Copy)]
pub struct CommitEntry<'a> {
    /// The actor.
    pub actor_id: &'a str,
    /// What the actor's stream must look like for the commit to go ahead.
    pub expected: ExpectedState,
    /// The events to append, in order; empty for a condition-only entry.
    pub events: &'a [Event],
}

impl<'a> CommitEntry<'a> {
    /// An entry that appends `events` to `actor_id` if `expected` holds.
    pub fn new(actor_id: &'a str, expected: ExpectedState, events: &'a [Event]) -> Self {
        CommitEntry {
            actor_id,
            expected,
            events,
        }
    }

    /// A condition-only entry: the commit goes ahead only if `expected` holds for
    /// `actor_id`, and writes nothing to it.
    pub fn condition(actor_id: &'a str, expected: ExpectedState) -> Self {
        CommitEntry {
            actor_id,
            expected,
            events: &[],
        }
    }

    /// Whether this entry's versions are assigned by the store.
    pub fn automatic(&self) -> bool {
        self.events.first().is_some_and(|e| e.version == 0)
    }

    /// The version of the entry's `i`th event when the actor's latest is `latest`.
    pub fn version_at(&self, i: usize, latest: i64) -> i64 {
        if self.automatic() {
            latest + 1 + i as i64
        } else {
            self.events[i].version
        }
    }

    /// The versions this entry's events take when the actor's latest version is
    /// `latest`: (first, last). `None` for a condition-only entry.
    pub fn versions(&self, latest: i64) -> Option<(i64, i64)> {
        let n = self.events.len();
        (n > 0).then(|| (self.version_at(0, latest), self.version_at(n - 1, latest)))
    }

    /// Check the entry against its actor's latest version: `None` when it may go ahead.
    pub fn conflict(&self, latest: i64) -> Option<ActorConflict> {
        let explicit_ok = self.automatic()
            || self
                .events
                .first()
                .is_none_or(|first| first.version > latest);
        (!self.expected.holds(latest) || !explicit_ok).then(|| ActorConflict {
            actor_id: self.actor_id.to_string(),
            expected: self.expected,
            attempted_version: match self.events.first() {
                Some(e) => e.version,
                None => 0,
            },
            current_version: latest,
        })
    }

    /// The event of this entry that a retry expects stored at `version` (see
    /// [`CommitEntry::retry_versions`]); `None` when no event of the entry has it.
    pub fn retry_event(&self, version: i64) -> Option<&'a Event> {
        if self.automatic() {
            let (first, _) = self.retry_versions()?;
            usize::try_from(version.checked_sub(first)?)
                .ok()
                .and_then(|i| self.events.get(i))
        } else {
            let i = self
                .events
                .binary_search_by_key(&version, |e| e.version)
                .ok()?;
            Some(&self.events[i])
        }
    }

    /// The versions a retry of this entry would find stored: `Some((first, last))` when
    /// they are known without the actor's current state (explicit versions, or automatic
    /// ones under `NoStream` / `Exact`), `None` otherwise (and for a condition-only entry).
    pub fn retry_versions(&self) -> Option<(i64, i64)> {
        if self.events.is_empty() {
            return None;
        }
        if self.automatic() {
            self.expected.known_base().and_then(|b| self.versions(b))
        } else {
            self.versions(0)
        }
    }
}

/// Whether a commit wrote its events or found them already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    /// The events were written by this call.
    Appended,
    /// Every event was already stored with the same actor, version and ID (a retry of a
    /// commit that succeeded): nothing was written, and no `EventStored` was published.
    AlreadyAppended,
}

/// The versions one actor's events took in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedActor {
    /// The actor.
    pub actor_id: String,
    /// The version of its first event in the commit.
    pub first_version: i64,
    /// The version of its last event: the actor's latest once the commit is visible.
    pub last_version: i64,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Written now, or found already stored.
    pub status: AppendStatus,
    /// The store-wide sequence of the commit's first event; 0 when it wrote no events
    /// (every entry a condition).
    pub first_sequence: u64,
    /// The sequence of its last event; 0 when it wrote none. Events of a commit have
    /// consecutive sequences, in entry order.
    pub last_sequence: u64,
    /// Per entry that has events, in entry order: the versions its events have.
    pub actors: Vec<CommittedActor>,
}

/// One failed condition of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorConflict {
    /// The actor whose state did not meet the expectation.
    pub actor_id: String,
    /// What the entry expected.
    pub expected: ExpectedState,
    /// The version of the entry's first event (0: automatic versions, or a condition-only
    /// entry).
    pub attempted_version: i64,
    /// The actor's latest version when the commit was checked.
    pub current_version: i64,
}

impl fmt::Display for ActorConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "actor {:?} expected {}, has version {}",
            self.actor_id, self.expected, self.current_version
        )?;
        if self.attempted_version > 0 {
            write!(f, ", cannot save version {}", self.attempted_version)?;
        }
        Ok(())
    }
}

/// Check a commit's shape before anything is locked or written; returns its event count.
///
/// Refused with [`Error::InvalidInput`]: no entries, more entries or events than
/// `max_batch_len`, two entries for one actor, an invalid actor ID, an event of another
/// actor, version 0 mixed with explicit versions, explicit versions below 1 or not
/// strictly increasing, `Exact` of a negative version.
pub fn check_commit(limits: &Limits, entries: &[CommitEntry<'_>]) -> Result<usize> {
    if entries.is_empty() {
        return Err(Error::invalid(
            "entries",
            "a commit needs at least one entry",
        ));
    }
    let too_many = |what: &str, n: usize| {
        Error::invalid(
            "events",
            format!(
                "a commit of {n} {what} exceeds the limit of {}",
                limits.max_batch_len
            ),
        )
    };
    if entries.len() > limits.max_batch_len {
        return Err(too_many("entries", entries.len()));
    }
    let mut actors = HashSet::with_capacity(entries.len());
    let mut events = 0usize;
    for entry in entries {
        limits.check_actor_id(entry.actor_id)?;
        if !actors.insert(entry.actor_id) {
            return Err(Error::invalid(
                "entries",
                format!(
                    "actor {:?} has two entries in one commit; put its events in one entry",
                    entry.actor_id
                ),
            ));
        }
        if let ExpectedState::Exact(v) = entry.expected {
            if v < 0 {
                return Err(Error::invalid(
                    "expected",
                    format!("an exact expected version must be 0 or more, not {v}"),
                ));
            }
        }
        events += entry.events.len();
        let automatic = entry.automatic();
        for (i, e) in entry.events.iter().enumerate() {
            if e.actor_id != entry.actor_id {
                return Err(Error::invalid(
                    "actorId",
                    format!(
                        "an entry for actor {:?} holds an event of actor {:?}",
                        entry.actor_id, e.actor_id
                    ),
                ));
            }
            if automatic != (e.version == 0) {
                return Err(Error::invalid(
                    "version",
                    format!(
                        "actor {:?}: version 0 (automatic) mixed with explicit versions in one entry",
                        entry.actor_id
                    ),
                ));
            }
            if !automatic {
                if e.version < 1 {
                    return Err(Error::invalid(
                        "version",
                        format!("explicit versions start at 1, not {}", e.version),
                    ));
                }
                if i > 0 && e.version <= entry.events[i - 1].version {
                    return Err(Error::invalid(
                        "version",
                        format!(
                            "versions in an entry must be strictly increasing; {} follows {}",
                            e.version,
                            entry.events[i - 1].version
                        ),
                    ));
                }
            }
        }
    }
    if events > limits.max_batch_len {
        return Err(too_many("events", events));
    }
    Ok(events)
}

/// Check every entry against its actor's latest version (`latest[i]` for `entries[i]`):
/// every failed condition, not just the first.
pub fn conflicts(entries: &[CommitEntry<'_>], latest: &[i64]) -> Vec<ActorConflict> {
    entries
        .iter()
        .zip(latest)
        .filter_map(|(e, &l)| e.conflict(l))
        .collect()
}

/// The error for failed conditions.
pub fn conflict_error(conflicts: Vec<ActorConflict>) -> Error {
    Error::CommitConflict { conflicts }
}

/// Which contract a write follows: backends run the seed's saves and commits through one
/// write path, and this says which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The seed's `save_event(s)`: one entry, versions as given (0 and below conflict),
    /// a conflict is [`Error::VersionConflict`], no retry detection.
    Seed,
    /// [`EventStore::commit`](crate::EventStore::commit): expected states, automatic
    /// versions, [`Error::CommitConflict`], retry detection.
    Expected,
}

impl Rule {
    /// The version of `entry`'s `i`th event when its actor's latest is `latest`.
    pub fn version_at(self, entry: &CommitEntry<'_>, i: usize, latest: i64) -> i64 {
        match self {
            Rule::Seed => entry.events[i].version,
            Rule::Expected => entry.version_at(i, latest),
        }
    }

    /// The conflict to report when the entries' actors have latest versions `latest`,
    /// `None` when the write may go ahead.
    pub fn conflict(self, entries: &[CommitEntry<'_>], latest: &[i64]) -> Option<Error> {
        match self {
            Rule::Seed => {
                let first = &entries[0].events[0];
                (first.version <= latest[0]).then(|| Error::VersionConflict {
                    actor_id: entries[0].actor_id.to_string(),
                    attempted_version: first.version,
                    current_version: latest[0],
                })
            }
            Rule::Expected => {
                let failed = conflicts(entries, latest);
                (!failed.is_empty()).then(|| conflict_error(failed))
            }
        }
    }

    /// The versions (first, last) each entry with events takes, in entry order.
    pub fn committed_actors(
        self,
        entries: &[CommitEntry<'_>],
        latest: &[i64],
    ) -> Vec<CommittedActor> {
        entries
            .iter()
            .zip(latest)
            .filter(|(e, _)| !e.events.is_empty())
            .map(|(e, &l)| CommittedActor {
                actor_id: e.actor_id.to_string(),
                first_version: self.version_at(e, 0, l),
                last_version: self.version_at(e, e.events.len() - 1, l),
            })
            .collect()
    }
}

/// What a retry check found for one stored event of an entry: its sequence and whether
/// its ID is the one the retried event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredId {
    /// The stored event's version.
    pub version: i64,
    /// The stored event's sequence.
    pub sequence: u64,
    /// Whether the stored event has the retried event's ID.
    pub same_id: bool,
}

/// Decide whether a commit whose conditions failed is a retry of one already stored.
///
/// `lookup(entry, first, last)` returns the actor's stored events with versions
/// `first..=last`, in version order, each compared with the entry's event of that version
/// ([`CommitEntry::retry_event`]; versions may have gaps). The commit is already appended
/// when every entry with events has known retry versions and each of its events is stored
/// under its version with the same ID; condition-only entries do not count. Returns the
/// outcome to report, or `None` (a real conflict).
pub fn already_appended(
    entries: &[CommitEntry<'_>],
    mut lookup: impl FnMut(&CommitEntry<'_>, i64, i64) -> Result<Vec<StoredId>>,
) -> Result<Option<Committed>> {
    let mut first = u64::MAX;
    let mut last = 0;
    let mut actors = Vec::new();
    for entry in entries.iter().filter(|e| !e.events.is_empty()) {
        let Some((v0, vn)) = entry.retry_versions() else {
            return Ok(None);
        };
        let stored = lookup(entry, v0, vn)?;
        // Every event of the entry, at its version, stored with its ID (events the actor
        // has between gapped versions are not the entry's and do not count).
        for i in 0..entry.events.len() {
            let version = entry.version_at(i, v0 - 1);
            match stored.iter().find(|s| s.version == version) {
                Some(s) if s.same_id => {
                    first = first.min(s.sequence);
                    last = last.max(s.sequence);
                }
                _ => return Ok(None),
            }
        }
        actors.push(CommittedActor {
            actor_id: entry.actor_id.to_string(),
            first_version: v0,
            last_version: vn,
        });
    }
    if actors.is_empty() {
        return Ok(None);
    }
    Ok(Some(Committed {
        status: AppendStatus::AlreadyAppended,
        first_sequence: first,
        last_sequence: last,
        actors,
    }))
}

/// Which way a read runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// A bounded read of one actor's events: versions `from..=to`, at most `limit` events,
/// forward or backward. `EventRange::last(1)` is the actor's last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRange {
    /// The lowest version read (inclusive).
    pub from: i64,
    /// The highest version read (inclusive).
    pub to: i64,
    /// The most events returned (`usize::MAX`: no limit).
    pub limit: usize,
    /// Oldest or newest first. A backward read with a limit returns the newest events.
    pub direction: Direction,
}

impl Default for EventRange {
    fn default() -> Self {
        EventRange {
            from: 1,
            to: i64::MAX,
            limit: usize::MAX,
            direction: Direction::Forward,
        }
    }
}

impl EventRange {
    /// Versions `from..=to`, forward, without a limit.
    pub fn new(from: i64, to: i64) -> Self {
        EventRange {
            from,
            to,
            ..EventRange::default()
        }
    }

    /// The newest `n` events, newest first.
    pub fn last(n: usize) -> Self {
        EventRange {
            limit: n,
            direction: Direction::Backward,
            ..EventRange::default()
        }
    }

    /// The same range with at most `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The same range, newest first.
    pub fn backward(mut self) -> Self {
        self.direction = Direction::Backward;
        self
    }

    /// A reversed range (`from > to`) is refused with [`Error::InvalidInput`].
    pub fn check(&self) -> Result<()> {
        if self.from > self.to {
            return Err(Error::invalid(
                "range",
                format!("from version {} is above to version {}", self.from, self.to),
            ));
        }
        Ok(())
    }

    /// Whether `version` lies in the range.
    pub fn contains(&self, version: i64) -> bool {
        (self.from..=self.to).contains(&version)
    }
}

/// Which events a filtered `read_all` returns: those whose event type is one of
/// `event_types` (any type when empty) and whose actor ID starts with `actor_prefix`.
/// Applied inside the store, on the stored bytes, before anything is copied out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Accepted event types; empty accepts every type.
    pub event_types: Vec<String>,
    /// Accepted actor-ID prefix; empty accepts every actor.
    pub actor_prefix: String,
}

impl EventFilter {
    /// A filter on event types.
    pub fn event_types<S: Into<String>>(types: impl IntoIterator<Item = S>) -> Self {
        EventFilter {
            event_types: types.into_iter().map(Into::into).collect(),
            actor_prefix: String::new(),
        }
    }

    /// A filter on an actor-ID prefix.
    pub fn actor_prefix(prefix: impl Into<String>) -> Self {
        EventFilter {
            event_types: Vec::new(),
            actor_prefix: prefix.into(),
        }
    }

    /// Whether this filter accepts everything.
    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty() && self.actor_prefix.is_empty()
    }

    /// Whether a decoded event passes.
    pub fn matches(&self, event: &Event) -> bool {
        event.actor_id.starts_with(&self.actor_prefix)
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
    }

    /// The filter compiled for stored JSON.
    pub fn raw(&self) -> RawFilter {
        RawFilter {
            types: self
                .event_types
                .iter()
                .map(|t| {
                    let mut quoted = Vec::with_capacity(t.len() + 2);
                    crate::json::to_writer_go(&mut quoted, t).expect("a string encodes");
                    quoted
                })
                .collect(),
            prefix: self.actor_prefix.as_bytes().to_vec(),
        }
    }
}

/// An [`EventFilter`] that tests stored events without decoding them: the actor ID as
/// stored beside the JSON, the event type as the JSON's second field, compared in its
/// encoded (quoted, escaped) form.
#[derive(Debug, Clone, Default)]
pub struct RawFilter {
    types: Vec<Vec<u8>>,
    prefix: Vec<u8>,
}

impl RawFilter {
    /// Whether the event stored as `json` (of actor `actor_id`) passes; `None` when only
    /// decoding can tell (JSON without the stored layout, under a filter on types).
    pub fn decide(&self, actor_id: &[u8], json: &[u8]) -> Option<bool> {
        if !self.prefix.is_empty() && !actor_id.starts_with(&self.prefix) {
            return Some(false);
        }
        if self.types.is_empty() {
            return Some(true);
        }
        stored_event_type(json).map(|t| self.types.iter().any(|w| same_bytes(w, t)))
    }

    /// [`RawFilter::decide`], letting undecided events pass (to be decoded and checked,
    /// or reported if they do not decode).
    pub fn matches(&self, actor_id: &[u8], json: &[u8]) -> bool {
        self.decide(actor_id, json).unwrap_or(true)
    }
}

/// The quoted, still-escaped `eventType` of an event stored in the layout this crate
/// writes: `{"id":"…","eventType":"…",…`. `None` when the JSON has another layout.
pub fn stored_event_type(json: &[u8]) -> Option<&[u8]> {
    let rest = after(json, b"{\"id\":")?;
    let id_len = quoted_len(rest)?;
    let rest = after(&rest[id_len..], b",\"eventType\":")?;
    let len = quoted_len(rest)?;
    Some(&rest[..len])
}

/// The quoted, still-escaped `id` of an event stored in this crate's layout.
pub fn stored_event_id(json: &[u8]) -> Option<&[u8]> {
    let rest = after(json, b"{\"id\":")?;
    Some(&rest[..quoted_len(rest)?])
}

/// `b` after the constant `prefix`, compared inline: a per-event test on the read path,
/// where a `memcmp` call per short compare dominated a filtered scan's profile.
#[inline]
fn after<'a, const N: usize>(b: &'a [u8], prefix: &[u8; N]) -> Option<&'a [u8]> {
    let head: &[u8; N] = b.get(..N)?.try_into().ok()?;
    (head == prefix).then(|| &b[N..])
}

/// Byte equality of two short slices without a library call.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `s`'s encoding as a JSON string, as the stored layout has it (quotes included).
pub fn quoted(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    crate::json::to_writer_go(&mut out, s).expect("a string encodes");
    out
}

/// The length of the JSON string at the start of `b`, quotes included.
fn quoted_len(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some(i + 1);
        }
        i += 2; // an escape: skip the backslash and the character it escapes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(actor: &str, version: i64) -> Event {
        Event::new(format!("{actor}-{version}"), "T", actor, version)
    }

    #[test]
    fn expectations() {
        use ExpectedState::*;
        for (state, latest, holds) in [
            (Increasing, 0, true),
            (Any, 9, true),
            (NoStream, 0, true),
            (NoStream, 1, false),
            (StreamExists, 0, false),
            (StreamExists, 3, true),
            (Exact(3), 3, true),
            (Exact(3), 4, false),
            (Exact(0), 0, true),
        ] {
            assert_eq!(state.holds(latest), holds, "{state:?} at {latest}");
        }
    }

    #[test]
    fn explicit_versions_must_pass_the_latest_whatever_the_mode() {
        let events = [ev("a", 3)];
        for mode in [
            ExpectedState::Any,
            ExpectedState::Exact(3),
            ExpectedState::StreamExists,
        ] {
            let c = CommitEntry::new("a", mode, &events).conflict(3).unwrap();
            assert_eq!((c.attempted_version, c.current_version), (3, 3));
        }
        assert!(CommitEntry::new("a", ExpectedState::Exact(2), &events)
            .conflict(2)
            .is_none());
    }

    #[test]
    fn automatic_versions_follow_the_latest() {
        let events = [ev("a", 0), ev("a", 0)];
        let e = CommitEntry::new("a", ExpectedState::Any, &events);
        assert_eq!(e.versions(7), Some((8, 9)));
        assert_eq!(e.retry_versions(), None);
        let e = CommitEntry::new("a", ExpectedState::Exact(4), &events);
        assert_eq!(e.retry_versions(), Some((5, 6)));
        assert!(e.conflict(4).is_none());
        assert!(e.conflict(5).is_some());
    }

    #[test]
    fn bad_commits_are_refused_naming_the_problem() {
        let l = Limits::default();
        let a1 = [ev("a", 1)];
        let mixed = [ev("a", 0), ev("a", 2)];
        let other = [ev("b", 1)];
        let zero_then = [ev("a", 2), ev("a", 0)];
        let down = [ev("a", 2), ev("a", 2)];
        let negative = [ev("a", -1)];
        let cases: Vec<(Vec<CommitEntry>, &str)> = vec![
            (vec![], "at least one entry"),
            (
                vec![
                    CommitEntry::new("a", ExpectedState::Any, &a1),
                    CommitEntry::condition("a", ExpectedState::Any),
                ],
                "two entries",
            ),
            (
                vec![CommitEntry::new("a", ExpectedState::Any, &mixed)],
                "mixed",
            ),
            (
                vec![CommitEntry::new("a", ExpectedState::Any, &zero_then)],
                "mixed",
            ),
            (
                vec![CommitEntry::new("a", ExpectedState::Any, &other)],
                "holds an event of actor",
            ),
            (
                vec![CommitEntry::new("a", ExpectedState::Any, &down)],
                "strictly increasing",
            ),
            (
                vec![CommitEntry::new("a", ExpectedState::Any, &negative)],
                "start at 1",
            ),
            (
                vec![CommitEntry::condition("", ExpectedState::Any)],
                "must not be empty",
            ),
            (
                vec![CommitEntry::condition("a", ExpectedState::Exact(-2))],
                "0 or more",
            ),
        ];
        for (entries, needle) in cases {
            match check_commit(&l, &entries) {
                Err(Error::InvalidInput { reason, .. }) => {
                    assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
                }
                other => panic!("{entries:?}: expected InvalidInput, got {other:?}"),
            }
        }
        let limits = Limits {
            max_batch_len: 2,
            ..Limits::default()
        };
        let three = [ev("a", 1), ev("a", 2)];
        let one = [ev("b", 1)];
        let e = [
            CommitEntry::new("a", ExpectedState::Any, &three),
            CommitEntry::new("b", ExpectedState::Any, &one),
        ];
        assert!(check_commit(&limits, &e).is_err());
        assert_eq!(check_commit(&limits, &e[..1]).unwrap(), 2);
    }

    #[test]
    fn stored_layout_fields_are_found_without_decoding() {
        let mut e = Event::new("id \"q\"", "Type<1>", "a", 1);
        e.command_id = "c".into();
        let json = e.to_json();
        assert_eq!(stored_event_id(&json).unwrap(), quoted("id \"q\""));
        assert_eq!(stored_event_type(&json).unwrap(), quoted("Type<1>"));
        let f = EventFilter::event_types(["Type<1>"]).raw();
        assert!(f.matches(b"a", &json));
        assert!(!EventFilter::event_types(["Type"])
            .raw()
            .matches(b"a", &json));
        assert!(!EventFilter::actor_prefix("b").raw().matches(b"a", &json));
        assert!(EventFilter::default().raw().matches(b"a", b"not json"));
        assert!(stored_event_type(b"{\"id\":\"x").is_none());
    }

    #[test]
    fn ranges() {
        assert!(EventRange::new(5, 4).check().is_err());
        assert!(EventRange::new(4, 4).check().is_ok());
        let last = EventRange::last(1);
        assert_eq!((last.limit, last.direction), (1, Direction::Backward));
    }
}
