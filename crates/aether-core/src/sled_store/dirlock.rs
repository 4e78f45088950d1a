//! The one way to open a store directory: the store, `aether verify` and the CLI all come
//! through here.
//!
//! A store directory is held by one handle at a time through an advisory `flock` on its
//! `LOCK` file, taken before anything else is read. sled keeps a lock of its own on its
//! `db` file and releases it lazily, after its background threads let go of the files; so
//! once our lock is held, a sled lock still taken can only be a handle of this process
//! that is finishing its drop, and opening waits for it (by trying the same `flock`, not
//! by reading sled's error text).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The lock file's name in a store directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive hold on a store directory; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// The store directory held.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn try_flock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Retry `attempt` with backoff until it succeeds or `timeout` passes.
fn retry(timeout: Duration, mut attempt: impl FnMut() -> io::Result<bool>) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut backoff = Duration::from_millis(1);
    loop {
        if attempt()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(50));
    }
}

/// Take the store directory `path` (created if missing), waiting up to `timeout` for
/// another handle to let go; [`Error::Locked`] after that.
pub fn lock_store(path: &Path, timeout: Duration) -> Result<DirLock> {
    fs::create_dir_all(path)
        .map_err(|e| Error::storage(format!("creating {}", path.display()), e))?;
    let lock_path = path.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::storage(format!("opening {}", lock_path.display()), e))?;
    match retry(timeout, || try_flock(&file)) {
        Ok(true) => Ok(DirLock {
            _file: file,
            path: path.to_path_buf(),
        }),
        Ok(false) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(Error::storage(
            format!("locking {}", lock_path.display()),
            e,
        )),
    }
}

/// Open sled in `dir` for a store whose [`DirLock`] is held.
///
/// Also works around sled 0.34's crash hole: at open it reads the snapshot it was writing
/// when the process died (`snap.*.generating`) and calls the store corrupt
/// (spacejam/sled#1527, #1533). Such a file is unfinished by construction and the finished
/// snapshot before it is still there, so it is removed and the open retried.
pub fn open_sled(
    _held: &DirLock,
    dir: &Path,
    configure: impl Fn(sled::Config) -> sled::Config,
    timeout: Duration,
) -> Result<sled::Db> {
    loop {
        wait_for_sled_lock(dir, timeout)?;
        match configure(sled::Config::new().path(dir)).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Corruption { at: None, .. })
                if remove_unfinished_snapshots(dir)? > 0 =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Wait until no handle of this process still holds sled's own lock on `dir/db`.
fn wait_for_sled_lock(dir: &Path, timeout: Duration) -> Result<()> {
    let db = dir.join("db");
    let file = match OpenOptions::new().read(true).open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::storage(format!("opening {}", db.display()), e)),
    };
    match retry(timeout, || try_flock(&file)) {
        // Dropping `file` releases the probe's lock.
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Locked {
            path: dir.parent().unwrap_or(dir).to_path_buf(),
        }),
        Err(e) => Err(Error::storage(format!("locking {}", db.display()), e)),
    }
}

/// Delete sled's `snap.*.generating` files (see [`open_sled`]); returns how many there were.
fn remove_unfinished_snapshots(dir: &Path) -> Result<usize> {
    let context = |e| {
        Error::storage(
            format!("removing an unfinished sled snapshot in {}", dir.display()),
            e,
        )
    };
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(context)? {
        let entry = entry.map_err(context)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            fs::remove_file(entry.path()).map_err(context)?;
            removed += 1;
        }
    }
    if removed > 0 {
        super::frame::sync_dir(dir).map_err(context)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_store_is_locked_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_store(dir.path(), Duration::from_millis(10)).unwrap();
        match lock_store(dir.path(), Duration::from_millis(20)) {
            Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        lock_store(dir.path(), Duration::from_millis(10)).unwrap();
    }
}
