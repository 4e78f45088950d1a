//! `MemoryStore`: the Go original's in-memory store, with the same contract as the sled
//! backend (sequence, batches, limits, notifications). Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crossbeam_channel::Receiver;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event, EventStored, ReplayResult, SequencedEvent};
use crate::notify::{
    check_channel_capacity, EventBus, Metrics, MetricsSnapshot, Notifier, DEFAULT_CHANNEL_CAPACITY,
};
use crate::store::{EventStore, Limits, SnapshotStore};
use crate::timestamp::Timestamp;

struct Stored {
    event: Event,
    json: Box<[u8]>,
}

#[derive(Default)]
struct State {
    /// Every event in commit order; index = sequence - 1.
    log: Vec<Arc<Stored>>,
    /// Per actor: (version, sequence) in version order.
    actors: HashMap<String, Vec<(i64, u64)>>,
    snapshots: HashMap<String, ActorSnapshot>,
    closed: bool,
}

impl State {
    fn latest(&self, actor_id: &str) -> i64 {
        self.actors
            .get(actor_id)
            .and_then(|v| v.last())
            .map_or(0, |&(version, _)| version)
    }

    fn actor_range(&self, actor_id: &str, from_version: i64) -> Vec<Arc<Stored>> {
        let Some(stream) = self.actors.get(actor_id) else {
            return Vec::new();
        };
        let start = stream.partition_point(|&(v, _)| v < from_version);
        stream[start..]
            .iter()
            .map(|&(_, seq)| self.log[seq as usize - 1].clone())
            .collect()
    }
}

/// The event as it reads back from its JSON, which is what every persistent backend
/// returns: a float with an integral value (`2.0`) is written as Go writes it (`2`) and
/// reads back as an integer. Decoding only when such a float is present keeps saves cheap.
fn canonical(event: &Event, json: &[u8]) -> Event {
    fn integral_float(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.as_f64().is_some_and(|f| n.is_f64() && f.fract() == 0.0),
            Value::Array(items) => items.iter().any(integral_float),
            Value::Object(map) => map.values().any(integral_float),
            _ => false,
        }
    }
    let has = event
        .data
        .as_ref()
        .is_some_and(|d| d.values().any(integral_float));
    match has.then(|| Event::from_json(json)) {
        Some(Ok(decoded)) => decoded,
        _ => event.clone(),
    }
}

/// An in-memory event and snapshot store. Thread-safe; share it with `Arc`.
pub struct MemoryStore {
    state: RwLock<State>,
    notifier: Notifier,
    limits: Limits,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store with default limits and EventStored channel capacity.
    pub fn new() -> MemoryStore {
        MemoryStore::unchecked(DEFAULT_CHANNEL_CAPACITY)
    }

    /// An empty store whose EventStored channel holds up to `capacity` undrained
    /// notifications (memory is taken as they wait, not up front).
    ///
    /// A capacity outside 1 to [`MAX_CHANNEL_CAPACITY`](crate::notify::MAX_CHANNEL_CAPACITY) (16,777,216) is refused with
    /// [`Error::InvalidInput`] naming `event_stored_capacity`.
    pub fn with_capacity(capacity: usize) -> Result<MemoryStore> {
        check_channel_capacity("event_stored_capacity", capacity)?;
        Ok(MemoryStore::unchecked(capacity))
    }

    fn unchecked(capacity: usize) -> MemoryStore {
        MemoryStore {
            state: RwLock::new(State::default()),
            notifier: Notifier::new(capacity),
            limits: Limits::default(),
        }
    }

    /// Also publish EventStored to `bus`'s `__internal__` namespace.
    pub fn with_event_bus(mut self, bus: Arc<EventBus>) -> Self {
        self.notifier.set_event_bus(bus);
        self
    }

    /// Count into shared `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.notifier.set_metrics(metrics);
        self
    }

    /// Use other size limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, events: &[Event]) -> Result<u64> {
        self.limits.check_batch(events)?;
        let encoded = events
            .iter()
            .map(|e| {
                let json = e.to_json();
                self.limits.check_record_len("event", json.len())?;
                Ok(json.into_boxed_slice())
            })
            .collect::<Result<Vec<_>>>()?;
        self.limits
            .check_batch_bytes(encoded.iter().map(|j| j.len()).sum())?;
        let actor_id = &events[0].actor_id;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            return Err(Error::Closed("the store was closed".into()));
        }
        let current = state.latest(actor_id);
        if events[0].version <= current {
            self.notifier.metrics().add_conflict();
            return Err(Error::VersionConflict {
                actor_id: actor_id.clone(),
                attempted_version: events[0].version,
                current_version: current,
            });
        }
        let now = Timestamp::now();
        let mut seq = state.log.len() as u64;
        for (event, json) in events.iter().zip(encoded) {
            seq += 1;
            state.log.push(Arc::new(Stored {
                event: canonical(event, &json),
                json,
            }));
            state
                .actors
                .entry(actor_id.clone())
                .or_default()
                .push((event.version, seq));
        }
        self.notifier
            .metrics()
            .add_events_saved(events.len() as u64);
        // Published under the lock, so notifications leave in commit order.
        let first = seq + 1 - events.len() as u64;
        for (i, event) in events.iter().enumerate() {
            self.notifier.publish(EventStored {
                event_id: event.id.clone(),
                actor_id: actor_id.clone(),
                version: event.version,
                timestamp: now,
                sequence: first + i as u64,
            });
        }
        Ok(seq)
    }
}

impl EventStore for MemoryStore {
    fn save_event(&self, event: &Event) -> Result<u64> {
        self.append(std::slice::from_ref(event))
    }

    fn save_events(&self, events: &[Event]) -> Result<u64> {
        self.append(events)
    }

    fn get_events(&self, actor_id: &str, from_version: i64) -> Result<Vec<Event>> {
        let stored = self.read().actor_range(actor_id, from_version);
        Ok(stored.iter().map(|s| s.event.clone()).collect())
    }

    fn get_events_with_errors(&self, actor_id: &str, from_version: i64) -> Result<ReplayResult> {
        // Events are kept decoded: nothing here can be malformed.
        Ok(ReplayResult {
            events: self.get_events(actor_id, from_version)?,
            errors: Vec::new(),
        })
    }

    fn get_events_json(&self, actor_id: &str, from_version: i64) -> Result<Vec<u8>> {
        let stored = self.read().actor_range(actor_id, from_version);
        let len = stored.iter().map(|s| s.json.len() + 1).sum::<usize>() + 2;
        let mut out = Vec::with_capacity(len);
        out.push(b'[');
        for (i, s) in stored.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&s.json);
        }
        out.push(b']');
        Ok(out)
    }

    fn get_latest_version(&self, actor_id: &str) -> Result<i64> {
        Ok(self.read().latest(actor_id))
    }

    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>> {
        let state = self.read();
        let start = from_sequence.max(1) as usize - 1;
        Ok(state
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(i, s)| SequencedEvent {
                sequence: i as u64 + 1,
                event: s.event.clone(),
            })
            .collect())
    }

    fn last_sequence(&self) -> Result<u64> {
        Ok(self.read().log.len() as u64)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn close(&self) -> Result<()> {
        self.state.write().unwrap_or_else(|p| p.into_inner()).closed = true;
        Ok(())
    }

    fn event_stored_receiver(&self) -> Receiver<EventStored> {
        self.notifier.receiver()
    }

    fn metrics(&self) -> MetricsSnapshot {
        self.notifier.metrics().snapshot()
    }
}

impl SnapshotStore for MemoryStore {
    fn save_snapshot(&self, snapshot: &ActorSnapshot) -> Result<()> {
        self.limits.check_actor_id(&snapshot.actor_id)?;
        let json = snapshot.to_json();
        self.limits.check_record_len("snapshot", json.len())?;
        // Kept as its JSON decodes, which is what the persistent backends read back: a
        // float with an integral value (`2.0`) is written as `2` and returns an integer.
        let canonical =
            serde_json::from_slice::<ActorSnapshot>(&json).unwrap_or_else(|_| snapshot.clone());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            return Err(Error::Closed("the store was closed".into()));
        }
        if let Some(existing) = state.snapshots.get(&snapshot.actor_id) {
            if snapshot.version < existing.version {
                return Err(Error::StaleSnapshot {
                    actor_id: snapshot.actor_id.clone(),
                    attempted_version: snapshot.version,
                    current_version: existing.version,
                });
            }
        }
        state.snapshots.insert(snapshot.actor_id.clone(), canonical);
        self.notifier.metrics().add_snapshot();
        Ok(())
    }

    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>> {
        Ok(self.read().snapshots.get(actor_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::MAX_CHANNEL_CAPACITY;

    #[test]
    fn capacity_out_of_range_is_invalid_input_not_an_abort() {
        // 1 << 32 used to preallocate ~370 GB and abort the process.
        for cap in [0, MAX_CHANNEL_CAPACITY + 1, 1 << 32, usize::MAX] {
            match MemoryStore::with_capacity(cap) {
                Err(Error::InvalidInput {
                    field: "event_stored_capacity",
                    reason,
                }) => assert!(reason.contains("between 1 and 16777216"), "{reason}"),
                other => panic!("capacity {cap}: expected InvalidInput, got {other:?}"),
            }
        }
        MemoryStore::with_capacity(1).unwrap();
        MemoryStore::with_capacity(MAX_CHANNEL_CAPACITY).unwrap();
    }
}
