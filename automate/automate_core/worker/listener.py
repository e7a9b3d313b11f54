"""Wake-ups from ``LISTEN automate_outbox``; reconnects with backoff when the connection drops.

The outbox's statement trigger sends the NOTIFY when jobs are inserted (on commit), so an idle
worker claims within milliseconds instead of at its next poll. The listener runs on its own
connection (outside the pool). A connection that silently stopped answering (a network partition
sends no error) is found by a ``SELECT 1`` after each quiet minute; on any error the listener
reconnects with backoff and wakes the worker once, in case something arrived in between.

Behind a transaction pooler the listener needs a direct connection
(``AUTOMATE_LISTEN_DATABASE_URL``); without one it does not listen and the worker polls every
``POLL_INTERVAL`` (``polling`` is then set).
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from automate_core import db

logger = logging.getLogger("automate.worker")

CHANNEL = "automate_outbox"
#: Seconds without a notification after which the connection is checked.
QUIET_CHECK = 60.0


class Listener:
    def __init__(self, wake: asyncio.Event, channel: str = CHANNEL) -> None:
        self.wake = wake
        self.channel = channel
        self.connected = asyncio.Event()
        self.polling = False

    async def run(self) -> None:
        if db.direct_conninfo() is None:
            self.polling = True
            logger.info(
                "a transaction pooler is in front of the database and AUTOMATE_LISTEN_DATABASE_URL "
                "is not set: no LISTEN, the worker polls for jobs (--poll-interval)"
            )
            return
        delay = 0.5
        while True:
            try:
                conn = await db.connect(connect_timeout=10)
                async with conn:
                    await conn.execute(f"LISTEN {self.channel}")  # constant channel name
                    self.connected.set()
                    delay = 0.5
                    self.wake.set()  # something may have arrived while we were away
                    while True:
                        async for _notify in conn.notifies(timeout=QUIET_CHECK):
                            self.wake.set()
                        async with asyncio.timeout(10):
                            await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self.connected.clear()
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
