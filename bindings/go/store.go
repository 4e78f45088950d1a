package aether

import (
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// Store is an open aether store: in memory (OpenMemory), on disk (OpenSled) or on NATS
// JetStream (OpenJetStream). It
// implements EventStore, EventStoreWithErrors and SnapshotStore, and every method may be
// called from any number of goroutines at once.
//
// Close it when done: a sled store holds its directory's lock until closed. A finalizer
// releases a Store that becomes unreachable, but only as a backstop: it runs at the GC's
// discretion, if at all, and reports no error.
type Store struct {
	// mu is held for reading by every call into the library and for writing by Close
	// while it frees the handle, so the handle is never freed under a running call.
	mu sync.RWMutex
	h  backend // the library's handle (*capi.Handle); nil once Close has freed it

	closeOnce sync.Once
	closeErr  error
	closing   chan struct{} // closed when Close starts; stops EventStoredChan goroutines
}

// Compile-time checks that *Store is a drop-in for the aether Go library's interfaces.
var (
	_ EventStore           = (*Store)(nil)
	_ EventStoreWithErrors = (*Store)(nil)
	_ SnapshotStore        = (*Store)(nil)
)

// Durability is what a successful save on a sled store guarantees.
type Durability int

const (
	// Durable (the default): a returned save is fdatasync'ed to the store's write-ahead
	// log (concurrent savers share one sync); it survives process crashes and power loss.
	Durable Durability = Durability(capi.DurabilityDurable)
	// Buffered: a returned save is in sled's buffers, written out about every 500 ms; a
	// crash can lose the saves of that window (never part of a batch). Flush makes
	// everything durable.
	Buffered Durability = Durability(capi.DurabilityBuffered)
)

func (d Durability) String() string {
	switch d {
	case Durable:
		return "durable"
	case Buffered:
		return "buffered"
	}
	return "Durability(" + itoa(int64(d)) + ")"
}

// Option configures OpenSled or OpenJetStream (WithEventStoredCapacity applies to every
// store, OpenMemory included). An option meant for another kind of store is refused
// with ErrInvalidArgument rather than silently ignored.
type Option func(*options) error

type options struct {
	sled     capi.SledOptions
	sledOnly []string // names of options given that only a sled store understands
	js       capi.JetStreamOptions
	jsOnly   []string // names of options given that only a JetStream store understands
}

// WithDurability sets what a successful save guarantees (default Durable). Sled only.
func WithDurability(d Durability) Option {
	return func(o *options) error {
		if d != Durable && d != Buffered {
			return newError(CodeInvalidArgument, "unknown durability %d", int(d))
		}
		o.sled.Durability = int(d)
		o.sledOnly = append(o.sledOnly, "WithDurability")
		return nil
	}
}

// WithEventStoredCapacity sets how many undrained EventStored notifications the store
// keeps before it drops new ones (counted in Metrics.EventStoredDropped); n >= 1,
// default 65536.
func WithEventStoredCapacity(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return newError(CodeInvalidArgument, "EventStored capacity is %d; it must be >= 1", n)
		}
		o.sled.EventStoredCapacity = uint64(n)
		return nil
	}
}

// WithCacheSize sets sled's page cache in bytes (> 0; default 256 MiB). Sled only.
func WithCacheSize(bytes uint64) Option {
	return func(o *options) error {
		if bytes == 0 {
			return newError(CodeInvalidArgument, "cache size is 0; it must be > 0")
		}
		o.sled.CacheCapacityBytes = bytes
		o.sledOnly = append(o.sledOnly, "WithCacheSize")
		return nil
	}
}

// WithLockTimeout sets how long opening waits while another handle (in this or another
// process) holds the store, before failing with ErrLocked; d > 0, rounded up to whole
// milliseconds, default 2s. Sled only.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return newError(CodeInvalidArgument, "lock timeout is %v; it must be > 0", d)
		}
		o.sled.LockTimeoutMs = uint64(ceilMillis(d))
		o.sledOnly = append(o.sledOnly, "WithLockTimeout")
		return nil
	}
}

// WithSnapshotRetention sets how many snapshots per actor the store keeps (the newest
// n; older ones are dropped as newer ones are saved), for GetSnapshot; n >= 1, default
// 3. Sled only.
func WithSnapshotRetention(n int) Option {
	return func(o *options) error {
		if n < 1 || int64(n) > math.MaxUint32 {
			return newError(CodeInvalidArgument, "snapshot retention is %d; it must be between 1 and %d", n, uint32(math.MaxUint32))
		}
		o.sled.SnapshotRetention = uint32(n)
		o.sledOnly = append(o.sledOnly, "WithSnapshotRetention")
		return nil
	}
}

func applyOptions(opts []Option) (options, error) {
	var o options
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// OpenMemory opens a new, empty in-memory store (nothing survives the process). Only
// WithEventStoredCapacity applies; sled and JetStream options are refused with
// ErrInvalidArgument.
func OpenMemory(opts ...Option) (*Store, error) {
	o, err := memoryOptions(opts)
	if err != nil {
		return nil, err
	}
	h, f := capi.OpenMemory(o.sled.EventStoredCapacity)
	if f != nil {
		return nil, errorOf(f)
	}
	return newStore(h), nil
}

// memoryOptions applies opts for an in-memory store, refusing the options that only a
// sled or JetStream store understands.
func memoryOptions(opts []Option) (options, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return o, err
	}
	if len(o.sledOnly) > 0 {
		return o, newError(CodeInvalidArgument, "%s applies to sled stores only", strings.Join(o.sledOnly, ", "))
	}
	return o, o.refuseJetStreamOnly()
}

// OpenSled opens (or creates) a persistent store in directory path. Recovery runs here:
// saves acknowledged before a crash are replayed, a batch cut short is rolled back, and
// a store whose acknowledged data is missing is refused with ErrDataLoss. A store held
// by another handle is retried for the lock timeout, then ErrLocked.
func OpenSled(path string, opts ...Option) (*Store, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := o.refuseJetStreamOnly(); err != nil {
		return nil, err
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, newError(CodeInvalidArgument, "path %q contains a NUL byte", path)
	}
	if path == "" {
		return nil, newError(CodeInvalidArgument, "path is empty")
	}
	h, f := capi.OpenSled(path, o.sled)
	if f != nil {
		return nil, errorOf(f)
	}
	return newStore(h), nil
}

func newStore(h backend) *Store {
	s := &Store{h: h, closing: make(chan struct{})}
	runtime.SetFinalizer(s, finalizeStore)
	return s
}

// finalizeStore is the backstop for a Store nobody closed. Unreachable means no call is
// in progress, so releasing cannot race.
//
// It only releases the handle, as wasmtime-go's finalizers do, and does so on a
// goroutine of its own: the runtime runs every finalizer of the program on one
// goroutine, which a slow release must not hold up. It does not ask for a close
// (aether_store_close, the checkpoint that syncs every file of a sled store) and reports
// nothing: a finalizer has nobody to report to, and anything a close would have
// checkpointed is recovered by the next open. aether_store_free releases the files and
// the lock without a checkpoint (no sync of a sled store's log, no index flush); it still
// runs off the finalizer goroutine, since joining the store's background threads can
// take a moment.
func finalizeStore(s *Store) {
	if h := s.h; h != nil {
		s.h = nil
		go h.Free()
	}
}

// Close makes everything saved durable, releases the store's files and lock (so it can
// be reopened) and frees the handle. Calls in progress finish first; a goroutine waiting
// in PollEventStored returns ErrStoreClosed, EventStoredChan channels close, and later
// calls fail with ErrStoreClosed. Idempotent: every call returns the first call's result
// (an error only if the final flush failed; the store is closed anyway).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		h := s.h // only Close writes s.h, and only below
		if h == nil {
			return // a zero Store, never opened
		}
		close(s.closing)
		// Closing first wakes pollers (they hold mu for reading while they wait).
		f := h.Close()
		s.mu.Lock()
		s.h = nil
		s.mu.Unlock()
		h.Free()
		runtime.SetFinalizer(s, nil)
		s.closeErr = errorOf(f)
	})
	return s.closeErr
}

// acquire returns the open handle with mu held for reading. Callers release it with
// `defer s.mu.RUnlock()` right after: a panic while the lock is held (in the library's
// wrapper, or while decoding what it lent) must not leave it held, or Close would wait
// for it forever.
func (s *Store) acquire() (backend, error) {
	s.mu.RLock()
	if s.h == nil {
		s.mu.RUnlock()
		return nil, errClosed
	}
	return s.h, nil
}

// SaveEvent persists an event if its Version is strictly greater than the actor's latest
// version; otherwise it returns a *VersionConflictError (errors.Is(err,
// ErrVersionConflict)) and writes nothing. When it returns nil the event is as durable
// as the store's mode promises and its EventStored notification is published. A nil or
// unencodable event is ErrInvalidEvent.
func (s *Store) SaveEvent(event *Event) error {
	if event == nil {
		return newError(CodeInvalidEvent, "event is nil")
	}
	buf := getBuffer()
	defer putBuffer(buf)
	json, err := appendEvent(buf.b[:0], event)
	buf.b = json
	if err != nil {
		return err
	}
	h, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	_, f := h.SaveEvent(json)
	return errorOf(f)
}

// SaveEvents saves a batch of one actor's events atomically: all or none. Versions must
// be strictly increasing, the first greater than the actor's latest (else a
// *VersionConflictError); at most 10000 events. An empty batch, a nil event, mixed
// actors or unordered versions are ErrInvalidEvent. Not part of EventStore.
func (s *Store) SaveEvents(events []*Event) error {
	if len(events) == 0 {
		return newError(CodeInvalidEvent, "the batch is empty")
	}
	buf := getBuffer()
	defer putBuffer(buf)
	b := append(buf.b[:0], '[')
	for i, e := range events {
		if e == nil {
			buf.b = b
			return newError(CodeInvalidEvent, "event %d of the batch is nil", i)
		}
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		b, err = appendEvent(b, e)
		if err != nil {
			buf.b = b
			return err
		}
	}
	b = append(b, ']')
	buf.b = b
	h, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	_, f := h.SaveEvents(b)
	return errorOf(f)
}

// GetEvents returns the actor's events with Version >= fromVersion, in version order;
// an empty (non-nil) slice for an unknown actor. A negative fromVersion means "from the
// first event", as in the aether Go library. A damaged stored record fails the call with an error
// matching ErrCorrupt; GetEventsWithErrors reads around it.
func (s *Store) GetEvents(actorID string, fromVersion int64) ([]*Event, error) {
	if fromVersion < 0 {
		fromVersion = 0 // the C ABI refuses negative versions; the aether Go library returns everything
	}
	h, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	f := h.GetEvents(actorID, fromVersion, t.decodeEvents)
	if f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.events, nil
}

// GetEventsWithErrors is GetEvents that reports damaged records in the result's Errors
// (each a ReplayError with the record's sequence, its raw bytes and an Err matching
// ErrCorrupt) beside the events that decode, instead of failing.
func (s *Store) GetEventsWithErrors(actorID string, fromVersion int64) (*ReplayResult, error) {
	if fromVersion < 0 {
		fromVersion = 0
	}
	h, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	f := h.GetEventsWithErrors(actorID, fromVersion, t.decodeReplayResult)
	if f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.result, nil
}

// GetLatestVersion returns the actor's latest version, 0 for an unknown actor.
func (s *Store) GetLatestVersion(actorID string) (int64, error) {
	h, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	v, f := h.GetLatestVersion(actorID)
	if f != nil {
		return 0, errorOf(f)
	}
	return v, nil
}

// SaveSnapshot stores a snapshot as the actor's latest. A snapshot older than the stored
// one is refused with an error matching ErrStaleSnapshot; an equal version replaces it.
// A nil snapshot is ErrInvalidEvent.
func (s *Store) SaveSnapshot(snapshot *ActorSnapshot) error {
	if snapshot == nil {
		return newError(CodeInvalidEvent, "snapshot is nil")
	}
	json, err := marshalSnapshot(snapshot)
	if err != nil {
		return err
	}
	h, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	f := h.SaveSnapshot(json)
	return errorOf(f)
}

// GetLatestSnapshot returns the actor's latest snapshot. When the actor has none it
// returns (nil, err) with errors.Is(err, ErrNotFound) — an error, not (nil, nil), so
// code that only checks err never dereferences a nil snapshot.
func (s *Store) GetLatestSnapshot(actorID string) (*ActorSnapshot, error) {
	h, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	f := h.GetLatestSnapshot(actorID, t.decodeSnapshot)
	if f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.snapshot, nil
}

// SequencedEvent is an event with its store-wide sequence (ReadAll).
type SequencedEvent struct {
	Sequence uint64 `json:"sequence"`
	Event    *Event `json:"event"`
}

// ReadAll returns up to limit events with sequence >= fromSequence in commit order.
// Sequences start at 1 and have no gaps (fromSequence 0 means 1); limit 0 gives an
// empty slice, a negative limit is ErrInvalidArgument. Not part of EventStore.
func (s *Store) ReadAll(fromSequence uint64, limit int) ([]SequencedEvent, error) {
	if limit < 0 {
		return nil, newError(CodeInvalidArgument, "limit is %d; it must be >= 0", limit)
	}
	h, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	f := h.ReadAll(fromSequence, uint64(limit), t.decodeSequenced)
	if f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.sequenced, nil
}

// LastSequence returns the sequence of the last stored event (0 for an empty store).
// Not part of EventStore.
func (s *Store) LastSequence() (uint64, error) {
	h, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	seq, f := h.LastSequence()
	if f != nil {
		return 0, errorOf(f)
	}
	return seq, nil
}

// Flush makes everything saved so far durable, whatever the durability mode.
func (s *Store) Flush() error {
	h, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	f := h.Flush()
	return errorOf(f)
}

// Metrics is a point-in-time copy of a store's counters.
type Metrics struct {
	EventsSaved          uint64 // events stored (each event of a batch counts)
	VersionConflicts     uint64 // saves rejected with a version conflict
	EventStoredPublished uint64 // EventStored notifications published
	EventStoredDropped   uint64 // notifications dropped because nobody drained them in time
	SnapshotsSaved       uint64 // snapshots stored
	ReplayErrors         uint64 // malformed records met during replay
}

// Metrics reads the store's counters.
func (s *Store) Metrics() (Metrics, error) {
	h, err := s.acquire()
	if err != nil {
		return Metrics{}, err
	}
	defer s.mu.RUnlock()
	m, f := h.Metrics()
	if f != nil {
		return Metrics{}, errorOf(f)
	}
	return Metrics(m), nil
}

// LibraryVersion is the version of the linked libaether ("MAJOR.MINOR.PATCH").
func LibraryVersion() string { return capi.LibraryVersion() }

// ceilMillis is d in whole milliseconds, rounded up, saturated at MaxInt64.
func ceilMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 && ms < math.MaxInt64 {
		ms++
	}
	return ms
}

func itoa(v int64) string {
	var b [20]byte
	return string(appendInt(b[:0], v))
}
