//! The sled index over the segment log (format 2). Everything here is derived from the
//! log and rebuilt from it (`aether reindex`, or at open when sled is damaged).
//!
//! Trees:
//! - `actors`: actor ID bytes → actor number (u64 BE). Numbers keep the index keys short.
//! - `index`: `actor number u64 ‖ last version u64` → a *run*: the positions of the
//!   actor's records (one per save call) written since the previous flush, keyed by the
//!   last version of the run's last record. Saves index their record in memory; a flush
//!   (the background checkpoint, about every 500 ms, and `flush`/`close`) writes one run per
//!   actor, after the log is synced through those records. So an actor's latest version is
//!   one `get_lt` seek, `get_events(actor, from)` finds the run holding `from` with one
//!   range seek and then reads on, and sled pays one entry per actor per flush instead of
//!   one per save (measured: sled spends 130–210 bytes per entry whatever its size). Each
//!   record is found in the segment holding its first sequence, at its offset.
//! - `positions`: `first sequence u64` → `offset u32`: a sparse map from sequence to a
//!   record start (the first record of each segment, then about every 64 KiB), from which
//!   `read_all` reads frames in order.
//! - `snapshots`: `actor number ‖ version` → `crc u32 ‖ JSON`; the version with its sign bit
//!   flipped ([`snapshot_key`]), so negative versions (the seed allows any) sort first.
//! - `segments`: `base u64 ‖ gen u32` → `length u64 ‖ next base u64` of each sealed segment.
//! - `meta`: the format, the durability last used, the high-water mark (`hwm`: the last
//!   sequence indexed and the log position after it) and `clean` (set by a clean close).

use super::segment::SegmentId;

pub const TREE_ACTORS: &[u8] = b"actors";
pub const TREE_INDEX: &[u8] = b"index";
pub const TREE_POSITIONS: &[u8] = b"positions";
pub const TREE_SNAPSHOTS: &[u8] = b"snapshots";
pub const TREE_SEGMENTS: &[u8] = b"segments";
pub const TREE_META: &[u8] = b"meta";

pub const META_FORMAT: &[u8] = b"format";
pub const META_DURABILITY: &[u8] = b"durability";
pub const META_HWM: &[u8] = b"hwm";
pub const META_CLEAN: &[u8] = b"clean";
/// The store format this code writes (also in the store's `FORMAT` file).
pub const FORMAT_VERSION: &[u8] = b"2";

/// Log bytes between two `positions` entries.
pub const SPARSE_EVERY: u64 = 64 * 1024;

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `index` key of (actor number, version).
pub fn index_key(actor: u64, version: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&actor.to_be_bytes());
    k[8..].copy_from_slice(&version.to_be_bytes());
    k
}

/// `snapshots` key of (actor number, version): order-preserving for every `i64`.
pub fn snapshot_key(actor: u64, version: i64) -> [u8; 16] {
    index_key(actor, (version as u64) ^ (1 << 63))
}

/// Split a `snapshots` key into (actor number, version).
pub fn split_snapshot_key(k: &[u8]) -> Option<(u64, i64)> {
    split_key(k).map(|(a, v)| (a, (v ^ (1 << 63)) as i64))
}

/// Split an `index` key into (actor number, version).
pub fn split_key(k: &[u8]) -> Option<(u64, u64)> {
    (k.len() == 16).then(|| (u64_at(k, 0).unwrap(), u64_at(k, 8).unwrap()))
}

/// Where one record of an actor is, and the actor's last version in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRecord {
    pub first_sequence: u64,
    pub offset: u32,
    pub last_version: i64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// An `index` value: the run's records, each as varints of (first sequence delta, offset,
/// last version delta), after a CRC-32 of them.
pub fn encode_run(records: &[RunRecord]) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    let (mut seq, mut version) = (0u64, 0i64);
    for r in records {
        put_varint(&mut out, r.first_sequence.wrapping_sub(seq));
        put_varint(&mut out, u64::from(r.offset));
        put_varint(&mut out, r.last_version.wrapping_sub(version) as u64);
        seq = r.first_sequence;
        version = r.last_version;
    }
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decode a run; `None` when it is damaged (checksum, truncation, records out of order).
pub fn decode_run(v: &[u8]) -> Option<Vec<RunRecord>> {
    let crc = u32_at(v, 0)?;
    if crc32fast::hash(&v[4..]) != crc {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 4;
    let (mut seq, mut version) = (0u64, 0i64);
    while at < v.len() {
        let first_sequence = seq.checked_add(get_varint(v, &mut at)?)?;
        let offset = u32::try_from(get_varint(v, &mut at)?).ok()?;
        let last_version = version.wrapping_add(get_varint(v, &mut at)? as i64);
        if first_sequence <= seq || last_version <= version {
            return None;
        }
        out.push(RunRecord {
            first_sequence,
            offset,
            last_version,
        });
        seq = first_sequence;
        version = last_version;
    }
    (!out.is_empty()).then_some(out)
}

/// A `snapshots` value.
pub fn encode_snapshot(json: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + json.len());
    v.extend_from_slice(&crc32fast::hash(json).to_be_bytes());
    v.extend_from_slice(json);
    v
}

/// The JSON of a `snapshots` value, if its checksum matches.
pub fn decode_snapshot(v: &[u8]) -> Option<&[u8]> {
    let crc = u32_at(v, 0)?;
    let json = &v[4..];
    (crc32fast::hash(json) == crc).then_some(json)
}

/// `segments` key.
pub fn segment_key(id: SegmentId) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&id.base.to_be_bytes());
    k[8..].copy_from_slice(&id.gen.to_be_bytes());
    k
}

/// `segments` value: (length, next base).
pub fn encode_sealed(len: u64, next_base: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&len.to_be_bytes());
    v[8..].copy_from_slice(&next_base.to_be_bytes());
    v
}

pub fn decode_sealed(v: &[u8]) -> Option<(u64, u64)> {
    (v.len() == 16).then(|| (u64_at(v, 0).unwrap(), u64_at(v, 8).unwrap()))
}

/// The high-water mark: everything in the log before `(segment, end)` is indexed, and
/// `sequence` is the last event sequence there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hwm {
    pub sequence: u64,
    pub segment: SegmentId,
    pub end: u64,
}

impl Hwm {
    pub fn encode(self) -> [u8; 28] {
        let mut v = [0u8; 28];
        v[..8].copy_from_slice(&self.sequence.to_be_bytes());
        v[8..20].copy_from_slice(&segment_key(self.segment));
        v[20..].copy_from_slice(&self.end.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Hwm> {
        (v.len() == 28).then(|| Hwm {
            sequence: u64_at(v, 0).unwrap(),
            segment: SegmentId {
                base: u64_at(v, 8).unwrap(),
                gen: u32_at(v, 16).unwrap(),
            },
            end: u64_at(v, 20).unwrap(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_and_damage_is_refused() {
        let run = vec![
            RunRecord {
                first_sequence: 7,
                offset: 512,
                last_version: 1,
            },
            RunRecord {
                first_sequence: 300_000,
                offset: u32::MAX,
                last_version: 5,
            },
        ];
        let v = encode_run(&run);
        assert_eq!(decode_run(&v), Some(run));
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 4;
            assert_eq!(decode_run(&bad), None, "flip at {i}");
        }
        assert_eq!(decode_run(&v[..v.len() - 1]), None);
    }
}
