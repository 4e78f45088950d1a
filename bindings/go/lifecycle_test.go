package aether

import (
	"errors"
	"testing"
	"time"

	"github.com/aether-rs/aether-go/internal/capi"
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
