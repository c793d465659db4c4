# One set of targets for laptops, CI (.ci/run) and the Jenkins pipeline.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
GROOVY_LINT := $(TOOLS)/node_modules/.bin/npm-groovy-lint
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
FAST := not integration and not slow and not trains and not tensorflow
MODELS := $(patsubst models/%/model.yaml,%,$(wildcard models/*/model.yaml))
GRAPH_MODELS := $(patsubst deploy/serving/%/models.config,%,$(wildcard deploy/serving/*/models.config))
ENV ?= sit
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
REGISTRY ?= $(shell awk '/registry:/ {print $$2; exit}' deploy/settings.yaml)
MODEL_STORE ?= models

.PHONY: help install redis-server tools models up down status restart render validate test test-fast lint \
        bench bench-programs fetch-models images push deploy smoke verify rollback clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) redis-server ## Create .venv with the package, TensorFlow, the stack, plotting and dev tools; redis-server

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[graph,stack,validate,tools,dev]'
	touch $@

redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }

tools: $(GROOVY_LINT) ## The Jenkinsfile's linter (npm-groovy-lint, from npm; needs Java)

$(GROOVY_LINT):
	@command -v npm >/dev/null && command -v java >/dev/null || { \
	  echo "installing nodejs, npm and a Java runtime (Debian packages) for npm-groovy-lint"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm default-jre-headless; }
	npm install --prefix $(TOOLS) --no-audit --no-fund --silent npm-groovy-lint@15

models: install ## Train and publish every model that has no version yet (models/<name>/<version>/)
	$(BIN)/gateway models build

up: install models ## Start the local stack (supervisord): Redis, graph and logic per model, demo features; wait until ready
	$(BIN)/gateway stack up

down: ## Stop everything the local stack runs (even what a crash left behind)
	@if [ -x $(BIN)/gateway ]; then $(BIN)/gateway stack down; else echo "nothing running"; fi

status: ## Show the local stack's processes (supervisorctl status)
	@$(BIN)/gateway stack status

restart: ## Restart one model of the local stack: make restart MODEL=risk
	$(BIN)/gateway stack restart $(MODEL)

render: install ## Write every deployment file from the specs (compose, Kubernetes, supervisord, TF-Serving configs)
	$(BIN)/gateway render

validate: install tools ## Check the deployment files: current, and accepted by compose, kubernetes, hadolint, groovy linters
	$(BIN)/gateway render --check
	@mkdir -p build
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	@for env in sit stg prd; do \
	  $(BIN)/kubectl kustomize deploy/k8s/overlays/$$env > build/k8s-$$env.yaml || exit 1; \
	  $(BIN)/kubernetes-validate --strict --quiet -k 1.37.0 build/k8s-$$env.yaml || exit 1; \
	done
	$(BIN)/hadolint deploy/docker/logic.Dockerfile deploy/docker/graph.Dockerfile
	$(GROOVY_LINT) --failon warning --output txt Jenkinsfile

test: install tools ## Run the whole test suite (real redis-server, graph-server, gunicorn; deployment validators)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install ## The fast tier: no servers, no training, no TensorFlow in the test process
	$(BIN)/pytest -m "$(FAST)" --no-tensorflow $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check gateway tests transformers bench
	$(BIN)/ruff format --check gateway tests transformers bench
	$(BIN)/mypy gateway

BENCHES ?= graph_bench graph_cpu_bench transform_bench worker_start logic_bench web_overhead feature_load shed_spread

bench: install ## gateway bench: the logic service vs the naive baseline (risk, 1 and 8 clients); bench/results/
	$(BIN)/python -m bench.compare

bench-programs: install models ## Run the micro-benchmark programs (they print numbers; compare within one run)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

# -- the pipeline (Jenkinsfile); each also runs on a laptop with Docker and a cluster ---------
fetch-models: ## Sync published versions from the model store (MODEL_STORE: a directory or s3://...) into models/
	@case "$(MODEL_STORE)" in \
	  models) echo "model store: models/ (this checkout)";; \
	  s3://*) aws s3 sync "$(MODEL_STORE)" models/ --exclude '*/demo/*';; \
	  *) rsync -a --exclude 'demo/' "$(MODEL_STORE)/" models/;; \
	esac

images: ## Build each model's logic (and graph) image from its bundle, tagged $(REGISTRY)/<kind>-<model>:$(TAG)
	@mkdir -p build
	@for m in $(MODELS); do \
	  name=$${m//_/-}; \
	  $(BIN)/gateway bundle $$m --out build/$$m || exit 1; \
	  docker build -f deploy/docker/logic.Dockerfile --build-arg MODEL=$$m -t $(REGISTRY)/logic-$$name:$(TAG) build/$$m || exit 1; \
	  if [ -d build/$$m/graph ]; then \
	    docker build -f deploy/docker/graph.Dockerfile -t $(REGISTRY)/graph-$$name:$(TAG) build/$$m || exit 1; \
	  fi; \
	done
	@echo "images tagged $(TAG); run them with: TAG=$(TAG) docker compose up"

push: ## Push the images and record their digests in build/digests.json (what every environment deploys)
	@echo "$${REGISTRY_LOGIN_PSW:-}" | docker login --username "$${REGISTRY_LOGIN_USR:-}" --password-stdin "$${REGISTRY%%/*}" >/dev/null 2>&1 || true
	@mkdir -p build; echo "{" > build/digests.json; sep=""
	@for image in $$(docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$(REGISTRY)/.*:$(TAG)$$"); do \
	  docker push $$image >/dev/null || exit 1; \
	  digest=$$(docker inspect --format '{{index .RepoDigests 0}}' $$image | cut -d@ -f2); \
	  name=$$(basename $${image%%:*}); \
	  echo "$$sep\"$$name\": \"$$digest\"" >> build/digests.json; sep=","; \
	done; echo "}" >> build/digests.json; cat build/digests.json

deploy: ## Deploy the recorded digests to ENV (sit, stg, prd) and wait for the rollout
	$(BIN)/gateway release $(ENV) build/digests.json --registry $(REGISTRY)
	$(BIN)/kubectl apply -k deploy/k8s/overlays/$(ENV)
	@ns=$$(awk '/^namespace:/ {print $$2}' deploy/k8s/overlays/$(ENV)/kustomization.yaml); \
	for d in $$($(BIN)/kubectl -n $$ns get deployments -l app.kubernetes.io/part-of=scoring-gateway -o name); do \
	  $(BIN)/kubectl -n $$ns rollout status $$d --timeout=10m || exit 1; \
	done

smoke: ## `gateway smoke` of every model in ENV (through kubectl port-forward): health, readiness, the README example
	@ns=$$(awk '/^namespace:/ {print $$2}' deploy/k8s/overlays/$(ENV)/kustomization.yaml); port=18000; \
	for m in $(MODELS); do \
	  name=$${m//_/-}; port=$$((port+1)); \
	  $(BIN)/kubectl -n $$ns port-forward svc/logic-$$name $$port:80 >/dev/null 2>&1 & pf=$$!; sleep 3; \
	  $(BIN)/gateway smoke $$m --url http://127.0.0.1:$$port; rc=$$?; kill $$pf; [ $$rc = 0 ] || exit $$rc; \
	done

VERIFY_N ?= 300
VERIFY_FEATURES ?= live
verify: ## `gateway verify` of every model in ENV (port-forward, admin token): served = offline; VERIFY_FEATURES=held also checks features
	@ns=$$(awk '/^namespace:/ {print $$2}' deploy/k8s/overlays/$(ENV)/kustomization.yaml); port=18100; \
	for m in $(MODELS); do \
	  name=$${m//_/-}; port=$$((port+1)); \
	  $(BIN)/kubectl -n $$ns port-forward svc/logic-$$name $$port:80 >/dev/null 2>&1 & pf=$$!; sleep 3; \
	  $(BIN)/gateway verify $$m --url http://127.0.0.1:$$port --n $(VERIFY_N) --features $(VERIFY_FEATURES) -q; \
	  rc=$$?; kill $$pf; [ $$rc = 0 ] || exit $$rc; \
	done

rollback: ## Undo the last rollout of every deployment in ENV
	@ns=$$(awk '/^namespace:/ {print $$2}' deploy/k8s/overlays/$(ENV)/kustomization.yaml); \
	for d in $$($(BIN)/kubectl -n $$ns get deployments -l app.kubernetes.io/part-of=scoring-gateway -o name); do \
	  $(BIN)/kubectl -n $$ns rollout undo $$d; \
	done

clean: down ## Remove the venv, tools, run state and build output (published versions are never removed)
	rm -rf $(VENV) $(TOOLS) .run build .pytest_cache .mypy_cache .ruff_cache
