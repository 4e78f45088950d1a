//! Moving events in and out of a store as JSON lines: `inspect` (read from sled directly,
//! for looking), `export` (through the store, for copying) and `import`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use aether_core::sled_store::layout::{self, decode_event_record, decode_sequence_entry};
use aether_core::{Durability, Error, Event, EventStore, Options, SledStore};

use crate::util::{self, io_failure, CmdResult, Failure, EXIT_PROBLEMS};
use crate::walfile::{self, WalState};
use crate::{ExportArgs, ImportArgs, InspectArgs};

/// Writes JSON lines to stdout; a closed pipe (`| head`) ends the output quietly.
struct Lines<W: Write> {
    out: W,
    closed: bool,
}

impl<W: Write> Lines<W> {
    fn new(out: W) -> Self {
        Lines { out, closed: false }
    }

    /// Write one line; `Ok(false)` once the reader has gone away.
    fn line(&mut self, bytes: &[u8]) -> CmdResult<bool> {
        if self.closed {
            return Ok(false);
        }
        let result = self
            .out
            .write_all(bytes)
            .and_then(|()| self.out.write_all(b"\n"));
        self.check(result)
    }

    fn finish(&mut self) -> CmdResult<bool> {
        if self.closed {
            return Ok(false);
        }
        let result = self.out.flush();
        self.check(result)
    }

    fn check(&mut self, result: io::Result<()>) -> CmdResult<bool> {
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(Failure(format!("writing to standard output: {e}"))),
        }
    }
}

/// Tell the user when sled lacks saves the log still holds (an unclean close).
fn note_unreplayed_log(path: &std::path::Path) {
    if let Ok(WalState::Read(info)) = walfile::read(path) {
        if info.pending_frames > 0 {
            eprintln!(
                "aether: note: the store was not closed cleanly; {} saves in aether.wal are not shown until the store is opened by the library (e.g. `aether export`)",
                util::thousands(info.pending_frames)
            );
        }
    }
}

pub fn inspect(args: &InspectArgs) -> CmdResult<ExitCode> {
    let db = util::open_sled_direct(&args.path)?;
    note_unreplayed_log(&args.path);
    let events = db.open_tree(layout::TREE_EVENTS)?;
    let sequence = db.open_tree(layout::TREE_SEQUENCE)?;
    let limit = args.limit.unwrap_or(u64::MAX);
    let from_sequence = args.from_sequence.unwrap_or(0);
    let mut out = Lines::new(BufWriter::new(io::stdout().lock()));
    let mut printed = 0u64;
    let mut skipped = 0u64;
    let mut skip = |sequence: u64, location: String, cause: String| {
        skipped += 1;
        eprintln!("aether: skipping malformed record at sequence {sequence} ({location}): {cause}");
    };
    let location = |actor: &[u8], version: u64| {
        format!(
            "actor {:?} version {version}",
            String::from_utf8_lossy(actor)
        )
    };

    if limit > 0 {
        if let Some(actor) = &args.actor {
            let start = layout::event_key(actor.as_bytes(), args.from_version.unwrap_or(0));
            let end = layout::event_key(actor.as_bytes(), u64::MAX);
            for item in events.range(start.as_slice()..=end.as_slice()) {
                let (key, value) = item?;
                let version = layout::split_event_key(&key).map_or(0, |(_, v)| v);
                match decode_event_record(&value) {
                    Ok(rec) if rec.sequence < from_sequence => continue,
                    Ok(rec) => {
                        if !out.line(rec.json)? {
                            break;
                        }
                        printed += 1;
                    }
                    Err(e) => skip(
                        layout::claimed_sequence(&value),
                        location(actor.as_bytes(), version),
                        e.to_string(),
                    ),
                }
                if printed >= limit {
                    break;
                }
            }
        } else {
            let start = layout::sequence_key(from_sequence.max(1));
            for item in sequence.range(start..) {
                let (key, value) = item?;
                let seq = layout::parse_sequence_key(&key).unwrap_or(0);
                let entry = match decode_sequence_entry(&value) {
                    Ok(entry) => entry,
                    Err(e) => {
                        skip(seq, "sequence index".into(), e.to_string());
                        continue;
                    }
                };
                let (actor, version) =
                    layout::split_event_key(entry.event_key).unwrap_or((b"?", 0));
                let Some(raw) = events.get(entry.event_key)? else {
                    skip(
                        seq,
                        location(actor, version),
                        "index entry points to a missing record".into(),
                    );
                    continue;
                };
                match decode_event_record(&raw) {
                    Ok(rec) if rec.sequence != seq => skip(
                        seq,
                        location(actor, version),
                        format!("record carries sequence {}", rec.sequence),
                    ),
                    Ok(rec) => {
                        if !out.line(rec.json)? {
                            break;
                        }
                        printed += 1;
                    }
                    Err(e) => skip(seq, location(actor, version), e.to_string()),
                }
                if printed >= limit {
                    break;
                }
            }
        }
    }
    out.finish()?;
    Ok(if skipped > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

/// Open a store through the library with the durability it was written with, so a tool
/// that only reads does not change the mode recorded in its metadata.
fn open_store(path: &std::path::Path, durability: Option<Durability>) -> CmdResult<SledStore> {
    let recorded = if util::require_store(path).is_ok() {
        let db = util::open_sled_direct(path)?;
        let recorded = util::recorded_durability(&db)?;
        drop(db);
        recorded.and_then(|d| d.parse::<Durability>().ok())
    } else {
        None
    };
    let mut options = Options::with_durability(durability.or(recorded).unwrap_or_default());
    // sled releases the lock of the handle just dropped lazily.
    options.lock_timeout = util::LOCK_TIMEOUT * 2;
    Ok(SledStore::open_with(path, options)?)
}

pub fn export(args: &ExportArgs) -> CmdResult<ExitCode> {
    util::require_store(&args.path)?;
    let store = open_store(&args.path, None)?;
    let mut out = Lines::new(BufWriter::new(io::stdout().lock()));
    let mut from = args.from_sequence.max(1);
    let mut json = Vec::with_capacity(1024);
    'pages: loop {
        let page = store.read_all(from, 1024).map_err(|e| {
            Failure(format!(
                "{e}; export stops here (`aether verify` lists every problem)"
            ))
        })?;
        let Some(last) = page.last() else { break };
        from = last.sequence + 1;
        for stored in &page {
            json.clear();
            stored.event.write_json(&mut json);
            if !out.line(&json)? {
                break 'pages;
            }
        }
    }
    out.finish()?;
    store.close()?;
    Ok(ExitCode::SUCCESS)
}

/// Consecutive lines of one actor, saved together.
struct Pending {
    first_line: u64,
    last_line: u64,
    events: Vec<Event>,
}

struct Importer {
    store: SledStore,
    imported: u64,
    rejected_lines: u64,
}

impl Importer {
    /// Save a group atomically; a rejected group writes nothing and is reported by line.
    fn save(&mut self, group: &mut Pending) -> CmdResult<()> {
        if group.events.is_empty() {
            return Ok(());
        }
        let result = if group.events.len() == 1 {
            self.store.save_event(&group.events[0])
        } else {
            self.store.save_events(&group.events)
        };
        let lines = if group.first_line == group.last_line {
            format!("line {}", group.first_line)
        } else {
            format!(
                "lines {}-{} (one batch, nothing of it written)",
                group.first_line, group.last_line
            )
        };
        match result {
            Ok(_) => self.imported += group.events.len() as u64,
            Err(e @ (Error::VersionConflict { .. } | Error::InvalidInput { .. })) => {
                self.rejected_lines += group.events.len() as u64;
                eprintln!("aether: {lines}: {e}");
            }
            Err(e) => {
                return Err(Failure(format!(
                    "{lines}: {e} ({} events imported before it)",
                    self.imported
                )))
            }
        }
        group.events.clear();
        Ok(())
    }
}

pub fn import(args: &ImportArgs) -> CmdResult<ExitCode> {
    let input: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.file)
            .map_err(io_failure(format_args!("opening {}", args.file.display())))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let store = open_store(&args.path, args.durability.map(Durability::from))?;
    let mut importer = Importer {
        store,
        imported: 0,
        rejected_lines: 0,
    };
    let batch_size = args.batch_size as usize;
    let mut group = Pending {
        first_line: 0,
        last_line: 0,
        events: Vec::with_capacity(batch_size),
    };
    for (index, line) in input.split(b'\n').enumerate() {
        let line_no = index as u64 + 1;
        let line = line.map_err(io_failure(format_args!("reading line {line_no}")))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = match Event::from_json(&line) {
            Ok(event) => event,
            Err(e) => {
                // A bad line ends the run of lines it interrupts: a batch never spans it.
                importer.save(&mut group)?;
                importer.rejected_lines += 1;
                eprintln!("aether: line {line_no}: not an event: {e}");
                continue;
            }
        };
        let joins = group
            .events
            .first()
            .is_some_and(|first| first.actor_id == event.actor_id)
            && group.events.len() < batch_size;
        if !joins {
            importer.save(&mut group)?;
            group.first_line = line_no;
        }
        group.last_line = line_no;
        group.events.push(event);
    }
    importer.save(&mut group)?;
    let Importer {
        store,
        imported,
        rejected_lines,
    } = importer;
    // Closing checkpoints: everything imported is durable whatever the mode.
    store.close()?;
    eprintln!(
        "imported {} events into {}{}",
        util::thousands(imported),
        args.path.display(),
        if rejected_lines > 0 {
            format!("; {} lines rejected", util::thousands(rejected_lines))
        } else {
            String::new()
        }
    );
    Ok(if rejected_lines > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}
