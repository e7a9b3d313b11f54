"""Small helpers for tests that wait on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asgiref.sync import sync_to_async


async def eventually(predicate: Callable[[], object], within: float = 10.0, message: str = "") -> None:
    """Wait until the sync ``predicate()`` (usually an ORM query) is true.

    The state lives in PostgreSQL, written by other tasks or processes; there is nothing to await
    but the database itself, so this polls it every 20 ms and fails after ``within`` seconds.
    """
    check = sync_to_async(predicate)
    try:
        async with asyncio.timeout(within):
            # the signal is a row written by another task or process: poll the database
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(message or f"condition not met within {within}s") from None
