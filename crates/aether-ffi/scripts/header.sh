#!/usr/bin/env bash
# Generate include/aether.h with cbindgen (`header.sh generate`), or check that the
# committed header is what the sources generate (`header.sh check`, fails on drift).
#
# cbindgen's output differs between its versions, so a pinned version is used: the one
# on PATH if it matches, otherwise it is installed once under target/tools.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
CBINDGEN_VERSION=0.29.4
CARGO=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}

cbindgen=${CBINDGEN:-}
if [ -z "$cbindgen" ]; then
  if command -v cbindgen >/dev/null && [ "$(cbindgen --version)" = "cbindgen $CBINDGEN_VERSION" ]; then
    cbindgen=cbindgen
  else
    cbindgen="$target_dir/tools/bin/cbindgen"
    if [ ! -x "$cbindgen" ] || [ "$("$cbindgen" --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
      echo "installing cbindgen $CBINDGEN_VERSION into $target_dir/tools" >&2
      "$CARGO" install --locked --quiet cbindgen --version "$CBINDGEN_VERSION" --root "$target_dir/tools"
    fi
  fi
fi

generate() {
  (cd "$root" && "$cbindgen" --quiet --config crates/aether-ffi/cbindgen.toml \
    --crate aether-ffi --output "$1" crates/aether-ffi)
}

case "${1:-generate}" in
  generate)
    generate "$root/include/aether.h"
    ;;
  check)
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    generate "$tmp"
    if ! diff -u "$root/include/aether.h" "$tmp"; then
      echo "include/aether.h is out of date with crates/aether-ffi: run 'make header' and commit it" >&2
      exit 1
    fi
    echo "include/aether.h is up to date"
    ;;
  *)
    echo "usage: $0 [generate|check]" >&2
    exit 2
    ;;
esac
