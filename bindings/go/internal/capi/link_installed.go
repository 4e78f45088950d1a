//go:build !aether_intree

package capi

// Default linking: libaether as installed by `make install` (or a distribution package),
// found through pkg-config's aether.pc, as cgo bindings of C libraries usually are. The
// linker takes the shared library when both are installed, so the loader must find
// libaether.so.0 at run time (a standard prefix, ldconfig, or LD_LIBRARY_PATH). For an
// installed prefix pkg-config does not search, set PKG_CONFIG_PATH to its lib/pkgconfig.

// #cgo pkg-config: aether
import "C"
