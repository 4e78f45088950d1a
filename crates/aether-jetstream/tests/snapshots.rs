//! Snapshot history on JetStream across handles with other retention settings: opening a
//! store sets the snapshot stream's per-actor limit to its retention (a stream made with
//! one snapshot per actor, as earlier releases made it, grows to the history), and a
//! same-version replacement keeps the older versions.

mod common;

use aether_core::{ActorSnapshot, Error, SnapshotStore, Timestamp};
use aether_jetstream::JetStreamOptions;
use common::{require_nats, NatsServer};

fn snap(v: i64, tag: &str) -> ActorSnapshot {
    ActorSnapshot {
        actor_id: "a".into(),
        version: v,
        state: Some(
            serde_json::json!({ "tag": tag })
                .as_object()
                .unwrap()
                .clone(),
        ),
        timestamp: Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
    }
}

fn versions_kept(s: &dyn SnapshotStore, upto: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = upto;
    while let Some(found) = s.get_snapshot("a", at).unwrap() {
        out.push(found.version);
        at = found.version - 1;
    }
    out
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn retention_follows_the_opening_store_and_replacements_keep_older_versions() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let with = |n: u32| {
        let mut o = JetStreamOptions::default();
        o.snapshot_retention = n;
        common::open_when_ready(&server.url(), o)
    };
    let one = with(1);
    for v in [1, 2, 3] {
        one.save_snapshot(&snap(v, "first")).unwrap();
    }
    assert_eq!(versions_kept(&one, 100), [3]);
    drop(one);
    let three = with(3);
    for v in [4, 5] {
        three.save_snapshot(&snap(v, "first")).unwrap();
    }
    assert_eq!(versions_kept(&three, 100), [5, 4, 3]);
    // The same version as the newest replaces it; the older ones stay.
    three.save_snapshot(&snap(5, "second")).unwrap();
    three.save_snapshot(&snap(5, "third")).unwrap();
    assert_eq!(versions_kept(&three, 100), [5, 4, 3]);
    let newest = three.get_snapshot("a", 5).unwrap().unwrap();
    assert_eq!(newest.state.unwrap()["tag"], "third");
    assert!(matches!(
        three.save_snapshot(&snap(4, "late")),
        Err(Error::StaleSnapshot {
            current_version: 5,
            ..
        })
    ));
    three.save_snapshot(&snap(6, "first")).unwrap();
    assert_eq!(versions_kept(&three, 100), [6, 5, 4]);
    let mut bad = JetStreamOptions::default();
    bad.snapshot_retention = 0;
    assert!(matches!(
        aether_jetstream::JetStreamStore::connect(&server.url(), bad),
        Err(Error::InvalidInput {
            field: "snapshot_retention",
            ..
        })
    ));
}
