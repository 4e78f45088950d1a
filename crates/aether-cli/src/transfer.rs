//! Moving events in and out of a store as JSON lines: `inspect` (read from the log
//! directly, for looking), `export` (through the store, for copying) and `import`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use aether_core::verify::{self, LogItem};
use aether_core::{Durability, Error, Event, EventStore, SledStore};

use crate::util::{self, io_failure, CmdResult, Failure, EXIT_PROBLEMS};
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

pub fn inspect(args: &InspectArgs) -> CmdResult<ExitCode> {
    util::require_store(&args.path)?;
    let limit = args.limit.unwrap_or(u64::MAX);
    let from_sequence = args.from_sequence.unwrap_or(1).max(1);
    let from_version = args.from_version.unwrap_or(0) as i64;
    let actor = args.actor.as_ref().map(|a| a.as_bytes());
    let mut out = Lines::new(BufWriter::new(io::stdout().lock()));
    let mut printed = 0u64;
    let mut skipped = 0u64;
    let mut failure = None;
    if limit > 0 {
        // Straight from the log, read-only: nothing is recovered or rebuilt by looking.
        verify::walk_log(
            &args.path,
            util::LOCK_TIMEOUT,
            from_sequence,
            &mut |item| match item {
                LogItem::Event {
                    actor_id,
                    version,
                    json,
                    ..
                } => {
                    if actor.is_some_and(|a| a != actor_id) || version < from_version {
                        return true;
                    }
                    match out.line(json) {
                        Ok(true) => {
                            printed += 1;
                            printed < limit
                        }
                        Ok(false) => false,
                        Err(e) => {
                            failure = Some(e);
                            false
                        }
                    }
                }
                LogItem::Damaged { place, detail } => {
                    skipped += 1;
                    eprintln!("aether: skipping damaged records in {place}: {detail}");
                    true
                }
            },
        )?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    out.finish()?;
    Ok(if skipped > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn export(args: &ExportArgs) -> CmdResult<ExitCode> {
    util::require_store(&args.path)?;
    let store = util::open_store(&args.path, None)?;
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
    let store = util::open_store(&args.path, args.durability.map(Durability::from))?;
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
