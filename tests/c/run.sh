#!/usr/bin/env bash
# The C and C++ tests of libaether (`make test-c`):
#  - the header compiles alone as C99 and C++17 (included twice), and ignoring a status
#    is a compile error under -Werror (AETHER_MUST_USE);
#  - every C test program runs three ways: plain (shared library), under ASan+UBSan
#    (static library, leaks detected, UBSan fatal), under valgrind memcheck (shared
#    library, zero errors, zero definite/indirect leaks);
#  - the C++ wrapper test, plain and under ASan+UBSan;
#  - `make install` into temporary prefixes, then a pkg-config build.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CC=${CC:-gcc}
CXX=${CXX:-g++}
CARGO=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}
release="$target_dir/release"
out="$target_dir/c-tests"
# test_jetstream starts its own nats-server (fails without one on PATH unless
# AETHER_SKIP_JETSTREAM=1); it is quick enough (a few seconds) for all three runs.
programs=(test_api test_appends test_bad_input test_sled test_threads test_cycles test_jetstream)

"$CARGO" build --release -p aether-ffi
bash crates/aether-ffi/scripts/link-soname.sh
mkdir -p "$out/lib"
# Programs link against the SONAME (libaether.so.0); give the loader that name.
major=$(sed -n 's/^#define AETHER_VERSION_MAJOR \([0-9]*\)$/\1/p' include/aether.h)
ln -sf "$release/libaether.so" "$out/lib/libaether.so"
ln -sf "$release/libaether.so" "$out/lib/libaether.so.$major"

warnings=(-Wall -Wextra -Wpedantic -Werror)
cflags=(-std=c99 "${warnings[@]}" -g -Iinclude)
cxxflags=(-std=c++17 "${warnings[@]}" -g -Iinclude -Ibindings/cpp)
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
static_libs=("$release/libaether.a" -pthread -lgcc_s -lutil -lrt -lm -ldl)
shared_libs=(-L"$out/lib" -laether -pthread)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
valgrind=(valgrind -q --error-exitcode=1 --leak-check=full
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
  --suppressions=tests/c/valgrind.supp)
failures=0

step() { printf '\n== %s\n' "$*"; }
run() {
  if ! "$@"; then
    echo "FAILED: $*" >&2
    failures=$((failures + 1))
  fi
}

step "header compiles alone as C99 and C++17, twice included"
run "$CC" "${cflags[@]}" -c tests/c/header_only.c -o "$out/header_only_c.o"
run "$CXX" -x c++ "${cxxflags[@]}" -c tests/c/header_only.c -o "$out/header_only_cpp.o"
step "ignoring a status does not compile (AETHER_MUST_USE)"
if "$CC" "${cflags[@]}" -c tests/c/must_use.c -o "$out/must_use.o" 2>"$out/must_use.log"; then
  echo "FAILED: tests/c/must_use.c compiled although it ignores a status" >&2
  failures=$((failures + 1))
elif ! grep -q "unused-result" "$out/must_use.log"; then
  cat "$out/must_use.log" >&2
  echo "FAILED: tests/c/must_use.c failed for another reason" >&2
  failures=$((failures + 1))
else
  echo "refused, as it should be"
fi

for p in "${programs[@]}"; do
  "$CC" "${cflags[@]}" "tests/c/$p.c" -o "$out/$p" "${shared_libs[@]}"
  "$CC" "${cflags[@]}" "${sanitize[@]}" "tests/c/$p.c" -o "$out/$p.asan" "${static_libs[@]}"
done
"$CXX" "${cxxflags[@]}" tests/cpp/test_aether.cpp -o "$out/test_cpp" "${shared_libs[@]}"
"$CXX" "${cxxflags[@]}" "${sanitize[@]}" tests/cpp/test_aether.cpp -o "$out/test_cpp.asan" \
  "${static_libs[@]}"

for p in "${programs[@]}"; do
  step "$p (plain)"
  run env LD_LIBRARY_PATH="$out/lib" "$out/$p"
  step "$p (ASan+UBSan)"
  run "$out/$p.asan"
  step "$p (valgrind)"
  # test_cycles: 100 sled open/close cycles instead of 1000 (about 6 s instead of a
  # minute under valgrind); the ASan run does all 1000 with LeakSanitizer.
  # test_threads: 8 threads x 500 read-then-save attempts instead of 10,000 (valgrind
  # serialises the threads and is ~50x slower); plain and ASan runs do all 10,000.
  run env LD_LIBRARY_PATH="$out/lib" AETHER_SLED_CYCLES=100 AETHER_RACE_SAVES=500 \
    "${valgrind[@]}" "$out/$p"
done
step "C++ wrapper (plain)"
run env LD_LIBRARY_PATH="$out/lib" "$out/test_cpp"
step "C++ wrapper (ASan+UBSan)"
run "$out/test_cpp.asan"

step "a program linked against the build tree with an rpath runs (libaether.so.$major there)"
"$CC" "${cflags[@]}" tests/c/install_smoke.c -o "$out/rpath_smoke" -L"$release" -laether \
  -Wl,-rpath,"$release"
run env -u LD_LIBRARY_PATH "$out/rpath_smoke"

step "make install + pkg-config"
run bash tests/c/install_test.sh

if [ "$failures" -ne 0 ]; then
  printf '\ntest-c: %d step(s) failed\n' "$failures" >&2
  exit 1
fi
printf '\ntest-c: all passed\n'
