//! The event model of the Go original (`aether/event.go`): `Event`, its metadata helpers,
//! `EventStored`, `ActorSnapshot`, and the replay types.
//!
//! JSON field names, omission rules and value encoding match Go's `encoding/json`, byte for
//! byte (see [`crate::json`] and the golden files under `tests/golden`).

use std::collections::BTreeMap;
use std::fmt;

use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::timestamp::Timestamp;

/// Identifies related events across services.
pub const METADATA_KEY_CORRELATION_ID: &str = "correlationId";
/// Identifies the event that caused this event.
pub const METADATA_KEY_CAUSATION_ID: &str = "causationId";
/// Identifies the user who triggered this event.
pub const METADATA_KEY_USER_ID: &str = "userId";
/// Distributed tracing trace ID (e.g. OpenTelemetry).
pub const METADATA_KEY_TRACE_ID: &str = "traceId";
/// Distributed tracing span ID.
pub const METADATA_KEY_SPAN_ID: &str = "spanId";

/// A domain event. Mirrors Go's `aether.Event`.
///
/// `data` is `None` for Go's nil map (written as `null`); `metadata` is omitted from JSON
/// when empty, as Go's `omitempty` does for both a nil and an empty map.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Event {
    /// Unique event ID.
    pub id: String,
    /// The kind of event, e.g. `"OrderPlaced"`.
    #[serde(rename = "eventType")]
    pub event_type: String,
    /// The actor (aggregate) this event belongs to.
    #[serde(rename = "actorId")]
    pub actor_id: String,
    /// Correlation ID of the command that triggered the event; omitted when empty.
    #[serde(rename = "commandId", skip_serializing_if = "String::is_empty")]
    pub command_id: String,
    /// Per-actor version; must be strictly greater than the actor's latest to be saved.
    pub version: i64,
    /// Event payload: a JSON object, or `None` for Go's nil map.
    pub data: Option<Map<String, Value>>,
    /// String metadata for tracing and auditing.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When the event happened, with the offset it was written in.
    pub timestamp: Timestamp,
}

/// What `Event` decodes through (see [`ObjectOnly`]): the same fields and rules.
#[derive(Deserialize)]
struct EventFields {
    id: String,
    #[serde(rename = "eventType")]
    event_type: String,
    #[serde(rename = "actorId")]
    actor_id: String,
    #[serde(rename = "commandId", default, deserialize_with = "null_as_default")]
    command_id: String,
    version: i64,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: BTreeMap<String, String>,
    timestamp: Timestamp,
}

impl From<EventFields> for Event {
    fn from(f: EventFields) -> Event {
        Event {
            id: f.id,
            event_type: f.event_type,
            actor_id: f.actor_id,
            command_id: f.command_id,
            version: f.version,
            data: f.data,
            metadata: f.metadata,
            timestamp: f.timestamp,
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectOnly::<EventFields>(PhantomData))
            .map(Event::from)
    }
}

/// Decodes `T` from a JSON object only. serde's derived `Deserialize` also accepts a
/// struct as an array of its fields in order (`["e","T","a",…]`), which Go's
/// `json.Unmarshal` refuses; events and snapshots must be objects, as in Go.
struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Event {
    /// A new event with an empty data object and the current time.
    pub fn new(
        id: impl Into<String>,
        event_type: impl Into<String>,
        actor_id: impl Into<String>,
        version: i64,
    ) -> Event {
        Event {
            id: id.into(),
            event_type: event_type.into(),
            actor_id: actor_id.into(),
            version,
            data: Some(Map::new()),
            timestamp: Timestamp::now(),
            ..Event::default()
        }
    }

    /// Builder-style: set one data field (creating the data object if it is nil).
    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Event {
        self.data_mut().insert(key.into(), value.into());
        self
    }

    /// The data object, created empty if it was nil.
    pub fn data_mut(&mut self) -> &mut Map<String, Value> {
        self.data.get_or_insert_with(Map::new)
    }

    /// Set a metadata key-value pair.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// The value of a metadata key, or `""` when absent (as Go returns the zero string).
    pub fn get_metadata(&self, key: &str) -> &str {
        self.metadata.get(key).map(String::as_str).unwrap_or("")
    }

    /// Set the correlation ID metadata.
    pub fn set_correlation_id(&mut self, id: impl Into<String>) {
        self.set_metadata(METADATA_KEY_CORRELATION_ID, id);
    }
    /// The correlation ID metadata, or `""`.
    pub fn correlation_id(&self) -> &str {
        self.get_metadata(METADATA_KEY_CORRELATION_ID)
    }
    /// Set the causation ID metadata.
    pub fn set_causation_id(&mut self, id: impl Into<String>) {
        self.set_metadata(METADATA_KEY_CAUSATION_ID, id);
    }
    /// The causation ID metadata, or `""`.
    pub fn causation_id(&self) -> &str {
        self.get_metadata(METADATA_KEY_CAUSATION_ID)
    }
    /// Set the user ID metadata.
    pub fn set_user_id(&mut self, id: impl Into<String>) {
        self.set_metadata(METADATA_KEY_USER_ID, id);
    }
    /// The user ID metadata, or `""`.
    pub fn user_id(&self) -> &str {
        self.get_metadata(METADATA_KEY_USER_ID)
    }
    /// Set the trace ID metadata.
    pub fn set_trace_id(&mut self, id: impl Into<String>) {
        self.set_metadata(METADATA_KEY_TRACE_ID, id);
    }
    /// The trace ID metadata, or `""`.
    pub fn trace_id(&self) -> &str {
        self.get_metadata(METADATA_KEY_TRACE_ID)
    }
    /// Set the span ID metadata.
    pub fn set_span_id(&mut self, id: impl Into<String>) {
        self.set_metadata(METADATA_KEY_SPAN_ID, id);
    }
    /// The span ID metadata, or `""`.
    pub fn span_id(&self) -> &str {
        self.get_metadata(METADATA_KEY_SPAN_ID)
    }

    /// Copy every metadata entry of `source` into this event (Go's `WithMetadataFrom`);
    /// entries of `source` win over existing keys. `None` is a no-op.
    pub fn with_metadata_from(&mut self, source: Option<&Event>) {
        if let Some(source) = source {
            for (k, v) in &source.metadata {
                self.metadata.insert(k.clone(), v.clone());
            }
        }
    }

    /// Encode as Go's `json.Marshal(event)` does.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        out
    }

    /// Append the Go-compatible JSON encoding to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_at_version(self.version, out);
    }

    /// Append the JSON this event would have with `version` in place of its own: how an
    /// append with automatic versions (version 0) stores the version it assigned.
    ///
    /// Written by hand rather than through serde (every save encodes its events, and serde's
    /// machinery was a large share of a save's CPU); the bytes are exactly those of
    /// `json::to_vec_go` on the derived `Serialize`: the same fields in the same order, the
    /// same omissions, the same escapes (a property test compares the two).
    pub fn write_json_at_version(&self, version: i64, out: &mut Vec<u8>) {
        use crate::json::{write_i64, write_object, write_str, write_string_map};
        out.extend_from_slice(b"{\"id\":");
        write_str(out, &self.id);
        out.extend_from_slice(b",\"eventType\":");
        write_str(out, &self.event_type);
        out.extend_from_slice(b",\"actorId\":");
        write_str(out, &self.actor_id);
        if !self.command_id.is_empty() {
            out.extend_from_slice(b",\"commandId\":");
            write_str(out, &self.command_id);
        }
        out.extend_from_slice(b",\"version\":");
        write_i64(out, version);
        out.extend_from_slice(b",\"data\":");
        match &self.data {
            Some(data) => write_object(out, data),
            None => out.extend_from_slice(b"null"),
        }
        if !self.metadata.is_empty() {
            out.extend_from_slice(b",\"metadata\":");
            write_string_map(out, &self.metadata);
        }
        // RFC 3339 text is digits, '-', ':', 'T', '.', 'Z' and '+': nothing to escape.
        out.extend_from_slice(b",\"timestamp\":\"");
        self.timestamp.write_rfc3339(out);
        out.extend_from_slice(b"\"}");
    }

    /// Decode an event from JSON as Go's `json.Unmarshal` would, except that `id`,
    /// `eventType`, `actorId`, `version` and `timestamp` are required (Go always writes them).
    pub fn from_json(bytes: &[u8]) -> Result<Event, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Published after an event has been stored (and is as durable as the store's mode promises).
/// Mirrors Go's `aether.EventStored`, plus the store-wide `sequence` of the event so a
/// consumer that sees a gap can catch up with `read_all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStored {
    /// ID of the stored event.
    #[serde(rename = "eventId")]
    pub event_id: String,
    /// Actor that owns the stored event.
    #[serde(rename = "actorId")]
    pub actor_id: String,
    /// Version of the stored event.
    pub version: i64,
    /// When the event was stored.
    pub timestamp: Timestamp,
    /// The event's position in the store-wide sequence.
    pub sequence: u64,
}

/// A point-in-time state snapshot of an actor. Mirrors Go's `aether.ActorSnapshot`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ActorSnapshot {
    /// The actor the state belongs to.
    #[serde(rename = "actorId")]
    pub actor_id: String,
    /// The actor version the state reflects.
    pub version: i64,
    /// The state: a JSON object, or `None` for Go's nil map.
    pub state: Option<Map<String, Value>>,
    /// When the snapshot was taken.
    pub timestamp: Timestamp,
}

/// What `ActorSnapshot` decodes through: the same fields and rules.
#[derive(Deserialize)]
struct SnapshotFields {
    #[serde(rename = "actorId")]
    actor_id: String,
    version: i64,
    #[serde(default)]
    state: Option<Map<String, Value>>,
    timestamp: Timestamp,
}

impl<'de> Deserialize<'de> for ActorSnapshot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = d.deserialize_map(ObjectOnly::<SnapshotFields>(PhantomData))?;
        Ok(ActorSnapshot {
            actor_id: f.actor_id,
            version: f.version,
            state: f.state,
            timestamp: f.timestamp,
        })
    }
}

impl ActorSnapshot {
    /// Encode as Go's `json.Marshal(snapshot)` does.
    pub fn to_json(&self) -> Vec<u8> {
        crate::json::to_vec_go(self).expect("snapshot serialization is infallible")
    }
}

/// An event with its position in the store-wide sequence, as returned by `read_all`.
#[derive(Debug, Clone, PartialEq)]
pub struct SequencedEvent {
    /// The store-wide sequence number (gapless, starting at 1, in commit order).
    pub sequence: u64,
    /// The event.
    pub event: Event,
}

/// A stored record that could not be decoded during replay. Mirrors Go's `ReplayError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    /// The record's store-wide sequence number; 0 if the record is too damaged to tell.
    pub sequence: u64,
    /// The raw bytes that could not be decoded.
    pub raw: Vec<u8>,
    /// Why decoding failed.
    pub cause: String,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed to unmarshal event at sequence {}: {}",
            self.sequence, self.cause
        )
    }
}

impl std::error::Error for ReplayError {}

/// Events decoded during replay plus every record that could not be decoded.
/// Mirrors Go's `ReplayResult`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplayResult {
    /// The events that decoded, in version order.
    pub events: Vec<Event>,
    /// The records that did not, in the order met.
    pub errors: Vec<ReplayError>,
}

impl ReplayResult {
    /// Whether any malformed record was met.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_at_another_version_is_the_serde_encoding_with_that_version() {
        let plain = Event::new("e1", "Created", "a", 7);
        let mut full = Event::new("e<2>", "T&", "b", 3).with_data("x", 2.5);
        full.command_id = "cmd".into();
        full.set_correlation_id("c");
        full.data = None;
        for e in [plain, full] {
            let mut at = Vec::new();
            e.write_json_at_version(e.version, &mut at);
            assert_eq!(
                String::from_utf8(at).unwrap(),
                String::from_utf8(e.to_json()).unwrap()
            );
            let mut moved = e.clone();
            moved.version = 42;
            let mut at = Vec::new();
            e.write_json_at_version(42, &mut at);
            assert_eq!(at, moved.to_json());
            assert_eq!(at, crate::json::to_vec_go(&moved).unwrap());
        }
    }

    #[test]
    fn metadata_helpers() {
        let mut e = Event::new("e1", "Created", "a", 1);
        assert_eq!(e.correlation_id(), "");
        e.set_correlation_id("c");
        e.set_causation_id("ca");
        e.set_user_id("u");
        e.set_trace_id("t");
        e.set_span_id("s");
        assert_eq!(
            (
                e.correlation_id(),
                e.causation_id(),
                e.user_id(),
                e.trace_id(),
                e.span_id()
            ),
            ("c", "ca", "u", "t", "s")
        );
        assert_eq!(e.get_metadata("correlationId"), "c");
        let mut f = Event::new("e2", "Next", "a", 2);
        f.set_metadata("userId", "old");
        f.set_metadata("keep", "k");
        f.with_metadata_from(Some(&e));
        assert_eq!(f.user_id(), "u");
        assert_eq!(f.get_metadata("keep"), "k");
        assert_eq!(f.metadata.len(), 6);
        f.with_metadata_from(None);
        assert_eq!(f.metadata.len(), 6);
    }

    #[test]
    fn json_shape_matches_go() {
        let mut e = Event {
            id: "e1".into(),
            event_type: "T".into(),
            actor_id: "a".into(),
            version: 3,
            data: None,
            timestamp: Timestamp::from_unix_nanos(0),
            ..Event::default()
        };
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"id":"e1","eventType":"T","actorId":"a","version":3,"data":null,"timestamp":"1970-01-01T00:00:00Z"}"#
        );
        e.command_id = "c".into();
        e.data = Some(
            json!({"b": 1.0, "a": [1, "x"]})
                .as_object()
                .unwrap()
                .clone(),
        );
        e.set_metadata("z", "1");
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"id":"e1","eventType":"T","actorId":"a","commandId":"c","version":3,"data":{"a":[1,"x"],"b":1},"metadata":{"z":"1"},"timestamp":"1970-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn decoding_requires_core_fields_and_object_data() {
        assert!(Event::from_json(
            br#"{"id":"e","eventType":"T","version":1,"timestamp":"2024-01-01T00:00:00Z"}"#
        )
        .is_err());
        assert!(Event::from_json(br#"{"id":"e","eventType":"T","actorId":"a","version":"1","timestamp":"2024-01-01T00:00:00Z"}"#).is_err());
        assert!(Event::from_json(br#"{"id":"e","eventType":"T","actorId":"a","version":1,"data":[1],"timestamp":"2024-01-01T00:00:00Z"}"#).is_err());
        assert!(Event::from_json(b"[1]").is_err());
        let e = Event::from_json(br#"{"id":"e","eventType":"T","actorId":"a","version":1,"data":null,"metadata":null,"commandId":null,"timestamp":"2024-01-01T00:00:00Z","extra":1}"#).unwrap();
        assert_eq!(e.data, None);
        assert!(e.metadata.is_empty());
    }
}
