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
//!   Frames of an older generation are leftovers of a recycled file and end the log.
//!
//! The file is zero-filled to its capacity once and then reused in place, so a commit's
//! `fdatasync` writes data only, never file-size metadata.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"AETHWAL1";
const SLOT_LEN: usize = 512;
const SLOT_DATA_LEN: usize = 8 + 8 + 8 + 4;
/// Offset of the first frame.
pub(crate) const RECORDS_START: u64 = 4096;
const FRAME_HEADER_LEN: usize = 16;

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

fn parse_payload(b: &[u8]) -> Option<Payload> {
    let rd_u64 = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let rd_u32 = |at: usize| -> Option<usize> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let first_sequence = rd_u64(0)?;
    let last_sequence = rd_u64(8)?;
    let count = rd_u32(16)?;
    let mut at = 20;
    let mut puts = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let tree = match *b.get(at)? {
            0 => TreeId::Events,
            1 => TreeId::Sequence,
            2 => TreeId::Snapshots,
            _ => return None,
        };
        let klen = rd_u32(at + 1)?;
        let key = b.get(at + 5..at + 5 + klen)?.to_vec();
        at += 5 + klen;
        let vlen = rd_u32(at)?;
        let value = b.get(at + 4..at + 4 + vlen)?.to_vec();
        at += 4 + vlen;
        puts.push((tree, key, value));
    }
    (at == b.len()).then_some(Payload {
        first_sequence,
        last_sequence,
        puts,
    })
}

/// What reading the log found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub checkpoint: Checkpoint,
    pub payloads: Vec<Payload>,
    /// Set when a damaged frame is followed by intact ones: acknowledged data is missing.
    pub damage: Option<String>,
}

/// The open log. Only the commit leader (or a checkpoint) touches it.
#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    checkpoint: Checkpoint,
    offset: u64,
    capacity: u64,
    frame_buf: Vec<u8>,
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

fn parse_slot(s: &[u8]) -> Option<Checkpoint> {
    if s.len() < SLOT_DATA_LEN + 4 || &s[0..8] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(s[SLOT_DATA_LEN..SLOT_DATA_LEN + 4].try_into().ok()?);
    if crc32fast::hash(&s[..SLOT_DATA_LEN]) != crc {
        return None;
    }
    Some(Checkpoint {
        generation: u64::from_be_bytes(s[8..16].try_into().ok()?),
        sequence: u64::from_be_bytes(s[16..24].try_into().ok()?),
        crc: u32::from_be_bytes(s[24..28].try_into().ok()?),
    })
}

fn frame_crc(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_be_bytes());
    h.update(payload);
    h.finalize()
}

fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// Parse the frame at `at`; `Some(Ok(payload, next))` for a valid frame of `generation`,
/// `Some(Err(()))` for a damaged one, `None` for the end of the log.
fn frame_at(data: &[u8], at: usize, generation: u64) -> Option<Result<(&[u8], usize), ()>> {
    let header = data.get(at..at + FRAME_HEADER_LEN)?;
    let len = u32::from_be_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[4..8].try_into().ok()?);
    let gen = u64::from_be_bytes(header[8..16].try_into().ok()?);
    if len == 0 && crc == 0 && gen == 0 {
        return None; // zero fill: end of log
    }
    let body = at + FRAME_HEADER_LEN;
    match data.get(body..body + len) {
        Some(payload) if frame_crc(gen, payload) == crc => {
            if gen == generation {
                Some(Ok((payload, at + padded(FRAME_HEADER_LEN + len))))
            } else {
                None // an intact frame of an earlier generation: recycled space
            }
        }
        _ => Some(Err(())),
    }
}

impl Wal {
    /// The log's path inside a store directory.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("aether.wal")
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
        let slots = [
            data.get(0..SLOT_LEN).and_then(parse_slot),
            data.get(SLOT_LEN..2 * SLOT_LEN).and_then(parse_slot),
        ];
        let checkpoint = match slots {
            [Some(a), Some(b)] => {
                if a.generation >= b.generation {
                    a
                } else {
                    b
                }
            }
            [Some(a), None] | [None, Some(a)] => a,
            [None, None] if data.iter().all(|&b| b == 0) => Checkpoint::default(),
            [None, None] => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: both header slots are damaged; the log's checkpoint is unknown",
                        path.display()
                    ),
                ))
            }
        };
        let mut payloads = Vec::new();
        let mut damage = None;
        let mut at = RECORDS_START as usize;
        while let Some(frame) = frame_at(&data, at, checkpoint.generation) {
            match frame.map(|(p, next)| (parse_payload(p), next)) {
                Ok((Some(p), next)) => {
                    payloads.push(p);
                    at = next;
                }
                Ok((None, _)) | Err(()) => {
                    // A torn last write is normal after a crash (it was never acknowledged).
                    // An intact frame *after* the damage means acknowledged data is gone.
                    let mut probe = at + 8;
                    while probe + FRAME_HEADER_LEN <= data.len() {
                        if let Some(Ok(_)) = frame_at(&data, probe, checkpoint.generation) {
                            damage = Some(format!(
                                "{}: frame at offset {at} is damaged and an intact frame follows at offset {probe}",
                                path.display()
                            ));
                            break;
                        }
                        probe += 8;
                    }
                    break;
                }
            }
        }
        let wal = Wal {
            file,
            path,
            checkpoint,
            offset: at as u64,
            capacity: capacity.max(RECORDS_START * 2),
            frame_buf: Vec::new(),
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
        let zeros = vec![0u8; 1 << 20];
        let mut at = len.max(RECORDS_START);
        if len < RECORDS_START {
            self.file
                .write_all_at(&zeros[..(RECORDS_START - len) as usize], len)?;
        }
        while at < self.capacity {
            let n = ((self.capacity - at) as usize).min(zeros.len());
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.file.sync_all()?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))
    }

    /// Whether appending `bytes` more payload bytes would pass the capacity.
    pub fn needs_checkpoint(&self, payload_bytes: usize, frames: usize) -> bool {
        let need = payload_bytes + frames * (FRAME_HEADER_LEN + 8);
        self.offset > RECORDS_START && self.offset + need as u64 > self.capacity
    }

    /// Append frames for `payloads` and `fdatasync`. On error nothing is acknowledged.
    pub fn append<'a>(&mut self, payloads: impl Iterator<Item = &'a [u8]>) -> io::Result<()> {
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
        self.file.write_all_at(buf, self.offset)?;
        self.file.sync_data()?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Record that sled is durable through `sequence` (whose record has `crc`) and start a
    /// new generation at the front of the file. The caller has flushed and synced sled.
    pub fn checkpoint(&mut self, sequence: u64, crc: u32) -> io::Result<()> {
        let next = Checkpoint {
            generation: self.checkpoint.generation + 1,
            sequence,
            crc,
        };
        let slot = (next.generation % 2) * SLOT_LEN as u64;
        self.file.write_all_at(&slot_bytes(&next), slot)?;
        self.file.sync_data()?;
        self.checkpoint = next;
        self.offset = RECORDS_START;
        Ok(())
    }
}

/// `fsync` a directory so entries created in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
        // Torn tail: damage the last frame only.
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
}
