//! The store contract every backend implements (memory, sled, and networked ones).
//!
//! The traits are object-safe and `Send + Sync`, so a store can live behind
//! `Arc<dyn SnapshotStore>`. Every method may fail with [`Error::Timeout`] or
//! [`Error::Unavailable`] on a networked backend; embedded backends never return those.

use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::append::{CommitEntry, Committed, Direction, EventFilter, EventRange, ExpectedState};
use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event, EventStored, ReplayResult, SequencedEvent};
use crate::notify::MetricsSnapshot;

/// Event persistence with per-actor optimistic concurrency.
pub trait EventStore: Send + Sync {
    /// Store `event` if its version is strictly greater than the actor's latest; otherwise
    /// [`Error::VersionConflict`] and nothing is written. Returns the event's sequence.
    /// When this returns `Ok`, the event is as durable as the store's mode promises and its
    /// `EventStored` has been published.
    fn save_event(&self, event: &Event) -> Result<u64>;

    /// Store events of one actor atomically: all or none. Versions must be strictly
    /// increasing and the first greater than the actor's latest; a conflict names the first
    /// event. Returns the sequence of the last event.
    fn save_events(&self, events: &[Event]) -> Result<u64>;

    /// The actor's events with `version >= from_version`, in version order. Empty for an
    /// unknown actor. A record that does not decode is an [`Error::Corrupt`].
    fn get_events(&self, actor_id: &str, from_version: i64) -> Result<Vec<Event>>;

    /// Like `get_events`, but records that do not decode are reported, not fatal.
    fn get_events_with_errors(&self, actor_id: &str, from_version: i64) -> Result<ReplayResult>;

    /// The actor's events with `version >= from_version` as one JSON array, each element
    /// the stored Go-compatible encoding. Backends that store JSON hand it out undecoded.
    fn get_events_json(&self, actor_id: &str, from_version: i64) -> Result<Vec<u8>> {
        Ok(events_json_array(&self.get_events(actor_id, from_version)?))
    }

    /// Append to one actor if `expected` holds: [`EventStore::commit`] with one entry.
    /// Events with version 0 are given the actor's next versions.
    fn append(
        &self,
        actor_id: &str,
        expected: ExpectedState,
        events: &[Event],
    ) -> Result<Committed> {
        self.commit(&[CommitEntry::new(actor_id, expected, events)])
    }

    /// Append to several actors at once, all or nothing: one record, consecutive
    /// sequences in entry order, one `EventStored` per event once it is as durable as the
    /// mode promises.
    ///
    /// - Every entry's condition is checked; if any fails, nothing is written and
    ///   [`Error::CommitConflict`] lists every failed one, unless the commit is a retry
    ///   of one already stored (same actors, versions and event IDs), which succeeds as
    ///   [`AppendStatus::AlreadyAppended`](crate::AppendStatus::AlreadyAppended) with the
    ///   stored sequences. Automatic versions can be recognised as a retry only under
    ///   `NoStream` or `Exact`.
    /// - The same version with another event ID is a conflict.
    /// - Limits: at most `max_batch_len` entries and events, each event at most
    ///   `max_record_len` encoded, `max_batch_bytes` in all. Bad input is
    ///   [`Error::InvalidInput`] (see [`check_commit`](crate::append::check_commit)).
    ///
    /// Backends without atomic multi-actor writes return [`Error::Unsupported`].
    fn commit(&self, entries: &[CommitEntry<'_>]) -> Result<Committed> {
        let _ = entries;
        Err(Error::Unsupported {
            feature: "commit",
            reason: "this backend does not implement appends with expected states".into(),
        })
    }

    /// The actor's events in `range` (versions `from..=to`, at most `limit`, forward or
    /// backward). A reversed range is [`Error::InvalidInput`]; an unknown actor has none.
    fn get_events_range(&self, actor_id: &str, range: &EventRange) -> Result<Vec<Event>> {
        range.check()?;
        let mut events = self.get_events(actor_id, range.from)?;
        events.retain(|e| e.version <= range.to);
        if range.direction == Direction::Backward {
            events.reverse();
        }
        events.truncate(range.limit);
        Ok(events)
    }

    /// [`EventStore::get_events_range`] as one JSON array of the stored encodings.
    fn get_events_range_json(&self, actor_id: &str, range: &EventRange) -> Result<Vec<u8>> {
        Ok(events_json_array(&self.get_events_range(actor_id, range)?))
    }

    /// Up to `limit` events with `sequence >= from_sequence` that pass `filter`, in
    /// sequence order. The filter is applied inside the store.
    fn read_all_filtered(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<SequencedEvent>> {
        let mut out = Vec::new();
        let mut from = from_sequence;
        while out.len() < limit {
            let chunk = self.read_all(from, 4096)?;
            let Some(last) = chunk.last() else {
                break;
            };
            from = last.sequence + 1;
            out.extend(chunk.into_iter().filter(|e| filter.matches(&e.event)));
        }
        out.truncate(limit);
        Ok(out)
    }

    /// [`EventStore::read_all_filtered`] in the layout of
    /// [`EventStore::read_all_sequenced_json`].
    fn read_all_filtered_json(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<u8>> {
        Ok(sequenced_json_array(&self.read_all_filtered(
            from_sequence,
            limit,
            filter,
        )?))
    }

    /// The actor's latest version, 0 for an unknown actor.
    fn get_latest_version(&self, actor_id: &str) -> Result<i64>;

    /// Up to `limit` events with `sequence >= from_sequence`, in sequence order.
    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>>;

    /// Up to `limit` events with `sequence >= from_sequence`, in sequence order, as one JSON
    /// array of `{"sequence":N,"event":<the event's Go-compatible JSON>}` objects: what the
    /// C ABI and Go read. Backends that store JSON copy it without decoding it.
    fn read_all_sequenced_json(&self, from_sequence: u64, limit: usize) -> Result<Vec<u8>> {
        Ok(sequenced_json_array(&self.read_all(from_sequence, limit)?))
    }

    /// The sequence of the last stored event (0 when empty).
    fn last_sequence(&self) -> Result<u64>;

    /// Make everything saved so far durable (in every mode).
    fn flush(&self) -> Result<()>;

    /// Make everything durable and stop accepting writes: later saves fail with
    /// [`Error::Closed`]; reads keep working until the store is dropped, which releases
    /// its files. Idempotent.
    fn close(&self) -> Result<()>;

    /// A receiver of this store's `EventStored` channel. Receivers share one queue: each
    /// notification goes to exactly one of them.
    fn event_stored_receiver(&self) -> Receiver<EventStored>;

    /// Wait up to `timeout` for the next `EventStored`; `None` when none arrived.
    fn poll_event_stored(&self, timeout: Duration) -> Option<EventStored> {
        let rx = self.event_stored_receiver();
        if timeout.is_zero() {
            return rx.try_recv().ok();
        }
        // A timeout and a disconnected channel both mean "nothing arrived".
        rx.recv_timeout(timeout).ok()
    }

    /// The store's counters.
    fn metrics(&self) -> MetricsSnapshot;
}

/// Snapshot persistence: the newest snapshots per actor, by version.
///
/// Each backend keeps the newest N snapshots of each actor (its snapshot retention,
/// [`DEFAULT_SNAPSHOT_RETENTION`] unless configured) and drops older ones as newer ones
/// are saved.
pub trait SnapshotStore: EventStore {
    /// Store `snapshot`. A snapshot with a lower version than the actor's newest is
    /// rejected with [`Error::StaleSnapshot`] and nothing is written, on every backend: the
    /// history only grows at its top. An equal version replaces the newest.
    fn save_snapshot(&self, snapshot: &ActorSnapshot) -> Result<()>;

    /// The actor's latest snapshot, `None` when it has none.
    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>>;

    /// The actor's newest kept snapshot with `version <= at_or_below`; `None` when none is
    /// kept (never taken, or dropped by retention).
    fn get_snapshot(&self, actor_id: &str, at_or_below: i64) -> Result<Option<ActorSnapshot>> {
        let _ = (actor_id, at_or_below);
        Err(Error::Unsupported {
            feature: "snapshot history",
            reason: "this backend keeps only the latest snapshot".into(),
        })
    }
}

/// How many snapshots per actor a store keeps unless configured otherwise.
pub const DEFAULT_SNAPSHOT_RETENTION: u32 = 3;

/// `events` as one JSON array of their Go-compatible encodings.
pub fn events_json_array(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * 300 + 2);
    out.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        e.write_json(&mut out);
    }
    out.push(b']');
    out
}

/// `events` in the layout of [`EventStore::read_all_sequenced_json`].
pub fn sequenced_json_array(events: &[SequencedEvent]) -> Vec<u8> {
    let mut json = Vec::with_capacity(events.len() * 330 + 2);
    json.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        push_sequenced_prefix(&mut json, e.sequence);
        e.event.write_json(&mut json);
        json.push(b'}');
    }
    json.push(b']');
    json
}

/// Size limits enforced before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest actor ID, in bytes.
    pub max_actor_id_len: usize,
    /// Largest encoded event or snapshot, in bytes. The default, 1 MiB, is NATS JetStream's
    /// default maximum payload, so a stream of events stays portable to that backend.
    pub max_record_len: usize,
    /// Most events in one `save_events` call.
    pub max_batch_len: usize,
    /// Largest total encoded size of one `save_events` call, in bytes.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_actor_id_len: 4096,
            max_record_len: 1 << 20,
            max_batch_len: 10_000,
            max_batch_bytes: 64 << 20,
        }
    }
}

impl Limits {
    // Public so backends in other crates apply the same checks with the same messages.

    /// An actor ID must be non-empty and at most `max_actor_id_len` bytes.
    pub fn check_actor_id(&self, actor_id: &str) -> Result<()> {
        if actor_id.is_empty() {
            return Err(Error::invalid("actorId", "must not be empty"));
        }
        if actor_id.len() > self.max_actor_id_len {
            return Err(Error::invalid(
                "actorId",
                format!(
                    "is {} bytes, longer than the limit of {} bytes",
                    actor_id.len(),
                    self.max_actor_id_len
                ),
            ));
        }
        Ok(())
    }

    /// An encoded event or snapshot (`what`) must be at most `max_record_len` bytes.
    pub fn check_record_len(&self, what: &'static str, len: usize) -> Result<()> {
        if len > self.max_record_len {
            return Err(Error::invalid(
                what,
                format!(
                    "encodes to {len} bytes, larger than the limit of {} bytes",
                    self.max_record_len
                ),
            ));
        }
        Ok(())
    }

    /// A batch must encode to at most `max_batch_bytes` bytes in total.
    pub fn check_batch_bytes(&self, total: usize) -> Result<()> {
        if total > self.max_batch_bytes {
            return Err(Error::invalid(
                "events",
                format!(
                    "batch encodes to {total} bytes, larger than the limit of {} bytes",
                    self.max_batch_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Check a batch's shape: non-empty, one actor, strictly increasing versions.
    pub fn check_batch(&self, events: &[Event]) -> Result<()> {
        let Some(first) = events.first() else {
            return Err(Error::invalid("events", "batch is empty"));
        };
        if events.len() > self.max_batch_len {
            return Err(Error::invalid(
                "events",
                format!(
                    "batch of {} events exceeds the limit of {}",
                    events.len(),
                    self.max_batch_len
                ),
            ));
        }
        self.check_actor_id(&first.actor_id)?;
        for pair in events.windows(2) {
            if pair[1].actor_id != first.actor_id {
                return Err(Error::invalid(
                    "actorId",
                    format!(
                        "a batch holds one actor's events; found {:?} after {:?}",
                        pair[1].actor_id, first.actor_id
                    ),
                ));
            }
            if pair[1].version <= pair[0].version {
                return Err(Error::invalid(
                    "version",
                    format!(
                        "versions in a batch must be strictly increasing; {} follows {}",
                        pair[1].version, pair[0].version
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `{"sequence":N,"event":` — the start of one element of
/// [`EventStore::read_all_sequenced_json`].
pub fn push_sequenced_prefix(out: &mut Vec<u8>, sequence: u64) {
    out.extend_from_slice(b"{\"sequence\":");
    let mut digits = [0u8; 20];
    let mut n = sequence;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b",\"event\":");
}
