# Django Automate: two commands on a fresh machine.
#   make run    the platform (web + worker) on http://127.0.0.1:8000, embedded PostgreSQL unless DATABASE_URL is set
#   make test   ruff, mypy and the whole test suite (embedded PostgreSQL unless DATABASE_URL is set)
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml examples/*/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run test test-ha lint typecheck pytest bench clean venv

$(PY):
	@py=$$(scripts/find-python) || exit 1; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/automate up

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

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
