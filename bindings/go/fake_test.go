package aether

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// fakeBackend is a pure-Go backend with the C library's semantics, so the race detector
// sees the memory on both sides of the seam. It mirrors the memory store behind the C ABI
// (crates/aether-core/src/memory.rs through crates/aether-ffi): the same checks in the
// same order, the same status codes and messages, the same EventStored delivery, and the
// same wire format (JSON as the library re-encodes it), so the package's codec and error
// mapping run unchanged on top of it. The differential test (fake_diff_test.go) holds it
// to the real memory and sled stores.
type fakeBackend struct {
	mu        sync.RWMutex // the library's store lock: calls read, saves and Close write
	closed    bool
	log       [][]byte            // every event's wire JSON in commit order; index = sequence-1
	actors    map[string][]fakeAt // per actor, in version order
	snapshots map[string]fakeSnapshot
	metrics   capi.Metrics
	notify    chan capi.EventStored // bounded: a full channel drops (counted)
	closedCh  chan struct{}         // closed by Close: wakes pollers, like the library's disconnect

	// freed is written by Free without synchronisation and read the same way by every
	// call, so a Free that races with a call (a use-after-free on the real library, which
	// the race detector cannot see there) is a reported data race here.
	freed bool
}

type fakeAt struct {
	version  int64
	sequence uint64
}

type fakeSnapshot struct {
	version int64
	json    []byte
}

// The library's limits (aether_core::Limits::default()).
const (
	fakeMaxActorIDLen = 4096
	fakeMaxRecordLen  = 1 << 20
	fakeMaxBatchLen   = 10_000
	fakeMaxBatchBytes = 64 << 20
	fakeDefaultNotify = 65536
)

func newFakeBackend(eventStoredCapacity uint64) *fakeBackend {
	if eventStoredCapacity == 0 {
		eventStoredCapacity = fakeDefaultNotify
	}
	return &fakeBackend{
		actors:    map[string][]fakeAt{},
		snapshots: map[string]fakeSnapshot{},
		notify:    make(chan capi.EventStored, eventStoredCapacity),
		closedCh:  make(chan struct{}),
	}
}

// openFake opens a Store over a fresh fakeBackend. Options as for OpenMemory.
func openFake(opts ...Option) (*Store, error) {
	o, err := memoryOptions(opts)
	if err != nil {
		return nil, err
	}
	return newStore(newFakeBackend(o.sled.EventStoredCapacity)), nil
}

func (f *fakeBackend) live() {
	if f.freed {
		panic("aether fake: a call on a freed handle")
	}
}

// Failures, with the library's statuses and messages (aether-ffi's guard.rs and
// aether-core's error.rs).

func fakeFailure(status int, format string, args ...interface{}) *capi.Failure {
	return &capi.Failure{Status: status, Message: fmt.Sprintf(format, args...)}
}

func fakeClosed() *capi.Failure {
	return fakeFailure(capi.StatusStoreClosed, "store is closed: aether_store_close() was called")
}

func fakeInvalidArgument(format string, args ...interface{}) *capi.Failure {
	return fakeFailure(capi.StatusInvalidArgument, "invalid argument: "+format, args...)
}

// fakeInvalidInput is aether_core::Error::InvalidInput.
func fakeInvalidInput(field, format string, args ...interface{}) *capi.Failure {
	return fakeFailure(capi.StatusInvalidEvent, "invalid "+field+": "+format, args...)
}

func fakeConflict(status int, message, actorID string, attempted, current int64) *capi.Failure {
	return &capi.Failure{Status: status, Message: message, HasConflict: true,
		ActorID: actorID, AttemptedVersion: attempted, CurrentVersion: current}
}

// fakeUTF8 is the library's UTF-8 check of a borrowed string, with Rust's message.
func fakeUTF8(s, what string) *capi.Failure {
	if utf8.ValidString(s) {
		return nil
	}
	return fakeInvalidArgument("%s is not valid UTF-8: %s", what, rustUTF8Error(s))
}

// rustUTF8Error is the Display of Rust's core::str::Utf8Error for s (which is invalid).
func rustUTF8Error(s string) string {
	cont := func(i int) bool { return s[i]&0xC0 == 0x80 }
	i := 0
	for i < len(s) {
		first := s[i]
		if first < 0x80 {
			i++
			continue
		}
		var width int
		switch {
		case first >= 0xC2 && first <= 0xDF:
			width = 2
		case first >= 0xE0 && first <= 0xEF:
			width = 3
		case first >= 0xF0 && first <= 0xF4:
			width = 4
		}
		invalid := func(n int) string {
			return fmt.Sprintf("invalid utf-8 sequence of %d bytes from index %d", n, i)
		}
		incomplete := fmt.Sprintf("incomplete utf-8 byte sequence from index %d", i)
		if width == 0 {
			return invalid(1)
		}
		if i+1 >= len(s) {
			return incomplete
		}
		second := s[i+1]
		switch width {
		case 2:
			if !cont(i + 1) {
				return invalid(1)
			}
		case 3, 4:
			ok := false
			switch {
			case first == 0xE0:
				ok = second >= 0xA0 && second <= 0xBF
			case first == 0xED:
				ok = second >= 0x80 && second <= 0x9F
			case first <= 0xEF:
				ok = second >= 0x80 && second <= 0xBF
			case first == 0xF0:
				ok = second >= 0x90 && second <= 0xBF
			case first == 0xF4:
				ok = second >= 0x80 && second <= 0x8F
			default:
				ok = second >= 0x80 && second <= 0xBF
			}
			if !ok {
				return invalid(1)
			}
			for k := 2; k < width; k++ {
				if i+k >= len(s) {
					return incomplete
				}
				if !cont(i + k) {
					return invalid(k)
				}
			}
		}
		i += width
	}
	return "valid"
}

// rustDebug quotes s as Rust's {:?} does for the strings the tests use: ASCII escapes,
// \u{..} for other control and unprintable characters, the rest as is.
func rustDebug(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\n':
			b.WriteString(`\n`)
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case 0:
			b.WriteString(`\0`)
		default:
			if r < 0x20 || r == 0x7f || (r != ' ' && !unicode.IsPrint(r)) {
				fmt.Fprintf(&b, `\u{%x}`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// The wire format. The library decodes what it is given (serde_json with the Go
// original's field rules) and hands back its own encoding of what it decoded, Go's
// encoding/json byte for byte: the fake decodes and re-encodes the same way.

type fakeEvent struct {
	actorID string
	id      string
	version int64
	json    []byte // as the library re-encodes it
}

type fakeWireEvent struct {
	ID        *string           `json:"id"`
	EventType *string           `json:"eventType"`
	ActorID   *string           `json:"actorId"`
	CommandID *string           `json:"commandId"`
	Version   *int64            `json:"version"`
	Data      json.RawMessage   `json:"data"`
	Metadata  map[string]string `json:"metadata"`
	Timestamp json.RawMessage   `json:"timestamp"`
}

type fakeWireSnapshot struct {
	ActorID   *string         `json:"actorId"`
	Version   *int64          `json:"version"`
	State     json.RawMessage `json:"state"`
	Timestamp json.RawMessage `json:"timestamp"`
}

// fakeDecodeJSON is the library's decode step: UTF-8 first (an invalid argument), then
// JSON of the expected shape (an invalid event). Messages of malformed JSON are Go's, not
// serde's: this package never sends malformed JSON.
func fakeDecodeJSON(data []byte, what string, v interface{}) *capi.Failure {
	if !utf8.Valid(data) {
		return fakeInvalidArgument("%s JSON is not valid UTF-8: %s", what, rustUTF8Error(string(data)))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fakeFailure(capi.StatusInvalidEvent, "invalid %s JSON: %v", what, err)
	}
	return nil
}

func fakeParseEvent(raw []byte, what string) (fakeEvent, *capi.Failure) {
	var w fakeWireEvent
	if f := fakeDecodeJSON(raw, what, &w); f != nil {
		return fakeEvent{}, f
	}
	missing := ""
	switch {
	case w.ID == nil:
		missing = "id"
	case w.EventType == nil:
		missing = "eventType"
	case w.ActorID == nil:
		missing = "actorId"
	case w.Version == nil:
		missing = "version"
	case w.Timestamp == nil:
		missing = "timestamp"
	}
	if missing != "" {
		return fakeEvent{}, fakeFailure(capi.StatusInvalidEvent, "invalid %s JSON: missing field `%s`", what, missing)
	}
	b := append([]byte(nil), `{"id":`...)
	b = appendString(b, *w.ID)
	b = append(b, `,"eventType":`...)
	b = appendString(b, *w.EventType)
	b = append(b, `,"actorId":`...)
	b = appendString(b, *w.ActorID)
	if w.CommandID != nil && *w.CommandID != "" {
		b = append(b, `,"commandId":`...)
		b = appendString(b, *w.CommandID)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, *w.Version, 10)
	b = append(b, `,"data":`...)
	var f *capi.Failure
	if b, f = fakeAppendObject(b, w.Data, what, "data"); f != nil {
		return fakeEvent{}, f
	}
	if len(w.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = appendStringMap(b, w.Metadata)
	}
	b = append(b, `,"timestamp":`...)
	if b, f = fakeAppendTimestamp(b, w.Timestamp, what); f != nil {
		return fakeEvent{}, f
	}
	b = append(b, '}')
	return fakeEvent{actorID: *w.ActorID, id: *w.ID, version: *w.Version, json: b}, nil
}

func fakeParseSnapshot(raw []byte) (actorID string, version int64, wire []byte, f *capi.Failure) {
	var w fakeWireSnapshot
	if f := fakeDecodeJSON(raw, "snapshot", &w); f != nil {
		return "", 0, nil, f
	}
	if w.ActorID == nil || w.Version == nil || w.Timestamp == nil {
		return "", 0, nil, fakeFailure(capi.StatusInvalidEvent, "invalid snapshot JSON: a required field is missing")
	}
	b := append([]byte(nil), `{"actorId":`...)
	b = appendString(b, *w.ActorID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, *w.Version, 10)
	b = append(b, `,"state":`...)
	if b, f = fakeAppendObject(b, w.State, "snapshot", "state"); f != nil {
		return "", 0, nil, f
	}
	b = append(b, `,"timestamp":`...)
	if b, f = fakeAppendTimestamp(b, w.Timestamp, "snapshot"); f != nil {
		return "", 0, nil, f
	}
	return *w.ActorID, *w.Version, append(b, '}'), nil
}

// fakeAppendTimestamp keeps the timestamp's text: the library keeps the offset it was
// written in and writes it back as Go does, which is how Go wrote it.
func fakeAppendTimestamp(b []byte, raw json.RawMessage, what string) ([]byte, *capi.Failure) {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return b, fakeFailure(capi.StatusInvalidEvent, "invalid %s JSON: timestamp: %v", what, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, text); err != nil {
		return b, fakeFailure(capi.StatusInvalidEvent, "invalid %s JSON: timestamp: %v", what, err)
	}
	return appendString(b, text), nil
}

// fakeAppendObject re-encodes an object (or null) as the library does: keys sorted,
// strings escaped as Go escapes them, numbers as serde_json keeps them (integers that
// fit in 64 bits as written, everything else as the nearest float64 in Go's format).
func fakeAppendObject(b []byte, raw json.RawMessage, what, field string) ([]byte, *capi.Failure) {
	if len(raw) == 0 || string(raw) == "null" {
		return append(b, "null"...), nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]interface{}
	if err := d.Decode(&m); err != nil {
		return b, fakeFailure(capi.StatusInvalidEvent, "invalid %s JSON: %s: %v", what, field, err)
	}
	b, err := fakeAppendValue(b, m)
	if err != nil {
		return b, fakeFailure(capi.StatusInvalidEvent, "invalid %s JSON: %s: %v", what, field, err)
	}
	return b, nil
}

func fakeAppendValue(b []byte, v interface{}) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendString(b, v), nil
	case json.Number:
		return fakeAppendNumber(b, string(v))
	case []interface{}:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = fakeAppendValue(b, x); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]interface{}:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = fakeAppendValue(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return b, fmt.Errorf("unexpected JSON value %T", v)
}

func fakeAppendNumber(b []byte, n string) ([]byte, error) {
	if !strings.ContainsAny(n, ".eE") {
		if n == "-0" {
			return append(b, "-0"...), nil // serde_json reads -0 as the float -0.0
		}
		if _, err := strconv.ParseInt(n, 10, 64); err == nil {
			return append(b, n...), nil
		}
		if _, err := strconv.ParseUint(n, 10, 64); err == nil {
			return append(b, n...), nil
		}
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return b, fmt.Errorf("number out of range: %s", n) // serde_json refuses it too
	}
	return appendFloat(b, f, 64)
}

// The store.

func (f *fakeBackend) latest(actorID string) int64 {
	if at := f.actors[actorID]; len(at) > 0 {
		return at[len(at)-1].version
	}
	return 0
}

// checkActorID is Limits::check_actor_id.
func fakeCheckActorID(actorID string) *capi.Failure {
	if actorID == "" {
		return fakeInvalidInput("actorId", "must not be empty")
	}
	if len(actorID) > fakeMaxActorIDLen {
		return fakeInvalidInput("actorId", "is %d bytes, longer than the limit of %d bytes", len(actorID), fakeMaxActorIDLen)
	}
	return nil
}

// append is MemoryStore::append behind the FFI's closed check.
func (f *fakeBackend) append(events []fakeEvent) (uint64, *capi.Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, fakeClosed()
	}
	// Limits::check_batch, then each record's length, then the batch's.
	if len(events) == 0 {
		return 0, fakeInvalidInput("events", "batch is empty")
	}
	if len(events) > fakeMaxBatchLen {
		return 0, fakeInvalidInput("events", "batch of %d events exceeds the limit of %d", len(events), fakeMaxBatchLen)
	}
	actorID := events[0].actorID
	if fl := fakeCheckActorID(actorID); fl != nil {
		return 0, fl
	}
	for i := 1; i < len(events); i++ {
		if events[i].actorID != actorID {
			return 0, fakeInvalidInput("actorId", "a batch holds one actor's events; found %s after %s",
				rustDebug(events[i].actorID), rustDebug(actorID))
		}
		if events[i].version <= events[i-1].version {
			return 0, fakeInvalidInput("version", "versions in a batch must be strictly increasing; %d follows %d",
				events[i].version, events[i-1].version)
		}
	}
	total := 0
	for _, e := range events {
		if len(e.json) > fakeMaxRecordLen {
			return 0, fakeInvalidInput("event", "encodes to %d bytes, larger than the limit of %d bytes", len(e.json), fakeMaxRecordLen)
		}
		total += len(e.json)
	}
	if total > fakeMaxBatchBytes {
		return 0, fakeInvalidInput("events", "batch encodes to %d bytes, larger than the limit of %d bytes", total, fakeMaxBatchBytes)
	}
	current := f.latest(actorID)
	if events[0].version <= current {
		f.metrics.VersionConflicts++
		return 0, fakeConflict(capi.StatusVersionConflict,
			fmt.Sprintf("version conflict: actor %s has version %d, cannot save version %d",
				rustDebug(actorID), current, events[0].version),
			actorID, events[0].version, current)
	}
	now := time.Now().UnixNano()
	for _, e := range events {
		f.log = append(f.log, e.json)
		seq := uint64(len(f.log))
		f.actors[actorID] = append(f.actors[actorID], fakeAt{e.version, seq})
		f.metrics.EventsSaved++
	}
	// Published under the lock, so notifications leave in commit order.
	first := uint64(len(f.log)) - uint64(len(events)) + 1
	for i, e := range events {
		f.metrics.EventStoredPublished++
		n := capi.EventStored{EventID: e.id, ActorID: actorID, Version: e.version,
			TimestampUnixNanos: now, Sequence: first + uint64(i)}
		select {
		case f.notify <- n:
		default:
			f.metrics.EventStoredDropped++
		}
	}
	return uint64(len(f.log)), nil
}

func (f *fakeBackend) SaveEvent(data []byte) (uint64, *capi.Failure) {
	f.live()
	e, fl := fakeParseEvent(data, "event")
	if fl != nil {
		return 0, fl
	}
	return f.append([]fakeEvent{e})
}

func (f *fakeBackend) SaveEvents(data []byte) (uint64, *capi.Failure) {
	f.live()
	var raws []json.RawMessage
	if fl := fakeDecodeJSON(data, "batch of events", &raws); fl != nil {
		return 0, fl
	}
	events := make([]fakeEvent, len(raws))
	for i, raw := range raws {
		var fl *capi.Failure
		if events[i], fl = fakeParseEvent(raw, "batch of events"); fl != nil {
			return 0, fl
		}
	}
	return f.append(events)
}

// lend hands out JSON as the library lends its buffers, and scribbles over it once use
// returns: decoded results that still pointed into it would show the damage.
func lend(json []byte, use func([]byte)) *capi.Failure {
	use(json)
	for i := range json {
		json[i] = '#'
	}
	return nil
}

func (f *fakeBackend) actorEvents(actorID string, fromVersion int64, open string) ([]byte, *capi.Failure) {
	if fl := fakeUTF8(actorID, "actor_id"); fl != nil {
		return nil, fl
	}
	if fromVersion < 0 {
		return nil, fakeInvalidArgument("from_version is %d; it must be >= 0 (0 and 1 both mean from the first event)", fromVersion)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, fakeClosed()
	}
	out := append([]byte(nil), open...)
	n := 0
	for _, at := range f.actors[actorID] {
		if at.version < fromVersion {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, f.log[at.sequence-1]...)
		n++
	}
	return append(out, ']'), nil
}

func (f *fakeBackend) GetEvents(actorID string, fromVersion int64, use func([]byte)) *capi.Failure {
	f.live()
	out, fl := f.actorEvents(actorID, fromVersion, "[")
	if fl != nil {
		return fl
	}
	return lend(out, use)
}

func (f *fakeBackend) GetEventsWithErrors(actorID string, fromVersion int64, use func([]byte)) *capi.Failure {
	f.live()
	out, fl := f.actorEvents(actorID, fromVersion, `{"events":[`)
	if fl != nil {
		return fl
	}
	// The fake keeps no damaged records, like the memory store.
	return lend(append(out, `,"errors":[]}`...), use)
}

func (f *fakeBackend) GetLatestVersion(actorID string) (int64, *capi.Failure) {
	f.live()
	if fl := fakeUTF8(actorID, "actor_id"); fl != nil {
		return 0, fl
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return 0, fakeClosed()
	}
	return f.latest(actorID), nil
}

func (f *fakeBackend) SaveSnapshot(data []byte) *capi.Failure {
	f.live()
	actorID, version, wire, fl := fakeParseSnapshot(data)
	if fl != nil {
		return fl
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fakeClosed()
	}
	if fl := fakeCheckActorID(actorID); fl != nil {
		return fl
	}
	if len(wire) > fakeMaxRecordLen {
		return fakeInvalidInput("snapshot", "encodes to %d bytes, larger than the limit of %d bytes", len(wire), fakeMaxRecordLen)
	}
	if existing, ok := f.snapshots[actorID]; ok && version < existing.version {
		return fakeConflict(capi.StatusStaleSnapshot,
			fmt.Sprintf("stale snapshot: actor %s has a snapshot at version %d, refusing version %d",
				rustDebug(actorID), existing.version, version),
			actorID, version, existing.version)
	}
	f.snapshots[actorID] = fakeSnapshot{version: version, json: wire}
	f.metrics.SnapshotsSaved++
	return nil
}

func (f *fakeBackend) GetLatestSnapshot(actorID string, use func([]byte)) *capi.Failure {
	f.live()
	if fl := fakeUTF8(actorID, "actor_id"); fl != nil {
		return fl
	}
	f.mu.RLock()
	if f.closed {
		f.mu.RUnlock()
		return fakeClosed()
	}
	s, ok := f.snapshots[actorID]
	f.mu.RUnlock()
	if !ok {
		return fakeFailure(capi.StatusNotFound, "not found: the actor has no snapshot")
	}
	return lend(append([]byte(nil), s.json...), use)
}

func (f *fakeBackend) ReadAll(fromSequence uint64, limit uint64, use func([]byte)) *capi.Failure {
	f.live()
	f.mu.RLock()
	if f.closed {
		f.mu.RUnlock()
		return fakeClosed()
	}
	out := []byte{'['}
	if fromSequence == 0 {
		fromSequence = 1
	}
	for seq := fromSequence; seq <= uint64(len(f.log)) && seq-fromSequence < limit; seq++ {
		if seq > fromSequence {
			out = append(out, ',')
		}
		out = append(out, `{"sequence":`...)
		out = strconv.AppendUint(out, seq, 10)
		out = append(out, `,"event":`...)
		out = append(out, f.log[seq-1]...)
		out = append(out, '}')
	}
	f.mu.RUnlock()
	return lend(append(out, ']'), use)
}

func (f *fakeBackend) LastSequence() (uint64, *capi.Failure) {
	f.live()
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return 0, fakeClosed()
	}
	return uint64(len(f.log)), nil
}

// startPoll is the checks a poll makes before it waits.
func (f *fakeBackend) startPoll(timeoutMs int64) *capi.Failure {
	if timeoutMs < 0 {
		return fakeInvalidArgument("timeout_ms is %d; it must be >= 0", timeoutMs)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return fakeClosed()
	}
	return nil
}

// receive waits like the library's crossbeam receiver: no lock held while waiting, and
// once the store is closed (the channel disconnected) what is queued still comes out
// before the poller is told the store is closed.
func (f *fakeBackend) receive(timeoutMs int64) (capi.EventStored, *capi.Failure) {
	select {
	case n := <-f.notify:
		return n, nil
	default:
	}
	closed := func() (capi.EventStored, *capi.Failure) {
		select {
		case n := <-f.notify:
			return n, nil
		default:
			return capi.EventStored{}, fakeClosed()
		}
	}
	if timeoutMs == 0 {
		select {
		case <-f.closedCh:
			return closed()
		default:
			return capi.EventStored{}, fakeFailure(capi.StatusPollTimeout, "no EventStored notification arrived within the timeout")
		}
	}
	timer := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
	defer timer.Stop()
	select {
	case n := <-f.notify:
		return n, nil
	case <-f.closedCh:
		return closed()
	case <-timer.C:
		return capi.EventStored{}, fakeFailure(capi.StatusPollTimeout, "no EventStored notification arrived within the timeout")
	}
}

func (f *fakeBackend) PollOne(timeoutMs int64) (capi.EventStored, *capi.Failure) {
	f.live()
	if fl := f.startPoll(timeoutMs); fl != nil {
		return capi.EventStored{}, fl
	}
	return f.receive(timeoutMs)
}

func (f *fakeBackend) PollEventStored(timeoutMs int64, buf *capi.EventStoredBuffer, dst []capi.EventStored) ([]capi.EventStored, *capi.Failure) {
	f.live()
	if buf.Cap() == 0 {
		return dst, fakeInvalidArgument("capacity is 0")
	}
	if fl := f.startPoll(timeoutMs); fl != nil {
		return dst, fl
	}
	n, fl := f.receive(timeoutMs)
	if fl != nil {
		return dst, fl
	}
	dst = append(dst, n)
	for count := 1; count < buf.Cap(); count++ {
		select {
		case n := <-f.notify:
			dst = append(dst, n)
		default:
			return dst, nil
		}
	}
	return dst, nil
}

func (f *fakeBackend) Flush() *capi.Failure {
	f.live()
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return fakeClosed()
	}
	return nil
}

func (f *fakeBackend) Metrics() (capi.Metrics, *capi.Failure) {
	f.live()
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return capi.Metrics{}, fakeClosed()
	}
	return f.metrics, nil
}

// Close waits for calls in progress (they hold the lock), then refuses later calls and
// wakes pollers. Idempotent.
func (f *fakeBackend) Close() *capi.Failure {
	f.live()
	f.close()
	return nil
}

func (f *fakeBackend) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.closedCh)
	}
}

// Free closes (if still open) and releases the handle, like aether_store_free.
func (f *fakeBackend) Free() {
	f.live()
	f.close()
	f.freed = true
}
