"""Waking the workers when a delayed run's turn comes.

A run job available in the future is claimed when a worker next looks (its poll interval, 1 s by
default, jittered), so delayed runs would start late and, worse, several at once: a throttle's
evenly spaced turns would bunch up at each poll. The worker that hands a delayed run off arms an
alarm in its own event loop for the turn and sends the outbox's ``NOTIFY`` then, which wakes every
listening worker to claim it on time. Alarms due within ``GRAIN`` of each other share one NOTIFY.
The poll stays the safety net: an alarm is lost with its process, never the run.
"""

from __future__ import annotations

import asyncio
import logging

from automate_core import db

logger = logging.getLogger("automate.execution")

GRAIN = 0.01  # seconds: alarms this close share one NOTIFY
NOTIFY = "SELECT pg_notify('automate_outbox', '')"


class Alarms:
    def __init__(self) -> None:
        self._armed: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def at(self, delay: float) -> None:
        """Send the outbox NOTIFY ``delay`` seconds from now (a bit after, never before)."""
        loop = asyncio.get_running_loop()
        slot = int((loop.time() + delay) / GRAIN) + 1  # rounded up: never early
        if slot in self._armed:
            return
        self._armed.add(slot)
        loop.call_at(slot * GRAIN, self._ring, slot)

    def _ring(self, slot: int) -> None:
        self._armed.discard(slot)
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        try:
            pool = await db.get_pool()
            async with pool.connection() as conn:
                await conn.execute(NOTIFY)
        except Exception as exc:  # the poll claims the run all the same, a little later
            logger.debug("throttle wake-up not sent: %s", exc)


alarms = Alarms()
