"""The loop monitor: event-loop lag, and the pools that the loop's tasks wait on.

One small task per event loop wakes every ``interval`` seconds and measures how late it woke:
that delay is time during which the loop ran something else without yielding (a sync call on the
loop, a large JSON parse, a CPU-bound template). It records the lag
(``automate_event_loop_lag_seconds``), warns in the log when one delay exceeds ``warn_after``, and
samples what this loop's tasks queue for: the async database pool (connections in use, idle, and
requests waiting) and the sync-plugin thread pool (calls waiting for a thread).

The web process starts it from the ASGI lifespan; a worker process calls
:func:`start_loop_monitor` once its loop runs (``automate_core.observability.process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from automate_core.observability import metrics

logger = logging.getLogger("automate.observability")

_monitors: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

#: Seconds between wake-ups; the lag resolution is about the same.
INTERVAL = 0.25
#: A single lag at least this long is logged (at most once per ``WARN_EVERY`` seconds).
WARN_AFTER = 0.5
WARN_EVERY = 10.0


def start_loop_monitor(interval: float = INTERVAL, *, warn_after: float = WARN_AFTER) -> asyncio.Task[None]:
    """Start the monitor on the running loop (once per loop; later calls return the same task)."""
    loop = asyncio.get_running_loop()
    task = _monitors.get(loop)
    if task is None or task.done():
        task = loop.create_task(_monitor(interval, warn_after), name="automate-loop-monitor")
        _monitors[loop] = task
    return task


async def stop_loop_monitor() -> None:
    """Stop the running loop's monitor, if any."""
    task = _monitors.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _monitor(interval: float, warn_after: float) -> None:
    loop = asyncio.get_running_loop()
    last_warning = -WARN_EVERY
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - started - interval)
        metrics.event_loop_lag.observe(lag)
        metrics.event_loop_lag_last.set(lag)
        sample_pools()
        now = time.monotonic()
        if lag >= warn_after and now - last_warning >= WARN_EVERY:
            last_warning = now
            logger.warning(
                "event loop blocked for %.3fs: something ran on the loop without yielding "
                "(sync I/O or CPU-bound code belongs in automate_core.plugins.offload.run_sync)",
                lag,
            )


def sample_pools() -> None:
    """Record the running loop's database pool and thread-offload queue in the gauges."""
    from automate_core import db
    from automate_core.plugins import offload

    pool = db.current_pool()
    if pool is not None:
        stats = pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        metrics.db_pool_connections.labels("in_use").set(max(0, size - idle))
        metrics.db_pool_connections.labels("idle").set(idle)
        metrics.db_pool_waiting.set(stats.get("requests_waiting", 0))
    metrics.offload_waiting.set(offload.limiter().statistics().tasks_waiting)
