//! A read-only look at a store's write-ahead log (`aether.wal`), for `stats`, `inspect` and
//! `verify`: the reader lives in [`aether_core::verify`], next to the checks that use it.

pub use aether_core::verify::{read_wal as read, WalState};
