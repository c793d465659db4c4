# One set of targets for laptops, CI (.ci/run) and the Jenkins pipeline.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
FAST := not integration and not slow and not trains and not tensorflow

.PHONY: help install redis-server models up down status test test-fast lint bench clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) redis-server ## Create .venv with the package and dev tools; install redis-server if missing

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }

models: install ## Train and publish every model that has no version yet (models/<name>/<version>/)
	$(BIN)/gateway models build

up: install models ## Start the whole local stack in the background and wait until it is ready
	$(BIN)/gateway stack up

down: ## Stop exactly what `make up` started
	@if [ -x $(BIN)/gateway ]; then $(BIN)/gateway stack down; else echo "nothing running"; fi

status: ## Show the local stack's processes
	@$(BIN)/gateway stack status

test: install ## Run the whole test suite (real redis-server, graph-server, gunicorn)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install ## Run the fast tier: no servers, no training, no TensorFlow in the test process (< 60 s)
	$(BIN)/pytest -m "$(FAST)" --no-tensorflow $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check gateway tests transformers bench
	$(BIN)/ruff format --check gateway tests transformers bench
	$(BIN)/mypy gateway

BENCHES ?= graph_bench graph_cpu_bench transform_bench worker_start logic_bench web_overhead feature_load

bench: install models ## Run the benchmark programs (they print numbers; compare within one run)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

clean: down ## Remove the venv, run state and built model versions
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
	find models -mindepth 2 -maxdepth 2 -type d \( -regex '.*/[0-9]+' -o -name demo \) -exec rm -rf {} +
