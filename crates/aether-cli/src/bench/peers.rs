//! The peers of `aether bench --compare`, each given the same prepared bytes as our store:
//! raw sled inserts and range scans, the disk's append+fdatasync rate, SQLite (one
//! transaction per save with the same version check, and 100-row transactions), and
//! serde_json parsing the same events.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use aether_core::sled_store::layout;
use aether_core::Event;
use rusqlite::{params, Connection, TransactionBehavior};

use super::report::{histogram, record, OpStats};
use super::workload::Workload;
use crate::util::{self, CmdResult, Failure, Progress};

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure(format!("SQLite: {e}"))
    }
}

/// The successful saves of the workload as our store lays them out: (`events` key,
/// 13-byte-header record), with the sequence one writer would assign.
pub fn records(work: &Workload) -> Vec<(Vec<u8>, Vec<u8>)> {
    work.ops
        .iter()
        .filter(|op| !op.conflict)
        .enumerate()
        .map(|(i, op)| {
            (
                layout::event_key(op.event.actor_id.as_bytes(), op.event.version as u64),
                layout::encode_event_record(i as u64 + 1, &op.json),
            )
        })
        .collect()
}

/// What raw sled did with the same records.
#[derive(Debug)]
pub struct RawSled {
    pub insert: OpStats,
    pub scan: OpStats,
    pub size_on_disk: u64,
}

/// Insert the records into a bare sled tree (`mode(HighThroughput)`, buffered: no flush),
/// then scan each actor's range, concatenating the JSON as `get_events_json` does.
pub fn raw_sled(
    dir: &Path,
    work: &Workload,
    records: &[(Vec<u8>, Vec<u8>)],
    cache_capacity: u64,
    cap: Duration,
) -> CmdResult<RawSled> {
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_capacity)
        .flush_every_ms(Some(500))
        .open()?;
    let tree = db.open_tree(layout::TREE_EVENTS)?;
    let mut hist = histogram();
    let progress = Progress::new("peer: raw sled inserts", records.len() as u64, true);
    let started = Instant::now();
    let deadline = started + cap;
    for (n, (key, value)) in records.iter().enumerate() {
        if n % 16 == 0 && Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        tree.insert(key.as_slice(), value.as_slice())?;
        record(&mut hist, t0.elapsed());
    }
    let mut insert = OpStats::new("raw sled insert", hist.len(), hist.len(), started.elapsed());
    insert.hist = hist;
    progress.finish();

    let mut hist = histogram();
    let mut events = 0u64;
    let started = Instant::now();
    let mut out = Vec::with_capacity(1 << 16);
    for actor in &work.actors {
        let t0 = Instant::now();
        let start = layout::event_key(actor.as_bytes(), 0);
        let end = layout::event_key(actor.as_bytes(), u64::MAX);
        out.clear();
        out.push(b'[');
        for item in tree.range(start.as_slice()..=end.as_slice()) {
            let (_, value) = item?;
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(&value[layout::EVENT_HEADER_LEN..]);
            events += 1;
        }
        out.push(b']');
        record(&mut hist, t0.elapsed());
    }
    let mut scan = OpStats::new("raw sled range scan", hist.len(), events, started.elapsed());
    scan.hist = hist;
    drop(tree);
    db.flush()?;
    drop(db);
    Ok(RawSled {
        insert,
        scan,
        size_on_disk: util::dir_size(dir).0,
    })
}

/// The disk's floor for a durable write: 4 KiB appends to a file, each followed by
/// `fdatasync`, for `budget`.
pub fn disk_append_sync(dir: &Path, budget: Duration) -> CmdResult<OpStats> {
    std::fs::create_dir_all(dir).map_err(util::io_failure(dir.display()))?;
    let path = dir.join("append-fdatasync.dat");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(util::io_failure(path.display()))?;
    let block = [0x5Au8; 4096];
    let mut hist = histogram();
    let progress = Progress::new("peer: disk append+fdatasync", 0, true);
    let started = Instant::now();
    while started.elapsed() < budget {
        let t0 = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .map_err(util::io_failure(path.display()))?;
        record(&mut hist, t0.elapsed());
    }
    progress.finish();
    let mut stats = OpStats::new(
        "disk 4 KiB append + fdatasync",
        hist.len(),
        hist.len(),
        started.elapsed(),
    );
    stats.hist = hist;
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(stats)
}

/// SQLite in WAL mode with the given `synchronous` setting and the comparison's schema.
fn sqlite_open(path: &Path, synchronous: &str) -> CmdResult<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events(
             actor TEXT, version INTEGER, seq INTEGER, body BLOB,
             PRIMARY KEY(actor, version))",
    )?;
    Ok(conn)
}

const SELECT_MAX: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE actor = ?1";
const INSERT: &str = "INSERT INTO events(actor, version, seq, body) VALUES (?1, ?2, ?3, ?4)";

/// One transaction per save, with our version rule (SELECT max, then INSERT or roll back),
/// over the same interleaved operations, for at most `cap`. Returns the stats of stored
/// events and the number of rejected saves.
pub fn sqlite_saves(
    path: &Path,
    work: &Workload,
    synchronous: &str,
    cap: Duration,
) -> CmdResult<(OpStats, u64, u64)> {
    let mut conn = sqlite_open(path, synchronous)?;
    let mut hist = histogram();
    let mut rejected = 0u64;
    let mut seq = 0i64;
    let progress = Progress::new(
        &format!("peer: SQLite saves ({synchronous})"),
        work.ops.len() as u64,
        true,
    );
    let started = Instant::now();
    let deadline = started + cap;
    for (n, op) in work.ops.iter().enumerate() {
        if n % 16 == 0 && Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx
            .prepare_cached(SELECT_MAX)?
            .query_row(params![op.event.actor_id], |r| r.get(0))?;
        if op.event.version <= current {
            tx.rollback()?;
            rejected += 1;
            continue;
        }
        seq += 1;
        tx.prepare_cached(INSERT)?.execute(params![
            op.event.actor_id,
            op.event.version,
            seq,
            op.json
        ])?;
        tx.commit()?;
        record(&mut hist, t0.elapsed());
    }
    let elapsed = started.elapsed();
    progress.finish();
    let mut stats = OpStats::new(
        format!("SQLite save (synchronous={synchronous})"),
        hist.len(),
        hist.len(),
        elapsed,
    );
    stats.hist = hist;
    drop(conn);
    let size = sqlite_size(path);
    Ok((stats, rejected, size))
}

/// The batches of the workload, one transaction each (SELECT max once, then every row).
pub fn sqlite_batches(
    path: &Path,
    work: &Workload,
    synchronous: &str,
    cap: Duration,
) -> CmdResult<OpStats> {
    let mut conn = sqlite_open(path, synchronous)?;
    let mut hist = histogram();
    let mut events = 0u64;
    let mut seq = 0i64;
    let started = Instant::now();
    let deadline = started + cap;
    for batch in &work.batches {
        if Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let actor = &batch.events[0].actor_id;
        let current: i64 = tx
            .prepare_cached(SELECT_MAX)?
            .query_row(params![actor], |r| r.get(0))?;
        if batch.events[0].version <= current {
            tx.rollback()?;
            continue;
        }
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for (event, json) in batch.events.iter().zip(&batch.json) {
                seq += 1;
                insert.execute(params![actor, event.version, seq, json])?;
            }
        }
        tx.commit()?;
        record(&mut hist, t0.elapsed());
        events += batch.events.len() as u64;
    }
    let elapsed = started.elapsed();
    let size = batch_size_of(work);
    let mut stats = OpStats::new(
        format!("SQLite {size}-row transaction ({synchronous})"),
        hist.len(),
        events,
        elapsed,
    );
    stats.hist = hist;
    Ok(stats)
}

fn batch_size_of(work: &Workload) -> usize {
    work.batches.first().map_or(0, |b| b.events.len())
}

/// Bytes SQLite's files take (database, WAL and shared memory).
fn sqlite_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok()
        })
        .map(|m| m.blocks() * 512)
        .sum()
}

/// serde_json decoding the same stored events (`Event::from_json`), grouped per actor into
/// one `Vec<Event>` each, as replay returns them. Counts only events `latest` says exist.
pub fn serde_json_parse(work: &Workload, latest: &[i64]) -> CmdResult<OpStats> {
    let mut per_actor: Vec<Vec<&[u8]>> = vec![Vec::new(); work.actors.len()];
    for op in work.ops.iter().filter(|op| !op.conflict) {
        if op.event.version <= latest[op.actor as usize] {
            per_actor[op.actor as usize].push(&op.json);
        }
    }
    let mut hist = histogram();
    let mut events = 0u64;
    let started = Instant::now();
    for jsons in &per_actor {
        let t0 = Instant::now();
        let decoded = jsons
            .iter()
            .map(|j| Event::from_json(j))
            .collect::<Result<Vec<Event>, _>>()
            .map_err(|e| Failure(format!("serde_json: {e}")))?;
        record(&mut hist, t0.elapsed());
        events += decoded.len() as u64;
    }
    let mut stats = OpStats::new(
        "serde_json parse (Event::from_json)",
        hist.len(),
        events,
        started.elapsed(),
    );
    stats.hist = hist;
    Ok(stats)
}
