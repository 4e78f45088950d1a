//! # aether-jetstream
//!
//! aether's event store on NATS JetStream (docs to follow).

mod options;
pub mod record;
mod store;

pub use options::JetStreamOptions;
pub use store::JetStreamStore;
