//! Behaviour only the persistent backend has: persistence across reopen, locking, the
//! segment log and its recovery, damage detection, the index rebuilt from the log.

use std::path::Path;
use std::time::{Duration, Instant};

use aether_core::sled_store::{index, segment};
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
    o.segment_size = 64 * 1024; // several segments in most tests
    o.checkpoint_interval = Duration::ZERO; // the high-water mark moves only at open and close
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

#[test]
fn the_store_records_the_durability_mode_it_was_written_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&path, Durability::Buffered));
    let db = sled::open(path.join("sled")).unwrap();
    let meta = db.open_tree(index::TREE_META).unwrap();
    assert_eq!(
        meta.get(index::META_DURABILITY).unwrap().unwrap(),
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
    let m = s.metrics();
    assert_eq!(m.event_stored_published, 400);
    // Every save was made durable by some sync, and no sync went without a save.
    assert_eq!(m.synced_commits, 400);
    assert!(m.syncs >= 1 && m.syncs <= 400, "{m:?}");
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

fn segments(path: &Path) -> Vec<segment::SegmentFile> {
    segment::list(&path.join(segment::LOG_DIR)).unwrap()
}

/// A store image as a crash leaves it: the files of a live durable store, copied while it
/// is open. Actor "a" versions 1..=`closed` were saved before a close (the index's
/// high-water mark covers them); versions up to `total` after it are only in the log.
fn crashed_image(root: &Path, closed: i64, total: i64) -> std::path::PathBuf {
    let live = root.join("live");
    {
        let s = open(&live, Durability::Durable);
        for v in 1..=closed {
            s.save_event(&ev("a", v)).unwrap();
        }
    }
    let s = open(&live, Durability::Durable);
    for v in closed + 1..=total {
        s.save_event(&ev("a", v)).unwrap();
    }
    let image = root.join("image");
    copy_dir(&live, &image);
    drop(s);
    image
}

#[test]
fn segments_roll_and_every_read_spans_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = open(&path, Durability::Buffered);
    for v in 1..=400 {
        s.save_event(&ev("a", v)).unwrap();
        if v % 4 == 0 {
            s.save_events(&[ev("b", v - 3), ev("b", v - 2), ev("b", v - 1)])
                .unwrap();
        }
    }
    let segs = segments(&path);
    assert!(segs.len() >= 3, "expected several segments, got {segs:?}");
    // Sealed segments are cut to their last frame; names follow the sequence.
    for pair in segs.windows(2) {
        assert!(pair[0].len <= 64 * 1024 + 4096 && pair[0].id.base < pair[1].id.base);
    }
    assert_eq!(segs[0].id.base, 1);
    let all = s.read_all(1, usize::MAX).unwrap();
    assert_eq!(all.len(), 700);
    assert!(all.iter().zip(1..).all(|(e, seq)| e.sequence == seq));
    // read_all from every position, including segment boundaries.
    for seg in &segs {
        for from in [
            seg.id.base.saturating_sub(1).max(1),
            seg.id.base,
            seg.id.base + 1,
        ] {
            let page = s.read_all(from, 5).unwrap();
            assert_eq!(page[0].sequence, from);
            assert_eq!(page[0].event, all[from as usize - 1].event);
        }
    }
    let (json, last) = s.read_all_json(650, 10).unwrap();
    assert_eq!(last, 659);
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(parsed.len(), 10);
    assert_eq!(s.get_events("a", 250).unwrap().len(), 151);
    assert_eq!(s.get_events("b", 0).unwrap().len(), 300);
    assert_eq!(s.get_latest_version("b").unwrap(), 399);
    s.close().unwrap();
    drop(s);
    let s = open(&path, Durability::Durable);
    assert_eq!(s.read_all(1, usize::MAX).unwrap(), all);
    assert!(s.open_report().lines().is_empty(), "{:?}", s.open_report());
}

/// Dropping an unclosed store skips the closing checkpoint, and loses nothing: the next
/// open indexes the log's tail.
#[test]
fn a_store_dropped_without_close_loses_nothing_and_is_recovered_at_open() {
    for durability in [Durability::Durable, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let s = open(&path, durability);
            for v in 1..=50 {
                s.save_event(&ev("a", v)).unwrap();
            }
        }
        let s = open(&path, durability);
        // The tail past the high-water mark (every record: the test's options never
        // checkpoint in the background) is read from the log again.
        assert_eq!(s.open_report().records_indexed, 50);
        assert_eq!(s.get_latest_version("a").unwrap(), 50);
        assert_eq!(s.get_events("a", 0).unwrap().len(), 50);
        s.close().unwrap();
        drop(s);
        let s = open(&path, durability);
        assert_eq!(
            s.open_report().records_indexed,
            0,
            "a close leaves nothing to recover"
        );
    }
}

#[test]
fn damage_before_the_high_water_mark_is_reported_when_read_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = open(&path, Durability::Durable);
        for v in 1..=5 {
            s.save_event(&ev("a", v)).unwrap();
        }
        // Closed, so the high-water mark covers every record (a drop would leave the tail
        // to the next open's recovery).
        s.close().unwrap();
    }
    // Flip a byte inside the JSON of version 3.
    let seg = &segments(&path)[0];
    let mut bytes = std::fs::read(&seg.path).unwrap();
    let needle = br#""n":3"#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 4] ^= 0x01;
    std::fs::write(&seg.path, &bytes).unwrap();
    let s = open(&path, Durability::Durable);
    match s.get_events("a", 0) {
        Err(Error::Corrupt { sequence: 3, .. }) => {}
        other => panic!("expected Corrupt at sequence 3, got {other:?}"),
    }
    let r = s.get_events_with_errors("a", 0).unwrap();
    assert_eq!(
        r.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 4, 5]
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].sequence, 3);
    assert!(!r.errors[0].raw.is_empty());
    assert!(matches!(s.read_all(1, 10), Err(Error::Corrupt { .. })));
    assert_eq!(s.metrics().replay_errors, 1);
}

#[test]
fn a_torn_tail_is_cut_but_a_damaged_acknowledged_record_refuses_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let image = crashed_image(dir.path(), 3, 7);
    {
        // The last save spans several sectors, so a crash can cut it short.
        let s = open(&image, Durability::Durable);
        s.save_event(&ev("a", 8).with_data("big", "y".repeat(3000)))
            .unwrap();
        let copy = dir.path().join("image8");
        copy_dir(&image, &copy);
        drop(s);
        std::fs::remove_dir_all(&image).unwrap();
        std::fs::rename(&copy, &image).unwrap();
    }
    let seg = segments(&image).pop().unwrap();
    let bytes = std::fs::read(&seg.path).unwrap();
    let data_end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    // The last frame starts after the second-to-last one; find it by scanning.
    let scan = segment::scan(&bytes, seg.id, segment::SEGMENT_HEADER_LEN as usize);
    let last = *scan.frames.last().unwrap();
    assert_eq!(last.sequences, (8, 8));

    // A write cut short: the last frame's tail never reached the disk (zeros).
    let torn = dir.path().join("torn");
    copy_dir(&image, &torn);
    let mut t = bytes.clone();
    // Whole sectors past the frame's first one never reached the disk.
    let cut = (last.at / 512 + 1) * 512;
    assert!(cut < data_end);
    t[cut..data_end].fill(0);
    std::fs::write(torn.join("log").join(seg.id.file_name()), &t).unwrap();
    let s = open(&torn, Durability::Durable);
    assert_eq!(s.get_latest_version("a").unwrap(), 7);
    let cut_bytes = s.open_report().torn_bytes_cut as usize;
    assert!(cut_bytes > 0 && cut_bytes <= cut - last.at, "{cut_bytes}");
    s.save_event(&ev("a", 8)).unwrap();
    drop(s);
    assert_eq!(
        open(&torn, Durability::Durable)
            .get_events("a", 0)
            .unwrap()
            .len(),
        8
    );

    // Damage to a record written in full (one bit, in a sector the write reached): refused.
    let flipped = dir.path().join("flipped");
    copy_dir(&image, &flipped);
    let mut f = bytes.clone();
    f[last.at + 40] ^= 0x10;
    std::fs::write(flipped.join("log").join(seg.id.file_name()), &f).unwrap();
    match SledStore::open_with(&flipped, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => assert!(msg.contains("one bit"), "{msg}"),
        other => panic!("expected DataLoss, got {other:?}"),
    }
}

#[test]
fn a_missing_or_shortened_segment_is_data_loss_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = open(&path, Durability::Buffered);
        for v in 1..=600 {
            s.save_event(&ev("a", v)).unwrap();
        }
    }
    let segs = segments(&path);
    assert!(segs.len() >= 3);
    let missing = dir.path().join("missing");
    copy_dir(&path, &missing);
    std::fs::remove_file(missing.join("log").join(segs[1].id.file_name())).unwrap();
    match SledStore::open_with(&missing, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => assert!(msg.contains("missing"), "{msg}"),
        other => panic!("expected DataLoss, got {other:?}"),
    }
    // The newest segment: the one before it was sealed only once it existed.
    let newest = dir.path().join("newest");
    copy_dir(&path, &newest);
    let last = segs.last().unwrap();
    std::fs::remove_file(newest.join("log").join(last.id.file_name())).unwrap();
    match SledStore::open_with(&newest, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => assert!(
            msg.contains("is sealed") || msg.contains(&last.id.file_name()),
            "{msg}"
        ),
        other => panic!("expected DataLoss, got {other:?}"),
    }
    // The newest segment cut right after a record, off a page boundary.
    let cut = dir.path().join("cut");
    copy_dir(&path, &cut);
    let bytes = std::fs::read(&last.path).unwrap();
    let scan = segment::scan(&bytes, last.id, segment::SEGMENT_HEADER_LEN as usize);
    let end = scan.frames[scan.frames.len() / 2].next;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(cut.join("log").join(last.id.file_name()))
        .unwrap();
    f.set_len(end as u64).unwrap();
    match SledStore::open_with(&cut, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => assert!(msg.contains(&last.id.file_name()), "{msg}"),
        other => panic!("expected DataLoss, got {other:?}"),
    }
    let short = dir.path().join("short");
    copy_dir(&path, &short);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(short.join("log").join(segs[0].id.file_name()))
        .unwrap();
    f.set_len(segs[0].len - 100).unwrap();
    match SledStore::open_with(&short, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => {
            assert!(msg.contains(&segs[0].id.file_name()), "{msg}")
        }
        other => panic!("expected DataLoss, got {other:?}"),
    }
}

#[test]
fn a_missing_or_damaged_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let snapshot = aether_core::ActorSnapshot {
        actor_id: "a".into(),
        version: 100,
        state: Some(json!({"k": 1}).as_object().unwrap().clone()),
        timestamp: Timestamp::ZERO,
    };
    let all = {
        let s = open(&path, Durability::Durable);
        for v in 1..=300 {
            s.save_event(&ev("a", v)).unwrap();
            s.save_event(&ev(&format!("x{}", v % 7), v)).unwrap();
        }
        s.save_snapshot(&snapshot).unwrap();
        s.read_all(1, usize::MAX).unwrap()
    };
    // Deleted: rebuilt at open.
    std::fs::remove_dir_all(path.join("sled")).unwrap();
    {
        let s = open(&path, Durability::Durable);
        assert!(s.open_report().rebuilt.is_some());
        assert_eq!(s.read_all(1, usize::MAX).unwrap(), all);
        assert_eq!(s.get_events("x3", 0).unwrap().len(), 43);
        assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snapshot.clone()));
        s.save_event(&ev("a", 301)).unwrap();
    }
    // Rebuilt on request.
    let report = aether_core::sled_store::reindex(&path, opts(Durability::Durable)).unwrap();
    assert_eq!(report.records_indexed, 602);
    let s = open(&path, Durability::Durable);
    assert_eq!(s.get_latest_version("a").unwrap(), 301);
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snapshot));
}

#[test]
fn a_format1_store_is_refused_naming_the_migration_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old");
    std::fs::create_dir_all(path.join("sled")).unwrap();
    std::fs::write(path.join("aether.wal"), [0u8; 4096]).unwrap();
    match SledStore::open_with(&path, opts(Durability::Durable)) {
        Err(Error::InvalidInput { reason, .. }) => {
            assert!(reason.contains("aether migrate"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Nothing was written into it.
    assert!(!path.join("FORMAT").exists() && !path.join("log").exists());
}

#[test]
fn a_save_that_returned_ok_is_never_lost_to_a_concurrent_close() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let s = std::sync::Arc::new(open(&path, Durability::Buffered));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    for v in 1.. {
                        match s.save_event(&ev(&format!("w{t}"), v)) {
                            Ok(_) => acked.push(v),
                            Err(Error::Closed(_)) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2 + round));
        s.close().unwrap();
        let acked: Vec<Vec<i64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        drop(s);
        let s = open(&path, Durability::Buffered);
        for (t, versions) in acked.iter().enumerate() {
            assert_eq!(
                s.get_latest_version(&format!("w{t}")).unwrap(),
                versions.len() as i64,
                "round {round}: writer {t} had {} saves acknowledged",
                versions.len()
            );
        }
        // A clean close leaves nothing to recover.
        assert!(s.open_report().lines().is_empty(), "{:?}", s.open_report());
    }
}

#[test]
fn a_conflict_never_names_a_version_readers_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(open(&dir.path().join("store"), Durability::Durable));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for _ in 0..200 {
                    let next = s.get_latest_version("hot").unwrap() + 1;
                    match s.save_event(&ev("hot", next)) {
                        Ok(_) => {}
                        Err(Error::VersionConflict {
                            current_version, ..
                        }) => {
                            conflicts += 1;
                            let seen = s.get_latest_version("hot").unwrap();
                            assert!(
                                seen >= current_version,
                                "a conflict named version {current_version}, readers see {seen}"
                            );
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(conflicts > 0, "the writers never raced");
}

#[test]
fn a_zeroed_frame_header_with_intact_frames_after_it_refuses_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let image = crashed_image(dir.path(), 2, 6);
    let seg = segments(&image).pop().unwrap();
    let mut bytes = std::fs::read(&seg.path).unwrap();
    let scan = segment::scan(&bytes, seg.id, segment::SEGMENT_HEADER_LEN as usize);
    let victim = scan.frames[scan.frames.len() - 3];
    bytes[victim.at..victim.at + 16].fill(0);
    std::fs::write(&seg.path, &bytes).unwrap();
    match SledStore::open_with(&image, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => assert!(msg.contains("intact frame follows"), "{msg}"),
        other => panic!("expected DataLoss, got {other:?}"),
    }
}

#[test]
fn garbage_over_the_last_frame_written_in_full_refuses_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let image = crashed_image(dir.path(), 2, 6);
    let seg = segments(&image).pop().unwrap();
    let mut bytes = std::fs::read(&seg.path).unwrap();
    let scan = segment::scan(&bytes, seg.id, segment::SEGMENT_HEADER_LEN as usize);
    let last = *scan.frames.last().unwrap();
    // Garbage from the middle of the last frame to its end: every sector it spans still
    // holds written bytes, so no crash cut it short.
    let end = last.at + 16 + last.payload_len;
    for (i, b) in bytes[last.at + 100..end].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31) | 1;
    }
    std::fs::write(&seg.path, &bytes).unwrap();
    match SledStore::open_with(&image, opts(Durability::Durable)) {
        Err(Error::DataLoss(msg)) => assert!(msg.contains("written in full"), "{msg}"),
        other => panic!("expected DataLoss, got {other:?}"),
    }
}

#[test]
fn snapshots_at_any_version_read_back_latest_first_including_negative_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let snap = |version: i64| aether_core::ActorSnapshot {
        actor_id: "a".into(),
        version,
        state: None,
        timestamp: Timestamp::ZERO,
    };
    let s = open(&path, Durability::Durable);
    s.save_snapshot(&snap(-5)).unwrap();
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snap(-5)));
    s.save_snapshot(&snap(-1)).unwrap();
    assert!(matches!(
        s.save_snapshot(&snap(-3)),
        Err(Error::StaleSnapshot {
            current_version: -1,
            ..
        })
    ));
    s.save_snapshot(&snap(i64::MAX)).unwrap();
    drop(s);
    let s = open(&path, Durability::Durable);
    assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snap(i64::MAX)));
}

/// Retries are recognised from what the log holds, so across a reopen too; commits across
/// actors, snapshot history and its retention come back from the log when the index is
/// rebuilt.
#[test]
fn appends_retries_and_snapshot_history_survive_reopen_and_reindex() {
    use aether_core::{ActorSnapshot, AppendStatus, CommitEntry, EventRange, ExpectedState};
    for durability in [Durability::Durable, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut o = opts(durability);
        o.snapshot_retention = 2;
        let snap = |v: i64| ActorSnapshot {
            actor_id: "a".into(),
            version: v,
            state: Some(json!({"v": v}).as_object().unwrap().clone()),
            timestamp: Timestamp::ZERO,
        };
        let xs: Vec<Event> = (1..=3).map(|v| ev("x", v)).collect();
        let ys = [ev("y", 1)];
        let entries = [
            CommitEntry::new("x", ExpectedState::NoStream, &xs),
            CommitEntry::new("y", ExpectedState::NoStream, &ys),
        ];
        let first = {
            let s = SledStore::open_with(&path, o.clone()).unwrap();
            for v in 1..=200 {
                s.save_event(&ev("a", v)).unwrap();
            }
            for v in [50, 100, 150] {
                s.save_snapshot(&snap(v)).unwrap();
            }
            let c = s.commit(&entries).unwrap();
            s.close().unwrap();
            c
        };
        for round in 0..2 {
            if round == 1 {
                aether_core::sled_store::reindex(&path, o.clone()).unwrap();
            }
            let s = SledStore::open_with(&path, o.clone()).unwrap();
            let again = s.commit(&entries).unwrap();
            assert_eq!(again.status, AppendStatus::AlreadyAppended, "round {round}");
            assert_eq!(
                (again.first_sequence, again.last_sequence),
                (first.first_sequence, first.last_sequence)
            );
            assert_eq!(s.get_events("x", 0).unwrap(), xs);
            assert_eq!(
                s.get_events_range("x", &EventRange::last(1)).unwrap(),
                vec![ev("x", 3)]
            );
            assert_eq!(s.get_snapshot("a", 149).unwrap(), Some(snap(100)));
            assert_eq!(s.get_snapshot("a", 99).unwrap(), None, "retention is 2");
            assert_eq!(s.get_latest_snapshot("a").unwrap(), Some(snap(150)));
            s.close().unwrap();
        }
    }
}

/// A record larger than a segment, first in an empty segment or after others, gets a
/// segment large enough for it, and everything reads back after reopen, reindex and verify.
#[test]
fn records_larger_than_a_segment_get_a_segment_of_their_own() {
    for durability in [Durability::Durable, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let big = |actor: &str, v: i64| {
            let mut e = ev(actor, v);
            e.data_mut()
                .insert("blob".into(), "b".repeat(200 * 1024).into());
            e
        };
        let mut o = opts(durability);
        o.segment_size = 64 * 1024;
        {
            let s = SledStore::open_with(&path, o.clone()).unwrap();
            s.save_event(&big("a", 1)).unwrap(); // first record of an empty segment
            s.save_event(&ev("a", 2)).unwrap();
            s.save_event(&big("a", 3)).unwrap(); // after a small one
            s.save_events(&[big("b", 1), big("b", 2)]).unwrap();
            assert_eq!(s.get_events("a", 0).unwrap()[0], big("a", 1));
            assert_eq!(s.read_all(1, 10).unwrap().len(), 5);
        }
        for round in 0..2 {
            if round == 1 {
                aether_core::sled_store::reindex(&path, o.clone()).unwrap();
            }
            let s = SledStore::open_with(&path, o.clone()).unwrap();
            assert_eq!(
                s.get_events("a", 0).unwrap(),
                vec![big("a", 1), ev("a", 2), big("a", 3)]
            );
            assert_eq!(
                s.get_events("b", 0).unwrap(),
                vec![big("b", 1), big("b", 2)]
            );
            assert_eq!(s.read_all(1, 10).unwrap().len(), 5);
            s.close().unwrap();
        }
        let report =
            aether_core::verify::verify(&path, &aether_core::verify::VerifyOptions::default())
                .unwrap();
        assert!(report.is_sound(), "{:#?}", report.findings);
    }
}
