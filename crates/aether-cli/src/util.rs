//! Helpers shared by the subcommands: failures and exit codes, opening a store, sizes on
//! disk, number formatting, progress reporting.

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use aether_core::sled_store::{self, dirlock, index};
use aether_core::{Durability, Error, OpenReport, Options, SledStore};

/// Exit status when the command found problems (verify) or rejected input (import, inspect).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit status for usage and I/O errors, including a store held by another process.
pub const EXIT_FAILURE: u8 = 2;

/// A failure that ends the command with [`EXIT_FAILURE`] and one message on stderr.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure(msg.into())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Locked { path } => Failure(format!(
                "the store at {} is held by another process (or another handle in one); close it and try again",
                path.display()
            )),
            other => Failure(other.to_string()),
        }
    }
}

impl From<sled::Error> for Failure {
    fn from(e: sled::Error) -> Failure {
        Failure(format!("sled: {e}"))
    }
}

pub type CmdResult<T = ()> = Result<T, Failure>;

/// Wrap an I/O error with what was being done.
pub fn io_failure(context: impl fmt::Display) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure(format!("{context}: {e}"))
}

/// How long to wait for another handle to release a store before reporting it locked.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// Refuse a path that holds no store of format 2, so read-only commands never create one;
/// a format-1 store is named as such, with the command that converts it.
pub fn require_store(path: &Path) -> CmdResult<()> {
    if sled_store::is_format1(path) {
        return Err(Failure(format!(
            "{} holds a store in format 1 (events in sled); convert it with `aether migrate {}`",
            path.display(),
            path.display()
        )));
    }
    if !path.join(sled_store::FORMAT_FILE).is_file() {
        return Err(Failure(format!(
            "{} is not an aether store (it has no {} file)",
            path.display(),
            sled_store::FORMAT_FILE
        )));
    }
    Ok(())
}

/// The durability mode the store's index records (the mode it was last opened with), read
/// through the store's own lock and sled routine; `None` when there is no readable index.
pub fn recorded_durability(path: &Path) -> CmdResult<Option<Durability>> {
    let sled_dir = path.join(sled_store::SLED_DIR);
    if !path.join(sled_store::FORMAT_FILE).is_file() || !sled_dir.join("db").is_file() {
        return Ok(None);
    }
    let held = dirlock::lock_store(path, LOCK_TIMEOUT)?;
    let db = match dirlock::open_sled(&held, &sled_dir, |c| c.flush_every_ms(None), LOCK_TIMEOUT) {
        Ok(db) => db,
        Err(e @ Error::Locked { .. }) => return Err(e.into()),
        // A damaged index: the store's open rebuilds it and says so.
        Err(_) => return Ok(None),
    };
    let meta = db.open_tree(index::TREE_META)?;
    Ok(meta
        .get(index::META_DURABILITY)?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
}

/// Open a store through the library with the durability it was written with (so a tool
/// that only reads does not change the mode its index records) unless `durability` is
/// given, and print what opening found and did (recovery, an index rebuilt) to stderr.
pub fn open_store(path: &Path, durability: Option<Durability>) -> CmdResult<SledStore> {
    let recorded = recorded_durability(path)?;
    let mut options = Options::with_durability(durability.or(recorded).unwrap_or_default());
    options.lock_timeout = LOCK_TIMEOUT;
    let store = SledStore::open_with(path, options)?;
    print_open_report(store.open_report());
    Ok(store)
}

/// What opening a store found and did, one line each on stderr.
pub fn print_open_report(report: &OpenReport) {
    for line in report.lines() {
        eprintln!("aether: note: {line}");
    }
}

/// Bytes a directory tree takes: (allocated on disk, apparent length).
pub fn dir_size(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut allocated = 0;
    let mut apparent = 0;
    let Ok(entries) = std::fs::read_dir(path) else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (a, b) = dir_size(&entry.path());
            allocated += a;
            apparent += b;
        } else {
            allocated += meta.blocks() * 512;
            apparent += meta.len();
        }
    }
    (allocated, apparent)
}

/// `1234567` → `1,234,567`, as `aether_core::verify` writes counts in its findings.
pub use aether_core::verify::thousands;

/// A rate with thousands separators and no decimals (`12,345`), or one decimal below 100.
pub fn rate(per_sec: f64) -> String {
    if per_sec < 100.0 {
        format!("{per_sec:.1}")
    } else {
        thousands(per_sec.round() as u64)
    }
}

/// A byte count in binary units.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A latency in nanoseconds, in the unit that reads best.
pub fn latency(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// Whether progress may be drawn as a bar (stderr is a terminal).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Progress of one long step: a bar on a terminal, a few plain lines otherwise (so logs
/// and pipes get readable output instead of control codes).
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: u64,
    started: Instant,
    last_line: Instant,
    position: u64,
}

impl Progress {
    /// Start reporting `label` with `total` units of work (0 when unknown). `quiet`
    /// suppresses the plain lines (a bar is still drawn on a terminal).
    pub fn new(label: &str, total: u64, quiet: bool) -> Progress {
        Progress::styled(
            label,
            total,
            quiet,
            "{msg:<34} [{bar:30.cyan/blue}] {human_pos:>9}/{human_len:<9} {rate:>11} eta {eta}",
        )
    }

    /// Like [`Progress::new`] for work measured in something other than items (time
    /// budgets): the bar shows a percentage.
    pub fn percent(label: &str, total: u64, quiet: bool) -> Progress {
        Progress::styled(
            label,
            total,
            quiet,
            "{msg:<34} [{bar:30.cyan/blue}] {percent:>3}% eta {eta}",
        )
    }

    fn styled(label: &str, total: u64, quiet: bool, template: &str) -> Progress {
        let bar = stderr_is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn fmt::Write| {
                        let _ = write!(w, "{}/s", thousands(state.per_sec() as u64));
                    },
                )
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() && !quiet {
            eprintln!("{label}: started ({} to do)", thousands(total));
        }
        Progress {
            bar,
            label: label.to_owned(),
            total,
            started: Instant::now(),
            last_line: Instant::now(),
            position: if quiet { u64::MAX } else { 0 },
        }
    }

    /// Report that `position` units are done.
    pub fn set(&mut self, position: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(position),
            None => {
                if self.position != u64::MAX {
                    self.position = position;
                    if self.last_line.elapsed() >= Duration::from_secs(5) {
                        self.last_line = Instant::now();
                        eprintln!(
                            "{}: {} of {}",
                            self.label,
                            thousands(position),
                            thousands(self.total)
                        );
                    }
                }
            }
        }
    }

    /// The step is over.
    pub fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => {
                if self.position != u64::MAX {
                    eprintln!(
                        "{}: done in {:.2} s",
                        self.label,
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(latency(850), "850 ns");
        assert_eq!(latency(1500), "1.5 µs");
        assert_eq!(latency(2_500_000), "2.50 ms");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(12345.6), "12,346");
    }
}
