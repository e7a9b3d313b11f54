"""Wake-ups from ``LISTEN automate_outbox``; reconnects with backoff when the connection drops."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from automate_core import db

logger = logging.getLogger("automate.worker")

CHANNEL = "automate_outbox"


class Listener:
    def __init__(self, wake: asyncio.Event, channel: str = CHANNEL) -> None:
        self.wake = wake
        self.channel = channel
        self.connected = asyncio.Event()

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await db.connect()
                async with conn:
                    await conn.execute(f"LISTEN {self.channel}")  # constant channel name
                    self.connected.set()
                    delay = 0.5
                    self.wake.set()  # something may have arrived while we were away
                    async for _notify in conn.notifies():
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
