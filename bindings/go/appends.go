package aether

import (
	"fmt"
	"math"
	"strings"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// Appends beyond the aether Go library's rule: an expected state per actor, automatic
// versions, idempotent retries, atomic commits across actors, bounded and backward
// reads, filtered ReadAll and snapshot history. These are additions; the seed's API
// (SaveEvent, SaveEvents, GetEvents, ...) keeps its behaviour.

// ExpectMode is the kind of an Expected state (the C ABI's aether_expected_mode).
type ExpectMode int

// The expected-state modes. The values are the C ABI's and never change.
const (
	// ExpectModeIncreasing is the seed's rule and the zero value: the first event's
	// version is greater than the actor's latest (gaps allowed).
	ExpectModeIncreasing ExpectMode = ExpectMode(capi.ExpectIncreasing)
	// ExpectModeAny: no expectation beyond increasing versions (KurrentDB's "any").
	ExpectModeAny ExpectMode = ExpectMode(capi.ExpectAny)
	// ExpectModeNoStream: the actor has no events.
	ExpectModeNoStream ExpectMode = ExpectMode(capi.ExpectNoStream)
	// ExpectModeStreamExists: the actor has at least one event.
	ExpectModeStreamExists ExpectMode = ExpectMode(capi.ExpectStreamExists)
	// ExpectModeExact: the actor's latest version is Expected.Version.
	ExpectModeExact ExpectMode = ExpectMode(capi.ExpectExact)
)

func (m ExpectMode) String() string {
	switch m {
	case ExpectModeIncreasing:
		return "increasing"
	case ExpectModeAny:
		return "any"
	case ExpectModeNoStream:
		return "no stream"
	case ExpectModeStreamExists:
		return "stream exists"
	case ExpectModeExact:
		return "exact"
	}
	return "ExpectMode(" + itoa(int64(m)) + ")"
}

// Expected is what an append expects of an actor's stream before it writes. Build it
// with ExpectIncreasing, ExpectAny, ExpectNoStream, ExpectStreamExists or ExpectExact;
// the zero value is ExpectIncreasing(). Values are comparable with ==.
//
// Whatever the expectation, explicit versions must be greater than the actor's latest:
// versions only ever increase.
type Expected struct {
	Mode ExpectMode
	// Version is the latest version ExpectModeExact requires (0: no events); 0 for the
	// other modes.
	Version int64
}

// ExpectIncreasing is the seed's rule, as SaveEvents applies it: the first event's
// version is greater than the actor's latest. With automatic versions (Version 0) there
// is nothing to check.
func ExpectIncreasing() Expected { return Expected{Mode: ExpectModeIncreasing} }

// ExpectAny expects nothing beyond increasing versions.
func ExpectAny() Expected { return Expected{Mode: ExpectModeAny} }

// ExpectNoStream expects an actor without events.
func ExpectNoStream() Expected { return Expected{Mode: ExpectModeNoStream} }

// ExpectStreamExists expects an actor with at least one event.
func ExpectStreamExists() Expected { return Expected{Mode: ExpectModeStreamExists} }

// ExpectExact expects the actor's latest version to be exactly version (0: no events),
// the optimistic concurrency of KurrentDB and Marten: read an actor at version v, decide,
// append with ExpectExact(v). A negative version is ErrInvalidArgument.
func ExpectExact(version int64) Expected { return Expected{Mode: ExpectModeExact, Version: version} }

func (e Expected) String() string {
	if e.Mode == ExpectModeExact {
		return "version " + itoa(e.Version)
	}
	return e.Mode.String()
}

// CommitEntry is one actor's part of a Commit: what its stream must look like, and the
// events to append to it. No events makes a condition-only entry: the commit goes ahead
// only if Expected holds for the actor, and writes nothing to it.
//
// Every event's ActorID must be the entry's. Versions are either all explicit (strictly
// increasing, from 1) or all 0: automatic, the actor's latest + 1, + 2, ... assigned
// atomically when the commit is written (the Event values are not modified;
// CommitResult.LastVersions says which versions they took).
type CommitEntry struct {
	ActorID  string
	Expected Expected
	Events   []*Event
}

// CommitResult is what an Append or a Commit did.
type CommitResult struct {
	// AlreadyAppended is true when every event was already stored with the same actor,
	// version and ID: a retry of a call that succeeded (perhaps in an earlier process).
	// Nothing was written and no EventStored was published; the sequences are those
	// of the stored events.
	AlreadyAppended bool
	// FirstSequence and LastSequence are the store-wide sequences of the first and last
	// event; a commit's events have consecutive sequences, in entry order. Both are 0
	// when no event was written (condition-only entries).
	FirstSequence uint64
	LastSequence  uint64
	// LastVersions holds, per entry, the version of its last event (0 for a
	// condition-only entry): as written, with automatic versions the one assigned, or
	// as found stored by a retry (then below the actor's latest if it has moved on).
	// Append has one entry.
	LastVersions []int64
}

// LastVersion is the last entry's value of LastVersions: for Append, the version of
// its last event.
func (r CommitResult) LastVersion() int64 {
	if len(r.LastVersions) == 0 {
		return 0
	}
	return r.LastVersions[len(r.LastVersions)-1]
}

// Conflict is one failed condition of an Append or a Commit.
type Conflict struct {
	ActorID  string
	Expected Expected
	// AttemptedVersion is the version of the entry's first event (0: automatic
	// versions, or a condition-only entry).
	AttemptedVersion int64
	// CurrentVersion is the actor's latest version when the call was checked.
	CurrentVersion int64
}

func (c Conflict) String() string {
	s := fmt.Sprintf("actor %q expected %s, has version %d", c.ActorID, c.Expected, c.CurrentVersion)
	if c.AttemptedVersion > 0 {
		s += fmt.Sprintf(", cannot save version %d", c.AttemptedVersion)
	}
	return s
}

// CommitConflictError is the error of an Append or a Commit whose conditions did not
// hold: Conflicts lists every failed condition (not just the first), in entry order, and
// nothing was written. It matches ErrVersionConflict, and errors.As also finds a
// *VersionConflictError describing the first failed condition:
//
//	var conflict *aether.CommitConflictError
//	if errors.As(err, &conflict) {
//		for _, c := range conflict.Conflicts { ... }
//	}
type CommitConflictError struct {
	Conflicts []Conflict
}

func (e *CommitConflictError) Error() string {
	parts := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		parts[i] = c.String()
	}
	return ErrVersionConflict.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns one *VersionConflictError per failed condition (each unwrapping to
// ErrVersionConflict), for errors.Is and errors.As.
func (e *CommitConflictError) Unwrap() []error {
	errs := make([]error, 0, len(e.Conflicts)+1)
	for _, c := range e.Conflicts {
		errs = append(errs, &VersionConflictError{
			ActorID:          c.ActorID,
			AttemptedVersion: c.AttemptedVersion,
			CurrentVersion:   c.CurrentVersion,
		})
	}
	if len(errs) == 0 {
		errs = append(errs, ErrVersionConflict)
	}
	return errs
}

// commitErrorOf is errorOf for appends and commits: a conflict lists every condition.
func commitErrorOf(f *capi.CommitFailure) error {
	if f == nil {
		return nil
	}
	if f.Status == capi.StatusVersionConflict && len(f.Conflicts) > 0 {
		e := &CommitConflictError{Conflicts: make([]Conflict, len(f.Conflicts))}
		for i, c := range f.Conflicts {
			e.Conflicts[i] = Conflict{
				ActorID:          c.ActorID,
				Expected:         Expected{Mode: ExpectMode(c.Mode), Version: c.ExpectedVersion},
				AttemptedVersion: c.AttemptedVersion,
				CurrentVersion:   c.CurrentVersion,
			}
		}
		return e
	}
	return errorOf(&f.Failure)
}

// appendBackend is the part of a backend for appends, commits and the reads that go with
// them. *capi.Handle has it; a backend without it (the pure-Go fake of the tests)
// answers ErrUnsupported.
type appendBackend interface {
	Append(actorID string, mode int, expectedVersion int64, json []byte) (capi.CommitResult, int64, *capi.CommitFailure)
	Commit(blob []byte, specs []capi.EntrySpec, lastVersions []int64) (capi.CommitResult, *capi.CommitFailure)
	GetEventsRange(actorID string, from, to int64, limit uint64, direction int, use func(json []byte)) *capi.Failure
	ReadAllFiltered(fromSequence uint64, limit uint64, types []string, prefix string, use func(json []byte)) *capi.Failure
	GetSnapshot(actorID string, atOrBelow int64, use func(json []byte)) *capi.Failure
}

var _ appendBackend = (*capi.Handle)(nil)

var errNoAppends = &Error{Code: CodeUnsupported, Message: "this store's backend has no appends, commits or range reads"}

// acquireAppends is acquire for the operations of appendBackend. On success the caller
// releases mu with `defer s.mu.RUnlock()`.
func (s *Store) acquireAppends() (appendBackend, error) {
	h, err := s.acquire()
	if err != nil {
		return nil, err
	}
	a, ok := h.(appendBackend)
	if !ok {
		s.mu.RUnlock()
		return nil, errNoAppends
	}
	return a, nil
}

// appendEventArray appends the JSON array of events to b.
func appendEventArray(b []byte, events []*Event) ([]byte, error) {
	b = append(b, '[')
	for i, e := range events {
		if e == nil {
			return b, newError(CodeInvalidEvent, "event %d is nil", i)
		}
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendEvent(b, e); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// Append appends events to one actor if the actor's stream meets expected, all or
// nothing; events with Version 0 are given the actor's next versions. It is Commit with
// one entry: on success the events are as durable as the store's mode promises and
// their EventStored notifications are published.
//
// A failed condition is a *CommitConflictError (errors.Is(err, ErrVersionConflict)) and
// writes nothing. A retry of an Append that succeeded, with the same versions and event
// IDs, returns a result with AlreadyAppended set instead of a conflict, so a caller that
// timed out can simply retry; with automatic versions a retry is recognised under
// ExpectNoStream and ExpectExact only (the other modes cannot tell which versions the
// first attempt took). The same version with another event ID is a conflict.
//
// No events, a nil event, events of another actor, Version 0 mixed with explicit
// versions, or explicit versions that do not increase are ErrInvalidEvent; an unknown
// mode or a negative ExpectExact version is ErrInvalidArgument. On a store whose backend
// cannot append this way, ErrUnsupported (every backend in this version can).
func (s *Store) Append(actorID string, expected Expected, events ...*Event) (CommitResult, error) {
	if len(events) == 0 {
		return CommitResult{}, newError(CodeInvalidEvent, "no events to append to actor %q; use Commit with a condition-only entry to check an actor", actorID)
	}
	buf := getBuffer()
	defer putBuffer(buf)
	json, err := appendEventArray(buf.b[:0], events)
	buf.b = json
	if err != nil {
		return CommitResult{}, err
	}
	h, err := s.acquireAppends()
	if err != nil {
		return CommitResult{}, err
	}
	defer s.mu.RUnlock()
	r, last, f := h.Append(actorID, int(expected.Mode), expected.Version, json)
	if f != nil {
		return CommitResult{}, commitErrorOf(f)
	}
	return CommitResult{
		AlreadyAppended: r.AlreadyAppended,
		FirstSequence:   r.FirstSequence,
		LastSequence:    r.LastSequence,
		LastVersions:    []int64{last},
	}, nil
}

// Commit appends to several actors at once, all or nothing: one record, consecutive
// sequences in entry order, each event's EventStored published once the commit is as
// durable as the store's mode promises. Give at most one entry per actor, 1 to 10000
// entries and at most 10000 events in all.
//
// Every entry's condition is checked; if any fails, nothing is written and the error
// is a *CommitConflictError listing every failed condition. A commit whose events are
// all already stored (a retry) succeeds with AlreadyAppended, as for Append.
// Condition-only entries (no events) let a commit depend on actors it does not write,
// e.g. that a referenced actor exists.
//
// No entries or two entries of one actor are ErrInvalidArgument; other bad input as for
// Append.
func (s *Store) Commit(entries ...CommitEntry) (CommitResult, error) {
	if len(entries) == 0 {
		return CommitResult{}, newError(CodeInvalidArgument, "a commit needs at least one entry")
	}
	// One buffer holds every actor ID and events array; specs locate them, so no Go
	// memory holding pointers reaches C.
	buf := getBuffer()
	defer putBuffer(buf)
	b := buf.b[:0]
	specs := make([]capi.EntrySpec, len(entries))
	for i, e := range entries {
		sp := capi.EntrySpec{
			ActorOff:        len(b),
			ActorLen:        len(e.ActorID),
			Mode:            int(e.Expected.Mode),
			ExpectedVersion: e.Expected.Version,
		}
		b = append(b, e.ActorID...)
		if len(e.Events) == 0 {
			sp.Condition = true
		} else {
			sp.EventsOff = len(b)
			var err error
			if b, err = appendEventArray(b, e.Events); err != nil {
				buf.b = b
				return CommitResult{}, fmt.Errorf("commit entry %d (actor %q): %w", i, e.ActorID, err)
			}
			sp.EventsLen = len(b) - sp.EventsOff
		}
		specs[i] = sp
	}
	buf.b = b
	lasts := make([]int64, len(entries))
	h, err := s.acquireAppends()
	if err != nil {
		return CommitResult{}, err
	}
	defer s.mu.RUnlock()
	r, f := h.Commit(b, specs, lasts)
	if f != nil {
		return CommitResult{}, commitErrorOf(f)
	}
	return CommitResult{
		AlreadyAppended: r.AlreadyAppended,
		FirstSequence:   r.FirstSequence,
		LastSequence:    r.LastSequence,
		LastVersions:    lasts,
	}, nil
}

// RangeOption bounds a GetEventsRange read.
type RangeOption func(*eventRange) error

type eventRange struct {
	from, to int64
	limit    uint64
	backward bool
}

// FromVersion starts the range at version v (inclusive; the default is the first
// event, and a negative v means the same, as in GetEvents).
func FromVersion(v int64) RangeOption {
	return func(r *eventRange) error {
		if v < 0 {
			v = 0
		}
		r.from = v
		return nil
	}
}

// ToVersion ends the range at version v (inclusive; the default is the last event).
// A range that ends below its start is ErrInvalidArgument.
func ToVersion(v int64) RangeOption {
	return func(r *eventRange) error {
		r.to = v
		return nil
	}
}

// Limit returns at most n events (n >= 0; the default is no limit). With Backward, the
// newest n.
func Limit(n int) RangeOption {
	return func(r *eventRange) error {
		if n < 0 {
			return newError(CodeInvalidArgument, "limit is %d; it must be >= 0", n)
		}
		r.limit = uint64(n)
		return nil
	}
}

// Backward returns the events newest first.
func Backward() RangeOption {
	return func(r *eventRange) error {
		r.backward = true
		return nil
	}
}

// GetEventsRange returns the actor's events in a version range, oldest first unless
// Backward: FromVersion, ToVersion and Limit bound it. The last event of an actor is
// GetEventsRange(actor, Backward(), Limit(1)), one index seek on a sled store (see
// LastEvent). An unknown actor has no events (an empty, non-nil slice).
func (s *Store) GetEventsRange(actorID string, opts ...RangeOption) ([]*Event, error) {
	r := eventRange{to: math.MaxInt64, limit: math.MaxUint64}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&r); err != nil {
			return nil, err
		}
	}
	direction := capi.DirectionForward
	if r.backward {
		direction = capi.DirectionBackward
	}
	h, err := s.acquireAppends()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	if f := h.GetEventsRange(actorID, r.from, r.to, r.limit, direction, t.decodeEvents); f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.events, nil
}

// LastEvent returns the actor's newest event, or an error matching ErrNotFound when it
// has none.
func (s *Store) LastEvent(actorID string) (*Event, error) {
	events, err := s.GetEventsRange(actorID, Backward(), Limit(1))
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, newError(CodeNotFound, "actor %q has no events", actorID)
	}
	return events[0], nil
}

// Filter selects the events ReadAllFiltered returns: an EventType among EventTypes
// (any type when empty) and an ActorID starting with ActorPrefix (any actor when
// empty). The zero Filter accepts every event.
type Filter struct {
	EventTypes  []string
	ActorPrefix string
}

// ReadAllFiltered is ReadAll of the events filter accepts: up to limit of them with
// sequence >= fromSequence, in commit order. The filter runs inside the store, on the
// stored bytes, so events it rejects are never copied or decoded; limit counts returned
// events, and the read stops at the end of the store. A negative limit is
// ErrInvalidArgument.
func (s *Store) ReadAllFiltered(fromSequence uint64, limit int, filter Filter) ([]SequencedEvent, error) {
	if limit < 0 {
		return nil, newError(CodeInvalidArgument, "limit is %d; it must be >= 0", limit)
	}
	h, err := s.acquireAppends()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	if f := h.ReadAllFiltered(fromSequence, uint64(limit), filter.EventTypes, filter.ActorPrefix, t.decodeSequenced); f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.sequenced, nil
}

// GetSnapshot returns the actor's newest kept snapshot with Version <= atOrBelow: the
// snapshot to replay from when rebuilding the actor as of version atOrBelow. A store
// keeps the newest few snapshots per actor (3 unless WithSnapshotRetention says
// otherwise); when none qualifies it returns (nil, err) with errors.Is(err,
// ErrNotFound). GetLatestSnapshot is GetSnapshot(actorID, math.MaxInt64).
func (s *Store) GetSnapshot(actorID string, atOrBelow int64) (*ActorSnapshot, error) {
	h, err := s.acquireAppends()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t := getDecodeTarget()
	defer putDecodeTarget(t)
	if f := h.GetSnapshot(actorID, atOrBelow, t.decodeSnapshot); f != nil {
		return nil, errorOf(f)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t.snapshot, nil
}
