package aether

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// conflictEvent is an event of actor "leak" at version 1, which the test's store has.
func conflictEvent(ts time.Time) *Event {
	return &Event{ID: "c", EventType: "T", ActorID: "leak", Version: 1, Timestamp: ts}
}

// Every buffer, error and notification string the library hands to Go is released:
// thousands of calls of each kind leave the C heap where it was.
func TestLibraryMemoryIsReleased(t *testing.T) {
	if _, ok := capi.MallocInUse(); !ok {
		t.Skip("the C library cannot report its heap use")
	}
	// One OS thread for this goroutine's calls: malloc's per-thread caches stay put.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, err := OpenMemory(WithEventStoredCapacity(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for v := int64(1); v <= 50; v++ {
		e := &Event{ID: "e", EventType: "T", ActorID: "leak", Version: v, Data: map[string]interface{}{"k": "v"}, Timestamp: ts}
		if err := s.SaveEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.SaveSnapshot(&ActorSnapshot{ActorID: "leak", Version: 1, Timestamp: ts})
	for i := 0; i < 50; i++ {
		_, _ = s.PollEventStored(0) // drain
	}
	// Notifications: a store of its own, filled, drained one by one and in batches, then
	// closed, so everything it allocated is released and only a leak would remain.
	notifications := func() {
		ns, err := OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		for v := int64(1); v <= 400; v++ {
			e := &Event{ID: "event-id", EventType: "T", ActorID: "notify", Version: v, Timestamp: ts}
			if err := ns.SaveEvent(e); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 200; i++ {
			if n, err := ns.PollEventStored(0); n == nil || err != nil {
				t.Fatalf("poll %d: %v, %v", i, n, err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := ns.EventStoredChan(ctx)
		for i := 0; i < 200; i++ {
			<-ch
		}
		cancel()
		for range ch {
		}
		if err := ns.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The appends: commits whose entries the library's shim lays out in C memory, errors
	// with several failed conditions, range and filtered reads, snapshot history.
	entries := []CommitEntry{
		{ActorID: "leak", Expected: ExpectExact(1), Events: []*Event{{ID: "x", EventType: "T", ActorID: "leak", Version: 2, Timestamp: ts}}},
		{ActorID: "none", Expected: ExpectStreamExists()},
	}
	appends := func(i int) {
		if _, err := s.Commit(entries...); !errors.Is(err, ErrVersionConflict) {
			t.Fatal(err)
		}
		if _, err := s.Append("leak", ExpectExact(0), conflictEvent(ts)); !errors.Is(err, ErrVersionConflict) {
			t.Fatal(err)
		}
		if _, err := s.Append("leak", ExpectExact(-1), conflictEvent(ts)); !errors.Is(err, ErrInvalidArgument) {
			t.Fatal(err)
		}
		if r, err := s.Commit(CommitEntry{ActorID: "leak", Expected: ExpectStreamExists()}); err != nil || r.LastSequence != 0 {
			t.Fatal(r, err)
		}
		if _, err := s.GetEventsRange("leak", FromVersion(int64(i%40)+1), Limit(5), Backward()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetEventsRange("leak", FromVersion(9), ToVersion(8)); !errors.Is(err, ErrInvalidArgument) {
			t.Fatal(err)
		}
		if _, err := s.ReadAllFiltered(0, 10, Filter{EventTypes: []string{"T", "U"}, ActorPrefix: "le"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSnapshot("leak", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSnapshot("leak", 0); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	round := func() {
		notifications()
		conflict := &Event{ID: "c", EventType: "T", ActorID: "leak", Version: 1, Timestamp: ts}
		for i := 0; i < 200; i++ {
			if err := s.SaveEvent(conflict); !errors.Is(err, ErrVersionConflict) {
				t.Fatal(err)
			}
			if _, err := s.GetEvents("leak", 0); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetEventsWithErrors("leak", 40); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadAll(0, 10); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetLatestSnapshot("leak"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetLatestSnapshot("none"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			if _, err := s.PollEventStored(0); err != nil {
				t.Fatal(err)
			}
			appends(i)
		}
	}
	round() // warm up the allocator
	// Other threads (sled's, the GC's finalizers of earlier tests) may allocate now and
	// then, so the heap is measured over three windows and the smallest growth counts: a
	// leak grows every window (leaking the strings of either way of polling, 1,000
	// notifications a window, shows as about 80 KiB; errors and buffers as far more).
	growth := make([]int64, 3)
	for w := range growth {
		before, _ := capi.MallocInUse()
		for i := 0; i < 5; i++ {
			round()
		}
		after, _ := capi.MallocInUse()
		growth[w] = int64(after) - int64(before)
	}
	t.Logf("C heap growth per window: %v bytes", growth)
	if min(growth[0], growth[1], growth[2]) > 32<<10 {
		t.Errorf("the C heap grew in every window (by %v bytes over 8,000 calls each)", growth)
	}
}
