package aether_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// freePort is a TCP port on 127.0.0.1 nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNATS starts a private `nats-server -js` (free port, store in t.TempDir(), killed
// at cleanup) and returns its URL. Without nats-server on PATH the test fails, saying
// so, unless AETHER_SKIP_JETSTREAM=1 (then it is skipped).
func startNATS(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("AETHER_SKIP_JETSTREAM") == "1" {
			t.Skip("SKIPPED: nats-server is not on PATH and AETHER_SKIP_JETSTREAM=1")
		}
		t.Fatal("nats-server is not on PATH: the JetStream tests need it " +
			"(Debian: apt-get install -y nats-server). Set AETHER_SKIP_JETSTREAM=1 to skip them.")
	}
	dir := t.TempDir()
	port := freePort(t)
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-sd", filepath.Join(dir, "js"))
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nats-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("nats-server did not listen on %s within 10s; log:\n%s", addr, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "nats://" + addr
}

// openJetStream opens a store on url, retrying while JetStream finishes starting; it
// is closed at cleanup.
func openJetStream(t testing.TB, url string, opts ...aether.Option) *aether.Store {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := aether.OpenJetStream(url, opts...)
		if err == nil {
			t.Cleanup(func() { s.Close() })
			return s
		}
		retry := errors.Is(err, aether.ErrUnavailable) || errors.Is(err, aether.ErrTimeout)
		if !retry || time.Now().After(deadline) {
			t.Fatalf("OpenJetStream(%s): %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A reduced conformance set on the JetStream backend, through the Go binding.
func TestJetStreamConformance(t *testing.T) {
	url := startNATS(t)
	s := openJetStream(t, url, aether.WithStream("GO_TEST"), aether.WithSubjectPrefix("gotest"),
		aether.WithReplicas(1), aether.WithConnectTimeout(5*time.Second),
		aether.WithRequestTimeout(5*time.Second), aether.WithEventStoredCapacity(1000))

	if v, err := s.GetLatestVersion("order-1"); err != nil || v != 0 {
		t.Fatalf("GetLatestVersion(unknown) = %d, %v; want 0, nil", v, err)
	}
	for v := int64(1); v <= 3; v++ {
		mustSave(t, s, newEvent("order-1", v))
	}

	// A conflict, with its fields, through errors.Is and errors.As.
	err := s.SaveEvent(newEvent("order-1", 2))
	if !errors.Is(err, aether.ErrVersionConflict) {
		t.Fatalf("SaveEvent(stale version) = %v, want ErrVersionConflict", err)
	}
	var conflict *aether.VersionConflictError
	if !errors.As(err, &conflict) || conflict.ActorID != "order-1" ||
		conflict.AttemptedVersion != 2 || conflict.CurrentVersion != 3 {
		t.Fatalf("conflict = %+v", conflict)
	}

	// GetEvents is inclusive and returns the events as saved.
	events, err := s.GetEvents("order-1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(events); !reflect.DeepEqual(got, []int64{2, 3}) {
		t.Fatalf("GetEvents(from 2) versions = %v, want [2 3]", got)
	}
	if want := newEvent("order-1", 2); !reflect.DeepEqual(events[0], want) {
		t.Errorf("event 2 = %+v, want %+v", events[0], want)
	}
	if v, err := s.GetLatestVersion("order-1"); err != nil || v != 3 {
		t.Fatalf("GetLatestVersion = %d, %v; want 3", v, err)
	}

	// A batch is all or nothing.
	if err := s.SaveEvents([]*aether.Event{newEvent("cart", 1), newEvent("cart", 2)}); err != nil {
		t.Fatalf("SaveEvents: %v", err)
	}
	err = s.SaveEvents([]*aether.Event{newEvent("cart", 2), newEvent("cart", 3)})
	if !errors.Is(err, aether.ErrVersionConflict) {
		t.Fatalf("SaveEvents(conflicting) = %v", err)
	}
	if v, _ := s.GetLatestVersion("cart"); v != 2 {
		t.Fatalf("cart version after a refused batch = %d, want 2", v)
	}
	all, err := s.ReadAll(1, 100)
	if err != nil || len(all) != 5 {
		t.Fatalf("ReadAll = %d events, %v; want 5", len(all), err)
	}
	for i, e := range all {
		if e.Sequence != uint64(i+1) {
			t.Errorf("ReadAll[%d].Sequence = %d", i, e.Sequence)
		}
	}

	// Snapshots.
	if _, err := s.GetLatestSnapshot("order-1"); !errors.Is(err, aether.ErrNotFound) {
		t.Fatalf("GetLatestSnapshot(none) = %v, want ErrNotFound", err)
	}
	snap := &aether.ActorSnapshot{ActorID: "order-1", Version: 3,
		State: map[string]interface{}{"total": float64(42)}, Timestamp: baseTime}
	if err := s.SaveSnapshot(snap); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	got, err := s.GetLatestSnapshot("order-1")
	if err != nil || !reflect.DeepEqual(got, snap) {
		t.Fatalf("GetLatestSnapshot = %+v, %v; want %+v", got, err, snap)
	}

	// EventStored: one per stored event, in order, with the store-wide sequence.
	for i, want := range []struct {
		actor   string
		version int64
	}{{"order-1", 1}, {"order-1", 2}, {"order-1", 3}, {"cart", 1}, {"cart", 2}} {
		n, err := s.PollEventStored(5 * time.Second)
		if err != nil || n == nil {
			t.Fatalf("PollEventStored #%d = %v, %v", i+1, n, err)
		}
		if n.ActorID != want.actor || n.Version != want.version || n.Sequence != uint64(i+1) {
			t.Errorf("EventStored #%d = %+v, want %s v%d", i+1, n, want.actor, want.version)
		}
	}
	if n, err := s.PollEventStored(50 * time.Millisecond); n != nil || err != nil {
		t.Fatalf("EventStored after the last save: %+v, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Two stores on one stream see each other's saves, as two processes would.
func TestJetStreamSharedStream(t *testing.T) {
	url := startNATS(t)
	a := openJetStream(t, url)
	b := openJetStream(t, url)
	mustSave(t, a, newEvent("shared", 1))
	var conflict *aether.VersionConflictError
	if err := b.SaveEvent(newEvent("shared", 1)); !errors.As(err, &conflict) || conflict.CurrentVersion != 1 {
		t.Fatalf("second store's SaveEvent = %v, want a conflict at version 1", err)
	}
	n, err := b.PollEventStored(5 * time.Second)
	if err != nil || n == nil || n.ActorID != "shared" || n.Sequence != 1 {
		t.Fatalf("second store's EventStored = %+v, %v", n, err)
	}
}

func TestJetStreamServerDown(t *testing.T) {
	if _, err := exec.LookPath("nats-server"); err != nil {
		startNATS(t) // fails or skips, saying why
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	s, err := aether.OpenJetStream(url, aether.WithConnectTimeout(time.Second))
	elapsed := time.Since(start)
	if s != nil || !(errors.Is(err, aether.ErrUnavailable) || errors.Is(err, aether.ErrTimeout)) {
		t.Fatalf("OpenJetStream(nobody listening) = %v, %v; want ErrUnavailable or ErrTimeout", s, err)
	}
	var e *aether.Error
	if !errors.As(err, &e) || (e.Code != aether.CodeUnavailable && e.Code != aether.CodeTimeout) || e.Message == "" {
		t.Fatalf("error as *Error = %+v", e)
	}
	if elapsed > 3*time.Second {
		t.Errorf("OpenJetStream gave up after %v with a 1s connect timeout", elapsed)
	}
}

func TestJetStreamOptionsAreChecked(t *testing.T) {
	for name, opts := range map[string][]aether.Option{
		"stream":       {aether.WithStream("")},
		"prefix":       {aether.WithSubjectPrefix("a\x00b")},
		"replicas":     {aether.WithReplicas(0)},
		"connect":      {aether.WithConnectTimeout(0)},
		"request":      {aether.WithRequestTimeout(-time.Second)},
		"credentials":  {aether.WithCredentialsFile("")},
		"sled options": {aether.WithDurability(aether.Buffered)},
	} {
		if _, err := aether.OpenJetStream("nats://127.0.0.1:1", opts...); !errors.Is(err, aether.ErrInvalidArgument) {
			t.Errorf("OpenJetStream(%s) = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := aether.OpenJetStream(""); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenJetStream(\"\") = %v, want ErrInvalidArgument", err)
	}
	// Names the library refuses come back as ErrInvalidArgument too, before connecting.
	if _, err := aether.OpenJetStream("nats://127.0.0.1:1", aether.WithStream("has.dots")); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenJetStream(WithStream(has.dots)) = %v, want ErrInvalidArgument", err)
	}
	if _, err := aether.OpenMemory(aether.WithStream("S")); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenMemory(WithStream) = %v, want ErrInvalidArgument", err)
	}
	if _, err := aether.OpenSled(t.TempDir(), aether.WithReplicas(3)); !errors.Is(err, aether.ErrInvalidArgument) {
		t.Errorf("OpenSled(WithReplicas) = %v, want ErrInvalidArgument", err)
	}
}
