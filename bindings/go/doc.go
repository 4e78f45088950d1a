// Package aether is an embedded event store for Go: events saved per actor with
// optimistic concurrency, read back in version order or store-wide in commit order,
// snapshots, and notifications of every stored event. It runs in memory, in a directory
// on disk (sled), or on a NATS JetStream server.
//
// It keeps the event store API of the Go library aether: the types, JSON tags, error
// values and interfaces (Event, ActorSnapshot, EventStored, ReplayError, ReplayResult,
// VersionConflictError, ErrVersionConflict, EventStore, EventStoreWithErrors,
// SnapshotStore) are that library's, so code written against it only changes how it
// opens the store:
//
//	store, err := aether.OpenSled("/var/lib/myapp/events") // or aether.OpenMemory()
//	if err != nil { ... }
//	defer store.Close()
//	var es aether.EventStore = store
//
// *Store implements all three interfaces and adds atomic batches (SaveEvents), a
// store-wide ordered read (ReadAll), counters (Metrics), Flush, and delivery of
// EventStored notifications (PollEventStored, EventStoredChan).
//
// Beyond the seed's rule (each version above the actor's latest), Append checks an
// expected state first (ExpectExact, ExpectNoStream, ExpectStreamExists, ExpectAny),
// numbers events whose Version is 0, and treats a retry of a stored append as success
// (CommitResult.AlreadyAppended). Commit does the same for several actors at once, all
// or nothing, including condition-only entries. GetEventsRange reads a version range
// forward or backward with a limit (LastEvent is the newest event), ReadAllFiltered
// filters by event type and actor-ID prefix inside the store, and GetSnapshot returns
// the newest kept snapshot at or below a version (WithSnapshotRetention).
//
// Errors: a version conflict is a *VersionConflictError matching ErrVersionConflict, as
// in the aether Go library (from Append and Commit, a *CommitConflictError listing
// every failed condition, which matches it too); every other failure is an *Error
// whose Code maps to one sentinel
// (ErrInvalidEvent, ErrNotFound, ErrCorrupt, ErrStoreClosed, ...) for errors.Is.
//
// The store itself is the Rust library libaether, reached through its C ABI
// (include/aether.h) with cgo. The build links the library installed by aether-rs's
// `make install`, found through pkg-config (set PKG_CONFIG_PATH for a prefix it does not
// search); README.md has the details.
package aether
