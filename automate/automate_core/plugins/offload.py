"""The single place where sync plugin code leaves the event loop.

Sync connectors, secrets backends and LLM providers run in a bounded pool of threads
(``AUTOMATE_THREAD_POOL_SIZE``, default 16, shared by all sync plugins of the process). Context
variables (trace ids, the secrets masker's scope) are carried into the thread, and Django's
database connections are closed around the call so a plugin that uses the ORM neither leaks nor
reuses a stale connection. Async plugins are awaited directly and never come here.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from automate_core.conf import settings
from automate_core.observability import metrics

T = TypeVar("T")

_limiters: dict[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = {}


def limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    lim = _limiters.get(loop)
    if lim is None:
        lim = anyio.CapacityLimiter(int(settings.THREAD_POOL_SIZE))
        _limiters[loop] = lim
        metrics.offload_limit.set(lim.total_tokens)
    return lim


def _call_with_db_hygiene[T](func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    from django.db import close_old_connections

    metrics.offload_busy.inc()
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()
        metrics.offload_busy.dec()


async def run_sync[T](func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run sync ``func`` in the bounded plugin thread pool and return its result.

    The call waits for a free thread when all ``AUTOMATE_THREAD_POOL_SIZE`` are busy. Cancelling
    the caller (a step timeout) returns at once; the thread itself cannot be interrupted and keeps
    its slot until ``func`` returns, so a stuck plugin can never oversubscribe the pool.
    """
    call = functools.partial(_call_with_db_hygiene, func, *args, **kwargs)
    result = await anyio.to_thread.run_sync(call, limiter=limiter(), abandon_on_cancel=True)
    if inspect.isawaitable(result):  # a sync-looking method that returned a coroutine
        return await result  # type: ignore[no-any-return]
    return result


def is_async_callable(obj: Any) -> bool:
    """True for ``async def`` functions and methods, also behind ``functools.partial``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004
    )
