//! # aether-jetstream
//!
//! aether's event store on NATS JetStream, as the Go original ran it: the same contract as
//! aether-core's memory and sled backends (the same conformance suite passes), shared by
//! every process that opens the same stream.
//!
//! ```no_run
//! use aether_core::{Error, Event, EventStore};
//! use aether_jetstream::{JetStreamOptions, JetStreamStore};
//!
//! let mut opts = JetStreamOptions::default();
//! opts.replicas = 3; // a 3-node cluster
//! let store = JetStreamStore::connect("nats://n1:4222,nats://n2:4222,nats://n3:4222", opts)?;
//! match store.save_event(&Event::new("e1", "OrderPlaced", "order-1", 1)) {
//!     Ok(sequence) => println!("stored as {sequence}"),
//!     Err(Error::VersionConflict { current_version, .. }) => { /* reload, retry */ }
//!     // Timed out: it may or may not be stored. Retrying the same event (same ID) is
//!     // safe: it is never stored twice.
//!     Err(Error::Timeout { .. }) => {}
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), Error>(())
//! ```
//!
//! ## Layout
//!
//! - **Streams.** Events: `{stream}` (default `AETHER_EVENTS`) on subjects
//!   `{prefix}.events.>`; snapshots: `{stream}_SNAPSHOTS` on `{prefix}.snapshots.>`, one
//!   message kept per subject. File storage, `replicas` as configured (default 1). The
//!   events stream denies delete and purge: an event store keeps what it acknowledged.
//! - **Subjects.** One per actor: `{prefix}.events.a{base64url(actor ID)}`, or
//!   `{prefix}.events.h{hex(SHA-256(actor ID))}` for IDs over 192 bytes (NATS limits a
//!   control line to 4 KiB). IDs may hold any bytes, `.`, `*`, `>` and spaces included.
//! - **Messages.** One per save. A single event is its Go-compatible JSON (what the Go
//!   original stored); a batch is one JSON array of its events, so the server stores it
//!   whole or not at all, even if the client dies mid-call. A batch must therefore fit in
//!   the server's `max_payload` (1 MiB by default); a larger one is `InvalidInput`.
//! - **Headers.** `Nats-Msg-Id` = the (first) event's ID (as is when it is printable ASCII,
//!   else `b64:` + base64url); `Nats-Expected-Last-Sequence` = the stream sequence the save
//!   follows; `Nats-Expected-Last-Subject-Sequence` = the stream sequence of the actor's
//!   last message (0: none); `Aether-Sequence` = the store-wide sequence of the message's
//!   first event; `Aether-Count` = its number of events, on batches only (a message
//!   without it holds one event).
//!
//! ## Concurrency: one atomic step at the server
//!
//! A save checks the version locally against the actor's last message (cached from the
//! stream, or read) and publishes with both expectation headers. The server appends only if
//! the actor's last message is still the one checked *and* nothing else was appended to the
//! stream since; otherwise it answers "wrong last sequence" (err_code 10071). Then the
//! store reads the actor again: a [`aether_core::Error::VersionConflict`] with the current
//! version if another writer took the version, otherwise (the stream moved on elsewhere) it
//! catches up and retries. No write is ever based on a read without that server check, in
//! one process or across many.
//!
//! ## The store-wide sequence
//!
//! Events are numbered 1, 2, 3, … in commit order, gapless, each event of a batch counting
//! (as with the other backends). Each message carries the number of its first event
//! (`Aether-Sequence`), which is exact because the publish states the stream sequence it
//! follows: saves from all processes are serialised at the stream leader. The cost is that
//! writers in different processes contend even on different actors (a lost race costs a
//! retry); within one process saves are queued, one in flight. A message that something else
//! published on an event subject (no aether headers) counts as one record, numbered after the
//! record before it. Without batches the store-wide sequence equals the stream sequence.
//! `read_all(from)` finds the message holding `from` at stream sequence `from` (no batches
//! before it) or by binary search.
//!
//! ## Malformed messages
//!
//! A message that does not decode is reported, never skipped: `get_events` fails with
//! `Error::Corrupt`, `get_events_with_errors` returns a `ReplayError` whose `sequence` is the
//! record's store-wide sequence (= the stream sequence when no batch came before it) and
//! whose `cause` names the stream sequence; `read_all` fails with `Corrupt` at it. The
//! version check reads past it: an actor's version is that of its last message that decodes.
//!
//! ## Failures and outcomes
//!
//! Network failures are never conflicts: they are [`aether_core::Error::Timeout`] or
//! [`aether_core::Error::Unavailable`] with an [`aether_core::Outcome`]. A save that timed
//! out or lost its connection is `Outcome::Unknown`: it may or may not be stored, and a retry
//! with the same event (same ID) is safe: the server's deduplication (`Nats-Msg-Id`, within
//! the stream's `duplicate_window`, default 2 minutes) and the version check together store
//! it at most once. Such a retry answers `Ok` if the first attempt did not land and
//! `VersionConflict` if it did (as every backend answers a second save of a stored version):
//! reload the actor to see the event. `NotApplied` is stated when nothing was written
//! (nobody answered the publish, the server refused it, or a read failed). Opening fails
//! within `connect_timeout` with `Unavailable` when no server answers.
//!
//! ## EventStored across processes
//!
//! At open the store starts an ordered consumer on the events stream from its current end.
//! Every message, whoever stored it, is accounted and turned into `EventStored`
//! notifications (in stream order, with the store-wide sequence; the timestamp is the
//! server's storage time, or for a process's own save its clock at the acknowledgement), delivered through [`aether_core::notify::Notifier`]: `poll_event_stored`,
//! `event_stored_receiver` and an attached `EventBus` see saves of every process. A save
//! returns after its own notifications are out (or after `request_timeout` if the consumer
//! is cut off; they follow when it is recreated).
//!
//! ## Durability: what an acknowledged save survives
//!
//! The store returns `Ok` only after JetStream's publish acknowledgement; nothing is buffered
//! in the client (`flush` has nothing to do). What the acknowledgement means is the
//! server's:
//!
//! | setup | survives | does not survive |
//! |---|---|---|
//! | 1 server, `replicas = 1` (default) | the nats-server process being killed (the data was written to the OS) | power loss or an OS crash of that machine within JetStream's `sync_interval` (default 2 minutes: the file store is fsynced only that often) |
//! | 3-node cluster, `replicas = 3` | the loss of any one node, machine included (the acknowledgement waits for a quorum of 2) | power loss of a quorum within the sync interval |
//!
//! Jepsen's analysis of NATS 2.10 found acknowledged writes lost after power failures with
//! the default sync interval. For machine-crash durability on one server, run nats-server
//! 2.10 or later with `jetstream { sync_interval: always }` (every write fsynced; slower).
//! nats-server 2.9 (Debian bookworm's, which the tests use) has no such setting: its file
//! store syncs every 2 minutes, so the tests' servers survive process kills, which is what
//! they test, and no more.
//!
//! ## Blocking API
//!
//! Each store owns a small tokio runtime and blocks on it; do not call it from inside an
//! async task (use `spawn_blocking`). `JetStreamStore` is `Send + Sync`.

mod options;
pub mod record;
mod store;

pub use options::JetStreamOptions;
pub use store::JetStreamStore;
