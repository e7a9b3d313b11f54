"""Read-only console and API queries on a streaming replica (``DATABASES["replica"]``), when one is set.

Only reads made while :func:`reading_from_replica` is on go to the replica: the
:class:`ReplicaReadsMiddleware` turns it on for GET, HEAD and OPTIONS requests (the console's
pages, the API's lists); the hot paths (ingest, claim, run records) use psycopg on the primary and
never see this router, and ORM reads outside a request (workers, commands) stay on the primary.
Users and sessions always read from the primary (a login must be visible on the next page).

A replica that lags by more than ``AUTOMATE_REPLICA_MAX_LAG_SECONDS``, or that cannot be reached,
is not used: reads fall back to the primary and a warning is logged (once per state change). Its
state is looked at most every ``AUTOMATE_REPLICA_CHECK_INTERVAL`` seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponseBase
from psycopg.conninfo import make_conninfo

from automate_core.conf import settings

logger = logging.getLogger("automate.db")

REPLICA = "replica"
#: Apps whose reads may go to the replica (auth and sessions never do).
REPLICA_APPS = frozenset({"automate_core", "automate_governance"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Seconds the replica lags behind the primary: 0 when it replayed all it received while
#: streaming; else the age of the last replayed transaction (None: not a replica, or nothing yet).
LAG_QUERY: LiteralString = """
SELECT pg_is_in_recovery(),
       CASE WHEN EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')
                 AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
"""

_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("automate_replica_reads", default=False)


@contextlib.contextmanager
def reading_from_replica(on: bool = True) -> Iterator[None]:
    """Within this block, reads of the platform's models may go to the replica."""
    token = _reading.set(on)
    try:
        yield
    finally:
        _reading.reset(token)


@dataclass(frozen=True, slots=True)
class ReplicaState:
    usable: bool
    lag: float | None
    reason: str


class _Health:
    """The replica's last measured state, shared by the process's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: ReplicaState | None = None
        self.checked = 0.0

    def get(self) -> ReplicaState:
        with self.lock:
            now = time.monotonic()
            if self.state is None or now - self.checked >= float(settings.REPLICA_CHECK_INTERVAL):
                previous, self.state, self.checked = self.state, measure(), now
                if not self.state.usable and (previous is None or previous.usable):
                    logger.warning("replica not used, reads go to the primary: %s", self.state.reason)
                elif self.state.usable and previous is not None and not previous.usable:
                    logger.warning("replica back in use (lag %.1fs)", self.state.lag or 0.0)
            return self.state

    def reset(self) -> None:
        with self.lock:
            self.state = None


health = _Health()


def replica_configured() -> bool:
    return REPLICA in connections.settings


def measure() -> ReplicaState:
    """Look at the replica now, on a connection of its own: is it one, and how far behind is it?"""
    from automate_core import db

    max_lag = float(settings.REPLICA_MAX_LAG_SECONDS)
    try:
        info = db.conninfo(REPLICA)
        if "connect_timeout" not in info:
            info = make_conninfo(info, connect_timeout=2)
        with psycopg.connect(info, autocommit=True, prepare_threshold=None) as conn:
            row = conn.execute(LAG_QUERY).fetchone()
    except psycopg.Error as exc:
        return ReplicaState(False, None, f"cannot reach it ({type(exc).__name__}: {exc})".strip())
    in_recovery, lag = row if row else (False, None)
    if not in_recovery:
        return ReplicaState(False, None, "it is not in recovery (not a standby; promoted?)")
    if lag is None:
        return ReplicaState(False, None, "it has replayed no transaction yet")
    if lag > max_lag:
        return ReplicaState(
            False, lag, f"it lags {lag:.1f}s behind (AUTOMATE_REPLICA_MAX_LAG_SECONDS={max_lag:g})"
        )
    return ReplicaState(True, lag, "streaming")


class ReplicaRouter:
    """``DATABASE_ROUTERS = ["automate_core.db_router.ReplicaRouter"]`` (asgi/settings.py)."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if not _reading.get() or model._meta.app_label not in REPLICA_APPS or not replica_configured():
            return None
        return REPLICA if health.get().usable else "default"

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        same = {"default", REPLICA}
        return True if {obj1._state.db, obj2._state.db} <= same else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None


class ReplicaReadsMiddleware:
    """Turns :func:`reading_from_replica` on for the span of a GET, HEAD or OPTIONS request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        with reading_from_replica(request.method in SAFE_METHODS):
            response: HttpResponseBase = self.get_response(request)
            return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        with reading_from_replica(request.method in SAFE_METHODS):
            response: HttpResponseBase = await self.get_response(request)
            return response
