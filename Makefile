# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing and
# install the pinned dependencies (constraints.txt pins every transitive package).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format chaos bench bench-full clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gdf-pipeline demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# loadgroup keeps the tests of one xdist_group (the reliability suite's two sellers) on one
# worker; every other test is spread as with the default.
test: lint
	$(BIN)/pytest -q -n 2 --dist loadgroup

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks print one table (see docs/performance.md). dlt, the peer they measure against,
# comes from the optional `bench` extra; BENCH=full (or `make bench-full`) measures at 1M orders.
BENCH ?= quick
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

bench-full: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks full

# The long fault-injection run (see docs/reliability.md): about a quarter of an hour, then a
# table of figures. CHAOS_ARGS="--seed N" replays a run; python -m chaos --help lists the rest.
chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) data/warehouse.duckdb* data/dagster_home data/inbox data/outbox
