"""``EventIngestor``: writes an Event and its OutboxJob in one statement, answered after the commit.

Async code (the webhook path) uses :meth:`EventIngestor.ingest` on the async psycopg pool, through
the group commit (``batcher.py``) unless ``AUTOMATE_INGEST_GROUP_COMMIT`` is off. A Django
project's own code uses :func:`emit` (sync) or :func:`aemit`, which write through Django's
connection and therefore inside the caller's ``transaction.atomic()``: an order saved and its
event stand or fall together (the transactional outbox).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import psycopg
from asgiref.sync import sync_to_async

from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable, IngestError
from automate_core.ingest import queries, tuning
from automate_core.ingest.batcher import GroupCommitter, _insert_one, _unstorable
from automate_core.ingest.dbwait import Budget, bounded

logger = logging.getLogger("automate.ingest")

_committers: dict[asyncio.AbstractEventLoop, GroupCommitter] = {}


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a caller learns about a recorded event. ``duplicate``: it existed already (same key)."""

    event_id: int
    trace_id: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class NewEvent:
    source: str
    event_type: str
    payload_json: str  # the JSON text, stored as received (parsed once by PostgreSQL into jsonb)
    headers: dict[str, str]
    idempotency_key: str | None = None
    trace_id: str = ""
    queue: str = "default"  # the event job's queue, priority and fairness key (the source's options)
    priority: int = 0
    fair_key: str = ""

    def params(self, max_attempts: int) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "priority": self.priority,
            "fair_key": self.fair_key,
            "source": self.source,
            "event_type": self.event_type,
            "payload": self.payload_json,
            "headers": json.dumps(self.headers),
            "idempotency_key": self.idempotency_key,
            "trace_id": self.trace_id or new_trace_id(),
            "max_attempts": max_attempts,
        }


def new_trace_id() -> str:
    """128 random bits as 32 hex digits (like ``uuid4().hex``, at a fraction of its cost)."""
    return os.urandom(16).hex()


def committer() -> GroupCommitter:
    """The group committer of the running event loop."""
    loop = asyncio.get_running_loop()
    found = _committers.get(loop)
    if found is None:
        found = _committers[loop] = GroupCommitter()
    return found


async def close_committer() -> None:
    found = _committers.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()


class EventIngestor:
    """Durably records events. ``ingest()`` returns only after the commit."""

    async def ingest(self, event: NewEvent, budget: Budget | None = None) -> IngestResult:
        """Record ``event``; waits for the database at most what ``budget`` has left (2 x
        INGEST_DB_TIMEOUT without one), then raises ``NotRecorded`` or ``OutcomeUnknown``."""
        options = tuning.current()
        params = event.params(options.max_attempts)
        budget = budget or Budget(options.db_timeout * 2)
        if options.group_commit:
            return IngestResult(*await committer().insert(params, budget))

        async def work(conn: psycopg.AsyncConnection[Any]) -> tuple[int, str, bool]:
            return await _insert_one(conn, params)

        try:
            return IngestResult(*await bounded(work, budget, pool_timeout=options.db_timeout, writes=True))
        except psycopg.errors.DataError as exc:  # UntranslatableCharacter is one too
            raise _unstorable(exc) from exc


def holds_nul(text: str, value: Any) -> bool:
    """Whether the JSON ``text`` of ``value`` holds a NUL character (``\\u0000``) in a key or a
    string, which PostgreSQL's ``jsonb`` cannot store. The substring test is the fast path; a
    hit is confirmed on the parsed value, because ``"\\\\u0000"`` (an escaped backslash before
    ``u0000``) is six ordinary characters that PostgreSQL stores."""
    if "\\u0000" not in text:
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _validated(
    source: str,
    event_type: str,
    payload: Any,
    idempotency_key: str | None,
    queue: str = "default",
    priority: int = 0,
    fair_key: str = "",
) -> NewEvent:
    if not isinstance(source, str) or not 0 < len(source) <= 100:
        raise IngestError("emit(): source must be a non-empty string of at most 100 characters.")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 200:
        raise IngestError("emit(): event_type must be a non-empty string of at most 200 characters.")
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 255
    ):
        raise IngestError("emit(): idempotency_key must be None or a string of 1 to 255 characters.")
    if not isinstance(queue, str) or not 0 < len(queue) <= 100:
        raise IngestError("emit(): queue must be a non-empty string of at most 100 characters.")
    if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
        raise IngestError("emit(): priority must be a whole number from -100 to 100.")
    if not isinstance(fair_key, str) or len(fair_key) > 200:
        raise IngestError("emit(): fair_key must be a string of at most 200 characters.")
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise IngestError(f"emit(): the payload must be JSON-serialisable ({exc}).") from exc
    if holds_nul(text, payload):
        raise IngestError("emit(): the payload contains a NUL character, which PostgreSQL cannot store.")
    return NewEvent(source, event_type, text, {}, idempotency_key, "", queue, priority, fair_key)


def emit(
    source: str,
    event_type: str,
    payload: Any,
    idempotency_key: str | None = None,
    *,
    using: str = "default",
    queue: str = "default",
    priority: int = 0,
    fair_key: str = "",
) -> IngestResult:
    """Record an event from your own code, inside the current database transaction.

    ``queue``, ``priority`` (-100 to 100, higher first) and ``fair_key`` (jobs of different keys
    share the workers fairly; '' is off) place its job in the outbox's claim order.

    If the surrounding ``transaction.atomic()`` rolls back, the event and its job vanish with it;
    if it commits, workers see the job right after the commit. With an ``idempotency_key`` that
    was used before for the same ``source``, nothing is written and the original is returned
    (``duplicate=True``). Raises :class:`~automate_core.exceptions.IngestError` for arguments that
    cannot be stored (a payload that is not JSON-serialisable, a name that is too long).
    """
    from django.db import connections

    params = _validated(source, event_type, payload, idempotency_key, queue, priority, fair_key).params(
        settings.MAX_ATTEMPTS
    )
    with connections[using].cursor() as cursor:
        cursor.execute(queries.INSERT_EVENT, params)
        row = cursor.fetchone()
        if row is not None:
            return IngestResult(row[0], row[1], duplicate=False)
        cursor.execute(queries.FIND_DUPLICATE, params)
        row = cursor.fetchone()
    if row is None:  # pragma: no cover - the original's key was released in between
        raise DatabaseUnavailable("The event conflicted with one that no longer exists; try again.")
    return IngestResult(row[0], row[1], duplicate=True)


async def aemit(
    source: str,
    event_type: str,
    payload: Any,
    idempotency_key: str | None = None,
    *,
    using: str = "default",
    queue: str = "default",
    priority: int = 0,
    fair_key: str = "",
) -> IngestResult:
    """Async counterpart of :func:`emit`, through Django's connection on its sync thread.

    Async code cannot hold a ``transaction.atomic()`` open (Django's transactions are sync), so
    this commits on its own. To tie an event to ORM writes, call :func:`emit` inside the sync
    function that makes them (run with ``sync_to_async``), within its ``atomic()`` block.
    """
    return await sync_to_async(emit, thread_sensitive=True)(
        source,
        event_type,
        payload,
        idempotency_key,
        using=using,
        queue=queue,
        priority=priority,
        fair_key=fair_key,
    )
