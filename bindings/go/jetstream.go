package aether

import (
	"math"
	"strings"
	"time"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// OpenJetStream opens a store on a NATS JetStream server or cluster: it connects to url
// (one "nats://host:port", or a comma-separated list of a cluster's servers), creates
// the events and snapshot streams when missing, and follows the events stream, so
// PollEventStored and EventStoredChan report the saves of every process sharing the
// stream. It fails within the connect timeout (default 5s) with an error matching
// ErrUnavailable or ErrTimeout when no server answers.
//
// Options: WithStream, WithSubjectPrefix, WithReplicas, WithConnectTimeout,
// WithRequestTimeout, WithCredentialsFile and WithEventStoredCapacity; sled options are
// refused with ErrInvalidArgument.
//
// Network failures of later calls match ErrUnavailable or ErrTimeout too. When the
// error's message says "outcome unknown", a save may or may not have been stored:
// retrying it with the same event (same ID) is safe, it is stored at most once, and the
// retry fails with a *VersionConflictError if the first attempt had landed. Flush has
// nothing to do (a save returns after the server acknowledged it); Close disconnects.
func OpenJetStream(url string, opts ...Option) (*Store, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if len(o.sledOnly) > 0 {
		return nil, newError(CodeInvalidArgument, "%s applies to sled stores only", strings.Join(o.sledOnly, ", "))
	}
	if strings.IndexByte(url, 0) >= 0 {
		return nil, newError(CodeInvalidArgument, "url %q contains a NUL byte", url)
	}
	if strings.TrimSpace(url) == "" {
		return nil, newError(CodeInvalidArgument, "url is empty")
	}
	js := o.js
	js.EventStoredCapacity = o.sled.EventStoredCapacity
	h, f := capi.OpenJetStream(url, js)
	if f != nil {
		return nil, errorOf(f)
	}
	return newStore(h), nil
}

func (o *options) refuseJetStreamOnly() error {
	if len(o.jsOnly) > 0 {
		return newError(CodeInvalidArgument, "%s applies to JetStream stores only", strings.Join(o.jsOnly, ", "))
	}
	return nil
}

// noNUL refuses a string option the C library could not receive whole.
func noNUL(option, value string) error {
	if value == "" {
		return newError(CodeInvalidArgument, "%s: empty value", option)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return newError(CodeInvalidArgument, "%s: %q contains a NUL byte", option, value)
	}
	return nil
}

// WithStream names the events stream (created when missing; snapshots live in
// "{name}_SNAPSHOTS"): 1-200 characters of [A-Za-z0-9_-], default "AETHER_EVENTS".
// JetStream only.
func WithStream(name string) Option {
	return func(o *options) error {
		if err := noNUL("WithStream", name); err != nil {
			return err
		}
		o.js.Stream = name
		o.jsOnly = append(o.jsOnly, "WithStream")
		return nil
	}
}

// WithSubjectPrefix sets the first subject tokens ("{prefix}.events.*",
// "{prefix}.snapshots.*"): dot-separated tokens of [A-Za-z0-9_-], default "aether".
// JetStream only.
func WithSubjectPrefix(prefix string) Option {
	return func(o *options) error {
		if err := noNUL("WithSubjectPrefix", prefix); err != nil {
			return err
		}
		o.js.SubjectPrefix = prefix
		o.jsOnly = append(o.jsOnly, "WithSubjectPrefix")
		return nil
	}
}

// WithReplicas sets the replicas of the streams when OpenJetStream creates them: 1 (the
// default) for one server, 3 or 5 in a cluster. JetStream only.
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return newError(CodeInvalidArgument, "replicas is %d; it must be between 1 and 5", n)
		}
		o.js.Replicas = uint32(n)
		o.jsOnly = append(o.jsOnly, "WithReplicas")
		return nil
	}
}

func timeoutMillis(option string, d time.Duration) (uint32, error) {
	if d <= 0 {
		return 0, newError(CodeInvalidArgument, "%s is %v; it must be > 0", option, d)
	}
	ms := ceilMillis(d)
	if ms > math.MaxUint32 {
		return 0, newError(CodeInvalidArgument, "%s is %v; it must be at most %d ms", option, d, uint32(math.MaxUint32))
	}
	return uint32(ms), nil
}

// WithConnectTimeout bounds connecting and setting up the streams in OpenJetStream; d > 0,
// rounded up to whole milliseconds, default 5s. JetStream only.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) error {
		ms, err := timeoutMillis("connect timeout", d)
		if err != nil {
			return err
		}
		o.js.ConnectTimeoutMs = ms
		o.jsOnly = append(o.jsOnly, "WithConnectTimeout")
		return nil
	}
}

// WithRequestTimeout bounds each request to the server (a save's acknowledgement, a
// read); d > 0, rounded up to whole milliseconds, default 5s. JetStream only.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) error {
		ms, err := timeoutMillis("request timeout", d)
		if err != nil {
			return err
		}
		o.js.RequestTimeoutMs = ms
		o.jsOnly = append(o.jsOnly, "WithRequestTimeout")
		return nil
	}
}

// WithCredentialsFile authenticates with a NATS credentials file (.creds: user JWT and
// NKey seed). A file that cannot be read fails OpenJetStream with ErrInvalidArgument.
// JetStream only.
func WithCredentialsFile(path string) Option {
	return func(o *options) error {
		if err := noNUL("WithCredentialsFile", path); err != nil {
			return err
		}
		o.js.CredentialsFile = path
		o.jsOnly = append(o.jsOnly, "WithCredentialsFile")
		return nil
	}
}
