package aether

import (
	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// backend is what a Store calls: the operations of the C library's store handle, which
// *capi.Handle provides. It is the seam for a pure-Go fake in the tests (fake_test.go):
// the race detector sees only Go memory, so the Store's own synchronisation (its lock,
// handle, closing channel and EventStoredChan goroutines) is also checked over a backend
// whose every byte it can see.
//
// Implementations keep capi's contract: JSON lent to use is valid only while use runs;
// every method may be called from any goroutine, Close included; Free is the last call
// and never runs concurrently with another (the Store guarantees it).
type backend interface {
	SaveEvent(json []byte) (sequence uint64, f *capi.Failure)
	SaveEvents(json []byte) (lastSequence uint64, f *capi.Failure)
	GetEvents(actorID string, fromVersion int64, use func(json []byte)) *capi.Failure
	GetEventsWithErrors(actorID string, fromVersion int64, use func(json []byte)) *capi.Failure
	GetLatestVersion(actorID string) (int64, *capi.Failure)
	SaveSnapshot(json []byte) *capi.Failure
	GetLatestSnapshot(actorID string, use func(json []byte)) *capi.Failure
	ReadAll(fromSequence uint64, limit uint64, use func(json []byte)) *capi.Failure
	LastSequence() (uint64, *capi.Failure)
	PollOne(timeoutMs int64) (capi.EventStored, *capi.Failure)
	PollEventStored(timeoutMs int64, buf *capi.EventStoredBuffer, dst []capi.EventStored) ([]capi.EventStored, *capi.Failure)
	Flush() *capi.Failure
	Metrics() (capi.Metrics, *capi.Failure)
	Close() *capi.Failure
	Free()
}

var _ backend = (*capi.Handle)(nil)

// decodeTarget receives the JSON a backend lends to a read and decodes it. A closure
// over the reading method's locals would escape through the backend interface and cost
// three allocations per read, so targets are kept for reuse with their callbacks bound
// once. They are kept in a bounded free list rather than a sync.Pool, which the GC
// empties: a replay allocates enough to run the GC every few calls.
type decodeTarget struct {
	events    []*Event
	result    *ReplayResult
	sequenced []SequencedEvent
	snapshot  *ActorSnapshot
	err       error

	decodeEvents, decodeReplayResult, decodeSequenced, decodeSnapshot func(json []byte)
}

// decodeTargets holds idle targets; beyond its capacity (more concurrent reads than
// that) targets are allocated and dropped.
var decodeTargets = make(chan *decodeTarget, 64)

func getDecodeTarget() *decodeTarget {
	select {
	case t := <-decodeTargets:
		return t
	default:
	}
	t := &decodeTarget{}
	t.decodeEvents = func(json []byte) { t.events, t.err = decodeEvents(json) }
	t.decodeReplayResult = func(json []byte) { t.result, t.err = decodeReplayResult(json) }
	t.decodeSequenced = func(json []byte) { t.sequenced, t.err = decodeSequenced(json) }
	t.decodeSnapshot = func(json []byte) { t.snapshot, t.err = decodeSnapshot(json) }
	return t
}

// putDecodeTarget forgets the results (the caller owns them now) and keeps t for reuse.
func putDecodeTarget(t *decodeTarget) {
	t.events, t.result, t.sequenced, t.snapshot, t.err = nil, nil, nil, nil, nil
	select {
	case decodeTargets <- t:
	default:
	}
}
