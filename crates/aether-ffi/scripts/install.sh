#!/usr/bin/env bash
# Install libaether (shared with SONAME symlinks, static), aether.h and aether.pc.
#
#   PREFIX (default /usr/local), DESTDIR (staging root, default none),
#   LIBDIR (default $PREFIX/lib), INCLUDEDIR (default $PREFIX/include),
#   AETHER_SKIP_BUILD=1 to install what target/release already holds.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=${INCLUDEDIR:-$PREFIX/include}
CARGO=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}
release="$target_dir/release"

# The header's version macros are tested against Cargo.toml; read the version there.
header="$root/include/aether.h"
major=$(sed -n 's/^#define AETHER_VERSION_MAJOR \([0-9]*\)$/\1/p' "$header")
minor=$(sed -n 's/^#define AETHER_VERSION_MINOR \([0-9]*\)$/\1/p' "$header")
patch=$(sed -n 's/^#define AETHER_VERSION_PATCH \([0-9]*\)$/\1/p' "$header")
if [ -z "$major" ] || [ -z "$minor" ] || [ -z "$patch" ]; then
  echo "install: cannot read the version macros of $header" >&2
  exit 1
fi
version="$major.$minor.$patch"

if [ "${AETHER_SKIP_BUILD:-0}" != 1 ]; then
  (cd "$root" && "$CARGO" build --release -p aether-ffi)
fi
for f in libaether.so libaether.a; do
  [ -f "$release/$f" ] || { echo "install: $release/$f is missing" >&2; exit 1; }
done

lib="$DESTDIR$LIBDIR"
inc="$DESTDIR$INCLUDEDIR"
install -d "$lib" "$lib/pkgconfig" "$inc"
install -m 0755 "$release/libaether.so" "$lib/libaether.so.$version"
# The SONAME (set by build.rs) names the major version; the unversioned name is for
# the linker.
ln -sf "libaether.so.$version" "$lib/libaether.so.$major"
ln -sf "libaether.so.$major" "$lib/libaether.so"
install -m 0644 "$release/libaether.a" "$lib/libaether.a"
install -m 0644 "$header" "$inc/aether.h"
# Libs.private: what the static library needs (rustc --print native-static-libs on
# linux-gnu, minus libc).
sed -e "s|@PREFIX@|$PREFIX|" -e "s|@LIBDIR@|$LIBDIR|" -e "s|@INCLUDEDIR@|$INCLUDEDIR|" \
    -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|-lgcc_s -lutil -lrt -lpthread -lm -ldl|" \
    "$root/crates/aether-ffi/aether.pc.in" > "$lib/pkgconfig/aether.pc"
chmod 0644 "$lib/pkgconfig/aether.pc"
echo "installed libaether $version into $DESTDIR$PREFIX"
