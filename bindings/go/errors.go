package aether

import (
	"errors"
	"fmt"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// Code is the kind of a failure: the C ABI's aether_status.
type Code int

// The codes a store call can fail with; the values are those of the C ABI's
// aether_status and never change.
const (
	CodeVersionConflict Code = Code(capi.StatusVersionConflict)
	CodeInvalidArgument Code = Code(capi.StatusInvalidArgument)
	CodeInvalidEvent    Code = Code(capi.StatusInvalidEvent)
	CodeNotFound        Code = Code(capi.StatusNotFound)
	CodeCorrupt         Code = Code(capi.StatusCorrupt)
	CodeDataLoss        Code = Code(capi.StatusDataLoss)
	CodeLocked          Code = Code(capi.StatusLocked)
	CodeStorage         Code = Code(capi.StatusStorage)
	CodeStoreClosed     Code = Code(capi.StatusStoreClosed)
	CodeTimeout         Code = Code(capi.StatusTimeout)
	CodeUnavailable     Code = Code(capi.StatusUnavailable)
	CodeStaleSnapshot   Code = Code(capi.StatusStaleSnapshot)
	CodeInternal        Code = Code(capi.StatusPanic)
	CodeUnsupported     Code = Code(capi.StatusUnsupported)
)

// String is the library's description of the code, e.g. "version conflict".
func (c Code) String() string { return capi.StatusString(int(c)) }

// Sentinels, one per thing a caller can act on. Every error this package returns
// matches exactly one of them with errors.Is (ErrVersionConflict for conflicts).
var (
	// ErrInvalidEvent: the event, batch or snapshot is unusable (nil, not encodable,
	// malformed, empty actor ID, over the size limit, a batch that is empty, mixes
	// actors or has unordered versions). Nothing was written.
	ErrInvalidEvent = errors.New("aether: invalid event")
	// ErrInvalidArgument: an argument other than an event is out of range (a path
	// containing NUL, a negative limit, an unknown durability, ...).
	ErrInvalidArgument = errors.New("aether: invalid argument")
	// ErrNotFound: the requested item does not exist (an actor without a snapshot).
	ErrNotFound = errors.New("aether: not found")
	// ErrCorrupt: a stored record could not be decoded; GetEventsWithErrors reads
	// around damaged records.
	ErrCorrupt = errors.New("aether: corrupt record")
	// ErrDataLoss: the store refuses to open because data it acknowledged as durable
	// is missing. Restore from a backup.
	ErrDataLoss = errors.New("aether: data loss")
	// ErrLocked: another process (or another open Store in this process) holds the
	// store directory.
	ErrLocked = errors.New("aether: store is locked")
	// ErrStorage: the underlying storage failed (I/O error, disk full); the save was
	// not acknowledged and the store refuses writes until reopened.
	ErrStorage = errors.New("aether: storage failure")
	// ErrStoreClosed: the Store was closed, or refuses writes after a storage failure.
	ErrStoreClosed = errors.New("aether: store is closed")
	// ErrTimeout: a networked store (OpenJetStream) did not answer in time. If the
	// message says "outcome unknown", a save may or may not have been stored: retrying
	// it with the same event ID is safe.
	ErrTimeout = errors.New("aether: timeout")
	// ErrUnavailable: a networked store (OpenJetStream) is unreachable, at open or
	// later. The message says whether the outcome is unknown (as for ErrTimeout).
	ErrUnavailable = errors.New("aether: store unavailable")
	// ErrStaleSnapshot: the snapshot is older than the actor's stored snapshot.
	// Nothing was written.
	ErrStaleSnapshot = errors.New("aether: stale snapshot")
	// ErrInternal: a bug inside the library was caught at the boundary (a Rust
	// panic). The call did nothing observable; please report the message.
	ErrInternal = errors.New("aether: internal error")
	// ErrUnsupported: the store's backend (or its server) does not implement this
	// operation. Nothing was done; the same call on the same store always fails the
	// same way.
	ErrUnsupported = errors.New("aether: unsupported")
)

// Error is a failure reported by the store (or detected by this package before calling
// it). It unwraps to the sentinel of its Code, so
//
//	errors.Is(err, aether.ErrCorrupt)       // the kind
//	var e *aether.Error; errors.As(err, &e) // the code and message
//
// both work. Version conflicts are reported as *VersionConflictError instead, as in
// the aether Go library (and as *CommitConflictError by Append and Commit).
type Error struct {
	Code    Code
	Message string
	// OutcomeUnknown is true when the failed call may nonetheless have been applied: a
	// storage failure after the record may have reached the log (the store then refuses
	// writes until reopened, and the record may be there after reopening), or a
	// JetStream timeout or lost connection. Read the actor back, or retry the same event:
	// a save that landed then conflicts. False means nothing was written.
	OutcomeUnknown bool
}

func (e *Error) Error() string {
	return "aether: " + e.Message
}

// Unwrap returns the sentinel of e.Code (nil for an unknown code).
func (e *Error) Unwrap() error {
	return sentinelOf(e.Code)
}

func sentinelOf(c Code) error {
	switch c {
	case CodeVersionConflict:
		return ErrVersionConflict
	case CodeInvalidArgument:
		return ErrInvalidArgument
	case CodeInvalidEvent:
		return ErrInvalidEvent
	case CodeNotFound:
		return ErrNotFound
	case CodeCorrupt:
		return ErrCorrupt
	case CodeDataLoss:
		return ErrDataLoss
	case CodeLocked:
		return ErrLocked
	case CodeStorage:
		return ErrStorage
	case CodeStoreClosed:
		return ErrStoreClosed
	case CodeTimeout:
		return ErrTimeout
	case CodeUnavailable:
		return ErrUnavailable
	case CodeStaleSnapshot:
		return ErrStaleSnapshot
	case CodeInternal:
		return ErrInternal
	case CodeUnsupported:
		return ErrUnsupported
	}
	return nil
}

func newError(c Code, format string, args ...interface{}) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// errClosed is returned without calling the library once Close has run.
var errClosed = &Error{Code: CodeStoreClosed, Message: "store is closed: Close() was called"}

// errorOf maps a failed C call to the Go error a caller acts on.
func errorOf(f *capi.Failure) error {
	if f == nil {
		return nil
	}
	if f.Status == capi.StatusVersionConflict && f.HasConflict {
		return &VersionConflictError{
			ActorID:          f.ActorID,
			AttemptedVersion: f.AttemptedVersion,
			CurrentVersion:   f.CurrentVersion,
		}
	}
	return &Error{Code: Code(f.Status), Message: f.Message, OutcomeUnknown: f.OutcomeUnknown}
}
