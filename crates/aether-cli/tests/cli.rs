//! The real `aether` binary against real stores (format 2: a segment log and a sled index)
//! in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aether_core::sled_store::index;
use aether_core::{
    ActorSnapshot, Durability, Event, EventStore, Options, SledStore, SnapshotStore, Timestamp,
};

fn aether(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aether"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run aether")
}

fn aether_path(args: &[&str], path: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.push(path.to_str().unwrap());
    aether(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn event(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "ItemAdded", actor, version)
        .with_data("sku", format!("SKU-{version}"))
        .with_data(
            "nested",
            serde_json::json!({"qty": version, "tags": ["x", "y"]}),
        );
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_123_456_789 + version as i128);
    e.set_correlation_id("corr");
    e
}

/// Events in the order the known store saves them: a1 b1 a2 b2 a3.
fn known_events() -> Vec<Event> {
    vec![
        event("a", 1),
        event("b", 1),
        event("a", 2),
        event("b", 2),
        event("a", 3),
    ]
}

/// A closed store holding `known_events()` and one snapshot of "a", written by a child
/// process (this test binary re-run), so that nothing of this process holds its files.
fn known_store(dir: &Path) -> PathBuf {
    let path = dir.join("store");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["write_known_store", "--exact", "--ignored", "--quiet"])
        .env(KNOWN_STORE_ENV, &path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(path.join("sled").is_dir() && path.join(SEGMENT).is_file());
    path
}

/// The known store's one segment.
const SEGMENT: &str = "log/00000000000000000001.seg";

const KNOWN_STORE_ENV: &str = "AETHER_CLI_TEST_KNOWN_STORE";

#[test]
#[ignore = "helper: run in a child process by known_store()"]
fn write_known_store() {
    let path = std::env::var_os(KNOWN_STORE_ENV).unwrap_or_else(|| {
        panic!("write_known_store runs only as known_store()'s child ({KNOWN_STORE_ENV} unset)")
    });
    let store =
        SledStore::open_with(&path, Options::with_durability(Durability::Buffered)).unwrap();
    for e in known_events() {
        store.save_event(&e).unwrap();
    }
    store
        .save_snapshot(&ActorSnapshot {
            actor_id: "a".into(),
            version: 2,
            state: Some(serde_json::json!({"count": 2}).as_object().unwrap().clone()),
            timestamp: Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
        })
        .unwrap();
    store.close().unwrap();
}

fn json_lines(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| String::from_utf8(e.to_json()).unwrap() + "\n")
        .collect()
}

/// Where `needle` first occurs in the store's segment.
fn offset_in_segment(path: &Path, needle: &[u8]) -> usize {
    let bytes = std::fs::read(path.join(SEGMENT)).unwrap();
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in the segment"))
}

fn flip_segment_byte(path: &Path, at: usize, mask: u8) {
    let mut bytes = std::fs::read(path.join(SEGMENT)).unwrap();
    bytes[at] ^= mask;
    std::fs::write(path.join(SEGMENT), bytes).unwrap();
}

fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_files(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn stats_json(path: &Path) -> serde_json::Value {
    let o = aether_path(&["stats", "--json"], path);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn help_works_for_every_subcommand() {
    for args in [
        vec!["--help"],
        vec!["bench", "--help"],
        vec!["stats", "--help"],
        vec!["inspect", "--help"],
        vec!["verify", "--help"],
        vec!["export", "--help"],
        vec!["import", "--help"],
        vec!["reindex", "--help"],
        vec!["migrate", "--help"],
    ] {
        let o = aether(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage:"), "{args:?}: {}", stdout(&o));
    }
    for gone in ["no-such-command", "debug"] {
        let o = aether(&[gone]);
        assert_eq!(o.status.code(), Some(2), "{gone}");
    }
}

#[test]
fn stats_reports_a_known_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let stats = stats_json(&path);
    assert_eq!(stats["actors"], 2);
    assert_eq!(stats["events"], 5);
    assert_eq!(stats["snapshots"], 1);
    assert_eq!(stats["last_sequence"], 5);
    assert_eq!(stats["segments"], 1);
    assert_eq!(stats["durability"], "buffered");
    assert_eq!(stats["format"], "2");
    // Closed cleanly: opening had nothing to recover.
    assert_eq!(stats["open_report"], serde_json::json!([]), "{stats}");
    let on_disk = stats["size_on_disk_bytes"].as_u64().unwrap();
    let preallocated = stats["preallocated_bytes"].as_u64().unwrap();
    // The active segment is zero-filled ahead of the writer.
    assert!(preallocated > 0, "{stats}");
    assert!(
        stats["apparent_size_bytes"].as_u64().unwrap() >= preallocated,
        "{stats}"
    );
    assert!(on_disk > 0, "{stats}");

    let o = aether_path(&["stats"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "format           2",
        "actors           2",
        "events           5",
        "snapshots        1",
        "last sequence    5",
        "segments         1",
        "durability       buffered",
        "preallocated zero fill",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // Reading did not change the mode the store records.
    assert_eq!(stats_json(&path)["durability"], "buffered");
}

#[test]
fn inspect_prints_the_stored_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let all = known_events();

    let o = aether_path(&["inspect"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), json_lines(&all));

    let o = aether_path(&["inspect", "--actor", "a", "--from-version", "2"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), json_lines(&[event("a", 2), event("a", 3)]));

    let o = aether_path(&["inspect", "--from-sequence", "3", "--limit", "2"], &path);
    assert_eq!(stdout(&o), json_lines(&all[2..4]));

    let o = aether_path(&["inspect", "--actor", "b", "--from-sequence", "3"], &path);
    assert_eq!(stdout(&o), json_lines(&[event("b", 2)]));

    let o = aether_path(&["inspect", "--actor", "nobody"], &path);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");

    // --from-version needs --actor: a usage error.
    let o = aether_path(&["inspect", "--from-version", "2"], &path);
    assert_eq!(o.status.code(), Some(2));

    // Inspecting reads the log and writes nothing: even a missing index stays missing.
    std::fs::remove_dir_all(path.join("sled")).unwrap();
    let o = aether_path(&["inspect"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), json_lines(&all));
    assert!(!path.join("sled").exists());
}

#[test]
fn verify_passes_a_sound_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("checked 1 segments")
            // One index run per actor: the store was flushed once, at close.
            && out.contains("6 records holding 5 events (last sequence 5), 2 index entries and 1 snapshots: sound"),
        "{out}"
    );
    // A durable store, written by the CLI.
    let durable = dir.path().join("durable");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, json_lines(&known_events())).unwrap();
    let o = aether(&["import", durable.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aether_path(&["verify"], &durable);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn verify_names_a_damaged_byte_in_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let p = path.to_str().unwrap();
    // A byte of a2's JSON (sequence 3): a record with intact records after it.
    flip_segment_byte(&path, offset_in_segment(&path, b"\"a-2\"") + 2, 0x01);
    let o = aether(&["verify", p]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "problem: {SEGMENT}: damaged record: frame at offset "
        )) && out.contains("is damaged and an intact frame follows at offset"),
        "{out}"
    );
    assert!(
        out.contains("sequences 3..3 are missing (they were in the damaged region before it)"),
        "{out}"
    );
    assert!(
        out.contains("problem: sequence 3, actor \"a\" version 2: index entry points nowhere"),
        "{out}"
    );
    assert!(out.contains("3 problems found"), "{out}");

    // inspect skips it, says so, and fails.
    let o = aether(&["inspect", p]);
    assert_eq!(o.status.code(), Some(1));
    let all = known_events();
    assert_eq!(
        stdout(&o),
        json_lines(&[
            all[0].clone(),
            all[1].clone(),
            all[3].clone(),
            all[4].clone()
        ])
    );
    assert!(
        stderr(&o).contains(&format!("skipping damaged records in {SEGMENT}")),
        "{}",
        stderr(&o)
    );
    // The store refuses to hand out the damaged record.
    let o = aether(&["export", p]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("export stops here"), "{}", stderr(&o));
    let store =
        SledStore::open_with(&path, Options::with_durability(Durability::Buffered)).unwrap();
    assert!(matches!(
        store.get_events("a", 1),
        Err(aether_core::Error::Corrupt { .. })
    ));
}

#[test]
fn verify_names_a_flipped_bit_in_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    // The last record is the snapshot: one flipped bit there is damage, not a write cut
    // short, since the sector it is in was written.
    let at = offset_in_segment(&path, b"\"count\"") + 1;
    flip_segment_byte(&path, at, 0x08);
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "problem: {SEGMENT}: damaged record: the last frame (offset "
        )) && out.contains(&format!(
            "a snapshot) differs from an intact frame by one bit at offset {at}"
        )),
        "{out}"
    );
}

#[test]
fn a_deleted_index_is_named_by_verify_and_rebuilt_by_reindex_or_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let copy = dir.path().join("copy");
    copy_files(&path, &copy);
    for p in [&path, &copy] {
        std::fs::remove_dir_all(p.join("sled")).unwrap();
    }
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("problem: sled: index missing: the store has no index; the next open, or `aether reindex`, rebuilds it from the log"),
        "{out}"
    );
    assert!(
        out.contains("no index and 0 snapshots: 1 problem found"),
        "{out}"
    );
    assert!(!path.join("sled").exists(), "verify created an index");

    let o = aether_path(&["reindex"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("the index was rebuilt from the log: aether reindex"),
        "{}",
        stdout(&o)
    );
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let stats = stats_json(&path);
    assert_eq!(
        (stats["events"].as_u64(), stats["actors"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(stats["snapshots"], 1);

    // Opening rebuilds it too, and says so.
    let o = aether_path(&["export"], &copy);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), json_lines(&known_events()));
    assert!(
        stderr(&o).contains("aether: note: the index was rebuilt from the log: ")
            && stderr(&o).contains("was missing"),
        "{}",
        stderr(&o)
    );
    let o = aether_path(&["verify"], &copy);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// The actor number the index gave `actor`.
fn actor_number(db: &sled::Db, actor: &str) -> u64 {
    let v = db
        .open_tree(index::TREE_ACTORS)
        .unwrap()
        .get(actor)
        .unwrap()
        .unwrap();
    u64::from_be_bytes(v.as_ref().try_into().unwrap())
}

/// Rewrite the index run of actor `number` that holds `version` (runs are keyed by their
/// last version): the index is sled's, so damage to it goes through sled.
fn edit_run(
    db: &sled::Db,
    number: u64,
    version: u64,
    edit: impl FnOnce(&mut Vec<index::RunRecord>),
) {
    let entries = db.open_tree(index::TREE_INDEX).unwrap();
    let (key, value) = entries
        .range(index::index_key(number, version)..=index::index_key(number, u64::MAX))
        .next()
        .unwrap()
        .unwrap();
    let mut run = index::decode_run(&value).unwrap();
    edit(&mut run);
    if run.is_empty() {
        entries.remove(key).unwrap();
    } else {
        entries.insert(key, index::encode_run(&run)).unwrap();
    }
}

#[test]
fn verify_names_a_deleted_index_entry_and_reindex_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    {
        let db = sled::open(path.join("sled")).unwrap();
        let a = actor_number(&db, "a");
        edit_run(&db, a, 2, |run| run.retain(|r| r.last_version != 2));
        db.flush().unwrap();
    }
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "problem: sequence 3, actor \"a\" version 2: record with no index entry: the record at offset "
        ) && out.contains(&format!("of {SEGMENT} has no index entry for this actor")),
        "{out}"
    );
    assert!(out.contains("1 problem found"), "{out}");
    let o = aether_path(&["reindex"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn verify_names_an_index_entry_pointing_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    {
        let db = sled::open(path.join("sled")).unwrap();
        let b = actor_number(&db, "b");
        edit_run(&db, b, 1, |run| {
            let r = run.iter_mut().find(|r| r.last_version == 1).unwrap();
            r.offset += 8;
        });
        db.flush().unwrap();
    }
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("problem: sequence 2, actor \"b\" version 1: index entry points nowhere: the entry points to offset "),
        "{out}"
    );
    assert!(
        out.contains("problem: sequence 2, actor \"b\" version 1: record with no index entry"),
        "{out}"
    );
}

#[test]
fn verify_names_a_damaged_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    {
        let db = sled::open(path.join("sled")).unwrap();
        let a = actor_number(&db, "a");
        let snapshots = db.open_tree(index::TREE_SNAPSHOTS).unwrap();
        let key = index::snapshot_key(a, 2);
        let mut value = snapshots.get(key).unwrap().unwrap().to_vec();
        let last = value.len() - 2;
        value[last] ^= 0x01;
        snapshots.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            "problem: snapshot of actor \"a\" version 2: snapshot: its checksum does not match"
        ),
        "{out}"
    );
}

#[test]
fn export_then_import_then_export_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let mut events = Vec::new();
    for round in 1..=4 {
        for actor in ["order-1", "order-2", "a\u{0}b", "ü"] {
            events.push(event(actor, round));
        }
    }
    events.extend([event("batch", 1), event("batch", 2), event("batch", 3)]);
    let input = dir.path().join("source.jsonl");
    std::fs::write(&input, json_lines(&events)).unwrap();
    let o = aether(&[
        "import",
        source.to_str().unwrap(),
        input.to_str().unwrap(),
        "--batch-size",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = aether_path(&["export"], &source);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(stdout(&first), json_lines(&events));
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, &first.stdout).unwrap();

    for (name, batch) in [("copy-1", "1"), ("copy-3", "3")] {
        let copy = dir.path().join(name);
        let o = aether(&[
            "import",
            copy.to_str().unwrap(),
            file.to_str().unwrap(),
            "--batch-size",
            batch,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("imported 19 events"), "{}", stderr(&o));
        let second = aether_path(&["export"], &copy);
        assert!(second.status.success(), "{}", stderr(&second));
        assert_eq!(stdout(&second), stdout(&first));
        let o = aether_path(&["verify"], &copy);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    }
    // --from-sequence starts later.
    let tail = aether(&["export", source.to_str().unwrap(), "--from-sequence", "18"]);
    assert_eq!(stdout(&tail), json_lines(&events[17..]));
    // Exporting did not change the durability the store records.
    assert_eq!(stats_json(&source)["durability"], "durable");
}

#[test]
fn import_reports_conflicts_by_line_and_never_half_writes_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    let mut lines = json_lines(&[event("a", 1), event("a", 2), event("a", 2), event("b", 1)]);
    lines.push_str("not json\n");
    std::fs::write(&file, lines).unwrap();
    let store = dir.path().join("single");
    let o = aether(&["import", store.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("line 3: version conflict: actor \"a\" has version 2, cannot save version 2"),
        "{err}"
    );
    assert!(err.contains("line 5: not an event"), "{err}");
    assert!(err.contains("imported 3 events"), "{err}");

    // As batches: lines 1-3 are one batch of actor a with versions 1, 2, 2 — rejected whole.
    let batched = dir.path().join("batched");
    let o = aether(&[
        "import",
        batched.to_str().unwrap(),
        file.to_str().unwrap(),
        "--batch-size",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("lines 1-3 (one batch, nothing of it written)"),
        "{err}"
    );
    let store = SledStore::open(&batched).unwrap();
    assert_eq!(store.get_latest_version("a").unwrap(), 0);
    assert_eq!(store.get_latest_version("b").unwrap(), 1);
}

#[test]
fn import_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aether"))
        .args([
            "import",
            store.to_str().unwrap(),
            "-",
            "--durability",
            "buffered",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json_lines(&known_events()).as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aether_path(&["inspect"], &store);
    assert_eq!(stdout(&o), json_lines(&known_events()));
    assert_eq!(stats_json(&store)["durability"], "buffered");
}

#[test]
fn a_locked_store_gives_a_clear_message_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let _held = SledStore::open(&path).unwrap();
    let p = path.to_str().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, json_lines(&[event("c", 1)])).unwrap();
    for args in [
        vec!["stats", p],
        vec!["verify", p],
        vec!["inspect", p],
        vec!["export", p],
        vec!["import", p, file.to_str().unwrap()],
        vec!["reindex", p],
    ] {
        let started = Instant::now();
        let o = aether(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("held by another process"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
    // Nothing was changed: the index is still there.
    assert!(path.join("sled").join("db").is_file());
}

#[test]
fn a_path_without_a_store_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    for cmd in ["stats", "verify", "inspect", "export", "reindex"] {
        let o = aether_path(&[cmd], &missing);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(stderr(&o).contains("not an aether store"), "{}", stderr(&o));
    }
    let o = aether_path(&["migrate"], &missing);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("holds no store of format 1"),
        "{}",
        stderr(&o)
    );
    assert!(!missing.exists(), "a command created a store");
}

#[test]
fn migrate_refuses_a_store_that_is_not_format_1_and_others_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let o = aether_path(&["migrate"], &path);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!("{} holds no store of format 1", path.display())),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("store.format1").exists());
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // A format-1 store: every other command names the migration.
    let old = dir.path().join("old");
    std::fs::create_dir_all(old.join("sled")).unwrap();
    std::fs::write(old.join("aether.wal"), [0u8; 4096]).unwrap();
    for cmd in ["stats", "verify", "inspect", "export", "reindex"] {
        let o = aether_path(&[cmd], &old);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&o).contains(&format!(
                "convert it with `aether migrate {}`",
                old.display()
            )),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    assert!(!old.join("FORMAT").exists() && !old.join("log").exists());
}

fn bench_json(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let o = aether(&[
        "bench",
        "--backend",
        backend,
        "--events",
        "2000",
        "--actors",
        "50",
        "--lookups",
        "5000",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("get_latest_version"), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["config"]["backend"], backend);
    let ops = report["operations"].as_array().unwrap();
    assert!(ops.len() >= 7);
    for op in ops {
        if let Some(rate) = op["events_per_s"].as_f64() {
            if op["name"].as_str().unwrap().contains("rejected") {
                continue;
            }
            assert!(rate > 0.0, "{op}");
        }
        assert!(op["calls"].as_u64().unwrap() > 0, "{op}");
    }
    assert_eq!(report["checks"]["unexpected_save_outcomes"], 0);
    assert_eq!(report["checks"]["replay_mismatches"], 0);
    assert_eq!(report["checks"]["wrong_latest_versions"], 0);
    assert!(report["workload"]["deliberate_conflicts"].as_u64().unwrap() > 0);
    if backend == "sled" || backend == "jetstream" {
        assert!(report["size_on_disk_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn bench_writes_figures_for_sled() {
    bench_json("sled");
}

#[test]
fn bench_writes_figures_for_memory() {
    bench_json("memory");
}

/// The JetStream bench tests need `nats-server` on PATH and fail, saying so, without it;
/// built with `AETHER_SKIP_JETSTREAM=1` and no server, they are ignored instead (`build.rs`).
fn require_nats() {
    let on_path = std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        on_path,
        "nats-server is not on PATH (Debian: apt-get install -y nats-server); build the tests \
         with AETHER_SKIP_JETSTREAM=1 to mark them ignored instead"
    );
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn bench_writes_figures_for_jetstream_on_a_private_server() {
    require_nats();
    bench_json("jetstream");
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn bench_on_jetstream_uses_the_server_given_on_a_stream_of_its_own() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nats-server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let args = [
        "bench",
        "--backend",
        "jetstream",
        "--nats-url",
        &url,
        "--events",
        "300",
        "--actors",
        "10",
        "--lookups",
        "100",
    ];
    // Twice against the same server: each run starts from an empty stream of its own.
    for _ in 0..2 {
        let o = aether(&args);
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains(&format!("(at {url})")),
            "{}",
            stdout(&o)
        );
        assert!(
            stdout(&o).contains("save_event (1 writer)"),
            "{}",
            stdout(&o)
        );
    }
    // --nats-url belongs to the JetStream backend.
    let o = aether(&["bench", "--backend", "memory", "--nats-url", &url]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--nats-url"), "{}", stderr(&o));
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn bench_keeps_the_store_at_path_and_verify_finds_it_sound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept");
    let o = aether(&[
        "bench",
        "--events",
        "500",
        "--actors",
        "20",
        "--lookups",
        "100",
        "--durability",
        "buffered",
        "--writers",
        "2",
        "--path",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = aether_path(&["stats", "--json"], &path);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 20 interleaved actors and one actor taking the 3 batches.
    assert_eq!(stats["actors"].as_u64().unwrap(), 21);
    // A second run refuses the non-empty folder.
    let o = aether(&["bench", "--events", "10", "--path", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bench_compare_runs_every_peer_and_reports_each_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("compare.json");
    let o = aether(&[
        "bench",
        "--compare",
        "--events",
        "400",
        "--actors",
        "20",
        "--lookups",
        "1000",
        "--duration",
        "1",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("targets met"), "{text}");
    // JetStream runs when a nats-server binary is on PATH, and is skipped (saying why)
    // otherwise; either way the bench succeeds.
    let jetstream = text
        .lines()
        .find(|l| l.contains("JetStream: "))
        .unwrap_or_default();
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("nats-server").is_file()));
    if on_path {
        assert!(jetstream.contains("JetStream: publish"), "{text}");
    } else {
        assert!(
            jetstream.contains("JetStream: skipped (nats-server not on PATH)"),
            "{text}"
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = report["compare"]["comparisons"].as_array().unwrap();
    assert_eq!(rows.len(), 13);
    for row in rows {
        assert!(row["ours"].as_f64().unwrap() > 0.0, "{row}");
        // Absolute targets (read_all's events/s) have no peer.
        if row["unit"] == "events/s" && row["peer_name"] != "" {
            assert!(row["peer"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["ratio"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert!(row["met"].is_boolean(), "{row}");
    }
}

#[test]
fn an_unclean_store_is_reported_as_such_and_repaired_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crashed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aether"))
        .args([
            "bench",
            "--events",
            "100000",
            "--actors",
            "100",
            "--lookups",
            "10",
            "--durability",
            "buffered",
        ])
        .arg("--path")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the log holds records well past its first, then kill mid-write.
    let segment = path.join(SEGMENT);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = std::fs::read(&segment)
            .map(|b| {
                b.get(65536..65552)
                    .is_some_and(|f| f.iter().any(|&x| x != 0))
            })
            .unwrap_or(false);
        if written {
            std::thread::sleep(Duration::from_millis(200));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bench never wrote to its log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // What a kill leaves is a note, not a problem.
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("note: index: the store was not closed cleanly"),
        "{}",
        stdout(&o)
    );
    let last_sequence = stdout(&o)
        .split("(last sequence ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map(|s| s.replace(',', "").parse::<u64>().unwrap())
        .unwrap();
    assert!(last_sequence > 0);

    // Opening through the library recovers; afterwards the store is clean, and every
    // event the log held is there (buffered saves survive a killed process).
    let exported = aether_path(&["export"], &path);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert_eq!(stdout(&exported).lines().count() as u64, last_sequence);
    let stats = stats_json(&path);
    assert_eq!(stats["events"].as_u64().unwrap(), last_sequence);
    assert_eq!(stats["open_report"], serde_json::json!([]), "{stats}");
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("not closed cleanly"), "{}", stdout(&o));
}
