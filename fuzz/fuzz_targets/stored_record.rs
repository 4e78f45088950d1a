//! The sled backend's on-disk layout: whatever bytes a damaged or foreign store holds, the
//! decoders must fail cleanly or return a value that re-encodes to the same bytes, and the
//! JSON inside a record that passes its checksum must decode or fail without a panic.
//!
//! The same input is also used as the *content* of records built by the encoders, so the
//! decoders' success path (CRC matches) is reached on every run, not only when the fuzzer
//! happens to forge a checksum: encode → decode must give back what went in, and flipping
//! any one bit of an encoded record must be detected.
#![no_main]

use aether_core::sled_store::layout::{
    claimed_sequence, decode_event_record, decode_sequence_entry, decode_snapshot_record,
    encode_event_record, encode_sequence_entry, encode_snapshot_record, event_key,
    parse_sequence_key, sequence_key, split_event_key,
};
use aether_core::{ActorSnapshot, Event};
use libfuzzer_sys::fuzz_target;

/// Decoding the JSON of a record that passed its CRC: a result either way, never a panic.
fn decode_json(json: &[u8]) {
    let _ = Event::from_json(json);
    let _ = serde_json::from_slice::<ActorSnapshot>(json);
}

fn u64_from(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_be_bytes(b)
}

/// Flip one bit of `record`, chosen by `pick`, and require `decode` to reject it.
fn flipped_is_rejected(record: &[u8], pick: u64, decode: impl Fn(&[u8]) -> bool, what: &str) {
    let bits = record.len() as u64 * 8;
    let bit = pick % bits;
    let mut bad = record.to_vec();
    bad[(bit / 8) as usize] ^= 1 << (bit % 8);
    assert!(!decode(&bad), "{what}: bit {bit} flipped and still decodes");
}

fuzz_target!(|data: &[u8]| {
    // 1. The input as a stored value or key.
    if let Ok(rec) = decode_event_record(data) {
        assert_eq!(
            encode_event_record(rec.sequence, rec.json),
            data,
            "event record re-encodes"
        );
        assert_eq!(claimed_sequence(data), rec.sequence);
        decode_json(rec.json);
    }
    let _ = claimed_sequence(data);
    if let Ok(entry) = decode_sequence_entry(data) {
        assert_eq!(
            encode_sequence_entry(entry.batch_first, entry.batch_last, entry.event_key),
            data,
            "sequence entry re-encodes"
        );
        split_event_key(entry.event_key).expect("a decoded entry names a valid event key");
    }
    if let Ok((version, json)) = decode_snapshot_record(data) {
        assert_eq!(
            encode_snapshot_record(version, json),
            data,
            "snapshot record re-encodes"
        );
        decode_json(json);
    }
    if let Ok((actor, version)) = split_event_key(data) {
        assert_eq!(event_key(actor, version), data, "event key re-encodes");
    }
    if let Ok(sequence) = parse_sequence_key(data) {
        assert_eq!(sequence_key(sequence), data, "sequence key re-encodes");
    }

    // 2. The input as the content of well-formed records: 8 bytes of number, the rest JSON
    //    or an event key.
    let number = u64_from(data);
    let body = data.get(8..).unwrap_or_default();

    let rec = encode_event_record(number, body);
    let d = decode_event_record(&rec).expect("an encoded event record decodes");
    assert_eq!((d.sequence, d.json), (number, body));
    decode_json(d.json);
    flipped_is_rejected(
        &rec,
        number ^ body.len() as u64,
        |b| decode_event_record(b).is_ok(),
        "event record",
    );

    let snap = encode_snapshot_record(number as i64, body);
    assert_eq!(decode_snapshot_record(&snap), Ok((number as i64, body)));
    flipped_is_rejected(
        &snap,
        number.rotate_left(7),
        |b| decode_snapshot_record(b).is_ok(),
        "snapshot record",
    );

    let key = event_key(body, number);
    assert_eq!(split_event_key(&key), Ok((body, number)));
    let entry = encode_sequence_entry(number, number.wrapping_add(1), &key);
    let e = decode_sequence_entry(&entry).expect("an encoded sequence entry decodes");
    assert_eq!(
        (e.batch_first, e.batch_last, e.event_key),
        (number, number.wrapping_add(1), &key[..])
    );
    flipped_is_rejected(
        &entry,
        number.rotate_left(13),
        |b| decode_sequence_entry(b).is_ok(),
        "sequence entry",
    );
});
