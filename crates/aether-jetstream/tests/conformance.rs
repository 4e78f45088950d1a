//! The conformance suite of aether-core (the same file, the same rules) against the
//! JetStream backend: each test gets its own single `nats-server` on a free port and a
//! temporary store folder, killed when the test ends.

include!("../../aether-core/tests/conformance/suite.rs");

mod common;

use aether_jetstream::{JetStreamOptions, JetStreamStore};

/// A backend under test: the store, then the server it talks to (dropped in this order).
struct Backend {
    store: Arc<dyn SnapshotStore>,
    _server: common::NatsServer,
    _dir: tempfile::TempDir,
}

fn jetstream(cap: usize, bus: Option<Arc<EventBus>>, metrics: Option<Arc<Metrics>>) -> Backend {
    common::require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = common::NatsServer::single(dir.path());
    let mut opts = JetStreamOptions::default();
    opts.event_stored_capacity = cap;
    let mut s: JetStreamStore = common::open_when_ready(&server.url(), opts);
    if let Some(b) = bus {
        s = s.with_event_bus(b);
    }
    if let Some(m) = metrics {
        s = s.with_metrics(m);
    }
    Backend {
        store: Arc::new(s),
        _server: server,
        _dir: dir,
    }
}

// Built ignored when `AETHER_SKIP_JETSTREAM=1` asked for the skip and no server was on
// PATH (see `build.rs`); otherwise a missing server fails every rule, saying so.
conformance!(
    #[cfg_attr(
        aether_skip_jetstream,
        ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
    )]
    jetstream
);

/// Appends beyond the seed, snapshot history, bounded and filtered reads: the rules
/// aether-core runs on memory and sled.
mod appends {
    use super::*;
    include!("../../aether-core/tests/conformance/appends.rs");
    appends_conformance!(
        #[cfg_attr(
            aether_skip_jetstream,
            ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
        )]
        jetstream
    );
}
