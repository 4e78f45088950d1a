// Command gen writes the golden JSON files that pin aether-rs's event encoding to Go's.
//
// Usage (from tests/golden):
//
//	go run ./gen ./events
//
// Every case is written as <dir>/NN_name.json holding exactly json.Marshal's output (no
// trailing newline). Existing *.json files in <dir> are removed first, so the directory
// always holds exactly the current set. The output is deterministic: the cases are fixed
// values (no clock, no randomness, FixedZone locations only) and json.Marshal sorts map keys.
//
// roundtrip_test.go re-runs this generator and fails if the committed files differ.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"aether-rs/tests/golden"
)

// The structs the goldens marshal, defined once in package golden.
type (
	Event         = golden.Event
	ActorSnapshot = golden.ActorSnapshot
)

type goldenCase struct {
	name  string // file name without the NN_ prefix and .json suffix
	value interface{}
}

var (
	// A fixed base instant: 2024-03-15T09:26:53Z.
	base = time.Date(2024, time.March, 15, 9, 26, 53, 0, time.UTC)

	ist     = time.FixedZone("IST", 5*3600+30*60)      // +05:30
	pst     = time.FixedZone("PST", -8*3600)           // -08:00
	npt     = time.FixedZone("NPT", 5*3600+45*60)      // +05:45
	lint    = time.FixedZone("LINT", 14*3600)          // +14:00
	bit     = time.FixedZone("", -12*3600)             // -12:00, unnamed
	nst     = time.FixedZone("NST", -(3*3600 + 30*60)) // -03:30
	cet     = time.FixedZone("Europe/Berlin", 3600)    // a "named location", hermetically
	utcZero = time.FixedZone("UTC+0", 0)               // zero offset but not time.UTC
)

// ev builds an ordinary event at the base time; cases then tweak single fields.
func ev(id string, version int64, data map[string]interface{}) Event {
	return Event{
		ID:        id,
		EventType: "TestEvent",
		ActorID:   "actor-1",
		Version:   version,
		Data:      data,
		Timestamp: base,
	}
}

func with(e Event, f func(*Event)) Event {
	f(&e)
	return e
}

// allControlChars is every byte 0x00..0x1f, in order.
func allControlChars() string {
	var b strings.Builder
	for c := 0; c < 0x20; c++ {
		b.WriteByte(byte(c))
	}
	return b.String()
}

func nested(depth int) interface{} {
	var v interface{} = "bottom"
	for i := depth; i > 0; i-- {
		if i%2 == 0 {
			v = map[string]interface{}{fmt.Sprintf("level%02d", i): v}
		} else {
			v = []interface{}{i, v}
		}
	}
	return v
}

func cases() []goldenCase {
	negZero := math.Copysign(0, -1)
	return []goldenCase{
		{"minimal", ev("evt-minimal", 1, map[string]interface{}{"a": 1})}, // nil Metadata, empty CommandID
		{"nil_data", ev("evt-nil-data", 1, nil)},
		{"empty_data", ev("evt-empty-data", 1, map[string]interface{}{})},
		{"metadata_empty_map", with(ev("evt-md-empty", 2, map[string]interface{}{"k": "v"}), func(e *Event) {
			e.Metadata = map[string]string{} // omitempty drops an empty, non-nil map too
		})},
		{"metadata_full", with(ev("evt-md-full", 3, map[string]interface{}{"k": "v"}), func(e *Event) {
			e.Metadata = map[string]string{
				"correlationId": "corr-123",
				"causationId":   "evt-122",
				"userId":        "user-42",
				"traceId":       "4bf92f3577b34da6a3ce929d0e0e4736",
				"spanId":        "00f067aa0ba902b7",
				"":              "empty key",
				"Zeta":          "upper case sorts first",
				"ключ":          "значение",
				"<html>&":       "\"quoted\" <b>bold</b> & more",
				"empty":         "",
			}
		})},
		{"command_id", with(ev("evt-cmd", 4, map[string]interface{}{"k": "v"}), func(e *Event) {
			e.CommandID = "cmd-7f3a<&>"
		})},
		{"version_zero", ev("evt-v0", 0, map[string]interface{}{})},
		{"version_negative", ev("evt-vneg", -42, map[string]interface{}{})},
		{"version_max", ev("evt-vmax", math.MaxInt64, map[string]interface{}{})},
		{"version_min", ev("evt-vmin", math.MinInt64, map[string]interface{}{})},
		{"unicode", with(ev("evt-ünïcødé-日本", 5, map[string]interface{}{
			"latin":     "café crème brûlée",
			"cjk":       "日本語のテキスト",
			"cyrillic":  "Привет, мир",
			"arabic":    "مرحبا بالعالم",
			"emoji":     "😀🎉👍🏽",
			"zwj":       "👨‍👩‍👧‍👦",
			"flags":     "🇩🇪🇯🇵",
			"combining": "e\u0301 a\u0308",
			"bom":       "\ufeffstart",
			"replchar":  "\ufffd",
			"nbsp":      "a\u00a0b",
			"lineSep":   "line\u2028separator",
			"paraSep":   "paragraph\u2029separator",
			"both":      "\u2028\u2029",
			"nearby":    "\u2027\u202a\u2030", // neighbours of U+2028/9 are not escaped
			"max":       "\U0010ffff",
			"🔑":         "emoji key",
			"日本":        "cjk key",
			"\u2028key": "line separator in a key",
		}), func(e *Event) {
			e.EventType = "Ereignis✓"
			e.ActorID = "акт-🙂"
			e.Metadata = map[string]string{"note": "naïve 🙂 \u2029"}
		})},
		{"escapes", ev("evt-escapes", 6, map[string]interface{}{
			"quote":     `say "hi"`,
			"backslash": `C:\path\to\file`,
			"slash":     "a/b</script>",
			"html":      "<script>alert('x') && y > z</script>",
			"amp":       "Tom & Jerry",
			"del":       "del\x7fchar",
			"tab":       "a\tb",
			"newline":   "line1\nline2",
			"cr":        "a\rb",
			"crlf":      "a\r\nb",
			"apos":      "it's",
			"mixed":     "\"\\/\b\f\n\r\t<>&\x7f",
			"<key>":     "html in key",
			"\"k\\":     "quote and backslash in key",
		})},
		{"control_chars", with(ev("evt-ctrl", 7, map[string]interface{}{
			"all":       allControlChars(),
			"nul":       "a\x00b",
			"backspace": "\b",
			"formfeed":  "\f",
			"bell":      "\a",
			"vtab":      "\v",
			"esc":       "\x1b[31mred\x1b[0m",
			"unitSep":   "\x1f",
			"\x01key":   "control char in key",
		}), func(e *Event) {
			e.CommandID = "cmd\x00\x1f"
			e.Metadata = map[string]string{"ctl": "\b\f\x00"}
		})},
		{"nested", ev("evt-nested", 8, map[string]interface{}{
			"order": map[string]interface{}{
				"id": "o-1",
				"items": []interface{}{
					map[string]interface{}{"sku": "A", "qty": 2, "tags": []interface{}{"x", "y"}},
					map[string]interface{}{"sku": "B", "qty": 1, "tags": []interface{}{}, "attrs": map[string]interface{}{}},
					map[string]interface{}{"nested": []interface{}{[]interface{}{}, []interface{}{map[string]interface{}{}}}},
				},
				"shipping": map[string]interface{}{"address": map[string]interface{}{"city": "Berlin", "zip": "10115"}},
			},
			"emptyArray":  []interface{}{},
			"emptyObject": map[string]interface{}{},
			"nilSlice":    []interface{}(nil), // Go writes a nil slice as null
			"nilMap":      map[string]interface{}(nil),
			"typedSlice":  []string{"a", "b"},
			"typedMap":    map[string]int{"z": 26, "a": 1, "m": 13},
			"bytes":       []byte{0x00, 0x01, 0xfb, 0xff, 0xfe}, // base64 "AAH7//4="
			"deep":        nested(24),
		})},
		{"integers", ev("evt-ints", 9, map[string]interface{}{
			"zero":        0,
			"one":         1,
			"minusOne":    -1,
			"int8":        int8(-128),
			"uint8":       uint8(255),
			"int32":       int32(math.MinInt32),
			"uint32":      uint32(math.MaxUint32),
			"int64Max":    int64(math.MaxInt64),
			"int64Min":    int64(math.MinInt64),
			"uint64Max":   uint64(math.MaxUint64),
			"pow53":       int64(1 << 53),
			"pow53plus1":  int64(1<<53 + 1),
			"negPow53m1":  int64(-(1<<53 + 1)),
			"uint64Big":   uint64(1<<63 + 12345),
			"inArray":     []interface{}{int64(9007199254740993), uint64(18446744073709551615), -9223372036854775808},
			"leadingKey0": 7,
		})},
		{"floats", ev("evt-floats", 10, map[string]interface{}{
			"pointOne":          0.1,
			"pointThree":        0.1 + 0.2, // untyped constants are exact: this is 0.3
			"sumNotExact":       sum(0.1, 0.2),
			"oneE21":            1e21,
			"oneE20":            1e20,
			"justBelow1e21":     999999999999999900000.0,
			"oneEMinus7":        1e-7,
			"oneEMinus6":        1e-6,
			"justBelow1eMinus6": 9.99999999999999e-7,
			"fraction":          123456789.125,
			"negZero":           negZero,
			"posZero":           0.0,
			"three":             3.0,
			"minusThree":        -3.0,
			"bigWhole":          1e15,
			"twoPow53Float":     9007199254740992.0,
			"twoPow53p1Float":   9007199254740993.0, // rounds to 2^53
			"maxFloat":          math.MaxFloat64,
			"smallestNonzero":   math.SmallestNonzeroFloat64,
			"smallestNormal":    2.2250738585072014e-308,
			"huge":              1.5e300,
			"tinyNeg":           -1e-300,
			"pi":                math.Pi,
			"e":                 math.E,
			"third":             1.0 / 3.0,
			"negFraction":       -0.000123,
			"manyDigits":        1.2345678901234567e20,
			"expBoundary":       1.2345678901234567e21,
			"float32":           float32(0.1),
			"float32Big":        float32(3.4e38),
			"float32Small":      float32(1e-7),
			"inArray":           []interface{}{0.5, -2.5, 1e100, 1e-100},
		})},
		// Shortest-digit texts that a non-correctly-rounded decimal parser (serde_json without
		// its float_roundtrip feature) reads one ULP off, so they re-encode differently.
		{"floats_parse_precision", ev("evt-floats-parse", 10, map[string]interface{}{
			"a": 9.405090880450124e-14,
			"b": 3.179058731989854e+115,
			"c": -1.1193343192355711e-259,
			"d": 0.00040380328579570036,
			"e": -2.2661969241072106e-290,
			"f": 2.830341511804452e-16,
			"g": 999999999999999900000.0,
		})},
		{"bools_nulls", ev("evt-bools", 11, map[string]interface{}{
			"t":     true,
			"f":     false,
			"null":  nil,
			"array": []interface{}{true, false, nil, 0, "", []interface{}{nil}},
			"obj":   map[string]interface{}{"n": nil, "b": true},
		})},
		{"keys_sorting", ev("evt-keys", 12, map[string]interface{}{
			"b": 1, "a": 2, "B": 3, "A": 4, "_": 5, "10": 6, "9": 7, "": 8,
			"é": 9, "z": 10, "aa": 11, "a b": 12, "~": 13, "😀": 14, "ÿ": 15, "Ā": 16,
		})},
		{"long_string", ev("evt-long", 13, map[string]interface{}{
			"text": strings.Repeat("Lorem ipsum <dolor> & sit \"amet\" — ünïcødé 🙂\n", 16),
		})},
		{"ts_zero", with(ev("evt-ts-zero", 14, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Time{}
		})},
		{"ts_utc_fraction_trailing_zeros", with(ev("evt-ts-120", 15, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(2024, 1, 2, 3, 4, 5, 120000000, time.UTC) // .120000000 → .12
		})},
		{"ts_utc_nanos", with(ev("evt-ts-nanos", 16, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
			e.Metadata = map[string]string{"other": "2024-02-29T23:59:59.000000001Z"}
			e.Data = map[string]interface{}{
				"oneNano":   time.Date(2024, 2, 29, 0, 0, 0, 1, time.UTC),
				"micros":    time.Date(2024, 2, 29, 0, 0, 0, 123456000, time.UTC),
				"halfSec":   time.Date(2024, 2, 29, 0, 0, 0, 500000000, time.UTC),
				"preEpoch":  time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC),
				"withZone":  time.Date(2024, 2, 29, 0, 0, 0, 0, ist),
				"zeroValue": time.Time{},
			}
		})},
		{"ts_offset_plus_0530", with(ev("evt-ts-ist", 17, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(2024, 6, 1, 18, 45, 30, 250000000, ist)
		})},
		{"ts_offset_minus_0800", with(ev("evt-ts-pst", 18, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(2023, 12, 31, 23, 59, 59, 0, pst) // 2024 already in UTC
		})},
		{"ts_named_fixed_zone", with(ev("evt-ts-cet", 19, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(2024, 3, 31, 1, 59, 59, 1000, cet)
		})},
		{"ts_zero_offset_not_utc", with(ev("evt-ts-utc0", 20, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(2024, 3, 15, 9, 26, 53, 0, utcZero) // written as Z
		})},
		{"ts_extreme_offsets", with(ev("evt-ts-extreme", 21, map[string]interface{}{
			"nepal": time.Date(2024, 1, 1, 0, 0, 0, 0, npt),
			"bit":   time.Date(2024, 1, 1, 0, 0, 0, 0, bit),
			"nst":   time.Date(2024, 1, 1, 0, 0, 0, 0, nst),
		}), func(e *Event) {
			e.Timestamp = time.Date(2024, 1, 1, 0, 0, 0, 0, lint)
		})},
		{"ts_year_bounds", with(ev("evt-ts-bounds", 22, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
		})},
		{"ts_year_one_with_offset", with(ev("evt-ts-year1", 23, map[string]interface{}{}), func(e *Event) {
			// Local year 0001, UTC instant in year 0000.
			e.Timestamp = time.Date(1, 1, 1, 0, 30, 0, 0, cet)
		})},
		{"ts_pre_epoch", with(ev("evt-ts-1900", 24, map[string]interface{}{}), func(e *Event) {
			e.Timestamp = time.Date(1900, 2, 28, 12, 0, 0, 100, pst)
		})},
		{"realistic_order_placed", Event{
			ID:        "01HS7Q2V4M8K9XJ3N5P6R7T8W9",
			EventType: "OrderPlaced",
			ActorID:   "order-2024-000123",
			CommandID: "cmd-01HS7Q2TZ0",
			Version:   17,
			Data: map[string]interface{}{
				"customerId": "cust-99",
				"currency":   "EUR",
				"total":      149.99,
				"discount":   0.0,
				"items": []interface{}{
					map[string]interface{}{"sku": "BOOK-1", "name": "Go & Rust <2nd ed.>", "qty": 1, "price": 49.99},
					map[string]interface{}{"sku": "MUG-☕", "name": "Mug", "qty": 2, "price": 50.0},
				},
				"gift":  false,
				"note":  nil,
				"count": int64(3),
			},
			Metadata: map[string]string{
				"correlationId": "corr-abc",
				"causationId":   "cmd-01HS7Q2TZ0",
				"userId":        "user-1",
			},
			Timestamp: time.Date(2024, 3, 15, 10, 0, 0, 123456789, ist),
		}},
		{"snapshot_state", ActorSnapshot{
			ActorID: "order-2024-000123",
			Version: 17,
			State: map[string]interface{}{
				"status": "placed",
				"total":  149.99,
				"lines":  []interface{}{map[string]interface{}{"sku": "BOOK-1", "qty": 1}},
				"big":    uint64(math.MaxUint64),
				"flags":  map[string]interface{}{"paid": false, "<vip>": true},
				"empty":  map[string]interface{}{},
			},
			Timestamp: time.Date(2024, 3, 15, 10, 0, 1, 0, time.UTC),
		}},
		{"snapshot_nil_state", ActorSnapshot{
			ActorID:   "actor-nil",
			Version:   0,
			State:     nil,
			Timestamp: time.Time{},
		}},
		{"snapshot_empty_state_offset", ActorSnapshot{
			ActorID:   "actor-ø\u2028",
			Version:   -1,
			State:     map[string]interface{}{},
			Timestamp: time.Date(2025, 7, 4, 12, 30, 0, 10, pst),
		}},
	}
}

// sum is a function so the addition happens in float64 at run time, not exactly at compile time.
func sum(a, b float64) float64 { return a + b }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./gen <output-dir>")
		os.Exit(2)
	}
	if err := generate(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func generate(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stale, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, c := range cases() {
		if seen[c.name] {
			return fmt.Errorf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		b, err := json.Marshal(c.value)
		if err != nil {
			return fmt.Errorf("case %s: %w", c.name, err)
		}
		name := fmt.Sprintf("%02d_%s.json", i+1, c.name)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
