//! Fault injection on a **closed** store directory, for tests and tooling (`aether debug`,
//! the Go and C reliability suites). Never use it on a store in production: it writes
//! behind the store's back on purpose.
//!
//! Each function opens `PATH/sled` with `sled` directly (not through [`super::SledStore`],
//! whose open would replay the log and roll back a cut-short batch), changes one thing
//! through the public [`super::layout`], flushes and closes. If a process still holds the
//! store, the functions retry for a bounded time and then fail with [`Error::Locked`].
//!
//! What the store reports afterwards: a damaged record is an [`Error::Corrupt`] on replay
//! (`get_events`, `read_all`) and a `ReplayError` from `get_events_with_errors`. Damaging
//! the store's *last* record (the one the write-ahead log's checkpoint names) makes the
//! next open fail with [`Error::DataLoss`] instead, because that is indistinguishable from
//! a data file that lost what was acknowledged.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::layout::{
    self, claimed_sequence, decode_sequence_entry, event_key, parse_sequence_key, sequence_key,
};

/// How long to wait for another handle to release the store before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// How to damage a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Replace the whole value with the same number of bytes that are not a record.
    Garbage,
    /// Flip one bit of the stored value; bit `n` is bit `n % 8` of byte `n / 8`. Flipping
    /// any bit is detected (the CRC covers the sequence and the JSON, the tag is checked).
    FlipBit(u64),
}

/// What [`corrupt_record`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptedRecord {
    /// The sequence the record held before it was damaged (0 if it was already unreadable).
    pub sequence: u64,
    /// The record's `events` key.
    pub event_key: Vec<u8>,
    /// The record's length in bytes (unchanged by the damage).
    pub len: usize,
}

/// Open the sled database of the closed store at `store_dir` (the directory holding
/// `sled/` and `aether.wal`), retrying while another handle holds its lock.
///
/// The caller owns the returned handle; dropping it flushes and releases the lock.
pub fn open_closed_store(store_dir: &Path) -> Result<sled::Db> {
    let sled_dir = store_dir.join("sled");
    if !sled_dir.is_dir() {
        return Err(Error::invalid(
            "path",
            format!(
                "{} is not a store (it has no sled/ folder)",
                store_dir.display()
            ),
        ));
    }
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match sled::Config::new()
            .path(&sled_dir)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(Error::Locked {
                        path: store_dir.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Overwrite the stored record of (`actor_id`, `version`) with `damage`. The store must be
/// closed. Fails with [`Error::InvalidInput`] if there is no such record or the bit is
/// beyond the record.
pub fn corrupt_record(
    store_dir: &Path,
    actor_id: &str,
    version: i64,
    damage: Damage,
) -> Result<CorruptedRecord> {
    if version <= 0 {
        return Err(Error::invalid("version", "must be at least 1"));
    }
    let db = open_closed_store(store_dir)?;
    let events = db.open_tree(layout::TREE_EVENTS)?;
    let key = event_key(actor_id.as_bytes(), version as u64);
    let Some(value) = events.get(&key)? else {
        return Err(Error::invalid(
            "version",
            format!("actor {actor_id:?} has no stored record at version {version}"),
        ));
    };
    let mut damaged = value.to_vec();
    match damage {
        Damage::Garbage => {
            // Not a record: the first byte is never the event tag.
            const PATTERN: &[u8] = b"\xde\xad\xbe\xef";
            for (i, b) in damaged.iter_mut().enumerate() {
                *b = PATTERN[i % PATTERN.len()];
            }
        }
        Damage::FlipBit(bit) => {
            let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
            let Some(b) = damaged.get_mut(byte) else {
                return Err(Error::invalid(
                    "bit",
                    format!(
                        "bit {bit} is beyond the record, which has {} bits",
                        value.len() * 8
                    ),
                ));
            };
            *b ^= 1 << (bit % 8);
        }
    }
    events.insert(&key, damaged)?;
    db.flush()?;
    Ok(CorruptedRecord {
        sequence: claimed_sequence(&value),
        event_key: key,
        len: value.len(),
    })
}

/// Delete the `sequence` index entry of `sequence`, leaving its record in place (an orphan
/// record and a gap in the sequence). Returns the `events` key the entry pointed to, or
/// `None` if there was no entry. The store must be closed.
pub fn remove_index_entry(store_dir: &Path, sequence: u64) -> Result<Option<Vec<u8>>> {
    let db = open_closed_store(store_dir)?;
    let tree = db.open_tree(layout::TREE_SEQUENCE)?;
    let removed = tree.remove(sequence_key(sequence))?;
    db.flush()?;
    Ok(removed.map(|v| {
        decode_sequence_entry(&v)
            .map(|e| e.event_key.to_vec())
            .unwrap_or_default()
    }))
}

/// Delete the record of (`actor_id`, `version`), leaving its index entry pointing nowhere.
/// Returns whether there was a record. The store must be closed.
pub fn remove_record(store_dir: &Path, actor_id: &str, version: i64) -> Result<bool> {
    if version <= 0 {
        return Err(Error::invalid("version", "must be at least 1"));
    }
    let db = open_closed_store(store_dir)?;
    let events = db.open_tree(layout::TREE_EVENTS)?;
    let removed = events.remove(event_key(actor_id.as_bytes(), version as u64))?;
    db.flush()?;
    Ok(removed.is_some())
}

/// The last sequence in the index of the closed store at `store_dir` (0 when empty).
pub fn last_indexed_sequence(store_dir: &Path) -> Result<u64> {
    let db = open_closed_store(store_dir)?;
    let tree = db.open_tree(layout::TREE_SEQUENCE)?;
    match tree.last()? {
        Some((k, _)) => parse_sequence_key(&k).map_err(|e| Error::Corrupt {
            sequence: 0,
            location: "sequence index".into(),
            cause: e.to_string(),
        }),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, Event, EventStore, Options, SledStore};

    fn store_with_three(path: &Path) {
        let store =
            SledStore::open_with(path, Options::with_durability(Durability::Buffered)).unwrap();
        for v in 1..=3 {
            store
                .save_event(&Event::new(format!("e{v}"), "T", "a", v))
                .unwrap();
        }
        store.close().unwrap();
    }

    #[test]
    fn damage_is_reported_by_the_store() {
        for damage in [Damage::Garbage, Damage::FlipBit(8 * 20)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("store");
            store_with_three(&path);
            let c = corrupt_record(&path, "a", 2, damage).unwrap();
            assert_eq!(c.sequence, 2);
            let store = SledStore::open(&path).unwrap();
            match store.get_events("a", 1) {
                Err(Error::Corrupt { sequence, .. }) => {
                    let expected = if damage == Damage::Garbage { 0 } else { 2 };
                    assert_eq!(sequence, expected);
                }
                other => panic!("expected Corrupt, got {other:?}"),
            }
            assert_eq!(
                store.get_events_with_errors("a", 1).unwrap().errors.len(),
                1
            );
        }
    }

    #[test]
    fn refuses_what_is_not_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        assert!(matches!(
            corrupt_record(&path, "a", 1, Damage::Garbage),
            Err(Error::InvalidInput { .. })
        ));
        store_with_three(&path);
        assert!(matches!(
            corrupt_record(&path, "a", 9, Damage::Garbage),
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            corrupt_record(&path, "a", 1, Damage::FlipBit(1 << 20)),
            Err(Error::InvalidInput { .. })
        ));
        assert_eq!(last_indexed_sequence(&path).unwrap(), 3);
        assert!(remove_index_entry(&path, 2).unwrap().is_some());
        assert!(remove_index_entry(&path, 2).unwrap().is_none());
        assert!(remove_record(&path, "a", 3).unwrap());
    }

    #[test]
    fn a_held_store_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let _held = SledStore::open(&path).unwrap();
        let started = Instant::now();
        assert!(matches!(
            corrupt_record(&path, "a", 1, Damage::Garbage),
            Err(Error::Locked { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
