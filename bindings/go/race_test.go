package aether_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// 16 goroutines race to save every version of the same actors: for each (actor, version)
// exactly one save wins, every loser gets a *VersionConflictError naming the actor, its
// attempt and a current version >= the attempt, and the stored history is exactly the
// winners' events.
func TestConcurrentSavesHaveOneWinnerPerVersion(t *testing.T) {
	const (
		writers  = 16
		actors   = 4
		versions = 40
	)
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		type key struct {
			actor   string
			version int64
		}
		var mu sync.Mutex
		winners := map[key][]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				for v := int64(1); v <= versions; v++ {
					for a := 0; a < actors; a++ {
						actor := fmt.Sprintf("race-%d", a)
						e := newEvent(actor, v)
						e.ID = fmt.Sprintf("w%d-%s-v%d", w, actor, v)
						err := s.SaveEvent(e)
						var conflict *aether.VersionConflictError
						switch {
						case err == nil:
							mu.Lock()
							winners[key{actor, v}] = append(winners[key{actor, v}], w)
							mu.Unlock()
						case errors.As(err, &conflict):
							if conflict.ActorID != actor || conflict.AttemptedVersion != v || conflict.CurrentVersion < v {
								errs <- fmt.Errorf("writer %d: bad conflict %+v for %s v%d", w, conflict, actor, v)
								return
							}
						default:
							errs <- fmt.Errorf("writer %d: SaveEvent(%s v%d): %v", w, actor, v, err)
							return
						}
					}
				}
			}(w)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for a := 0; a < actors; a++ {
			actor := fmt.Sprintf("race-%d", a)
			events, err := s.GetEvents(actor, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != versions {
				t.Fatalf("%s has %d events, want %d", actor, len(events), versions)
			}
			for i, e := range events {
				v := int64(i + 1)
				w := winners[key{actor, v}]
				if len(w) != 1 {
					t.Fatalf("%s v%d had %d winners: %v", actor, v, len(w), w)
				}
				if want := fmt.Sprintf("w%d-%s-v%d", w[0], actor, v); e.Version != v || e.ID != want {
					t.Errorf("%s event %d = %s v%d, want %s v%d", actor, i, e.ID, e.Version, want, v)
				}
			}
		}
		m, err := s.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		total := uint64(writers * actors * versions)
		if m.EventsSaved != actors*versions || m.EventsSaved+m.VersionConflicts != total {
			t.Errorf("metrics = %+v; want %d saved and %d conflicts", m, actors*versions, total-actors*versions)
		}
	})
}

// Concurrent readers, pollers and Close: nothing crashes, every call after Close is
// ErrStoreClosed, and the race detector sees no data race in the binding.
func TestConcurrentUseWithClose(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				actor := fmt.Sprintf("cc-%d", g)
				for v := int64(1); ; v++ {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					switch v % 4 {
					case 0:
						err = s.SaveEvent(newEvent(actor, v))
					case 1:
						_, err = s.GetEvents(actor, 0)
					case 2:
						_, err = s.PollEventStored(0)
					case 3:
						_, err = s.Metrics()
					}
					if err != nil && !errors.Is(err, aether.ErrStoreClosed) {
						t.Errorf("goroutine %d: %v", g, err)
						return
					}
				}
			}(g)
		}
		for i := 1; i <= 20; i++ {
			_ = s.SaveEvent(newEvent("main", int64(i)))
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		close(stop)
		wg.Wait()
	})
}

// Optimistic writers, readers, snapshotters and EventStored consumers all at once, 20
// goroutines on 6 actors: every save has exactly one winner per (actor, version) and
// losers get a *VersionConflictError; readers only ever see gapless, growing histories;
// snapshots only move forward; and every stored event's notification reaches exactly one
// consumer, each consumer seeing commit order.
func TestConcurrentReadersWritersAndConsumers(t *testing.T) {
	const (
		writers      = 8
		winsEach     = 20 // successful saves per writer (a batch of k counts k)
		actors       = 6
		readers      = 4
		snapshotters = 2
		chanConsumer = 3
		pollConsumer = 3
	)
	actorName := func(a int) string { return fmt.Sprintf("occ-%d", a) }
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		var (
			wg        sync.WaitGroup
			writersWG sync.WaitGroup
			failures  = make(chan error, 64)
			conflicts atomic.Int64
			saved     atomic.Int64
			start     = make(chan struct{})
			writing   = make(chan struct{}) // closed when every writer is done
		)
		fail := func(format string, args ...interface{}) {
			select {
			case failures <- fmt.Errorf(format, args...):
			default:
			}
		}
		done := func() bool {
			select {
			case <-writing:
				return true
			default:
				return false
			}
		}

		for w := 0; w < writers; w++ {
			writersWG.Add(1)
			go func(w int) {
				defer writersWG.Done()
				<-start
				for wins, i := 0, 0; wins < winsEach; i++ {
					actor := actorName((w + i) % actors)
					latest, err := s.GetLatestVersion(actor)
					if err != nil {
						fail("writer %d: GetLatestVersion: %v", w, err)
						return
					}
					k := 1 + i%3 // a single save, or a batch of 2 or 3
					if k > winsEach-wins {
						k = winsEach - wins
					}
					batch := make([]*aether.Event, k)
					for j := range batch {
						batch[j] = newEvent(actor, latest+1+int64(j))
						batch[j].ID = fmt.Sprintf("w%d-%s-v%d", w, actor, latest+1+int64(j))
					}
					if k == 1 {
						err = s.SaveEvent(batch[0])
					} else {
						err = s.SaveEvents(batch)
					}
					var conflict *aether.VersionConflictError
					switch {
					case err == nil:
						wins += k
						saved.Add(int64(k))
					case errors.As(err, &conflict) && errors.Is(err, aether.ErrVersionConflict):
						if conflict.ActorID != actor || conflict.AttemptedVersion != latest+1 || conflict.CurrentVersion <= latest {
							fail("writer %d: conflict %+v after reading %s at v%d", w, *conflict, actor, latest)
							return
						}
						conflicts.Add(1)
					default:
						fail("writer %d: save %s v%d (%d events): %v", w, actor, latest+1, k, err)
						return
					}
				}
			}(w)
		}

		for r := 0; r < readers; r++ {
			wg.Add(1)
			go func(r int) {
				defer wg.Done()
				<-start
				seen := make([]int64, actors)
				var lastSeq uint64
				for i := 0; !done(); i++ {
					a := (r + i) % actors
					actor := actorName(a)
					from := int64(i % 4)
					events, err := s.GetEvents(actor, from)
					if err != nil {
						fail("reader %d: GetEvents: %v", r, err)
						return
					}
					first := from
					if first < 1 {
						first = 1
					}
					for j, e := range events {
						if e.ActorID != actor || e.Version != first+int64(j) || !strings.HasSuffix(e.ID, fmt.Sprintf("-%s-v%d", actor, e.Version)) {
							fail("reader %d: %s from %d: event %d is %s v%d (%s)", r, actor, from, j, e.ActorID, e.Version, e.ID)
							return
						}
					}
					latest, err := s.GetLatestVersion(actor)
					if err != nil || latest < seen[a] || (len(events) > 0 && latest < events[len(events)-1].Version) {
						fail("reader %d: GetLatestVersion(%s) = %d, %v after seeing %d", r, actor, latest, err, seen[a])
						return
					}
					seen[a] = latest
					if res, err := s.GetEventsWithErrors(actor, latest); err != nil || res.HasErrors() ||
						(latest > 0 && (len(res.Events) == 0 || res.Events[0].Version != latest)) {
						fail("reader %d: GetEventsWithErrors(%s, %d) = %+v, %v", r, actor, latest, res, err)
						return
					}
					seq, err := s.LastSequence()
					if err != nil || seq < lastSeq {
						fail("reader %d: LastSequence = %d, %v after %d", r, seq, err, lastSeq)
						return
					}
					lastSeq = seq
					page, err := s.ReadAll(seq/2, 20)
					if err != nil {
						fail("reader %d: ReadAll: %v", r, err)
						return
					}
					for j, e := range page {
						if want := max(seq/2, 1) + uint64(j); e.Sequence != want || e.Event == nil {
							fail("reader %d: ReadAll(%d) item %d has sequence %d", r, seq/2, j, e.Sequence)
							return
						}
					}
				}
			}(r)
		}

		for sn := 0; sn < snapshotters; sn++ {
			wg.Add(1)
			go func(sn int) {
				defer wg.Done()
				<-start
				seen := make([]int64, actors)
				for i := 0; !done(); i++ {
					a := (sn + i) % actors
					actor := actorName(a)
					latest, err := s.GetLatestVersion(actor)
					if err != nil {
						fail("snapshotter %d: %v", sn, err)
						return
					}
					err = s.SaveSnapshot(&aether.ActorSnapshot{ActorID: actor, Version: latest,
						State: map[string]interface{}{"by": float64(sn)}, Timestamp: baseTime})
					if err != nil && !errors.Is(err, aether.ErrStaleSnapshot) {
						fail("snapshotter %d: SaveSnapshot(%s v%d): %v", sn, actor, latest, err)
						return
					}
					snap, err := s.GetLatestSnapshot(actor)
					if err != nil || snap.ActorID != actor || snap.Version < seen[a] || snap.Version < latest && err == nil && errors.Is(err, aether.ErrStaleSnapshot) {
						fail("snapshotter %d: GetLatestSnapshot(%s) = %+v, %v after seeing v%d", sn, actor, snap, err, seen[a])
						return
					}
					seen[a] = snap.Version
				}
			}(sn)
		}

		// Consumers: each keeps what it received, in order.
		received := make([][]aether.EventStored, chanConsumer+pollConsumer)
		var collected atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for c := 0; c < chanConsumer; c++ {
			ch := s.EventStoredChan(ctx)
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for n := range ch {
					received[c] = append(received[c], n)
					collected.Add(1)
				}
			}(c)
		}
		for p := 0; p < pollConsumer; p++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for ctx.Err() == nil {
					n, err := s.PollEventStored(20 * time.Millisecond)
					if err != nil {
						fail("poller %d: %v", c, err)
						return
					}
					if n != nil {
						received[c] = append(received[c], *n)
						collected.Add(1)
					}
				}
			}(chanConsumer + p)
		}

		close(start)
		writersWG.Wait()
		close(writing)
		total := int64(writers * winsEach)
		deadline := time.Now().Add(20 * time.Second)
		for collected.Load() < total && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Error(err)
		}
		if t.Failed() {
			return
		}

		if saved.Load() != total {
			t.Fatalf("%d events saved, want %d", saved.Load(), total)
		}
		all, err := s.ReadAll(0, int(total)+1)
		if err != nil || int64(len(all)) != total {
			t.Fatalf("ReadAll = %d events, %v; want %d", len(all), err, total)
		}
		// Every (actor, version) once: versions 1..latest per actor, each with one winner's ID.
		var sum int64
		for a := 0; a < actors; a++ {
			actor := actorName(a)
			events, err := s.GetEvents(actor, 0)
			if err != nil {
				t.Fatal(err)
			}
			for j, e := range events {
				if e.Version != int64(j+1) {
					t.Fatalf("%s: event %d has version %d", actor, j, e.Version)
				}
			}
			sum += int64(len(events))
		}
		if sum != total {
			t.Fatalf("actors hold %d events, want %d", sum, total)
		}
		// Every notification reached exactly one consumer, each consumer in commit order.
		got := make([]int, total+1)
		for c, ns := range received {
			for i, n := range ns {
				if i > 0 && n.Sequence <= ns[i-1].Sequence {
					t.Fatalf("consumer %d: sequence %d after %d", c, n.Sequence, ns[i-1].Sequence)
				}
				if n.Sequence < 1 || n.Sequence > uint64(total) {
					t.Fatalf("consumer %d: sequence %d out of range", c, n.Sequence)
				}
				e := all[n.Sequence-1]
				if e.Sequence != n.Sequence || e.Event.ID != n.EventID || e.Event.ActorID != n.ActorID || e.Event.Version != n.Version {
					t.Fatalf("notification %+v does not match the stored event %+v", n, e)
				}
				got[n.Sequence]++
			}
		}
		for seq := 1; seq <= int(total); seq++ {
			if got[seq] != 1 {
				t.Fatalf("the notification of sequence %d was received %d times", seq, got[seq])
			}
		}
		m, err := s.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if m.EventsSaved != uint64(total) || m.VersionConflicts != uint64(conflicts.Load()) ||
			m.EventStoredPublished != uint64(total) || m.EventStoredDropped != 0 {
			t.Errorf("metrics = %+v; want %d saved, %d conflicts, nothing dropped", m, total, conflicts.Load())
		}
	})
}

// Close racing with everything: 16 goroutines calling every method, 4 EventStoredChan
// consumers and 3 goroutines closing at once, over several rounds with Close landing at
// different moments. Every call returns its normal result or an error matching
// ErrStoreClosed (and, once a goroutine has seen ErrStoreClosed, only that); nothing
// panics or hangs; every channel closes; every Close returns the same result; no
// goroutine is left behind.
func TestCloseRacesWithInFlightCalls(t *testing.T) {
	const (
		callers   = 16
		consumers = 4
		closers   = 3
		rounds    = 4
	)
	for _, b := range backends {
		b := b
		t.Run(b.name, func(t *testing.T) {
			baseline := runtimeGoroutines()
			for round := 0; round < rounds; round++ {
				s := b.open(t)
				for v := int64(1); v <= 5; v++ {
					mustSave(t, s, newEvent("close-race", v))
				}
				closeRace(t, s, callers, consumers, closers, time.Duration(round)*2*time.Millisecond)
				if t.Failed() {
					return
				}
			}
			waitGoroutines(t, baseline)
		})
	}
}

func closeRace(t *testing.T, s *aether.Store, callers, consumers, closers int, closeAfter time.Duration) {
	t.Helper()
	failures := make(chan error, callers+consumers+closers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			actor := fmt.Sprintf("close-race-%d", g%4)
			closed := false
			for i := 0; ; i++ {
				name, err := callOne(s, actor, g+i)
				switch {
				case errors.Is(err, aether.ErrStoreClosed):
					var e *aether.Error
					if !errors.As(err, &e) || e.Code != aether.CodeStoreClosed {
						failures <- fmt.Errorf("goroutine %d: %s: %v is not an *Error with CodeStoreClosed", g, name, err)
						return
					}
					if closed && i > 40 {
						return // closed for a while: every kind of call has been tried
					}
					closed = true
				case closed:
					failures <- fmt.Errorf("goroutine %d: %s after ErrStoreClosed = %v", g, name, err)
					return
				case err == nil,
					errors.Is(err, aether.ErrVersionConflict),
					errors.Is(err, aether.ErrStaleSnapshot),
					errors.Is(err, aether.ErrNotFound):
				default:
					failures <- fmt.Errorf("goroutine %d: %s: %v", g, name, err)
					return
				}
			}
		}(g)
	}
	channels := make([]<-chan aether.EventStored, consumers)
	for c := range channels {
		channels[c] = s.EventStoredChan(context.Background())
		wg.Add(1)
		go func(ch <-chan aether.EventStored) {
			defer wg.Done()
			for range ch { // ends when Close closes the channel
			}
		}(channels[c])
	}
	closeErrs := make([]error, closers)
	for c := 0; c < closers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			<-start
			time.Sleep(closeAfter)
			closeErrs[c] = s.Close()
		}(c)
	}
	close(start)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("calls racing with Close did not finish:\n%s", buf[:runtime.Stack(buf, true)])
	}
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	for c, err := range closeErrs {
		if err != closeErrs[0] {
			t.Errorf("Close %d = %v, Close 0 = %v", c, err, closeErrs[0])
		}
	}
	if err := s.Close(); err != closeErrs[0] {
		t.Errorf("Close after the race = %v, want %v", err, closeErrs[0])
	}
	// Late comers: a new channel closes at once, every call is ErrStoreClosed.
	drainUntilClosed(t, s.EventStoredChan(context.Background()))
	for i := 0; i < callKinds; i++ {
		if name, err := callOne(s, "late", i); !errors.Is(err, aether.ErrStoreClosed) {
			t.Errorf("%s after Close = %v", name, err)
		}
	}
}

const callKinds = 13

// callOne makes call number i%callKinds on s.
func callOne(s *aether.Store, actor string, i int) (string, error) {
	switch i % callKinds {
	case 0:
		v, err := s.GetLatestVersion(actor)
		if err != nil {
			return "GetLatestVersion", err
		}
		return "SaveEvent", s.SaveEvent(newEvent(actor, v+1))
	case 1:
		v, err := s.GetLatestVersion(actor)
		if err != nil {
			return "GetLatestVersion", err
		}
		return "SaveEvents", s.SaveEvents([]*aether.Event{newEvent(actor, v+1), newEvent(actor, v+2)})
	case 2:
		_, err := s.GetEvents(actor, 0)
		return "GetEvents", err
	case 3:
		_, err := s.GetEventsWithErrors(actor, 1)
		return "GetEventsWithErrors", err
	case 4:
		return "SaveSnapshot", s.SaveSnapshot(&aether.ActorSnapshot{ActorID: actor, Version: int64(i), Timestamp: baseTime})
	case 5:
		_, err := s.GetLatestSnapshot(actor)
		return "GetLatestSnapshot", err
	case 6:
		_, err := s.ReadAll(0, 10)
		return "ReadAll", err
	case 7:
		_, err := s.LastSequence()
		return "LastSequence", err
	case 8:
		_, err := s.PollEventStored(0)
		return "PollEventStored(0)", err
	case 9:
		_, err := s.PollEventStored(5 * time.Millisecond)
		return "PollEventStored(5ms)", err
	case 10:
		_, err := s.Metrics()
		return "Metrics", err
	case 11:
		return "Flush", s.Flush()
	default:
		_, err := s.GetLatestVersion(actor)
		return "GetLatestVersion", err
	}
}

// Polls that time out while the GC runs: a failed poll must hand Go no uninitialised
// pointer fields (the GC would find garbage "pointers" into its heap and abort with
// "found bad pointer in Go heap"). 16 pollers, 2 goroutines churning garbage.
func TestPollTimeoutsUnderGC(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					timeout := time.Duration(i%2) * time.Millisecond
					if n, err := s.PollEventStored(timeout); n != nil || err != nil {
						t.Errorf("poller %d: PollEventStored on an idle store = %+v, %v", g, n, err)
						return
					}
				}
			}(g)
		}
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var keep [][]byte
				for {
					select {
					case <-stop:
						return
					default:
					}
					keep = append(keep, make([]byte, 64))
					if len(keep) == 4096 {
						keep = nil
						runtime.GC()
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
	})
}
