package aether

import (
	"fmt"
	"testing"

	"github.com/aether-rs/aether-rs/bindings/go/internal/capi"
)

// The linked library is the one the header this package was compiled with describes.
func TestLibraryMatchesHeader(t *testing.T) {
	want := fmt.Sprintf("%d.%d.%d", capi.HeaderVersionMajor, capi.HeaderVersionMinor, capi.HeaderVersionPatch)
	if got := LibraryVersion(); got != want {
		t.Fatalf("libaether %s, header %s: rebuild with cargo build --release -p aether-ffi", got, want)
	}
}
