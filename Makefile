# fxdesk: `make run` serves on 127.0.0.1:8000, `make test` runs every check.
# Both bootstrap what they need: uv (from PyPI, into .tools/), the locked virtualenv.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := .venv/bin
HOST ?= 127.0.0.1
PORT ?= 8000

CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint typecheck pytest bench bench-reads sync clean browser postgres

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked
	touch $@

sync: .venv/.synced

# The page is tested in Debian's chromium (Playwright drives it; nothing is downloaded).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# The database-facing tests also run on a real PostgreSQL, started by the fixtures themselves
# from Debian's binaries (tests/pg.py); FXDESK_TEST_DATABASE_URL points them at a server instead.
postgres:
	@if [ -z "$${FXDESK_TEST_DATABASE_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

run: sync
	$(VENV)/fxdesk serve --host $(HOST) --port $(PORT)

lint: sync
	$(VENV)/ruff check src tests bench
	$(VENV)/ruff format --check src tests bench

typecheck: sync
	$(VENV)/mypy src tests

pytest: sync browser postgres
	$(VENV)/pytest -q --cov=fxdesk --cov-report=term-missing:skip-covered

test: lint typecheck pytest

bench: sync
	$(VENV)/python bench/http_throughput.py

# Read routes beside /health on SQLite and on a throwaway PostgreSQL (tests/pg.py); 6-7 minutes.
bench-reads: sync postgres
	$(VENV)/python bench/reads_bench.py

clean:
	rm -rf .venv .tools .mypy_cache .pytest_cache .ruff_cache
