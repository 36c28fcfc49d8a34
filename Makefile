# k1n-airflow. `make demo` runs the workflow on a local Airflow, `make test` runs every test.
# Both create .venv on first use; nothing needs to be installed beforehand but Python 3.11.
# `make help` lists every target.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PYTEST := $(PY) -m pytest
# The run-analysis plugin (its own distribution), this project's runtime and its laptop
# tooling (tools/: never in the image), all editable.
BOTTLENECK_DIR := packages/airflow-bottleneck
LOCAL_PACKAGES := -e $(BOTTLENECK_DIR) -e . -e tools

.DEFAULT_GOAL := help
.PHONY: help demo test test-unit airflow cluster lint format bench bench-long bench-look-ahead system-deps venv dist clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

# uv installs the locked set in seconds (pip takes a minute); pip is the fallback without uv.
# --compile-bytecode does what pip does by default: without the .pyc files, every Airflow
# process and every task process would compile what it imports from source (~4 s of CPU for
# the Task SDK alone) wherever PYTHONDONTWRITEBYTECODE is set.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml $(BOTTLENECK_DIR)/pyproject.toml tools/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if $(PY) -m pip install --quiet "uv==$(UV_VERSION)"; then \
	  $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements-dev.txt -c constraints.txt \
	  && $(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps --reinstall-package k1n-airflow --reinstall-package airflow-bottleneck --reinstall-package k1n-tools $(LOCAL_PACKAGES) ; \
	else \
	  $(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt \
	  && $(PY) -m pip install --quiet --no-deps --force-reinstall $(LOCAL_PACKAGES) ; \
	fi
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the locked runtime + dev packages and the `k1n` command

demo: $(STAMP)  ## baseline, then optimized (cold, then warm) on a real local Airflow; prints the speedup
	$(VENV)/bin/k1n demo

airflow: $(STAMP)  ## this project's Airflow on http://localhost:8080 until Ctrl-C
	$(VENV)/bin/k1n airflow

cluster: $(STAMP) system-deps  ## the docker-compose topology as local processes (Celery, 2 workers, S3) until Ctrl-C
	$(VENV)/bin/k1n cluster

test: $(STAMP) system-deps lint  ## ruff, then every test: unit, DAG integrity, real scheduler, cluster, browser
	$(PYTEST)

test-unit: $(STAMP)  ## the fast loop: every test that starts no server and needs no system package
	$(PYTEST) -m "not integration and not system_deps"

system-deps:  ## chromium, docker-compose, redis-server from Debian when missing (needs root)
	scripts/system-deps.sh

lint: $(STAMP)  ## ruff check (with the preview AIR rules) and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## fix what ruff can fix, then format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks import their shared `bench.results` from the checkout.
BENCH_PY := PYTHONPATH=$(CURDIR) $(PY)
BENCH_MICRO = $(BENCH_PY) bench/bench_priority.py --dags 1000 --stack --repeat 3 && \
	$(BENCH_PY) bench/bench_codegen.py --repeat 3 && \
	$(BENCH_PY) bench/bench_checks.py --repeat 3 && \
	$(BENCH_PY) bench/bench_report.py --repeat 3 && \
	$(BENCH_PY) bench/bench_plugin_endpoint.py --repeat 20 && \
	$(BENCH_PY) bench/write_benchmarks.py

bench: $(STAMP)  ## every benchmark (~45 min on 2 cores): docs/BENCHMARKS.md, docs/bench/latest.json, docs/EXECUTION_REPORT.md
	$(BENCH_PY) bench/bench_workflow.py --repeat 3
	$(BENCH_MICRO)

bench-long: $(STAMP)  ## make bench plus warm and 3 concurrent runs at 1/20, the load under parallelism 8 and 16 (~65 min)
	$(BENCH_PY) bench/bench_workflow.py --repeat 3 --long
	$(BENCH_MICRO)

bench-look-ahead: $(STAMP)  ## ETA, deadline alerts and the nightly verdict against recorded real runs (~30 min)
	$(BENCH_PY) bench/bench_look_ahead.py --history 6 --runs 5
	$(BENCH_PY) bench/bench_nightly_verdict.py --nights 2000
	$(BENCH_PY) bench/write_benchmarks.py

dist: $(STAMP)  ## build the airflow-bottleneck wheel and sdist into dist/
	rm -rf dist $(BOTTLENECK_DIR)/build
	$(VENV)/bin/uv build --quiet --out-dir dist $(BOTTLENECK_DIR) || $(PY) -m build --outdir dist $(BOTTLENECK_DIR)

clean:  ## remove the local Airflow home and tool caches (not .venv)
	rm -rf .airflow .pytest_cache .ruff_cache dist
