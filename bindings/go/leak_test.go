package aether

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aether-rs/aether-go/internal/capi"
)

// Every buffer, error and notification string the library hands to Go is released:
// thousands of calls of each kind leave the C heap where it was.
func TestLibraryMemoryIsReleased(t *testing.T) {
	if _, ok := capi.MallocInUse(); !ok {
		t.Skip("the C library cannot report its heap use")
	}
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
		for v := int64(1); v <= 200; v++ {
			e := &Event{ID: "event-id", EventType: "T", ActorID: "notify", Version: v, Timestamp: ts}
			if err := ns.SaveEvent(e); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100; i++ {
			if n, err := ns.PollEventStored(0); n == nil || err != nil {
				t.Fatalf("poll %d: %v, %v", i, n, err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := ns.EventStoredChan(ctx)
		for i := 0; i < 100; i++ {
			<-ch
		}
		cancel()
		for range ch {
		}
		if err := ns.Close(); err != nil {
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
		}
	}
	round() // warm up the allocator
	before, _ := capi.MallocInUse()
	for i := 0; i < 10; i++ {
		round()
	}
	after, _ := capi.MallocInUse()
	// 16,000 library results of up to several KiB each went through; a leak of even one
	// small allocation per call would show as hundreds of KiB.
	if after > before+64<<10 {
		t.Errorf("C heap grew from %d to %d bytes over 16,000 calls", before, after)
	}
}
