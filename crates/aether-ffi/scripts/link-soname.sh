#!/usr/bin/env bash
# Give the build tree the library's SONAME: target/release/libaether.so.MAJOR ->
# libaether.so. The library's SONAME (set by build.rs) is libaether.so.MAJOR, so a
# program linked with -L target/release records that name and the loader looks for it,
# even through -Wl,-rpath,target/release; cargo only writes libaether.so.
#
# Run after `cargo build --release -p aether-ffi` (`make build`, `make lib` and
# tests/c/run.sh do). Not in build.rs: a build script runs before the library is linked,
# may by cargo's contract write only into its OUT_DIR, cannot know the final artifact
# directory (--target, --artifact-dir), and is not rerun when the link goes missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
release="$target_dir/release"
major=$(sed -n 's/^#define AETHER_VERSION_MAJOR \([0-9]*\)$/\1/p' "$root/include/aether.h")
if [ -z "$major" ]; then
  echo "link-soname: cannot read AETHER_VERSION_MAJOR from include/aether.h" >&2
  exit 1
fi
if [ ! -f "$release/libaether.so" ]; then
  echo "link-soname: $release/libaether.so is missing; build aether-ffi first" >&2
  exit 1
fi
# Relative, so the target folder can be moved or copied.
ln -sfn libaether.so "$release/libaether.so.$major"
