// Package capi is the only cgo code of the Go binding: thin wrappers over include/aether.h
// that speak Go types (byte slices, strings, plain structs) so the public package stays
// pure Go.
//
// Rules every wrapper follows (see the header's conventions):
//   - Inputs are Go memory borrowed for the call only; the library keeps no pointer to
//     them, and none of them contain Go pointers.
//   - Outputs come back by value from the small C shims below, so no Go pointer is
//     passed for outputs (no per-call heap allocation for out parameters either).
//     Every field of a shim's result is initialised before the call: the library leaves
//     outputs untouched on error, and Go's GC scans the pointer fields of the copy Go
//     receives, so stack garbage there would abort the program ("found bad pointer in
//     Go heap").
//   - Library-owned memory (aether_bytes, aether_event_stored strings, aether_error) is
//     copied into Go memory and released by the library before the wrapper returns.
//   - runtime.KeepAlive(h) after each call that uses a handle.
package capi

/*
#include <stdlib.h>
#include <aether.h>

// A non-NULL pointer for empty inputs: the library refuses NULL even with length 0.
static const uint8_t *goaether_empty(void) {
	static const uint8_t empty[1] = {0};
	return empty;
}

typedef struct {
	aether_status status;
	aether_error *err;
	int64_t version;
	uint64_t sequence;
} goaether_save_result;

static goaether_save_result goaether_save_event(const aether_store *s, const uint8_t *json, size_t len) {
	goaether_save_result r = {AETHER_OK, NULL, 0, 0};
	r.status = aether_save_event(s, json, len, &r.version, &r.sequence, &r.err);
	return r;
}

static goaether_save_result goaether_save_events(const aether_store *s, const uint8_t *json, size_t len) {
	goaether_save_result r = {AETHER_OK, NULL, 0, 0};
	r.status = aether_save_events(s, json, len, &r.version, &r.sequence, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
	aether_bytes bytes;
} goaether_bytes_result;

static goaether_bytes_result goaether_get_events(const aether_store *s, const uint8_t *actor, size_t len, int64_t from) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	r.status = aether_get_events(s, actor, len, from, &r.bytes, &r.err);
	return r;
}

static goaether_bytes_result goaether_get_events_with_errors(const aether_store *s, const uint8_t *actor, size_t len, int64_t from) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	r.status = aether_get_events_with_errors(s, actor, len, from, &r.bytes, &r.err);
	return r;
}

static goaether_bytes_result goaether_read_all(const aether_store *s, uint64_t from, size_t limit) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	r.status = aether_read_all(s, from, limit, &r.bytes, &r.err);
	return r;
}

static goaether_bytes_result goaether_get_latest_snapshot(const aether_store *s, const uint8_t *actor, size_t len) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	r.status = aether_get_latest_snapshot(s, actor, len, &r.bytes, &r.err);
	return r;
}

static void goaether_bytes_free(uint8_t *ptr, size_t len) {
	aether_bytes b = {ptr, len};
	aether_bytes_free(&b);
}

typedef struct {
	aether_status status;
	aether_error *err;
	int64_t value;
} goaether_int_result;

static goaether_int_result goaether_get_latest_version(const aether_store *s, const uint8_t *actor, size_t len) {
	goaether_int_result r = {AETHER_OK, NULL, 0};
	r.status = aether_get_latest_version(s, actor, len, &r.value, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
	uint64_t value;
} goaether_uint_result;

static goaether_uint_result goaether_last_sequence(const aether_store *s) {
	goaether_uint_result r = {AETHER_OK, NULL, 0};
	r.status = aether_last_sequence(s, &r.value, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
} goaether_status_result;

static goaether_status_result goaether_save_snapshot(const aether_store *s, const uint8_t *json, size_t len) {
	goaether_status_result r = {AETHER_OK, NULL};
	r.status = aether_save_snapshot(s, json, len, &r.err);
	return r;
}

static goaether_status_result goaether_flush(const aether_store *s) {
	goaether_status_result r = {AETHER_OK, NULL};
	r.status = aether_store_flush(s, &r.err);
	return r;
}

static goaether_status_result goaether_close(const aether_store *s) {
	goaether_status_result r = {AETHER_OK, NULL};
	r.status = aether_store_close(s, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
	aether_store *store;
} goaether_open_result;

static goaether_open_result goaether_open_memory(size_t capacity) {
	goaether_open_result r = {AETHER_OK, NULL, NULL};
	r.status = aether_store_open_memory(capacity, &r.store, &r.err);
	return r;
}

static goaether_open_result goaether_open_sled(const char *path, int durability, size_t capacity,
		uint64_t cache_bytes, uint64_t lock_timeout_ms, uint32_t snapshot_retention) {
	goaether_open_result r = {AETHER_OK, NULL, NULL};
	aether_sled_options o;
	aether_sled_options_default(&o);
	o.durability = durability;
	o.event_stored_capacity = capacity;
	o.cache_capacity_bytes = cache_bytes;
	o.lock_timeout_ms = lock_timeout_ms;
	r.status = aether_store_open_sled_with_snapshot_retention(path, &o, snapshot_retention,
		&r.store, &r.err);
	return r;
}

// The strings are C memory (C.CString) or NULL for the default.
static goaether_open_result goaether_open_jetstream(const char *url, const char *stream,
		const char *subject_prefix, uint32_t replicas, uint32_t connect_timeout_ms,
		uint32_t request_timeout_ms, const char *credentials_file, size_t capacity) {
	goaether_open_result r = {AETHER_OK, NULL, NULL};
	aether_jetstream_options o;
	aether_jetstream_options_default(&o);
	o.stream = stream;
	o.subject_prefix = subject_prefix;
	o.replicas = replicas;
	o.connect_timeout_ms = connect_timeout_ms;
	o.request_timeout_ms = request_timeout_ms;
	o.credentials_file = credentials_file;
	o.event_stored_capacity = capacity;
	r.status = aether_store_open_jetstream(url, &o, &r.store, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
	aether_metrics metrics;
} goaether_metrics_result;

static goaether_metrics_result goaether_metrics(const aether_store *s) {
	goaether_metrics_result r = {AETHER_OK, NULL, {0, 0, 0, 0, 0, 0}};
	r.status = aether_store_metrics(s, &r.metrics, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
	size_t count;
} goaether_poll_result;

// Polls into a library-filled array that lives in C memory (events), so the array's
// pointer fields are never Go memory.
static goaether_poll_result goaether_poll_batch(const aether_store *s, int64_t timeout_ms,
		aether_event_stored *events, size_t capacity) {
	goaether_poll_result r = {AETHER_OK, NULL, 0};
	r.status = aether_poll_event_stored_batch(s, timeout_ms, events, capacity, &r.count, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	aether_error *err;
	aether_event_stored event;
} goaether_poll_one_result;

static goaether_poll_one_result goaether_poll_one(const aether_store *s, int64_t timeout_ms) {
	goaether_poll_one_result r = {AETHER_OK, NULL, {NULL, 0, NULL, 0, 0, 0, 0}};
	r.status = aether_poll_event_stored(s, timeout_ms, &r.event, &r.err);
	return r;
}

// Releases the strings of a notification the Go side holds by value (a copy of the
// struct the library filled; the Go copy is never used again).
static void goaether_event_stored_release(aether_event_stored e) {
	aether_event_stored_clear(&e);
}

typedef struct {
	aether_status status;
	const char *message;
	int has_conflict;
	const uint8_t *actor_id;
	size_t actor_id_len;
	int64_t attempted;
	int64_t current;
	int outcome_unknown;
} goaether_error_detail;

static goaether_error_detail goaether_error_details(const aether_error *e) {
	goaether_error_detail d = {AETHER_OK, "", 0, NULL, 0, 0, 0, 0};
	d.status = aether_error_code(e);
	d.message = aether_error_message(e);
	d.has_conflict = aether_error_conflict(e, &d.actor_id, &d.actor_id_len, &d.attempted, &d.current) == AETHER_OK;
	d.outcome_unknown = aether_error_outcome(e) == AETHER_OUTCOME_UNKNOWN;
	return d;
}

// Appends and commits. Inputs arrive as one Go byte blob plus plain-integer specs that
// locate each string in it, so no Go memory holding Go pointers crosses the boundary
// (cgo's rule); the shim builds the library's structs, which point into the blob, in C
// memory for the duration of the call.
typedef struct {
	aether_status status;
	aether_error *err;
	aether_commit_result result;
	int64_t last_version;
} goaether_append_result;

static goaether_append_result goaether_append(const aether_store *s, const uint8_t *actor,
		size_t actor_len, int mode, int64_t expected_version, const uint8_t *json, size_t len) {
	goaether_append_result r = {AETHER_OK, NULL, {0, 0, 0}, 0};
	r.status = aether_append(s, actor, actor_len, mode, expected_version, json, len, &r.result,
		&r.last_version, &r.err);
	return r;
}

typedef struct {
	size_t actor_off;
	size_t actor_len;
	int64_t expected_version;
	size_t events_off;
	size_t events_len;
	int mode;
	int condition; // nonzero: no events (NULL, 0)
} goaether_entry_spec;

typedef struct {
	aether_status status;
	aether_error *err;
	aether_commit_result result;
} goaether_commit_result;

static goaether_commit_result goaether_commit(const aether_store *s, const uint8_t *blob,
		const goaether_entry_spec *specs, size_t n, int64_t *last_versions) {
	goaether_commit_result r = {AETHER_OK, NULL, {0, 0, 0}};
	aether_commit_entry *entries = NULL;
	size_t i;
	if (n > 0) {
		entries = (aether_commit_entry *)calloc(n, sizeof(aether_commit_entry));
		if (entries == NULL) {
			r.status = AETHER_STORAGE;
			return r;
		}
	}
	for (i = 0; i < n; i++) {
		entries[i].actor_id = blob + specs[i].actor_off;
		entries[i].actor_id_len = specs[i].actor_len;
		entries[i].expected_mode = specs[i].mode;
		entries[i].expected_version = specs[i].expected_version;
		entries[i].events_json = specs[i].condition ? NULL : blob + specs[i].events_off;
		entries[i].events_json_len = specs[i].condition ? 0 : specs[i].events_len;
	}
	r.status = aether_commit(s, entries, n, &r.result, last_versions, &r.err);
	free(entries);
	return r;
}

static goaether_bytes_result goaether_get_events_range(const aether_store *s, const uint8_t *actor,
		size_t len, int64_t from, int64_t to, size_t limit, int direction) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	r.status = aether_get_events_range(s, actor, len, from, to, limit, direction, &r.bytes, &r.err);
	return r;
}

// types: n event types, back to back in blob, with their lengths in type_lens.
static goaether_bytes_result goaether_read_all_filtered(const aether_store *s, uint64_t from,
		size_t limit, const uint8_t *blob, const size_t *type_lens, size_t n,
		const uint8_t *prefix, size_t prefix_len) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	aether_event_filter f = {NULL, 0, NULL, 0};
	aether_str *types = NULL;
	size_t i, off = 0;
	if (n > 0) {
		types = (aether_str *)calloc(n, sizeof(aether_str));
		if (types == NULL) {
			r.status = AETHER_STORAGE;
			return r;
		}
		for (i = 0; i < n; i++) {
			types[i].ptr = blob + off;
			types[i].len = type_lens[i];
			off += type_lens[i];
		}
		f.event_types = types;
		f.event_types_len = n;
	}
	if (prefix_len > 0) {
		f.actor_prefix = prefix;
		f.actor_prefix_len = prefix_len;
	}
	r.status = aether_read_all_filtered(s, from, limit, &f, &r.bytes, &r.err);
	free(types);
	return r;
}

static goaether_bytes_result goaether_get_snapshot(const aether_store *s, const uint8_t *actor,
		size_t len, int64_t at_or_below) {
	goaether_bytes_result r = {AETHER_OK, NULL, {NULL, 0}};
	r.status = aether_get_snapshot(s, actor, len, at_or_below, &r.bytes, &r.err);
	return r;
}

typedef struct {
	aether_status status;
	const uint8_t *actor_id;
	size_t actor_id_len;
	int mode;
	int64_t expected_version;
	int64_t attempted;
	int64_t current;
} goaether_conflict_detail;

static goaether_conflict_detail goaether_conflict_at(const aether_error *e, size_t i) {
	goaether_conflict_detail d = {AETHER_OK, NULL, 0, 0, 0, 0, 0};
	d.status = aether_error_conflict_at(e, i, &d.actor_id, &d.actor_id_len, &d.mode,
		&d.expected_version, &d.attempted, &d.current);
	return d;
}
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Status codes of the C ABI (enum aether_status), taken from the header so they cannot
// drift.
const (
	StatusOK               = int(C.AETHER_OK)
	StatusVersionConflict  = int(C.AETHER_VERSION_CONFLICT)
	StatusInvalidArgument  = int(C.AETHER_INVALID_ARGUMENT)
	StatusInvalidEvent     = int(C.AETHER_INVALID_EVENT)
	StatusNotFound         = int(C.AETHER_NOT_FOUND)
	StatusPollTimeout      = int(C.AETHER_POLL_TIMEOUT)
	StatusCorrupt          = int(C.AETHER_CORRUPT)
	StatusDataLoss         = int(C.AETHER_DATA_LOSS)
	StatusLocked           = int(C.AETHER_LOCKED)
	StatusStorage          = int(C.AETHER_STORAGE)
	StatusStoreClosed      = int(C.AETHER_STORE_CLOSED)
	StatusTimeout          = int(C.AETHER_TIMEOUT)
	StatusUnavailable      = int(C.AETHER_UNAVAILABLE)
	StatusStaleSnapshot    = int(C.AETHER_STALE_SNAPSHOT)
	StatusPanic            = int(C.AETHER_PANIC)
	StatusUnsupported      = int(C.AETHER_UNSUPPORTED)
	ExpectIncreasing       = int(C.AETHER_EXPECT_INCREASING)
	ExpectAny              = int(C.AETHER_EXPECT_ANY)
	ExpectNoStream         = int(C.AETHER_EXPECT_NO_STREAM)
	ExpectStreamExists     = int(C.AETHER_EXPECT_STREAM_EXISTS)
	ExpectExact            = int(C.AETHER_EXPECT_EXACT)
	DirectionForward       = int(C.AETHER_FORWARD)
	DirectionBackward      = int(C.AETHER_BACKWARD)
	DurabilityDurable      = int(C.AETHER_DURABILITY_DURABLE)
	DurabilityBuffered     = int(C.AETHER_DURABILITY_BUFFERED)
	HeaderVersionMajor     = int(C.AETHER_VERSION_MAJOR)
	HeaderVersionMinor     = int(C.AETHER_VERSION_MINOR)
	HeaderVersionPatch     = int(C.AETHER_VERSION_PATCH)
	eventStoredSize        = C.sizeof_aether_event_stored
	maxEventStoredPerBatch = 1 << 20
)

// Failure is the detail of a failed call: the status and the library's message, and for
// a version conflict or a stale snapshot the actor and versions involved.
type Failure struct {
	Status           int
	Message          string
	HasConflict      bool
	ActorID          string
	AttemptedVersion int64
	CurrentVersion   int64
	// OutcomeUnknown: the call may have been applied (aether_error_outcome).
	OutcomeUnknown bool
}

// CommitFailure is the Failure of an append or a commit, with every failed condition
// (aether_error_conflict_at) of a version conflict.
type CommitFailure struct {
	Failure
	Conflicts []Conflict
}

// Conflict is one failed condition of an append or a commit.
type Conflict struct {
	ActorID          string
	Mode             int
	ExpectedVersion  int64
	AttemptedVersion int64
	CurrentVersion   int64
}

// commitFailure is failure with every failed condition copied out too.
func commitFailure(status C.aether_status, e *C.aether_error) *CommitFailure {
	var conflicts []Conflict
	if e != nil && status == C.AETHER_VERSION_CONFLICT {
		n := int(C.aether_error_conflict_count(e))
		conflicts = make([]Conflict, 0, n)
		for i := 0; i < n; i++ {
			d := C.goaether_conflict_at(e, C.size_t(i))
			if d.status != C.AETHER_OK {
				break
			}
			conflicts = append(conflicts, Conflict{
				ActorID:          C.GoStringN((*C.char)(unsafe.Pointer(d.actor_id)), C.int(d.actor_id_len)),
				Mode:             int(d.mode),
				ExpectedVersion:  int64(d.expected_version),
				AttemptedVersion: int64(d.attempted),
				CurrentVersion:   int64(d.current),
			})
		}
	}
	return &CommitFailure{Failure: *failure(status, e), Conflicts: conflicts}
}

// failure copies an aether_error into Go memory and frees it.
func failure(status C.aether_status, e *C.aether_error) *Failure {
	f := &Failure{Status: int(status)}
	if e == nil {
		f.Message = StatusString(int(status))
		return f
	}
	d := C.goaether_error_details(e)
	f.Message = C.GoString(d.message)
	f.OutcomeUnknown = d.outcome_unknown != 0
	if d.has_conflict != 0 {
		f.HasConflict = true
		f.ActorID = C.GoStringN((*C.char)(unsafe.Pointer(d.actor_id)), C.int(d.actor_id_len))
		f.AttemptedVersion = int64(d.attempted)
		f.CurrentVersion = int64(d.current)
	}
	C.aether_error_free(e)
	return f
}

// StatusString is the library's static description of a status code.
func StatusString(status int) string {
	return C.GoString(C.aether_status_str(C.int(status)))
}

// LibraryVersion is the linked library's "MAJOR.MINOR.PATCH".
func LibraryVersion() string {
	return C.GoString(C.aether_version())
}

// emptyInput is a non-NULL C pointer passed with length 0 for empty inputs.
var emptyInput = C.goaether_empty()

// bytesArg points at b for the duration of a call: the library refuses NULL even for an
// empty input, so an empty slice borrows a static byte instead.
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return emptyInput, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

// stringArg is bytesArg for a string (no copy: string bytes contain no Go pointers and
// the library only reads them during the call).
func stringArg(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return emptyInput, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// Handle is an open aether_store. Its methods may be called from any goroutine;
// Free must be the last call and must not race with others (the public package
// guarantees that).
type Handle struct {
	p *C.aether_store
}

// OpenMemory opens a new in-memory store.
func OpenMemory(eventStoredCapacity uint64) (*Handle, *Failure) {
	r := C.goaether_open_memory(C.size_t(eventStoredCapacity))
	if r.status != C.AETHER_OK {
		return nil, failure(r.status, r.err)
	}
	return &Handle{p: r.store}, nil
}

// SledOptions mirrors aether_sled_options (zero = the default).
type SledOptions struct {
	Durability          int
	EventStoredCapacity uint64
	CacheCapacityBytes  uint64
	LockTimeoutMs       uint64
	SnapshotRetention   uint32 // not a field of aether_sled_options: an opener argument
}

// OpenSled opens (or creates) a sled store in directory path. path must not contain NUL.
func OpenSled(path string, o SledOptions) (*Handle, *Failure) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	r := C.goaether_open_sled(cpath, C.int(o.Durability), C.size_t(o.EventStoredCapacity),
		C.uint64_t(o.CacheCapacityBytes), C.uint64_t(o.LockTimeoutMs), C.uint32_t(o.SnapshotRetention))
	if r.status != C.AETHER_OK {
		return nil, failure(r.status, r.err)
	}
	return &Handle{p: r.store}, nil
}

// JetStreamOptions mirrors aether_jetstream_options (zero / "" = the default).
type JetStreamOptions struct {
	Stream              string
	SubjectPrefix       string
	Replicas            uint32
	ConnectTimeoutMs    uint32
	RequestTimeoutMs    uint32
	CredentialsFile     string
	EventStoredCapacity uint64
}

// cStringOrNull copies s into C memory (free with C.free), or NULL when s is empty.
func cStringOrNull(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// OpenJetStream connects to a NATS JetStream server or cluster. No string may contain NUL.
func OpenJetStream(url string, o JetStreamOptions) (*Handle, *Failure) {
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	stream := cStringOrNull(o.Stream)
	defer C.free(unsafe.Pointer(stream))
	prefix := cStringOrNull(o.SubjectPrefix)
	defer C.free(unsafe.Pointer(prefix))
	creds := cStringOrNull(o.CredentialsFile)
	defer C.free(unsafe.Pointer(creds))
	r := C.goaether_open_jetstream(curl, stream, prefix, C.uint32_t(o.Replicas),
		C.uint32_t(o.ConnectTimeoutMs), C.uint32_t(o.RequestTimeoutMs), creds,
		C.size_t(o.EventStoredCapacity))
	if r.status != C.AETHER_OK {
		return nil, failure(r.status, r.err)
	}
	return &Handle{p: r.store}, nil
}

// SaveEvent saves one event given as JSON; returns its version and sequence. On a
// version conflict the Failure carries the current version.
func (h *Handle) SaveEvent(json []byte) (uint64, *Failure) {
	p, n := bytesArg(json)
	r := C.goaether_save_event(h.p, p, n)
	runtime.KeepAlive(h)
	runtime.KeepAlive(json)
	if r.status != C.AETHER_OK {
		return 0, failure(r.status, r.err)
	}
	return uint64(r.sequence), nil
}

// SaveEvents saves a JSON array of one actor's events atomically; returns the last
// event's sequence.
func (h *Handle) SaveEvents(json []byte) (uint64, *Failure) {
	p, n := bytesArg(json)
	r := C.goaether_save_events(h.p, p, n)
	runtime.KeepAlive(h)
	runtime.KeepAlive(json)
	if r.status != C.AETHER_OK {
		return 0, failure(r.status, r.err)
	}
	return uint64(r.sequence), nil
}

// withBytes lends a library-owned buffer to use, then frees it. use must not retain b:
// it is library memory, invalid once withBytes returns.
func withBytes(r C.goaether_bytes_result, use func(b []byte)) *Failure {
	if r.status != C.AETHER_OK {
		return failure(r.status, r.err)
	}
	defer C.goaether_bytes_free(r.bytes.ptr, r.bytes.len)
	var b []byte
	if r.bytes.len > 0 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(r.bytes.ptr)), int(r.bytes.len))
	}
	use(b)
	return nil
}

// GetEvents lends the JSON array of the actor's events from fromVersion (>= 0) to use.
func (h *Handle) GetEvents(actorID string, fromVersion int64, use func(json []byte)) *Failure {
	p, n := stringArg(actorID)
	r := C.goaether_get_events(h.p, p, n, C.int64_t(fromVersion))
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	return withBytes(r, use)
}

// GetEventsWithErrors lends the `{"events":[...],"errors":[...]}` object to use.
func (h *Handle) GetEventsWithErrors(actorID string, fromVersion int64, use func(json []byte)) *Failure {
	p, n := stringArg(actorID)
	r := C.goaether_get_events_with_errors(h.p, p, n, C.int64_t(fromVersion))
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	return withBytes(r, use)
}

// ReadAll lends the JSON array of `{"sequence":N,"event":{...}}` to use.
func (h *Handle) ReadAll(fromSequence uint64, limit uint64, use func(json []byte)) *Failure {
	r := C.goaether_read_all(h.p, C.uint64_t(fromSequence), C.size_t(limit))
	runtime.KeepAlive(h)
	return withBytes(r, use)
}

// GetLatestSnapshot lends the snapshot's JSON to use.
func (h *Handle) GetLatestSnapshot(actorID string, use func(json []byte)) *Failure {
	p, n := stringArg(actorID)
	r := C.goaether_get_latest_snapshot(h.p, p, n)
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	return withBytes(r, use)
}

// GetLatestVersion is the actor's latest version (0 if unknown).
func (h *Handle) GetLatestVersion(actorID string) (int64, *Failure) {
	p, n := stringArg(actorID)
	r := C.goaether_get_latest_version(h.p, p, n)
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	if r.status != C.AETHER_OK {
		return 0, failure(r.status, r.err)
	}
	return int64(r.value), nil
}

// LastSequence is the sequence of the last stored event (0 when empty).
func (h *Handle) LastSequence() (uint64, *Failure) {
	r := C.goaether_last_sequence(h.p)
	runtime.KeepAlive(h)
	if r.status != C.AETHER_OK {
		return 0, failure(r.status, r.err)
	}
	return uint64(r.value), nil
}

// SaveSnapshot saves a snapshot given as JSON.
func (h *Handle) SaveSnapshot(json []byte) *Failure {
	p, n := bytesArg(json)
	r := C.goaether_save_snapshot(h.p, p, n)
	runtime.KeepAlive(h)
	runtime.KeepAlive(json)
	if r.status != C.AETHER_OK {
		return failure(r.status, r.err)
	}
	return nil
}

// CommitResult mirrors aether_commit_result.
type CommitResult struct {
	AlreadyAppended bool
	FirstSequence   uint64
	LastSequence    uint64
}

func commitResultOf(r *C.aether_commit_result) CommitResult {
	return CommitResult{
		AlreadyAppended: r.already_appended != 0,
		FirstSequence:   uint64(r.first_sequence),
		LastSequence:    uint64(r.last_sequence),
	}
}

// Append appends a JSON array of the actor's events if the actor meets mode /
// expectedVersion; returns what it did and the actor's version after the call.
func (h *Handle) Append(actorID string, mode int, expectedVersion int64, json []byte) (CommitResult, int64, *CommitFailure) {
	ap, an := stringArg(actorID)
	p, n := bytesArg(json)
	r := C.goaether_append(h.p, ap, an, C.int(mode), C.int64_t(expectedVersion), p, n)
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	runtime.KeepAlive(json)
	if r.status != C.AETHER_OK {
		return CommitResult{}, 0, commitFailure(r.status, r.err)
	}
	return commitResultOf(&r.result), int64(r.last_version), nil
}

// EntrySpec locates one commit entry's actor ID and events (a JSON array) in a blob.
type EntrySpec struct {
	ActorOff, ActorLen   int
	Mode                 int
	ExpectedVersion      int64
	EventsOff, EventsLen int
	Condition            bool // no events: a condition-only entry
}

// Commit commits the entries that specs locate in blob, all or nothing; lastVersions
// (len(specs) values, or nil) receives each entry's last version on success.
func (h *Handle) Commit(blob []byte, specs []EntrySpec, lastVersions []int64) (CommitResult, *CommitFailure) {
	cspecs := make([]C.goaether_entry_spec, len(specs))
	for i, e := range specs {
		var condition C.int
		if e.Condition {
			condition = 1
		}
		cspecs[i] = C.goaether_entry_spec{
			actor_off:        C.size_t(e.ActorOff),
			actor_len:        C.size_t(e.ActorLen),
			expected_version: C.int64_t(e.ExpectedVersion),
			events_off:       C.size_t(e.EventsOff),
			events_len:       C.size_t(e.EventsLen),
			mode:             C.int(e.Mode),
			condition:        condition,
		}
	}
	p, _ := bytesArg(blob)
	var sp *C.goaether_entry_spec
	if len(cspecs) > 0 {
		sp = &cspecs[0]
	}
	var lp *C.int64_t
	if len(lastVersions) > 0 {
		if len(lastVersions) < len(specs) {
			panic("capi.Commit: lastVersions shorter than specs")
		}
		lp = (*C.int64_t)(unsafe.Pointer(&lastVersions[0]))
	}
	r := C.goaether_commit(h.p, p, sp, C.size_t(len(cspecs)), lp)
	runtime.KeepAlive(h)
	runtime.KeepAlive(blob)
	runtime.KeepAlive(cspecs)
	runtime.KeepAlive(lastVersions)
	if r.status != C.AETHER_OK {
		return CommitResult{}, commitFailure(r.status, r.err)
	}
	return commitResultOf(&r.result), nil
}

// GetEventsRange lends the JSON array of the actor's events in from..=to (at most
// limit, oldest or newest first) to use.
func (h *Handle) GetEventsRange(actorID string, from, to int64, limit uint64, direction int, use func(json []byte)) *Failure {
	p, n := stringArg(actorID)
	r := C.goaether_get_events_range(h.p, p, n, C.int64_t(from), C.int64_t(to), C.size_t(limit), C.int(direction))
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	return withBytes(r, use)
}

// ReadAllFiltered lends read_all's JSON of the events whose type is one of types (any
// when empty) and whose actor ID starts with prefix to use.
func (h *Handle) ReadAllFiltered(fromSequence uint64, limit uint64, types []string, prefix string, use func(json []byte)) *Failure {
	var blob []byte
	var lens []C.size_t
	if len(types) > 0 {
		size := 0
		for _, t := range types {
			size += len(t)
		}
		blob = make([]byte, 0, size)
		lens = make([]C.size_t, len(types))
		for i, t := range types {
			blob = append(blob, t...)
			lens[i] = C.size_t(len(t))
		}
	}
	bp, _ := bytesArg(blob)
	var lp *C.size_t
	if len(lens) > 0 {
		lp = &lens[0]
	}
	pp, pn := stringArg(prefix)
	r := C.goaether_read_all_filtered(h.p, C.uint64_t(fromSequence), C.size_t(limit), bp, lp,
		C.size_t(len(lens)), pp, pn)
	runtime.KeepAlive(h)
	runtime.KeepAlive(blob)
	runtime.KeepAlive(lens)
	runtime.KeepAlive(prefix)
	return withBytes(r, use)
}

// GetSnapshot lends the JSON of the actor's newest kept snapshot at or below atOrBelow
// to use; StatusNotFound when none is kept.
func (h *Handle) GetSnapshot(actorID string, atOrBelow int64, use func(json []byte)) *Failure {
	p, n := stringArg(actorID)
	r := C.goaether_get_snapshot(h.p, p, n, C.int64_t(atOrBelow))
	runtime.KeepAlive(h)
	runtime.KeepAlive(actorID)
	return withBytes(r, use)
}

// Flush makes everything saved durable.
func (h *Handle) Flush() *Failure {
	r := C.goaether_flush(h.p)
	runtime.KeepAlive(h)
	if r.status != C.AETHER_OK {
		return failure(r.status, r.err)
	}
	return nil
}

// Close closes the store (idempotent in the library); pollers wake with
// StatusStoreClosed. The handle stays valid until Free.
func (h *Handle) Close() *Failure {
	r := C.goaether_close(h.p)
	runtime.KeepAlive(h)
	if r.status != C.AETHER_OK {
		return failure(r.status, r.err)
	}
	return nil
}

// Free releases the handle. No other call may be in progress or follow.
func (h *Handle) Free() {
	if h.p != nil {
		C.aether_store_free(h.p)
		h.p = nil
	}
}

// Metrics mirrors aether_metrics.
type Metrics struct {
	EventsSaved          uint64
	VersionConflicts     uint64
	EventStoredPublished uint64
	EventStoredDropped   uint64
	SnapshotsSaved       uint64
	ReplayErrors         uint64
}

// Metrics reads the store's counters.
func (h *Handle) Metrics() (Metrics, *Failure) {
	r := C.goaether_metrics(h.p)
	runtime.KeepAlive(h)
	if r.status != C.AETHER_OK {
		return Metrics{}, failure(r.status, r.err)
	}
	m := r.metrics
	return Metrics{
		EventsSaved:          uint64(m.events_saved),
		VersionConflicts:     uint64(m.version_conflicts),
		EventStoredPublished: uint64(m.event_stored_published),
		EventStoredDropped:   uint64(m.event_stored_dropped),
		SnapshotsSaved:       uint64(m.snapshots_saved),
		ReplayErrors:         uint64(m.replay_errors),
	}, nil
}

// EventStored is one notification, copied into Go memory.
type EventStored struct {
	EventID            string
	ActorID            string
	Version            int64
	TimestampUnixNanos int64
	Sequence           uint64
}

func eventStoredOf(e *C.aether_event_stored) EventStored {
	return EventStored{
		EventID:            C.GoStringN((*C.char)(unsafe.Pointer(e.event_id)), C.int(e.event_id_len)),
		ActorID:            C.GoStringN((*C.char)(unsafe.Pointer(e.actor_id)), C.int(e.actor_id_len)),
		Version:            int64(e.version),
		TimestampUnixNanos: int64(e.timestamp_unix_nanos),
		Sequence:           uint64(e.sequence),
	}
}

// PollOne waits up to timeoutMs (>= 0) for one notification. StatusPollTimeout when none
// arrived.
func (h *Handle) PollOne(timeoutMs int64) (EventStored, *Failure) {
	r := C.goaether_poll_one(h.p, C.int64_t(timeoutMs))
	runtime.KeepAlive(h)
	if r.status != C.AETHER_OK {
		return EventStored{}, failure(r.status, r.err)
	}
	e := eventStoredOf(&r.event)
	C.goaether_event_stored_release(r.event)
	return e, nil
}

// EventStoredBuffer is C memory the library fills with notifications. Not safe for
// concurrent use; Free it when done.
type EventStoredBuffer struct {
	p   *C.aether_event_stored
	cap int
}

// NewEventStoredBuffer allocates room for capacity (>= 1) notifications.
func NewEventStoredBuffer(capacity int) *EventStoredBuffer {
	if capacity < 1 {
		capacity = 1
	}
	if capacity > maxEventStoredPerBatch {
		capacity = maxEventStoredPerBatch
	}
	p := (*C.aether_event_stored)(C.calloc(C.size_t(capacity), C.size_t(eventStoredSize)))
	if p == nil {
		panic("aether: out of memory allocating an EventStored buffer")
	}
	return &EventStoredBuffer{p: p, cap: capacity}
}

// Cap is how many notifications the buffer holds.
func (b *EventStoredBuffer) Cap() int { return b.cap }

// Free releases the buffer. Idempotent.
func (b *EventStoredBuffer) Free() {
	if b.p != nil {
		C.free(unsafe.Pointer(b.p))
		b.p = nil
	}
}

// PollEventStored waits up to timeoutMs (>= 0) for notifications, then appends those
// taken (at most the buffer's capacity) to dst. StatusPollTimeout when none arrived.
func (h *Handle) PollEventStored(timeoutMs int64, buf *EventStoredBuffer, dst []EventStored) ([]EventStored, *Failure) {
	r := C.goaether_poll_batch(h.p, C.int64_t(timeoutMs), buf.p, C.size_t(buf.cap))
	runtime.KeepAlive(h)
	if r.status != C.AETHER_OK {
		return dst, failure(r.status, r.err)
	}
	events := unsafe.Slice(buf.p, buf.cap)[:int(r.count)]
	for i := range events {
		dst = append(dst, eventStoredOf(&events[i]))
	}
	C.aether_event_stored_clear_batch(buf.p, r.count)
	return dst, nil
}
