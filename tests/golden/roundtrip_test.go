package golden

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	eventsDir    = "events"
	minGoldens   = 20
	envRustOut   = "AETHER_RUST_OUT"
	envAllowSkip = "AETHER_GOLDEN_ALLOW_SKIP"
)

// jsonFiles lists the *.json file names in dir, sorted.
func jsonFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

func goldenFiles(t *testing.T) []string {
	t.Helper()
	names := jsonFiles(t, eventsDir)
	if len(names) < minGoldens {
		t.Fatalf("found %d golden files in %s, want at least %d", len(names), eventsDir, minGoldens)
	}
	return names
}

func isSnapshot(name string) bool { return strings.Contains(name, "snapshot") }

// decodeStrict decodes exactly one JSON value into v: numbers in interface{} positions become
// json.Number (so integers beyond 2^53 compare exactly), unknown fields and trailing data are
// errors.
func decodeStrict(b []byte, v interface{}) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the JSON value (%v)", err)
	}
	return nil
}

// sameTime reports whether a and b are the same instant written with the same UTC offset.
func sameTime(a, b time.Time) error {
	if !a.Equal(b) {
		return fmt.Errorf("instants differ: %s vs %s", a.Format(time.RFC3339Nano), b.Format(time.RFC3339Nano))
	}
	_, offA := a.Zone()
	_, offB := b.Zone()
	if offA != offB {
		return fmt.Errorf("zone offsets differ: %ds vs %ds (%s vs %s)", offA, offB,
			a.Format(time.RFC3339Nano), b.Format(time.RFC3339Nano))
	}
	return nil
}

// decodeAndCompare decodes want and got as the type the file name implies and reports any
// semantic difference (nil vs empty maps included).
func decodeAndCompare(name string, want, got []byte) error {
	if isSnapshot(name) {
		var w, g ActorSnapshot
		if err := decodeStrict(want, &w); err != nil {
			return fmt.Errorf("decoding Go golden: %w", err)
		}
		if err := decodeStrict(got, &g); err != nil {
			return fmt.Errorf("decoding Rust output: %w", err)
		}
		if err := sameTime(w.Timestamp, g.Timestamp); err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		w.Timestamp, g.Timestamp = time.Time{}, time.Time{}
		if !reflect.DeepEqual(w, g) {
			return fmt.Errorf("decoded snapshots differ:\n  go:   %#v\n  rust: %#v", w, g)
		}
		return nil
	}
	var w, g Event
	if err := decodeStrict(want, &w); err != nil {
		return fmt.Errorf("decoding Go golden: %w", err)
	}
	if err := decodeStrict(got, &g); err != nil {
		return fmt.Errorf("decoding Rust output: %w", err)
	}
	if err := sameTime(w.Timestamp, g.Timestamp); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	w.Timestamp, g.Timestamp = time.Time{}, time.Time{}
	if !reflect.DeepEqual(w, g) {
		return fmt.Errorf("decoded events differ:\n  go:   %#v\n  rust: %#v", w, g)
	}
	return nil
}

// byteDiff describes where want (labelled a) and got (labelled b) first differ.
func byteDiff(a, b string, want, got []byte) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	lo := i - 40
	if lo < 0 {
		lo = 0
	}
	clip := func(b []byte) string {
		hi := i + 40
		if hi > len(b) {
			hi = len(b)
		}
		if lo > len(b) {
			return `""`
		}
		return fmt.Sprintf("%q", b[lo:hi])
	}
	return fmt.Sprintf("first difference at byte %d (%s: %d bytes, %s: %d bytes)\n  %s: …%s…\n  %s: …%s…\n  full %s: %s\n  full %s: %s",
		i, a, len(want), b, len(got), a, clip(want), b, clip(got), a, want, b, got)
}

// TestRustMatchesGo compares the Rust re-encoding of every golden file with the golden.
func TestRustMatchesGo(t *testing.T) {
	rustDir := os.Getenv(envRustOut)
	if rustDir == "" {
		if os.Getenv(envAllowSkip) == "1" {
			t.Skipf("%s is not set and %s=1: skipping the Rust comparison", envRustOut, envAllowSkip)
		}
		t.Fatalf("%s is not set: it must name the directory the Rust test "+
			"(cargo test -p aether-core --test golden) wrote its re-encodings to. "+
			"Run tests/golden/run.sh, or set %s=1 to skip this test.", envRustOut, envAllowSkip)
	}
	names := goldenFiles(t)

	rustNames := jsonFiles(t, rustDir)
	if !reflect.DeepEqual(names, rustNames) {
		t.Errorf("file sets differ between %s and %s=%s:\n  go:   %v\n  rust: %v",
			eventsDir, envRustOut, rustDir, names, rustNames)
	}

	for _, name := range names {
		name := name
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(eventsDir, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(rustDir, name))
			if err != nil {
				t.Fatalf("Rust output missing: %v", err)
			}
			if err := decodeAndCompare(name, want, got); err != nil {
				t.Error(err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("Rust bytes differ from Go bytes: %s", byteDiff("go", "rust", want, got))
			}
		})
	}
}

// TestGoldensRoundTripInGo checks the goldens are stable under Go's own decode/encode, so a
// faithful Rust round trip is expected to reproduce them byte for byte.
func TestGoldensRoundTripInGo(t *testing.T) {
	for _, name := range goldenFiles(t) {
		name := name
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(eventsDir, name))
			if err != nil {
				t.Fatal(err)
			}
			var v interface{} = &Event{}
			if isSnapshot(name) {
				v = &ActorSnapshot{}
			}
			if err := decodeStrict(want, v); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			got, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("Go decode+encode is not the identity: %s", byteDiff("golden", "go re-encoded", want, got))
			}
			if err := decodeAndCompare(name, want, got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestGeneratorReproducesGoldens re-runs ./gen into a temporary directory and requires the
// committed goldens to be exactly its output (same names, same bytes).
func TestGeneratorReproducesGoldens(t *testing.T) {
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("cannot find the go command to run the generator: %v", err)
	}
	out := t.TempDir()
	cmd := exec.Command(goBin, "run", "./gen", out)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./gen %s: %v", out, err)
	}

	committed := goldenFiles(t)
	generated := jsonFiles(t, out)
	if !reflect.DeepEqual(committed, generated) {
		t.Errorf("committed goldens and generator output differ in file names "+
			"(regenerate with: cd tests/golden && go run ./gen ./events):\n  committed: %v\n  generated: %v",
			committed, generated)
	}
	isGenerated := map[string]bool{}
	for _, name := range generated {
		isGenerated[name] = true
	}
	for _, name := range committed {
		if !isGenerated[name] {
			continue // reported above
		}
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(eventsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s: committed golden differs from generator output "+
				"(regenerate with: cd tests/golden && go run ./gen ./events)", name)
		}
	}
}
