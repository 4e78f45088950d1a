package aether

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Events and snapshots cross the C boundary as JSON: exactly what encoding/json writes
// for Event and ActorSnapshot (the store re-encodes byte-for-byte the same way).
// encoding/json spends most of a save and nearly all of a replay in reflection and
// allocation, so events take a hand-written path here:
//
//   - appendEvent writes the bytes json.Marshal would write. Types it does not know
//     (anything in Data but nil, bool, string, numbers, map[string]interface{} and
//     []interface{}), strings needing escapes, and unusual timestamps are written by
//     encoding/json itself, so the output stays identical by construction.
//   - decodeEvents decodes the arrays the store returns into what json.Unmarshal would
//     produce. On anything it does not handle (an unknown or duplicate key, a null
//     where a value is expected, invalid JSON, a number out of range) it starts over
//     with encoding/json, so results and errors stay encoding/json's.
//
// codec_test.go checks both against encoding/json on generated and fuzzed inputs.
// Snapshots, rare and not on a hot path, use encoding/json directly.

type buffer struct{ b []byte }

var buffers = sync.Pool{New: func() interface{} { return &buffer{b: make([]byte, 0, 1024)} }}

func getBuffer() *buffer { return buffers.Get().(*buffer) }

// putBuffer returns a buffer to the pool unless it grew large (one huge batch should not
// pin its memory forever).
func putBuffer(b *buffer) {
	if cap(b.b) <= 1<<20 {
		buffers.Put(b)
	}
}

func encodeError(e *Event, err error) error {
	return newError(CodeInvalidEvent, "cannot encode event %q of actor %q: %v", e.ID, e.ActorID, err)
}

// appendEvent appends json.Marshal(e) to b.
func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"eventType":`...)
	b = appendString(b, e.EventType)
	b = append(b, `,"actorId":`...)
	b = appendString(b, e.ActorID)
	if e.CommandID != "" {
		b = append(b, `,"commandId":`...)
		b = appendString(b, e.CommandID)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"data":`...)
	var err error
	if b, err = appendObject(b, e.Data, 0); err != nil {
		return b, encodeError(e, err)
	}
	if len(e.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = appendStringMap(b, e.Metadata)
	}
	b = append(b, `,"timestamp":`...)
	if b, err = appendTime(b, e.Timestamp); err != nil {
		return b, encodeError(e, err)
	}
	return append(b, '}'), nil
}

// appendTime appends t.MarshalJSON(). The common case (a four-digit year, an offset of
// whole minutes under 24 hours) is RFC 3339 with nanoseconds; anything else goes through
// MarshalJSON for its exact output or error.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	_, offset := t.Zone()
	if y := t.Year(); y >= 0 && y <= 9999 && offset%60 == 0 && offset > -24*3600 && offset < 24*3600 {
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	}
	out, err := t.MarshalJSON()
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// plainASCII[c] is true for the bytes encoding/json writes unescaped (it escapes '"',
// '\\', control characters and, for HTML safety, '<', '>' and '&').
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as encoding/json writes it. Strings that need no escaping are
// copied; the rest are written by encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !plainASCII[c] {
				return appendStringSlow(b, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return appendStringSlow(b, s)
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendStringSlow(b []byte, s string) []byte {
	out, _ := json.Marshal(s) // a string always encodes
	return append(b, out...)
}

// appendFloat is encoding/json's float encoder (ES6 number formatting).
func appendFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, bits)}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// maxFastDepth is how deep appendValue recurses before it hands a value to
// encoding/json, which detects cycles (a map that contains itself) instead of
// overflowing the stack.
const maxFastDepth = 64

// appendValue appends json.Marshal(v).
func appendValue(b []byte, v interface{}, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case float64:
		return appendFloat(b, x, 64)
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case float32:
		return appendFloat(b, float64(x), 32)
	case map[string]interface{}:
		return appendObject(b, x, depth+1)
	case []interface{}:
		if x == nil {
			return append(b, "null"...), nil
		}
		if depth >= maxFastDepth {
			return appendMarshal(b, x)
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	return appendMarshal(b, v)
}

func appendMarshal(b []byte, v interface{}) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// sortKeys sorts map keys as encoding/json does (byte-wise).
func sortKeys(keys []string) {
	if len(keys) > 12 {
		sort.Strings(keys)
		return
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

func appendObject(b []byte, m map[string]interface{}, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	if depth >= maxFastDepth {
		return appendMarshal(b, m)
	}
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k], depth); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendStringMap(b []byte, m map[string]string) []byte {
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func marshalSnapshot(s *ActorSnapshot) ([]byte, error) {
	out, err := json.Marshal(s)
	if err != nil {
		return nil, newError(CodeInvalidEvent, "cannot encode snapshot of actor %q: %v", s.ActorID, err)
	}
	return out, nil
}

func decodeError(what string, err error) error {
	return newError(CodeCorrupt, "cannot decode %s returned by the store: %v", what, err)
}

// decodeEvents decodes a JSON array of events. data may be library memory: nothing
// decoded aliases it.
func decodeEvents(data []byte) ([]*Event, error) {
	d := newDecoder(data)
	if events, ok := d.eventArray(); ok && d.end() {
		return events, nil
	}
	events := []*Event{}
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, decodeError("events", err)
	}
	return events, nil
}

type wireReplayError struct {
	Sequence uint64 `json:"sequence"`
	Raw      []byte `json:"raw"` // base64, decoded by encoding/json into a new slice
	Cause    string `json:"cause"`
}

type wireReplayResult struct {
	Events []*Event          `json:"events"`
	Errors []wireReplayError `json:"errors"`
}

// decodeReplayResult decodes `{"events":[...],"errors":[...]}`.
func decodeReplayResult(data []byte) (*ReplayResult, error) {
	var w wireReplayResult
	const head, cleanTail = `{"events":`, `,"errors":[]}`
	fast := false
	if n := len(data); n >= len(head)+len(cleanTail) && string(data[:len(head)]) == head &&
		string(data[n-len(cleanTail):]) == cleanTail {
		// The common case, no damaged record: only the events array needs decoding.
		d := newDecoder(data[len(head) : n-len(cleanTail)])
		w.Events, fast = d.eventArray()
		fast = fast && d.end()
	}
	if !fast {
		w = wireReplayResult{}
		if err := json.Unmarshal(data, &w); err != nil {
			return nil, decodeError("the replay result", err)
		}
	}
	r := &ReplayResult{Events: w.Events}
	if r.Events == nil {
		r.Events = []*Event{}
	}
	for _, e := range w.Errors {
		r.Errors = append(r.Errors, ReplayError{
			SequenceNumber: e.Sequence,
			RawData:        e.Raw,
			Err:            &Error{Code: CodeCorrupt, Message: e.Cause},
		})
	}
	return r, nil
}

// decodeSequenced decodes `[{"sequence":N,"event":{...}},...]`.
func decodeSequenced(data []byte) ([]SequencedEvent, error) {
	d := newDecoder(data)
	if events, ok := d.sequencedArray(); ok && d.end() {
		return events, nil
	}
	events := []SequencedEvent{}
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, decodeError("events", err)
	}
	return events, nil
}

func decodeSnapshot(data []byte) (*ActorSnapshot, error) {
	var s ActorSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, decodeError("the snapshot", err)
	}
	return &s, nil
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }
