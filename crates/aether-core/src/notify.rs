//! `EventStored` delivery (event bus namespaces and the store's own channel) and metrics.
//!
//! Delivery never blocks a save: every channel is bounded and a full channel drops the
//! notification and counts it. Because `EventStored` carries the event's sequence, a
//! consumer that sees a gap catches up with `read_all`.
//!
//! The store's own channel is bounded by a count, not by preallocated slots: crossbeam's
//! `bounded(n)` allocates all `n` slots at creation (the default 65,536 cost about 6 MB
//! per store, 16M slots 1.4 GB), whereas its unbounded channel allocates blocks of slots
//! as messages arrive and frees them as they are drained.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::error::{Error, Result};
use crate::event::{Event, EventStored};

/// The namespace store notifications are published to, as in the Go original.
pub const INTERNAL_NAMESPACE: &str = "__internal__";

/// Default capacity of a bounded notification channel.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 65_536;

/// Largest accepted notification channel capacity (16,777,216): a ceiling on the memory
/// a consumer that never drains can make a store hold (about 90 bytes per notification
/// plus its IDs), far above any useful backlog (`read_all` catches up from a gap).
pub const MAX_CHANNEL_CAPACITY: usize = 1 << 24;

/// Check a notification channel capacity: 1 to [`MAX_CHANNEL_CAPACITY`].
/// `field` names the option in the error ([`Error::InvalidInput`]).
pub fn check_channel_capacity(field: &'static str, capacity: usize) -> Result<()> {
    if (1..=MAX_CHANNEL_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("is {capacity}; it must be between 1 and {MAX_CHANNEL_CAPACITY}"),
        ))
    }
}

/// What travels on the bus.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BusMessage {
    /// An application event published by user code.
    Event(Arc<Event>),
    /// A store notification (published to [`INTERNAL_NAMESPACE`]).
    EventStored(EventStored),
}

/// A publish/subscribe bus with named namespaces, on bounded crossbeam channels.
/// Cheap to share: wrap it in an `Arc`.
#[derive(Debug, Default)]
pub struct EventBus {
    namespaces: RwLock<HashMap<String, Vec<Sender<BusMessage>>>>,
    dropped: AtomicU64,
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> EventBus {
        EventBus::default()
    }

    /// Subscribe to `namespace` with a channel of [`DEFAULT_CHANNEL_CAPACITY`].
    pub fn subscribe(&self, namespace: &str) -> Receiver<BusMessage> {
        self.subscribe_with_capacity(namespace, DEFAULT_CHANNEL_CAPACITY)
    }

    /// Subscribe to `namespace`; messages beyond `capacity` unread ones are dropped (counted).
    /// Dropping the receiver unsubscribes.
    pub fn subscribe_with_capacity(
        &self,
        namespace: &str,
        capacity: usize,
    ) -> Receiver<BusMessage> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        self.namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(namespace.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// Deliver `message` to every subscriber of `namespace`; returns how many received it.
    pub fn publish(&self, namespace: &str, message: BusMessage) -> usize {
        let mut delivered = 0;
        let mut disconnected = Vec::new();
        {
            let map = self.namespaces.read().unwrap_or_else(|p| p.into_inner());
            let Some(subs) = map.get(namespace) else {
                return 0;
            };
            for tx in subs {
                match tx.try_send(message.clone()) {
                    Ok(()) => delivered += 1,
                    Err(TrySendError::Full(_)) => {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => disconnected.push(tx.clone()),
                }
            }
        }
        if !disconnected.is_empty() {
            let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
            if let Some(subs) = map.get_mut(namespace) {
                subs.retain(|tx| !disconnected.iter().any(|d| d.same_channel(tx)));
            }
        }
        delivered
    }

    /// Messages dropped because a subscriber's channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Store counters: cheap relaxed atomics, shareable between stores with `with_metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    events_saved: AtomicU64,
    version_conflicts: AtomicU64,
    event_stored_published: AtomicU64,
    event_stored_dropped: AtomicU64,
    snapshots_saved: AtomicU64,
    replay_errors: AtomicU64,
    syncs: AtomicU64,
    synced_commits: AtomicU64,
}

/// A point-in-time copy of every counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Events stored (each event of a batch counts).
    pub events_saved: u64,
    /// Saves rejected with a version conflict.
    pub version_conflicts: u64,
    /// EventStored notifications published (one per stored event).
    pub event_stored_published: u64,
    /// Notifications the store's own channel dropped because nobody drained it in time.
    pub event_stored_dropped: u64,
    /// Snapshots stored.
    pub snapshots_saved: u64,
    /// Malformed records met during replay.
    pub replay_errors: u64,
    /// `fdatasync`s of the log by durable group commits.
    pub syncs: u64,
    /// Save calls (events or snapshots) those syncs made durable: `synced_commits / syncs`
    /// is how many saves share one sync.
    pub synced_commits: u64,
}

impl Metrics {
    /// New zeroed counters.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Read all counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            events_saved: r(&self.events_saved),
            version_conflicts: r(&self.version_conflicts),
            event_stored_published: r(&self.event_stored_published),
            event_stored_dropped: r(&self.event_stored_dropped),
            snapshots_saved: r(&self.snapshots_saved),
            replay_errors: r(&self.replay_errors),
            syncs: r(&self.syncs),
            synced_commits: r(&self.synced_commits),
        }
    }

    // Public so backends in other crates (aether-jetstream) count into shared metrics.

    /// Count `n` stored events (each event of a batch counts).
    pub fn add_events_saved(&self, n: u64) {
        self.events_saved.fetch_add(n, Ordering::Relaxed);
    }
    /// Count one save rejected with a version conflict.
    pub fn add_conflict(&self) {
        self.version_conflicts.fetch_add(1, Ordering::Relaxed);
    }
    /// Count one stored snapshot.
    pub fn add_snapshot(&self) {
        self.snapshots_saved.fetch_add(1, Ordering::Relaxed);
    }
    /// Count one group-commit sync that made `commits` save calls durable.
    pub fn add_sync(&self, commits: u64) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.synced_commits.fetch_add(commits, Ordering::Relaxed);
    }
    /// Count `n` malformed records met during replay.
    pub fn add_replay_errors(&self, n: u64) {
        self.replay_errors.fetch_add(n, Ordering::Relaxed);
    }
}

/// The delivery side shared by every backend: the store channel that `poll_event_stored`
/// drains, the optional bus, and the metrics.
#[derive(Debug)]
pub struct Notifier {
    /// Unbounded, so memory follows the backlog; `capacity` bounds it (see `publish`).
    tx: Sender<EventStored>,
    rx: Receiver<EventStored>,
    capacity: usize,
    /// Makes "check the backlog, then send" one step, so concurrent publishers never
    /// push the backlog past `capacity`. Uncontended when callers publish in commit
    /// order, as they do.
    send: Mutex<()>,
    bus: Option<Arc<EventBus>>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// A notifier whose store channel holds up to `capacity` undrained notifications
    /// (at least 1). Memory is taken as notifications wait, not up front, so any
    /// capacity is safe here; stores refuse one above [`MAX_CHANNEL_CAPACITY`] with
    /// [`check_channel_capacity`].
    pub fn new(capacity: usize) -> Notifier {
        let (tx, rx) = crossbeam_channel::unbounded();
        Notifier {
            tx,
            rx,
            capacity: capacity.max(1),
            send: Mutex::new(()),
            bus: None,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Attach a bus; notifications also go to its `__internal__` namespace.
    pub fn set_event_bus(&mut self, bus: Arc<EventBus>) {
        self.bus = Some(bus);
    }

    /// Use shared counters.
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = metrics;
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A receiver of the store channel (receivers are cloneable; each message goes to one).
    pub fn receiver(&self) -> Receiver<EventStored> {
        self.rx.clone()
    }

    /// Deliver one notification. Callers publish in commit order.
    pub fn publish(&self, stored: EventStored) {
        let m = &self.metrics;
        m.event_stored_published.fetch_add(1, Ordering::Relaxed);
        if let Some(bus) = &self.bus {
            // The bus counts its own per-subscriber drops (`EventBus::dropped`).
            bus.publish(INTERNAL_NAMESPACE, BusMessage::EventStored(stored.clone()));
        }
        // Receivers only shrink the backlog, so under the lock `len()` can only be an
        // overestimate: the capacity is never exceeded.
        let _send = self.send.lock().unwrap_or_else(|p| p.into_inner());
        let sent = self.tx.len() < self.capacity && self.tx.try_send(stored).is_ok();
        if !sent {
            m.event_stored_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    fn stored(seq: u64) -> EventStored {
        EventStored {
            event_id: format!("e{seq}"),
            actor_id: "a".into(),
            version: seq as i64,
            timestamp: Timestamp::from_unix_nanos(seq as i128),
            sequence: seq,
        }
    }

    #[test]
    fn bus_delivers_per_namespace_and_drops_when_full() {
        let bus = EventBus::new();
        let a = bus.subscribe_with_capacity("a", 1);
        let b = bus.subscribe("b");
        assert_eq!(bus.publish("a", BusMessage::EventStored(stored(1))), 1);
        assert_eq!(bus.publish("a", BusMessage::EventStored(stored(2))), 0);
        assert_eq!(bus.dropped(), 1);
        assert_eq!(a.try_recv().unwrap(), BusMessage::EventStored(stored(1)));
        assert!(b.try_recv().is_err());
        drop(a);
        assert_eq!(bus.publish("a", BusMessage::EventStored(stored(3))), 0);
        assert_eq!(bus.publish("nobody", BusMessage::EventStored(stored(3))), 0);
    }

    #[test]
    fn notifier_counts_published_and_dropped() {
        let n = Notifier::new(2);
        for s in 1..=3 {
            n.publish(stored(s));
        }
        let m = n.metrics().snapshot();
        assert_eq!((m.event_stored_published, m.event_stored_dropped), (3, 1));
        assert_eq!(n.receiver().try_recv().unwrap().sequence, 1);
        // Draining makes room again: the capacity bounds the backlog, not the total.
        n.publish(stored(4));
        let got: Vec<u64> = n.receiver().try_iter().map(|s| s.sequence).collect();
        assert_eq!(got, [2, 4]);
        assert_eq!(n.metrics().snapshot().event_stored_dropped, 1);
    }

    #[test]
    fn huge_capacities_cost_nothing_up_front() {
        // A preallocating channel of this size needs hundreds of GB and aborts.
        let n = Notifier::new(usize::MAX);
        n.publish(stored(1));
        assert_eq!(n.receiver().try_recv().unwrap().sequence, 1);
        let n = Notifier::new(1 << 40);
        assert!(n.receiver().try_recv().is_err());
    }

    #[test]
    fn channel_capacity_range() {
        assert!(check_channel_capacity("c", 1).is_ok());
        assert!(check_channel_capacity("c", MAX_CHANNEL_CAPACITY).is_ok());
        for bad in [0, MAX_CHANNEL_CAPACITY + 1, 1 << 32, usize::MAX] {
            let e = check_channel_capacity("event_stored_capacity", bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidInput {
                        field: "event_stored_capacity",
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("between 1 and 16777216"), "{e}");
        }
    }
}
