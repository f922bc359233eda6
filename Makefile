# Two commands: `make run` starts everything on SQLite; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKERS ?= 2
TEST_PG_URL ?= postgres://postgres@127.0.0.1:5432/taskweb
# Django 6.x needs Python 3.12+: when one is installed, `make test` also runs the suite on it.
# (pyenv's shims are skipped: they refuse versions other than the selected one.)
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.1[23]*/bin/python) \
	$(filter-out %/shims/python3.12 %/shims/python3.13,$(shell command -v python3.12 python3.13)))
VENV6 := .venv-django6

.PHONY: run test test-sqlite test-postgres test-django6 install install-test browser deploy-tools bench soak lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Start the console, API, WebSocket and $(WORKERS) workers on 127.0.0.1:8000 (Ctrl-C stops all).
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensureadmin
	$(BIN)/honcho start --no-prefix -c worker=$(WORKERS) -f Procfile

## Install what the tests need and run the whole suite on SQLite, then on PostgreSQL.
test: install-test browser deploy-tools
	$(MAKE) --no-print-directory test-sqlite
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(TEST_PG_URL)'.rsplit('/',1)[0] + '/postgres', connect_timeout=3).close()" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "PostgreSQL is not reachable at $(TEST_PG_URL): its run is skipped (CI starts it)."; \
	fi
	@if [ -n "$(PYTHON312)" ]; then $(MAKE) --no-print-directory test-django6; \
	else echo "No Python 3.12+ found: the Django 6 run is skipped."; fi

test-sqlite: install-test
	env -u DATABASE_URL $(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: install-test
	DATABASE_URL=$(TEST_PG_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

## The same code on Django 6.x and its built-in django.tasks (browser and chaos runs stay on the main run).
test-django6:
	test -x $(VENV6)/bin/python || $(PYTHON312) -m venv $(VENV6)
	$(VENV6)/bin/pip install --quiet -r requirements-test.txt
	$(VENV6)/bin/pip install --quiet --no-deps -e .
	env -u DATABASE_URL $(VENV6)/bin/python -m pytest -m "not browser and not chaos" $(PYTEST_ARGS)

## Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "Install Debian's chromium package (sudo apt-get install chromium) for the browser tests."; exit 1; fi; }

## Taskweb against django-tasks-db, Celery, RQ, procrastinate and PgQueuer on SQLite and PostgreSQL
## (each peer in its own venv under var/bench/venvs); BENCH_ARGS="--quick" for a smoke run.
bench: install
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

## 30 minutes of steady load on a private PostgreSQL with autovacuum on: do the hot table and
## its claim stay small and cheap? SOAK_ARGS="--minutes 2 --interval 20" for a short run.
soak: install
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

## Debian's nginx (with its stream module), PgBouncer, promtool and PostgreSQL server binaries:
## tests/test_deploy.py and tests/test_monitoring.py run deploy/ with them, and the chaos suite
## starts a private PostgreSQL with pg_ctl.
deploy-tools:
	@missing=""; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing="$$missing libnginx-mod-stream"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing="$$missing pgbouncer"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "Install Debian's$$missing for the deploy and chaos tests (sudo apt-get install$$missing)."; exit 1; fi; fi

lint: install-test
	$(BIN)/ruff check queues taskweb tests bench
