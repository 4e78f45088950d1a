//! A short tour of the store on an embedded sled store in a temporary folder:
//! saves, a rejected version conflict, replay, a snapshot, and the EventStored
//! notifications that followed each successful save.
//!
//! Run it with `make run` (or `cargo run -p aether-core --example tour`).

use std::sync::Arc;
use std::time::Duration;

use aether_core::{
    ActorSnapshot, BusMessage, Error, Event, EventBus, EventStore, Options, SledStore,
    SnapshotStore, Timestamp, INTERNAL_NAMESPACE,
};
use serde_json::json;

fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Storage {
        context: "creating a temporary folder".into(),
        source: e,
        outcome: aether_core::Outcome::NotApplied,
    })?;
    let path = dir.path().join("store");
    let bus = Arc::new(EventBus::new());
    let internal = bus.subscribe(INTERNAL_NAMESPACE);
    let store = SledStore::open_with(&path, Options::default())?.with_event_bus(bus);
    println!(
        "opened a sled store at {} ({} mode)",
        path.display(),
        store.durability().as_str()
    );

    // Three actors, interleaved appends.
    for version in 1..=3 {
        for actor in ["order-1", "order-2", "cart-7"] {
            let mut event = Event::new(format!("{actor}-v{version}"), "ItemAdded", actor, version)
                .with_data("sku", format!("SKU-{version}"))
                .with_data("quantity", version);
            event.set_correlation_id("tour");
            let sequence = store.save_event(&event)?;
            println!("saved {actor} v{version} at sequence {sequence}");
        }
    }

    // Optimistic concurrency: version 2 of order-1 exists, so this save is rejected.
    let stale = Event::new("late-writer", "ItemRemoved", "order-1", 2);
    match store.save_event(&stale) {
        Err(Error::VersionConflict { actor_id, attempted_version, current_version }) => println!(
            "rejected: actor {actor_id:?} is at version {current_version}, cannot save version {attempted_version}"
        ),
        other => panic!("expected a version conflict, got {other:?}"),
    }

    // Replay one actor (inclusive from version 2) and the whole store in commit order.
    for event in store.get_events("order-1", 2)? {
        println!(
            "replayed order-1 v{}: {}",
            event.version,
            String::from_utf8_lossy(&event.to_json())
        );
    }
    let head = store.read_all(1, 3)?;
    println!(
        "first sequences: {:?}",
        head.iter()
            .map(|e| (e.sequence, e.event.actor_id.as_str()))
            .collect::<Vec<_>>()
    );

    // Snapshots: the latest per actor.
    let state = json!({"items": 3, "total": 42.5});
    store.save_snapshot(&ActorSnapshot {
        actor_id: "order-1".into(),
        version: 3,
        state: state.as_object().cloned(),
        timestamp: Timestamp::now(),
    })?;
    let snapshot = store.get_latest_snapshot("order-1")?.expect("just saved");
    println!(
        "snapshot of order-1 at v{}: {}",
        snapshot.version,
        String::from_utf8_lossy(&snapshot.to_json())
    );

    // EventStored: one per successful save, none for the conflict, on the store's
    // channel and on the bus's __internal__ namespace.
    let mut polled = 0;
    while let Some(n) = store.poll_event_stored(Duration::ZERO) {
        polled += 1;
        println!(
            "EventStored #{}: {} {} v{} at {}",
            n.sequence, n.event_id, n.actor_id, n.version, n.timestamp
        );
    }
    let on_bus = internal
        .try_iter()
        .filter(|m| matches!(m, BusMessage::EventStored(_)))
        .count();
    let m = store.metrics();
    println!(
        "notifications polled: {polled}, on the bus: {on_bus}; metrics: {} saved, {} conflicts, {} published, {} dropped, {} snapshots",
        m.events_saved, m.version_conflicts, m.event_stored_published, m.event_stored_dropped, m.snapshots_saved
    );

    store.close()?;
    drop(store); // releases the files and the lock
    let reopened = SledStore::open(&path)?;
    println!(
        "reopened: last sequence {}, order-1 at version {}",
        reopened.last_sequence()?,
        reopened.get_latest_version("order-1")?
    );
    Ok(())
}
