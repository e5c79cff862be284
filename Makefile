# ghostline — the two commands a fresh Debian machine needs:
#   make demo   installs build dependencies, fetches the default model, builds, completes
#               examples/fibonacci.py and prints the completion
#   make test   the same set-up, then the whole test suite (what CI runs)
# Everything else is optional. Benchmarks use the dev profile too: llama.cpp is compiled
# optimised there (see Cargo.toml), so one llama.cpp build serves tests, demo and benchmarks.

MODEL ?= 1.5b
CARGO ?= cargo
BIN := target/debug/ghostline

.PHONY: demo test deps model models build bench-engine bench-shift-quality bench-typing fmt clippy clean-models

demo: deps model build
	@echo "--- completing examples/fibonacci.py at line 5, column 5 ---" >&2
	$(BIN) complete examples/fibonacci.py:5:5

test: deps models
	$(CARGO) build --bin ghostline
	$(CARGO) test --workspace

deps:
	scripts/install-deps.sh

model:
	scripts/fetch-model.sh $(MODEL)

# Tests use the default model, and the faster 0.5B where they only need the mechanics.
models:
	scripts/fetch-model.sh 1.5b
	scripts/fetch-model.sh 0.5b

build:
	$(CARGO) build --bin ghostline

bench-engine: deps models
	$(CARGO) run -p ghostline-tests --bin bench-engine

bench-shift-quality: deps models
	$(CARGO) run -p ghostline-tests --bin bench-engine -- --shift-quality --model $(MODEL) --stride 10

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets
