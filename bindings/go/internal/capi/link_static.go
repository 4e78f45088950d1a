//go:build !aether_shared

package capi

// Default linking: the static libaether.a of this repository's release build
// (`cargo build --release -p aether-ffi`), so Go binaries carry the store and need no
// shared library at run time. The extra libraries are what the Rust standard library
// needs on linux-gnu (`rustc --print native-static-libs`, the Libs.private of aether.pc).

// #cgo CFLAGS: -I${SRCDIR}/../../../../include
// #cgo LDFLAGS: ${SRCDIR}/../../../../target/release/libaether.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
import "C"
