# Two commands for a newcomer:  make run  (start the whole mesh)  and  make test  (pass the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run check test setup setup-test bench clean

$(BIN)/publicmesh: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/publicmesh

run: setup
	$(BIN)/publicmesh up

# Before any test: the import layers (pyproject's contracts), lint and format, and types on the core packages.
check: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check publicmesh tests
	$(BIN)/ruff format --check publicmesh tests
	$(BIN)/mypy

# Installs Debian's chromium and a CJK font for the browser tests and HAProxy for the replicas' tests, and starts a
# throwaway PostgreSQL and a NATS server with JetStream (Debian's packages) so the storage and exchange tests run on
# both stores and the event tests on both transports. Each URL is taken apart from eval so that a failed start stops
# here instead of skipping those tests. Coverage is measured in this process only (see pyproject).
test: check
	bash scripts/browser-deps.sh
	bash scripts/haproxy.sh
	url="$$(bash scripts/postgres.sh)" && eval "$$url" && \
	nats="$$(bash scripts/nats.sh)" && eval "$$nats" && \
	  $(BIN)/python -m pytest -q --cov=publicmesh --cov-report=term:skip-covered

bench: setup
	$(BIN)/publicmesh bench exchange --json

clean:
	rm -rf data $(VENV)
