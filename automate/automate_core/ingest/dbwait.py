"""Database waits of the ingest path, bounded by the clock whatever the server does.

A webhook request may wait for the database (its source's row, the insert) for at most
``2 x AUTOMATE_INGEST_DB_TIMEOUT`` in all, then it gets ``503``. ``asyncio.timeout`` around a
psycopg call is not enough on its own: when the server is frozen (SIGSTOP, a paused VM, a cut
network) the cancellation psycopg sends on timeout waits for the server too, and the pool's
reset of the returned connection again, so the answer came seconds late. Here the work runs in a
task of its own that the request stops waiting for at the deadline; that task is cancelled and
left to finish its cleanup in the background, and its connection is closed, not returned to the
pool, so a connection in an unknown state is never reused.

A wait that ends early says what is known: :class:`NotRecorded` when no statement was sent (no
connection in time, the server refused it), :class:`OutcomeUnknown` when a write was sent and no
answer came, in which case the event may have been committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from automate_core import db
from automate_core.exceptions import DatabaseUnavailable

logger = logging.getLogger("automate.ingest")

type Work[T] = Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]

_abandoned: set[asyncio.Task[Any]] = set()


class NotRecorded(DatabaseUnavailable):
    """The database did not answer in time; nothing was recorded."""

    outcome = "not_recorded"


class OutcomeUnknown(DatabaseUnavailable):
    """The write was sent but its answer did not come in time: it may have been committed."""

    outcome = "unknown"


class Budget:
    """The database time one request has left (``2 x INGEST_DB_TIMEOUT`` at the start)."""

    __slots__ = ("left",)

    def __init__(self, total: float) -> None:
        self.left = total


async def bounded[T](work: Work[T], budget: Budget, *, pool_timeout: float, writes: bool) -> T:
    """Run ``work`` on a pooled connection within ``budget``; raises NotRecorded/OutcomeUnknown.

    Errors ``work`` raises itself come through as they are (``psycopg.errors.DataError`` for a
    row PostgreSQL refuses, say), except connection errors, which become :class:`OutcomeUnknown`
    for a write and :class:`NotRecorded` for a read.
    """
    if budget.left <= 0:
        raise NotRecorded()
    loop = asyncio.get_running_loop()
    pool = await db.get_pool()
    connected = asyncio.Event()
    started = loop.time()
    task = loop.create_task(_on_connection(pool, work, min(pool_timeout, budget.left), connected))
    try:
        done, _ = await asyncio.wait({task}, timeout=budget.left)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    finally:
        budget.left -= loop.time() - started
    if task in done:
        try:
            return task.result()
        except psycopg.errors.DataError:
            raise
        except (psycopg.Error, OSError) as exc:  # connection lost, server shutting down, standby...
            db.recheck_soon(pool)
            if writes and connected.is_set():
                raise OutcomeUnknown() from exc
            raise NotRecorded() from exc
    _abandon(task)
    if writes and connected.is_set():
        raise OutcomeUnknown()
    raise NotRecorded()


async def _on_connection[T](pool: Any, work: Work[T], pool_timeout: float, connected: asyncio.Event) -> T:
    try:
        conn = await pool.getconn(timeout=pool_timeout)
    except (psycopg.Error, OSError) as exc:  # PoolTimeout: no connection in time
        raise NotRecorded() from exc
    connected.set()
    try:
        result = await work(conn)
    except psycopg.errors.DataError:
        await pool.putconn(conn)  # a refused row: the connection itself is fine
        raise
    except BaseException:
        # cancelled mid-statement or broken: its state is unknown, never hand it to someone else
        await conn.close()
        await pool.putconn(conn)
        raise
    await pool.putconn(conn)
    return result


def _abandon(task: asyncio.Task[Any]) -> None:
    """Stop waiting for ``task``: cancel it and let it clean up on its own, out of the request."""
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_settled)


def _settled(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("abandoned database wait ended with %r", task.exception())
