#!/usr/bin/env bash
# Print the folder holding the nats-server the JetStream tests and benches run, after
# installing it there when it is missing or not the pinned version. Use it as
#   PATH="$(bash crates/aether-jetstream/scripts/nats-server.sh):$PATH" cargo test -p aether-jetstream
# The pin is a current release with what the store needs: atomic batch publish (2.12+) and
# `sync_interval: always`. Built from source by `go install` through the Go module proxy
# (about 25-60 s on 2 cores); NATS_SERVER_VERSION overrides the pin, NATS_TOOLS_DIR the
# folder (default: target/tools of this checkout).
set -euo pipefail
version="${NATS_SERVER_VERSION:-v2.15.2}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="${NATS_TOOLS_DIR:-$root/target/tools}"
bin="$dir/nats-server"
if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "nats-server: $version" ]; then
  command -v go >/dev/null || { echo "nats-server.sh: go is needed to install nats-server $version" >&2; exit 1; }
  mkdir -p "$dir"
  echo "nats-server.sh: installing nats-server $version into $dir" >&2
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/nats-io/nats-server/v2@$version" >&2
fi
got="$("$bin" --version)"
[ "$got" = "nats-server: $version" ] || { echo "nats-server.sh: $bin says $got, not $version" >&2; exit 1; }
echo "$dir"
