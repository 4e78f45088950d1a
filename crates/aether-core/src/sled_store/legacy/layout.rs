//! On-disk layout of the sled backend. Public so tools (`aether verify`, `aether inspect`)
//! can read a store without going through the store API.
//!
//! Trees:
//! - `events`: `actor key ‖ version (u64 BE)` → event record. One actor's events are one
//!   ordered range; its latest version is one `get_lt` seek.
//! - `sequence`: `sequence (u64 BE)` → index entry naming the event key and the batch the
//!   event was committed in. It is the store-wide, gapless commit order (`read_all`).
//! - `snapshots`: `actor key` → snapshot record (latest only).
//! - `meta`: small named values (format version, durability mode last used).
//!
//! The actor key is `len (u32 BE) ‖ UTF-8 bytes`: length-prefixing means no actor's range
//! can contain another's, whatever bytes the IDs hold (`"a"`, `"ab"`, `"a\0b"`).
//!
//! Every value carries a CRC-32 so a damaged or foreign value is reported, never returned
//! as good data.

use std::fmt;

/// Tree of event records.
pub const TREE_EVENTS: &[u8] = b"events";
/// Tree of sequence index entries.
pub const TREE_SEQUENCE: &[u8] = b"sequence";
/// Tree of latest snapshots.
pub const TREE_SNAPSHOTS: &[u8] = b"snapshots";
/// Tree of store metadata.
pub const TREE_META: &[u8] = b"meta";

/// `meta` key: the on-disk format version.
pub const META_FORMAT: &[u8] = b"format";
/// `meta` key: the durability mode the store was last opened with.
pub const META_DURABILITY: &[u8] = b"durability";
/// The format version this code writes.
pub const FORMAT_VERSION: &[u8] = b"1";

const TAG_EVENT: u8 = 0xA1;
const TAG_SEQUENCE: u8 = 0xA2;
const TAG_SNAPSHOT: u8 = 0xA3;

/// Bytes before the JSON in an event record: tag, sequence, CRC.
pub const EVENT_HEADER_LEN: usize = 1 + 8 + 4;
/// Bytes before the JSON in a snapshot record: tag, version, CRC.
pub const SNAPSHOT_HEADER_LEN: usize = 1 + 8 + 4;

/// Why a stored value does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, LayoutError> {
    Err(LayoutError(msg.into()))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Append the actor key of `actor_id`.
pub fn push_actor_key(out: &mut Vec<u8>, actor_id: &[u8]) {
    out.extend_from_slice(&(actor_id.len() as u32).to_be_bytes());
    out.extend_from_slice(actor_id);
}

/// The actor key of `actor_id`.
pub fn actor_key(actor_id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + actor_id.len());
    push_actor_key(&mut k, actor_id);
    k
}

/// The `events` key of (actor, version).
pub fn event_key(actor_id: &[u8], version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + actor_id.len());
    push_actor_key(&mut k, actor_id);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Split an `events` key into (actor ID bytes, version).
pub fn split_event_key(key: &[u8]) -> Result<(&[u8], u64), LayoutError> {
    if key.len() < 12 {
        return err(format!("event key of {} bytes is too short", key.len()));
    }
    let len = u32_at(key, 0) as usize;
    if key.len() != 4 + len + 8 {
        return err(format!(
            "event key length {} does not match its actor length {len}",
            key.len()
        ));
    }
    Ok((&key[4..4 + len], u64_at(key, 4 + len)))
}

/// The `sequence` key of a sequence number.
pub fn sequence_key(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// Parse a `sequence` key.
pub fn parse_sequence_key(key: &[u8]) -> Result<u64, LayoutError> {
    match <[u8; 8]>::try_from(key) {
        Ok(b) => Ok(u64::from_be_bytes(b)),
        Err(_) => err(format!("sequence key of {} bytes", key.len())),
    }
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Build an event record around `json`.
pub fn encode_event_record(sequence: u64, json: &[u8]) -> Vec<u8> {
    let mut v = event_record_template(json);
    seal_event_record(&mut v, sequence);
    v
}

/// An event record for `json` whose sequence and CRC are filled in later by
/// [`seal_event_record`] (so the JSON is copied outside the store's write lock).
pub fn event_record_template(json: &[u8]) -> Vec<u8> {
    let mut v = event_record_header(json.len());
    v.extend_from_slice(json);
    v
}

/// The header of an unsealed event record, with room for `json_len` more bytes: append
/// the JSON, then [`seal_event_record`].
pub fn event_record_header(json_len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(EVENT_HEADER_LEN + json_len);
    v.push(TAG_EVENT);
    v.extend_from_slice(&[0u8; 12]);
    v
}

/// Write `sequence` and the CRC into a record from [`event_record_template`]; returns the CRC.
pub fn seal_event_record(record: &mut [u8], sequence: u64) -> u32 {
    record[1..9].copy_from_slice(&sequence.to_be_bytes());
    let c = crc(&[&record[1..9], &record[EVENT_HEADER_LEN..]]);
    record[9..13].copy_from_slice(&c.to_be_bytes());
    c
}

/// A decoded event record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord<'a> {
    /// The event's sequence.
    pub sequence: u64,
    /// The record's CRC (also the store's fingerprint of the event).
    pub crc: u32,
    /// The event's Go-compatible JSON.
    pub json: &'a [u8],
}

/// Decode an event record, checking its CRC.
pub fn decode_event_record(value: &[u8]) -> Result<EventRecord<'_>, LayoutError> {
    if value.len() < EVENT_HEADER_LEN {
        return err(format!(
            "event record of {} bytes is too short",
            value.len()
        ));
    }
    if value[0] != TAG_EVENT {
        return err(format!("event record has tag {:#04x}", value[0]));
    }
    let stored = u32_at(value, 9);
    let json = &value[EVENT_HEADER_LEN..];
    let actual = crc(&[&value[1..9], json]);
    if stored != actual {
        return err(format!(
            "event record checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    Ok(EventRecord {
        sequence: u64_at(value, 1),
        crc: stored,
        json,
    })
}

/// The sequence a damaged record claims, if its header is readable at all.
pub fn claimed_sequence(value: &[u8]) -> u64 {
    if value.len() >= 9 && value[0] == TAG_EVENT {
        u64_at(value, 1)
    } else {
        0
    }
}

/// A `sequence` tree entry: where the event lives and which batch committed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceEntry<'a> {
    /// First sequence of the batch the event was saved in.
    pub batch_first: u64,
    /// Last sequence of that batch.
    pub batch_last: u64,
    /// The event's `events` key.
    pub event_key: &'a [u8],
}

/// Build a `sequence` entry.
pub fn encode_sequence_entry(batch_first: u64, batch_last: u64, event_key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(21 + event_key.len());
    let (f, l) = (batch_first.to_be_bytes(), batch_last.to_be_bytes());
    v.push(TAG_SEQUENCE);
    v.extend_from_slice(&f);
    v.extend_from_slice(&l);
    v.extend_from_slice(&crc(&[&f, &l, event_key]).to_be_bytes());
    v.extend_from_slice(event_key);
    v
}

/// Decode a `sequence` entry, checking its CRC.
pub fn decode_sequence_entry(value: &[u8]) -> Result<SequenceEntry<'_>, LayoutError> {
    if value.len() < 21 || value[0] != TAG_SEQUENCE {
        return err("malformed sequence index entry");
    }
    let key = &value[21..];
    if crc(&[&value[1..17], key]) != u32_at(value, 17) {
        return err("sequence index entry checksum mismatch");
    }
    split_event_key(key)?;
    Ok(SequenceEntry {
        batch_first: u64_at(value, 1),
        batch_last: u64_at(value, 9),
        event_key: key,
    })
}

/// Build a snapshot record around `json`.
pub fn encode_snapshot_record(version: i64, json: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(SNAPSHOT_HEADER_LEN + json.len());
    let ver = version.to_be_bytes();
    v.push(TAG_SNAPSHOT);
    v.extend_from_slice(&ver);
    v.extend_from_slice(&crc(&[&ver, json]).to_be_bytes());
    v.extend_from_slice(json);
    v
}

/// Decode a snapshot record into (version, JSON), checking its CRC.
pub fn decode_snapshot_record(value: &[u8]) -> Result<(i64, &[u8]), LayoutError> {
    if value.len() < SNAPSHOT_HEADER_LEN || value[0] != TAG_SNAPSHOT {
        return err("malformed snapshot record");
    }
    let json = &value[SNAPSHOT_HEADER_LEN..];
    if crc(&[&value[1..9], json]) != u32_at(value, 9) {
        return err("snapshot record checksum mismatch");
    }
    Ok((u64_at(value, 1) as i64, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_ranges_never_overlap() {
        let ids: [&[u8]; 5] = [b"a", b"ab", b"a\0b", b"", "ü".as_bytes()];
        for x in ids {
            for y in ids {
                if x != y {
                    assert!(!event_key(y, 1).starts_with(&actor_key(x)));
                }
            }
        }
        assert!(event_key(b"a", 1) < event_key(b"a", 2));
        assert!(event_key(b"a", 255) < event_key(b"a", 256));
        assert_eq!(
            split_event_key(&event_key(b"a\0b", 7)).unwrap(),
            (&b"a\0b"[..], 7)
        );
    }

    #[test]
    fn records_detect_damage() {
        let rec = encode_event_record(42, br#"{"x":1}"#);
        let d = decode_event_record(&rec).unwrap();
        assert_eq!((d.sequence, d.json), (42, &br#"{"x":1}"#[..]));
        for i in 0..rec.len() {
            for bit in 0..8 {
                let mut bad = rec.clone();
                bad[i] ^= 1 << bit;
                assert!(decode_event_record(&bad).is_err(), "flip {i}:{bit}");
            }
        }
        assert!(decode_event_record(&rec[..rec.len() - 1]).is_err());
        let e = encode_sequence_entry(3, 5, &event_key(b"a", 4));
        assert_eq!(decode_sequence_entry(&e).unwrap().batch_last, 5);
        let s = encode_snapshot_record(9, b"{}");
        assert_eq!(decode_snapshot_record(&s).unwrap(), (9, &b"{}"[..]));
    }
}
