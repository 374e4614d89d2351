# TicketFlow: `make run` starts the app on the embedded default; `make test` runs everything.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export UV_LINK_MODE ?= copy

.PHONY: run test install lint typecheck check clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

install: | $(UV)
	$(UV) sync --frozen

run: install
	$(UV) run ticketflow migrate
	$(UV) run ticketflow seed-demo
	$(UV) run ticketflow serve

lint: install
	$(UV) run ruff check src tests
	$(UV) run ruff format --check src tests

typecheck: install
	$(UV) run mypy src

test: install lint typecheck
	$(UV) run pytest

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache ticketflow.db*
