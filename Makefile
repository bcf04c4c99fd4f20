# Two commands for a newcomer:  make run  (start the whole mesh)  and  make test  (pass the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test setup setup-test bench clean

$(BIN)/publicmesh: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/publicmesh

run: setup
	$(BIN)/publicmesh up

# Installs Debian's chromium and a CJK font for the browser tests, and starts a throwaway PostgreSQL (Debian's
# package) so the storage and exchange tests run on both.
test: setup
	bash scripts/browser-deps.sh
	eval "$$(bash scripts/postgres.sh)" && $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/publicmesh bench exchange --json

clean:
	rm -rf data $(VENV)
