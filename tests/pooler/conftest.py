"""A real PgBouncer (transaction mode) in front of the test database, and the switch that sends the
platform's connections (the async psycopg pool and Django's ORM) through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.conftest import database_url
from tests.pooler.pgbouncer import PgBouncer


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup: None, django_db_blocker: object) -> Iterator[PgBouncer]:
    """Torn down before the test database is dropped (it holds server connections to it)."""
    from django.db import connection

    p = connection.settings_dict
    server = f"host={p['HOST'] or '127.0.0.1'} port={p['PORT'] or 5432}"
    bouncer = PgBouncer({"*": server, "pool_of_two": f"{server} dbname={p['NAME']} pool_size=2"})
    yield bouncer
    bouncer.stop()


@pytest.fixture
async def through_pgbouncer(live_db: None, pgbouncer: PgBouncer, settings: Any) -> AsyncIterator[PgBouncer]:
    """The platform's connections go through PgBouncer, configured as docs/operations.md says:
    AUTOMATE_DB_TRANSACTION_POOLING on, LISTEN on a direct connection (AUTOMATE_LISTEN_DATABASE_URL).
    """
    from django.db import connections

    from automate_core import db

    direct = database_url()
    params = connections["default"].settings_dict
    saved = params["HOST"], params["PORT"], params.get("DISABLE_SERVER_SIDE_CURSORS", False)
    await db.close_pool()
    await sync_to_async(connections.close_all)()
    params["HOST"], params["PORT"] = pgbouncer.host, str(pgbouncer.port)
    params["DISABLE_SERVER_SIDE_CURSORS"] = True
    settings.AUTOMATE_DB_TRANSACTION_POOLING = True
    settings.AUTOMATE_LISTEN_DATABASE_URL = direct
    try:
        yield pgbouncer
    finally:
        await db.close_pool()
        await sync_to_async(connections.close_all)()
        params["HOST"], params["PORT"], params["DISABLE_SERVER_SIDE_CURSORS"] = saved
