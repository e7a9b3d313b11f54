"""Refused webhooks counted per source and reason, for the source's page in the admin.

The metrics (``automate_webhooks_rejected_total{source, reason}``) count them per process; this
keeps a durable, shared count that an operator sees without Prometheus: "stripe: 412 times
signature_mismatch, last 10 s ago". Refusals are added up in memory and written at most once per
:data:`FLUSH_INTERVAL` with one upsert per (source, reason), so a flood of forged requests costs
the database one statement a second, not one per request. Only sources that exist are counted
(a scan of random names would otherwise grow the table). A failed write keeps the counts for the
next one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from automate_core import db
from automate_core.exceptions import DatabaseUnavailable
from automate_core.ingest import tuning
from automate_core.ingest.dbwait import Budget, bounded

logger = logging.getLogger("automate.ingest")

#: Seconds between writes of the counts.
FLUSH_INTERVAL = 1.0

UPSERT = """
INSERT INTO automate_webhook_rejection AS r
    (source, reason, status, count, last_detail, first_at, last_at)
VALUES (%(source)s, %(reason)s, %(status)s, %(count)s, %(detail)s, %(first_at)s, %(last_at)s)
ON CONFLICT (source, reason) DO UPDATE SET
    count = r.count + EXCLUDED.count,
    status = EXCLUDED.status,
    last_detail = EXCLUDED.last_detail,
    last_at = GREATEST(r.last_at, EXCLUDED.last_at)
"""


class RejectionCounter:
    """One per web process (on the :class:`~automate_core.ingest.service.WebhookService`)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, source: str, status: int, reason: str, detail: str) -> None:
        now = datetime.now(UTC)
        entry = self._pending.get((source, reason))
        if entry is None:
            self._pending[(source, reason)] = {
                "source": source,
                "reason": reason[:64],
                "status": status,
                "count": 1,
                "detail": detail[:500],
                "first_at": now,
                "last_at": now,
            }
        else:
            entry.update(count=entry["count"] + 1, status=status, detail=detail[:500], last_at=now)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL)
        await self.flush()

    async def flush(self) -> None:
        """Write what was counted since the last write (also at shutdown)."""
        if not self._pending or db.current_pool() is None:  # no pool (closed at shutdown): keep them
            return
        batch, self._pending = list(self._pending.values()), {}

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(UPSERT, batch)

        timeout = tuning.current().db_timeout
        try:
            await bounded(work, Budget(timeout * 2), pool_timeout=timeout, writes=False)
        except (DatabaseUnavailable, psycopg.Error) as exc:
            logger.warning("webhook rejection counts not written yet (%s); kept for the next write", exc)
            for entry in batch:  # merged back: counted once the database answers
                kept = self._pending.get((entry["source"], entry["reason"]))
                if kept is None:
                    self._pending[(entry["source"], entry["reason"])] = entry
                else:
                    kept.update(count=kept["count"] + entry["count"], first_at=entry["first_at"])

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
