# iokernel — developer entry points. On a fresh machine `make demo` and
# `make test` do all their own setup (Debian packages, .venv, Rust build).
#
#   make deps      Debian packages (scripts/apt-packages.txt), clippy, .venv + pip
#   make build     maturin develop --release into .venv (iokernel importable there)
#   make test      everything CI checks: cargo test, clippy (x2), ruff, mypy, the
#                  Rust and integration tests again on a busy machine, pytest
#   make test-loaded   just that loaded run, after make build (scripts/loaded.sh)
#   make demo      examples/demo.py against a throw-away redis-server
#   make bench     bench/run.py against a throw-away redis-server
#   make bench-dns bench/dns_follow.py: following a moved name vs redis-py/asyncpg
#   make soak      bench/soak.py: 1,000,000 mixed calls with faults injected, ~4 min
#                  (not in `make test`; SOAK_CALLS=20000 for a smoke run)
#   make image | image-check | compose-demo   container image, its checks, the
#                  compose demo (docs/deployment.md); image-check is in `make test`
#   make fmt | lint | clean
#
# Useful knobs: PYTEST_ARGS="-k faults -x", PYTEST_TIMEOUT=120, CARGO_TEST_ARGS,
# BENCH_ARGS=--quick. Servers by hand: .venv/bin/python -m tests.servers redis --help

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
VENV_ABS := $(CURDIR)/$(VENV)
PY := $(VENV_ABS)/bin/python

# cargo from rustup; the venv first so maturin/pytest/ruff/mypy are the pinned ones.
export PATH := $(VENV_ABS)/bin:$(HOME)/.cargo/bin:$(PATH)
export VIRTUAL_ENV := $(VENV_ABS)
# pyo3's build script must see the same interpreter for maturin and for
# `cargo clippy --features python`, or it rebuilds (and may pick the wrong one).
export PYO3_PYTHON := $(PY)
export PYTHONDONTWRITEBYTECODE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PYTEST_TIMEOUT ?= 120
PYTEST_ARGS ?=
CARGO_TEST_ARGS ?= --tests
RUFF_PATHS ?= python tests bench examples
SERVERS := $(PY) -m tests.servers

.PHONY: help deps venv build test check test-rust clippy lint fmt-check ruff typecheck test-py test-loaded \
        demo bench fmt clean

help:
	@awk '/^#/ { sub(/^# ?/, ""); print; next } { exit }' Makefile

## ---- setup -------------------------------------------------------------------
deps:
	@scripts/ensure-deps.sh

venv: deps

build: deps
	@echo "== maturin develop --release"
	cd $(CURDIR) && $(VENV_ABS)/bin/maturin develop --release

## ---- checks ------------------------------------------------------------------
# Every check runs even if an earlier one failed (make -k); pytest runs last so
# its summary line closes the output. Any failure makes `make test` fail.
test: build
	@$(MAKE) -k check

check: test-rust clippy ruff typecheck image-check test-loaded test-py

# Static checks only (no tests): ruff, mypy, clippy, rustfmt.
lint: ruff typecheck clippy fmt-check

fmt-check:
	@echo "== cargo fmt --check"
	cargo fmt --check

test-rust:
	@echo "== cargo test $(CARGO_TEST_ARGS)"
	cargo test $(CARGO_TEST_ARGS)

clippy:
	@echo "== cargo clippy"
	cargo clippy --all-targets -- -D warnings
	cargo clippy --features python -- -D warnings

ruff:
	@echo "== ruff check"
	$(PY) -m ruff check $(wildcard $(RUFF_PATHS))

typecheck:
	@echo "== mypy"
	$(PY) -m mypy

test-py:
	@echo "== pytest"
	$(PY) -m pytest -p no:cacheprovider -q -rfEs --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

# The Rust tests and tests/integration once more while busy processes (which
# the script starts and stops) compete for the CPU: a test that relies on
# timing it does not control fails here, not now and then in CI. About 4 min
# on 2 cores. Runs before test-py so that pytest's summary stays last.
test-loaded:
	@echo "== tests on a loaded machine"
	PY=$(PY) PYTEST_TIMEOUT=$(PYTEST_TIMEOUT) CARGO_TEST_ARGS="$(CARGO_TEST_ARGS)" scripts/loaded.sh

## ---- run ---------------------------------------------------------------------
# tests/servers starts a private redis-server on a free loopback port, puts
# its URL in the named variables, runs the command and stops the server.
# If IOKERNEL_DEMO_REDIS_URL / IOKERNEL_BENCH_REDIS_URL is already set, that
# server is used instead.
demo: build
	$(SERVERS) redis --reuse-env --env IOKERNEL_DEMO_REDIS_URL -- \
	  $(SERVERS) postgres --reuse-env --env IOKERNEL_DEMO_PG_URL -- $(PY) examples/demo.py

bench: build
	$(SERVERS) redis --reuse-env --env IOKERNEL_BENCH_REDIS_URL -- $(PY) bench/run.py $(BENCH_ARGS)

# bench/dns_follow.py starts its own dnsmasq, redis-servers and PostgreSQLs
# on 127.0.0.2/3 (docs/benchmarks.md, "Names that move").
.PHONY: bench-dns
bench-dns: build
	$(PY) bench/dns_follow.py $(BENCH_ARGS)

# bench/soak.py starts its own redis-server and PostgreSQL, since it kills,
# stops and restarts them; exit status 1 unless its verdict is PASS
# (docs/operations.md, "Soak test"). Knobs: SOAK_CALLS, SOAK_RATE,
# SOAK_TIME_LIMIT, SOAK_SEED, SOAK_ARGS=-v.
.PHONY: soak
soak: build
	$(PY) bench/soak.py $(SOAK_ARGS)

## ---- container image (docs/deployment.md) -----------------------------------
# Local base images are made (docker/base-images.sh) where no public ones can
# be pulled. image-check skips, saying why, where no Docker engine is reachable.
.PHONY: image image-check compose-demo
image:
	docker/image-checks.sh build

image-check: deps
	@docker/image-checks.sh

compose-demo:
	docker/compose-demo.sh

## ---- housekeeping ------------------------------------------------------------
fmt: deps
	cargo fmt
	$(PY) -m ruff format $(wildcard $(RUFF_PATHS))
	$(PY) -m ruff check --fix $(wildcard $(RUFF_PATHS))

clean:
	-cargo clean
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
	find python -name '*.so' -delete
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
