"""Async PostgreSQL access for the hot paths (ingest, claim, complete, run records).

Django's ORM owns the schema, the admin and management commands; the hot paths use async psycopg
through one :class:`psycopg_pool.AsyncConnectionPool` per process and event loop, built from the
same ``DATABASES`` entry Django uses (so tests that switch to a test database follow along).

Connections are in autocommit mode: a statement is its own transaction unless the caller opens one
with ``async with conn.transaction()``. Never keep a connection or transaction on an object other
tasks share; take one from the pool for the span of one unit of work.

A process that freezes (``SIGSTOP``, a paused VM) or is cut off from the database must not hold
anything the others need for longer than a lease. So every platform connection is bounded at both
ends: PostgreSQL ends a session left idle inside a transaction after
``AUTOMATE_DB_IDLE_IN_TRANSACTION_TIMEOUT`` (freeing its locks), and TCP keepalives (client and
server side, plus a TCP user timeout for unacknowledged data) drop a peer that stopped answering
after about 2.5 x ``AUTOMATE_DB_TCP_KEEPALIVE``. The idle-in-transaction timeout only applies
between statements that were synced: a transaction must therefore never be *pipelined* in pieces
(the backend of a half-sent pipeline counts as active); send it as one message instead
(``execution.grouped``). A statement that takes over another claim's row waits for its lock at
most ``AUTOMATE_DB_TAKEOVER_LOCK_TIMEOUT`` (:func:`execute_bounded`).

Behind a pooler in transaction mode (PgBouncer, ``AUTOMATE_DB_TRANSACTION_POOLING``) a client's
statements may run on a different server connection each transaction: :func:`connection_kwargs`
then turns psycopg's automatic prepared statements off, and session state (LISTEN, session
advisory locks) goes to the direct connection of ``AUTOMATE_LISTEN_DATABASE_URL``
(:func:`direct_conninfo`), or is not used at all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, LiteralString

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
    for key, value in keepalives().items():
        kwargs.setdefault(key, value)
    return make_conninfo("", **kwargs)


def keepalives() -> dict[str, int]:
    """libpq's client-side TCP keepalive parameters (ignored on Unix sockets)."""
    idle = float(settings.DB_TCP_KEEPALIVE)
    if idle <= 0:
        return {}
    return {
        "keepalives": 1,
        "keepalives_idle": max(1, round(idle)),
        "keepalives_interval": max(1, round(idle / 2)),
        "keepalives_count": 3,
        "tcp_user_timeout": max(1000, round(idle * 2.5 * 1000)),
    }


def session_settings() -> dict[str, str]:
    """What every platform session sets on the server (``SET``, so that poolers accept it)."""
    values: dict[str, str] = {}
    idle_tx = float(settings.DB_IDLE_IN_TRANSACTION_TIMEOUT)
    if idle_tx > 0:
        values["idle_in_transaction_session_timeout"] = f"{max(1, round(idle_tx * 1000))}ms"
    client = keepalives()
    if client:  # the server's side of the same keepalives
        values["tcp_keepalives_idle"] = str(client["keepalives_idle"])
        values["tcp_keepalives_interval"] = str(client["keepalives_interval"])
        values["tcp_keepalives_count"] = str(client["keepalives_count"])
        values["tcp_user_timeout"] = str(client["tcp_user_timeout"])
    return values


async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Apply :func:`session_settings` to a new connection (one round trip)."""
    values = session_settings()
    if values:
        names = list(values)
        query = "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in names)
        await conn.execute(query.encode(), [x for name in names for x in (name, values[name])])


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
        for name, value in keepalives().items():
            params.setdefault(name, value)
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
            configure=configure,
            open=False,
            name="automate",
            timeout=10.0,
            reconnect_timeout=settings.DB_RECONNECT_TIMEOUT,
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
    conn = await psycopg.AsyncConnection.connect(info, autocommit=True, row_factory=dict_row, **kwargs)
    try:
        await configure(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def execute_bounded(
    query: LiteralString, params: dict[str, Any], lock_timeout: float
) -> list[tuple[Any, ...]]:
    """One statement that may have to wait for another session's row lock, waiting at most
    ``lock_timeout`` seconds: past that, ``psycopg.errors.LockNotAvailable`` (the caller tries
    again later). Its rows, if it returns any."""
    pool = await get_pool()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(lock_timeout * 1000))}ms",)
        )
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []
