//! The sled index over the segment log (format 2). Everything here is derived from the
//! log and rebuilt from it (`aether reindex`, or at open when sled is damaged).
//!
//! Trees:
//! - `actors`: actor ID bytes → actor number (u64 BE). Numbers keep the index keys short.
//! - `index`: `actor number u64 ‖ last version u64` → `first sequence u64 ‖ offset u32`:
//!   one entry per save call (a record), keyed by the last version it holds, so an actor's
//!   latest version is one `get_lt` seek and `get_events(actor, from)` finds the record
//!   holding `from` with one range seek, then reads on. The record is found in the segment
//!   that holds its first sequence, at `offset`.
//! - `positions`: `first sequence u64` → `offset u32`: a sparse map from sequence to a
//!   record start (the first record of each segment, then about every 64 KiB), from which
//!   `read_all` reads frames in order.
//! - `snapshots`: `actor number ‖ version u64` → `crc u32 ‖ JSON`.
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

/// Split an `index` or `snapshots` key into (actor number, version).
pub fn split_key(k: &[u8]) -> Option<(u64, u64)> {
    (k.len() == 16).then(|| (u64_at(k, 0).unwrap(), u64_at(k, 8).unwrap()))
}

/// An `index` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub first_sequence: u64,
    pub offset: u32,
}

impl Entry {
    pub fn encode(self) -> [u8; 12] {
        let mut v = [0u8; 12];
        v[..8].copy_from_slice(&self.first_sequence.to_be_bytes());
        v[8..].copy_from_slice(&self.offset.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Entry> {
        (v.len() == 12).then(|| Entry {
            first_sequence: u64_at(v, 0).unwrap(),
            offset: u32_at(v, 8).unwrap(),
        })
    }
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
