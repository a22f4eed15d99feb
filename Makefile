# banter — every target does its own set-up and is idempotent.
#
#   make demo    set up, build, and run the pipeline on the shipped testdata
#   make test    set up, then fmt check + clippy -D warnings + all tests (unit, CLI, parity) + e2e
#
# LibTorch comes from PyPI: `.venv` gets the pinned torch (requirements.txt) once; torch-sys finds it
# through LIBTORCH_USE_PYTORCH=1 and the venv's python. Binaries carry an rpath to it (no LD_LIBRARY_PATH).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
STAMP_TORCH := $(VENV)/.stamp-torch
STAMP_DEV := $(VENV)/.stamp-dev
STAMP_BENCH := $(VENV)/.stamp-bench
STAMP_LLAMACPP := $(VENV)/.stamp-llamacpp
CARGO ?= cargo
SHARED ?= ../shared
CARGO_FLAGS := --release --locked --workspace

export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export BANTER_PYTHON := $(CURDIR)/$(VENV)/bin/python
export BANTER_REQUIRE_PARITY := 1

.PHONY: help setup build test test-matrix test-llamacpp lint unit browser-deps e2e e2e-run demo bench fuzz completions install clean distclean

help:
	@echo "make demo        set up, build and run the pipeline on testdata (a few minutes on 2 cores)"
	@echo "make test        fmt + clippy + all tests + e2e (what CI runs)"
	@echo "make setup       .venv with the pinned torch (+ transformers/peft/tokenizers for tests)"
	@echo "make build       release binaries in target/release/"
	@echo "make test-matrix every family × template × mode cell (160) through every tool (pairwise in make test)"
	@echo "make test-llamacpp  GGUF exports run in llama.cpp itself (builds llama-cpp-python, ~5 min)"
	@echo "make bench       benchmarks beside the Python reference"
	@echo "make e2e         example pipelines on testdata"
	@echo "make fuzz        long property-test run of the parsers (FUZZ_CASES=20000; make test runs 256)"
	@echo "make lint        cargo fmt --check and clippy -D warnings"
	@echo "make completions shell completions and man pages in target/completions/"
	@echo "make install     cargo install the tools"
	@echo "make clean       remove build outputs (distclean: the venv too)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_TORCH): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(STAMP_DEV): requirements-dev.txt $(STAMP_TORCH)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

# Bench-only references (CTranslate2), not needed by the tests.
$(STAMP_BENCH): requirements-bench.txt $(STAMP_DEV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements-bench.txt
	touch $@

# llama.cpp itself (llama-cpp-python, compiled by pip), for the GGUF checks outside `make test`.
# On a CPU with AMX, llama.cpp is built without its AMX backend: its AMX kernels segfault on q4_0/q8_0 there
# (ggml-org/llama.cpp#20824; seen on a 2-core Xeon with amx_int8), so the build keeps every other native flag.
LLAMACPP_CMAKE := $(shell grep -qw amx_int8 /proc/cpuinfo 2>/dev/null && echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON \
  -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON \
  -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")

$(STAMP_LLAMACPP): requirements-llamacpp.txt $(STAMP_DEV)
	CMAKE_ARGS="$(LLAMACPP_CMAKE)" $(VENV)/bin/pip install --disable-pip-version-check -q -r requirements-llamacpp.txt
	touch $@

setup: $(STAMP_TORCH) $(STAMP_DEV)

build: $(STAMP_TORCH)
	$(CARGO) build $(CARGO_FLAGS) --bins

lint: $(STAMP_TORCH)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings

# playwright-core for the chat page's and the eval report's headless-Chromium tests (skipped without node; needs Debian's chromium).
browser-deps:
	@if command -v npm >/dev/null 2>&1; then for d in tools/banter-chat/tests/browser tools/banter-eval/tests/browser; do \
	  (cd $$d && npm install --no-audit --no-fund --silent) || echo "make: could not install playwright-core in $$d; its browser test is skipped"; done; fi

unit: setup browser-deps
	$(CARGO) test $(CARGO_FLAGS)

e2e: build e2e-run

# The example pipelines, on the binaries in target/release (built by `unit`'s cargo test or by `build`).
e2e-run:
	@for s in examples/*.sh; do [ "$$s" = examples/lib.sh ] && continue; echo "== $$s"; bash "$$s"; done

test: setup lint unit e2e-run
	@echo "make test: all passed"

test-matrix: setup build
	$(BANTER_PYTHON) examples/matrix.py --full

test-llamacpp: setup $(STAMP_LLAMACPP)
	BANTER_REQUIRE_LLAMACPP=1 $(CARGO) test --release --locked -p banter-export --test it llama_cpp

demo: build
	bash examples/demo.sh

bench: setup $(STAMP_BENCH) $(STAMP_LLAMACPP) build
	@echo "Machine: $$(nproc) cores, $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); SIMD flags:" \
	  "$$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|avx2|fma|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_bf16|amx_tile|amx_int8)$$' | xargs)"
	@echo; echo "## banter-validate ($$(nproc) cores, $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
	$(VENV)/bin/python tools/banter-validate/bench/bench.py target/release/banter-validate target/bench
	@echo; echo "## banter-whatsapp"
	$(VENV)/bin/python tools/banter-whatsapp/bench/bench.py target/release/banter-whatsapp target/bench
	@echo; echo "## banter-tokenize"
	$(VENV)/bin/python tools/banter-tokenize/bench/bench.py target/release/banter-tokenize target/bench $(SHARED)/data/tinyshakespeare.txt $(SHARED)/bench/hf_reference.py
	@echo; echo "## banter-train"
	$(VENV)/bin/python tools/banter-train/bench/bench.py $(CURDIR) $(SHARED)/data/tinyshakespeare.txt $(SHARED)/bench/hf_reference.py target/bench
	@echo; echo "## Hub families (banter-train and banter-model)"
	$(VENV)/bin/python tools/banter-train/bench/families.py $(CURDIR) target/bench
	@echo; echo "## banter-train under torchrun (1 and 2 CPU ranks) beside HF DDP"
	$(VENV)/bin/python tools/banter-train/bench/distributed.py $(CURDIR) target/bench
	@echo; echo "## banter-train --gradient-checkpointing beside HF's"
	$(VENV)/bin/python tools/banter-train/bench/checkpointing.py $(CURDIR) target/bench
	@echo; echo "## banter-train --dpo beside TRL"
	$(VENV)/bin/python tools/banter-train/bench/dpo.py $(CURDIR) $(SHARED)/data/tinyshakespeare.txt target/bench
	@echo; echo "## banter-chat"
	$(VENV)/bin/python tools/banter-chat/bench/bench.py $(CURDIR) $(SHARED)/bench/hf_reference.py target/bench
	@echo; echo "## decoding precisions: held-out perplexity (banter and llama.cpp)"
	$(VENV)/bin/python tools/banter-chat/bench/quality.py $(CURDIR) $(SHARED)/data/tinyshakespeare.txt target/bench
	@echo; echo "## hostile inputs: refusals timed, and the server under long conversations"
	bash tools/banter-chat/bench/hostile.sh target/release
	@echo; echo "## banter-eval"
	$(VENV)/bin/python tools/banter-eval/bench/bench.py $(CURDIR) target/bench
	@echo; echo "## banter-export"
	$(VENV)/bin/python tools/banter-export/bench/bench.py $(CURDIR) target/bench
	@echo; echo "## banter-scrape"
	$(VENV)/bin/python tools/banter-scrape/bench/bench.py target/release/banter-scrape testdata/scrape/site
	$(CARGO) build --release --locked -p banter-scrape --example candidates
	$(VENV)/bin/python tools/banter-scrape/bench/extraction.py target/release/banter-scrape \
	  target/release/examples/candidates $(SHARED)/data/extraction/article-extraction-benchmark.tar.xz target/bench

# The parsers' property tests with many cases (`make test` runs them with proptest's default 256).
FUZZ_CASES ?= 20000
fuzz: setup
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test $(CARGO_FLAGS) -p banter-core -p banter-model -p banter-whatsapp -p banter-scrape --test fuzz

completions: build
	mkdir -p target/completions
	for t in scrape whatsapp validate tokenize train chat eval export; do \
	  target/release/banter-$$t --generate complete-bash > target/completions/banter-$$t.bash; \
	  target/release/banter-$$t --generate complete-zsh > target/completions/_banter-$$t; \
	  target/release/banter-$$t --generate complete-fish > target/completions/banter-$$t.fish; \
	  target/release/banter-$$t --generate man > target/completions/banter-$$t.1; \
	done

install: $(STAMP_TORCH)
	for t in scrape whatsapp validate tokenize train chat eval export; do $(CARGO) install --locked --path tools/banter-$$t; done

clean:
	$(CARGO) clean

distclean: clean
	rm -rf $(VENV)
