//! The store's own write-ahead log: what makes a durable save durable, and the high-water
//! mark that lets the store notice when sled returns less than it acknowledged.
//!
//! Why a log of our own: sled buffers writes and its `flush()` uses `sync_file_range`, which
//! reaches neither the disk's write cache nor file metadata. A durable save therefore writes
//! its sled puts into this log and `fdatasync`s it (one sync per group of concurrent saves);
//! sled itself is flushed and fully synced only at checkpoints.
//!
//! File layout (`aether.wal`):
//! - two 512-byte header slots at offsets 0 and 512, written alternately; the valid slot
//!   with the higher generation wins. A slot records the checkpoint: the last sequence
//!   known durable *in sled* and the CRC of that event's record.
//! - frames from offset 4096: `len u32 ‖ crc u32 ‖ generation u64 ‖ payload ‖ pad to 8`.
//!   Frames of an older generation (left by a crash between a checkpoint and its zeroing)
//!   end the log.
//!
//! The file is zero-filled to its capacity once and then reused in place, so a commit's
//! `fdatasync` writes data only, never file-size metadata. Each checkpoint, once its slot is
//! durable, zeroes the frames of the generation it ends: past the log's end there are only
//! zeros, so a write cut short leaves zeros in the sectors it did not reach, never an older
//! frame that a workload of same-sized saves makes look almost like the one being written.
//!
//! Reading ([`scan`]) is a pure function of the file's bytes, shared with `aether verify`.
//! A damaged frame ends the log; it is dropped as a write cut short by a crash (never
//! acknowledged) only when nothing shows it was written in full: a sector that differs from
//! the intact frame yet is not zero fill was written, so damage there came later. Damage
//! to a frame that was written in full — an acknowledged save — makes the store refuse to
//! open instead. A newest checkpoint lost with its header slot is shown by the frames
//! written after it, which are read all the same.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(crate) use crate::sled_store::frame::*;

/// The log's file name in a store directory.
pub(crate) const FILE_NAME: &str = "aether.wal";
const MAGIC: &[u8; 8] = b"AETHWAL1";
/// Length of a header slot (at offsets 0 and `SLOT_LEN`).
pub(crate) const SLOT_LEN: usize = 512;
/// The checkpoint's bytes in a slot, before their CRC; zeros follow the CRC.
pub(crate) const SLOT_DATA_LEN: usize = 8 + 8 + 8 + 4;
/// Offset of the first frame.
pub(crate) const RECORDS_START: u64 = 4096;

/// Which sled tree a logged put goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TreeId {
    Events = 0,
    Sequence = 1,
    Snapshots = 2,
}

/// The checkpoint recorded in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Checkpoint {
    pub generation: u64,
    pub sequence: u64,
    pub crc: u32,
}

/// One logged group of sled puts (a batch of events, or a snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    /// First and last sequence of the events it holds; (0, 0) for a snapshot.
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub puts: Vec<(TreeId, Vec<u8>, Vec<u8>)>,
}

/// Builds a payload without intermediate allocations per put.
#[derive(Debug, Default)]
pub(crate) struct PayloadBuilder {
    buf: Vec<u8>,
    count: u32,
}

impl PayloadBuilder {
    pub fn new(first_sequence: u64, last_sequence: u64, size_hint: usize) -> Self {
        let mut buf = Vec::with_capacity(20 + size_hint);
        buf.extend_from_slice(&first_sequence.to_be_bytes());
        buf.extend_from_slice(&last_sequence.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        PayloadBuilder { buf, count: 0 }
    }

    pub fn put(&mut self, tree: TreeId, key: &[u8], value: &[u8]) {
        self.buf.push(tree as u8);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(key);
        self.buf
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf[16..20].copy_from_slice(&self.count.to_be_bytes());
        self.buf
    }
}

/// of a payload that turns out malformed.
fn walk_payload<'a>(
    b: &'a [u8],
    mut put: impl FnMut(TreeId, &'a [u8], &'a [u8]),
) -> Option<(u64, u64)> {
    let first = be_u64(b, 0)?;
    let last = be_u64(b, 8)?;
    let count = be_u32(b, 16)?;
    let mut at = 20usize;
    for _ in 0..count {
        let tree = match *b.get(at)? {
            0 => TreeId::Events,
            1 => TreeId::Sequence,
            2 => TreeId::Snapshots,
            _ => return None,
        };
        let klen = be_u32(b, at + 1)? as usize;
        let key = b.get(at + 5..(at + 5).checked_add(klen)?)?;
        at += 5 + klen;
        let vlen = be_u32(b, at)? as usize;
        let value = b.get(at + 4..(at + 4).checked_add(vlen)?)?;
        at += 4 + vlen;
        put(tree, key, value);
    }
    (at == b.len()).then_some((first, last))
}

/// The first and last sequence of a well-formed payload ((0, 0): a snapshot).
pub(crate) fn payload_sequences(b: &[u8]) -> Option<(u64, u64)> {
    walk_payload(b, |_, _, _| {})
}

fn parse_payload(b: &[u8]) -> Option<Payload> {
    let mut puts = Vec::new();
    let (first_sequence, last_sequence) = walk_payload(b, |tree, key, value| {
        puts.push((tree, key.to_vec(), value.to_vec()))
    })?;
    Some(Payload {
        first_sequence,
        last_sequence,
        puts,
    })
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// All zero (or cut off by the end of the file while zero): never written.
    Empty,
    /// A checkpoint whose checksum matches.
    Valid(Checkpoint),
    /// Neither: damaged, or written in an unknown format.
    Damaged,
}

/// An intact frame of the log.
/// The header slots, the frames the next open replays, and how the log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The slots at offsets 0 and 512.
    pub slots: [Slot; 2],
    /// The newest valid checkpoint; `None` for a log never checkpointed (all zero).
    pub checkpoint: Option<Checkpoint>,
    /// The generation of the frames read: the checkpoint's, or the next one when the
    /// other slot, which held the newest checkpoint, is damaged (see `lost_slot`).
    pub generation: u64,
    /// The offset of a slot that is no longer valid although frames of the generation after
    /// `checkpoint` show that it held the newest checkpoint. Its frames are read all the
    /// same: they can only have been written after that checkpoint, which could only have
    /// been written once sled was durable through the older one.
    pub lost_slot: Option<usize>,
    /// The intact frames of `generation`, in log order.
    pub frames: Vec<FrameRef>,
    /// The offset where reading stopped: after the last frame read.
    pub end: usize,
    /// What is at `end`.
    pub ending: Ending,
}

/// Neither header slot holds a valid checkpoint, and the file is not all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderUnreadable;

/// Read the log's bytes as recovery does.
///
/// A damaged frame ends the log. It is taken for a write cut short by a crash (and dropped:
/// that write was never acknowledged) unless something shows it was written in full, and
/// so acknowledged: an intact frame of its generation after it, a checksum that matches
/// (over a payload that does not parse), or a difference of one bit from an intact frame in
/// a sector that was written (see [`Damage::OneBitFromIntact`]). A write cut short leaves
/// the sectors it did not reach as zero fill.
pub(crate) fn scan(data: &[u8]) -> Result<Scan, HeaderUnreadable> {
    let slots = [0, 1].map(|i| {
        let from = (i * SLOT_LEN).min(data.len());
        let raw = &data[from..(from + SLOT_LEN).min(data.len())];
        if raw.iter().all(|&b| b == 0) {
            Slot::Empty
        } else if raw.len() < SLOT_LEN {
            Slot::Damaged
        } else {
            parse_slot(raw).map_or(Slot::Damaged, Slot::Valid)
        }
    });
    let checkpoint = match slots {
        [Slot::Valid(a), Slot::Valid(b)] => Some(if a.generation >= b.generation { a } else { b }),
        [Slot::Valid(a), _] | [_, Slot::Valid(a)] => Some(a),
        _ if data.iter().all(|&b| b == 0) => None,
        _ => return Err(HeaderUnreadable),
    };
    let records_start = RECORDS_START as usize;
    let mut generation = checkpoint.map_or(0, |c| c.generation);
    let mut lost_slot = None;
    // One valid slot: if the other held the next checkpoint and was damaged since, the
    // frames after it are of the next generation. Any trace of one proves it existed.
    if let (Some(c), Some(other)) = (
        checkpoint,
        slots.iter().position(|s| !matches!(s, Slot::Valid(_))),
    ) {
        if let Some(next) = c.generation.checked_add(1) {
            let traced = match frame_at(data, records_start, next) {
                FrameAt::Intact(..) => true,
                FrameAt::Damaged => {
                    one_bit_from_intact(data, records_start, next, payload_sequences).is_some()
                        || intact_frame_after(data, records_start, next).is_some()
                }
                FrameAt::End => intact_frame_after(data, records_start, next).is_some(),
            };
            if traced {
                generation = next;
                lost_slot = Some(other * SLOT_LEN);
            }
        }
    }

    let mut frames = Vec::new();
    let mut at = records_start;
    let ending = loop {
        match frame_at(data, at, generation) {
            FrameAt::End => break Ending::End,
            FrameAt::Intact(payload, next) => match payload_sequences(payload) {
                Some(sequences) => {
                    frames.push(FrameRef {
                        at,
                        payload_len: payload.len(),
                        next,
                        sequences,
                    });
                    at = next;
                }
                None => {
                    break Ending::Damaged(match intact_frame_after(data, at, generation) {
                        Some(intact_at) => Damage::BeforeIntact { at, intact_at },
                        None => Damage::Unparseable { at },
                    })
                }
            },
            FrameAt::Damaged => break classify_damaged(data, at, generation, payload_sequences),
        }
    };
    Ok(Scan {
        slots,
        checkpoint,
        generation,
        lost_slot,
        frames,
        end: at,
        ending,
    })
}

#[derive(Debug)]
pub(crate) struct Recovered {
    /// The checkpoint to start from (its generation is that of the frames read).
    pub checkpoint: Checkpoint,
    pub payloads: Vec<Payload>,
    /// Set when the log shows that acknowledged saves cannot be recovered (a damaged frame
    /// written in full, see [`Damage`]): the store must refuse to open.
    pub damage: Option<String>,
}

/// The open log. Only the commit leader (or a checkpoint) touches it.
#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    checkpoint: Checkpoint,
    offset: u64,
    /// The end of the frame area's bytes that may not be zero: up to here, the next
    /// checkpoint zeroes them.
    dirty_end: u64,
    capacity: u64,
    frame_buf: Vec<u8>,
    /// Set when a write failed (an append, or a checkpoint after it began to write): what
    /// the file holds is then unknown, so nothing more is written until the store is
    /// reopened, whose recovery reads what is there and zeroes the rest.
    broken: bool,
}

fn slot_bytes(c: &Checkpoint) -> [u8; SLOT_LEN] {
    let mut s = [0u8; SLOT_LEN];
    s[0..8].copy_from_slice(MAGIC);
    s[8..16].copy_from_slice(&c.generation.to_be_bytes());
    s[16..24].copy_from_slice(&c.sequence.to_be_bytes());
    s[24..28].copy_from_slice(&c.crc.to_be_bytes());
    let crc = crc32fast::hash(&s[..SLOT_DATA_LEN]);
    s[SLOT_DATA_LEN..SLOT_DATA_LEN + 4].copy_from_slice(&crc.to_be_bytes());
    s
}

impl Wal {
    /// The log's path inside a store directory.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// Open (or create) the log and read what it holds.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<(Wal, Recovered)> {
        let path = Wal::path_in(dir);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut data = Vec::new();
        if existed {
            use std::io::Read;
            (&file).read_to_end(&mut data)?;
        }
        let scan = scan(&data).map_err(|HeaderUnreadable| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: both header slots are damaged; the log's checkpoint is unknown",
                    path.display()
                ),
            )
        })?;
        // After a lost newest checkpoint its frames are read (see `Scan::lost_slot`): the
        // older checkpoint's sequence is the one sled is checked against, and the next
        // checkpoint continues the frames' generation.
        let checkpoint = Checkpoint {
            generation: scan.generation,
            ..scan.checkpoint.unwrap_or_default()
        };
        let payloads = scan
            .frames
            .iter()
            .map(|f| parse_payload(f.payload(&data)).expect("scan parsed it"))
            .collect();
        let damage = match scan.ending {
            Ending::Damaged(d) => Some(format!("{}: {d}", path.display())),
            Ending::End | Ending::CutShort { .. } => None,
        };
        let at = scan.end;
        // A crash can leave a frame cut short past `at`, or (between a checkpoint's slot and
        // its zeroing) an older generation's frames: all of it is zeroed at the next
        // checkpoint, which comes before any new frame (the store checkpoints at open).
        let dirty_end = data
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last as u64 + 1)
            .max(RECORDS_START);
        let wal = Wal {
            file,
            path,
            checkpoint,
            offset: at as u64,
            dirty_end,
            capacity: capacity.max(RECORDS_START * 2),
            frame_buf: Vec::new(),
            broken: false,
        };
        Ok((
            wal,
            Recovered {
                checkpoint,
                payloads,
                damage,
            },
        ))
    }

    /// Zero-fill the file to its capacity so later commits overwrite in place.
    pub fn preallocate(&mut self) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        if len >= self.capacity {
            return Ok(());
        }
        write_zeros(&self.file, len, self.capacity)?;
        self.file.sync_all()?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))
    }

    /// Whether appending `bytes` more payload bytes would pass the capacity.
    pub fn needs_checkpoint(&self, payload_bytes: usize, frames: usize) -> bool {
        let need = payload_bytes + frames * (FRAME_HEADER_LEN + 8);
        self.offset > RECORDS_START && self.offset + need as u64 > self.capacity
    }

    fn refuse_if_broken(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(format!(
                "{}: an earlier write to the log failed; reopen the store",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Append frames for `payloads` and `fdatasync`. On error nothing is acknowledged.
    pub fn append<'a>(&mut self, payloads: impl Iterator<Item = &'a [u8]>) -> io::Result<()> {
        self.refuse_if_broken()?;
        let generation = self.checkpoint.generation;
        let buf = &mut self.frame_buf;
        buf.clear();
        for p in payloads {
            buf.extend_from_slice(&(p.len() as u32).to_be_bytes());
            buf.extend_from_slice(&frame_crc(generation, p).to_be_bytes());
            buf.extend_from_slice(&generation.to_be_bytes());
            buf.extend_from_slice(p);
            buf.resize(padded(buf.len()), 0);
        }
        if buf.is_empty() {
            return Ok(());
        }
        // Even a write that fails may have reached the file, and writing at the same offset
        // again would put a frame over a nearly identical one of the same generation.
        self.dirty_end = self.dirty_end.max(self.offset + buf.len() as u64);
        self.broken = true;
        self.file.write_all_at(buf, self.offset)?;
        self.file.sync_data()?;
        self.broken = false;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Record that sled is durable through `sequence` (whose record has `crc`) and start a
    /// new generation at the front of the file, over zeros. The caller has flushed and
    /// synced sled.
    ///
    /// The old generation's frames are zeroed only once the slot that ends them is durable
    /// (before, they are the only copy of saves the older checkpoint does not cover), and
    /// the zeros are durable before any frame of the new generation is written.
    pub fn checkpoint(&mut self, sequence: u64, crc: u32) -> io::Result<()> {
        self.refuse_if_broken()?;
        let next = Checkpoint {
            generation: self.checkpoint.generation + 1,
            sequence,
            crc,
        };
        self.broken = true;
        let slot = (next.generation % 2) * SLOT_LEN as u64;
        self.file.write_all_at(&slot_bytes(&next), slot)?;
        self.file.sync_data()?;
        self.checkpoint = next;
        self.offset = RECORDS_START;
        if self.dirty_end > RECORDS_START {
            write_zeros(&self.file, RECORDS_START, self.dirty_end)?;
            self.file.sync_data()?;
            self.dirty_end = RECORDS_START;
        }
        self.broken = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seq: u64) -> Vec<u8> {
        let mut b = PayloadBuilder::new(seq, seq, 16);
        b.put(TreeId::Sequence, &seq.to_be_bytes(), b"v");
        b.put(TreeId::Events, b"k", &[7u8; 33]);
        b.finish()
    }

    #[test]
    fn frames_survive_reopen_and_generations_end_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert!(rec.payloads.is_empty());
        wal.preallocate().unwrap();
        wal.checkpoint(0, 0).unwrap();
        let ps: Vec<_> = (1..=3).map(payload).collect();
        wal.append(ps.iter().map(Vec::as_slice)).unwrap();
        drop(wal);
        let (mut wal, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(rec.payloads.len(), 3);
        assert_eq!(rec.payloads[2].last_sequence, 3);
        assert_eq!(rec.payloads[0].puts[1].2, vec![7u8; 33]);
        assert!(rec.damage.is_none());
        // After a checkpoint the old frames are stale, and the new one overwrites the first.
        wal.checkpoint(3, 99).unwrap();
        wal.append(std::iter::once(payload(4).as_slice())).unwrap();
        drop(wal);
        let (_, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(rec.checkpoint.sequence, 3);
        assert_eq!(rec.checkpoint.crc, 99);
        assert_eq!(rec.payloads.len(), 1);
        assert_eq!(rec.payloads[0].first_sequence, 4);
    }

    #[test]
    fn damage_before_intact_frames_is_reported_but_a_torn_tail_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
        wal.preallocate().unwrap();
        wal.checkpoint(0, 0).unwrap();
        let ps: Vec<_> = (1..=3).map(payload).collect();
        wal.append(ps.iter().map(Vec::as_slice)).unwrap();
        drop(wal);
        let path = Wal::path_in(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let last_frame = RECORDS_START as usize + 2 * padded(FRAME_HEADER_LEN + ps[0].len());
        // The last frame neither intact nor one bit away from intact (eight bits differ):
        // taken for a write cut short.
        bytes[last_frame + 20] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let (_, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(rec.payloads.len(), 2);
        assert!(rec.damage.is_none());
        // Damage in the middle: reported.
        bytes[last_frame + 20] ^= 0xFF;
        bytes[RECORDS_START as usize + 20] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (_, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert!(rec.payloads.is_empty());
        assert!(rec.damage.is_some());
    }

    /// A log of `n` frames of generation 1 (checkpoint at sequence 0), and its bytes.
    fn log_of(dir: &Path, n: u64) -> Vec<u8> {
        let (mut wal, _) = Wal::open(dir, 64 * 1024).unwrap();
        wal.preallocate().unwrap();
        wal.checkpoint(0, 0).unwrap();
        let ps: Vec<_> = (1..=n).map(payload).collect();
        wal.append(ps.iter().map(Vec::as_slice)).unwrap();
        std::fs::read(Wal::path_in(dir)).unwrap()
    }

    fn reopen(dir: &Path, bytes: &[u8]) -> Recovered {
        std::fs::write(Wal::path_in(dir), bytes).unwrap();
        Wal::open(dir, 64 * 1024).unwrap().1
    }

    #[test]
    fn a_flipped_bit_anywhere_in_the_last_frame_is_damage_not_a_write_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = log_of(dir.path(), 3);
        let clean = scan(&bytes).unwrap();
        assert_eq!(clean.frames.len(), 3);
        assert_eq!(clean.ending, Ending::End);
        let last = clean.frames[2];
        let end = last.at + FRAME_HEADER_LEN + last.payload_len;
        for byte in last.at..end {
            for bit in 0..8 {
                let mut d = bytes.clone();
                d[byte] ^= 1 << bit;
                let s = scan(&d).unwrap();
                assert_eq!(s.frames.len(), 2, "byte {byte} bit {bit}");
                assert_eq!(
                    s.ending,
                    Ending::Damaged(Damage::OneBitFromIntact {
                        at: last.at,
                        bit_at: byte,
                        sequences: (3, 3)
                    }),
                    "byte {byte} bit {bit}"
                );
            }
        }
        // Through `Wal::open`: the damage is reported (the store refuses to open), naming
        // the frame's offset and sequence.
        let mut d = bytes.clone();
        d[end - 1] ^= 0x10;
        let rec = reopen(dir.path(), &d);
        let damage = rec.damage.expect("damage reported");
        assert!(
            damage.contains(&format!(
                "the last frame (offset {}, sequence 3) differs from an intact frame by one bit at offset {}",
                last.at,
                end - 1
            )),
            "{damage}"
        );
    }

    #[test]
    fn a_write_cut_short_over_zero_fill_is_dropped_wherever_it_stops() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = log_of(dir.path(), 3);
        let last = scan(&bytes).unwrap().frames[2];
        let end = last.at + FRAME_HEADER_LEN + last.payload_len;
        for cut in last.at + 1..end {
            let mut d = bytes.clone();
            d[cut..end].fill(0);
            let s = scan(&d).unwrap();
            assert_eq!(s.frames.len(), 2, "cut at {cut}");
            assert!(
                matches!(s.ending, Ending::CutShort { .. } | Ending::End),
                "cut at {cut}: {:?}",
                s.ending
            );
        }
        let mut d = bytes.clone();
        d[last.at + 40..end].fill(0);
        let rec = reopen(dir.path(), &d);
        assert_eq!(rec.payloads.len(), 2);
        assert!(rec.damage.is_none(), "{:?}", rec.damage);
    }

    /// A frame several sectors long whose payload differs little from one sequence to the
    /// next, as a workload of same-sized events makes them.
    fn long_payload(seq: u64) -> Vec<u8> {
        let mut value = vec![b't'; 1400];
        value.extend_from_slice(format!("\"v\":{seq}}}").as_bytes());
        let mut b = PayloadBuilder::new(seq, seq, value.len() + 32);
        b.put(TreeId::Sequence, &seq.to_be_bytes(), b"entry");
        b.put(TreeId::Events, b"key", &value);
        b.finish()
    }

    #[test]
    fn a_recycled_log_is_zero_under_its_frames_so_a_cut_is_dropped_and_a_flipped_bit_refused() {
        // Generation after generation of same-sized frames at the same offsets: without
        // the zeroing at each checkpoint, under the last frame would lie an older
        // generation's frame that differs from it in a few bits.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
        wal.preallocate().unwrap();
        let path = Wal::path_in(dir.path());
        let mut sequence = 0;
        let mut checked = 0;
        for generation in 1..=12u64 {
            wal.checkpoint(sequence, 0).unwrap();
            let fresh = std::fs::read(&path).unwrap();
            assert!(
                fresh[RECORDS_START as usize..].iter().all(|&b| b == 0),
                "generation {generation} starts over frames of the one before"
            );
            for _ in 0..4 {
                let before = std::fs::read(&path).unwrap();
                sequence += 1;
                wal.append(std::iter::once(long_payload(sequence).as_slice()))
                    .unwrap();
                let after = std::fs::read(&path).unwrap();
                let last = *scan(&after).unwrap().frames.last().unwrap();
                let end = last.at + FRAME_HEADER_LEN + last.payload_len;
                // The sectors from `cut` on kept their old bytes (a prefix written, as when
                // a process dies mid-write; power loss may keep any sectors, and keeping
                // only later ones is the same here).
                let mut cut = (last.at / 512 + 1) * 512;
                while cut < end {
                    let mut d = after.clone();
                    d[cut..end].copy_from_slice(&before[cut..end]);
                    let s = scan(&d).unwrap();
                    assert_eq!(s.generation, generation);
                    assert!(
                        matches!(s.ending, Ending::CutShort { .. }),
                        "generation {generation}, sequence {sequence}, cut at {cut}: {:?}",
                        s.ending
                    );
                    checked += 1;
                    cut += 512;
                }
            }
        }
        assert!(checked > 100, "{checked}");
        // Damage to that last frame, on the other hand, is refused in any sector: the
        // sector holding its checksum, and a later one.
        let after = std::fs::read(&path).unwrap();
        let last = *scan(&after).unwrap().frames.last().unwrap();
        for bit_at in [last.at + 40, (last.at / 512 + 2) * 512] {
            let mut d = after.clone();
            d[bit_at] ^= 0x04;
            assert_eq!(
                scan(&d).unwrap().ending,
                Ending::Damaged(Damage::OneBitFromIntact {
                    at: last.at,
                    bit_at,
                    sequences: (sequence, sequence)
                }),
                "bit at {bit_at}"
            );
        }
    }

    #[test]
    fn a_checkpoint_cut_short_before_its_zeroing_is_finished_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = Wal::path_in(dir.path());
        let old = log_of(dir.path(), 20);
        // The slot of the next checkpoint reached the disk, its zeroing did not.
        let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
        wal.checkpoint(20, 0).unwrap();
        let mut d = std::fs::read(&path).unwrap();
        d[RECORDS_START as usize..].copy_from_slice(&old[RECORDS_START as usize..]);
        drop(wal);
        let rec = reopen(dir.path(), &d);
        assert!(
            rec.payloads.is_empty(),
            "the old generation's frames are not replayed"
        );
        assert!(rec.damage.is_none(), "{:?}", rec.damage);
        let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
        wal.checkpoint(20, 0).unwrap();
        let after = std::fs::read(&path).unwrap();
        assert!(after[RECORDS_START as usize..].iter().all(|&b| b == 0));
        wal.append(std::iter::once(payload(21).as_slice())).unwrap();
        let rec = Wal::open(dir.path(), 64 * 1024).unwrap().1;
        assert_eq!(rec.payloads.len(), 1);
        assert_eq!(rec.payloads[0].first_sequence, 21);
    }

    #[test]
    fn after_a_failed_write_the_log_refuses_more_until_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = Wal::path_in(dir.path());
        let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
        wal.preallocate().unwrap();
        wal.checkpoint(0, 0).unwrap();
        wal.append(std::iter::once(payload(1).as_slice())).unwrap();
        // A descriptor that cannot write: the append fails, nothing is acknowledged.
        let good = std::mem::replace(&mut wal.file, File::open(&path).unwrap());
        wal.append(std::iter::once(payload(2).as_slice()))
            .unwrap_err();
        wal.file = good;
        // The file is writable again, but the log no longer knows what it holds: a retry at
        // the same offset would lie over the failed frame.
        for err in [
            wal.append(std::iter::once(payload(2).as_slice()))
                .unwrap_err(),
            wal.checkpoint(1, 0).unwrap_err(),
        ] {
            assert!(
                err.to_string()
                    .contains("an earlier write to the log failed; reopen"),
                "{err}"
            );
        }
        // A checkpoint that fails part-way does the same.
        drop(wal);
        let (mut wal, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(rec.payloads.len(), 1);
        let good = std::mem::replace(&mut wal.file, File::open(&path).unwrap());
        wal.checkpoint(1, 0).unwrap_err();
        wal.file = good;
        assert!(wal.append(std::iter::once(payload(2).as_slice())).is_err());
        // Reopened, the log checkpoints and takes saves again.
        drop(wal);
        let (mut wal, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(rec.payloads.len(), 1);
        wal.checkpoint(1, 0).unwrap();
        wal.append(std::iter::once(payload(2).as_slice())).unwrap();
        let rec = Wal::open(dir.path(), 64 * 1024).unwrap().1;
        assert_eq!(rec.payloads.len(), 1);
        assert_eq!(rec.payloads[0].first_sequence, 2);
    }

    #[test]
    fn a_last_sector_that_could_be_zero_fill_is_dropped_as_a_write_cut_short() {
        // A frame whose last sector holds one byte of it, 0x01: a write cut short before
        // that sector leaves zero fill there, one bit from the intact frame. Nothing tells
        // that from a flipped bit, so it is dropped (and verify reports it).
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
        wal.preallocate().unwrap();
        wal.checkpoint(0, 0).unwrap();
        let at = RECORDS_START as usize;
        // header 16 + payload 20 + put 5 + key 1 + 4 + value = 2 sectors + 1 byte.
        let mut value = vec![b'x'; 2 * SECTOR + 1 - (FRAME_HEADER_LEN + 20 + 5 + 1 + 4)];
        *value.last_mut().unwrap() = 0x01;
        let mut b = PayloadBuilder::new(1, 1, value.len() + 8);
        b.put(TreeId::Events, b"k", &value);
        wal.append(std::iter::once(b.finish().as_slice())).unwrap();
        let bytes = std::fs::read(Wal::path_in(dir.path())).unwrap();
        let last_byte = at + 2 * SECTOR;
        assert_eq!(bytes[last_byte], 0x01);
        assert_eq!(scan(&bytes).unwrap().frames.len(), 1);
        let mut d = bytes.clone();
        d[last_byte] = 0;
        assert_eq!(
            scan(&d).unwrap().ending,
            Ending::CutShort {
                one_bit_from_intact: Some((last_byte, (1, 1)))
            }
        );
        // Any other bit of that byte leaves a non-zero byte: the sector was written.
        let mut d = bytes.clone();
        d[last_byte] ^= 0x80;
        assert!(matches!(
            scan(&d).unwrap().ending,
            Ending::Damaged(Damage::OneBitFromIntact { .. })
        ));
    }

    #[test]
    fn a_frame_whose_checksum_matches_but_whose_payload_does_not_parse_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = log_of(dir.path(), 3);
        let last = scan(&bytes).unwrap().frames[2];
        // Tree 9 does not exist; the checksum is recomputed to match.
        let body = last.at + FRAME_HEADER_LEN;
        bytes[body + 20] = 9;
        let crc = frame_crc(1, &bytes[body..body + last.payload_len]);
        bytes[last.at + 4..last.at + 8].copy_from_slice(&crc.to_be_bytes());
        let rec = reopen(dir.path(), &bytes);
        assert_eq!(rec.payloads.len(), 2);
        let damage = rec.damage.expect("damage reported");
        assert!(
            damage.contains(&format!(
                "the frame at offset {} matches its checksum",
                last.at
            )),
            "{damage}"
        );
    }

    /// A log checkpointed twice (generations 1 and 2, so both slots hold one) with `n`
    /// frames of generation 2 after the newer checkpoint, which records sequence 7.
    fn two_checkpoints(dir: &Path, n: u64) -> Vec<u8> {
        let (mut wal, _) = Wal::open(dir, 64 * 1024).unwrap();
        wal.preallocate().unwrap();
        wal.checkpoint(0, 0).unwrap();
        let ps: Vec<_> = (1..=7).map(payload).collect();
        wal.append(ps.iter().map(Vec::as_slice)).unwrap();
        wal.checkpoint(7, 77).unwrap();
        let ps: Vec<_> = (8..8 + n).map(payload).collect();
        wal.append(ps.iter().map(Vec::as_slice)).unwrap();
        std::fs::read(Wal::path_in(dir)).unwrap()
    }

    #[test]
    fn the_frames_after_a_lost_newest_checkpoint_are_read_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = two_checkpoints(dir.path(), 3);
        let rec = reopen(dir.path(), &bytes);
        assert_eq!(rec.checkpoint.generation, 2);
        assert_eq!(rec.payloads.len(), 3);
        // Generation 2 lives in the slot at offset 0. Damaged, or zeroed: the older
        // checkpoint's sequence is the one to check sled against, and the frames after the
        // lost one are read as the generation they carry.
        for damage in [&|b: &mut Vec<u8>| b[17] ^= 0x40, &|b: &mut Vec<u8>| {
            b[..SLOT_LEN].fill(0)
        }] as [&dyn Fn(&mut Vec<u8>); 2]
        {
            let mut d = bytes.clone();
            damage(&mut d);
            let s = scan(&d).unwrap();
            assert_eq!(s.checkpoint.unwrap().generation, 1);
            assert_eq!((s.generation, s.lost_slot), (2, Some(0)));
            let rec = reopen(dir.path(), &d);
            assert!(rec.damage.is_none(), "{:?}", rec.damage);
            assert_eq!(
                rec.checkpoint,
                Checkpoint {
                    generation: 2,
                    sequence: 0,
                    crc: 0
                }
            );
            let seqs: Vec<_> = rec.payloads.iter().map(|p| p.first_sequence).collect();
            assert_eq!(seqs, [8, 9, 10]);
            // The next checkpoint is generation 3, in the slot that held generation 1.
            let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
            wal.checkpoint(10, 1010).unwrap();
            drop(wal);
            let (_, rec) = Wal::open(dir.path(), 64 * 1024).unwrap();
            assert_eq!(rec.checkpoint.generation, 3);
            assert_eq!(rec.checkpoint.sequence, 10);
            assert!(rec.payloads.is_empty());
        }
        // The older slot damaged instead: nothing changes.
        let mut d = bytes.clone();
        d[SLOT_LEN + 17] ^= 0x40;
        let s = scan(&d).unwrap();
        assert_eq!((s.generation, s.lost_slot, s.frames.len()), (2, None, 3));
    }

    #[test]
    fn a_lost_newest_checkpoint_whose_first_frame_is_damaged_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = two_checkpoints(dir.path(), 3);
        bytes[17] ^= 0x40;
        // Several bits of the first frame of generation 2: the intact frames of that
        // generation after it show the lost checkpoint, and that saves after it are lost.
        let first = RECORDS_START as usize;
        bytes[first + 30] ^= 0xFF;
        let s = scan(&bytes).unwrap();
        assert_eq!((s.generation, s.lost_slot), (2, Some(0)));
        assert!(
            matches!(
                s.ending,
                Ending::Damaged(Damage::BeforeIntact { at, .. }) if at == first
            ),
            "{:?}",
            s.ending
        );
        assert!(reopen(dir.path(), &bytes).damage.is_some());
        // With no newer checkpoint's frames at all, the older checkpoint is simply read.
        let dir = tempfile::tempdir().unwrap();
        let bytes = two_checkpoints(dir.path(), 0);
        let mut d = bytes.clone();
        d[17] ^= 0x40;
        let s = scan(&d).unwrap();
        assert_eq!((s.generation, s.lost_slot), (1, None));
    }
}
