"""``python -m pytest -p tests.pooler.plugin tests/ingest tests/worker``: any part of the suite with
every connection of the platform through a real PgBouncer in transaction mode.

After the test database is created, a PgBouncer (tests/pooler/pgbouncer.py) is started in front of
it and Django's ``default`` database, the async psycopg pool and every subprocess the tests start
(through ``DATABASE_URL``) go through it, configured as docs/operations.md says
(``AUTOMATE_DB_TRANSACTION_POOLING=1``, LISTEN on ``AUTOMATE_LISTEN_DATABASE_URL``, the server
itself). Tests that start PostgreSQL servers of their own keep talking to those directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pooler.pgbouncer import PgBouncer

# Set when the plugin loads, before Django's settings and the test modules are imported: modules
# that copy os.environ for their subprocesses at import time get it too (they poll, then).
os.environ["AUTOMATE_DB_TRANSACTION_POOLING"] = "1"


def _url(params: dict[str, Any], host: str, port: str) -> str:
    return f"postgresql://{params['USER'] or 'postgres'}@{host}:{port}/{params['NAME']}"


@pytest.fixture(scope="session", autouse=True)
def _everything_through_pgbouncer(django_db_setup: None, django_db_blocker: Any) -> Iterator[PgBouncer]:
    from django.conf import settings
    from django.db import connections

    from automate_core.conf import _clear_cache

    params = connections["default"].settings_dict
    host, port = params["HOST"] or "127.0.0.1", str(params["PORT"] or 5432)
    if host.startswith("/"):
        pytest.exit("tests.pooler.plugin needs a DATABASE_URL on TCP (postgresql://user@host:port/db)")
    bouncer = PgBouncer({"*": f"host={host} port={port}"})
    saved_env = {k: os.environ.get(k) for k in ("DATABASE_URL", "AUTOMATE_LISTEN_DATABASE_URL")}
    direct = _url(params, host, port)
    with django_db_blocker.unblock():
        connections.close_all()
    params["HOST"], params["PORT"] = bouncer.host, str(bouncer.port)
    params["DISABLE_SERVER_SIDE_CURSORS"] = True
    settings.AUTOMATE_DB_TRANSACTION_POOLING = True
    settings.AUTOMATE_LISTEN_DATABASE_URL = direct
    _clear_cache()
    os.environ["DATABASE_URL"] = _url(params, bouncer.host, str(bouncer.port))
    os.environ["AUTOMATE_LISTEN_DATABASE_URL"] = direct
    try:
        yield bouncer
    finally:
        with django_db_blocker.unblock():
            connections.close_all()
        params["HOST"], params["PORT"] = host, port
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        bouncer.stop()


def pytest_report_header() -> str:
    return "tests.pooler.plugin: the platform's connections go through PgBouncer (transaction mode)"
