# ghostline — the two commands a fresh Debian machine needs:
#   make demo   installs build dependencies, fetches the default model, builds, completes
#               examples/fibonacci.py and prints the completion
#   make test   the same set-up, then the whole test suite (what CI runs)
# Everything else is optional. Benchmarks use the dev profile too: llama.cpp is compiled
# optimised there (see Cargo.toml), so one llama.cpp build serves tests, demo and benchmarks.

MODEL ?= 1.5b
CARGO ?= cargo
BIN := target/debug/ghostline

.PHONY: demo test test-model test-editors deps model models build bench-engine bench-shift-quality bench-infill bench-table quality-floor fmt clippy

demo: deps model build
	@echo "--- completing examples/fibonacci.py at line 5, column 5 ---" >&2
	$(BIN) complete examples/fibonacci.py:5:5

# Binaries and tests are built in one go, with one feature resolution, so llama.cpp is built once.
# Two tiers: `cargo test --workspace` needs no model (pipeline, protocol, storm, shaping and
# fixture tests run against the fake backend); the real-model tests are `#[ignore]`d there and
# run in the second tier (`make test-model`).
test: deps models
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace
	$(MAKE) test-model
	$(MAKE) quality-floor
	$(MAKE) test-editors

# The real-model tier alone (needs `make models`). The remote-backend tests run against
# llama.cpp's llama-server, built first (about 5 minutes on 2 cores the first time; then it only
# prints its path).
test-model:
	scripts/build-llama-server.sh
	$(CARGO) test --workspace -- --ignored

# The editor clients in real editors against the real server (installs Neovim, Chromium,
# code-server and the extension's npm packages).
test-editors:
	scripts/test-editors.sh

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
	$(CARGO) run -p ghostline-inference --example bench-engine --

bench-shift-quality: deps models
	$(CARGO) run -p ghostline-inference --example bench-engine -- --shift-quality --model $(MODEL) --stride 10

# Quality through the server: pass@1 on HumanEval infilling (../shared/bench).
BENCH_STRIDE ?= 10
SET ?= single-line
bench-infill: deps models
	$(CARGO) build --bin ghostline --bin bench-infill
	target/debug/bench-infill --set $(SET) --model $(MODEL) --stride $(BENCH_STRIDE) --out target/bench-infill-$(SET)-$(MODEL).jsonl

# Regenerates the README's results table (takes long with the 1.5B: run it in the background).
# The --raw rows run the bare model through inference/examples/fim-raw.rs (built with all targets).
bench-table: deps models
	$(CARGO) build --workspace --all-targets
	mkdir -p bench/results
	target/debug/bench-infill --quiet --set single-line --model 1.5b --stride 20 --summary bench/results/floor-single-line-1.5b-stride20.json
	target/debug/bench-infill --quiet --set single-line --model 1.5b --stride 10 --summary bench/results/single-line-1.5b-stride10.json
	target/debug/bench-infill --quiet --raw --set single-line --model 1.5b --stride 10 --summary bench/results/single-line-1.5b-stride10-raw.json
	target/debug/bench-infill --quiet --set single-line --model 0.5b --stride 10 --summary bench/results/single-line-0.5b-stride10.json
	target/debug/bench-infill --quiet --set multi-line --model 1.5b --stride 4 --summary bench/results/multi-line-1.5b-stride4.json
	target/debug/bench-infill --quiet --raw --set multi-line --model 1.5b --stride 4 --summary bench/results/multi-line-1.5b-stride4-raw.json
	target/debug/bench-infill --quiet --set random-span-light --model 1.5b --stride 4 --summary bench/results/random-span-light-1.5b-stride4.json
	target/debug/bench-infill --quiet --raw --set random-span-light --model 1.5b --stride 4 --summary bench/results/random-span-light-1.5b-stride4-raw.json
	target/debug/bench-infill --quiet --set random-span-light --model 1.5b --stride 2 --summary bench/results/random-span-light-1.5b-stride2.json
	target/debug/bench-infill --quiet --raw --set random-span-light --model 1.5b --stride 2 --summary bench/results/random-span-light-1.5b-stride2-raw.json
	target/debug/bench-infill --quiet --set multi-line --model 1.5b --stride 6 --summary bench/results/floor-multi-line-1.5b-stride6.json
	scripts/bench-table.py bench/results/*.json

# CI's quality floor: fixed subsets through the server must stay within 5 points of the
# pass@1 recorded in tests/quality-floor.json (single-line: every 20th task, about 52 tasks;
# multi-line: every 6th of the 128 multi-line holes, 22 tasks, about 3 minutes on 2 cores).
quality-floor:
	$(CARGO) build --bin ghostline --bin bench-infill
	target/debug/bench-infill --quiet --set single-line --model 1.5b --stride 20 --check-floor tests/quality-floor.json
	target/debug/bench-infill --quiet --set multi-line --model 1.5b --stride 6 --check-floor tests/quality-floor.json

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets

# Cross-file line completion with and without repository context, through the server, on
# Python standard-library packages, crates under ~/.cargo/registry/src and packages fetched
# from the registries (scripts/fetch-bench-projects.sh); CROSSFILE_ARGS passes options
# (--cases N, --all, ...). The default is 40 cases (about 10 minutes with the 1.5B on an idle
# 2-core machine); the README's figures come from --cases 180 --all.
CROSSFILE_ARGS ?=
.PHONY: bench-crossfile
bench-crossfile: deps models
	scripts/fetch-bench-projects.sh >/dev/null
	$(CARGO) build --workspace --all-targets
	target/debug/bench-crossfile --model $(MODEL) --out target/bench-crossfile-$(MODEL).jsonl $(CROSSFILE_ARGS)

# The team benchmark: N editors (1, 2, 4, 8) typing different files at once through ghostline,
# against one llama-server started with --parallel N and against N in-process engines (0.5B,
# 20 keystrokes per editor; about 10 minutes on 2 cores). Not part of `make test`.
# TEAM_ARGS passes options (--editors 1,2,4 --backends llama-server,openai,local --keys N, ...).
TEAM_ARGS ?=
.PHONY: bench-team
bench-team: deps models
	scripts/build-llama-server.sh
	$(CARGO) build --workspace --all-targets
	target/debug/bench-team $(TEAM_ARGS)
