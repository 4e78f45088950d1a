//! The segment log: the store's events (and snapshots) as CRC-framed commit records in
//! append-only files. The log is the truth; sled only indexes it.
//!
//! # Files (`<store>/log/`)
//! - `<base:020>.seg`, or `<base:020>.<gen>.seg` for a later segment that starts at the
//!   same sequence (one that holds only snapshots came before it): named by the first
//!   sequence its events take, like Kafka's segments by their base offset. Each begins with
//!   a 512-byte header (`AETHSEG2 ‖ base u64 ‖ gen u32 ‖ crc u32`, zeros after), then
//!   frames (see `frame.rs`) whose salt is [`salt`]`(base, gen)`.
//! - Segments roll at `segment_size` (a record never spans two; a record larger than a
//!   whole segment gets a segment of its own). A sealed segment is truncated to its last
//!   frame and never written again.
//! - `spare`: the next segment's start, zero-filled ahead of time (one zero-fill chunk) and
//!   renamed into place at a roll.
//!
//! # Writing
//! One writer (the store's, under its write lock) appends each record with one
//! `pwrite(2)`, so a returned save is in the OS's page cache and survives the process
//! being killed. The space ahead of the writer is zero-filled (and synced, in durable
//! mode) by a background thread, in chunks that grow with the log (1/32 of it, 64 KiB to
//! 4 MiB: the fill counts on disk), before the writer reaches it: a durable
//! commit's `fdatasync` then writes data only, never file-size metadata, and a write cut
//! short by a crash leaves zeros where it did not reach — which is how recovery tells a
//! torn tail (dropped: never acknowledged) from damage to an acknowledged record
//! (refused). [`Log::sync`] is the group commit's one `fdatasync`.
//!
//! # Reading
//! Every segment is mapped (`mmap`) once; readers copy frames straight out of the page
//! cache, with no system call per record.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

use super::frame::{self, FRAME_HEADER_LEN};

/// The log's folder in a store directory.
pub const LOG_DIR: &str = "log";
/// Bytes before a segment's first frame.
pub const SEGMENT_HEADER_LEN: u64 = 512;
const SEGMENT_MAGIC: &[u8; 8] = b"AETHSEG2";
const SPARE_NAME: &str = "spare";

/// A segment's identity: the first sequence its events take, and which segment of that
/// base it is (0 for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId {
    pub base: u64,
    pub gen: u32,
}

impl SegmentId {
    /// The file name of the segment.
    pub fn file_name(self) -> String {
        if self.gen == 0 {
            format!("{:020}.seg", self.base)
        } else {
            format!("{:020}.{}.seg", self.base, self.gen)
        }
    }

    /// Parse a segment file name; `None` for other files.
    pub fn parse(name: &str) -> Option<SegmentId> {
        let stem = name.strip_suffix(".seg")?;
        let (base, gen) = match stem.split_once('.') {
            Some((b, g)) => (b, g.parse().ok().filter(|&g: &u32| g > 0)?),
            None => (stem, 0),
        };
        if base.len() != 20 || !base.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(SegmentId {
            base: base.parse().ok()?,
            gen,
        })
    }

    /// The salt of this segment's frames: ties a frame to its segment.
    pub fn salt(self) -> u64 {
        self.base ^ ((self.gen as u64) << 48) ^ 0x5345_4700_0000_0000
    }
}

/// What a sealed segment's header says: where its frames end, and the sequence the next
/// segment starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealInfo {
    pub frames_end: u64,
    pub next_base: u64,
}

/// A segment header sector: `AETHSEG2 ‖ base u64 ‖ gen u32 ‖ frames end u64 ‖ next base u64
/// ‖ crc u32`, zeros after. The last two are zero until the segment is sealed; sealing
/// rewrites the header (one sector) after the next segment exists, so a log whose newest
/// segment is sealed has lost the segment after it.
pub fn header_bytes(id: SegmentId, sealed: Option<SealInfo>) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..16].copy_from_slice(&id.base.to_be_bytes());
    h[16..20].copy_from_slice(&id.gen.to_be_bytes());
    if let Some(seal) = sealed {
        h[20..28].copy_from_slice(&seal.frames_end.to_be_bytes());
        h[28..36].copy_from_slice(&seal.next_base.to_be_bytes());
    }
    let crc = crc32fast::hash(&h[0..36]);
    h[36..40].copy_from_slice(&crc.to_be_bytes());
    h
}

/// Read a segment's header, checked against the identity its file name gives: `None` for
/// a segment that is not sealed.
pub fn read_header(data: &[u8], id: SegmentId) -> Result<Option<SealInfo>, String> {
    let Some(h) = data.get(..SEGMENT_HEADER_LEN as usize) else {
        return Err(format!("is {} bytes, shorter than its header", data.len()));
    };
    let frames_end = frame::be_u64(h, 20).unwrap_or(0);
    let next_base = frame::be_u64(h, 28).unwrap_or(0);
    let sealed = (frames_end != 0).then_some(SealInfo {
        frames_end,
        next_base,
    });
    if h != header_bytes(id, sealed) {
        return Err("has a damaged header or one that does not match its name".into());
    }
    Ok(sealed)
}

/// Check a segment's header against the identity its file name gives.
pub fn check_header(data: &[u8], id: SegmentId) -> Result<(), String> {
    read_header(data, id).map(|_| ())
}

fn page_up(n: u64) -> u64 {
    n.div_ceil(4096) * 4096
}

/// One intact frame found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedFrame {
    pub at: usize,
    pub payload_len: usize,
    pub next: usize,
    /// First and last sequence of its events; (0, 0) for a snapshot.
    pub sequences: (u64, u64),
}

impl ScannedFrame {
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let body = self.at + FRAME_HEADER_LEN;
        &data[body..body + self.payload_len]
    }
}

/// What reading a segment's frames found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub frames: Vec<ScannedFrame>,
    /// Offset after the last intact frame.
    pub end: usize,
    /// What is at `end`.
    pub ending: frame::Ending,
}

/// Read the frames of a segment's bytes from offset `from` (a frame boundary) as recovery
/// and `aether verify` do: a pure function of the bytes.
pub fn scan(data: &[u8], id: SegmentId, from: usize) -> SegmentScan {
    let salt = id.salt();
    let parse = super::record::payload_sequences;
    let mut frames = Vec::new();
    let mut at = from;
    let ending = loop {
        // The file ends inside a frame header: the end of a full segment (zeros: no frame
        // fits there, the writer rolled), or a cut file (a header was written there).
        if at < data.len() && at + FRAME_HEADER_LEN > data.len() {
            if data[at..].iter().any(|&b| b != 0) {
                break frame::Ending::Damaged(frame::Damage::FileEndsInFrame { at });
            }
            break frame::Ending::End;
        }
        match frame::frame_at(data, at, salt) {
            // Zeros where a frame should start, yet an intact frame later: that frame was
            // written after this one, which was damaged since (never a write cut short).
            frame::FrameAt::End => match frame::intact_frame_after(data, at, salt) {
                Some(intact_at) => {
                    break frame::Ending::Damaged(frame::Damage::BeforeIntact { at, intact_at })
                }
                None => break frame::Ending::End,
            },
            frame::FrameAt::Intact(payload, next) => match parse(payload) {
                Some(sequences) => {
                    frames.push(ScannedFrame {
                        at,
                        payload_len: payload.len(),
                        next,
                        sequences,
                    });
                    at = next;
                }
                None => {
                    break frame::Ending::Damaged(match frame::intact_frame_after(data, at, salt) {
                        Some(intact_at) => frame::Damage::BeforeIntact { at, intact_at },
                        None => frame::Damage::Unparseable { at },
                    })
                }
            },
            frame::FrameAt::Damaged => {
                break match frame::classify_damaged(data, at, salt, parse) {
                    frame::Ending::CutShort { .. } if runs_past_the_file(data, at) => {
                        frame::Ending::Damaged(frame::Damage::FileEndsInFrame { at })
                    }
                    frame::Ending::CutShort { .. } if written_in_full(data, at) => {
                        frame::Ending::Damaged(frame::Damage::WrittenInFull { at })
                    }
                    ending => ending,
                }
            }
        }
    };
    SegmentScan {
        frames,
        end: at,
        ending,
    }
}

/// Whether the damaged frame at `at` was written in full, so that it cannot be a write
/// cut short. The space ahead of the writer is zero-filled before any frame is written
/// there, and a write cut short (a killed process: whole pages; a power loss: whole
/// sectors) leaves what it did not reach as zeros. So a frame none of whose sectors is all
/// zero was written in full; and a frame whose header bytes were written (they are not
/// zero) but name a frame running past the end of the file, where the zero fill ahead of
/// it should be, was written with a different header or the file was cut.
fn written_in_full(data: &[u8], at: usize) -> bool {
    let Some(len) = frame::be_u32(data, at) else {
        return false;
    };
    let end = at + FRAME_HEADER_LEN + len as usize;
    if end > data.len() {
        return true;
    }
    let first = at / frame::SECTOR;
    let last = (end - 1) / frame::SECTOR;
    (first..=last).all(|sector| {
        let from = (sector * frame::SECTOR).max(at);
        let to = ((sector + 1) * frame::SECTOR).min(end);
        data[from..to].iter().any(|&b| b != 0)
    })
}

/// Seal a segment file: rewrite its header with `seal`, cut it after its frames, sync.
pub fn seal_file(file: &File, id: SegmentId, seal: SealInfo) -> io::Result<()> {
    file.write_all_at(&header_bytes(id, Some(seal)), 0)?;
    file.sync_data()?;
    file.set_len(sealed_len_after(seal.frames_end))?;
    file.sync_all()
}

/// Whether the frame at `at` runs past the end of a file that is not a whole number of
/// pages long. The zero fill, synced in both modes before any frame is written over it,
/// always runs ahead of the frames to a page boundary, so such a file was cut inside the
/// frame. (A length running past a page-aligned end is left to `written_in_full`: a
/// damaged length field, most likely.)
fn runs_past_the_file(data: &[u8], at: usize) -> bool {
    let end = frame::be_u32(data, at).map(|len| at + FRAME_HEADER_LEN + len as usize);
    end.is_some_and(|end| end > data.len()) && data.len() % 4096 != 0
}

/// The length a sealed segment is cut to when its frames end at `frames_end`: past a zero
/// frame header, to the end of that page.
pub fn sealed_len_after(frames_end: u64) -> u64 {
    (frames_end + FRAME_HEADER_LEN as u64).div_ceil(4096) * 4096
}

/// Fill in a frame's header in `buf[..FRAME_HEADER_LEN]` (the payload follows it) and pad
/// the buffer to 8 bytes.
pub fn seal_frame(buf: &mut Vec<u8>, salt: u64) {
    let payload_len = buf.len() - FRAME_HEADER_LEN;
    let crc = frame::frame_crc(salt, &buf[FRAME_HEADER_LEN..]);
    buf[0..4].copy_from_slice(&(payload_len as u32).to_be_bytes());
    buf[4..8].copy_from_slice(&crc.to_be_bytes());
    buf[8..16].copy_from_slice(&salt.to_be_bytes());
    let padded = frame::padded(buf.len());
    buf.resize(padded, 0);
}

/// A segment file, mapped.
pub struct Segment {
    pub id: SegmentId,
    pub path: PathBuf,
    file: File,
    map: memmap2::Mmap,
    /// Bytes of the file that may be read through the map (written or zero-filled).
    readable: AtomicU64,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("id", &self.id)
            .field("readable", &self.readable)
            .finish_non_exhaustive()
    }
}

impl Segment {
    fn open(dir: &Path, id: SegmentId, map_len: u64, write: bool) -> io::Result<Segment> {
        let path = dir.join(id.file_name());
        let file = OpenOptions::new().read(true).write(write).open(&path)?;
        let len = file.metadata()?.len();
        let map_len = map_len.max(len).max(SEGMENT_HEADER_LEN);
        // SAFETY: the mapping is read only; bytes are read only below `readable`, which
        // stays within the file's length (a sealed segment is never written again; the
        // active segment is only appended to past what readers may see). Pages past the
        // file's end are never touched.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(map_len as usize)
                .map(&file)?
        };
        Ok(Segment {
            id,
            path,
            file,
            map,
            readable: AtomicU64::new(len),
        })
    }

    /// The segment's readable bytes.
    pub fn bytes(&self) -> &[u8] {
        let n = (self.readable.load(Ordering::Acquire) as usize).min(self.map.len());
        &self.map[..n]
    }

    /// The intact frame's payload at `at`, or why there is none.
    pub fn payload_at(&self, at: usize) -> Result<&[u8], String> {
        match frame::frame_at(self.bytes(), at, self.id.salt()) {
            frame::FrameAt::Intact(p, _) => Ok(p),
            frame::FrameAt::Damaged => Err(format!(
                "the frame at offset {at} of {} is damaged",
                self.path.display()
            )),
            frame::FrameAt::End => Err(format!(
                "no frame at offset {at} of {}",
                self.path.display()
            )),
        }
    }
}

/// How the log is written.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// Size at which a segment is sealed and the next begins.
    pub segment_size: u64,
    /// Durable mode: zero fill and seals are synced, and [`Log::sync`] is called.
    pub sync: bool,
}

/// The smallest zero-fill chunk, and the size of the spare a new store starts with.
const MIN_CHUNK: u64 = 64 * 1024;

impl LogOptions {
    /// The largest zero-fill chunk: what a log that has filled a segment fills ahead.
    fn max_chunk(&self) -> u64 {
        (self.segment_size / 8).clamp(MIN_CHUNK, 4 << 20) & !4095
    }

    /// Zero-fill this far ahead of the writer once the log holds `written` bytes (sealed
    /// segments and the active one up to the writer). The preallocated space counts on
    /// disk, so it grows with the log, 1/32 of it, from [`MIN_CHUNK`] up to
    /// [`LogOptions::max_chunk`]: a small store carries a few percent of zero fill
    /// instead of a fixed 8 MiB, and a large one fills in big chunks with few syncs.
    fn chunk(&self, written: u64) -> u64 {
        let max = self.max_chunk();
        ((written / 32) & !4095).clamp(MIN_CHUNK.min(max), max)
    }
}

#[derive(Debug)]
struct ZeroState {
    target: Option<Arc<Segment>>,
    /// Bytes the log holds (see [`LogOptions::chunk`]), as the writer last reported it:
    /// sizes the next spare.
    written: u64,
    /// The target is zero-filled (and synced when durable) up to here.
    zeroed_to: u64,
    want: u64,
    spare_ready: bool,
    /// Set while the thread writes outside the lock: a roll waits for it to clear before
    /// it cuts the sealed segment, so no zero fill lands past the cut.
    busy: bool,
    stop: bool,
    error: Option<String>,
}

#[derive(Debug)]
struct Zeroer {
    state: Mutex<ZeroState>,
    changed: Condvar,
    dir: PathBuf,
    opts: LogOptions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Zeroer {
    fn run(&self) {
        let mut st = lock(&self.state);
        loop {
            while !st.stop && st.error.is_none() && st.want <= st.zeroed_to && st.spare_ready {
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop || st.error.is_some() {
                return;
            }
            if st.want > st.zeroed_to {
                let Some(target) = st.target.clone() else {
                    st.want = 0;
                    continue;
                };
                let from = st.zeroed_to;
                // At most doubling the file per step (each published as it is done), so
                // a segment that began from a small spare is written into at once even
                // when a big chunk was asked for.
                let to = st.want.min(page_up(from.max(MIN_CHUNK) * 2));
                st.busy = true;
                drop(st);
                // Synced in both modes: the file's length must never fall back below
                // frames written over the fill, or recovery would read a cut file.
                let result = extend_with_zeros(&target.file, from, to, true);
                st = lock(&self.state);
                st.busy = false;
                match result {
                    Ok(()) => {
                        if st.target.as_ref().is_some_and(|t| Arc::ptr_eq(t, &target)) {
                            st.zeroed_to = st.zeroed_to.max(to);
                            target.readable.fetch_max(to, Ordering::AcqRel);
                        }
                    }
                    Err(e) => {
                        st.error = Some(format!("zero-filling {}: {e}", target.path.display()))
                    }
                }
                self.changed.notify_all();
            } else {
                st.busy = true;
                let size = self.opts.chunk(st.written);
                drop(st);
                let result = prepare_spare(&self.dir, size);
                st = lock(&self.state);
                st.busy = false;
                match result {
                    Ok(()) => st.spare_ready = true,
                    Err(e) => st.error = Some(format!("preparing the next segment: {e}")),
                }
                self.changed.notify_all();
            }
        }
    }
}

/// Zero-fill `from..to` of `file` (extending it), synced when `sync`.
fn extend_with_zeros(file: &File, from: u64, to: u64, sync: bool) -> io::Result<()> {
    frame::write_zeros(file, from, to)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// Create `spare`: the next segment's first `size` bytes, zero-filled and synced. Built
/// under a name of its own and renamed, so no file that is (or may become) a segment is
/// opened.
fn prepare_spare(dir: &Path, size: u64) -> io::Result<()> {
    let building = dir.join(format!("{SPARE_NAME}.building"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&building)?;
    extend_with_zeros(&file, 0, size, true)?;
    drop(file);
    fs::rename(&building, dir.join(SPARE_NAME))?;
    frame::sync_dir(dir)?;
    Ok(())
}

#[derive(Debug)]
struct Active {
    seg: Arc<Segment>,
    /// Bytes of the log's sealed segments (what sizes the zero fill, with `pos`).
    sealed_bytes: u64,
    /// Where the next frame goes.
    pos: u64,
    /// The sequence the next events record starts at.
    next_sequence: u64,
    /// Set when a write failed: the file's state past `pos` is unknown, so nothing more
    /// is written until the store is reopened (recovery reads what is there).
    broken: Option<String>,
}

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub segment: SegmentId,
    pub offset: u64,
    /// Set when the record started a new segment.
    pub rolled: Option<Sealed>,
}

/// A segment that was sealed: its identity, length and last sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub id: SegmentId,
    pub len: u64,
    /// The sequence the next segment starts at (one past this one's last event).
    pub next_base: u64,
}

/// The open log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    opts: LogOptions,
    segments: RwLock<BTreeMap<SegmentId, Arc<Segment>>>,
    active: Mutex<Active>,
    zeroer: Arc<Zeroer>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A segment file found in the log folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub id: SegmentId,
    pub path: PathBuf,
    pub len: u64,
}

/// The segment files in `dir`, in log order. Other files are ignored (`spare`).
pub fn list(dir: &Path) -> io::Result<Vec<SegmentFile>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(id) = name.to_str().and_then(SegmentId::parse) {
            out.push(SegmentFile {
                id,
                path: entry.path(),
                len: entry.metadata()?.len(),
            });
        }
    }
    out.sort_by_key(|s| s.id);
    Ok(out)
}

impl Log {
    /// Open the log for writing after recovery: `segments` are the log's files in order
    /// (none for a new store), and the last one continues at `end` with the sequence
    /// `next_sequence`. Bytes past `end` (a write cut short) are zeroed first.
    pub fn resume(
        store_dir: &Path,
        segments: &[SegmentFile],
        end: u64,
        next_sequence: u64,
        opts: LogOptions,
    ) -> io::Result<Log> {
        let dir = store_dir.join(LOG_DIR);
        fs::create_dir_all(&dir)?;
        let mut map = BTreeMap::new();
        for (i, s) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let seg = Segment::open(&dir, s.id, opts.segment_size, last)?;
            map.insert(s.id, Arc::new(seg));
        }
        let (active, pos) = match segments.last() {
            Some(s) => {
                let seg = map[&s.id].clone();
                // Whatever a crash left past the end is zeroed before anything is written
                // there, so the forensics of the next recovery hold.
                let data = seg.bytes();
                let dirty_end = data[..]
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |i| i as u64 + 1);
                if dirty_end > end {
                    frame::write_zeros(&seg.file, end, dirty_end)?;
                    if opts.sync {
                        seg.file.sync_data()?;
                    }
                }
                (seg, end.max(SEGMENT_HEADER_LEN))
            }
            None => {
                let id = SegmentId {
                    base: next_sequence,
                    gen: 0,
                };
                let seg = create_segment(&dir, id, opts, None)?;
                let seg = Arc::new(seg);
                map.insert(id, seg.clone());
                (seg, SEGMENT_HEADER_LEN)
            }
        };
        let zeroed_to = active.file.metadata()?.len();
        active.readable.store(zeroed_to, Ordering::Release);
        // A spare is renamed into place only once it is whole: any size will do.
        let spare_ready = dir.join(SPARE_NAME).exists()
            && fs::metadata(dir.join(SPARE_NAME))?.len() >= MIN_CHUNK.min(opts.max_chunk());
        let sealed_bytes: u64 = segments.iter().rev().skip(1).map(|s| s.len).sum();
        let written = sealed_bytes + pos;
        let zeroer = Arc::new(Zeroer {
            state: Mutex::new(ZeroState {
                target: Some(active.clone()),
                written,
                zeroed_to,
                want: page_up(pos + opts.chunk(written)).min(active.map.len() as u64),
                spare_ready,
                busy: false,
                stop: false,
                error: None,
            }),
            changed: Condvar::new(),
            dir: dir.clone(),
            opts,
        });
        let z = zeroer.clone();
        let thread = std::thread::Builder::new()
            .name("aether-zeroer".into())
            .spawn(move || z.run())?;
        Ok(Log {
            dir,
            opts,
            segments: RwLock::new(map),
            active: Mutex::new(Active {
                seg: active,
                sealed_bytes,
                pos,
                next_sequence,
                broken: None,
            }),
            zeroer,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The log's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append one frame. `buf` holds `FRAME_HEADER_LEN` bytes of room and then the
    /// payload; `events` is the number of events it holds (their sequences start at the
    /// log's next sequence, which the payload already carries). The frame reaches the file
    /// with one `pwrite` before this returns; it is durable after the next [`Log::sync`].
    pub fn append(&self, buf: &mut Vec<u8>, events: u32) -> io::Result<Written> {
        let mut active = lock(&self.active);
        if let Some(b) = &active.broken {
            return Err(io::Error::other(b.clone()));
        }
        let frame_len = frame::padded(buf.len()) as u64;
        let mut rolled = None;
        // A record never spans two segments: one that does not fit goes to the next, which
        // is made large enough for it (also when this one is still empty, which is then
        // sealed with no frames).
        if active.pos + frame_len > active.seg.map.len() as u64 {
            rolled = Some(self.roll(&mut active, frame_len)?);
        }
        let salt = active.seg.id.salt();
        seal_frame(buf, salt);
        let at = active.pos;
        self.ensure_zeroed(&active, at + buf.len() as u64)?;
        if let Err(e) = active.seg.file.write_all_at(buf, at) {
            // Part of it may be in the file: refuse further writes (see `broken`).
            active.broken = Some(format!(
                "a write to {} failed ({e}); reopen the store",
                active.seg.path.display()
            ));
            return Err(e);
        }
        active.pos = at + buf.len() as u64;
        active.next_sequence += events as u64;
        Ok(Written {
            segment: active.seg.id,
            offset: at,
            rolled,
        })
    }

    /// Wait until the active segment is zero-filled through `end` (normally long done),
    /// and ask for the next chunk once the writer is within half a chunk of the fill.
    fn ensure_zeroed(&self, active: &Active, end: u64) -> io::Result<()> {
        let written = active.sealed_bytes + end;
        let chunk = self.opts.chunk(written);
        let limit = active.seg.map.len() as u64;
        let mut st = lock(&self.zeroer.state);
        st.written = written;
        if st.zeroed_to < limit && st.want <= st.zeroed_to && st.zeroed_to < end + chunk / 2 {
            st.want = page_up(st.zeroed_to + chunk).min(limit);
            self.zeroer.changed.notify_all();
        }
        while st.zeroed_to < end {
            if let Some(e) = &st.error {
                return Err(io::Error::other(e.clone()));
            }
            if st.want < end {
                st.want = page_up(end + chunk).min(limit).max(end);
                self.zeroer.changed.notify_all();
            }
            st = self
                .zeroer
                .changed
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// Seal the active segment and start the next with `frame_len` bytes of room.
    fn roll(&self, active: &mut Active, frame_len: u64) -> io::Result<Sealed> {
        let old = active.seg.clone();
        let sealed_len = active.pos;
        let fail = |active: &mut Active, e: io::Error| {
            active.broken = Some(format!("rolling the log failed ({e}); reopen the store"));
            e
        };
        // No more zero fill for the old segment, and none in flight past the cut.
        {
            let mut st = lock(&self.zeroer.state);
            st.target = None;
            st.want = 0;
            st.zeroed_to = 0;
            while st.busy {
                st = self
                    .zeroer
                    .changed
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        // The old segment's tail is made durable first (a group commit may already be
        // syncing the new one).
        if let Err(e) = old.file.sync_data() {
            return Err(fail(active, e));
        }
        let id = if active.next_sequence == old.id.base {
            // Only snapshots so far: the next segment starts at the same sequence.
            SegmentId {
                base: old.id.base,
                gen: old.id.gen + 1,
            }
        } else {
            SegmentId {
                base: active.next_sequence,
                gen: 0,
            }
        };
        let spare = {
            let mut st = lock(&self.zeroer.state);
            while !st.spare_ready && st.error.is_none() {
                st = self
                    .zeroer
                    .changed
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if let Some(e) = st.error.clone() {
                return Err(fail(active, io::Error::other(e)));
            }
            self.dir.join(SPARE_NAME)
        };
        // `spare_ready` stays set until the spare has its new name: the zero-filling
        // thread prepares the next spare only then, so it never writes to this file.
        let created = create_segment(&self.dir, id, self.opts, Some((&spare, frame_len)));
        {
            let mut st = lock(&self.zeroer.state);
            st.spare_ready = false;
            self.zeroer.changed.notify_all();
        }
        let seg = match created {
            Ok(s) => Arc::new(s),
            Err(e) => return Err(fail(active, e)),
        };
        // Only now that its successor exists is the old segment sealed: its header
        // rewritten to say where its frames end and where the log goes on, then the file
        // cut after its last frame. Readers see the shorter length before the file
        // shrinks, and the cut keeps the page holding the end of the last frame and the
        // zeros after it, so a reader that looks past the last frame never touches a page
        // beyond the end of the file.
        let seal = SealInfo {
            frames_end: sealed_len,
            next_base: active.next_sequence,
        };
        let file_len = sealed_len_after(sealed_len);
        old.readable.store(file_len, Ordering::Release);
        if let Err(e) = seal_file(&old.file, old.id, seal) {
            return Err(fail(active, e));
        }
        self.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, seg.clone());
        active.sealed_bytes += file_len;
        {
            let mut st = lock(&self.zeroer.state);
            let len = seg.readable.load(Ordering::Acquire);
            st.written = active.sealed_bytes + SEGMENT_HEADER_LEN;
            st.target = Some(seg.clone());
            st.zeroed_to = len;
            st.want = page_up(len + self.opts.chunk(st.written)).min(seg.map.len() as u64);
            self.zeroer.changed.notify_all();
        }
        active.seg = seg;
        active.pos = SEGMENT_HEADER_LEN;
        Ok(Sealed {
            id: old.id,
            len: file_len,
            next_base: active.next_sequence,
        })
    }

    /// `fdatasync` the active segment: every frame appended before this call is durable
    /// when it returns `Ok` (a roll syncs the segment it seals).
    pub fn sync(&self) -> io::Result<()> {
        let seg = lock(&self.active).seg.clone();
        seg.file.sync_data()
    }

    /// The segment holding sequence `sequence`'s record start, if any.
    pub fn segment_for(&self, sequence: u64) -> Option<Arc<Segment>> {
        let map = self.segments.read().unwrap_or_else(|p| p.into_inner());
        map.range(
            ..=SegmentId {
                base: sequence,
                gen: u32::MAX,
            },
        )
        .next_back()
        .map(|(_, s)| s.clone())
    }

    /// The segment with identity `id`.
    pub fn segment(&self, id: SegmentId) -> Option<Arc<Segment>> {
        let map = self.segments.read().unwrap_or_else(|p| p.into_inner());
        map.get(&id).cloned()
    }

    /// The segments from the one holding `sequence` on, in log order.
    pub fn segments_from(&self, sequence: u64) -> Vec<Arc<Segment>> {
        let map = self.segments.read().unwrap_or_else(|p| p.into_inner());
        let start = map
            .range(
                ..=SegmentId {
                    base: sequence,
                    gen: u32::MAX,
                },
            )
            .next_back()
            .map(|(id, _)| *id)
            .unwrap_or(SegmentId { base: 0, gen: 0 });
        map.range(start..).map(|(_, s)| s.clone()).collect()
    }

    /// The active segment, the offset of its next frame, and the next sequence.
    pub fn head(&self) -> (SegmentId, u64, u64) {
        let a = lock(&self.active);
        (a.seg.id, a.pos, a.next_sequence)
    }

    /// Bytes the log's files take on disk (sealed segments, the active one with its zero
    /// fill, and the spare).
    pub fn disk_bytes(&self) -> u64 {
        dir_disk_bytes(&self.dir)
    }

    /// Stop the zero-filling thread.
    pub fn stop(&self) {
        lock(&self.zeroer.state).stop = true;
        self.zeroer.changed.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Bytes allocated on disk under `dir` (recursively), as `du` counts them.
pub fn dir_disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += dir_disk_bytes(&e.path());
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

/// Create segment `id` in `dir` (from the zero-filled `spare` when given, renamed into
/// place), write its header, and map it with room for at least `frame_len` bytes of frame.
fn create_segment(
    dir: &Path,
    id: SegmentId,
    opts: LogOptions,
    spare: Option<(&Path, u64)>,
) -> io::Result<Segment> {
    let path = dir.join(id.file_name());
    let frame_len = spare.map_or(0, |(_, n)| n);
    // The header goes in before the file takes the segment's name, so a crash leaves
    // either a spare or a segment with its header, never a nameless one.
    let staged = match spare {
        Some((spare, _)) => spare.to_path_buf(),
        None => {
            let staged = dir.join(format!("{SPARE_NAME}.new"));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&staged)?;
            extend_with_zeros(&f, 0, opts.chunk(0), true)?;
            staged
        }
    };
    // Durable in both modes: the segment before it is sealed (synced) once it exists, and a
    // sealed newest segment means a lost successor.
    let file = OpenOptions::new().read(true).write(true).open(&staged)?;
    file.write_all_at(&header_bytes(id, None), 0)?;
    file.sync_data()?;
    drop(file);
    fs::rename(&staged, &path)?;
    frame::sync_dir(dir)?;
    Segment::open(
        dir,
        id,
        opts.segment_size
            .max(page_up(SEGMENT_HEADER_LEN + frame_len)),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment file's bytes: the header, then one frame per payload.
    fn segment_bytes(id: SegmentId, events: u64) -> Vec<u8> {
        let mut data = header_bytes(id, None).to_vec();
        for seq in id.base..id.base + events {
            let mut b = super::super::record::EventsRecordBuilder::new(FRAME_HEADER_LEN, 64);
            b.group(b"a");
            b.event(seq as i64, |o| o.extend_from_slice(b"{}"));
            let (mut buf, _) = b.finish();
            super::super::record::set_first_sequence(&mut buf[FRAME_HEADER_LEN..], seq);
            seal_frame(&mut buf, id.salt());
            data.extend_from_slice(&buf);
        }
        data
    }

    #[test]
    fn a_file_ending_inside_a_frame_header_is_the_end_when_zero_and_damage_when_not() {
        let id = SegmentId { base: 1, gen: 0 };
        let frames = segment_bytes(id, 3);
        // A full segment: fewer than a header's bytes left, all zero (the writer rolled).
        let mut full = frames.clone();
        full.extend_from_slice(&[0u8; 8]);
        let found = scan(&full, id, SEGMENT_HEADER_LEN as usize);
        assert_eq!((found.frames.len(), found.ending), (3, frame::Ending::End));
        // A cut file: part of a header was written there.
        let mut cut = frames.clone();
        cut.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3, 4]);
        let found = scan(&cut, id, SEGMENT_HEADER_LEN as usize);
        assert_eq!(found.frames.len(), 3);
        assert!(matches!(
            found.ending,
            frame::Ending::Damaged(frame::Damage::FileEndsInFrame { .. })
        ));
    }

    #[test]
    fn the_zero_fill_chunk_grows_with_the_log_within_its_bounds() {
        let opts = LogOptions {
            segment_size: 128 << 20,
            sync: true,
        };
        assert_eq!(opts.chunk(0), MIN_CHUNK);
        assert_eq!(opts.chunk(16 << 20), 512 << 10);
        assert_eq!(opts.chunk(128 << 20), 4 << 20);
        assert_eq!(opts.chunk(u64::MAX), 4 << 20);
        let mut last = 0;
        for written in (0..(256u64 << 20)).step_by(999_983) {
            let c = opts.chunk(written);
            assert!(c >= last && c % 4096 == 0 && c <= (written / 32).max(MIN_CHUNK));
            last = c;
        }
        // Small segments (the crash tests') keep one fixed chunk.
        let small = LogOptions {
            segment_size: 256 << 10,
            sync: true,
        };
        assert_eq!(
            (small.chunk(0), small.chunk(u64::MAX)),
            (MIN_CHUNK, MIN_CHUNK)
        );
    }

    #[test]
    fn names_round_trip_and_order() {
        let a = SegmentId { base: 1, gen: 0 };
        let b = SegmentId { base: 1, gen: 2 };
        let c = SegmentId { base: 17, gen: 0 };
        for id in [a, b, c] {
            assert_eq!(SegmentId::parse(&id.file_name()), Some(id));
        }
        assert_eq!(a.file_name(), "00000000000000000001.seg");
        assert!(a < b && b < c);
        assert_eq!(SegmentId::parse("spare"), None);
        assert_eq!(SegmentId::parse("1.seg"), None);
        assert_eq!(SegmentId::parse("00000000000000000001.0.seg"), None);
        assert_ne!(a.salt(), b.salt());
    }
}
