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
//!   `{prefix}.events.>`; snapshots: `{stream}_SNAPSHOTS` on `{prefix}.snapshots.>`, the
//!   newest `snapshot_retention + 1` messages kept per subject (the history is the newest
//!   `snapshot_retention` versions; the extra one lets a same-version replacement be
//!   published before the replaced message is deleted). File storage, `replicas` as configured (default 1). The
//!   events stream denies delete and purge: an event store keeps what it acknowledged.
//! - **Subjects.** One per actor: `{prefix}.events.a{base64url(actor ID)}`, or
//!   `{prefix}.events.h{hex(SHA-256(actor ID))}` for IDs over 192 bytes (NATS limits a
//!   control line to 4 KiB). IDs may hold any bytes, `.`, `*`, `>` and spaces included.
//! - **Messages.** One per event: its Go-compatible JSON (what the Go original stored).
//!   A batch is a JetStream *atomic batch* (nats-server 2.12+, stream setting
//!   `allow_atomic`): one message per event, stored contiguously and whole or not at all at
//!   the commit, even if the client dies mid-call. Each message must fit the server's
//!   `max_payload` with its headers: a 1 MiB event (the store's limit) needs
//!   `max_payload: 2MB`, and a batch of 10,000 events needs the server's
//!   `jetstream { limits { batch { max_msgs: 10000 } } }` (1,000 by default); the README's
//!   server configuration sets both. A server with less refuses with an `InvalidInput`
//!   naming the setting.
//! - **Headers.** `Nats-Msg-Id` = `e1:` + hex(SHA-256 of the actor ID, version and event
//!   ID): an event is identified by its actor and version, so the server's deduplication
//!   drops exactly a retry, and an ID reused at another version is stored (as on every
//!   backend);
//!   `Nats-Expected-Last-Subject-Sequence` = the stream sequence of the actor's last message
//!   (0: none), on a single event and on each actor's first message of a batch (the server
//!   allows no expectation on a subject its batch already wrote, and the batch is stored
//!   contiguously or not at all, so the first check covers the actor); a commit's
//!   condition-only entries ride on its other messages with
//!   `Nats-Expected-Last-Subject-Sequence-Subject` naming the condition's actor, or, when
//!   too few messages are free, are covered by `Nats-Expected-Last-Sequence` (the stream's
//!   end as read with the actors) on the first message; on batches `Nats-Batch-Id`,
//!   `Nats-Batch-Sequence` and, on the last, `Nats-Batch-Commit: 1`.
//! - **Streams an existing deployment made.** At open an existing stream is checked against
//!   the settings the contract rests on (subjects, `allow_atomic`, `deny_delete`,
//!   `deny_purge`, no `max_age`/`max_msgs`/`max_bytes`/per-subject limit, `limits`
//!   retention, no rollups or message TTLs, no `no_ack`); each one that differs is named in
//!   an `InvalidInput` on `stream`. The server must be 2.12 or later, else
//!   [`aether_core::Error::Unsupported`] names the version needed.
//!
//! ## Concurrency: one atomic step at the server, per actor
//!
//! A save checks the version locally against the actor's last message (cached from the
//! stream, or read) and publishes with `Nats-Expected-Last-Subject-Sequence`. The server
//! appends only if the actor's last message is still the one checked; otherwise it answers
//! "wrong last sequence" (err_code 10071, or 10164 while another save of the same actor is
//! in flight at a clustered leader). Then the store reads the actor again: a
//! [`aether_core::Error::VersionConflict`] with the current version if another writer took
//! the version, otherwise it retries. Saves of different actors never wait for each other,
//! in one process or across many: there is no stream-wide expectation and no client-side
//! queue.
//!
//! ## The store-wide sequence
//!
//! Events are numbered 1, 2, 3, … in commit order, gapless, each event of a batch counting
//! (as with the other backends), with no coordination between clients: each event is one
//! message, and the event's number *is* its stream sequence, which the stream leader
//! assigns in commit order. It stays gapless because the events stream denies delete and
//! purge and has no limits that drop messages, a refused publish or batch takes no number,
//! and an atomic batch's messages get consecutive numbers (the server stores the batch in
//! one step; no other save lands inside it). A message that something else published on an
//! event subject takes a number too (and is reported as malformed if it is not an event).
//! `read_all(from)` starts a consumer at stream sequence `from`.
//!
//! ## Malformed messages
//!
//! A message that does not decode is reported, never skipped: `get_events` fails with
//! `Error::Corrupt`, `get_events_with_errors` returns a `ReplayError` whose `sequence` is the
//! message's (stream and store-wide) sequence; `read_all` fails with `Corrupt` at it. A
//! JSON array (a batch in the one-message layout of earlier aether releases) is malformed.
//! The version check reads past it: an actor's version is that of its last message that
//! decodes.
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
//! reload the actor to see the event. An `append` or `commit` retried answers `Ok` with
//! [`aether_core::AppendStatus::AlreadyAppended`] and the stored sequences when the first
//! attempt landed (explicit versions, or automatic ones under `NoStream` / `Exact`), within
//! the deduplication window or after it. `NotApplied` is stated when nothing was written
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
//! | 1 server, `replicas = 1`, `jetstream { sync_interval: always }` (the README's configuration) | the process being killed, an OS crash or power loss (every write is fsynced before the acknowledgement; tested by SIGKILL during saves) | the loss of the disk |
//! | 1 server with the default `sync_interval` (2 minutes) | the nats-server process being killed | power loss or an OS crash within the sync interval (Jepsen found acknowledged writes lost that way in NATS 2.10) |
//! | 3-node cluster, `replicas = 3` | the loss of any one node, machine included (the acknowledgement waits for a quorum of 2; tested by SIGKILL during saves) | power loss of a quorum within the sync interval |
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
