package aether_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	aether "github.com/aether-rs/aether-rs/bindings/go"
)

// A record damaged on disk (bytes of its JSON in the closed store's segment file) is
// reported, never skipped: GetEvents fails with ErrCorrupt, GetEventsWithErrors returns
// the other events plus a ReplayError carrying the record's sequence and raw bytes.
func TestCorruptRecordIsReported(t *testing.T) {
	for _, damage := range [][]string{{"--garbage"}, {"--flip-bit", "77"}} {
		t.Run(strings.TrimPrefix(damage[0], "--"), func(t *testing.T) {
			dir := t.TempDir()
			s, err := aether.OpenSled(dir)
			if err != nil {
				t.Fatal(err)
			}
			for v := int64(1); v <= 5; v++ {
				mustSave(t, s, newEvent("damaged", v)) // sequences 1..5
			}
			mustSave(t, s, newEvent("healthy", 1))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			damageRecord(t, dir, `"id":"`+newEvent("damaged", 3).ID+`"`, damage[0] == "--garbage")

			s = openSledAt(t, dir)
			_, err = s.GetEvents("damaged", 0)
			if !errors.Is(err, aether.ErrCorrupt) {
				t.Fatalf("GetEvents over a damaged record = %v, want ErrCorrupt", err)
			}
			var typed *aether.Error
			if !errors.As(err, &typed) || typed.Code != aether.CodeCorrupt || typed.Message == "" {
				t.Errorf("GetEvents error = %#v", err)
			}

			res, err := s.GetEventsWithErrors("damaged", 0)
			if err != nil {
				t.Fatalf("GetEventsWithErrors: %v", err)
			}
			if got := versionsOf(res.Events); !reflect.DeepEqual(got, []int64{1, 2, 4, 5}) {
				t.Errorf("good events = %v, want [1 2 4 5]", got)
			}
			if !res.HasErrors() || len(res.Errors) != 1 {
				t.Fatalf("replay errors = %+v, want one", res.Errors)
			}
			re := res.Errors[0]
			// The sequence comes from the index, which names the damaged record's.
			wantSeq := uint64(3)
			if re.SequenceNumber != wantSeq || len(re.RawData) == 0 {
				t.Errorf("ReplayError = {seq %d, %d raw bytes}, want seq %d with its bytes",
					re.SequenceNumber, len(re.RawData), wantSeq)
			}
			if re.Err == nil || !errors.Is(&re, aether.ErrCorrupt) {
				t.Errorf("ReplayError.Err = %v, want one matching ErrCorrupt", re.Err)
			}
			if !strings.HasPrefix(re.Error(), "failed to unmarshal event at sequence "+itoa(int64(wantSeq))+": ") {
				t.Errorf("ReplayError.Error() = %q", re.Error())
			}

			// Ranges that skip the damaged record, and other actors, read normally.
			if events, err := s.GetEvents("damaged", 4); err != nil || len(events) != 2 {
				t.Errorf("GetEvents(from 4) = %d events, %v", len(events), err)
			}
			if events, err := s.GetEvents("healthy", 0); err != nil || len(events) != 1 {
				t.Errorf("GetEvents(healthy) = %d events, %v", len(events), err)
			}
			if v, err := s.GetLatestVersion("damaged"); err != nil || v != 5 {
				t.Errorf("GetLatestVersion = %d, %v", v, err)
			}
			if m, _ := s.Metrics(); m.ReplayErrors == 0 {
				t.Errorf("metrics = %+v, want ReplayErrors > 0", m)
			}
		})
	}
}

// A Store nobody closed is closed by its finalizer once unreachable, releasing the
// directory's lock (a backstop only: Close is the way).
func TestFinalizerReleasesAnUnclosedStore(t *testing.T) {
	dir := t.TempDir()
	func() {
		s, err := aether.OpenSled(dir)
		if err != nil {
			t.Fatal(err)
		}
		mustSave(t, s, newEvent("leaked", 1))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		runtime.GC()
		s, err := aether.OpenSled(dir, aether.WithLockTimeout(50*time.Millisecond))
		if err == nil {
			defer s.Close()
			if v, _ := s.GetLatestVersion("leaked"); v != 1 {
				t.Errorf("after the finalizer: latest = %d, want 1", v)
			}
			return
		}
		if !errors.Is(err, aether.ErrLocked) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the finalizer never released the unclosed store")
		}
	}
}

// damageRecord changes the bytes of the one record of the store in dir whose JSON holds
// needle, in the log's first segment: garbage over 16 of its bytes, or one flipped bit.
func damageRecord(t *testing.T, dir, needle string, garbage bool) {
	t.Helper()
	path := filepath.Join(dir, "log", "00000000000000000001.seg")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte(needle))
	if at < 0 || bytes.Index(data[at+1:], []byte(needle)) >= 0 {
		t.Fatalf("%q is not in %s exactly once", needle, path)
	}
	if garbage {
		for i := 0; i < 16; i++ {
			data[at+i] = 0xA5
		}
	} else {
		data[at+77/8] ^= 1 << (77 % 8)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
