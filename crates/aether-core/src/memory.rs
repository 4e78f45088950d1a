//! `MemoryStore`: the Go original's in-memory store, with the same contract as the sled
//! backend (sequence, batches, limits, notifications). Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crossbeam_channel::Receiver;
use serde_json::Value;

use crate::append::{
    already_appended, check_commit, AppendStatus, CommitEntry, Committed, Direction, EventFilter,
    EventRange, ExpectedState, Rule, StoredId,
};
use crate::error::{Error, Result};
use crate::event::{ActorSnapshot, Event, EventStored, ReplayResult, SequencedEvent};
use crate::notify::{
    check_channel_capacity, EventBus, Metrics, MetricsSnapshot, Notifier, DEFAULT_CHANNEL_CAPACITY,
};
use crate::store::{
    sequenced_json_array, EventStore, Limits, SnapshotStore, DEFAULT_SNAPSHOT_RETENTION,
};
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
    /// Per actor, the newest snapshots by version (at most `retention`).
    snapshots: HashMap<String, BTreeMap<i64, ActorSnapshot>>,
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
        self.actor_bounded(actor_id, &EventRange::new(from_version, i64::MAX))
    }

    /// The actor's events in `range`, in the range's direction, at most its limit.
    fn actor_bounded(&self, actor_id: &str, range: &EventRange) -> Vec<Arc<Stored>> {
        let Some(stream) = self.actors.get(actor_id) else {
            return Vec::new();
        };
        let start = stream.partition_point(|&(v, _)| v < range.from);
        let end = stream.partition_point(|&(v, _)| v <= range.to);
        let slice = &stream[start..end.max(start)];
        let pick = |&(_, seq): &(i64, u64)| self.log[seq as usize - 1].clone();
        match range.direction {
            Direction::Forward => slice.iter().take(range.limit).map(pick).collect(),
            Direction::Backward => slice.iter().rev().take(range.limit).map(pick).collect(),
        }
    }

    /// The stored event of `actor_id` at exactly `version`.
    fn at_version(&self, actor_id: &str, version: i64) -> Option<(u64, &Stored)> {
        let stream = self.actors.get(actor_id)?;
        let i = stream.binary_search_by_key(&version, |&(v, _)| v).ok()?;
        let seq = stream[i].1;
        Some((seq, &self.log[seq as usize - 1]))
    }
}

fn json_array<'a>(items: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.push(b'[');
    for (i, json) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json);
    }
    out.push(b']');
    out
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
    snapshot_retention: usize,
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
            snapshot_retention: DEFAULT_SNAPSHOT_RETENTION as usize,
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

    /// Keep the newest `n` snapshots of each actor (default
    /// [`DEFAULT_SNAPSHOT_RETENTION`]); 0 is refused with [`Error::InvalidInput`].
    pub fn with_snapshot_retention(mut self, n: u32) -> Result<Self> {
        crate::options_check::check_snapshot_retention(n)?;
        self.snapshot_retention = n as usize;
        Ok(self)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The seed's save: see [`Rule::Seed`].
    fn append(&self, events: &[Event]) -> Result<u64> {
        self.limits.check_batch(events)?;
        let entry = CommitEntry::new(&events[0].actor_id, ExpectedState::Increasing, events);
        Ok(self.write(&[entry], Rule::Seed)?.last_sequence)
    }
}

impl MemoryStore {
    /// Encode each entry's events at the versions they take when its actor's latest is
    /// `latest[i]`, checking the size limits.
    fn encode(
        &self,
        entries: &[CommitEntry<'_>],
        latest: &[i64],
        rule: Rule,
    ) -> Result<Vec<Vec<Box<[u8]>>>> {
        let mut total = 0;
        let encoded = entries
            .iter()
            .zip(latest)
            .map(|(entry, &l)| {
                (0..entry.events.len())
                    .map(|i| {
                        let mut json = Vec::with_capacity(256);
                        let version = rule.version_at(entry, i, l);
                        entry.events[i].write_json_at_version(version, &mut json);
                        self.limits.check_record_len("event", json.len())?;
                        total += json.len();
                        Ok(json.into_boxed_slice())
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        self.limits.check_batch_bytes(total)?;
        Ok(encoded)
    }

    /// Write `entries` if `rule`'s conditions hold: the one write path of the seed's saves
    /// and of commits.
    fn write(&self, entries: &[CommitEntry<'_>], rule: Rule) -> Result<Committed> {
        // Encoded before the lock, at the versions the actors have now; an entry with
        // automatic versions whose actor moved meanwhile is encoded again under the lock.
        let automatic = |e: &CommitEntry<'_>| rule == Rule::Expected && e.automatic();
        let guess: Vec<i64> = {
            let state = self.read();
            entries
                .iter()
                .map(|e| {
                    if automatic(e) {
                        state.latest(e.actor_id)
                    } else {
                        0
                    }
                })
                .collect()
        };
        let mut encoded = self.encode(entries, &guess, rule)?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            return Err(Error::Closed("the store was closed".into()));
        }
        let latest: Vec<i64> = entries.iter().map(|e| state.latest(e.actor_id)).collect();
        if let Some(conflict) = rule.conflict(entries, &latest) {
            if rule == Rule::Expected {
                let retry = already_appended(entries, |entry, first, last| {
                    Ok((first..=last)
                        .filter_map(|version| {
                            let (sequence, stored) = state.at_version(entry.actor_id, version)?;
                            Some(StoredId {
                                version,
                                sequence,
                                same_id: entry
                                    .retry_event(version)
                                    .is_some_and(|e| e.id == stored.event.id),
                            })
                        })
                        .collect())
                })?;
                if let Some(done) = retry {
                    return Ok(done);
                }
            }
            self.notifier.metrics().add_conflict();
            return Err(conflict);
        }
        if entries
            .iter()
            .zip(guess.iter().zip(&latest))
            .any(|(e, (g, l))| automatic(e) && g != l)
        {
            encoded = self.encode(entries, &latest, rule)?;
        }
        let now = Timestamp::now();
        let first = state.log.len() as u64 + 1;
        let mut notes = Vec::new();
        for ((entry, jsons), &l) in entries.iter().zip(encoded).zip(&latest) {
            for (i, (event, json)) in entry.events.iter().zip(jsons).enumerate() {
                let version = rule.version_at(entry, i, l);
                let mut stored = canonical(event, &json);
                stored.version = version;
                state.log.push(Arc::new(Stored {
                    event: stored,
                    json,
                }));
                let seq = state.log.len() as u64;
                state
                    .actors
                    .entry(entry.actor_id.to_string())
                    .or_default()
                    .push((version, seq));
                notes.push(EventStored {
                    event_id: event.id.clone(),
                    actor_id: entry.actor_id.to_string(),
                    version,
                    timestamp: now,
                    sequence: seq,
                });
            }
        }
        let last = state.log.len() as u64;
        self.notifier.metrics().add_events_saved(notes.len() as u64);
        // Published under the lock, so notifications leave in commit order.
        for n in notes {
            self.notifier.publish(n);
        }
        let written = last >= first;
        Ok(Committed {
            status: AppendStatus::Appended,
            first_sequence: if written { first } else { 0 },
            last_sequence: if written { last } else { 0 },
            actors: rule.committed_actors(entries, &latest),
        })
    }
}

impl EventStore for MemoryStore {
    fn save_event(&self, event: &Event) -> Result<u64> {
        self.append(std::slice::from_ref(event))
    }

    fn save_events(&self, events: &[Event]) -> Result<u64> {
        self.append(events)
    }

    fn commit(&self, entries: &[CommitEntry<'_>]) -> Result<Committed> {
        check_commit(&self.limits, entries)?;
        self.write(entries, Rule::Expected)
    }

    fn get_events_range(&self, actor_id: &str, range: &EventRange) -> Result<Vec<Event>> {
        range.check()?;
        let stored = self.read().actor_bounded(actor_id, range);
        Ok(stored.iter().map(|s| s.event.clone()).collect())
    }

    fn get_events_range_json(&self, actor_id: &str, range: &EventRange) -> Result<Vec<u8>> {
        range.check()?;
        let stored = self.read().actor_bounded(actor_id, range);
        Ok(json_array(stored.iter().map(|s| &*s.json)))
    }

    fn read_all_filtered(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<SequencedEvent>> {
        let state = self.read();
        let start = from_sequence.max(1) as usize - 1;
        Ok(state
            .log
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, s)| filter.matches(&s.event))
            .take(limit)
            .map(|(i, s)| SequencedEvent {
                sequence: i as u64 + 1,
                event: s.event.clone(),
            })
            .collect())
    }

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
        Ok(json_array(stored.iter().map(|s| &*s.json)))
    }

    fn get_latest_version(&self, actor_id: &str) -> Result<i64> {
        Ok(self.read().latest(actor_id))
    }

    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>> {
        self.read_all_filtered(from_sequence, limit, &EventFilter::default())
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
        let history = state
            .snapshots
            .entry(snapshot.actor_id.clone())
            .or_default();
        if let Some((&newest, _)) = history.last_key_value() {
            if snapshot.version < newest {
                return Err(Error::StaleSnapshot {
                    actor_id: snapshot.actor_id.clone(),
                    attempted_version: snapshot.version,
                    current_version: newest,
                });
            }
        }
        history.insert(snapshot.version, canonical);
        while history.len() > self.snapshot_retention {
            history.pop_first();
        }
        self.notifier.metrics().add_snapshot();
        Ok(())
    }

    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>> {
        Ok(self
            .read()
            .snapshots
            .get(actor_id)
            .and_then(|h| h.last_key_value())
            .map(|(_, s)| s.clone()))
    }

    fn get_snapshot(&self, actor_id: &str, at_or_below: i64) -> Result<Option<ActorSnapshot>> {
        Ok(self
            .read()
            .snapshots
            .get(actor_id)
            .and_then(|h| h.range(..=at_or_below).next_back())
            .map(|(_, s)| s.clone()))
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
