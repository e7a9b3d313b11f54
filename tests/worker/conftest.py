"""Fixtures of the outbox and worker tests: events in the outbox, a worker run in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.worker.pool import WorkerOptions, WorkerPool
from tests.helpers import eventually


def make_events(n: int, source: str = "test", event_type: str = "t") -> list[int]:
    return [emit(source, event_type, {"i": i}).event_id for i in range(n)]


async def amake_events(n: int, source: str = "test", event_type: str = "t") -> list[int]:
    return await sync_to_async(make_events)(n, source, event_type)


def options(**overrides: Any) -> WorkerOptions:
    values: dict[str, Any] = {
        "concurrency": 8,
        "batch_size": 4,
        "poll_interval": 0.1,
        "lease_seconds": 5.0,
        "rescue_interval": 0.2,
        "shutdown_timeout": 5.0,
    }
    values.update(overrides)
    return WorkerOptions(**values)


@asynccontextmanager
async def running(pool: WorkerPool) -> AsyncIterator[WorkerPool]:
    """Run ``pool`` in the background; on exit stop it gracefully and wait for it."""
    task = asyncio.create_task(pool.run())
    try:
        yield pool
    finally:
        pool.stop()
        await asyncio.wait_for(task, 30)


async def drain(until: Callable[[], Any], within: float = 10.0, **overrides: Any) -> WorkerPool:
    """Run a worker until ``until()`` is true (polled through the ORM), then stop it gracefully."""
    async with running(WorkerPool(options(**overrides))) as pool:
        await eventually(until, within)
    return pool


@pytest.fixture
def workflow(load: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    """``await workflow(step, ..., max_attempts=2)``: one workflow on shop/order.* events."""

    async def define(*steps: dict[str, Any], **extra: Any) -> None:
        spec = {"name": "wf", "trigger": {"source": "shop", "event_type": "order.*"}, "steps": list(steps)}
        await sync_to_async(load)({"workflows": [{**spec, **extra}]})

    return define
