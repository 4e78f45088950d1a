//! The store contract every backend implements (memory, sled, and networked ones).
//!
//! The traits are object-safe and `Send + Sync`, so a store can live behind
//! `Arc<dyn SnapshotStore>`. Every method may fail with [`Error::Timeout`] or
//! [`Error::Unavailable`] on a networked backend; embedded backends never return those.

use std::time::Duration;

use crossbeam_channel::Receiver;

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
        let events = self.get_events(actor_id, from_version)?;
        let mut out = Vec::with_capacity(events.len() * 256 + 2);
        out.push(b'[');
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            e.write_json(&mut out);
        }
        out.push(b']');
        Ok(out)
    }

    /// The actor's latest version, 0 for an unknown actor.
    fn get_latest_version(&self, actor_id: &str) -> Result<i64>;

    /// Up to `limit` events with `sequence >= from_sequence`, in sequence order.
    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>>;

    /// Up to `limit` events with `sequence >= from_sequence`, in sequence order, as one JSON
    /// array of `{"sequence":N,"event":<the event's Go-compatible JSON>}` objects: what the
    /// C ABI and Go read. Backends that store JSON copy it without decoding it.
    fn read_all_sequenced_json(&self, from_sequence: u64, limit: usize) -> Result<Vec<u8>> {
        let events = self.read_all(from_sequence, limit)?;
        let mut json = Vec::with_capacity(events.len() * 300 + 2);
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
        Ok(json)
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

/// Snapshot persistence: the latest snapshot per actor.
pub trait SnapshotStore: EventStore {
    /// Store `snapshot` as the actor's latest. A snapshot with a lower version than the
    /// stored one is rejected with [`Error::StaleSnapshot`]; an equal version replaces it.
    fn save_snapshot(&self, snapshot: &ActorSnapshot) -> Result<()>;

    /// The actor's latest snapshot, `None` when it has none.
    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>>;
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
