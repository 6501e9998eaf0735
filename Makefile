# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
DEMO_PORT ?= 5000

.PHONY: install demo demo-clickhouse test lint typecheck clean bench bench-flags screenshots vendor-chartjs fuzz load

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make test` and friends need the development toolchain (.[dev]); `make demo` only what the
# example app runs on (.[demo]). Both share .venv: .[dev] includes everything .[demo] needs.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-demo-clickhouse: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo,clickhouse]"
	touch $@

install: $(VENV)/.installed

# One table of ratios to same-run baselines (bench/run_all.py); quicker: BENCH_ARGS="--events 100000".
bench: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

bench-flags: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/flags.py $(BENCH_ARGS)

demo: $(VENV)/.installed-demo
	$(BIN)/flask --app example_app umetrics db upgrade
	$(BIN)/flask --app example_app seed-demo --port $(DEMO_PORT)
	@echo "Demo app: http://127.0.0.1:$(DEMO_PORT)/  (log in as admin@example.com / demo)"
	$(BIN)/flask --app example_app run --host 127.0.0.1 --port $(DEMO_PORT)

# The same demo with its events in embedded ClickHouse (chdb), apart from `make demo`'s data:
# users, keys and persons in $(DEMO_CH_DIR)/example.db, events in $(DEMO_CH_DIR)/chdb. One process:
# chdb opens its data directory in one process only (stop the server before other `flask` commands
# on it), and --no-reload keeps FLASK_DEBUG from adding the reloader's second process.
DEMO_CH_DIR ?= $(CURDIR)/instance/demo-clickhouse
demo-clickhouse: export EXAMPLE_INSTANCE_PATH := $(DEMO_CH_DIR)
demo-clickhouse: export UMETRICS_EVENT_STORE := clickhouse
demo-clickhouse: export UMETRICS_CLICKHOUSE_URL := chdb://$(DEMO_CH_DIR)/chdb
demo-clickhouse: $(VENV)/.installed-demo-clickhouse
	$(BIN)/flask --app example_app umetrics db upgrade
	$(BIN)/flask --app example_app seed-demo --port $(DEMO_PORT)
	@echo "Demo app (events in ClickHouse): http://127.0.0.1:$(DEMO_PORT)/  (log in as admin@example.com / demo)"
	$(BIN)/flask --app example_app run --no-reload --host 127.0.0.1 --port $(DEMO_PORT)

# Runs every DB test on SQLite, and on PostgreSQL when it answers at $(PG_URL).
test: install
	@if $(BIN)/python -c "import sys, psycopg; psycopg.connect('$(PG_URL)'.replace('+psycopg', ''), connect_timeout=3).close()" 2>/dev/null; then \
		echo "PostgreSQL answers at $(PG_URL): running the suite on SQLite and PostgreSQL"; \
		UMETRICS_TEST_POSTGRES_URL=$${UMETRICS_TEST_POSTGRES_URL:-$(PG_URL)} $(BIN)/python -m pytest $(PYTEST_ARGS); \
	else \
		echo "PostgreSQL does not answer at $(PG_URL): running the suite on SQLite only"; \
		$(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

# The long schemathesis run over the OpenAPI document (the suite runs a few examples per route).
FUZZ_EXAMPLES ?= 200
fuzz: install
	UMETRICS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz_openapi.py $(PYTEST_ARGS)

# The long load test: gunicorn ($(LOAD_WORKERS) workers) on loopback, a minute of batched ingestion with
# concurrent dashboard queries; checks every accepted event is stored once and prints p50/p95/p99.
LOAD_WORKERS ?= 4
LOAD_SECONDS ?= 60
LOAD_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/umetrics_load
load: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/load.py --database-url $(LOAD_DATABASE_URL) --workers $(LOAD_WORKERS) --duration $(LOAD_SECONDS) $(LOAD_ARGS)

# Re-takes the README's dashboard screenshots (docs/screenshots/) from the browser tests.
screenshots: install
	UMETRICS_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser

# Re-vendors Chart.js for the dashboard (npm registry; not needed to build or run).
CHARTJS_VERSION ?= 4.6.1
SANKEY_VERSION ?= 0.19.1
vendor-chartjs:
	rm -rf build/chartjs && mkdir -p build/chartjs
	cd build/chartjs && npm pack --silent chart.js@$(CHARTJS_VERSION) && tar xzf chart.js-$(CHARTJS_VERSION).tgz
	cp build/chartjs/package/dist/chart.umd.min.js build/chartjs/package/LICENSE.md flask_umetrics/admin/static/vendor/chartjs/
	rm -rf build/chartjs/package && cd build/chartjs && npm pack --silent chartjs-chart-sankey@$(SANKEY_VERSION) && tar xzf chartjs-chart-sankey-$(SANKEY_VERSION).tgz
	cp build/chartjs/package/dist/chartjs-chart-sankey.min.js build/chartjs/package/LICENSE flask_umetrics/admin/static/vendor/chartjs-chart-sankey/

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
