//! Golden-file interop test: the Rust encoding of `Event` / `ActorSnapshot` must be
//! byte-for-byte what Go's `encoding/json` writes for the seed's structs.
//!
//! The goldens live in `tests/golden/events/` at the repository root and are produced by
//! `tests/golden/gen` (Go). Every golden is decoded with aether-core, re-encoded, and compared
//! with the original bytes. When `AETHER_RUST_OUT` is set, the re-encodings are also written
//! there under the same names, and `tests/golden/roundtrip_test.go` checks them from the Go
//! side (`tests/golden/run.sh` runs both).

use std::fs;
use std::path::{Path, PathBuf};

use aether_core::{ActorSnapshot, Event, Timestamp};

/// The fewest golden files the suite must find, so it can never pass vacuously.
const MIN_GOLDENS: usize = 20;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/events")
}

/// `(file name, bytes)` of every `*.json` golden, sorted by name.
fn goldens() -> Vec<(String, Vec<u8>)> {
    let dir = golden_dir();
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading golden dir {}: {e}", dir.display()))
        .map(|entry| entry.expect("reading golden dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes =
                fs::read(&p).unwrap_or_else(|e| panic!("reading golden {}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= MIN_GOLDENS,
        "found {} golden files in {}, expected at least {MIN_GOLDENS}",
        files.len(),
        dir.display()
    );
    files
}

/// Decode the golden as the type its name implies and encode it again.
fn reencode(name: &str, golden: &[u8]) -> Result<Vec<u8>, String> {
    if name.contains("snapshot") {
        let snap: ActorSnapshot = serde_json::from_slice(golden)
            .map_err(|e| format!("decoding {name} as ActorSnapshot: {e}"))?;
        Ok(snap.to_json())
    } else {
        let event =
            Event::from_json(golden).map_err(|e| format!("decoding {name} as Event: {e}"))?;
        Ok(event.to_json())
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[test]
fn goldens_round_trip_byte_for_byte() {
    let files = goldens();
    let out_dir = std::env::var_os("AETHER_RUST_OUT")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    if let Some(dir) = &out_dir {
        fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("creating AETHER_RUST_OUT {}: {e}", dir.display()));
    }

    let mut failures = Vec::new();
    for (name, golden) in &files {
        let encoded = match reencode(name, golden) {
            Ok(b) => b,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        if let Some(dir) = &out_dir {
            let path = dir.join(name);
            fs::write(&path, &encoded)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        if &encoded != golden {
            let at = first_difference(golden, &encoded);
            failures.push(format!(
                "{name}: re-encoded bytes differ from the Go golden at byte {at}\n  go:   {}\n  rust: {}",
                String::from_utf8_lossy(golden),
                String::from_utf8_lossy(&encoded),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn goldens_decode_to_expected_values() {
    let files = goldens();
    let get = |name: &str| -> &[u8] {
        &files
            .iter()
            .find(|(n, _)| n.ends_with(name))
            .unwrap_or_else(|| panic!("golden *{name} not found"))
            .1
    };

    let e = Event::from_json(get("_nil_data.json")).unwrap();
    assert_eq!(e.data, None);
    let e = Event::from_json(get("_empty_data.json")).unwrap();
    assert_eq!(e.data, Some(serde_json::Map::new()));

    let e = Event::from_json(get("_integers.json")).unwrap();
    let data = e.data.unwrap();
    assert_eq!(data["uint64Max"].as_u64(), Some(u64::MAX));
    assert_eq!(data["int64Min"].as_i64(), Some(i64::MIN));
    assert_eq!(data["pow53plus1"].as_u64(), Some((1u64 << 53) + 1));

    let e = Event::from_json(get("_version_min.json")).unwrap();
    assert_eq!(e.version, i64::MIN);

    let e = Event::from_json(get("_ts_zero.json")).unwrap();
    assert!(e.timestamp.is_zero());
    assert_eq!(e.timestamp, Timestamp::ZERO);

    let e = Event::from_json(get("_ts_offset_plus_0530.json")).unwrap();
    assert_eq!(e.timestamp.offset_secs(), 5 * 3600 + 30 * 60);
    assert_eq!(e.timestamp.subsec_nanos(), 250_000_000);
    let e = Event::from_json(get("_ts_offset_minus_0800.json")).unwrap();
    assert_eq!(e.timestamp.offset_secs(), -8 * 3600);

    let e = Event::from_json(get("_control_chars.json")).unwrap();
    assert_eq!(e.command_id, "cmd\u{0}\u{1f}");
    assert_eq!(e.get_metadata("ctl"), "\u{8}\u{c}\u{0}");

    let s: ActorSnapshot = serde_json::from_slice(get("_snapshot_nil_state.json")).unwrap();
    assert_eq!(s.state, None);
    assert!(s.timestamp.is_zero());
}

// ---- decoding what Go accepts but never writes ----------------------------------------

const TS: &str = r#""timestamp":"2024-01-01T00:00:00Z""#;

fn event_json(fields: &str) -> String {
    format!(r#"{{"id":"e1","eventType":"T","actorId":"a","version":1,{fields}{TS}}}"#)
}

#[test]
fn accepts_data_null_as_none() {
    let e = Event::from_json(event_json(r#""data":null,"#).as_bytes()).unwrap();
    assert_eq!(e.data, None);
    // ... and writes it back as Go does.
    assert_eq!(
        e.to_json(),
        event_json(r#""data":null,"#).into_bytes(),
        "nil data must encode as null"
    );
}

#[test]
fn accepts_missing_data_as_none() {
    let e = Event::from_json(event_json("").as_bytes()).unwrap();
    assert_eq!(e.data, None);
    assert_eq!(e.to_json(), event_json(r#""data":null,"#).into_bytes());
}

#[test]
fn accepts_metadata_null() {
    let e = Event::from_json(event_json(r#""data":{},"metadata":null,"#).as_bytes()).unwrap();
    assert!(e.metadata.is_empty());
    assert_eq!(e.to_json(), event_json(r#""data":{},"#).into_bytes());
}

#[test]
fn accepts_empty_metadata_and_empty_command_id() {
    let e = Event::from_json(event_json(r#""commandId":"","data":{},"metadata":{},"#).as_bytes())
        .unwrap();
    assert_eq!(e.command_id, "");
    assert!(e.metadata.is_empty());
    // omitempty drops both.
    assert_eq!(e.to_json(), event_json(r#""data":{},"#).into_bytes());
}

#[test]
fn accepts_missing_command_id_and_metadata() {
    let e = Event::from_json(event_json(r#""data":{"x":1},"#).as_bytes()).unwrap();
    assert_eq!(e.command_id, "");
    assert!(e.metadata.is_empty());
    assert_eq!(e.data.unwrap()["x"], serde_json::json!(1));
}

#[test]
fn ignores_unknown_fields() {
    let json = r#"{"unknown":{"deep":[1,2,{"x":null}]},"id":"e1","eventType":"T","actorId":"a","version":1,"data":{"k":"v"},"extra":"ignored","timestamp":"2024-01-01T00:00:00Z","zzz":1.5}"#;
    let e = Event::from_json(json.as_bytes()).unwrap();
    assert_eq!(e.id, "e1");
    assert_eq!(
        e.to_json(),
        event_json(r#""data":{"k":"v"},"#).into_bytes(),
        "unknown fields are dropped on re-encode"
    );
    let s: ActorSnapshot = serde_json::from_slice(
        br#"{"actorId":"a","version":2,"state":null,"timestamp":"2024-01-01T00:00:00Z","more":true}"#,
    )
    .unwrap();
    assert_eq!(s.state, None);
}

#[test]
fn accepts_fields_in_any_order_and_non_canonical_values() {
    // Field order, whitespace, escapes Go would not write, "+00:00", and non-trimmed
    // fractions all decode; re-encoding yields Go's canonical bytes.
    let json = "{ \"timestamp\" : \"2024-01-01T00:00:00.500+00:00\",\n \"version\": 1, \"data\": {\"s\": \"\\u0041\\/\\u00e9\"},\n \"actorId\": \"a\", \"eventType\": \"T\", \"id\": \"e1\" }";
    let e = Event::from_json(json.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(e.to_json()).unwrap(),
        r#"{"id":"e1","eventType":"T","actorId":"a","version":1,"data":{"s":"A/é"},"timestamp":"2024-01-01T00:00:00.5Z"}"#
    );
}

#[test]
fn accepts_timestamp_null_as_zero_time() {
    // Go's time.Time.UnmarshalJSON treats null as a no-op, leaving the zero time.
    let json =
        r#"{"id":"e1","eventType":"T","actorId":"a","version":1,"data":{},"timestamp":null}"#;
    let e = Event::from_json(json.as_bytes()).unwrap();
    assert!(e.timestamp.is_zero());
    assert_eq!(
        String::from_utf8(e.to_json()).unwrap(),
        r#"{"id":"e1","eventType":"T","actorId":"a","version":1,"data":{},"timestamp":"0001-01-01T00:00:00Z"}"#
    );
}

#[test]
fn rejects_version_as_string() {
    // Go: "cannot unmarshal string into Go struct field Event.version of type int64".
    let json = r#"{"id":"e1","eventType":"T","actorId":"a","version":"1","data":{},"timestamp":"2024-01-01T00:00:00Z"}"#;
    assert!(Event::from_json(json.as_bytes()).is_err());
    let json = r#"{"actorId":"a","version":"1","state":{},"timestamp":"2024-01-01T00:00:00Z"}"#;
    assert!(serde_json::from_slice::<ActorSnapshot>(json.as_bytes()).is_err());
}

#[test]
fn rejects_data_as_array() {
    assert!(Event::from_json(event_json(r#""data":[1,2],"#).as_bytes()).is_err());
    assert!(Event::from_json(event_json(r#""data":[],"#).as_bytes()).is_err());
    assert!(Event::from_json(event_json(r#""data":"x","#).as_bytes()).is_err());
    let json = r#"{"actorId":"a","version":1,"state":[],"timestamp":"2024-01-01T00:00:00Z"}"#;
    assert!(serde_json::from_slice::<ActorSnapshot>(json.as_bytes()).is_err());
}

/// Go would leave a missing `actorId` as `""`; aether-core deliberately requires the fields
/// Go always writes (see `Event::from_json`).
#[test]
fn rejects_missing_actor_id() {
    let json =
        r#"{"id":"e1","eventType":"T","version":1,"data":{},"timestamp":"2024-01-01T00:00:00Z"}"#;
    assert!(Event::from_json(json.as_bytes()).is_err());
    let json = r#"{"version":1,"state":{},"timestamp":"2024-01-01T00:00:00Z"}"#;
    assert!(serde_json::from_slice::<ActorSnapshot>(json.as_bytes()).is_err());
}

#[test]
fn rejects_invalid_timestamp() {
    for ts in [
        r#""timestamp":"not a time""#,
        r#""timestamp":"2024-02-30T00:00:00Z""#,
        r#""timestamp":"2024-01-01T00:00:00""#,
        r#""timestamp":"2024-01-01 00:00:00Z""#,
        r#""timestamp":"2024-01-01T25:00:00Z""#,
        r#""timestamp":"2024-01-01T00:00:00+0100""#,
        r#""timestamp":1704067200"#,
        r#""timestamp":"""#,
    ] {
        let json =
            format!(r#"{{"id":"e1","eventType":"T","actorId":"a","version":1,"data":{{}},{ts}}}"#);
        assert!(
            Event::from_json(json.as_bytes()).is_err(),
            "should reject {ts}"
        );
        let json = format!(r#"{{"actorId":"a","version":1,"state":{{}},{ts}}}"#);
        assert!(
            serde_json::from_slice::<ActorSnapshot>(json.as_bytes()).is_err(),
            "snapshot should reject {ts}"
        );
    }
}

/// Go rejects all of these except `null` and `{}` (a no-op / the zero event), which
/// aether-core rejects because the core fields are required.
#[test]
fn rejects_non_object_documents() {
    for json in ["[]", "null", "1", r#""event""#, "", "{", "{}"] {
        assert!(
            Event::from_json(json.as_bytes()).is_err(),
            "should reject {json:?}"
        );
    }
}
