"""The scheduler: fires due cron schedules as events, from every worker, once per tick.

``run(stop)`` is an async service started beside the worker pool (``automate worker``,
``automate up``). Every ``AUTOMATE_SCHEDULER_INTERVAL`` seconds it opens a transaction that
locks the due schedules (``FOR UPDATE SKIP LOCKED``), inserts one event per schedule through the
ingest SQL (the event and its outbox job in one statement, so a scheduled event has exactly the
guarantees of a webhook), and moves ``next_fire_at`` to the next tick after now, in the same
commit. Single firing is enforced twice over: the row lock, and the event's idempotency key
``schedule:<name>:<tick>`` (a second insert for the same tick inserts nothing).

Ticks missed while no worker ran fire **once**: the latest missed tick is fired (its payload
says how many were missed) and the schedule moves on to the next future tick. The cron
expression is evaluated by croniter in the schedule's time zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from automate_core import db
from automate_core.conf import settings
from automate_core.ingest import queries as ingest_queries
from automate_core.ingest.ingestor import NewEvent
from automate_core.schedules import queries

logger = logging.getLogger("automate.schedules")

MAX_COUNTED_MISSES = 10_000


@dataclass(frozen=True, slots=True)
class Tick:
    scheduled_for: datetime
    missed: int
    next_fire_at: datetime


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    """The first tick of ``cron`` strictly after ``after``."""
    local = after.astimezone(ZoneInfo(timezone))
    result: datetime = croniter(cron, local).get_next(datetime)
    return result


def due_tick(cron: str, timezone: str, next_fire_at: datetime, now: datetime) -> Tick:
    """The tick to fire now: the latest one at or before ``now`` (earlier ones count as missed)."""
    itr = croniter(cron, next_fire_at.astimezone(ZoneInfo(timezone)))
    latest, missed = next_fire_at, 0
    while missed < MAX_COUNTED_MISSES:
        candidate: datetime = itr.get_next(datetime)
        if candidate > now:
            return Tick(latest, missed, candidate)
        latest, missed = candidate, missed + 1
    # counted enough: jump straight to the present
    return Tick(latest, missed, next_tick(cron, timezone, now))


async def fire_due(limit: int = 100) -> list[int]:
    """Fire every due schedule once; returns the ids of the events inserted."""
    pool = await db.get_pool()
    fired: list[int] = []
    async with pool.connection() as conn:
        due = await (await conn.execute(queries.ANY_DUE)).fetchone()
        if not due or not due[0]:
            return fired
    async with pool.connection() as conn, conn.transaction():
        clock = await (await conn.execute(queries.NOW)).fetchone()
        now: datetime = clock[0]
        cur = await conn.execute(queries.DUE, {"limit": limit})
        for row in await cur.fetchall():
            event_id = await _fire(conn, row, now)
            if event_id is not None:
                fired.append(event_id)
    return fired


async def _fire(conn: Any, row: tuple[Any, ...], now: datetime) -> int | None:
    schedule_id, name, cron, timezone, source, event_type, payload, next_fire_at = row
    try:
        if next_fire_at is None:  # new or changed: start from the next tick, fire nothing yet
            await conn.execute(
                queries.FIRED,
                {"id": schedule_id, "next_fire_at": next_tick(cron, timezone, now), "fired_at": None,
                 "event_id": None},
            )  # fmt: skip
            return None
        tick = due_tick(cron, timezone, next_fire_at, now)
    except (ValueError, KeyError) as exc:  # an invalid cron or zone saved around the validation
        logger.error(
            "schedule %s: cannot evaluate %r in %s: %s; disable or fix it", name, cron, timezone, exc
        )
        return None
    scheduled_for = tick.scheduled_for.isoformat()
    body = {**(payload if isinstance(payload, dict) else {"data": payload})}
    body["schedule"] = {"name": name, "scheduled_for": scheduled_for, "missed": tick.missed}
    event = NewEvent(
        source,
        event_type,
        json.dumps(body),
        {"x-automate-schedule": name},
        f"schedule:{name}:{scheduled_for}",
    )
    cur = await conn.execute(ingest_queries.INSERT_EVENT, event.params(int(settings.MAX_ATTEMPTS)))
    inserted = await cur.fetchone()
    event_id = int(inserted[0]) if inserted else None
    await conn.execute(
        queries.FIRED,
        {"id": schedule_id, "next_fire_at": tick.next_fire_at, "fired_at": now, "event_id": event_id},
    )
    if tick.missed:
        logger.warning("schedule %s: %d ticks were missed while no worker ran; fired once", name, tick.missed)
    return event_id


async def run(stop: asyncio.Event, interval: float | None = None) -> None:
    """Fire due schedules until ``stop`` is set. Database errors are logged and retried."""
    if not settings.SCHEDULER_ENABLED:
        return
    every = float(settings.SCHEDULER_INTERVAL if interval is None else interval)
    backoff = every
    while not stop.is_set():
        try:
            await fire_due()
            backoff = every
        except Exception as exc:  # the database may be restarting: keep the service alive
            logger.warning("scheduler: %s: %s; retrying in %.1fs", type(exc).__name__, exc, backoff)
            backoff = min(backoff * 2, 30.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(backoff if backoff > every else every):
                await stop.wait()
