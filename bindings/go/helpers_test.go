package aether_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// repoRoot is the aether-rs checkout this module lives in (bindings/go).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// backend opens a fresh store of one kind; sled stores live in t.TempDir().
type backend struct {
	name string
	open func(t testing.TB) *aether.Store
}

func openMemory(t testing.TB) *aether.Store {
	t.Helper()
	s, err := aether.OpenMemory()
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openSledAt(t testing.TB, dir string, opts ...aether.Option) *aether.Store {
	t.Helper()
	s, err := aether.OpenSled(dir, opts...)
	if err != nil {
		t.Fatalf("OpenSled(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openFake(t testing.TB) *aether.Store {
	t.Helper()
	s, err := aether.OpenFake()
	if err != nil {
		t.Fatalf("OpenFake: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The stores every conformance and race test runs on: the C library's (memory, sled)
// and the pure-Go fake, whose memory the race detector sees on both sides of the
// Store's calls.
var backends = []backend{
	{"fake", openFake},
	{"memory", openMemory},
	{"sled_durable", func(t testing.TB) *aether.Store { return openSledAt(t, t.TempDir()) }},
	{"sled_buffered", func(t testing.TB) *aether.Store {
		return openSledAt(t, t.TempDir(), aether.WithDurability(aether.Buffered))
	}},
}

// eachBackend runs f as a subtest on every backend.
func eachBackend(t *testing.T, f func(t *testing.T, s *aether.Store)) {
	for _, b := range backends {
		b := b
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

var baseTime = time.Date(2024, 3, 15, 9, 26, 53, 123456789, time.UTC)

func newEvent(actor string, version int64) *aether.Event {
	return &aether.Event{
		ID:        actor + "-e" + itoa(version),
		EventType: "TestEvent",
		ActorID:   actor,
		Version:   version,
		Data:      map[string]interface{}{"n": float64(version)},
		Timestamp: baseTime.Add(time.Duration(version) * time.Second),
	}
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mustSave(t testing.TB, s *aether.Store, e *aether.Event) {
	t.Helper()
	if err := s.SaveEvent(e); err != nil {
		t.Fatalf("SaveEvent(%s v%d): %v", e.ActorID, e.Version, err)
	}
}

func mustJSON(t testing.TB, v interface{}) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

func versionsOf(events []*aether.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

// cliPath is the aether CLI: $AETHER_CLI (make test-go sets it, and then it must exist),
// else target/release/aether of this checkout, skipping when it was not built.
func cliPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("AETHER_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("AETHER_CLI=%s: %v", p, err)
		}
		return p
	}
	p := filepath.Join(repoRoot(t), "target", "release", "aether")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("the aether CLI is not built (%v); run cargo build --release -p aether-cli", err)
	}
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// waitGoroutines waits until at most n goroutines run, failing after a while: a leak.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines still running, want <= %d:\n%s", runtime.NumGoroutine(), n,
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func goroutines() int { return runtime.NumGoroutine() }
