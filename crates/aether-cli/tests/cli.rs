//! The real `aether` binary against real sled stores in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aether_core::sled_store::layout;
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
/// process (this test binary re-run): sled frees a closed handle's file lock lazily, so a
/// store closed in this process could still look held to the binary under test.
fn known_store(dir: &Path) -> PathBuf {
    let path = dir.join("store");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["write_known_store", "--exact", "--ignored", "--quiet"])
        .env(KNOWN_STORE_ENV, &path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(path.join("sled").is_dir());
    path
}

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
        vec!["debug", "--help"],
        vec!["debug", "corrupt-record", "--help"],
        vec!["debug", "remove-index-entry", "--help"],
    ] {
        let o = aether(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage:"), "{args:?}: {}", stdout(&o));
    }
    let o = aether(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn stats_reports_a_known_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let o = aether_path(&["stats", "--json"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["actors"], 2);
    assert_eq!(stats["events"], 5);
    assert_eq!(stats["snapshots"], 1);
    assert_eq!(stats["last_sequence"], 5);
    assert_eq!(stats["durability"], "buffered");
    assert_eq!(stats["format"], "1");
    assert_eq!(stats["wal_pending_saves"], 0);
    assert!(stats["size_on_disk_bytes"].as_u64().unwrap() > 0);

    let o = aether_path(&["stats"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "actors           2",
        "events           5",
        "snapshots        1",
        "last sequence    5",
        "durability       buffered",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
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

    let o = aether_path(&["inspect", "--actor", "nobody"], &path);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");

    // --from-version needs --actor: a usage error.
    let o = aether_path(&["inspect", "--from-version", "2"], &path);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn verify_passes_a_sound_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("sound"), "{}", stdout(&o));
    // A durable store, closed cleanly, too (its log holds a checkpoint). It is written by
    // a child process: sled frees a closed handle's lock lazily, so one closed here could
    // still look held.
    let durable = dir.path().join("durable");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, json_lines(&known_events())).unwrap();
    let o = aether(&["import", durable.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aether_path(&["verify"], &durable);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn verify_names_a_record_overwritten_with_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let p = path.to_str().unwrap();
    let o = aether(&[
        "debug",
        "corrupt-record",
        p,
        "--actor",
        "a",
        "--version",
        "2",
        "--garbage",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aether(&["verify", p]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("problem: sequence 3, actor \"a\" version 2: malformed record"),
        "{out}"
    );
    assert!(out.contains("1 problem found"), "{out}");
    // inspect skips it, says so, and fails.
    let o = aether(&["inspect", p]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 4);
    assert!(stderr(&o).contains("sequence 3"), "{}", stderr(&o));
}

#[test]
fn verify_names_a_flipped_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let p = path.to_str().unwrap();
    // Bit 0 of byte 40: inside the JSON.
    let o = aether(&[
        "debug",
        "corrupt-record",
        p,
        "--actor",
        "b",
        "--version",
        "1",
        "--flip-bit",
        "320",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aether(&["verify", p]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            "sequence 2, actor \"b\" version 1: malformed record: event record checksum mismatch"
        ),
        "{out}"
    );
    // The library agrees.
    let store =
        SledStore::open_with(&path, Options::with_durability(Durability::Buffered)).unwrap();
    assert!(matches!(
        store.get_events("b", 1),
        Err(aether_core::Error::Corrupt { sequence: 2, .. })
    ));
}

#[test]
fn verify_names_a_deleted_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    {
        let db = sled::open(path.join("sled")).unwrap();
        let index = db.open_tree(layout::TREE_SEQUENCE).unwrap();
        assert!(index.remove(layout::sequence_key(2)).unwrap().is_some());
        db.flush().unwrap();
    }
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("problem: sequence 2: sequence gap: sequence 2 has no index entry"),
        "{out}"
    );
    assert!(
        out.contains("sequence 2, actor \"b\" version 1: record with no index entry"),
        "{out}"
    );
}

#[test]
fn verify_names_an_index_entry_pointing_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let p = path.to_str().unwrap();
    let o = aether(&["debug", "remove-index-entry", p, "--sequence", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    aether_core::sled_store::fault::remove_record(&path, "a", 2).unwrap();
    let o = aether(&["verify", p]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("sequence 3, actor \"a\" version 2: index entry points nowhere"),
        "{out}"
    );
    assert!(
        out.contains("sequence gap: sequence 4 has no index entry"),
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
    assert_eq!(stdout(&first).lines().count(), 19);
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
    }
    // --from-sequence starts later.
    let tail = aether(&["export", source.to_str().unwrap(), "--from-sequence", "18"]);
    assert_eq!(stdout(&tail).lines().count(), 2);
    // Exporting did not change the durability the store records.
    let o = aether_path(&["stats", "--json"], &source);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["durability"], "durable");
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
}

#[test]
fn a_locked_store_gives_a_clear_message_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    let _held = SledStore::open(&path).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["stats", p],
        vec!["verify", p],
        vec!["inspect", p],
        vec!["export", p],
        vec![
            "debug",
            "corrupt-record",
            p,
            "--actor",
            "a",
            "--version",
            "1",
            "--garbage",
        ],
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
}

#[test]
fn a_path_without_a_store_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    for cmd in ["stats", "verify", "inspect", "export"] {
        let o = aether_path(&[cmd], &missing);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(stderr(&o).contains("not an aether store"), "{}", stderr(&o));
    }
    assert!(!missing.exists(), "a read-only command created a store");
    let path = known_store(dir.path());
    let o = aether(&[
        "debug",
        "corrupt-record",
        path.to_str().unwrap(),
        "--actor",
        "a",
        "--version",
        "9",
        "--garbage",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no stored record"), "{}", stderr(&o));
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
    assert_eq!(rows.len(), 10);
    for row in rows {
        assert!(row["ours"].as_f64().unwrap() > 0.0, "{row}");
        if row["unit"] == "events/s" {
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
        ])
        .arg("--path")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the write-ahead log holds a frame past its header, then kill mid-write.
    let wal = path.join("aether.wal");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = std::fs::read(&wal)
            .map(|b| b.get(4096..4112).is_some_and(|f| f.iter().any(|&x| x != 0)))
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

    let o = aether_path(&["stats", "--json"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(stats["wal_pending_saves"].as_u64().unwrap() > 0, "{stats}");
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("not closed cleanly"), "{}", stdout(&o));

    // Opening through the library replays the log; afterwards sled holds everything.
    let exported = aether_path(&["export"], &path);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let o = aether_path(&["stats", "--json"], &path);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["wal_pending_saves"], 0, "{stats}");
    assert_eq!(
        stats["events"].as_u64().unwrap(),
        stdout(&exported).lines().count() as u64
    );
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("not closed cleanly"), "{}", stdout(&o));
}

#[test]
fn verify_names_a_damaged_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_store(dir.path());
    {
        let db = sled::open(path.join("sled")).unwrap();
        let snapshots = db.open_tree(layout::TREE_SNAPSHOTS).unwrap();
        let key = layout::actor_key(b"a");
        let mut value = snapshots.get(&key).unwrap().unwrap().to_vec();
        let last = value.len() - 2;
        value[last] ^= 0x01;
        snapshots.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let o = aether_path(&["verify"], &path);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("problem: snapshot of actor \"a\": malformed snapshot: snapshot record checksum mismatch"),
        "{out}"
    );
}

const CRASHED_STORE_ENV: &str = "AETHER_CLI_TEST_CRASHED_STORE";

/// The image of a durable store taken while it was still open: what a crash leaves (sled
/// behind, the saves in the log). The store saved `known_events()` one by one, the first
/// two before it was closed and reopened (so both header slots hold a checkpoint), the
/// last three after (only in the log). Written by a child process, like `known_store`.
fn crashed_store(dir: &Path) -> PathBuf {
    let path = dir.join("crashed");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["write_crashed_store", "--exact", "--ignored", "--quiet"])
        .env(CRASHED_STORE_ENV, &path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(path.join("aether.wal").is_file());
    path
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

#[test]
#[ignore = "helper: run in a child process by crashed_store()"]
fn write_crashed_store() {
    let path = std::env::var_os(CRASHED_STORE_ENV).unwrap_or_else(|| {
        panic!(
            "write_crashed_store runs only as crashed_store()'s child ({CRASHED_STORE_ENV} unset)"
        )
    });
    let path = PathBuf::from(path);
    let live = path.with_extension("live");
    let mut options = Options::with_durability(Durability::Durable);
    options.wal_capacity = 64 * 1024;
    let events = known_events();
    let store = SledStore::open_with(&live, options.clone()).unwrap();
    for e in &events[..2] {
        store.save_event(e).unwrap();
    }
    store.close().unwrap();
    drop(store);
    let store = SledStore::open_with(&live, options).unwrap();
    for e in &events[2..] {
        store.save_event(e).unwrap();
    }
    copy_files(&live, &path);
}

/// Offsets of the log's frames (those of the generation of the first one).
fn wal_frames(wal: &[u8]) -> Vec<usize> {
    let u32_at = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().unwrap());
    let mut frames = Vec::new();
    let mut at = 4096;
    let generation = &wal[at + 8..at + 16];
    while u32_at(at) != 0 && &wal[at + 8..at + 16] == generation {
        frames.push(at);
        at = (at + 16 + u32_at(at) as usize + 7) & !7;
    }
    frames
}

#[test]
fn verify_names_damage_in_the_log_of_a_crashed_store() {
    let dir = tempfile::tempdir().unwrap();
    let image = crashed_store(dir.path());
    let wal = std::fs::read(image.join("aether.wal")).unwrap();
    let frames = wal_frames(&wal);
    assert_eq!(frames.len(), 3);
    let damaged = |name: &str, damage: &dyn Fn(&mut Vec<u8>)| {
        let path = dir.path().join(name);
        copy_files(&image, &path);
        let mut bytes = wal.clone();
        damage(&mut bytes);
        std::fs::write(path.join("aether.wal"), bytes).unwrap();
        let o = aether_path(&["verify"], &path);
        (o.status.code(), stdout(&o))
    };

    // Intact: the saves are only in the log, which the next open replays.
    let (code, out) = damaged("intact", &|_| {});
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("not closed cleanly: 3 saves"), "{out}");

    // A flipped bit in the last frame: the store would take it for a write cut short by
    // the crash and drop an acknowledged save.
    let last = frames[2];
    let (code, out) = damaged("last", &|b| b[last + 60] ^= 0x08);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "problem: aether.wal: damaged last frame: the last frame (offset {last}, sequence 5) differs from an intact frame by one bit at offset {}",
            last + 60
        )),
        "{out}"
    );
    assert!(out.contains("not closed cleanly: 2 saves"), "{out}");
    // ... and the store refuses to open rather than drop it.
    let o = aether_path(&["export"], &dir.path().join("last"));
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!(
            "data loss detected: the write-ahead log is damaged and acknowledged saves after the damage cannot be recovered: {}: the last frame (offset {last}, sequence 5) differs from an intact frame by one bit",
            dir.path().join("last").join("aether.wal").display()
        )),
        "{}",
        stderr(&o)
    );

    // The same in an earlier frame: the saves after it are lost (the store refuses to open).
    let second = frames[1];
    let (code, out) = damaged("second", &|b| b[second + 20] ^= 0x01);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "problem: aether.wal: damaged log: frame at offset {second} is damaged and an intact frame follows at offset {}",
            frames[2]
        )),
        "{out}"
    );

    // Truncated inside the last frame.
    let (code, out) = damaged("truncated", &|b| b.truncate(last + 30));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("damaged last frame: the file ends inside its last frame"),
        "{out}"
    );

    // The newer header slot damaged: the frames written after the newer checkpoint show
    // that the slot held it, so the next open reads them all the same (it used to fall
    // back to the older checkpoint and not read them: 3 acknowledged saves lost).
    let (code, out) = damaged("slot", &|b| b[512 + 17] ^= 0x40);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "problem: aether.wal: damaged header: the header slot at offset 512 is damaged; the checkpoint comes from the other slot"
        ),
        "{out}"
    );
    assert!(
        out.contains("; it held the newest checkpoint (generation "),
        "{out}"
    );
    assert!(!out.contains("damaged log"), "{out}");
    assert!(out.contains("not closed cleanly: 3 saves"), "{out}");
    let o = aether_path(&["export"], &dir.path().join("slot"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), json_lines(&known_events()));

    // A write cut short by the crash (the end of the last frame never reached the disk) is
    // not damage: that save was never acknowledged.
    let end = last + 16 + u32::from_be_bytes(wal[last..last + 4].try_into().unwrap()) as usize;
    let (code, out) = damaged("torn", &|b| b[last + 64..end].fill(0));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("not closed cleanly: 2 saves"), "{out}");
}
