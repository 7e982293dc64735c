# Seedlab: `make run` to use it, `make test` to check it. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install lock postgres-server run test test-fast e2e lint worker dashboard bench bench-quick bench-venv clean

install: $(STAMP)

# The DB and engine tests also run on a real PostgreSQL server, started from Debian's binaries
# in a temp dir. Installed only when missing and we are root (CI); never fatal: without the
# binaries those tests are skipped and say why.
postgres-server:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
	      || echo "Could not install postgresql: the PostgreSQL tests will be skipped."; \
	  else \
	    echo "No PostgreSQL server binaries (apt-get install postgresql): those tests will be skipped."; \
	  fi; \
	fi

# Installs requirements.lock (every package, pinned exactly as tested), requirements-nodeps.txt
# (packages whose own metadata would move our pins: bundled model weights) and Seedlab itself,
# both with --no-deps so the lock alone decides the versions. Reinstalls only when the lock or the project
# metadata change.
$(STAMP): requirements.lock requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Where pip finds the local CPU torch wheel on this machine (its find-links). uv reads no pip
# config: without this folder it would lock PyPI's torch, the CUDA build with its nvidia-* packages.
TORCH_WHEELS ?= /opt/wheels
# The lock is for the platform Seedlab runs and is tested on.
LOCK_PLATFORM := --python-version 3.11 --python-platform x86_64-manylinux_2_28
# Extra uv flags: `make lock LOCK_FLAGS=--upgrade` moves every package to its newest allowed
# version; without it, packages already in the lock keep their versions where they still fit.
LOCK_FLAGS ?=

# Regenerates requirements.lock from requirements.txt (run it after editing requirements.txt).
lock: $(STAMP)
	@ls $(TORCH_WHEELS)/torch-*+cpu-*.whl >/dev/null 2>&1 || { echo "make lock: no CPU torch \
	wheel (torch-*+cpu-*.whl) in $(TORCH_WHEELS); run make lock TORCH_WHEELS=<its folder>."; exit 1; }
	$(BIN)/uv pip compile requirements.txt $(LOCK_PLATFORM) --find-links $(TORCH_WHEELS) \
		--custom-compile-command "make lock" --quiet $(LOCK_FLAGS) -o requirements.lock

run: install
	$(BIN)/seedlab init
	exec $(BIN)/seedlab up --port $(PORT)

worker: install
	$(BIN)/seedlab worker

dashboard: install
	$(BIN)/seedlab dashboard --port $(PORT)

# Two test processes by default (pytest-xdist; `make test TEST_WORKERS=0` for one): on 2 cores
# all but the cluster tests took 11.9–13.0 min (clean clones, 2026-12-02, green three times); the
# last CI run in one process took 24.4 min in all. Tests that share a module-level server stay
# in one process (tests/conftest.py groups them). The tests that start a Ray cluster or several
# training processes run after, on their own: beside another test's training a Ray node once
# missed its health checks and was declared dead.
TEST_WORKERS ?= 2
TEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)
CLUSTERS := ray or ddp

test: install postgres-server
	$(BIN)/python -m pytest -q $(TEST_PARALLEL) -m "not e2e and not ($(CLUSTERS))"
	$(BIN)/python -m pytest -q -m "not e2e and ($(CLUSTERS))"

# The inner loop (about 5 minutes on 2 cores): every test but the slow tiers (pyproject.toml
# markers: real worker/runner subprocesses, PostgreSQL, Ray, DDP). `make test` runs them all.
TEST_FAST ?= not slow and not postgres and not ray and not ddp and not e2e
test-fast: install
	$(BIN)/python -m pytest -q $(TEST_PARALLEL) -m "$(TEST_FAST)"

# The whole loop in headless Chromium (tests/e2e, left out of `make test`): installs Debian's
# chromium when it is missing and we are root, and Playwright from requirements-e2e.txt;
# without a browser the test is skipped and says why.
e2e: install
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "e2e: no chromium and cannot install it (needs root and apt-get); the test will skip"; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-e2e.txt
	$(BIN)/python -m pytest -q -m e2e tests/e2e

# ruff, then the architecture's import contracts (.importlinter; README "Architecture").
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

BENCH_PY := bench/.venv/bin/python
BENCHES := $(sort $(wildcard bench/bench_*.py))

# Every benchmark in bench/, each rewriting its own section of bench/RESULTS.md.
bench: bench-venv
	set -e; for b in $(BENCHES); do echo "== $$b"; PYTHONPATH=. $(BENCH_PY) $$b --write-results; done

# The same scripts on tiny sizes: a smoke check (< 2 minutes on 2 cores), RESULTS.md untouched.
bench-quick: bench-venv
	set -e; for b in $(BENCHES); do echo "== $$b"; PYTHONPATH=. $(BENCH_PY) $$b --quick; done

bench-venv: install
	test -x $(BENCH_PY) || $(PYTHON) -m venv bench/.venv
	$(BENCH_PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r bench/requirements.txt
	$(BENCH_PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
