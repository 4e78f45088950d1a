# Thin targets; the real work lives in cargo, the test scripts and the crates.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all build lib run test test-rust test-golden lint fmt bench clean header check-header install test-c test-go test-jetstream test-loom test-loom-breaks
.PHONY: fuzz soak

all: build

# Both also link target/release/libaether.so.0 (the SONAME) to libaether.so, so
# programs linked against the build tree with an rpath load without `make install`.
build:
	$(CARGO) build --release --workspace
	bash crates/aether-ffi/scripts/link-soname.sh

# libaether alone (.so with its SONAME link, .a).
lib:
	$(CARGO) build --release -p aether-ffi
	bash crates/aether-ffi/scripts/link-soname.sh

# The main job: the event-sourcing benchmark on an embedded sled store in a temporary
# folder, with its peers (raw sled, the disk, SQLite) and the targets; about a minute.
run: build
	$(CARGO) run --release -q -p aether-cli -- bench --compare

test: build lint test-rust test-loom test-golden test-c test-go check-header test-jetstream

# Tests that start nats-server processes (aether-jetstream's, the CLI's JetStream bench
# tests, the C and Go JetStream tests) run the pinned release, which
# scripts/nats-server.sh installs into target/tools with `go install` when missing (about
# a minute, once); this puts it first on PATH, so `make test` needs no nats-server of its
# own.
WITH_NATS = PATH="$$(bash $(CURDIR)/crates/aether-jetstream/scripts/nats-server.sh):$$PATH"

# aether-jetstream's tests start nats-server processes; they run once, in test-jetstream.
# The disk-full test mounts a tmpfs, so it needs root: elsewhere it fails unless
# AETHER_SKIP_DISK_FULL=1, which builds it ignored.
# Then the lean libaether (aether-ffi without its `jetstream` feature): its tests, and a
# check that tokio, async-nats and ring stay out. It builds in a target folder of its
# own so its libaether.so never replaces the default build's.
LEAN_TARGET_DIR ?= $(CURDIR)/target/lean
test-rust:
	$(WITH_NATS) $(CARGO) test --workspace --release --exclude aether-jetstream
	CARGO_TARGET_DIR="$(LEAN_TARGET_DIR)" $(CARGO) test --release -p aether-ffi --no-default-features
	@if $(CARGO) tree -p aether-ffi --no-default-features -e normal --prefix none | \
	    grep -E '^(tokio|async-nats|ring) '; then \
	  echo "test-rust: aether-ffi --no-default-features still depends on the above" >&2; exit 1; \
	fi

# loom's model check of the durable mode's group commit (crates/aether-core/tests/loom.rs):
# every interleaving of a few savers up to each scenario's preemption bound
# (LOOM_MAX_PREEMPTIONS=N overrides it); under a minute on 2 cores. `--cfg aether_loom`
# swaps in loom's locks, so it builds into a target folder of its own and leaves the
# main build's cache alone.
LOOM_TARGET_DIR ?= $(CURDIR)/target/loom
test-loom:
	RUSTFLAGS="--cfg aether_loom" CARGO_TARGET_DIR="$(LOOM_TARGET_DIR)" $(CARGO) test --release -p aether-core --test loom

# That the model check catches real mistakes: reruns test-loom's scenarios once per
# deliberate break of the group commit (`commit::breaks`, loom builds only), and fails
# unless every break is caught by a check or a deadlock. About a minute and a half; not
# part of `make test`.
test-loom-breaks:
	RUSTFLAGS="--cfg aether_loom" CARGO_TARGET_DIR="$(LOOM_TARGET_DIR)" $(CARGO) test --release -p aether-core --test loom -- --ignored --exact every_deliberate_break_is_caught --nocapture

# The NATS JetStream backend: the conformance suite, failure, crash and cross-process
# tests on a single nats-server, and a 3-node cluster. Runs the pinned nats-server
# (v2.15.2; 2.12+ is needed for atomic batches), which scripts/nats-server.sh installs into
# target/tools with `go install` when missing, first on PATH. With a server older than 2.12
# the tests fail, saying so; AETHER_SKIP_JETSTREAM=1 with no server builds them ignored
# (they count as ignored, never as passed).
test-jetstream:
	$(WITH_NATS) $(CARGO) test --release -p aether-jetstream

test-golden:
	bash tests/golden/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The C ABI: regenerate include/aether.h, or fail if the committed one has drifted.
header:
	bash crates/aether-ffi/scripts/header.sh generate

check-header:
	bash crates/aether-ffi/scripts/header.sh check

# libaether.so (with SONAME links), libaether.a, aether.h and aether.pc under
# $(DESTDIR)$(PREFIX).
install:
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" bash crates/aether-ffi/scripts/install.sh

# C and C++ tests of the C ABI (plain, ASan+UBSan, valgrind), header and install tests.
test-c:
	$(WITH_NATS) bash tests/c/run.sh

# The Go binding (bindings/go): vet, the race detector and cgo's strictest pointer checks,
# built with -tags aether_intree so they link this checkout's static libaether.a (the
# default build links the installed library through pkg-config). The CLI damages a store
# for the corruption test. Then the way a user outside the tree builds: outside_test.sh
# installs into a temporary DESTDIR and builds a fresh module against it.
test-go:
	$(CARGO) build --release -p aether-ffi -p aether-cli
	cd bindings/go && go vet -tags aether_intree ./...
	cd bindings/go && $(WITH_NATS) AETHER_CLI="$(CURDIR)/target/release/aether" go test -tags aether_intree -race -count=1 ./...
	cd bindings/go && $(WITH_NATS) AETHER_CLI="$(CURDIR)/target/release/aether" GOEXPERIMENT=cgocheck2 go test -tags aether_intree -count=1 ./...
	bash bindings/go/scripts/outside_test.sh

# cargo-fuzz targets (fuzz/), each for FUZZ_SECONDS; FUZZ_ASAN=1 for AddressSanitizer.
# Installs cargo-fuzz when missing. Not part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_ASAN ?= 0
fuzz:
	FUZZ_SECONDS="$(FUZZ_SECONDS)" FUZZ_ASAN="$(FUZZ_ASAN)" bash fuzz/run.sh

# The long runs of the crash, model and corruption tests, then every fuzz target for
# SOAK_FUZZ_SECONDS: roughly 90 minutes on 2 cores, 40 of them fuzzing. Lower the
# counts to try it out. The crash cycles run on a new store every 200, two stores at a
# time (SOAK_CRASH_JOBS).
SOAK_CRASH_CYCLES ?= 2000
SOAK_CRASH_JOBS ?= 2
SOAK_MODEL_CASES ?= 20000
SOAK_CORRUPTION_TRIALS ?= 5000
SOAK_FUZZ_SECONDS ?= 600
soak:
	AETHER_CRASH_CYCLES=$(SOAK_CRASH_CYCLES) AETHER_CRASH_JOBS=$(SOAK_CRASH_JOBS) \
	AETHER_MODEL_CASES=$(SOAK_MODEL_CASES) \
	AETHER_CORRUPTION_TRIALS=$(SOAK_CORRUPTION_TRIALS) \
	$(CARGO) test --release -p aether-core --test crash --test model --test corruption
	$(MAKE) fuzz FUZZ_SECONDS=$(SOAK_FUZZ_SECONDS)

bench:
	$(CARGO) bench -p aether-benches

clean:
	$(CARGO) clean
