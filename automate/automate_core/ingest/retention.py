"""How the dedupe window ends: idempotency keys older than their source's window are released.

A key is held at least ``dedupe_window_seconds`` (per source; default
``AUTOMATE_INGEST_DEDUPE_WINDOW``, 7 days, never less than 3 days: Stripe retries for 3 days,
Standard Webhooks senders for about 3 days and 3 hours). After that, releasing deletes the key's
row from the key table (``automate_event_key``): the event stays as it was received, key and all,
and the key table holds only live keys, so it stays small and inserts stay fast. A delivery with a
released key is a new event.

Every web process runs :func:`release_periodically` (started by the ASGI lifespan); an advisory
lock lets one of them work at a time, in batches of ``BATCH`` rows. The same loop makes the
history's partitions ahead (as the workers' maintenance does): the ingest writes events into
today's partition, and must not depend on a worker having run this week.
"""

from __future__ import annotations

import asyncio
import logging

from automate_core import db
from automate_core.conf import settings
from automate_core.history import partitions
from automate_core.ingest import queries
from automate_core.ingest.sources import MIN_DEDUPE_WINDOW

logger = logging.getLogger("automate.ingest")

BATCH = 5000


async def release_expired_keys(limit: int = BATCH, max_batches: int = 100) -> int:
    """Release the keys whose window has passed; returns how many (0 if another process is at it)."""
    pool = await db.get_pool()
    released = 0
    for _ in range(max_batches):
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(queries.TRY_RELEASE_LOCK)
            locked = await cur.fetchone()
            if not locked or not locked[0]:
                return released
            cur = await conn.execute(
                queries.RELEASE_KEYS,
                {
                    "min_window": MIN_DEDUPE_WINDOW,
                    "default_window": float(settings.INGEST_DEDUPE_WINDOW),
                    "limit": limit,
                },
            )
            count = int(cur.rowcount)
            released += count
            if count < limit:
                return released
    return released


async def ensure_partitions() -> int:
    """Today's and the coming days' history partitions (``history.partitions``); how many were made."""
    pool = await db.get_pool()
    async with pool.connection() as conn:
        return await partitions.ensure_ahead(conn, int(settings.HISTORY_PARTITIONS_AHEAD))


async def release_periodically() -> None:
    """Every ``INGEST_KEY_RELEASE_INTERVAL`` seconds, forever: make the partitions ahead, then run
    :func:`release_expired_keys`. (``automate migrate`` made the first ones, and each worker makes
    them at its start.)"""
    while True:
        await asyncio.sleep(float(settings.INGEST_KEY_RELEASE_INTERVAL))
        try:
            await ensure_partitions()
        except Exception as exc:  # the database is down: the next pass tries again
            logger.warning("making history partitions ahead failed: %s", exc)
        try:
            released = await release_expired_keys()
        except Exception as exc:  # the database is down: the next pass tries again
            logger.warning("releasing expired idempotency keys failed: %s", exc)
            continue
        if released:
            logger.info("released %d idempotency keys older than their dedupe window", released)
