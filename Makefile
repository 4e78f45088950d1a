# Thin targets; the real work lives in cargo, the test scripts and the crates.
CARGO ?= cargo

.PHONY: all build run test test-rust test-golden lint fmt bench clean

all: build

build:
	$(CARGO) build --release --workspace

# The main job on the embedded sled default.
run: build
	$(CARGO) run --release -q -p aether-core --example tour

test: build lint test-rust test-golden

test-rust:
	$(CARGO) test --workspace --release

test-golden:
	bash tests/golden/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	$(CARGO) bench -p aether-benches

clean:
	$(CARGO) clean
