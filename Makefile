# TicketFlow: `make run` starts the app on the embedded default; `make test` runs everything.
SHELL := /bin/bash
# uv is installed with pip when missing; `python3 -m uv` then finds it without a PATH change.
UV := $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
export UV_LINK_MODE ?= copy

.PHONY: run test install lint typecheck check clean bench nginx chromium cluster validate-deploy

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

# The sandbox payment provider runs beside the app (and stops with it) so payments work.
run: install
	$(UV) run ticketflow migrate
	$(UV) run ticketflow seed-demo
	$(UV) run ticketflow payment-provider --port 8001 \
		--webhook-url http://127.0.0.1:8000/api/v1/payments/webhook \
		--webhook-secret "$${TICKETFLOW_PAYMENT_WEBHOOK_SECRET:-ticketflow-demo-webhook-secret}" & \
	provider=$$!; trap 'kill $$provider 2>/dev/null' EXIT INT TERM; \
	TICKETFLOW_LOG_FORMAT="$${TICKETFLOW_LOG_FORMAT:-console}" $(UV) run ticketflow serve

lint: install
	$(UV) run ruff check src tests bench deploy
	$(UV) run ruff format --check src tests bench deploy

typecheck: install
	$(UV) run mypy src

# Two test processes (pytest-xdist), each with its own throwaway database and redis-server: on
# this 2-core machine the suite took 9.5 minutes instead of 15.6 in one.
test: install lint typecheck nginx chromium
	$(UV) run pytest -n 2

# The flash-sale benchmark (bench/README.md): starts its own database, redis-server and app, and
# writes bench/results/latest.{json,md}. Options: make bench BENCH_ARGS="--phases burst --buyers 2000"
bench: install
	@command -v redis-server >/dev/null || { apt-get update && apt-get install -y redis-server; }
	$(UV) run python -m bench $(BENCH_ARGS)

# Chromium from the system packages: the browser tests (tests/browser/) drive it with Playwright
# (whose own browser download cannot work here).
chromium:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

# nginx from the system packages: `make cluster` and its test (tests/e2e/test_cluster.py) run it.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
		{ apt-get update && apt-get install -y nginx; }

# The docker-compose topology without Docker (deploy/cluster.py): the system's PostgreSQL (its own
# database ticketflow_cluster) and Redis (db 7), three app instances on 8101-8103 and the payment
# provider on 8104, behind nginx on http://127.0.0.1:8100. Ctrl-C stops everything.
# Options: make cluster CLUSTER_ARGS="--workers 2 --run-dir /tmp/cluster"
cluster: install nginx
	$(UV) run python deploy/cluster.py $(CLUSTER_ARGS)

# Offline checks of the deployment files: compose against the Compose specification, Kubernetes
# manifests against the API schemas (strict: an unknown field fails). tests/integration/
# test_deploy_files.py runs it, and runs it on broken copies to see it fail.
COMPOSE_FILE ?= docker-compose.yml
K8S_MANIFESTS ?= $(filter-out %/kustomization.yaml,$(wildcard deploy/k8s/*.yaml))
validate-deploy:
	$(UV) run check-jsonschema --builtin-schema vendor.compose-spec $(COMPOSE_FILE)
	$(UV) run kubernetes-validate --strict --quiet $(K8S_MANIFESTS)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache ticketflow.db* payment-provider.db* .cluster
