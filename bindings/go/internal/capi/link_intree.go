//go:build aether_intree

package capi

// With `-tags aether_intree`: the static libaether.a of this repository's own release
// build (`cargo build --release -p aether-ffi`), for this repository's tests, which must
// test the library of the same checkout rather than whatever is installed. The path is
// relative to this file, so it works only in a checkout of aether-rs. The extra libraries
// are what the Rust standard library needs on linux-gnu (`rustc --print
// native-static-libs`, the Libs.private of aether.pc).

// #cgo CFLAGS: -I${SRCDIR}/../../../../include
// #cgo LDFLAGS: ${SRCDIR}/../../../../target/release/libaether.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
import "C"
