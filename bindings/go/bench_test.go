package aether_test

import (
	"fmt"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// The workload of the Rust benches (benches/src/lib.rs, make_event): ~300-byte order
// events round-robin over 1,000 actors for saves; one actor with 1,000 events for replay.
// Compare with `cargo bench -p aether-benches --bench core -- 'save/|replay/get_events/1k'`.

const benchActors = 1000

func benchEvent(actor string, version int64, salt uint64) *aether.Event {
	x := salt*0x9E3779B97F4A7C15 ^ uint64(version)
	next := func(n uint64) uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x % n
	}
	qty := 1 + next(9)
	cents := 100 + next(90000)
	return &aether.Event{
		ID:        fmt.Sprintf("evt-%010d", salt),
		EventType: "OrderPlaced",
		ActorID:   actor,
		Version:   version,
		Data: map[string]interface{}{
			"customer": map[string]interface{}{"id": fmt.Sprintf("c-%05d", next(100000)), "tier": "gold"},
			"items": []interface{}{map[string]interface{}{
				"sku": fmt.Sprintf("SKU-%04d", next(10000)), "qty": float64(qty), "price": float64(cents) / 100,
			}},
			"ship":  map[string]interface{}{"method": "express", "addr": map[string]interface{}{"city": "Lyon", "zip": "69001"}},
			"total": float64(qty*cents) / 100,
		},
		Timestamp: time.Date(2024, 3, 15, 9, 26, 53, 123456789, time.UTC),
	}
}

// roundRobin is one event per actor, re-saved with the next version each round.
type roundRobin struct {
	events []*aether.Event
	next   int
}

func newRoundRobin() *roundRobin {
	r := &roundRobin{}
	for a := 0; a < benchActors; a++ {
		r.events = append(r.events, benchEvent(fmt.Sprintf("order-%06d", a), 1, uint64(a)))
	}
	return r
}

func (r *roundRobin) take() *aether.Event {
	if r.next == len(r.events) {
		for _, e := range r.events {
			e.Version++
		}
		r.next = 0
	}
	e := r.events[r.next]
	r.next++
	return e
}

func reportEventsPerSec(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkSave(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		const reopenEvery = 200_000 // bound the memory a long run holds, as the Rust bench does
		store, err := aether.OpenMemory()
		if err != nil {
			b.Fatal(err)
		}
		rr := newRoundRobin()
		held := 0
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if held == reopenEvery {
				b.StopTimer()
				store.Close()
				store, _ = aether.OpenMemory()
				rr = newRoundRobin()
				held = 0
				b.StartTimer()
			}
			if err := store.SaveEvent(rr.take()); err != nil {
				b.Fatal(err)
			}
			held++
		}
		b.StopTimer()
		reportEventsPerSec(b, b.N)
		store.Close()
	})
	for _, mode := range []struct {
		name string
		d    aether.Durability
	}{{"sled_buffered", aether.Buffered}, {"sled_durable_1_writer", aether.Durable}} {
		b.Run(mode.name, func(b *testing.B) {
			store, err := aether.OpenSled(b.TempDir(), aether.WithDurability(mode.d))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			rr := newRoundRobin()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := store.SaveEvent(rr.take()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportEventsPerSec(b, b.N)
		})
	}
}

func BenchmarkReplay1k(b *testing.B) {
	const count = 1000
	for _, backend := range []string{"memory", "sled"} {
		b.Run(backend, func(b *testing.B) {
			var store *aether.Store
			var err error
			if backend == "memory" {
				store, err = aether.OpenMemory()
			} else {
				store, err = aether.OpenSled(b.TempDir(), aether.WithDurability(aether.Buffered))
			}
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			batch := make([]*aether.Event, 0, count)
			for v := 1; v <= count; v++ {
				batch = append(batch, benchEvent("replay-1k", int64(v), uint64(v)))
			}
			if err := store.SaveEvents(batch); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				events, err := store.GetEvents("replay-1k", 0)
				if err != nil {
					b.Fatal(err)
				}
				if len(events) != count {
					b.Fatalf("got %d events", len(events))
				}
			}
			b.StopTimer()
			reportEventsPerSec(b, b.N*count)
		})
	}
}

// BenchmarkSaveBatch100 saves one actor's 100 events per op with SaveEvents (Rust:
// batch_save/*), cycling over 100 actors.
func BenchmarkSaveBatch100(b *testing.B) {
	const batchLen, actors = 100, 100
	for _, backend := range []struct {
		name string
		open func(b *testing.B) (*aether.Store, error)
	}{
		{"memory", func(*testing.B) (*aether.Store, error) { return aether.OpenMemory() }},
		{"sled_buffered", func(b *testing.B) (*aether.Store, error) {
			return aether.OpenSled(b.TempDir(), aether.WithDurability(aether.Buffered))
		}},
		{"sled_durable", func(b *testing.B) (*aether.Store, error) { return aether.OpenSled(b.TempDir()) }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			store, err := backend.open(b)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { store.Close() }()
			batches := make([][]*aether.Event, actors)
			for a := range batches {
				for v := 1; v <= batchLen; v++ {
					batches[a] = append(batches[a], benchEvent(fmt.Sprintf("batch-%04d", a), int64(v), uint64(a*batchLen+v)))
				}
			}
			held := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a := i % actors
				if i > 0 && a == 0 { // next round: every actor's versions move on
					b.StopTimer()
					if backend.name == "memory" && held >= 200_000 {
						store.Close()
						store, _ = aether.OpenMemory()
						for _, batch := range batches {
							for v, e := range batch {
								e.Version = int64(v + 1)
							}
						}
						held = 0
					} else {
						for _, batch := range batches {
							for _, e := range batch {
								e.Version += batchLen
							}
						}
					}
					b.StartTimer()
				}
				if err := store.SaveEvents(batches[a]); err != nil {
					b.Fatal(err)
				}
				held += batchLen
			}
			b.StopTimer()
			reportEventsPerSec(b, b.N*batchLen)
		})
	}
}
