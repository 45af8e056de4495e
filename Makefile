# The two commands of the README:  make run  (main job)  ·  make test  (test suite)
VENV ?= .venv
BIN := $(VENV)/bin
RUN_ARGS ?=
LATEST_VENV ?= .venv-latest

.PHONY: setup run test dashboard bench test-latest lock

setup:
	SUPERSCOPE_VENV=$(VENV) ./scripts/setup.sh

run: setup
	$(BIN)/superscope run $(RUN_ARGS)

test: setup
	$(BIN)/python -m pytest -q --durations=15 tests

dashboard: setup
	$(BIN)/superscope dashboard runs/default

# Every benchmark script (not the _helpers) in its quick mode, run as documented: python benchmarks/X.py
bench: setup
	for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

# The suite on the newest releases that pyproject's ranges allow (the lock ignored), in its own venv.
test-latest:
	SUPERSCOPE_VENV=$(LATEST_VENV) SUPERSCOPE_LATEST=1 ./scripts/setup.sh
	$(LATEST_VENV)/bin/python -m pytest -q --durations=15 tests

# Rewrite requirements-lock.txt from $(VENV) (after its suite passed).
lock:
	SUPERSCOPE_VENV=$(VENV) ./scripts/lock.sh
