package aether

import (
	"context"
	"time"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// EventStored delivery. The store publishes one notification per stored event (never
// for a failed save) into a bounded channel; each notification is taken by exactly one
// poller, in commit order. When nobody drains the channel, new notifications are dropped
// and counted (Metrics.EventStoredDropped); Sequence shows the gap and ReadAll fills it.

func eventStoredOf(e capi.EventStored) EventStored {
	return EventStored{
		EventID:   e.EventID,
		ActorID:   e.ActorID,
		Version:   e.Version,
		Timestamp: time.Unix(0, e.TimestampUnixNanos),
		Sequence:  e.Sequence,
	}
}

// PollEventStored takes the next EventStored notification, waiting up to timeout for one
// (rounded up to whole milliseconds; <= 0 means do not wait). It returns (nil, nil) when
// nothing arrived in time, and an error matching ErrStoreClosed once the store is closed
// (also when Close is called while it waits).
func (s *Store) PollEventStored(timeout time.Duration) (*EventStored, error) {
	h, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	n, f := h.PollOne(ceilMillis(timeout))
	if f != nil {
		if f.Status == capi.StatusPollTimeout {
			return nil, nil
		}
		return nil, errorOf(f)
	}
	e := eventStoredOf(n)
	return &e, nil
}

// eventStoredPollInterval bounds how long an EventStoredChan goroutine waits in the
// library before it looks at its context again.
const eventStoredPollInterval = 50 * time.Millisecond

// eventStoredBatch is how many notifications an EventStoredChan goroutine takes per call.
const eventStoredBatch = 256

// EventStoredChan delivers EventStored notifications on a channel until ctx ends or the
// store is closed; then the channel is closed and its goroutine exits (within about
// 50 ms of ctx ending). Cancel ctx (or Close the store) when done, or the goroutine
// keeps polling.
//
// Notifications go to one poller each: several channels (or a channel and
// PollEventStored) share the stream rather than each seeing all of it. Notifications
// already taken from the store but not yet received when ctx ends are lost; their
// events are in the store, and Sequence with ReadAll finds them.
func (s *Store) EventStoredChan(ctx context.Context) <-chan EventStored {
	ch := make(chan EventStored, 64)
	go s.deliverEventStored(ctx, ch)
	return ch
}

// pollBatch is one PollEventStored call of the library under the read lock.
func (s *Store) pollBatch(timeoutMs int64, buf *capi.EventStoredBuffer, dst []capi.EventStored) ([]capi.EventStored, *capi.Failure, error) {
	h, err := s.acquire()
	if err != nil {
		return dst, nil, err
	}
	defer s.mu.RUnlock()
	batch, f := h.PollEventStored(timeoutMs, buf, dst)
	return batch, f, nil
}

func (s *Store) deliverEventStored(ctx context.Context, ch chan<- EventStored) {
	defer close(ch)
	buf := capi.NewEventStoredBuffer(eventStoredBatch)
	defer buf.Free()
	var batch []capi.EventStored
	timeoutMs := ceilMillis(eventStoredPollInterval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		default:
		}
		var f *capi.Failure
		var err error
		batch, f, err = s.pollBatch(timeoutMs, buf, batch[:0])
		if err != nil {
			return
		}
		if f != nil {
			if f.Status == capi.StatusPollTimeout {
				continue
			}
			return // closed (or a library bug): nothing more will arrive
		}
		for _, n := range batch {
			select {
			case ch <- eventStoredOf(n):
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			}
		}
	}
}
