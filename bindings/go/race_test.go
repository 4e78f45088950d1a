package aether_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-go"
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
