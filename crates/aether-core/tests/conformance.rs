//! The one conformance suite: every rule of the store contract, written once (in
//! `conformance/suite.rs`) and run against every backend (memory, sled durable, sled
//! buffered — sled on a real disk; aether-jetstream runs the same file against NATS).

include!("conformance/suite.rs");

use aether_core::{Durability, MemoryStore, Options, SledStore};

/// A backend under test: the store plus whatever keeps its files alive.
struct Backend {
    store: Arc<dyn SnapshotStore>,
    _dir: Option<tempfile::TempDir>,
}

fn memory(cap: usize, bus: Option<Arc<EventBus>>, metrics: Option<Arc<Metrics>>) -> Backend {
    let mut s = MemoryStore::with_capacity(cap).expect("capacity in range");
    if let Some(b) = bus {
        s = s.with_event_bus(b);
    }
    if let Some(m) = metrics {
        s = s.with_metrics(m);
    }
    Backend {
        store: Arc::new(s),
        _dir: None,
    }
}

fn sled_with(
    durability: Durability,
    cap: usize,
    bus: Option<Arc<EventBus>>,
    metrics: Option<Arc<Metrics>>,
) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::with_durability(durability);
    opts.event_stored_capacity = cap;
    opts.segment_size = 1 << 20; // rolls within the suite's larger tests
    let mut s = SledStore::open_with(dir.path().join("store"), opts).unwrap();
    if let Some(b) = bus {
        s = s.with_event_bus(b);
    }
    if let Some(m) = metrics {
        s = s.with_metrics(m);
    }
    Backend {
        store: Arc::new(s),
        _dir: Some(dir),
    }
}

fn sled_durable(cap: usize, bus: Option<Arc<EventBus>>, m: Option<Arc<Metrics>>) -> Backend {
    sled_with(Durability::Durable, cap, bus, m)
}

fn sled_buffered(cap: usize, bus: Option<Arc<EventBus>>, m: Option<Arc<Metrics>>) -> Backend {
    sled_with(Durability::Buffered, cap, bus, m)
}

conformance!(memory, sled_durable, sled_buffered);

/// Appends beyond the seed, snapshot history, bounded and filtered reads.
mod appends {
    use super::*;
    include!("conformance/appends.rs");
    appends_conformance!(memory, sled_durable, sled_buffered);
}
