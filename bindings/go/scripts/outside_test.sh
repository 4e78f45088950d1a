#!/usr/bin/env bash
# Builds and runs a Go program the way a user outside this repository does: a fresh
# module that requires the binding (a `replace` points at this directory, standing in for
# `go get`), built with no build tags and no repo-relative path, against libaether
# installed by `make install` into a temporary DESTDIR. The program must save an event
# and read it back, and must have loaded the installed shared library.
#
# Usage: bash bindings/go/scripts/outside_test.sh   (`make test-go` runs it)
set -euo pipefail

binding=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$binding/../.." && pwd)
module=$(sed -n 's/^module //p' "$binding/go.mod")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aether-go-outside.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
stage="$tmp/stage"
app="$tmp/app"

echo "==> make install DESTDIR=$stage PREFIX=/usr"
make -s -C "$root" install DESTDIR="$stage" PREFIX=/usr >/dev/null

mkdir -p "$app"
cat >"$app/go.mod" <<MOD
module example.com/outside

go 1.22

require $module v0.0.0

replace $module => $binding
MOD
cat >"$app/main.go" <<GO
package main

import (
	"fmt"
	"os"
	"time"

	aether "$module"
)

func main() {
	store, err := aether.OpenSled(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	err = store.SaveEvent(&aether.Event{ID: "e1", EventType: "OrderPlaced", ActorID: "order-1",
		Version: 1, Data: map[string]interface{}{"total": 42}, Timestamp: time.Unix(0, 0).UTC()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "save:", err)
		os.Exit(1)
	}
	events, err := store.GetEvents("order-1", 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(1)
	}
	if err := store.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
	for _, e := range events {
		fmt.Printf("%s %s v%d total=%v\n", e.ActorID, e.EventType, e.Version, e.Data["total"])
	}
	fmt.Println("library", aether.LibraryVersion())
}
GO

# The installed aether.pc names its final prefix (/usr); PKG_CONFIG_SYSROOT_DIR points
# pkg-config's -I and -L at the staged copy, as for any DESTDIR-staged library. Nothing
# else of the environment may supply flags or a build tag, and nothing may be fetched.
# A build cache of its own, as on a user's machine: Go's cache does not notice that
# pkg-config's answer changed (golang/go#24544), so a shared one would hand back the
# flags of an earlier run's temporary prefix.
export PKG_CONFIG_PATH="$stage/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage"
export GOFLAGS= GOWORK=off GOPROXY=off CGO_ENABLED=1 GOCACHE="$tmp/gocache"
unset CGO_CFLAGS CGO_CPPFLAGS CGO_LDFLAGS LIBRARY_PATH C_INCLUDE_PATH CPATH

echo "==> go build (in $app, no tags)"
log="$tmp/build.log"
(cd "$app" && go build -x -o "$tmp/outside" . 2>"$log") || { cat "$log" >&2; exit 1; }
if grep -F -e "$root/target" -e "/target/release/" -e "libaether.a" "$log" >&2; then
  echo "FAIL: the build used the repository's own library" >&2
  exit 1
fi

# The binary must need the shared library and find it in the staged prefix, not in the
# repository's target/ folder.
export LD_LIBRARY_PATH="$stage/usr/lib"
resolved=$(ldd "$tmp/outside" | sed -n 's/^[[:space:]]*libaether\.so\.[0-9]* => \([^ ]*\) .*/\1/p')
if [ "$resolved" != "$stage/usr/lib/libaether.so.0" ]; then
  echo "FAIL: libaether resolved to '$resolved', want $stage/usr/lib/libaether.so.0" >&2
  ldd "$tmp/outside" >&2
  exit 1
fi

echo "==> run"
out=$("$tmp/outside" "$tmp/store")
want_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
want="order-1 OrderPlaced v1 total=42
library $want_version"
if [ "$out" != "$want" ]; then
  printf 'FAIL: the program printed\n%s\nwant\n%s\n' "$out" "$want" >&2
  exit 1
fi
echo "==> a module outside the tree built against the installed library, saved and read an event"
