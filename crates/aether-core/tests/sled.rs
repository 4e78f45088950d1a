//! Behaviour only the persistent backend has: persistence across reopen, locking,
//! recovery of cut-short batches, detection of damaged records and of lost data.

use std::path::Path;
use std::time::{Duration, Instant};

use aether_core::sled_store::layout;
use aether_core::{
    Durability, Error, Event, EventStore, Options, SledStore, SnapshotStore, Timestamp,
};
use serde_json::json;

fn ev(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "Tested", actor, version)
        .with_data("n", version)
        .with_data(
            "payload",
            json!({"text": "x".repeat(100), "list": [1, 2, 3]}),
        );
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128);
    e
}

fn opts(durability: Durability) -> Options {
    let mut o = Options::with_durability(durability);
    o.wal_capacity = 1 << 20;
    o
}

fn open(path: &Path, durability: Durability) -> SledStore {
    SledStore::open_with(path, opts(durability)).unwrap()
}

#[test]
fn everything_survives_close_and_reopen_and_the_sequence_continues() {
    for durability in [Durability::Durable, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let s = open(&path, durability);
            for v in 1..=20 {
                s.save_event(&ev("a", v)).unwrap();
            }
            s.save_events(&[ev("b", 1), ev("b", 2)]).unwrap();
            s.save_snapshot(&aether_core::ActorSnapshot {
                actor_id: "a".into(),
                version: 20,
                state: None,
                timestamp: Timestamp::ZERO,
            })
            .unwrap();
            s.close().unwrap();
        }
        let s = open(&path, durability);
        assert_eq!(s.last_sequence().unwrap(), 22);
        assert_eq!(s.get_latest_version("a").unwrap(), 20);
        assert_eq!(s.get_events("b", 0).unwrap(), vec![ev("b", 1), ev("b", 2)]);
        assert_eq!(s.get_latest_snapshot("a").unwrap().unwrap().version, 20);
        assert_eq!(s.save_events(&[ev("c", 1)]).unwrap(), 23);
        let all = s.read_all(1, 100).unwrap();
        assert_eq!(
            all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            (1..=23).collect::<Vec<_>>()
        );
        // Reopen in the other mode: the data does not depend on the mode.
        drop(s);
        let other = match durability {
            Durability::Durable => Durability::Buffered,
            Durability::Buffered => Durability::Durable,
        };
        let s = open(&path, other);
        assert_eq!(s.last_sequence().unwrap(), 23);
        assert_eq!(s.get_events("a", 0).unwrap().len(), 20);
    }
}

#[test]
fn reopening_right_after_closing_never_fails_spuriously() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    for round in 1..=25 {
        let s = open(&path, Durability::Buffered);
        s.save_event(&ev("a", round)).unwrap();
        drop(s);
    }
    assert_eq!(
        open(&path, Durability::Buffered)
            .get_latest_version("a")
            .unwrap(),
        25
    );
}

#[test]
fn a_second_handle_is_refused_with_a_clear_error_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let _held = open(&path, Durability::Durable);
    let mut o = opts(Durability::Durable);
    o.lock_timeout = Duration::from_millis(200);
    let started = Instant::now();
    match SledStore::open_with(&path, o) {
        Err(Error::Locked { path: p }) => assert_eq!(p, path),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Overwrite one stored value behind the store's back, through sled itself.
fn poke(path: &Path, tree: &[u8], key: &[u8], value: &[u8]) {
    let db = sled::open(path.join("sled")).unwrap();
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

#[test]
fn malformed_records_are_reported_never_skipped_or_returned_as_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = open(&path, Durability::Durable);
        for v in 1..=5 {
            s.save_event(&ev("a", v)).unwrap();
        }
        s.save_event(&ev("z", 1)).unwrap();
    }
    // Version 2: garbage. Version 3: a well-formed record whose checksum matches but whose
    // JSON is not an event. Version 4: a bit flipped inside the JSON.
    poke(
        &path,
        layout::TREE_EVENTS,
        &layout::event_key(b"a", 2),
        b"\x00garbage",
    );
    poke(
        &path,
        layout::TREE_EVENTS,
        &layout::event_key(b"a", 3),
        &layout::encode_event_record(3, b"{\"not\":\"an event\"}"),
    );
    let good4 = layout::encode_event_record(4, &ev("a", 4).to_json());
    let mut bad4 = good4.clone();
    bad4[40] ^= 0x04;
    poke(
        &path,
        layout::TREE_EVENTS,
        &layout::event_key(b"a", 4),
        &bad4,
    );

    let s = open(&path, Durability::Durable);
    match s.get_events("a", 0) {
        Err(Error::Corrupt {
            sequence, location, ..
        }) => {
            assert_eq!(sequence, 0, "garbage has no readable sequence");
            assert!(location.contains("version 2"), "{location}");
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert!(matches!(
        s.get_events("a", 3),
        Err(Error::Corrupt { sequence: 3, .. })
    ));
    let r = s.get_events_with_errors("a", 0).unwrap();
    assert!(r.has_errors());
    assert_eq!(r.events, vec![ev("a", 1), ev("a", 5)]);
    let seqs: Vec<u64> = r.errors.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, [0, 3, 4]);
    assert_eq!(r.errors[0].raw, b"\x00garbage");
    assert_eq!(r.errors[2].raw, bad4);
    assert!(
        r.errors[1].cause.contains("missing field"),
        "{}",
        r.errors[1].cause
    );
    assert!(
        r.errors[2].cause.contains("checksum"),
        "{}",
        r.errors[2].cause
    );
    assert_eq!(s.metrics().replay_errors, 3);
    assert!(matches!(
        s.get_events_json("a", 0),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        s.read_all(1, 10),
        Err(Error::Corrupt { sequence: 2, .. })
    ));
    // Other actors and the undamaged part are unaffected; so is the version check.
    assert_eq!(s.get_events("z", 0).unwrap(), vec![ev("z", 1)]);
    assert_eq!(s.get_events("a", 5).unwrap(), vec![ev("a", 5)]);
    assert!(s.save_event(&ev("a", 5)).unwrap_err().is_conflict());
}

#[test]
fn lost_sled_data_is_detected_at_open() {
    for durability in [Durability::Durable, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let s = open(&path, durability);
            for v in 1..=50 {
                s.save_event(&ev("a", v)).unwrap();
            }
        }
        // sled's files replaced by an empty database: everything acknowledged is gone.
        std::fs::remove_dir_all(path.join("sled")).unwrap();
        match SledStore::open_with(&path, opts(durability)) {
            Err(Error::DataLoss(msg)) => {
                assert!(msg.contains("sequence 50"), "{msg}");
            }
            other => panic!("expected data loss, got {other:?}"),
        }
    }
}

#[test]
fn a_damaged_checkpoint_record_is_detected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = open(&path, Durability::Durable);
        for v in 1..=3 {
            s.save_event(&ev("a", v)).unwrap();
        }
    }
    let mut other = ev("a", 3);
    other.event_type = "Forged".into();
    poke(
        &path,
        layout::TREE_EVENTS,
        &layout::event_key(b"a", 3),
        &layout::encode_event_record(3, &other.to_json()),
    );
    assert!(matches!(
        SledStore::open_with(&path, opts(Durability::Durable)),
        Err(Error::DataLoss(_))
    ));
}

#[test]
fn an_unfinished_sled_snapshot_left_by_a_crash_does_not_block_open() {
    // sled 0.34 reads the newest `snap.*` file at open, even the `.generating` one it was
    // writing when the process died, and refuses the store as corrupt (spacejam/sled#1527).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = open(&path, Durability::Durable);
        for v in 1..=20 {
            s.save_event(&ev("snap", v)).unwrap();
        }
        s.close().unwrap();
    }
    let sled_dir = path.join("sled");
    // A snapshot cut short: a newer LSN than any complete one, and a few bytes of it.
    std::fs::write(
        sled_dir.join("snap.7FFFFFFFFFFFFFFF.generating"),
        [0xAB; 40],
    )
    .unwrap();
    match sled::Config::new().path(&sled_dir).open() {
        Err(sled::Error::Corruption { .. }) => {}
        other => panic!("sled itself should refuse this store, got {other:?}"),
    }
    let s = open(&path, Durability::Durable);
    assert_eq!(s.get_latest_version("snap").unwrap(), 20);
    assert_eq!(
        s.get_events("snap", 1).unwrap(),
        (1..=20).map(|v| ev("snap", v)).collect::<Vec<_>>()
    );
    assert!(!sled_dir.join("snap.7FFFFFFFFFFFFFFF.generating").exists());
    s.save_event(&ev("snap", 21)).unwrap();
    s.close().unwrap();
    drop(s);

    // A damaged *finished* snapshot is not ours to repair: still refused as corrupt.
    let finished = std::fs::read_dir(&sled_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("snap.") && !n.ends_with(".generating")
        })
        .expect("sled keeps a finished snapshot");
    let mut bytes = std::fs::read(&finished).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&finished, bytes).unwrap();
    match SledStore::open_with(&path, opts(Durability::Durable)) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("a damaged finished snapshot must be refused, got {other:?}"),
    }
}

#[test]
fn a_batch_cut_short_by_a_crash_is_rolled_back_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = open(&path, Durability::Buffered);
        s.save_events(&[ev("a", 1), ev("a", 2)]).unwrap();
    }
    // What a crash mid-batch leaves: all index entries of a 3-event batch (sequences 3..=5)
    // and the first two records, but not the last.
    {
        let db = sled::open(path.join("sled")).unwrap();
        let seq = db.open_tree(layout::TREE_SEQUENCE).unwrap();
        let events = db.open_tree(layout::TREE_EVENTS).unwrap();
        for (i, v) in (3..=5).enumerate() {
            let key = layout::event_key(b"a", v);
            seq.insert(
                layout::sequence_key(3 + i as u64),
                layout::encode_sequence_entry(3, 5, &key),
            )
            .unwrap();
        }
        for (i, v) in (3..=4).enumerate() {
            events
                .insert(
                    layout::event_key(b"a", v),
                    layout::encode_event_record(3 + i as u64, &ev("a", v as i64).to_json()),
                )
                .unwrap();
        }
        db.flush().unwrap();
    }
    let s = open(&path, Durability::Buffered);
    assert_eq!(s.last_sequence().unwrap(), 2);
    assert_eq!(s.get_latest_version("a").unwrap(), 2);
    assert_eq!(s.get_events("a", 0).unwrap().len(), 2);
    assert_eq!(s.save_event(&ev("a", 3)).unwrap(), 3);
}

#[test]
fn the_store_records_the_durability_mode_it_was_written_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path, Durability::Buffered));
    let db = sled::open(path.join("sled")).unwrap();
    let meta = db.open_tree(layout::TREE_META).unwrap();
    assert_eq!(
        meta.get(layout::META_DURABILITY).unwrap().unwrap(),
        b"buffered"
    );
}

#[test]
fn durable_saves_in_flight_share_syncs_and_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(open(&dir.path().join("store"), Durability::Durable));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for v in 1..=50 {
                    s.save_event(&ev(&format!("w{t}"), v)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.last_sequence().unwrap(), 400);
    assert_eq!(s.metrics().event_stored_published, 400);
}

#[test]
fn the_log_is_recycled_past_its_capacity_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut o = opts(Durability::Durable);
    o.wal_capacity = 64 * 1024; // a few hundred events per generation
    {
        let s = SledStore::open_with(&path, o.clone()).unwrap();
        for v in 1..=1500 {
            s.save_event(&ev("a", v)).unwrap();
        }
        s.close().unwrap();
    }
    // The log never grows past its capacity (plus one group), however much was written.
    assert!(std::fs::metadata(path.join("aether.wal")).unwrap().len() <= 64 * 1024 + 8192);
    let s = SledStore::open_with(&path, o).unwrap();
    let events = s.get_events("a", 0).unwrap();
    assert_eq!(events.len(), 1500);
    assert!(events.iter().zip(1..).all(|(e, v)| *e == ev("a", v)));
}

/// Child side of the next test: open the store named by the environment and report.
/// Ignored, so it never counts as a test of its own; the parent runs it with `--ignored`.
#[test]
#[ignore = "helper: the child process of a_dropped_store_is_free_for_another_process_at_once"]
fn child_opens_store() {
    let path = std::env::var("AETHER_OPEN_CHILD").expect(
        "child_opens_store runs only as a child of its parent test (AETHER_OPEN_CHILD unset)",
    );
    let mut o = opts(Durability::Durable);
    o.lock_timeout = Duration::from_millis(500);
    match SledStore::open_with(&path, o) {
        Ok(s) => println!("\nOPENED {}", s.get_latest_version("a").unwrap()),
        Err(e) => println!("\nFAILED {e}"),
    }
}

#[test]
fn a_dropped_store_is_free_for_another_process_at_once() {
    for durability in [Durability::Buffered, Durability::Durable] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let s = std::sync::Arc::new(open(&path, durability));
        // Work from several threads, as applications do: sled defers freeing its files
        // through every thread that touched it.
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for v in 1..=100 {
                        s.save_event(&ev(&format!("w{t}"), v)).unwrap();
                        s.get_events(&format!("w{t}"), v).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        for v in 1..=7 {
            s.save_event(&ev("a", v)).unwrap();
        }
        drop(s);
        // This process stays alive and idle; the child must get the lock anyway.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_opens_store",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AETHER_OPEN_CHILD", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("OPENED 7"),
            "{durability:?}: child could not open the store: {stdout}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What a crash leaves: the files of a durable store taken while it is still open. Actor
/// "a" versions 1..=`closed` were saved before a close and reopen (so both header slots of
/// the log hold a checkpoint), the versions up to `total` after it: only in the log.
fn crashed_image(root: &Path, closed: i64, total: i64) -> std::path::PathBuf {
    let live = root.join("live");
    let image = root.join("image");
    {
        let s = open(&live, Durability::Durable);
        for v in 1..=closed {
            s.save_event(&ev("a", v)).unwrap();
        }
        s.close().unwrap();
    }
    let s = open(&live, Durability::Durable);
    for v in closed + 1..=total {
        s.save_event(&ev("a", v)).unwrap();
    }
    copy_dir(&live, &image);
    drop(s);
    image
}

/// The log's frames (offsets) of the generation of the first one, as the format lays them.
fn log_frames(wal: &[u8]) -> Vec<(usize, usize)> {
    let u32_at = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().unwrap()) as usize;
    let mut frames = Vec::new();
    let mut at = 4096;
    let generation = &wal[at + 8..at + 16];
    while u32_at(at) != 0 && &wal[at + 8..at + 16] == generation {
        frames.push((at, at + 16 + u32_at(at)));
        at = (at + 16 + u32_at(at) + 7) & !7;
    }
    frames
}

#[test]
fn a_damaged_newer_log_checkpoint_loses_no_save() {
    let dir = tempfile::tempdir().unwrap();
    let image = crashed_image(dir.path(), 2, 5);
    let wal = std::fs::read(image.join("aether.wal")).unwrap();
    assert_eq!(log_frames(&wal).len(), 3);
    let generation =
        |slot: usize| u64::from_be_bytes(wal[slot * 512 + 8..slot * 512 + 16].try_into().unwrap());
    let newer = if generation(0) > generation(1) { 0 } else { 1 };
    // A flipped bit in the newer slot, or the slot zeroed: the store used to fall back to
    // the older checkpoint and not read the three saves logged after the newer one.
    for (name, damage) in [
        ("flipped", &|b: &mut Vec<u8>| b[newer * 512 + 17] ^= 0x40),
        ("zeroed", &|b: &mut Vec<u8>| {
            b[newer * 512..newer * 512 + 512].fill(0)
        }),
    ] as [(&str, &dyn Fn(&mut Vec<u8>)); 2]
    {
        let path = dir.path().join(name);
        copy_dir(&image, &path);
        let mut bytes = wal.clone();
        damage(&mut bytes);
        std::fs::write(path.join("aether.wal"), bytes).unwrap();
        let report =
            aether_core::verify::verify(&path, &aether_core::verify::VerifyOptions::default())
                .unwrap();
        let kinds: Vec<_> = report.problem_findings().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [aether_core::verify::FindingKind::DamagedLogHeader],
            "{name}: {report:?}"
        );
        std::thread::sleep(Duration::from_millis(50)); // sled frees its lock lazily
        {
            let s = open(&path, Durability::Durable);
            assert_eq!(s.last_sequence().unwrap(), 5, "{name}");
            let expected: Vec<_> = (1..=5).map(|v| ev("a", v)).collect();
            assert_eq!(s.get_events("a", 0).unwrap(), expected, "{name}");
            s.save_event(&ev("a", 6)).unwrap();
        }
        let s = open(&path, Durability::Durable);
        assert_eq!(s.get_events("a", 0).unwrap().len(), 6, "{name}");
    }
}

#[test]
fn a_flipped_bit_in_the_last_logged_save_refuses_the_store_but_a_cut_short_write_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let image = crashed_image(dir.path(), 2, 5);
    let wal = std::fs::read(image.join("aether.wal")).unwrap();
    let frames = log_frames(&wal);
    let (last, end) = frames[2];
    let with_log = |name: &str, damage: &dyn Fn(&mut Vec<u8>)| {
        let path = dir.path().join(name);
        copy_dir(&image, &path);
        let mut bytes = wal.clone();
        damage(&mut bytes);
        std::fs::write(path.join("aether.wal"), bytes).unwrap();
        SledStore::open_with(&path, opts(Durability::Durable))
    };
    // A bit of the payload in the sector that holds the frame's checksum (a write cut short
    // leaves that sector as written, or with bytes that cannot match the checksum).
    let bit = if (last + 23) / 512 == (last + 4) / 512 {
        last + 23
    } else {
        last + 5
    };
    match with_log("flipped", &|b| b[bit] ^= 0x02) {
        Err(Error::DataLoss(msg)) => assert!(
            msg.contains(&format!(
                "the last frame (offset {last}, sequence 5) differs from an intact frame by one bit at offset {bit}"
            )),
            "{msg}"
        ),
        other => panic!("expected data loss, got {:?}", other.map(|_| ())),
    }
    // The end of that write never reached the disk: never acknowledged, dropped.
    let s = with_log("cut-short", &|b| b[last + 64..end].fill(0)).unwrap();
    assert_eq!(s.last_sequence().unwrap(), 4);
    let expected: Vec<_> = (1..=4).map(|v| ev("a", v)).collect();
    assert_eq!(s.get_events("a", 0).unwrap(), expected);
}
