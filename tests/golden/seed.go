// Package golden checks that aether-rs encodes events exactly as Go's encoding/json does.
//
// The golden files in events/ are json.Marshal output of the structs below (written by
// ./gen). The Rust integration test crates/aether-core/tests/golden.rs decodes every golden
// file with aether_core, re-encodes it and writes the bytes to $AETHER_RUST_OUT under the same
// name; the tests here check those bytes against the goldens from the Go side. run.sh runs
// both halves in order.
package golden

import "time"

// Event is the aether Go library's aether.Event, field for field and tag for tag: the
// reference every encoding is held to. It is written out here rather than imported from
// bindings/go, so the goldens stay pinned to the original even if the binding drifts.
type Event struct {
	ID        string                 `json:"id"`
	EventType string                 `json:"eventType"`
	ActorID   string                 `json:"actorId"`
	CommandID string                 `json:"commandId,omitempty"`
	Version   int64                  `json:"version"`
	Data      map[string]interface{} `json:"data"`
	Metadata  map[string]string      `json:"metadata,omitempty"`
	Timestamp time.Time              `json:"timestamp"`
}

// ActorSnapshot is the aether Go library's aether.ActorSnapshot.
type ActorSnapshot struct {
	ActorID   string                 `json:"actorId"`
	Version   int64                  `json:"version"`
	State     map[string]interface{} `json:"state"`
	Timestamp time.Time              `json:"timestamp"`
}
