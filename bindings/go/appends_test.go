package aether_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// The library's stores (the pure-Go fake has no appends: see TestAppendsOnTheFake).
var libraryBackends = backends[1:]

func eachLibraryBackend(t *testing.T, f func(t *testing.T, s *aether.Store)) {
	for _, b := range libraryBackends {
		b := b
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

// ev is an event with its own ID (newEvent's IDs repeat for version 0).
func ev(id, actor string, version int64) *aether.Event {
	e := newEvent(actor, version)
	e.ID = id
	return e
}

func typedEv(id, eventType, actor string, version int64) *aether.Event {
	e := ev(id, actor, version)
	e.EventType = eventType
	return e
}

// conflictsOf checks that err is a commit conflict and returns its conditions.
func conflictsOf(t *testing.T, err error) []aether.Conflict {
	t.Helper()
	if !errors.Is(err, aether.ErrVersionConflict) {
		t.Fatalf("err = %v, want ErrVersionConflict", err)
	}
	var c *aether.CommitConflictError
	if !errors.As(err, &c) {
		t.Fatalf("err = %T %v, want *CommitConflictError", err, err)
	}
	return c.Conflicts
}

func wantConflicts(t *testing.T, err error, want ...aether.Conflict) {
	t.Helper()
	if got := conflictsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Fatalf("conflicts = %+v\nwant %+v", got, want)
	}
}

func lastSequence(t *testing.T, s *aether.Store) uint64 {
	t.Helper()
	q, err := s.LastSequence()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func latestVersion(t *testing.T, s *aether.Store, actor string) int64 {
	t.Helper()
	v, err := s.GetLatestVersion(actor)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func drainCount(t *testing.T, s *aether.Store) int {
	t.Helper()
	n := 0
	for {
		e, err := s.PollEventStored(0)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return n
		}
		n++
	}
}

func TestAppendExpectedStates(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		a1, a2 := ev("a-1", "a", 1), ev("a-2", "a", 2)
		_, err := s.Append("a", aether.ExpectStreamExists(), a1)
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectStreamExists(), AttemptedVersion: 1})
		_, err = s.Append("a", aether.ExpectExact(1), a1)
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectExact(1), AttemptedVersion: 1})
		if q := lastSequence(t, s); q != 0 {
			t.Fatalf("a failed append wrote: last sequence %d", q)
		}

		r, err := s.Append("a", aether.ExpectNoStream(), a1, a2)
		if err != nil {
			t.Fatal(err)
		}
		want := aether.CommitResult{FirstSequence: 1, LastSequence: 2, LastVersions: []int64{2}}
		if !reflect.DeepEqual(r, want) || r.LastVersion() != 2 {
			t.Fatalf("Append = %+v, want %+v", r, want)
		}

		_, err = s.Append("a", aether.ExpectNoStream(), ev("a-3", "a", 3))
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectNoStream(), AttemptedVersion: 3, CurrentVersion: 2})
		_, err = s.Append("a", aether.ExpectExact(1), ev("a-3", "a", 3))
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectExact(1), AttemptedVersion: 3, CurrentVersion: 2})
		// Whatever the mode, explicit versions must pass the latest.
		_, err = s.Append("a", aether.ExpectAny(), ev("fresh-2", "a", 2))
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectAny(), AttemptedVersion: 2, CurrentVersion: 2})
		_, err = s.Append("a", aether.Expected{}, ev("fresh-1", "a", 1))
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectIncreasing(), AttemptedVersion: 1, CurrentVersion: 2})
		// errors.As also finds the first condition as the seed's error type.
		var vc *aether.VersionConflictError
		if !errors.As(err, &vc) || vc.ActorID != "a" || vc.CurrentVersion != 2 || vc.AttemptedVersion != 1 {
			t.Fatalf("errors.As(*VersionConflictError) = %+v", vc)
		}
		if n := drainCount(t, s); n != 2 {
			t.Fatalf("%d notifications, want 2 (none for a failed append)", n)
		}

		for _, step := range []struct {
			expected aether.Expected
			version  int64
		}{{aether.ExpectExact(2), 3}, {aether.ExpectStreamExists(), 5}, {aether.ExpectAny(), 6}, {aether.ExpectIncreasing(), 9}} {
			r, err := s.Append("a", step.expected, ev("a-"+itoa(step.version), "a", step.version))
			if err != nil {
				t.Fatalf("Append(%v, %d): %v", step.expected, step.version, err)
			}
			if r.LastVersion() != step.version || r.AlreadyAppended {
				t.Fatalf("Append(%v, %d) = %+v", step.expected, step.version, r)
			}
		}
		events, err := s.GetEvents("a", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := versionsOf(events); !reflect.DeepEqual(got, []int64{1, 2, 3, 5, 6, 9}) {
			t.Fatalf("versions %v", got)
		}
		// ExpectExact(0) is the condition of no stream.
		if _, err := s.Append("b", aether.ExpectExact(0), ev("b-1", "b", 1)); err != nil {
			t.Fatal(err)
		}
		_, err = s.Append("b", aether.ExpectExact(0), ev("b-2", "b", 2))
		wantConflicts(t, err, aether.Conflict{ActorID: "b", Expected: aether.ExpectExact(0), AttemptedVersion: 2, CurrentVersion: 1})
		if msg := err.Error(); msg != `version conflict: actor "b" expected version 0, has version 1, cannot save version 2` {
			t.Fatalf("message %q", msg)
		}
	})
}

func TestAppendAutomaticVersions(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		mustSave(t, s, ev("a-4", "a", 4))
		auto := []*aether.Event{ev("auto-1", "a", 0), ev("auto-2", "a", 0), ev("auto-3", "a", 0)}
		r, err := s.Append("a", aether.ExpectAny(), auto...)
		if err != nil {
			t.Fatal(err)
		}
		if r.FirstSequence != 2 || r.LastSequence != 4 || r.LastVersion() != 7 {
			t.Fatalf("Append = %+v", r)
		}
		if auto[0].Version != 0 {
			t.Fatal("Append modified the caller's event")
		}
		stored, err := s.GetEvents("a", 5)
		if err != nil {
			t.Fatal(err)
		}
		want := *auto[0]
		want.Version = 5
		if len(stored) != 3 || !reflect.DeepEqual(*stored[0], want) || stored[2].ID != "auto-3" || stored[2].Version != 7 {
			t.Fatalf("stored %s", mustJSON(t, stored))
		}
		// In a commit, each entry takes its own actor's next versions.
		mustSave(t, s, ev("c-10", "c", 10))
		r, err = s.Commit(
			aether.CommitEntry{ActorID: "new", Expected: aether.ExpectNoStream(), Events: []*aether.Event{ev("n", "new", 0)}},
			aether.CommitEntry{ActorID: "c", Expected: aether.ExpectExact(10), Events: []*aether.Event{ev("c-auto", "c", 0)}},
			aether.CommitEntry{ActorID: "a", Expected: aether.ExpectExact(7)},
		)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.LastVersions, []int64{1, 11, 0}) || r.FirstSequence != 6 || r.LastSequence != 7 {
			t.Fatalf("Commit = %+v", r)
		}
		// Mixed with explicit versions: refused, nothing written.
		_, err = s.Append("a", aether.ExpectAny(), ev("x", "a", 0), ev("y", "a", 9))
		if !errors.Is(err, aether.ErrInvalidEvent) {
			t.Fatalf("mixed versions: %v, want ErrInvalidEvent", err)
		}
		if q := lastSequence(t, s); q != 7 {
			t.Fatalf("last sequence %d", q)
		}
	})
}

func TestAppendRetryIsAlreadyAppended(t *testing.T) {
	for _, b := range libraryBackends {
		b := b
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			var s *aether.Store
			var opts []aether.Option
			if b.name == "sled_buffered" {
				opts = append(opts, aether.WithDurability(aether.Buffered))
			}
			if b.name == "memory" {
				s = b.open(t)
			} else {
				s = openSledAt(t, dir, opts...)
			}
			a := []*aether.Event{ev("a-1", "a", 1), ev("a-2", "a", 2)}
			first, err := s.Append("a", aether.ExpectNoStream(), a...)
			if err != nil {
				t.Fatal(err)
			}
			mustSave(t, s, ev("z-1", "z", 1))
			drainCount(t, s)
			again, err := s.Append("a", aether.ExpectNoStream(), a...)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !again.AlreadyAppended || again.FirstSequence != first.FirstSequence || again.LastSequence != first.LastSequence || again.LastVersion() != 2 {
				t.Fatalf("retry = %+v, first %+v", again, first)
			}
			if n := drainCount(t, s); n != 0 {
				t.Fatalf("a retry published %d notifications", n)
			}
			// The same version with another ID is a conflict.
			_, err = s.Append("a", aether.ExpectAny(), ev("someone-else", "a", 2))
			wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectAny(), AttemptedVersion: 2, CurrentVersion: 2})
			// The seed's SaveEvent keeps its rule.
			var vc *aether.VersionConflictError
			if err := s.SaveEvent(a[1]); !errors.As(err, &vc) {
				t.Fatalf("SaveEvent(repeat) = %v", err)
			}
			// Commits across actors, and automatic versions under ExpectExact.
			entries := []aether.CommitEntry{
				{ActorID: "x", Expected: aether.ExpectNoStream(), Events: []*aether.Event{ev("x-1", "x", 1)}},
				{ActorID: "q", Expected: aether.ExpectExact(0), Events: []*aether.Event{ev("q-a", "q", 0), ev("q-b", "q", 0)}},
			}
			c, err := s.Commit(entries...)
			if err != nil {
				t.Fatal(err)
			}
			check := func(s *aether.Store) {
				t.Helper()
				r, err := s.Commit(entries...)
				if err != nil {
					t.Fatalf("commit retry: %v", err)
				}
				if !r.AlreadyAppended || r.FirstSequence != c.FirstSequence || r.LastSequence != c.LastSequence || !reflect.DeepEqual(r.LastVersions, []int64{1, 2}) {
					t.Fatalf("commit retry = %+v, first %+v", r, c)
				}
				r, err = s.Append("a", aether.ExpectNoStream(), a...)
				if err != nil || !r.AlreadyAppended || r.FirstSequence != 1 {
					t.Fatalf("append retry = %+v, %v", r, err)
				}
			}
			check(s)
			if b.name == "memory" {
				return
			}
			// Across a reopen.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openSledAt(t, dir, opts...)
			check(s)
			if q := lastSequence(t, s); q != c.LastSequence {
				t.Fatalf("last sequence %d, want %d", q, c.LastSequence)
			}
		})
	}
}

func TestCommitAcrossActors(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		mustSave(t, s, ev("b-1", "b", 1))
		mustSave(t, s, ev("c-1", "c", 1))
		drainCount(t, s)
		aEvents := []*aether.Event{ev("a-1", "a", 1), ev("a-2", "a", 2)}
		r, err := s.Commit(
			aether.CommitEntry{ActorID: "a", Expected: aether.ExpectNoStream(), Events: aEvents},
			aether.CommitEntry{ActorID: "b", Expected: aether.ExpectExact(1), Events: []*aether.Event{ev("b-2", "b", 2)}},
			aether.CommitEntry{ActorID: "c", Expected: aether.ExpectStreamExists(), Events: []*aether.Event{ev("c-auto", "c", 0)}},
			aether.CommitEntry{ActorID: "d", Expected: aether.ExpectNoStream()}, // condition only
		)
		if err != nil {
			t.Fatal(err)
		}
		want := aether.CommitResult{FirstSequence: 3, LastSequence: 6, LastVersions: []int64{2, 2, 2, 0}}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("Commit = %+v, want %+v", r, want)
		}
		all, err := s.ReadAll(3, 10)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, e := range all {
			order = append(order, fmt.Sprintf("%d:%s", e.Sequence, e.Event.ActorID))
		}
		if !reflect.DeepEqual(order, []string{"3:a", "4:a", "5:b", "6:c"}) {
			t.Fatalf("ReadAll order %v", order)
		}
		if n := drainCount(t, s); n != 4 {
			t.Fatalf("%d notifications, want 4", n)
		}

		// Two failed conditions: both reported, nothing written, nothing announced.
		_, err = s.Commit(
			aether.CommitEntry{ActorID: "a", Expected: aether.ExpectExact(2), Events: []*aether.Event{ev("a-3", "a", 3)}},
			aether.CommitEntry{ActorID: "b", Expected: aether.ExpectExact(1), Events: []*aether.Event{ev("b-9", "b", 9)}},
			aether.CommitEntry{ActorID: "e", Expected: aether.ExpectNoStream(), Events: []*aether.Event{ev("e-1", "e", 1)}},
			aether.CommitEntry{ActorID: "c", Expected: aether.ExpectNoStream()},
		)
		wantConflicts(t, err,
			aether.Conflict{ActorID: "b", Expected: aether.ExpectExact(1), AttemptedVersion: 9, CurrentVersion: 2},
			aether.Conflict{ActorID: "c", Expected: aether.ExpectNoStream(), AttemptedVersion: 0, CurrentVersion: 2},
		)
		var vc *aether.VersionConflictError
		if !errors.As(err, &vc) || vc.ActorID != "b" {
			t.Fatalf("errors.As(*VersionConflictError) = %+v", vc)
		}
		if q := lastSequence(t, s); q != 6 {
			t.Fatalf("last sequence %d after a failed commit", q)
		}
		if v := latestVersion(t, s, "e"); v != 0 {
			t.Fatalf("e has version %d after a failed commit", v)
		}
		if n := drainCount(t, s); n != 0 {
			t.Fatalf("%d notifications after a failed commit", n)
		}

		// Conditions only: checked, nothing written.
		r, err = s.Commit(aether.CommitEntry{ActorID: "a", Expected: aether.ExpectExact(2)},
			aether.CommitEntry{ActorID: "b", Expected: aether.ExpectStreamExists(), Events: []*aether.Event{}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r, aether.CommitResult{LastVersions: []int64{0, 0}}) {
			t.Fatalf("condition-only Commit = %+v", r)
		}
		_, err = s.Commit(aether.CommitEntry{ActorID: "a", Expected: aether.ExpectExact(1)})
		wantConflicts(t, err, aether.Conflict{ActorID: "a", Expected: aether.ExpectExact(1), CurrentVersion: 2})
		got, err := s.GetEvents("a", 0)
		if err != nil {
			t.Fatal(err)
		}
		if mustJSON(t, got) != mustJSON(t, aEvents) {
			t.Fatalf("a replays %s", mustJSON(t, got))
		}
	})
}

func TestAppendBadInput(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		mustSave(t, s, ev("a-1", "a", 1))
		a2 := ev("a-2", "a", 2)
		for _, c := range []struct {
			name string
			call func() error
			want error
		}{
			{"unknown mode", func() error { _, err := s.Append("a", aether.Expected{Mode: 99}, a2); return err }, aether.ErrInvalidArgument},
			{"negative exact", func() error { _, err := s.Append("a", aether.ExpectExact(-1), a2); return err }, aether.ErrInvalidArgument},
			{"mixed versions", func() error { _, err := s.Append("a", aether.ExpectAny(), ev("z", "a", 0), a2); return err }, aether.ErrInvalidEvent},
			{"foreign event", func() error { _, err := s.Append("a", aether.ExpectAny(), ev("b-2", "b", 2)); return err }, aether.ErrInvalidEvent},
			{"no events", func() error { _, err := s.Append("a", aether.ExpectAny()); return err }, aether.ErrInvalidEvent},
			{"nil event", func() error { _, err := s.Append("a", aether.ExpectAny(), nil); return err }, aether.ErrInvalidEvent},
			{"empty actor", func() error { _, err := s.Append("", aether.ExpectAny(), a2); return err }, aether.ErrInvalidEvent},
			{"no entries", func() error { _, err := s.Commit(); return err }, aether.ErrInvalidArgument},
			{"two entries for one actor", func() error {
				_, err := s.Commit(aether.CommitEntry{ActorID: "a", Events: []*aether.Event{a2}},
					aether.CommitEntry{ActorID: "a", Expected: aether.ExpectStreamExists()})
				return err
			}, aether.ErrInvalidArgument},
			{"unknown mode in an entry", func() error {
				_, err := s.Commit(aether.CommitEntry{ActorID: "a", Expected: aether.Expected{Mode: -1}})
				return err
			}, aether.ErrInvalidArgument},
			{"nil event in an entry", func() error {
				_, err := s.Commit(aether.CommitEntry{ActorID: "a", Events: []*aether.Event{a2, nil}})
				return err
			}, aether.ErrInvalidEvent},
			{"reversed range", func() error {
				_, err := s.GetEventsRange("a", aether.FromVersion(5), aether.ToVersion(4))
				return err
			}, aether.ErrInvalidArgument},
			{"negative limit", func() error { _, err := s.GetEventsRange("a", aether.Limit(-1)); return err }, aether.ErrInvalidArgument},
			{"negative read_all limit", func() error { _, err := s.ReadAllFiltered(1, -1, aether.Filter{}); return err }, aether.ErrInvalidArgument},
			{"type not UTF-8", func() error {
				_, err := s.ReadAllFiltered(1, 10, aether.Filter{EventTypes: []string{"\xff"}})
				return err
			}, aether.ErrInvalidArgument},
		} {
			err := c.call()
			if !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
			var ae *aether.Error
			if err != nil && !errors.As(err, &ae) {
				t.Errorf("%s: %T is not an *aether.Error", c.name, err)
			}
		}
		if q := lastSequence(t, s); q != 1 {
			t.Fatalf("bad input wrote: last sequence %d", q)
		}
		if v := latestVersion(t, s, "a"); v != 1 {
			t.Fatalf("bad input wrote: version %d", v)
		}
	})
}

func TestGetEventsRange(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		for v := int64(1); v <= 20; v++ {
			mustSave(t, s, newEvent("a", v))
			mustSave(t, s, newEvent("ab", v))
		}
		read := func(opts ...aether.RangeOption) []int64 {
			t.Helper()
			events, err := s.GetEventsRange("a", opts...)
			if err != nil {
				t.Fatal(err)
			}
			return versionsOf(events)
		}
		for _, c := range []struct {
			opts []aether.RangeOption
			want []int64
		}{
			{[]aether.RangeOption{aether.FromVersion(5), aether.ToVersion(8)}, []int64{5, 6, 7, 8}},
			{[]aether.RangeOption{aether.FromVersion(5), aether.ToVersion(8), aether.Limit(2)}, []int64{5, 6}},
			{[]aether.RangeOption{aether.FromVersion(5), aether.ToVersion(8), aether.Backward()}, []int64{8, 7, 6, 5}},
			{[]aether.RangeOption{aether.FromVersion(5), aether.ToVersion(8), aether.Backward(), aether.Limit(3)}, []int64{8, 7, 6}},
			{[]aether.RangeOption{aether.Backward(), aether.Limit(1)}, []int64{20}},
			{[]aether.RangeOption{aether.FromVersion(19)}, []int64{19, 20}},
			{[]aether.RangeOption{aether.FromVersion(-5), aether.ToVersion(2)}, []int64{1, 2}},
			{[]aether.RangeOption{aether.FromVersion(21), aether.ToVersion(30)}, []int64{}},
			{[]aether.RangeOption{aether.FromVersion(7), aether.ToVersion(7), nil}, []int64{7}},
			{[]aether.RangeOption{aether.Limit(0)}, []int64{}},
		} {
			if got := read(c.opts...); !reflect.DeepEqual(got, c.want) {
				t.Errorf("range %d options: %v, want %v", len(c.opts), got, c.want)
			}
		}
		if got := read(); len(got) != 20 {
			t.Fatalf("no options: %d events", len(got))
		}
		last, err := s.LastEvent("a")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(last, newEvent("a", 20)) {
			t.Fatalf("LastEvent = %s", mustJSON(t, last))
		}
		none, err := s.GetEventsRange("nobody", aether.Backward(), aether.Limit(1))
		if err != nil || none == nil || len(none) != 0 {
			t.Fatalf("unknown actor: %v, %v", none, err)
		}
		if _, err := s.LastEvent("nobody"); !errors.Is(err, aether.ErrNotFound) {
			t.Fatalf("LastEvent(nobody) = %v, want ErrNotFound", err)
		}
	})
}

func TestReadAllFiltered(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		var placed []uint64
		for v := int64(1); v <= 10; v++ {
			typ := "Other"
			if v%3 == 0 {
				typ = "Placed"
				placed = append(placed, uint64(2*v-1), uint64(2*v))
			}
			mustSave(t, s, typedEv("o-"+itoa(v), typ, "order-1", v))
			mustSave(t, s, typedEv("u-"+itoa(v), typ, "user-1", v))
		}
		seqs := func(from uint64, limit int, f aether.Filter) []uint64 {
			t.Helper()
			events, err := s.ReadAllFiltered(from, limit, f)
			if err != nil {
				t.Fatal(err)
			}
			out := []uint64{}
			for _, e := range events {
				out = append(out, e.Sequence)
			}
			return out
		}
		types := aether.Filter{EventTypes: []string{"Placed"}}
		for _, c := range []struct {
			from  uint64
			limit int
			f     aether.Filter
			want  []uint64
		}{
			{1, 100, types, placed},
			{1, 3, types, placed[:3]},
			{7, 100, types, placed[2:]},
			{1, 100, aether.Filter{ActorPrefix: "order-"}, []uint64{1, 3, 5, 7, 9, 11, 13, 15, 17, 19}},
			{1, 100, aether.Filter{EventTypes: []string{"Placed", "Missing"}, ActorPrefix: "user"}, []uint64{6, 12, 18}},
			{1, 100, aether.Filter{EventTypes: []string{"Missing"}}, []uint64{}},
			{1, 0, aether.Filter{}, []uint64{}},
			{math.MaxUint64, 10, aether.Filter{}, []uint64{}},
		} {
			if got := seqs(c.from, c.limit, c.f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("ReadAllFiltered(%d, %d, %+v) = %v, want %v", c.from, c.limit, c.f, got, c.want)
			}
		}
		if got := seqs(1, 100, aether.Filter{}); len(got) != 20 {
			t.Fatalf("zero filter: %d events", len(got))
		}
		// The same events as ReadAll.
		f, err := s.ReadAllFiltered(1, 1, aether.Filter{EventTypes: []string{"Placed"}, ActorPrefix: "user"})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := s.ReadAll(6, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, plain) {
			t.Fatalf("filtered %s, ReadAll %s", mustJSON(t, f), mustJSON(t, plain))
		}
	})
}

func snapshotAt(actor string, v int64) *aether.ActorSnapshot {
	return &aether.ActorSnapshot{
		ActorID:   actor,
		Version:   v,
		State:     map[string]interface{}{"v": float64(v)},
		Timestamp: baseTime,
	}
}

func TestGetSnapshot(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		if _, err := s.GetSnapshot("a", 100); !errors.Is(err, aether.ErrNotFound) {
			t.Fatalf("no snapshot: %v", err)
		}
		for v := int64(2); v <= 8; v += 2 {
			if err := s.SaveSnapshot(snapshotAt("a", v)); err != nil {
				t.Fatal(err)
			}
		}
		// The default retention keeps the newest three.
		for _, c := range []struct{ at, want int64 }{{math.MaxInt64, 8}, {8, 8}, {7, 6}, {5, 4}, {4, 4}, {3, 0}, {-1, 0}} {
			got, err := s.GetSnapshot("a", c.at)
			if c.want == 0 {
				if got != nil || !errors.Is(err, aether.ErrNotFound) {
					t.Errorf("GetSnapshot(a, %d) = %+v, %v; want ErrNotFound", c.at, got, err)
				}
				continue
			}
			if err != nil || !reflect.DeepEqual(got, snapshotAt("a", c.want)) {
				t.Errorf("GetSnapshot(a, %d) = %+v, %v; want version %d", c.at, got, err, c.want)
			}
		}
		if err := s.SaveSnapshot(snapshotAt("a", 5)); !errors.Is(err, aether.ErrStaleSnapshot) {
			t.Fatalf("stale snapshot: %v", err)
		}
		if got, err := s.GetSnapshot("a", 5); err != nil || got.Version != 4 {
			t.Fatalf("after a stale save: %+v, %v", got, err)
		}
	})
}

func TestWithSnapshotRetention(t *testing.T) {
	for _, keep := range []int{1, 5} {
		s := openSledAt(t, t.TempDir(), aether.WithSnapshotRetention(keep))
		for v := int64(2); v <= 8; v += 2 {
			if err := s.SaveSnapshot(snapshotAt("a", v)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetSnapshot("a", 3)
		switch keep {
		case 1:
			if !errors.Is(err, aether.ErrNotFound) {
				t.Fatalf("retention 1: GetSnapshot(a, 3) = %+v, %v", got, err)
			}
			if _, err := s.GetSnapshot("a", 7); !errors.Is(err, aether.ErrNotFound) {
				t.Fatalf("retention 1 kept version 6: %v", err)
			}
		case 5:
			if err != nil || got.Version != 2 {
				t.Fatalf("retention 5: GetSnapshot(a, 3) = %+v, %v", got, err)
			}
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := aether.OpenSled(t.TempDir(), aether.WithSnapshotRetention(n)); !errors.Is(err, aether.ErrInvalidArgument) {
			t.Errorf("WithSnapshotRetention(%d): %v", n, err)
		}
	}
	if _, err := aether.OpenMemory(aether.WithSnapshotRetention(2)); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("WithSnapshotRetention on a memory store: %v", err)
	}
}

// The pure-Go fake has no appends: every new operation says so, and the Store stays
// usable (its read lock released).
func TestAppendsOnTheFake(t *testing.T) {
	s := openFake(t)
	calls := map[string]func() error{
		"Append": func() error { _, err := s.Append("a", aether.ExpectAny(), ev("a-1", "a", 1)); return err },
		"Commit": func() error {
			_, err := s.Commit(aether.CommitEntry{ActorID: "a", Expected: aether.ExpectNoStream()})
			return err
		},
		"GetEventsRange":  func() error { _, err := s.GetEventsRange("a"); return err },
		"ReadAllFiltered": func() error { _, err := s.ReadAllFiltered(1, 1, aether.Filter{}); return err },
		"GetSnapshot":     func() error { _, err := s.GetSnapshot("a", 1); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, aether.ErrUnsupported) {
			t.Errorf("%s on the fake: %v, want ErrUnsupported", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, aether.ErrStoreClosed) {
			t.Errorf("%s after Close: %v, want ErrStoreClosed", name, err)
		}
	}
}

// Optimistic concurrency with ExpectExact from many goroutines: each version is won by
// exactly one writer, the others get a conflict naming the version that beat them.
func TestAppendExactRace(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		const writers, rounds = 4, 25
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			w := w
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds; i++ {
					v, err := s.GetLatestVersion("shared")
					if err != nil {
						t.Error(err)
						return
					}
					e := ev(fmt.Sprintf("w%d-%d", w, i), "shared", 0)
					_, err = s.Append("shared", aether.ExpectExact(v), e)
					var c *aether.CommitConflictError
					switch {
					case err == nil:
						wins.Add(1)
					case errors.As(err, &c) && len(c.Conflicts) == 1 && c.Conflicts[0].CurrentVersion > v:
						conflicts.Add(1)
					default:
						t.Errorf("Append: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if wins.Load()+conflicts.Load() != writers*rounds {
			t.Fatalf("%d wins + %d conflicts", wins.Load(), conflicts.Load())
		}
		if v := latestVersion(t, s, "shared"); v != wins.Load() {
			t.Fatalf("latest version %d, %d wins", v, wins.Load())
		}
		events, err := s.GetEvents("shared", 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range events {
			if e.Version != int64(i+1) {
				t.Fatalf("event %d has version %d", i, e.Version)
			}
		}
	})
}

// Commits across two actors from many goroutines, each conditional on both actors'
// versions, while readers watch: every commit is all or nothing, so the two actors
// always have the same version and the store-wide log holds their events in pairs.
func TestConcurrentCommitsAreAllOrNothing(t *testing.T) {
	eachLibraryBackend(t, func(t *testing.T, s *aether.Store) {
		const writers, rounds = 4, 20
		var wins atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var readers sync.WaitGroup
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				all, err := s.ReadAllFiltered(1, 1<<20, aether.Filter{ActorPrefix: "pair-"})
				if err != nil {
					t.Error(err)
					return
				}
				if len(all)%2 != 0 {
					t.Errorf("ReadAllFiltered saw %d events: half a commit", len(all))
					return
				}
				for i := 0; i+1 < len(all); i += 2 {
					x, y := all[i], all[i+1]
					if x.Event.ActorID != "pair-x" || y.Event.ActorID != "pair-y" || y.Sequence != x.Sequence+1 || x.Event.Version != y.Event.Version {
						t.Errorf("not a pair: %d %s v%d, %d %s v%d", x.Sequence, x.Event.ActorID, x.Event.Version, y.Sequence, y.Event.ActorID, y.Event.Version)
						return
					}
				}
			}
		}()
		for w := 0; w < writers; w++ {
			w := w
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds; i++ {
					v, err := s.GetLatestVersion("pair-x")
					if err != nil {
						t.Error(err)
						return
					}
					id := fmt.Sprintf("w%d-%d", w, i)
					_, err = s.Commit(
						aether.CommitEntry{ActorID: "pair-x", Expected: aether.ExpectExact(v), Events: []*aether.Event{ev(id+"-x", "pair-x", 0)}},
						aether.CommitEntry{ActorID: "pair-y", Expected: aether.ExpectExact(v), Events: []*aether.Event{ev(id+"-y", "pair-y", 0)}},
					)
					if err == nil {
						wins.Add(1)
						continue
					}
					var c *aether.CommitConflictError
					if !errors.As(err, &c) || len(c.Conflicts) != 2 {
						t.Errorf("Commit: %v (want both conditions failed)", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		x, y := latestVersion(t, s, "pair-x"), latestVersion(t, s, "pair-y")
		if x != wins.Load() || y != x {
			t.Fatalf("versions x %d, y %d after %d winning commits", x, y, wins.Load())
		}
		if q := lastSequence(t, s); q != uint64(2*wins.Load()) {
			t.Fatalf("last sequence %d after %d winning commits", q, wins.Load())
		}
	})
}
