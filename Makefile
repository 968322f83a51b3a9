# Two entry points a new machine needs: `make gameday` (the main job) and `make test`.
# Each bootstraps .venv from the pinned lock file on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: gameday demo test lint bench bench-overhead bench-slo bench-alerts lock clean

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

gameday: $(BIN)/.installed
	rm -rf gameday-report
	$(BIN)/nova gameday --quick --out gameday-report

demo: $(BIN)/.installed
	$(BIN)/nova demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/nova runbooks check
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python -m loadtests.bench.payments_bench

bench-overhead: $(BIN)/.installed
	$(BIN)/python -m loadtests.bench.overhead_bench

bench-slo: $(BIN)/.installed
	$(BIN)/python -m slo.bench

bench-alerts: $(BIN)/.installed
	$(BIN)/python -m alerts.bench

# Re-pin every dependency (needs network); commit the result.
lock:
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --python-version 3.11 --extra dev --generate-hashes pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) .nova gameday-report .mypy_cache .ruff_cache .pytest_cache
