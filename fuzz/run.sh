#!/usr/bin/env bash
# `make fuzz`: build the cargo-fuzz targets, then run each for a bounded time, one after
# the other (they share the machine with everything else).
#
#   FUZZ_SECONDS   seconds per target (default 60; `make soak` uses 600)
#   FUZZ_ASAN      1 = AddressSanitizer + LeakSanitizer build (needs RUSTC_BOOTSTRAP on
#                  stable, set here); default 0 = no sanitizer, the fastest
#   FUZZ_TARGETS   space-separated subset (default: every target in fuzz/Cargo.toml)
#   FUZZ_ARGS      extra libFuzzer flags, e.g. "-max_len=65536"
#
# Each run starts from the committed seeds in fuzz/corpus/<target>/, copied to a temporary
# directory so that what the fuzzer adds never shows up in git. A crash leaves its input in
# fuzz/artifacts/<target>/ (git-ignored); reproduce it with
#   cargo fuzz run -s none <target> fuzz/artifacts/<target>/<file>
# and turn it into a regression test (crates/*/tests/fuzz_regressions.rs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}
seconds=${FUZZ_SECONDS:-60}
asan=${FUZZ_ASAN:-0}
targets=${FUZZ_TARGETS:-event_json ffi_entry_points segment_reader}
read -r -a extra <<<"${FUZZ_ARGS:-}"

if ! "$CARGO" fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  "$CARGO" install cargo-fuzz --locked
fi

# Debug assertions and overflow checks on: an overflow a fuzzer reaches is a bug to hear
# about, not a value to wrap silently.
if [ "$asan" = 1 ]; then
  # The sanitizer runtime needs -Zsanitizer, an unstable flag.
  export RUSTC_BOOTSTRAP=1
  flags=(--debug-assertions --sanitizer address --target-dir fuzz/target/asan)
else
  flags=(--debug-assertions --sanitizer none --target-dir fuzz/target/plain)
fi

echo "== building fuzz targets (${flags[*]})"
"$CARGO" fuzz build "${flags[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/aether-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for t in $targets; do
  echo
  echo "== $t: ${seconds}s"
  mkdir -p "$work/$t"
  cp fuzz/corpus/"$t"/* "$work/$t/"
  # -timeout: one input running 10 s is a hang worth reporting. Stats go to the log.
  if "$CARGO" fuzz run "${flags[@]}" "$t" "$work/$t" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}" \
    2>&1 | tee "$work/$t.log"; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log" | tail -1)
  corpus=$(find "$work/$t" -type f | wc -l)
  summary+=("$(printf '%-18s %-7s runs=%-10s execs/s=%-7s corpus=%s' \
    "$t" "$status" "${runs:-?}" "${rate:-?}" "$corpus")")
done

echo
echo "== fuzz summary (${seconds}s per target, asan=$asan)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs under fuzz/artifacts/" >&2
  exit 1
fi
