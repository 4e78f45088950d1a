package aether_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// Code written against the seed's EventStore interface runs unchanged: only the
// construction of the store differs.
func Example() {
	store, err := aether.OpenMemory() // or aether.OpenSled(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	var es aether.EventStore = store
	placeOrder(es, "order-1", 42)
	placeOrder(es, "order-1", 58)

	events, _ := es.GetEvents("order-1", 0)
	for _, e := range events {
		fmt.Println(e.Version, e.EventType, e.Data["total"])
	}
	// Output:
	// 1 OrderPlaced 42
	// 2 OrderPlaced 58
}

// placeOrder is seed-style code: read the latest version, save the next one.
func placeOrder(es aether.EventStore, orderID string, total float64) {
	latest, err := es.GetLatestVersion(orderID)
	if err != nil {
		log.Fatal(err)
	}
	e := &aether.Event{
		ID:        fmt.Sprintf("%s-%d", orderID, latest+1),
		EventType: "OrderPlaced",
		ActorID:   orderID,
		Version:   latest + 1,
		Data:      map[string]interface{}{"total": total},
		Timestamp: time.Date(2024, 3, 15, 9, 0, 0, 0, time.UTC),
	}
	if err := es.SaveEvent(e); err != nil {
		log.Fatal(err)
	}
}

// A persistent store in a directory; durable by default, Buffered trades the last
// half second of saves on a crash for speed.
func ExampleOpenSled() {
	dir, err := os.MkdirTemp("", "aether-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := aether.OpenSled(dir, aether.WithDurability(aether.Durable))
	if err != nil {
		log.Fatal(err)
	}
	e := &aether.Event{ID: "e1", EventType: "Opened", ActorID: "account-7", Version: 1, Timestamp: time.Now()}
	if err := store.SaveEvent(e); err != nil {
		log.Fatal(err)
	}
	store.Close()

	reopened, err := aether.OpenSled(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer reopened.Close()
	v, _ := reopened.GetLatestVersion("account-7")
	fmt.Println("latest version after reopening:", v)
	// Output: latest version after reopening: 1
}

// Optimistic concurrency: a save whose version is not above the actor's latest fails
// with a *VersionConflictError that matches ErrVersionConflict.
func ExampleVersionConflictError() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	first := &aether.Event{ID: "a", EventType: "Created", ActorID: "doc-1", Version: 1, Timestamp: time.Now()}
	_ = store.SaveEvent(first)

	stale := &aether.Event{ID: "b", EventType: "Edited", ActorID: "doc-1", Version: 1, Timestamp: time.Now()}
	err := store.SaveEvent(stale)
	fmt.Println(errors.Is(err, aether.ErrVersionConflict))
	var conflict *aether.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println("current version:", conflict.CurrentVersion)
		stale.Version = conflict.CurrentVersion + 1 // reload and retry
		fmt.Println("retry:", store.SaveEvent(stale))
	}
	fmt.Println(err)
	// Output:
	// true
	// current version: 1
	// retry: <nil>
	// version conflict: actor "doc-1" has version 1, cannot save version 1
}

// Replay with damaged records reported beside the good events instead of failing.
func ExampleStore_GetEventsWithErrors() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	for v := int64(1); v <= 3; v++ {
		_ = store.SaveEvent(&aether.Event{ID: fmt.Sprint(v), EventType: "Tick", ActorID: "clock", Version: v, Timestamp: time.Now()})
	}
	result, err := store.GetEventsWithErrors("clock", 2)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range result.Events {
		fmt.Println("version", e.Version)
	}
	for _, re := range result.Errors {
		fmt.Println("damaged record at sequence", re.SequenceNumber, errors.Is(re.Err, aether.ErrCorrupt))
	}
	fmt.Println("has errors:", result.HasErrors())
	// Output:
	// version 2
	// version 3
	// has errors: false
}

// Every successful save publishes one EventStored notification.
func ExampleStore_PollEventStored() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	_ = store.SaveEvent(&aether.Event{ID: "e1", EventType: "Created", ActorID: "cart-1", Version: 1, Timestamp: time.Now()})

	n, err := store.PollEventStored(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n.EventID, n.ActorID, n.Version, n.Sequence)

	n, err = store.PollEventStored(10 * time.Millisecond)
	fmt.Println(n, err) // nothing more arrived in time
	// Output:
	// e1 cart-1 1 1
	// <nil> <nil>
}

// The idiomatic consumer: a channel that closes when the context ends or the store
// closes.
func ExampleStore_EventStoredChan() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notifications := store.EventStoredChan(ctx)

	for v := int64(1); v <= 3; v++ {
		_ = store.SaveEvent(&aether.Event{ID: fmt.Sprint("e", v), EventType: "Added", ActorID: "cart-1", Version: v, Timestamp: time.Now()})
	}
	for i := 0; i < 3; i++ {
		n := <-notifications
		fmt.Printf("stored %s v%d (sequence %d)\n", n.ActorID, n.Version, n.Sequence)
	}
	// Output:
	// stored cart-1 v1 (sequence 1)
	// stored cart-1 v2 (sequence 2)
	// stored cart-1 v3 (sequence 3)
}

// Snapshots: the latest per actor; none yet is an error matching ErrNotFound.
func ExampleStore_GetLatestSnapshot() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	_, err := store.GetLatestSnapshot("cart-1")
	fmt.Println(errors.Is(err, aether.ErrNotFound))

	_ = store.SaveSnapshot(&aether.ActorSnapshot{
		ActorID: "cart-1", Version: 10, State: map[string]interface{}{"items": 3}, Timestamp: time.Now(),
	})
	snap, _ := store.GetLatestSnapshot("cart-1")
	fmt.Println(snap.Version, snap.State["items"])
	// Output:
	// true
	// 10 3
}

// Atomic batches and the store-wide sequence.
func ExampleStore_SaveEvents() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	batch := []*aether.Event{
		{ID: "a1", EventType: "Opened", ActorID: "acct-1", Version: 1, Timestamp: time.Now()},
		{ID: "a2", EventType: "Deposited", ActorID: "acct-1", Version: 2, Timestamp: time.Now()},
	}
	if err := store.SaveEvents(batch); err != nil {
		log.Fatal(err)
	}
	page, _ := store.ReadAll(0, 100)
	for _, se := range page {
		fmt.Println(se.Sequence, se.Event.ID)
	}
	m, _ := store.Metrics()
	fmt.Println("events saved:", m.EventsSaved)
	// Output:
	// 1 a1
	// 2 a2
	// events saved: 2
}

// Optimistic concurrency the KurrentDB way: read the actor's version, decide, and append
// only if nobody wrote in between. Version 0 lets the store number the events. A retry
// of an append that succeeded (say, after a timeout) is recognised, not a conflict.
func ExampleStore_Append() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	now := time.Date(2024, 3, 15, 9, 0, 0, 0, time.UTC)

	opened := &aether.Event{ID: "open-1", EventType: "Opened", ActorID: "account-7", Timestamp: now}
	r, err := store.Append("account-7", aether.ExpectNoStream(), opened)
	fmt.Println(r.LastVersion(), r.AlreadyAppended, err)

	r, err = store.Append("account-7", aether.ExpectNoStream(), opened) // the same call again
	fmt.Println(r.LastVersion(), r.AlreadyAppended, err)

	deposit := &aether.Event{ID: "dep-1", EventType: "Deposited", ActorID: "account-7", Timestamp: now}
	_, err = store.Append("account-7", aether.ExpectExact(0), deposit) // a stale read
	var conflict *aether.CommitConflictError
	if errors.As(err, &conflict) {
		fmt.Println("current version:", conflict.Conflicts[0].CurrentVersion)
	}
	// Output:
	// 1 false <nil>
	// 1 true <nil>
	// current version: 1
}

// A transfer touches two accounts and must not happen if the customer was closed in the
// meantime: one commit, all or nothing, with a condition-only entry for the customer.
// When conditions fail, the error lists every one of them.
func ExampleStore_Commit() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	now := time.Date(2024, 3, 15, 9, 0, 0, 0, time.UTC)
	event := func(id, actor string) *aether.Event {
		return &aether.Event{ID: id, EventType: "Transferred", ActorID: actor, Timestamp: now}
	}
	_, _ = store.Append("customer-1", aether.ExpectNoStream(), event("c1", "customer-1"))

	r, err := store.Commit(
		aether.CommitEntry{ActorID: "account-a", Expected: aether.ExpectAny(), Events: []*aether.Event{event("t1-out", "account-a")}},
		aether.CommitEntry{ActorID: "account-b", Expected: aether.ExpectAny(), Events: []*aether.Event{event("t1-in", "account-b")}},
		aether.CommitEntry{ActorID: "customer-1", Expected: aether.ExpectExact(1)},
	)
	fmt.Println(r.FirstSequence, r.LastSequence, r.LastVersions, err)

	_, err = store.Commit(
		aether.CommitEntry{ActorID: "account-a", Expected: aether.ExpectExact(0), Events: []*aether.Event{event("t2-out", "account-a")}},
		aether.CommitEntry{ActorID: "customer-1", Expected: aether.ExpectNoStream()},
	)
	fmt.Println(errors.Is(err, aether.ErrVersionConflict))
	fmt.Println(err)
	// Output:
	// 2 3 [1 1 0] <nil>
	// true
	// version conflict: actor "account-a" expected version 0, has version 1; actor "customer-1" expected no stream, has version 1
}

// The last event of an actor, and a filtered scan of the whole store.
func ExampleStore_GetEventsRange() {
	store, _ := aether.OpenMemory()
	defer store.Close()
	now := time.Date(2024, 3, 15, 9, 0, 0, 0, time.UTC)
	for i, t := range []string{"Placed", "Paid", "Shipped"} {
		e := &aether.Event{ID: fmt.Sprint("o", i), EventType: t, ActorID: "order-1", Timestamp: now}
		_, _ = store.Append("order-1", aether.ExpectAny(), e)
	}
	last, _ := store.GetEventsRange("order-1", aether.Backward(), aether.Limit(1))
	fmt.Println(last[0].Version, last[0].EventType)

	paid, _ := store.ReadAllFiltered(1, 100, aether.Filter{EventTypes: []string{"Paid"}, ActorPrefix: "order-"})
	fmt.Println(len(paid), paid[0].Sequence, paid[0].Event.EventType)
	// Output:
	// 3 Shipped
	// 1 2 Paid
}
