package aether_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// Interop: what Go's encoding/json makes of an event survives the store unchanged, and a
// store written from Go is read from C and the other way round.

// interopEvents are Go-built events exercising the JSON corners: metadata, nil and empty
// data, non-UTC timestamps with nanoseconds, HTML characters, unicode, nesting, numbers.
func interopEvents(actor string) []*aether.Event {
	ist := time.FixedZone("IST", 5*3600+1800)
	pst := time.FixedZone("", -8*3600)
	e1 := &aether.Event{
		ID: "go-1", EventType: "OrderPlaced", ActorID: actor, Version: 1,
		Data: map[string]interface{}{
			"total": 149.99, "count": 3, "items": []interface{}{
				map[string]interface{}{"sku": "BOOK-1", "qty": 1, "price": 9.5},
			},
			"note": "Tom & Jerry <b>\"bold\"</b>\n\ttabbed \u2028 🙂 ünïcødé", "empty": map[string]interface{}{},
			"none": nil, "flag": true, "tiny": 1e-7, "huge": 1.5e300, "negzero": 0.0,
		},
		Timestamp: time.Date(2024, 6, 1, 18, 45, 30, 123456789, ist),
	}
	e1.SetCorrelationID("corr-1")
	e1.SetUserID("user-42")
	e1.SetTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	e1.SetSpanID("00f067aa0ba902b7")
	e2 := &aether.Event{
		ID: "go-2", EventType: "NilData", ActorID: actor, CommandID: "cmd-<7>", Version: 2,
		Timestamp: time.Date(1969, 12, 31, 23, 59, 59, 1, pst),
	}
	e2.WithMetadataFrom(e1)
	e2.SetCausationID(e1.ID)
	e3 := &aether.Event{
		ID: "go-3", EventType: "EmptyData", ActorID: actor, Version: 3,
		Data: map[string]interface{}{}, Metadata: map[string]string{},
		Timestamp: time.Date(2024, 3, 15, 9, 26, 53, 0, time.FixedZone("UTC+0", 0)),
	}
	e4 := &aether.Event{
		ID: "go-4", EventType: "Local", ActorID: actor, Version: 7,
		Data:      map[string]interface{}{"deep": map[string]interface{}{"a": []interface{}{1, []interface{}{2, map[string]interface{}{"b": nil}}}}},
		Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 600, time.Local),
	}
	return []*aether.Event{e1, e2, e3, e4}
}

func TestGoJSONRoundTripsUnchanged(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		events := interopEvents("roundtrip")
		for _, e := range events[:2] {
			mustSave(t, s, e)
		}
		if err := s.SaveEvents(events[2:]); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetEvents("roundtrip", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(events) {
			t.Fatalf("%d events, want %d", len(got), len(events))
		}
		for i := range events {
			if g, w := mustJSON(t, got[i]), mustJSON(t, events[i]); g != w {
				t.Errorf("event %d changed in the store:\n got %s\nwant %s", i, g, w)
			}
		}
		// The other readers return the same bytes.
		all, _ := s.ReadAll(0, 100)
		res, _ := s.GetEventsWithErrors("roundtrip", -1)
		for i := range events {
			w := mustJSON(t, events[i])
			if g := mustJSON(t, all[i].Event); g != w {
				t.Errorf("ReadAll event %d:\n got %s\nwant %s", i, g, w)
			}
			if g := mustJSON(t, res.Events[i]); g != w {
				t.Errorf("GetEventsWithErrors event %d:\n got %s\nwant %s", i, g, w)
			}
		}
	})
}

// The golden files of tests/golden (json.Marshal output of the seed's structs) go through
// the store from Go and come back re-encoding to the same bytes.
func TestGoldenFilesRoundTrip(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "tests", "golden", "events")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) < 20 {
		t.Fatalf("golden files in %s: %d, %v", dir, len(files), err)
	}
	eachBackend(t, func(t *testing.T, s *aether.Store) {
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(f)
			if strings.Contains(name, "snapshot") {
				var snap aether.ActorSnapshot
				if err := json.Unmarshal(raw, &snap); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := s.SaveSnapshot(&snap); err != nil {
					t.Fatalf("%s: SaveSnapshot: %v", name, err)
				}
				got, err := s.GetLatestSnapshot(snap.ActorID)
				if err != nil {
					t.Fatalf("%s: GetLatestSnapshot: %v", name, err)
				}
				if g, w := mustJSON(t, got), mustJSON(t, &snap); g != w {
					t.Errorf("%s:\n got %s\nwant %s", name, g, w)
				}
				continue
			}
			var e aether.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// Each golden in an actor of its own, at version 1 (some goldens hold
			// versions the store rejects on purpose, such as 0).
			e.ActorID += "/" + name
			e.Version = 1
			if err := s.SaveEvent(&e); err != nil {
				t.Fatalf("%s: SaveEvent: %v", name, err)
			}
			got, err := s.GetEvents(e.ActorID, 0)
			if err != nil || len(got) != 1 {
				t.Fatalf("%s: GetEvents: %v, %v", name, got, err)
			}
			if g, w := mustJSON(t, got[0]), mustJSON(t, &e); g != w {
				t.Errorf("%s:\n got %s\nwant %s", name, g, w)
			}
		}
	})
}

// buildInteropC compiles testdata/interop.c with cgo's C compiler against the header
// and the static library this package links.
func buildInteropC(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	cc := strings.Fields(strings.TrimSpace(run(t, "go", "env", "CC")))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	lib := filepath.Join(root, "target", "release", "libaether.a")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("%v (run cargo build --release -p aether-ffi)", err)
	}
	bin := filepath.Join(t.TempDir(), "interop")
	args := append(cc[1:], "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
		"-I", filepath.Join(root, "include"), filepath.Join("testdata", "interop.c"),
		"-o", bin, lib, "-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl")
	cmd := exec.Command(cc[0], args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compiling testdata/interop.c: %v\n%s", err, out)
	}
	return bin
}

func TestInteropGoWritesCReads(t *testing.T) {
	bin := buildInteropC(t)
	dir := filepath.Join(t.TempDir(), "store")
	const actor = "interop-from-go"
	events := interopEvents(actor)
	snap := &aether.ActorSnapshot{
		ActorID: actor, Version: 7, State: map[string]interface{}{"seen": []interface{}{"go-1", "go-4"}, "n": 4},
		Timestamp: time.Date(2024, 12, 24, 18, 0, 0, 999, time.FixedZone("", -3*3600-1800)),
	}
	s, err := aether.OpenSled(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		mustSave(t, s, e)
	}
	if err := s.SaveSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(run(t, bin, "read", dir, actor), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("C printed %d lines, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if want := mustJSON(t, events); lines[0] != want {
		t.Errorf("C read the events as\n%s\nGo wrote\n%s", lines[0], want)
	}
	if want := mustJSON(t, snap); lines[1] != want {
		t.Errorf("C read the snapshot as\n%s\nGo wrote\n%s", lines[1], want)
	}
}

func TestInteropCWritesGoReads(t *testing.T) {
	bin := buildInteropC(t)
	dir := filepath.Join(t.TempDir(), "store")
	const actor = "interop-from-c"
	lines := strings.Split(strings.TrimSuffix(run(t, bin, "write", dir), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("C printed %d lines, want 5 events and a snapshot", len(lines))
	}
	s := openSledAt(t, dir)
	events, err := s.GetEvents(actor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Fatalf("Go read %d events, want 5", len(events))
	}
	for i, e := range events {
		if g := mustJSON(t, e); g != lines[i] {
			t.Errorf("event %d: Go read\n%s\nC wrote\n%s", i, g, lines[i])
		}
	}
	if v, _ := s.GetLatestVersion(actor); v != 5 {
		t.Errorf("GetLatestVersion = %d, want 5", v)
	}
	if events[1].Data != nil || events[1].GetCorrelationID() != "corr-1" || events[1].CommandID != "cmd-7" {
		t.Errorf("event 2 = %+v", events[1])
	}
	if _, off := events[1].Timestamp.Zone(); off != 5*3600+1800 || events[1].Timestamp.Nanosecond() != 1 {
		t.Errorf("event 2 timestamp = %v", events[1].Timestamp)
	}
	snap, err := s.GetLatestSnapshot(actor)
	if err != nil {
		t.Fatal(err)
	}
	if g := mustJSON(t, snap); g != lines[5] {
		t.Errorf("snapshot: Go read\n%s\nC wrote\n%s", g, lines[5])
	}
	// And Go keeps writing where C stopped.
	mustSave(t, s, newEvent(actor, 6))
	if seq, _ := s.LastSequence(); seq != 6 {
		t.Errorf("LastSequence = %d, want 6", seq)
	}
}
