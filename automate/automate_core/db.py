"""Async PostgreSQL access for the hot paths (ingest, claim, complete, run records).

Django's ORM owns the schema, the admin and management commands; the hot paths use async psycopg
through one :class:`psycopg_pool.AsyncConnectionPool` per process and event loop, built from the
same ``DATABASES`` entry Django uses (so tests that switch to a test database follow along).

Connections are in autocommit mode: a statement is its own transaction unless the caller opens one
with ``async with conn.transaction()``. Never keep a connection or transaction on an object other
tasks share; take one from the pool for the span of one unit of work.

Behind a pooler in transaction mode (PgBouncer, ``AUTOMATE_DB_TRANSACTION_POOLING``) a client's
statements may run on a different server connection each transaction: :func:`connection_kwargs`
then turns psycopg's automatic prepared statements off, and session state (LISTEN, session
advisory locks) goes to the direct connection of ``AUTOMATE_LISTEN_DATABASE_URL``
(:func:`direct_conninfo`), or is not used at all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from automate_core.conf import settings

logger = logging.getLogger("automate.db")

_pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}
_background: set[asyncio.Task[None]] = set()


def conninfo(alias: str = "default") -> str:
    """libpq connection string for a Django database alias."""
    from django.db import connections

    params = connections[alias].settings_dict
    if not params.get("NAME"):
        from automate_core.exceptions import ConfigurationError

        raise ConfigurationError(
            "No database configured: set DATABASE_URL (postgresql://user@host:5432/dbname), "
            "or run `automate up`, which starts an embedded PostgreSQL."
        )
    kwargs: dict[str, Any] = {"dbname": params["NAME"]}
    for key, name in (
        ("USER", "user"),
        ("PASSWORD", "password"),
        ("HOST", "host"),
        ("PORT", "port"),
    ):
        if params.get(key):
            kwargs[name] = params[key]
    for key, value in (params.get("OPTIONS") or {}).items():
        if key not in {"pool", "server_side_binding", "assume_role", "isolation_level", "prepare_threshold"}:
            kwargs[key] = value
    kwargs.setdefault("application_name", "django-automate")
    return make_conninfo("", **kwargs)


def connection_kwargs() -> dict[str, Any]:
    """Keyword arguments of every pooled psycopg connection.

    psycopg prepares a statement on the server after its fifth execution on a connection; behind
    a transaction pooler the next execution may reach a server connection that never saw it
    ("prepared statement _pg3_0 does not exist"), so ``prepare_threshold=None`` turns that off.
    """
    kwargs: dict[str, Any] = {"autocommit": True}
    if settings.DB_TRANSACTION_POOLING:
        kwargs["prepare_threshold"] = None
    return kwargs


def direct_conninfo() -> str | None:
    """libpq connection string for session state (LISTEN, session advisory locks), or None.

    ``LISTEN_DATABASE_URL`` when set; else the pooled database unless a transaction pooler is in
    front of it (a LISTEN through one would listen on whichever server connection ran it).
    """
    url = str(settings.LISTEN_DATABASE_URL or "")
    if url:
        params = conninfo_to_dict(url)
        params.setdefault("application_name", "django-automate")
        return make_conninfo("", **params)
    if settings.DB_TRANSACTION_POOLING:
        return None
    return conninfo()


async def get_pool() -> AsyncConnectionPool[Any]:
    """The pool for the running event loop, opened on first use."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = AsyncConnectionPool(
            conninfo(),
            min_size=settings.DB_POOL_MIN_SIZE,
            max_size=settings.DB_POOL_MAX_SIZE,
            kwargs=connection_kwargs(),
            open=False,
            name="automate",
            timeout=10.0,
            reconnect_timeout=60.0,
        )
        _pools[loop] = pool
        await pool.open(wait=False)
    return pool


def current_pool() -> AsyncConnectionPool[Any] | None:
    """The running loop's pool if it was opened, without opening one (for metrics)."""
    return _pools.get(asyncio.get_running_loop())


async def close_pool() -> None:
    """Close the running loop's pool (at shutdown, and between tests)."""
    loop = asyncio.get_running_loop()
    pool = _pools.pop(loop, None)
    if pool is not None:
        await pool.close()


def recheck_soon(pool: AsyncConnectionPool[Any]) -> None:
    """After a connection error, have the pool test its idle connections in the background.

    After a database restart every idle connection is broken; checking them at once spares the
    next requests from finding that out one by one.
    """
    task = asyncio.get_running_loop().create_task(pool.check())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def connect(**kwargs: Any) -> psycopg.AsyncConnection[dict[str, Any]]:
    """A dedicated direct connection outside the pool (for LISTEN), see :func:`direct_conninfo`."""
    from automate_core.exceptions import ConfigurationError

    info = direct_conninfo()
    if info is None:
        raise ConfigurationError(
            "No direct database connection: AUTOMATE_DB_TRANSACTION_POOLING is on and "
            "AUTOMATE_LISTEN_DATABASE_URL is not set (a postgresql:// URL that bypasses the pooler)."
        )
    return await psycopg.AsyncConnection.connect(info, autocommit=True, row_factory=dict_row, **kwargs)
