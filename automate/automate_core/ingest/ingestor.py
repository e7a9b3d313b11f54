"""``EventIngestor``: writes an Event and its OutboxJob in one transaction.

Async code (the webhook path) uses :meth:`EventIngestor.ingest` on the async psycopg pool.
A Django project's own code uses :func:`emit` (sync) or :func:`aemit`, which write through
Django's connection and therefore inside the caller's ``transaction.atomic()``: an order saved and
its event stand or fall together (the transactional outbox).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from asgiref.sync import sync_to_async

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable, IngestError
from automate_core.ingest import queries

logger = logging.getLogger("automate.ingest")


@dataclass(frozen=True, slots=True)
class IngestResult:
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

    def params(self, max_attempts: int) -> dict[str, Any]:
        return {
            "source": self.source,
            "event_type": self.event_type,
            "payload": self.payload_json,
            "headers": json.dumps(self.headers),
            "idempotency_key": self.idempotency_key,
            "trace_id": self.trace_id or new_trace_id(),
            "max_attempts": max_attempts,
        }


def new_trace_id() -> str:
    return uuid.uuid4().hex


class EventIngestor:
    """Durably records events. ``ingest()`` returns only after the commit."""

    async def ingest(self, event: NewEvent) -> IngestResult:
        params = event.params(settings.MAX_ATTEMPTS)
        pool = await db.get_pool()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(queries.INSERT_EVENT, params)
                row = await cur.fetchone()
                if row is not None:
                    return IngestResult(row[0], row[1], duplicate=False)
                cur = await conn.execute(queries.FIND_DUPLICATE, params)
                row = await cur.fetchone()
        except (psycopg.errors.DataError, psycopg.errors.UntranslatableCharacter) as exc:
            raise IngestError(
                f"The JSON body cannot be stored: {exc.diag.message_primary}",
                status=400,
                reason="invalid_json",
            ) from exc
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            db.recheck_soon(pool)
            raise DatabaseUnavailable() from exc
        except TimeoutError as exc:  # no connection from the pool in time
            raise DatabaseUnavailable() from exc
        if row is None:  # pragma: no cover - the conflicting row was deleted in between
            raise DatabaseUnavailable("The event conflicted with one that no longer exists.")
        return IngestResult(row[0], row[1], duplicate=True)


def emit(
    source: str,
    event_type: str,
    payload: Any,
    idempotency_key: str | None = None,
    *,
    using: str = "default",
) -> IngestResult:
    """Record an event from your own code, inside the current database transaction.

    If the surrounding ``transaction.atomic()`` rolls back, the event and its job vanish with it;
    if it commits, workers see the job right after the commit.
    """
    from django.db import connections

    event = NewEvent(source, event_type, json.dumps(payload), {}, idempotency_key)
    params = event.params(settings.MAX_ATTEMPTS)
    with connections[using].cursor() as cursor:
        cursor.execute(queries.INSERT_EVENT, params)
        row = cursor.fetchone()
        if row is not None:
            return IngestResult(row[0], row[1], duplicate=False)
        cursor.execute(queries.FIND_DUPLICATE, params)
        row = cursor.fetchone()
    assert row is not None
    return IngestResult(row[0], row[1], duplicate=True)


async def aemit(
    source: str,
    event_type: str,
    payload: Any,
    idempotency_key: str | None = None,
    *,
    using: str = "default",
) -> IngestResult:
    """Async counterpart of :func:`emit`; runs on Django's sync thread, in its transaction."""
    return await sync_to_async(emit, thread_sensitive=True)(
        source, event_type, payload, idempotency_key, using=using
    )
