//! Inputs the fuzz targets (fuzz/) found, kept as tests so the behaviour they pinned down
//! stays put. Each test names the target and what it reported.

use aether_core::{ActorSnapshot, Event, EventStore, MemoryStore, SledStore};
use serde_json::Value;

/// `event_json`: `{"x":0.0}` decodes to a float, is written as Go writes it (`0`), and
/// decodes back as an integer. Byte for byte and as Go sees the value, nothing changed;
/// to `Event`'s derived `==` the two differ (serde_json's `Number` tells them apart).
#[test]
fn integral_floats_round_trip_as_go_writes_them() {
    let input = br#"{"id":"e","eventType":"T","actorId":"a","version":1,"data":{"zero":0.0,"two":2.0,"hundred":1e2,"negZero":-0.0,"list":[1.0,0.5]},"timestamp":"2024-01-02T03:04:05Z"}"#;
    let event = Event::from_json(input).unwrap();
    let encoded = event.to_json();
    assert_eq!(
        String::from_utf8(encoded.clone()).unwrap(),
        r#"{"id":"e","eventType":"T","actorId":"a","version":1,"data":{"hundred":100,"list":[1,0.5],"negZero":-0,"two":2,"zero":0},"timestamp":"2024-01-02T03:04:05Z"}"#
    );
    let again = Event::from_json(&encoded).unwrap();
    assert_eq!(again.to_json(), encoded, "the Go encoding is a fixed point");

    let (before, after) = (event.data.unwrap(), again.data.unwrap());
    for key in ["zero", "two", "hundred", "negZero"] {
        let (b, a) = (before[key].as_f64().unwrap(), after[key].as_f64().unwrap());
        assert_eq!(
            b.to_bits(),
            a.to_bits(),
            "{key}: same float64, as Go decodes it"
        );
    }
    // -0 stays a float (it has no integer spelling); the others come back as integers.
    assert!(after["negZero"].is_f64());
    assert_eq!(after["two"], Value::from(2u64));
    assert_eq!(after["list"][0], Value::from(1u64));
}

/// The same for a snapshot's state.
#[test]
fn integral_floats_in_snapshot_state_round_trip() {
    let input = br#"{"actorId":"a","version":3,"state":{"total":150.0},"timestamp":"2024-01-02T03:04:05Z"}"#;
    let snapshot: ActorSnapshot = serde_json::from_slice(input).unwrap();
    let encoded = snapshot.to_json();
    let again: ActorSnapshot = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(again.to_json(), encoded);
    assert_eq!(again.state.unwrap()["total"].as_f64(), Some(150.0));
}

/// Consequence of the round trip above: MemoryStore used to hand back the event it was
/// given (`2.0` stayed a float) while SledStore decodes what it wrote (`2` comes back an
/// integer), so the same save read back different `Event`s depending on the backend.
/// MemoryStore now keeps the event as it reads back from its JSON.
#[test]
fn backends_read_back_the_same_event_for_integral_floats() {
    let event = Event::from_json(
        br#"{"id":"e","eventType":"T","actorId":"a","version":1,"data":{"two":2.0},"timestamp":"2024-01-02T03:04:05Z"}"#,
    )
    .unwrap();
    let memory = MemoryStore::new();
    memory.save_event(&event).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path()).unwrap();
    sled.save_event(&event).unwrap();
    assert_eq!(
        memory.get_events("a", 0).unwrap(),
        sled.get_events("a", 0).unwrap()
    );
}

/// Found while reading `event_json`'s error messages: serde's derived `Deserialize`
/// accepts a struct as a JSON array of its fields in declaration order, so
/// `["e","T","a","",1,null,{},"2024-…"]` was an event to `Event::from_json` (and to
/// `aether_save_event`). Go's `json.Unmarshal` refuses an array for a struct, and so
/// do we now.
#[test]
fn a_json_array_is_neither_an_event_nor_a_snapshot() {
    assert!(Event::from_json(br#"["e","T","a","",1,null,{},"2024-01-02T03:04:05Z"]"#).is_err());
    assert!(
        serde_json::from_slice::<ActorSnapshot>(br#"["a",1,null,"2024-01-02T03:04:05Z"]"#).is_err()
    );
}
