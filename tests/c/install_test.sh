#!/usr/bin/env bash
# `make install` into temporary locations, then build and run a C program against the
# installed library with nothing but pkg-config.
#  1. PREFIX=<tmp>/prefix: pkg-config via PKG_CONFIG_PATH, run via LD_LIBRARY_PATH.
#  2. DESTDIR=<tmp>/stage PREFIX=/usr/local: files land under DESTDIR, aether.pc names
#     /usr/local, and PKG_CONFIG_SYSROOT_DIR builds against the staged tree.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-gcc}
MAKE=${MAKE:-make}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install test: $*" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
major=${version%%.*}
[ -n "$version" ] || fail "cannot read the workspace version"

# 1. A private prefix.
prefix="$tmp/prefix"
"$MAKE" -s -C "$root" install PREFIX="$prefix" AETHER_SKIP_BUILD=1 >/dev/null
for f in "lib/libaether.so.$version" lib/libaether.a include/aether.h lib/pkgconfig/aether.pc; do
  [ -f "$prefix/$f" ] || fail "$f was not installed"
done
[ "$(readlink "$prefix/lib/libaether.so.$major")" = "libaether.so.$version" ] || fail "libaether.so.$major link"
[ "$(readlink "$prefix/lib/libaether.so")" = "libaether.so.$major" ] || fail "libaether.so link"
soname=$(readelf -d "$prefix/lib/libaether.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libaether.so.$major" ] || fail "SONAME is '$soname', not libaether.so.$major"
cmp -s "$root/include/aether.h" "$prefix/include/aether.h" || fail "installed header differs"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion aether)" = "$version" ] || fail "pkg-config version"
# shellcheck disable=SC2046 # pkg-config output is meant to be split into arguments
"$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror "$root/tests/c/install_smoke.c" \
  -o "$tmp/smoke" $(pkg-config --cflags --libs aether)
needed=$(readelf -d "$tmp/smoke" | sed -n 's/.*(NEEDED).*\[\(libaether[^]]*\)\]/\1/p')
[ "$needed" = "libaether.so.$major" ] || fail "the program needs '$needed'"
LD_LIBRARY_PATH="$prefix/lib" "$tmp/smoke"

# Static linking through pkg-config --static.
# shellcheck disable=SC2046
"$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror "$root/tests/c/install_smoke.c" \
  -o "$tmp/smoke-static" $(pkg-config --cflags aether) "$prefix/lib/libaether.a" \
  $(pkg-config --static --libs-only-l aether | sed 's/-laether//')
env -u LD_LIBRARY_PATH "$tmp/smoke-static"

# 2. A staged install (DESTDIR), as packagers do.
stage="$tmp/stage"
"$MAKE" -s -C "$root" install DESTDIR="$stage" PREFIX=/usr/local AETHER_SKIP_BUILD=1 >/dev/null
[ -f "$stage/usr/local/lib/libaether.so.$version" ] || fail "DESTDIR install missing the library"
grep -qx "prefix=/usr/local" "$stage/usr/local/lib/pkgconfig/aether.pc" || fail "aether.pc prefix under DESTDIR"
PKG_CONFIG_PATH="$stage/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
  sh -c '"$0" -std=c99 -Werror "$1" -o "$2" $(pkg-config --cflags --libs aether)' \
  "$CC" "$root/tests/c/install_smoke.c" "$tmp/smoke-staged"
LD_LIBRARY_PATH="$stage/usr/local/lib" "$tmp/smoke-staged"
echo "install test: passed"
