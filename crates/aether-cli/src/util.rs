//! Helpers shared by the subcommands: failures and exit codes, opening a store's sled
//! database directly, sizes on disk, number formatting, progress reporting.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_core::sled_store::layout;
use aether_core::Error;

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
/// sled releases its lock lazily after a close, so an immediate failure would be wrong.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// Refuse a path that holds no store, so read-only commands never create one.
pub fn require_store(path: &Path) -> CmdResult<PathBuf> {
    let sled_dir = path.join("sled");
    if !sled_dir.is_dir() {
        return Err(Failure(format!(
            "{} is not an aether store (it has no sled/ folder)",
            path.display()
        )));
    }
    Ok(sled_dir)
}

/// Open a store's sled database directly, without the store's recovery (which would replay
/// the log and roll back a cut-short batch). Retries while the lock is held, then fails
/// with a clear message.
pub fn open_sled_direct(path: &Path) -> CmdResult<sled::Db> {
    let sled_dir = require_store(path)?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match sled::Config::new()
            .path(&sled_dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(64 << 20)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                    }
                    .into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(Failure(format!(
                    "cannot open sled database in {}: {e}",
                    sled_dir.display()
                )))
            }
        }
    }
}

/// The durability mode recorded in the store's `meta` tree, if any.
pub fn recorded_durability(db: &sled::Db) -> CmdResult<Option<String>> {
    let meta = db.open_tree(layout::TREE_META)?;
    Ok(meta
        .get(layout::META_DURABILITY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
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

/// `1234567` → `1,234,567`, as `aether_core::verify` writes numbers in its findings.
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
