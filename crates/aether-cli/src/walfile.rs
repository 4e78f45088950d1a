//! A read-only look at a store's write-ahead log (`aether.wal`), for `stats` and `verify`.
//!
//! The log's format is private to aether-core (`sled_store/wal.rs`); this reader follows
//! its documented layout and only reads what the tools report: the checkpoint in the
//! header (the last sequence sled holds durably and that record's CRC) and the frames
//! written since, which the next open replays. If the format changes, this reader reports
//! the header as unreadable rather than guessing.
//!
//! Layout: two 512-byte header slots at 0 and 512 (`"AETHWAL1" ‖ generation u64 ‖
//! sequence u64 ‖ crc u32 ‖ slot crc u32`, the valid slot with the higher generation wins);
//! frames from offset 4096 (`len u32 ‖ crc u32 ‖ generation u64 ‖ payload ‖ pad to 8`,
//! frame crc over generation and payload; a payload starts with its first and last
//! sequence). Zero fill or a frame of an older generation ends the log.

use std::path::Path;

const MAGIC: &[u8; 8] = b"AETHWAL1";
const SLOT_LEN: usize = 512;
const SLOT_DATA_LEN: usize = 28;
const RECORDS_START: usize = 4096;
const FRAME_HEADER_LEN: usize = 16;

/// The checkpoint recorded in the log header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub generation: u64,
    /// The last sequence sled held durably at the checkpoint (0: none yet).
    pub sequence: u64,
    /// The CRC of that sequence's event record.
    pub crc: u32,
}

/// What the log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalState {
    /// The store has no `aether.wal` (never opened durably, or not an aether store).
    Missing,
    /// Both header slots are damaged: the checkpoint is unknown.
    Unreadable(String),
    /// The header was read.
    Read(WalInfo),
}

/// The checkpoint and the frames written after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WalInfo {
    /// `None` for a log that was never checkpointed (all zero).
    pub checkpoint: Option<Checkpoint>,
    /// Frames of the current generation: saves not yet checkpointed into sled.
    pub pending_frames: u64,
    /// Lowest and highest event sequence in those frames (0, 0 when none hold events).
    pub pending_sequences: (u64, u64),
    /// A damaged frame followed by intact ones: acknowledged saves are lost.
    pub damage: Option<String>,
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn parse_slot(s: &[u8]) -> Option<Checkpoint> {
    if s.len() < SLOT_DATA_LEN + 4 || &s[0..8] != MAGIC {
        return None;
    }
    if crc32fast::hash(&s[..SLOT_DATA_LEN]) != be_u32(s, SLOT_DATA_LEN)? {
        return None;
    }
    Some(Checkpoint {
        generation: be_u64(s, 8)?,
        sequence: be_u64(s, 16)?,
        crc: be_u32(s, 24)?,
    })
}

fn frame_crc(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_be_bytes());
    h.update(payload);
    h.finalize()
}

enum Frame<'a> {
    Valid(&'a [u8], usize),
    Damaged,
    End,
}

fn frame_at(data: &[u8], at: usize, generation: u64) -> Frame<'_> {
    let (Some(len), Some(crc), Some(gen)) =
        (be_u32(data, at), be_u32(data, at + 4), be_u64(data, at + 8))
    else {
        return Frame::End;
    };
    if len == 0 && crc == 0 && gen == 0 {
        return Frame::End;
    }
    let body = at + FRAME_HEADER_LEN;
    match data.get(body..body + len as usize) {
        Some(payload) if frame_crc(gen, payload) == crc => {
            if gen == generation {
                let next = (at + FRAME_HEADER_LEN + len as usize + 7) & !7;
                Frame::Valid(payload, next)
            } else {
                Frame::End
            }
        }
        _ => Frame::Damaged,
    }
}

/// Read the log of the store at `store_dir`.
pub fn read(store_dir: &Path) -> std::io::Result<WalState> {
    let path = store_dir.join("aether.wal");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WalState::Missing),
        Err(e) => return Err(e),
    };
    let slots = [
        data.get(0..SLOT_LEN).and_then(parse_slot),
        data.get(SLOT_LEN..2 * SLOT_LEN).and_then(parse_slot),
    ];
    let checkpoint = match slots {
        [Some(a), Some(b)] => Some(if a.generation >= b.generation { a } else { b }),
        [Some(a), None] | [None, Some(a)] => Some(a),
        [None, None] if data.iter().all(|&b| b == 0) => None,
        [None, None] => {
            return Ok(WalState::Unreadable(format!(
                "{}: both header slots are damaged or in an unknown format",
                path.display()
            )))
        }
    };
    let mut info = WalInfo {
        checkpoint,
        ..WalInfo::default()
    };
    let generation = checkpoint.unwrap_or_default().generation;
    let mut at = RECORDS_START;
    loop {
        match frame_at(&data, at, generation) {
            Frame::End => break,
            Frame::Valid(payload, next) => {
                info.pending_frames += 1;
                if let (Some(first), Some(last)) = (be_u64(payload, 0), be_u64(payload, 8)) {
                    if first > 0 {
                        let (lo, hi) = &mut info.pending_sequences;
                        *lo = if *lo == 0 { first } else { (*lo).min(first) };
                        *hi = (*hi).max(last);
                    }
                }
                at = next;
            }
            Frame::Damaged => {
                // A torn last frame is an unacknowledged write; an intact frame after it
                // means acknowledged saves were lost.
                let mut probe = at + 8;
                while probe + FRAME_HEADER_LEN <= data.len() {
                    if let Frame::Valid(..) = frame_at(&data, probe, generation) {
                        info.damage = Some(format!(
                            "frame at offset {at} is damaged and an intact frame follows at offset {probe}"
                        ));
                        break;
                    }
                    probe += 8;
                }
                break;
            }
        }
    }
    Ok(WalState::Read(info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_core::{Event, EventStore, SledStore};

    #[test]
    fn reads_the_checkpoint_of_a_closed_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = SledStore::open(&path).unwrap();
        for v in 1..=3 {
            store.save_event(&Event::new("e", "T", "a", v)).unwrap();
        }
        store.close().unwrap();
        match read(&path).unwrap() {
            WalState::Read(info) => {
                assert_eq!(info.checkpoint.unwrap().sequence, 3);
                assert_eq!(info.pending_frames, 0);
                assert!(info.damage.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(read(dir.path()).unwrap(), WalState::Missing);
    }
}
