package aether_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// The seed's EventStore contract, end to end through the C ABI, on every backend.

func TestGetEventsIsInclusiveAndOrdered(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		for v := int64(1); v <= 5; v++ {
			mustSave(t, s, newEvent("order-1", v))
		}
		mustSave(t, s, newEvent("order-2", 1))
		for _, tc := range []struct {
			from int64
			want []int64
		}{
			{-5, []int64{1, 2, 3, 4, 5}}, // negative: everything, as in the seed
			{0, []int64{1, 2, 3, 4, 5}},
			{1, []int64{1, 2, 3, 4, 5}},
			{3, []int64{3, 4, 5}}, // inclusive
			{5, []int64{5}},
			{6, []int64{}},
			{math.MaxInt64, []int64{}},
		} {
			events, err := s.GetEvents("order-1", tc.from)
			if err != nil {
				t.Fatalf("GetEvents(from %d): %v", tc.from, err)
			}
			if events == nil {
				t.Fatalf("GetEvents(from %d) returned a nil slice, want empty", tc.from)
			}
			if got := versionsOf(events); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GetEvents(from %d) versions = %v, want %v", tc.from, got, tc.want)
			}
			for _, e := range events {
				if e.ActorID != "order-1" {
					t.Errorf("GetEvents(order-1) returned an event of %q", e.ActorID)
				}
			}
		}
		got, err := s.GetEvents("order-1", 2)
		if err != nil {
			t.Fatal(err)
		}
		if want := newEvent("order-1", 2); !reflect.DeepEqual(got[0], want) {
			t.Errorf("event 2 = %+v, want %+v", got[0], want)
		}
	})
}

func TestUnknownActor(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		events, err := s.GetEvents("nobody", 0)
		if err != nil || events == nil || len(events) != 0 {
			t.Fatalf("GetEvents(unknown) = %v, %v; want an empty slice", events, err)
		}
		v, err := s.GetLatestVersion("nobody")
		if err != nil || v != 0 {
			t.Fatalf("GetLatestVersion(unknown) = %d, %v; want 0", v, err)
		}
		// Prefix actor IDs never see each other's events.
		mustSave(t, s, newEvent("ab", 1))
		if v, _ := s.GetLatestVersion("a"); v != 0 {
			t.Errorf("GetLatestVersion(a) = %d after saving to ab", v)
		}
	})
}

func TestVersionConflict(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		for v := int64(1); v <= 3; v++ {
			mustSave(t, s, newEvent("order-1", v))
		}
		if v, err := s.GetLatestVersion("order-1"); err != nil || v != 3 {
			t.Fatalf("GetLatestVersion = %d, %v; want 3", v, err)
		}
		for _, attempted := range []int64{3, 2, 1, 0, -1} {
			e := newEvent("order-1", attempted)
			e.ID = "loser"
			err := s.SaveEvent(e)
			if !errors.Is(err, aether.ErrVersionConflict) {
				t.Fatalf("SaveEvent(v%d) = %v, want ErrVersionConflict", attempted, err)
			}
			var conflict *aether.VersionConflictError
			if !errors.As(err, &conflict) {
				t.Fatalf("SaveEvent(v%d) error %T is not a *VersionConflictError", attempted, err)
			}
			want := aether.VersionConflictError{ActorID: "order-1", AttemptedVersion: attempted, CurrentVersion: 3}
			if *conflict != want {
				t.Errorf("conflict = %+v, want %+v", *conflict, want)
			}
			wantText := `version conflict: actor "order-1" has version 3, cannot save version ` + itoa(attempted)
			if err.Error() != wantText {
				t.Errorf("Error() = %q, want %q", err.Error(), wantText)
			}
			// Wrapped further by a caller, it still matches.
			if !errors.Is(errors.Join(errors.New("ctx"), err), aether.ErrVersionConflict) {
				t.Error("a wrapped conflict does not match ErrVersionConflict")
			}
		}
		events, _ := s.GetEvents("order-1", 0)
		for _, e := range events {
			if e.ID == "loser" {
				t.Errorf("a conflicting save was written: %+v", e)
			}
		}
		if len(events) != 3 {
			t.Errorf("%d events after conflicts, want 3", len(events))
		}
		// A gap is fine: only "strictly greater" is required.
		mustSave(t, s, newEvent("order-1", 10))
		if v, _ := s.GetLatestVersion("order-1"); v != 10 {
			t.Errorf("GetLatestVersion = %d, want 10", v)
		}
	})
}

func TestSaveEventsBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		batch := []*aether.Event{newEvent("b", 1), newEvent("b", 2), newEvent("b", 3)}
		if err := s.SaveEvents(batch); err != nil {
			t.Fatalf("SaveEvents: %v", err)
		}
		// A conflicting batch writes nothing.
		err := s.SaveEvents([]*aether.Event{newEvent("b", 4), newEvent("b", 5)})
		if err != nil {
			t.Fatal(err)
		}
		err = s.SaveEvents([]*aether.Event{newEvent("b", 5), newEvent("b", 6)})
		var conflict *aether.VersionConflictError
		if !errors.As(err, &conflict) || conflict.CurrentVersion != 5 || conflict.AttemptedVersion != 5 {
			t.Fatalf("conflicting batch: %v (%+v)", err, conflict)
		}
		if v, _ := s.GetLatestVersion("b"); v != 5 {
			t.Fatalf("latest = %d after a conflicting batch, want 5", v)
		}
		for name, bad := range map[string][]*aether.Event{
			"empty":       {},
			"nil event":   {newEvent("b", 6), nil},
			"mixed actor": {newEvent("b", 6), newEvent("c", 7)},
			"unordered":   {newEvent("b", 7), newEvent("b", 6)},
		} {
			if err := s.SaveEvents(bad); !errors.Is(err, aether.ErrInvalidEvent) {
				t.Errorf("SaveEvents(%s) = %v, want ErrInvalidEvent", name, err)
			}
		}
		if v, _ := s.GetLatestVersion("b"); v != 5 {
			t.Fatalf("latest = %d after invalid batches, want 5", v)
		}
		events, _ := s.GetEvents("b", 0)
		if got := versionsOf(events); !reflect.DeepEqual(got, []int64{1, 2, 3, 4, 5}) {
			t.Errorf("versions = %v", got)
		}
	})
}

func TestInvalidInputNeverPanics(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		if err := s.SaveEvent(nil); !errors.Is(err, aether.ErrInvalidEvent) {
			t.Errorf("SaveEvent(nil) = %v", err)
		}
		var typed *aether.Error
		if err := s.SaveEvent(nil); !errors.As(err, &typed) || typed.Code != aether.CodeInvalidEvent {
			t.Errorf("SaveEvent(nil) = %v, want *Error with CodeInvalidEvent", err)
		}
		noActor := newEvent("", 1)
		if err := s.SaveEvent(noActor); !errors.Is(err, aether.ErrInvalidEvent) {
			t.Errorf("SaveEvent(empty actor) = %v", err)
		}
		nan := newEvent("x", 1)
		nan.Data["bad"] = math.NaN()
		if err := s.SaveEvent(nan); !errors.Is(err, aether.ErrInvalidEvent) {
			t.Errorf("SaveEvent(NaN) = %v", err)
		}
		huge := newEvent("x", 1)
		huge.Data["blob"] = strings.Repeat("x", 2<<20)
		if err := s.SaveEvent(huge); !errors.Is(err, aether.ErrInvalidEvent) {
			t.Errorf("SaveEvent(2 MiB) = %v", err)
		}
		outOfRange := newEvent("x", 1)
		outOfRange.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.SaveEvent(outOfRange); !errors.Is(err, aether.ErrInvalidEvent) {
			t.Errorf("SaveEvent(year 10000) = %v", err)
		}
		if err := s.SaveSnapshot(nil); !errors.Is(err, aether.ErrInvalidEvent) {
			t.Errorf("SaveSnapshot(nil) = %v", err)
		}
		if v, _ := s.GetLatestVersion("x"); v != 0 {
			t.Errorf("a rejected event was written: latest = %d", v)
		}
		// Empty actor IDs on the read side: an error or nothing, never a panic.
		if events, err := s.GetEvents("", 0); err == nil && len(events) != 0 {
			t.Errorf("GetEvents(\"\") = %v", events)
		}
		_, _ = s.GetLatestVersion("")
		_, _ = s.GetEventsWithErrors("", -1)
		if _, err := s.GetLatestSnapshot(""); err == nil {
			t.Error("GetLatestSnapshot(\"\") succeeded")
		}
		if _, err := s.ReadAll(0, -1); !errors.Is(err, aether.ErrInvalidArgument) {
			t.Errorf("ReadAll(limit -1) = %v", err)
		}
		// Invalid UTF-8 is coerced to U+FFFD by encoding/json's rules, as json.Marshal does.
		bad := newEvent("utf8", 1)
		bad.EventType = "bad\xffbyte"
		mustSave(t, s, bad)
		events, err := s.GetEvents("utf8", 0)
		if err != nil || events[0].EventType != "bad\ufffdbyte" {
			t.Errorf("invalid UTF-8 round trip = %v, %v", events, err)
		}
	})
}

func TestSnapshots(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		_, err := s.GetLatestSnapshot("order-1")
		if !errors.Is(err, aether.ErrNotFound) {
			t.Fatalf("GetLatestSnapshot(none) = %v, want ErrNotFound", err)
		}
		ist := time.FixedZone("", 5*3600+1800)
		snap := &aether.ActorSnapshot{
			ActorID:   "order-1",
			Version:   5,
			State:     map[string]interface{}{"total": 42.5, "items": []interface{}{"a", "b"}},
			Timestamp: time.Date(2024, 1, 2, 3, 4, 5, 6, ist),
		}
		if err := s.SaveSnapshot(snap); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetLatestSnapshot("order-1")
		if err != nil {
			t.Fatal(err)
		}
		if mustJSON(t, got) != mustJSON(t, snap) {
			t.Errorf("snapshot = %s, want %s", mustJSON(t, got), mustJSON(t, snap))
		}
		stale := *snap
		stale.Version = 4
		err = s.SaveSnapshot(&stale)
		if !errors.Is(err, aether.ErrStaleSnapshot) {
			t.Fatalf("stale SaveSnapshot = %v, want ErrStaleSnapshot", err)
		}
		same := *snap
		same.State = nil
		if err := s.SaveSnapshot(&same); err != nil {
			t.Fatalf("same-version SaveSnapshot = %v", err)
		}
		got, _ = s.GetLatestSnapshot("order-1")
		if got.State != nil || got.Version != 5 {
			t.Errorf("same-version snapshot did not replace: %+v", got)
		}
		newer := *snap
		newer.Version = 9
		if err := s.SaveSnapshot(&newer); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetLatestSnapshot("order-1"); got.Version != 9 {
			t.Errorf("latest snapshot version = %d, want 9", got.Version)
		}
		if m, _ := s.Metrics(); m.SnapshotsSaved != 3 {
			t.Errorf("SnapshotsSaved = %d, want 3", m.SnapshotsSaved)
		}
	})
}

func TestEventStoredAfterSuccessOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		if n, err := s.PollEventStored(0); n != nil || err != nil {
			t.Fatalf("PollEventStored on a new store = %v, %v; want nil, nil", n, err)
		}
		before := time.Now()
		e := newEvent("order-1", 1)
		mustSave(t, s, e)
		after := time.Now()
		n, err := s.PollEventStored(time.Second)
		if err != nil || n == nil {
			t.Fatalf("PollEventStored = %v, %v", n, err)
		}
		if n.EventID != e.ID || n.ActorID != "order-1" || n.Version != 1 || n.Sequence != 1 {
			t.Errorf("EventStored = %+v", n)
		}
		if n.Timestamp.Before(before.Add(-time.Second)) || n.Timestamp.After(after.Add(time.Second)) {
			t.Errorf("EventStored.Timestamp = %v, want between %v and %v", n.Timestamp, before, after)
		}
		// A conflict publishes nothing.
		if err := s.SaveEvent(newEvent("order-1", 1)); !errors.Is(err, aether.ErrVersionConflict) {
			t.Fatal(err)
		}
		if n, err := s.PollEventStored(20 * time.Millisecond); n != nil || err != nil {
			t.Fatalf("EventStored after a conflict: %+v, %v", n, err)
		}
		// A batch publishes one per event, in order.
		if err := s.SaveEvents([]*aether.Event{newEvent("order-1", 2), newEvent("order-1", 3)}); err != nil {
			t.Fatal(err)
		}
		for want := int64(2); want <= 3; want++ {
			n, err := s.PollEventStored(time.Second)
			if err != nil || n == nil || n.Version != want || n.Sequence != uint64(want) {
				t.Fatalf("batch EventStored %d = %+v, %v", want, n, err)
			}
		}
		m, err := s.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if m.EventStoredPublished != 3 || m.EventsSaved != 3 || m.VersionConflicts != 1 {
			t.Errorf("metrics = %+v", m)
		}
	})
}

func TestEventStoredChan(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		baseline := runtimeGoroutines()
		ctx, cancel := context.WithCancel(context.Background())
		ch := s.EventStoredChan(ctx)
		for v := int64(1); v <= 100; v++ {
			mustSave(t, s, newEvent("chan", v))
		}
		for want := int64(1); want <= 100; want++ {
			select {
			case n, ok := <-ch:
				if !ok {
					t.Fatal("channel closed early")
				}
				if n.Version != want || n.ActorID != "chan" || n.Sequence != uint64(want) {
					t.Fatalf("notification %d = %+v", want, n)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("notification %d did not arrive", want)
			}
		}
		cancel()
		drainUntilClosed(t, ch)
		waitGoroutines(t, baseline)

		// Closing the store ends a channel too.
		ch = s.EventStoredChan(context.Background())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		drainUntilClosed(t, ch)
		waitGoroutines(t, baseline)
	})
}

func runtimeGoroutines() int {
	time.Sleep(10 * time.Millisecond)
	return goroutines()
}

func drainUntilClosed(t *testing.T, ch <-chan aether.EventStored) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("EventStored channel was not closed")
		}
	}
}

func TestMetricsMove(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		m0, err := s.Metrics()
		if err != nil || m0 != (aether.Metrics{}) {
			t.Fatalf("new store metrics = %+v, %v", m0, err)
		}
		mustSave(t, s, newEvent("m", 1))
		mustSave(t, s, newEvent("m", 2))
		_ = s.SaveEvent(newEvent("m", 2))
		_ = s.SaveSnapshot(&aether.ActorSnapshot{ActorID: "m", Version: 2, Timestamp: baseTime})
		m, _ := s.Metrics()
		want := aether.Metrics{EventsSaved: 2, VersionConflicts: 1, EventStoredPublished: 2, SnapshotsSaved: 1}
		if m != want {
			t.Errorf("metrics = %+v, want %+v", m, want)
		}
	})
}

func TestEventStoredDropsWhenFull(t *testing.T) {
	s, err := aether.OpenMemory(aether.WithEventStoredCapacity(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for v := int64(1); v <= 5; v++ {
		mustSave(t, s, newEvent("full", v))
	}
	m, _ := s.Metrics()
	if m.EventStoredDropped != 3 || m.EventStoredPublished != 5 {
		t.Errorf("metrics = %+v, want 3 dropped of 5", m)
	}
	// The gap shows in Sequence; ReadAll fills it.
	n1, _ := s.PollEventStored(0)
	n2, _ := s.PollEventStored(0)
	n3, _ := s.PollEventStored(0)
	if n1 == nil || n2 == nil || n3 != nil || n1.Sequence != 1 || n2.Sequence != 2 {
		t.Fatalf("polled %+v %+v %+v", n1, n2, n3)
	}
	missed, err := s.ReadAll(n2.Sequence+1, 100)
	if err != nil || len(missed) != 3 || missed[0].Sequence != 3 || missed[0].Event.Version != 3 {
		t.Fatalf("ReadAll catch-up = %+v, %v", missed, err)
	}
}

func TestReadAll(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		if all, err := s.ReadAll(0, 10); err != nil || all == nil || len(all) != 0 {
			t.Fatalf("ReadAll on empty = %v, %v", all, err)
		}
		mustSave(t, s, newEvent("a", 1))
		mustSave(t, s, newEvent("b", 1))
		mustSave(t, s, newEvent("a", 2))
		all, err := s.ReadAll(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range all {
			got = append(got, e.Event.ActorID+itoa(e.Event.Version)+"@"+itoa(int64(e.Sequence)))
		}
		if want := []string{"a1@1", "b1@2", "a2@3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ReadAll = %v, want %v", got, want)
		}
		page, _ := s.ReadAll(2, 1)
		if len(page) != 1 || page[0].Sequence != 2 {
			t.Errorf("ReadAll(2, 1) = %+v", page)
		}
		if none, _ := s.ReadAll(1, 0); len(none) != 0 {
			t.Errorf("ReadAll(limit 0) = %+v", none)
		}
		if last, err := s.LastSequence(); err != nil || last != 3 {
			t.Errorf("LastSequence = %d, %v", last, err)
		}
		if !reflect.DeepEqual(all[0].Event, newEvent("a", 1)) {
			t.Errorf("ReadAll event = %+v", all[0].Event)
		}
	})
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		mustSave(t, s, newEvent("c", 1))
		// A poller waiting in the library is woken by Close.
		polled := make(chan error, 1)
		go func() {
			_, err := s.PollEventStored(time.Minute) // takes the pending notification first
			if err == nil {
				_, err = s.PollEventStored(time.Minute)
			}
			polled <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case err := <-polled:
			if !errors.Is(err, aether.ErrStoreClosed) {
				t.Errorf("waiting poller got %v, want ErrStoreClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not wake the waiting poller")
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		checks := map[string]error{
			"SaveEvent":  s.SaveEvent(newEvent("c", 2)),
			"SaveEvents": s.SaveEvents([]*aether.Event{newEvent("c", 2)}),
			"Flush":      s.Flush(),
			"SaveSnapshot": s.SaveSnapshot(&aether.ActorSnapshot{
				ActorID: "c", Version: 1, Timestamp: baseTime}),
		}
		_, checks["GetEvents"] = s.GetEvents("c", 0)
		_, checks["GetEventsWithErrors"] = s.GetEventsWithErrors("c", 0)
		_, checks["GetLatestVersion"] = s.GetLatestVersion("c")
		_, checks["GetLatestSnapshot"] = s.GetLatestSnapshot("c")
		_, checks["ReadAll"] = s.ReadAll(0, 1)
		_, checks["Metrics"] = s.Metrics()
		_, checks["PollEventStored"] = s.PollEventStored(0)
		_, checks["LastSequence"] = s.LastSequence()
		for name, err := range checks {
			if !errors.Is(err, aether.ErrStoreClosed) {
				t.Errorf("%s after Close = %v, want ErrStoreClosed", name, err)
			}
		}
	})
}

func TestFlush(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		mustSave(t, s, newEvent("f", 1))
		if err := s.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	})
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	for name, opts := range map[string][]aether.Option{
		"durability":   {aether.WithDurability(aether.Durability(7))},
		"capacity":     {aether.WithEventStoredCapacity(0)},
		"cache":        {aether.WithCacheSize(0)},
		"lock timeout": {aether.WithLockTimeout(-time.Second)},
	} {
		if _, err := aether.OpenSled(dir, opts...); !errors.Is(err, aether.ErrInvalidArgument) {
			t.Errorf("OpenSled(%s) = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := aether.OpenMemory(aether.WithDurability(aether.Buffered)); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenMemory(WithDurability) = %v, want ErrInvalidArgument", err)
	}
	if _, err := aether.OpenSled("a\x00b"); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenSled(NUL) = %v, want ErrInvalidArgument", err)
	}
	if _, err := aether.OpenSled(""); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenSled(\"\") = %v, want ErrInvalidArgument", err)
	}
	s, err := aether.OpenSled(dir, aether.WithDurability(aether.Buffered), aether.WithEventStoredCapacity(10),
		aether.WithCacheSize(8<<20), aether.WithLockTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatalf("OpenSled with every option: %v", err)
	}
	defer s.Close()
	// The directory is held: a second handle fails with ErrLocked after the timeout.
	start := time.Now()
	_, err = aether.OpenSled(dir, aether.WithLockTimeout(100*time.Millisecond))
	if !errors.Is(err, aether.ErrLocked) {
		t.Fatalf("second OpenSled = %v, want ErrLocked", err)
	}
	if time.Since(start) < 90*time.Millisecond {
		t.Errorf("ErrLocked after %v, before the lock timeout", time.Since(start))
	}
	var e *aether.Error
	if !errors.As(err, &e) || e.Code != aether.CodeLocked || e.Message == "" {
		t.Errorf("ErrLocked as *Error = %+v", e)
	}
	if aether.Buffered.String() != "buffered" || aether.Durable.String() != "durable" {
		t.Error("Durability.String")
	}
}

func TestSledPersistsAcrossReopen(t *testing.T) {
	for _, d := range []aether.Durability{aether.Durable, aether.Buffered} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			s, err := aether.OpenSled(dir, aether.WithDurability(d))
			if err != nil {
				t.Fatal(err)
			}
			for v := int64(1); v <= 10; v++ {
				mustSave(t, s, newEvent("p", v))
			}
			if err := s.SaveSnapshot(&aether.ActorSnapshot{ActorID: "p", Version: 10, Timestamp: baseTime}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openSledAt(t, dir)
			events, err := s.GetEvents("p", 0)
			if err != nil || len(events) != 10 {
				t.Fatalf("after reopen: %d events, %v", len(events), err)
			}
			if snap, err := s.GetLatestSnapshot("p"); err != nil || snap.Version != 10 {
				t.Fatalf("snapshot after reopen: %+v, %v", snap, err)
			}
			// The sequence continues.
			mustSave(t, s, newEvent("p", 11))
			if last, _ := s.LastSequence(); last != 11 {
				t.Errorf("LastSequence = %d, want 11", last)
			}
		})
	}
}

func TestErrorSentinels(t *testing.T) {
	for code, sentinel := range map[aether.Code]error{
		aether.CodeInvalidArgument: aether.ErrInvalidArgument,
		aether.CodeInvalidEvent:    aether.ErrInvalidEvent,
		aether.CodeNotFound:        aether.ErrNotFound,
		aether.CodeCorrupt:         aether.ErrCorrupt,
		aether.CodeDataLoss:        aether.ErrDataLoss,
		aether.CodeLocked:          aether.ErrLocked,
		aether.CodeStorage:         aether.ErrStorage,
		aether.CodeStoreClosed:     aether.ErrStoreClosed,
		aether.CodeTimeout:         aether.ErrTimeout,
		aether.CodeUnavailable:     aether.ErrUnavailable,
		aether.CodeStaleSnapshot:   aether.ErrStaleSnapshot,
		aether.CodeInternal:        aether.ErrInternal,
	} {
		err := error(&aether.Error{Code: code, Message: "m"})
		if !errors.Is(err, sentinel) {
			t.Errorf("*Error{%v} does not match %v", code, sentinel)
		}
		if errors.Is(err, aether.ErrVersionConflict) {
			t.Errorf("*Error{%v} matches ErrVersionConflict", code)
		}
		if code.String() == "" || code.String() == "unknown status" {
			t.Errorf("Code(%d).String() = %q", int(code), code.String())
		}
	}
	if aether.CodeVersionConflict.String() != "version conflict" {
		t.Errorf("CodeVersionConflict.String() = %q", aether.CodeVersionConflict.String())
	}
	if aether.LibraryVersion() == "" {
		t.Error("LibraryVersion is empty")
	}
}

func TestZeroStoreIsClosed(t *testing.T) {
	var s aether.Store
	if err := s.SaveEvent(newEvent("z", 1)); !errors.Is(err, aether.ErrStoreClosed) {
		t.Errorf("SaveEvent on a zero Store = %v", err)
	}
	drainUntilClosed(t, s.EventStoredChan(context.Background()))
	if err := s.Close(); err != nil {
		t.Errorf("Close on a zero Store = %v", err)
	}
}
