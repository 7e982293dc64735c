# Seedlab: `make run` to use it, `make test` to check it. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run test lint worker dashboard bench clean

install: $(STAMP)

# Reinstalls only when the requirements or the project metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: install
	$(BIN)/seedlab init
	exec $(BIN)/seedlab up --port $(PORT)

worker: install
	$(BIN)/seedlab worker

dashboard: install
	$(BIN)/seedlab dashboard --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	test -x bench/.venv/bin/python || $(PYTHON) -m venv bench/.venv
	bench/.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r bench/requirements.txt
	PYTHONPATH=. bench/.venv/bin/python bench/bench_metrics.py --write-results
	PYTHONPATH=. bench/.venv/bin/python bench/bench_scale.py --write-results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
