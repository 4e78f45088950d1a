//! # aether-core
//!
//! An embedded event-sourcing store: the event store of the Go library *aether*,
//! re-implemented in Rust.
//!
//! - [`Event`] and friends mirror the Go types; their JSON is byte-for-byte what Go's
//!   `encoding/json` writes.
//! - [`EventStore`] / [`SnapshotStore`]: optimistic concurrency per actor (a save succeeds
//!   only if its version is strictly greater than the actor's latest), a gapless
//!   store-wide sequence, atomic batches, replay that reports malformed records.
//! - Backends: [`MemoryStore`] and [`SledStore`] (persistent, with honest durability modes).
//! - After every successful save an [`EventStored`] goes to the store's channel (drained
//!   with [`EventStore::poll_event_stored`]) and to an optional [`EventBus`]'s
//!   `__internal__` namespace; [`Metrics`] count what happened.
//!
//! ```
//! use aether_core::{Event, EventStore, MemoryStore, Error};
//!
//! let store = MemoryStore::new();
//! store.save_event(&Event::new("e1", "OrderPlaced", "order-1", 1).with_data("total", 42))?;
//! match store.save_event(&Event::new("e2", "OrderPlaced", "order-1", 1)) {
//!     Err(Error::VersionConflict { current_version, .. }) => assert_eq!(current_version, 1),
//!     other => panic!("expected a conflict, got {other:?}"),
//! }
//! assert_eq!(store.get_events("order-1", 1)?.len(), 1);
//! assert_eq!(store.get_latest_version("nobody")?, 0);
//! # Ok::<(), Error>(())
//! ```

pub mod append;
pub mod error;
pub mod event;
pub mod json;
pub mod memory;
pub mod notify;
mod options_check;
pub mod sled_store;
pub mod store;
pub mod timestamp;
pub mod verify;

pub use append::{
    ActorConflict, AppendStatus, CommitEntry, Committed, CommittedActor, Direction, EventFilter,
    EventRange, ExpectedState,
};
pub use error::{Error, Outcome, Result};
pub use event::{
    ActorSnapshot, Event, EventStored, ReplayError, ReplayResult, SequencedEvent,
    METADATA_KEY_CAUSATION_ID, METADATA_KEY_CORRELATION_ID, METADATA_KEY_SPAN_ID,
    METADATA_KEY_TRACE_ID, METADATA_KEY_USER_ID,
};
pub use memory::MemoryStore;
pub use notify::{BusMessage, EventBus, Metrics, MetricsSnapshot, INTERNAL_NAMESPACE};
pub use sled_store::{Durability, OpenReport, Options, SledStore};
pub use store::{EventStore, Limits, SnapshotStore, DEFAULT_SNAPSHOT_RETENTION};
pub use timestamp::Timestamp;

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod assertions {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn stores_are_thread_safe_and_object_safe() {
        assert_send_sync::<super::SledStore>();
        assert_send_sync::<super::MemoryStore>();
        let _: Option<std::sync::Arc<dyn super::SnapshotStore>> = None;
    }
}
