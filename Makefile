# k1n-airflow: `make demo` runs the workflow on a local Airflow, `make test` runs every test.
# Both create .venv on first use; nothing needs to be installed beforehand but Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: demo test airflow lint format bench venv clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)  ## baseline, then optimized (cold, then warm) on a real scheduler; prints the speedup
	$(PY) -m include.k1n demo

test: $(STAMP) lint  ## ruff, then every pytest test (unit, DAG integrity, real scheduler)
	$(PY) -m pytest

airflow: $(STAMP)  ## this project's Airflow on http://localhost:8080 until Ctrl-C
	$(PY) -m include.k1n airflow

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)  ## benchmarks; figures go to docs/BENCHMARKS.md
	$(PY) bench/bench_codegen.py --repeat 3
	$(PY) bench/bench_report.py --repeat 3
	$(PY) bench/bench_plugin_endpoint.py

clean:
	rm -rf .airflow .pytest_cache .ruff_cache
