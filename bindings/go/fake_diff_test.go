package aether

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// The fake is faithful: a random script of operations (seeded, so a failure replays)
// gives identical results on the fake, the C library's memory store and its sled store:
// the same events, versions, sequences, snapshots, notifications, metrics and errors
// (type, code and message), and the same wire bytes at the seam. The race tests run
// over the fake, so what they prove about the Store holds for the library too.
func TestFakeMatchesLibrary(t *testing.T) {
	ops := 400
	if n, err := strconv.Atoi(os.Getenv("AETHER_DIFF_OPS")); err == nil && n > 0 {
		ops = n
	}
	for _, seed := range []int64{1, 2, 3} {
		seed := seed
		t.Run(fmt.Sprintf("seed_%d", seed), func(t *testing.T) {
			stores := openDiffStores(t)
			script := &diffScript{r: rand.New(rand.NewSource(seed)), fake: stores[0].s}
			for i := 0; i < ops; i++ {
				name, op := script.next(i)
				want := op(stores[0].s)
				for _, d := range stores[1:] {
					if got := op(d.s); got != want {
						t.Fatalf("op %d, %s:\n  fake:   %s\n  %-7s %s", i, name, excerpt(want, got), d.name+":", excerpt(got, want))
					}
				}
			}
			compareWire(t, stores)
			compareRawInputs(t, stores)
			compareClosed(t, stores)
		})
	}
}

type diffStore struct {
	name string
	s    *Store
}

// The stores hold 8 undrained notifications, so the script also sees drops.
func openDiffStores(t *testing.T) []diffStore {
	fake, err := openFake(WithEventStoredCapacity(8))
	if err != nil {
		t.Fatal(err)
	}
	memory, err := OpenMemory(WithEventStoredCapacity(8))
	if err != nil {
		t.Fatal(err)
	}
	sled, err := OpenSled(t.TempDir(), WithEventStoredCapacity(8), WithDurability(Buffered))
	if err != nil {
		t.Fatal(err)
	}
	stores := []diffStore{{"fake", fake}, {"memory", memory}, {"sled", sled}}
	t.Cleanup(func() {
		for _, d := range stores {
			d.s.Close()
		}
	})
	return stores
}

// diffActors: ordinary IDs, non-ASCII, invalid UTF-8 (stored as U+FFFD, refused on
// reads), over the length limit, and empty.
var diffActors = []string{"a", "b", "order-1", "a", "b", "é", "\xff", "\ufffd", strings.Repeat("x", 4097), ""}

type diffScript struct {
	r    *rand.Rand
	fake *Store // where the script looks up versions to pick interesting ones
}

func (d *diffScript) actor() string {
	if d.r.Intn(4) > 0 {
		return diffActors[d.r.Intn(3)]
	}
	return diffActors[d.r.Intn(len(diffActors))]
}

func (d *diffScript) latest(actor string) int64 {
	v, _ := d.fake.GetLatestVersion(actor)
	return v
}

// version picks the next version to save: mostly the right one, sometimes a conflict
// or a gap.
func (d *diffScript) version(latest int64) int64 {
	switch n := d.r.Intn(20); {
	case n < 11:
		return latest + 1
	case n < 13:
		return latest
	case n < 14:
		return latest - 1
	case n < 15:
		return 0
	case n < 16:
		return -1
	default:
		return latest + 1 + int64(d.r.Intn(3))
	}
}

func (d *diffScript) event(actor string, version int64) *Event {
	e := randEvent(d.r, false)
	e.ActorID = actor
	e.Version = version
	return e
}

func (d *diffScript) from(latest int64) int64 {
	return []int64{-1, 0, 1, latest, latest + 1, d.r.Int63n(latest + 2)}[d.r.Intn(6)]
}

// next returns operation i of the script: its description and a function that runs it
// on a store and describes the outcome.
func (d *diffScript) next(i int) (string, func(*Store) string) {
	if i == 5 { // over the record limit: the message counts the encoded bytes
		e := d.event("a", d.latest("a")+1)
		e.Data = map[string]interface{}{"blob": strings.Repeat("é<", 300_000)}
		return "SaveEvent(1.5 MB)", func(s *Store) string { return outcome(nil, s.SaveEvent(e)) }
	}
	switch n := d.r.Intn(100); {
	case n < 30:
		actor := d.actor()
		e := d.event(actor, d.version(d.latest(actor)))
		return fmt.Sprintf("SaveEvent(%q v%d)", actor, e.Version), func(s *Store) string {
			return outcome(nil, s.SaveEvent(e))
		}
	case n < 40:
		actor := d.actor()
		first := d.version(d.latest(actor))
		batch := make([]*Event, 1+d.r.Intn(4))
		for j := range batch {
			batch[j] = d.event(actor, first+int64(j))
		}
		if len(batch) > 1 {
			switch d.r.Intn(8) {
			case 0:
				batch[1].ActorID = d.actor()
			case 1:
				batch[1].Version = batch[0].Version
			}
		}
		return fmt.Sprintf("SaveEvents(%q from v%d, %d events)", actor, first, len(batch)), func(s *Store) string {
			return outcome(nil, s.SaveEvents(batch))
		}
	case n < 50:
		actor := d.actor()
		from := d.from(d.latest(actor))
		return fmt.Sprintf("GetEvents(%q, %d)", actor, from), func(s *Store) string {
			return outcome(s.GetEvents(actor, from))
		}
	case n < 55:
		actor := d.actor()
		from := d.from(d.latest(actor))
		return fmt.Sprintf("GetEventsWithErrors(%q, %d)", actor, from), func(s *Store) string {
			return outcome(s.GetEventsWithErrors(actor, from))
		}
	case n < 62:
		actor := d.actor()
		return fmt.Sprintf("GetLatestVersion(%q)", actor), func(s *Store) string {
			return outcome(s.GetLatestVersion(actor))
		}
	case n < 70:
		actor := d.actor()
		current := int64(0)
		if snap, err := d.fake.GetLatestSnapshot(actor); err == nil {
			current = snap.Version
		}
		version := []int64{current - 1, current, current + 1, d.latest(actor)}[d.r.Intn(4)]
		snap := &ActorSnapshot{ActorID: actor, Version: version, Timestamp: randTime(d.r, false)}
		if d.r.Intn(4) > 0 {
			snap.State = map[string]interface{}{}
			for k := d.r.Intn(4); k > 0; k-- {
				snap.State[randString(d.r)] = randValue(d.r, 1, false)
			}
		}
		return fmt.Sprintf("SaveSnapshot(%q v%d)", actor, version), func(s *Store) string {
			return outcome(nil, s.SaveSnapshot(snap))
		}
	case n < 75:
		actor := d.actor()
		return fmt.Sprintf("GetLatestSnapshot(%q)", actor), func(s *Store) string {
			return outcome(s.GetLatestSnapshot(actor))
		}
	case n < 81:
		last, _ := d.fake.LastSequence()
		from := []uint64{0, 1, last, last + 1, uint64(d.r.Int63n(int64(last) + 2))}[d.r.Intn(5)]
		limit := []int{-1, 0, 1, 2, 5, 1000}[d.r.Intn(6)]
		return fmt.Sprintf("ReadAll(%d, %d)", from, limit), func(s *Store) string {
			return outcome(s.ReadAll(from, limit))
		}
	case n < 84:
		return "LastSequence", func(s *Store) string { return outcome(s.LastSequence()) }
	case n < 94:
		return "PollEventStored(0)", func(s *Store) string {
			n, err := s.PollEventStored(0)
			if n != nil {
				n.Timestamp = time.Time{} // the time of the save differs
			}
			return outcome(n, err)
		}
	case n < 97:
		return "Metrics", func(s *Store) string { return outcome(s.Metrics()) }
	default:
		return "Flush", func(s *Store) string { return outcome(nil, s.Flush()) }
	}
}

// outcome describes a result and an error exactly: the value as JSON, the error by its
// type, code and message.
func outcome(v interface{}, err error) string {
	js, jerr := json.Marshal(v)
	if jerr != nil {
		js = []byte(fmt.Sprintf("%#v", v))
	}
	var e string
	switch x := err.(type) {
	case nil:
		e = "ok"
	case *VersionConflictError:
		e = fmt.Sprintf("*VersionConflictError%+v (Is ErrVersionConflict: %v)", *x, x.Unwrap() == ErrVersionConflict)
	case *Error:
		e = fmt.Sprintf("*Error{%v: %q}", x.Code, x.Message)
	default:
		e = fmt.Sprintf("%T: %v", err, err)
	}
	return string(js) + " / " + e
}

// lent calls a lending backend method and copies what it lent.
func lent(call func(use func([]byte)) *capi.Failure) string {
	var out string
	if f := call(func(b []byte) { out = string(b) }); f != nil {
		return failureText(f)
	}
	return out
}

func failureText(f *capi.Failure) string {
	if f == nil {
		return "ok"
	}
	return fmt.Sprintf("%+v", *f)
}

// compareWire compares the bytes each backend lends: the fake speaks the library's wire
// format, not merely something that decodes to the same values.
func compareWire(t *testing.T, stores []diffStore) {
	t.Helper()
	wire := func(b backend) []string {
		var out []string
		for _, actor := range diffActors {
			out = append(out,
				lent(func(use func([]byte)) *capi.Failure { return b.GetEvents(actor, 0, use) }),
				lent(func(use func([]byte)) *capi.Failure { return b.GetEventsWithErrors(actor, 2, use) }),
				lent(func(use func([]byte)) *capi.Failure { return b.GetLatestSnapshot(actor, use) }))
		}
		return append(out, lent(func(use func([]byte)) *capi.Failure { return b.ReadAll(0, 1<<20, use) }))
	}
	want := wire(stores[0].s.h)
	for _, d := range stores[1:] {
		got := wire(d.s.h)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("wire bytes differ (item %d):\n  fake:   %s\n  %-7s %s", i, excerpt(want[i], got[i]), d.name+":", excerpt(got[i], want[i]))
			}
		}
	}
}

// compareRawInputs sends the backends JSON this package never writes (wrong shapes, bad
// UTF-8, nulls where values may be omitted). Only the status is compared where the
// message would be serde_json's.
func compareRawInputs(t *testing.T, stores []diffStore) {
	t.Helper()
	const ts = `"timestamp":"2024-01-01T00:00:00+05:30"`
	for _, in := range []struct {
		json        string
		sameMessage bool
	}{
		{`{}`, false},
		{`[1]`, false},
		{`{"id":"e","eventType":"T","actorId":"raw","version":"1",` + ts + `}`, false},
		{`{"id":"e","eventType":"T","actorId":"raw","version":1,"data":[1],` + ts + `}`, false},
		{`{"id":"e","eventType":"T","actorId":"raw","version":1,"data":{"k":1}}`, false},
		{"{\"id\":\"\xff\"}", true},
		{`{"id":"e","eventType":"T","actorId":"","version":1,` + ts + `}`, true},
		{`{"id":"e","eventType":"T","actorId":"raw","version":1,"data":null,"metadata":null,"commandId":null,` + ts + `,"extra":[1]}`, true},
		{`{"id":"e2","eventType":"T","actorId":"raw","version":2,"data":{"n":[1.0,-0,1e400000000,12345678901234567890123,1.5e-7,"\u003c\u2028"],"b":{}},"metadata":{"z":"1","a":""},"commandId":"c",` + ts + `}`, false},
		{`{"id":"e2","eventType":"T","actorId":"raw","version":2,"data":{"n":[1.0,-0,12345678901234567890123,1.5e-7,"\u003c\u2028"],"b":{}},"metadata":{"z":"1","a":""},"commandId":"c",` + ts + `}`, true},
	} {
		want := stores[0].s.h
		_, wf := want.SaveEvent([]byte(in.json))
		for _, d := range stores[1:] {
			_, gf := d.s.h.SaveEvent([]byte(in.json))
			same := (wf == nil) == (gf == nil)
			if same && wf != nil {
				same = wf.Status == gf.Status
				if in.sameMessage {
					same = *wf == *gf
				}
			}
			if !same {
				t.Errorf("SaveEvent(%s):\n  fake:   %s\n  %-7s %s", in.json, failureText(wf), d.name+":", failureText(gf))
			}
		}
	}
	compareWire(t, stores)
}

// compareClosed closes each backend under its Store (as Store.Close does first) and
// compares what every operation answers then.
func compareClosed(t *testing.T, stores []diffStore) {
	t.Helper()
	event := `{"id":"e","eventType":"T","actorId":"closed","version":1,"data":null,"timestamp":"2024-01-01T00:00:00Z"}`
	snapshot := `{"actorId":"closed","version":1,"state":null,"timestamp":"2024-01-01T00:00:00Z"}`
	answers := func(b backend) []string {
		var out []string
		add := func(f *capi.Failure) { out = append(out, failureText(f)) }
		add(b.Close())
		_, f := b.SaveEvent([]byte(event))
		add(f)
		_, f = b.SaveEvents([]byte("[" + event + "]"))
		add(f)
		add(b.SaveSnapshot([]byte(snapshot)))
		for _, actor := range []string{"a", "\xff"} {
			out = append(out,
				lent(func(use func([]byte)) *capi.Failure { return b.GetEvents(actor, 0, use) }),
				lent(func(use func([]byte)) *capi.Failure { return b.GetEvents(actor, -1, use) }),
				lent(func(use func([]byte)) *capi.Failure { return b.GetEventsWithErrors(actor, 0, use) }),
				lent(func(use func([]byte)) *capi.Failure { return b.GetLatestSnapshot(actor, use) }))
			_, f = b.GetLatestVersion(actor)
			add(f)
		}
		out = append(out, lent(func(use func([]byte)) *capi.Failure { return b.ReadAll(0, 10, use) }))
		_, f = b.LastSequence()
		add(f)
		_, f = b.PollOne(0)
		add(f)
		_, f = b.PollOne(-1)
		add(f)
		buf := capi.NewEventStoredBuffer(4)
		defer buf.Free()
		_, f = b.PollEventStored(10, buf, nil)
		add(f)
		add(b.Flush())
		_, f = b.Metrics()
		add(f)
		add(b.Close())
		return out
	}
	want := answers(stores[0].s.h)
	for _, d := range stores[1:] {
		got := answers(d.s.h)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("closed backend, answer %d:\n  fake:   %s\n  %-7s %s", i, want[i], d.name+":", got[i])
			}
		}
	}
}

// excerpt is s around its first difference from other.
func excerpt(s, other string) string {
	i := 0
	for i < len(s) && i < len(other) && s[i] == other[i] {
		i++
	}
	start, end := max(0, i-200), min(len(s), i+200)
	return fmt.Sprintf("...%s... (byte %d of %d)", s[start:end], i, len(s))
}
