# The two commands of the README:  make run  (main job)  ·  make test  (test suite)
VENV ?= .venv
BIN := $(VENV)/bin
RUN_ARGS ?=

.PHONY: setup run test dashboard bench

setup:
	./scripts/setup.sh

run: setup
	$(BIN)/superscope run $(RUN_ARGS)

test: setup
	$(BIN)/python -m pytest -q --durations=15 tests

dashboard: setup
	$(BIN)/superscope dashboard runs/default

bench: setup
	for b in benchmarks/*.py; do case $$b in */__init__.py) ;; *) $(BIN)/python $$b --quick || exit 1;; esac; done
