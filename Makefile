# bind-ha: the commands people remember. `make setup` once, then `make demo`
# (the main job) and `make test` (every tier). CI runs .ci/run, which calls these.
SHELL := /bin/bash
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/bind-ha
export PATH := $(CACHE)/bin:$(CURDIR)/.venv/bin:$(PATH):/usr/sbin:/sbin
PYTHON := $(CURDIR)/.venv/bin/python
ISOLATED := $(CURDIR)/.ci/isolated
PYTEST := $(ISOLATED) $(PYTHON) -m pytest
PY_SOURCES := python hooks tests bench .ci

.PHONY: help setup lint test test-unit test-chart test-bind test-apiserver test-integration \
        cluster-up cluster-down demo bench docs image

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

setup:  ## install every pinned tool (idempotent; binaries cached in ~/.cache/bind-ha)
	.ci/setup.sh

lint:  ## ruff, mypy --strict on python/, yamllint, helm lint
	ruff check $(PY_SOURCES)
	ruff format --check $(PY_SOURCES)
	mypy --strict python hooks
	yamllint -s -c .yamllint.yaml .
	helm lint --strict chart

test: lint  ## lint, then every pytest tier (unit, chart, bind, apiserver, integration)
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

docs:  ## regenerate chart/README.md from values.yaml (a chart test fails when it is stale)
	helm-docs --chart-search-root chart

image:  ## build the runtime image with buildah (not needed by the tests)
	buildah bud --pull=never --network=host -t localhost/bind-ha:$$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' chart/Chart.yaml) images/

cluster-up:  ## start the local control plane on 127.0.0.1 (prints export KUBECONFIG=...)
	$(PYTHON) -m tests.harness.cluster up

cluster-down:  ## stop it and remove its state
	$(PYTHON) -m tests.harness.cluster down

demo:  ## the main job: three agents + named elect a primary, then fail over
	$(ISOLATED) $(PYTHON) -m tests.harness.demo

bench:  ## measure failover, replication and resource use; writes bench/results/latest.json
	$(ISOLATED) $(PYTHON) -m bench.run
