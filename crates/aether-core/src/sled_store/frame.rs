//! CRC-framed records in a file, and how to tell a write cut short by a crash from damage
//! to a record that was written in full. Shared by the segment log and the format-1
//! write-ahead log (read only for migration); pure functions of the file's bytes, so
//! recovery and `aether verify` read a file the same way.
//!
//! A frame is `len u32 ‖ crc u32 ‖ salt u64 ‖ payload ‖ zero pad to 8`, all big-endian;
//! the CRC covers the salt and the payload. The salt ties a frame to its file (the
//! write-ahead log's generation, a segment's base sequence), so a frame copied or left
//! from elsewhere ends the log rather than being read as this file's.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// `len u32 ‖ crc u32 ‖ salt u64`.
pub const FRAME_HEADER_LEN: usize = 16;

/// Parses a frame's payload into the first and last sequence it holds ((0, 0) for a record
/// without events), or `None` when it is malformed.
pub type ParsePayload = fn(&[u8]) -> Option<(u64, u64)>;

// ---------------------------------------------------------------------------------------
// Reading the log: pure functions of the file's bytes, shared by recovery (`Wal::open`) and
// `aether verify` (`crate::verify`), so that both read the log the same way.

/// The unit a write cut short leaves whole: each aligned 512-byte sector of the file holds
/// either what was written or what was there before (disks write whole sectors; a process
/// killed mid-write leaves whole pages).
pub const SECTOR: usize = 512;
/// The reflected CRC-32 polynomial (IEEE), as `crc32fast` computes it.
const CRC32_POLY: u32 = 0xEDB8_8320;

pub fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

pub fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The CRC of a frame: over its salt and its payload.
pub fn frame_crc(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_be_bytes());
    h.update(payload);
    h.finalize()
}

pub fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// What lies at an offset of the frame area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameAt<'a> {
    /// A frame of the generation asked for whose checksum matches: its payload (not yet
    /// parsed) and the offset of the next frame.
    Intact(&'a [u8], usize),
    /// Neither zero fill nor an intact frame: a frame whose checksum does not match, or
    /// whose length runs past the end of the file.
    Damaged,
    /// Zero fill, an intact frame of another generation (recycled space), or the end of the
    /// file: the end of the log.
    End,
}

/// Read the frame at `at` as a frame of `generation`.
pub fn frame_at(data: &[u8], at: usize, generation: u64) -> FrameAt<'_> {
    let (Some(len), Some(crc), Some(gen)) =
        (be_u32(data, at), be_u32(data, at + 4), be_u64(data, at + 8))
    else {
        return FrameAt::End;
    };
    if len == 0 && crc == 0 && gen == 0 {
        return FrameAt::End;
    }
    let body = at + FRAME_HEADER_LEN;
    match data.get(body..body + len as usize) {
        Some(payload) if frame_crc(gen, payload) == crc => {
            if gen == generation {
                FrameAt::Intact(payload, at + padded(FRAME_HEADER_LEN + len as usize))
            } else {
                FrameAt::End
            }
        }
        _ => FrameAt::Damaged,
    }
}

/// The first intact frame of `generation` after offset `from`, probing every 8 bytes (a
/// frame found there was written after the data at `from`).
pub fn intact_frame_after(data: &[u8], from: usize, generation: u64) -> Option<usize> {
    let mut probe = from + 8;
    while probe + FRAME_HEADER_LEN <= data.len() {
        // Cheap filter first: most positions are zero fill or other generations.
        if be_u64(data, probe + 8) == Some(generation) {
            if let FrameAt::Intact(..) = frame_at(data, probe, generation) {
                return Some(probe);
            }
        }
        probe += 8;
    }
    None
}

/// One step further in a reflected CRC-32: how an error one bit earlier in the message
/// shows in the checksum.
fn crc_step(v: u32) -> u32 {
    if v & 1 == 1 {
        (v >> 1) ^ CRC32_POLY
    } else {
        v >> 1
    }
}

/// Where to flip one bit of `message` (byte, bit) so that its CRC-32 becomes `crc`, if any.
///
/// CRC-32 is affine: flipping bit `i` changes the checksum by a value that depends only on
/// how many bits follow `i`, so one pass from the end of the message finds the bit whose
/// change equals the observed difference. Linear in the message length.
pub fn single_bit_fix(message: &[u8], crc: u32) -> Option<(usize, u8)> {
    let syndrome = crc32fast::hash(message) ^ crc;
    if syndrome == 0 {
        return None;
    }
    // The change made by the last bit processed (bit 7 of the last byte: reflected CRCs
    // take each byte's bits from the lowest).
    let mut v = CRC32_POLY;
    for byte in (0..message.len()).rev() {
        for bit in (0..8u8).rev() {
            if v == syndrome {
                return Some((byte, bit));
            }
            v = crc_step(v);
        }
    }
    None
}

/// If the damaged frame at `at` is one flipped bit away from an intact frame of
/// `generation` whose payload parses: where that bit is (offset in the file) and the
/// frame's first and last sequence.
pub fn one_bit_from_intact(
    data: &[u8],
    at: usize,
    generation: u64,
    payload_sequences: ParsePayload,
) -> Option<(usize, (u64, u64))> {
    let len = be_u32(data, at)? as usize;
    let crc = be_u32(data, at + 4)?;
    let gen = be_u64(data, at + 8)?;
    let body = at + FRAME_HEADER_LEN;
    let payload = |len: usize| data.get(body..body.checked_add(len)?);
    if gen == generation {
        // The bit is in the length field.
        for bit in 0..32 {
            let fixed = len ^ (1 << bit);
            if let Some(p) = payload(fixed) {
                if frame_crc(gen, p) == crc {
                    if let Some(seqs) = payload_sequences(p) {
                        return Some((at + 3 - bit / 8, seqs));
                    }
                }
            }
        }
    }
    let p = payload(len)?;
    if gen == generation {
        // The bit is in the stored checksum.
        let diff = frame_crc(gen, p) ^ crc;
        if diff.count_ones() == 1 {
            let byte = at + 4 + 3 - diff.trailing_zeros() as usize / 8;
            return payload_sequences(p).map(|seqs| (byte, seqs));
        }
    }
    if (gen ^ generation).count_ones() > 1 {
        return None;
    }
    // The bit is in the generation or the payload, both covered by the checksum.
    let mut message = Vec::with_capacity(8 + p.len());
    message.extend_from_slice(&gen.to_be_bytes());
    message.extend_from_slice(p);
    let (byte, bit) = single_bit_fix(&message, crc)?;
    message[byte] ^= 1 << bit;
    if be_u64(&message, 0)? != generation {
        return None;
    }
    payload_sequences(&message[8..]).map(|seqs| (at + 8 + byte, seqs))
}

/// A header slot as found in the file.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// Its offset in the file.
    pub at: usize,
    /// The length of its payload, which starts after the frame header.
    pub payload_len: usize,
    /// The offset of the next frame (after the padding to 8 bytes).
    pub next: usize,
    /// First and last sequence of the events it holds; (0, 0) for a snapshot.
    pub sequences: (u64, u64),
}

impl FrameRef {
    /// The payload's bytes in `data`.
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let body = self.at + FRAME_HEADER_LEN;
        &data[body..body + self.payload_len]
    }
}

/// Why a frame that ends the log must be damage to an acknowledged save rather than a write
/// cut short by a crash. Recovery refuses the log; verify reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// An intact frame of the same generation follows the damaged one: it was written
    /// later, so the damaged frame had been written in full (and acknowledged) before.
    BeforeIntact { at: usize, intact_at: usize },
    /// The last frame differs from an intact frame by one bit (at offset `bit_at`), in a
    /// sector that was written: the frame's bytes in that sector are not all zero, and a
    /// sector a write cut short did not reach holds zero fill (checkpoints zero the frames
    /// they end).
    OneBitFromIntact {
        at: usize,
        bit_at: usize,
        sequences: (u64, u64),
    },
    /// The last frame's checksum matches but its payload does not parse: it was written in
    /// full, by another format version or a bug, and cannot be dropped as cut short.
    Unparseable { at: usize },
    /// The last frame fails its checksum although every sector it spans was written (none
    /// is zero fill), or its header was written yet names a length no frame can have: a
    /// write cut short leaves the sectors it did not reach as zeros, so this frame was
    /// written in full and damaged since. (Segment log only.)
    WrittenInFull { at: usize },
    /// The file ends inside the frame at `at`, where the zero fill that always runs
    /// ahead of the writer should be: it was truncated. (Segment log only.)
    FileEndsInFrame { at: usize },
}

/// `sequence 5`, `sequences 5..=7`, `a snapshot`.
pub fn describe_sequences((first, last): (u64, u64)) -> String {
    match (first, last) {
        (0, 0) => "a snapshot".to_owned(),
        (f, l) if f == l => format!("sequence {f}"),
        (f, l) => format!("sequences {f}..={l}"),
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Damage::BeforeIntact { at, intact_at } => write!(
                f,
                "frame at offset {at} is damaged and an intact frame follows at offset {intact_at}"
            ),
            Damage::OneBitFromIntact {
                at,
                bit_at,
                sequences,
            } => write!(
                f,
                "the last frame (offset {at}, {}) differs from an intact frame by one bit at offset {bit_at}: it was damaged after it was written, not cut short by a crash, so it held an acknowledged save",
                describe_sequences(sequences)
            ),
            Damage::Unparseable { at } => write!(
                f,
                "the frame at offset {at} matches its checksum but its payload does not parse (another format version?)"
            ),
            Damage::FileEndsInFrame { at } => write!(
                f,
                "the file ends inside the frame at offset {at}, where zero fill always follows the frames: it was truncated, and acknowledged records from that frame on are lost"
            ),
            Damage::WrittenInFull { at } => write!(
                f,
                "the last frame (offset {at}) fails its checksum although it was written in full (no sector of it is zero fill): it was damaged after it was written, so it held an acknowledged save"
            ),
        }
    }
}

/// How the log ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Zero fill, an intact frame of another generation, or the end of the file.
    End,
    /// A damaged frame that nothing shows was written in full: a write cut short by a crash
    /// (never acknowledged), dropped.
    ///
    /// `one_bit_from_intact` (offset of the bit, the frame's sequences) when it is one bit
    /// away from an intact frame, but in a sector where the frame's bytes are all zero: a
    /// write cut short leaves that too, when what it did not write there was a single byte
    /// with a single bit set. Recovery drops it; verify reports it.
    CutShort {
        one_bit_from_intact: Option<(usize, (u64, u64))>,
    },
    /// A damaged frame that held an acknowledged save.
    Damaged(Damage),
}

/// Whether the damaged frame at `at` ends a log cut short by a crash, or was written in
/// full (and acknowledged) and damaged since.
pub fn classify_damaged(
    data: &[u8],
    at: usize,
    generation: u64,
    payload_sequences: ParsePayload,
) -> Ending {
    if let Some(intact_at) = intact_frame_after(data, at, generation) {
        return Ending::Damaged(Damage::BeforeIntact { at, intact_at });
    }
    match one_bit_from_intact(data, at, generation, payload_sequences) {
        Some((bit_at, sequences)) if sector_was_written(data, at, bit_at) => {
            Ending::Damaged(Damage::OneBitFromIntact {
                at,
                bit_at,
                sequences,
            })
        }
        one_bit_from_intact => Ending::CutShort {
            one_bit_from_intact,
        },
    }
}

/// Whether the sector holding offset `bit_at` shows that the frame starting at `at` was
/// written there: some byte of it from `at` on is not zero. A write cut short leaves the
/// sectors it did not reach as they were, and past the log's end they are zero fill; bytes
/// before `at` belong to frames written earlier.
fn sector_was_written(data: &[u8], at: usize, bit_at: usize) -> bool {
    let start = (bit_at / SECTOR * SECTOR).max(at);
    let end = (bit_at / SECTOR * SECTOR + SECTOR).min(data.len());
    data.get(start..end)
        .is_some_and(|sector| sector.iter().any(|&b| b != 0))
}

/// Overwrite `from..to` of `file` with zeros, in writes of at most 1 MiB.
pub fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; (to.saturating_sub(from) as usize).min(1 << 20)];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// `fsync` a directory so entries created in it survive power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
