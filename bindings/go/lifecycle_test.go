package aether

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// panickingBackend is the fake backend with every call that a Store makes under its read
// lock replaced by a panic, as a bug in the wrapper or in decoding the JSON it lends
// (which runs inside these calls) would raise while the lock is held.
type panickingBackend struct{ *fakeBackend }

const injectedPanic = "injected panic under the read lock"

func (panickingBackend) SaveEvent([]byte) (uint64, *capi.Failure)  { panic(injectedPanic) }
func (panickingBackend) SaveEvents([]byte) (uint64, *capi.Failure) { panic(injectedPanic) }
func (panickingBackend) GetEvents(string, int64, func([]byte)) *capi.Failure {
	panic(injectedPanic)
}
func (panickingBackend) GetEventsWithErrors(string, int64, func([]byte)) *capi.Failure {
	panic(injectedPanic)
}
func (panickingBackend) GetLatestVersion(string) (int64, *capi.Failure) { panic(injectedPanic) }
func (panickingBackend) SaveSnapshot([]byte) *capi.Failure              { panic(injectedPanic) }
func (panickingBackend) GetLatestSnapshot(string, func([]byte)) *capi.Failure {
	panic(injectedPanic)
}
func (panickingBackend) ReadAll(uint64, uint64, func([]byte)) *capi.Failure { panic(injectedPanic) }
func (panickingBackend) LastSequence() (uint64, *capi.Failure)              { panic(injectedPanic) }
func (panickingBackend) PollOne(int64) (capi.EventStored, *capi.Failure)    { panic(injectedPanic) }
func (panickingBackend) Flush() *capi.Failure                               { panic(injectedPanic) }
func (panickingBackend) Metrics() (capi.Metrics, *capi.Failure)             { panic(injectedPanic) }

// The operations of appendBackend, so the Store's appends run over the panicking backend
// too (the fake itself has none).
func (panickingBackend) Append(string, int, int64, []byte) (capi.CommitResult, int64, *capi.CommitFailure) {
	panic(injectedPanic)
}
func (panickingBackend) Commit([]byte, []capi.EntrySpec, []int64) (capi.CommitResult, *capi.CommitFailure) {
	panic(injectedPanic)
}
func (panickingBackend) GetEventsRange(string, int64, int64, uint64, int, func([]byte)) *capi.Failure {
	panic(injectedPanic)
}
func (panickingBackend) ReadAllFiltered(uint64, uint64, []string, string, func([]byte)) *capi.Failure {
	panic(injectedPanic)
}
func (panickingBackend) GetSnapshot(string, int64, func([]byte)) *capi.Failure {
	panic(injectedPanic)
}

var _ appendBackend = panickingBackend{}

// A panic raised while a call holds the Store's read lock must not leave the lock held:
// Close, which takes the lock for writing, returns.
func TestPanicUnderReadLockDoesNotHangClose(t *testing.T) {
	calls := map[string]func(s *Store){
		"SaveEvent":           func(s *Store) { _ = s.SaveEvent(&Event{ID: "e", ActorID: "a", Version: 1}) },
		"SaveEvents":          func(s *Store) { _ = s.SaveEvents([]*Event{{ID: "e", ActorID: "a", Version: 1}}) },
		"GetEvents":           func(s *Store) { _, _ = s.GetEvents("a", 0) },
		"GetEventsWithErrors": func(s *Store) { _, _ = s.GetEventsWithErrors("a", 0) },
		"GetLatestVersion":    func(s *Store) { _, _ = s.GetLatestVersion("a") },
		"SaveSnapshot":        func(s *Store) { _ = s.SaveSnapshot(&ActorSnapshot{ActorID: "a", Version: 1}) },
		"GetLatestSnapshot":   func(s *Store) { _, _ = s.GetLatestSnapshot("a") },
		"ReadAll":             func(s *Store) { _, _ = s.ReadAll(0, 10) },
		"LastSequence":        func(s *Store) { _, _ = s.LastSequence() },
		"PollEventStored":     func(s *Store) { _, _ = s.PollEventStored(0) },
		"Flush":               func(s *Store) { _ = s.Flush() },
		"Metrics":             func(s *Store) { _, _ = s.Metrics() },
		"Append":              func(s *Store) { _, _ = s.Append("a", ExpectAny(), &Event{ID: "e", ActorID: "a"}) },
		"Commit":              func(s *Store) { _, _ = s.Commit(CommitEntry{ActorID: "a", Expected: ExpectNoStream()}) },
		"GetEventsRange":      func(s *Store) { _, _ = s.GetEventsRange("a", Backward()) },
		"LastEvent":           func(s *Store) { _, _ = s.LastEvent("a") },
		"ReadAllFiltered":     func(s *Store) { _, _ = s.ReadAllFiltered(0, 10, Filter{EventTypes: []string{"T"}}) },
		"GetSnapshot":         func(s *Store) { _, _ = s.GetSnapshot("a", 1) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			s := newStore(panickingBackend{newFakeBackend(0)})
			mustPanic(t, func() { call(s) })
			closeWithin(t, s, 5*time.Second)
		})
	}
}

func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatal("the injected panic did not reach the caller")
		}
	}()
	f()
}

func closeWithin(t *testing.T, s *Store, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close after the panic: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("Close did not return within %v: the panic left the read lock held", d)
	}
	if _, err := s.LastSequence(); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("after Close: %v, want ErrStoreClosed", err)
	}
}

// slowFreeBackend is the fake backend whose Free blocks until released, like a library
// free that checkpoints (fsyncs) a large store, and which records whether the Store
// asked it to Close.
type slowFreeBackend struct {
	*fakeBackend
	closed      atomic.Bool
	freeStarted chan struct{}
	release     chan struct{}
}

func (b *slowFreeBackend) Close() *capi.Failure {
	b.closed.Store(true)
	return b.fakeBackend.Close()
}

func (b *slowFreeBackend) Free() {
	close(b.freeStarted)
	<-b.release
	b.fakeBackend.Free()
}

// The finalizer of an unclosed Store only releases its handle, and does so off the
// runtime's single finalizer goroutine: a slow release (a checkpoint that syncs every
// file) must not hold back the finalizers of everything else in the program.
func TestFinalizerOnlyReleasesOffTheFinalizerGoroutine(t *testing.T) {
	b := &slowFreeBackend{
		fakeBackend: newFakeBackend(0),
		freeStarted: make(chan struct{}),
		release:     make(chan struct{}),
	}
	defer close(b.release)
	func() {
		s := newStore(b)
		if err := s.SaveEvent(&Event{ID: "e", ActorID: "a", Version: 1}); err != nil {
			t.Fatal(err)
		}
	}()
	waitFor(t, "the finalizer to release the unclosed store", b.freeStarted)
	if b.closed.Load() {
		t.Error("the finalizer closed the store (a full close with its checkpoint); it must only release the handle")
	}

	// The store's release is still blocked. Another object's finalizer must run anyway.
	finalized := make(chan struct{})
	func() {
		marker := new([16]byte)
		runtime.SetFinalizer(marker, func(*[16]byte) { close(finalized) })
	}()
	waitFor(t, "another object's finalizer while the store's release is in progress", finalized)
}

// waitFor runs the GC until done is closed, failing after 10 s.
func waitFor(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A failure the library marks as possibly applied (aether_error_outcome) says so on the
// *Error, and still matches its sentinel; one that wrote nothing does not.
func TestStorageFailureCarriesItsOutcome(t *testing.T) {
	err := errorOf(&capi.Failure{Status: capi.StatusStorage, Message: "storage error: syncing the log", OutcomeUnknown: true})
	var e *Error
	if !errors.As(err, &e) || !e.OutcomeUnknown || !errors.Is(err, ErrStorage) {
		t.Fatalf("errorOf(storage failure, outcome unknown) = %#v", err)
	}
	err = errorOf(&capi.Failure{Status: capi.StatusStorage, Message: "storage error: opening"})
	if !errors.As(err, &e) || e.OutcomeUnknown {
		t.Fatalf("errorOf(storage failure, nothing written) = %#v", err)
	}
}
