#!/usr/bin/env bash
# Golden-file interop test between aether-core (Rust) and Go's encoding/json.
#
# 1. The Rust test decodes every tests/golden/events/*.json, re-encodes it, checks the bytes
#    and writes the re-encodings to $AETHER_RUST_OUT.
# 2. The Go tests compare those re-encodings with the goldens (decoded and byte-for-byte),
#    check the goldens are Go round-trip stable, and that ./gen still reproduces them.
#
# Usage: bash tests/golden/run.sh   (from anywhere; `make test` calls this)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"

out_dir="$(mktemp -d "${TMPDIR:-/tmp}/aether-golden.XXXXXX")"
cleanup() { rm -rf -- "${out_dir}"; }
trap cleanup EXIT

export AETHER_RUST_OUT="${out_dir}"
# Never let the Go side skip the comparison when driven from here.
unset AETHER_GOLDEN_ALLOW_SKIP

echo "==> cargo test --release -p aether-core --test golden (AETHER_RUST_OUT=${AETHER_RUST_OUT})"
(cd "${repo_root}" && cargo test --release -q -p aether-core --test golden)

echo "==> go test -count=1 ./... (in tests/golden)"
(cd "${script_dir}" && go test -count=1 ./...)

echo "==> golden interop tests passed"
