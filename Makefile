# bind-ha: the commands people remember: `make demo` (the main job) and `make test`
# (every tier). Both run the idempotent `make setup` first. CI runs .ci/run, which
# calls `make setup` and `make test`.
SHELL := /bin/bash
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/bind-ha
export PATH := $(CACHE)/bin:$(CURDIR)/.venv/bin:$(PATH):/usr/sbin:/sbin
PYTHON := $(CURDIR)/.venv/bin/python
ISOLATED := $(CURDIR)/.ci/isolated
PYTEST := $(ISOLATED) $(PYTHON) -m pytest
PY_SOURCES := python hooks tests bench .ci

.PHONY: help setup lint test test-unit test-chart test-bind test-apiserver test-integration test-e2e \
        cluster-up cluster-down demo bench docs image

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

setup:  ## install every pinned tool and build the node's pieces (idempotent; cached in ~/.cache/bind-ha)
	.ci/setup.sh

lint: setup  ## ruff, mypy --strict on python/, yamllint, helm lint
	ruff check $(PY_SOURCES)
	ruff format --check $(PY_SOURCES)
	mypy --strict python hooks
	yamllint -s -c .yamllint.yaml .
	helm lint --strict chart

test: setup lint image  ## setup, lint, the image, then every pytest tier (unit ... integration, e2e)
	$(PYTEST)

test-unit:  ## one tier at a time
	$(PYTEST) -m unit
test-chart:
	$(PYTEST) -m chart
test-bind:
	$(PYTEST) -m bind
test-apiserver:
	$(PYTEST) -m apiserver
test-integration:
	$(PYTEST) -m integration
test-e2e: image  ## the chart on a real one-node cluster (its own, started by the tests)
	$(PYTEST) -m e2e

docs:  ## regenerate chart/README.md from values.yaml (a chart test fails when it is stale)
	helm-docs --chart-search-root chart

image: setup  ## build localhost/bind-ha (images/Dockerfile, no registry) when it changed; import it into a running node
	.ci/buildah.sh image
	$(PYTHON) -m tests.harness.node import-images

cluster-up: setup image  ## start a real one-node cluster in its own network namespace (prints KUBECONFIG)
	$(PYTHON) -m tests.harness.node up

cluster-down:  ## stop it (only its own processes, by PID) and remove its mounts, cgroups and state
	$(PYTHON) -m tests.harness.node down

demo: setup  ## the main job on real pods: install, crash the primary, delete it, upgrade (nothing left running)
	.ci/buildah.sh image || echo "demo: the image could not be built; the demo will say so and run local processes"
	$(ISOLATED) $(PYTHON) -m tests.harness.demo

bench:  ## measure failover, replication and resource use; writes bench/results/latest.json
	$(ISOLATED) $(PYTHON) -m bench.run
