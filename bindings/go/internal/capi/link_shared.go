//go:build aether_shared

package capi

// With `-tags aether_shared`: link the installed shared library (`make install`), found
// through pkg-config (set PKG_CONFIG_PATH for a non-standard PREFIX; the loader must
// find libaether.so.0 at run time, e.g. through LD_LIBRARY_PATH or ldconfig).

// #cgo pkg-config: aether
import "C"
