"""Fixtures of the workflow tests: recording connectors and a worker run in process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_core.plugins import registry
from automate_core.worker.pool import WorkerOptions, WorkerPool
from tests.helpers import eventually


class Probe(ConnectorAdapter):
    """Records every call. Actions: echo (returns its params), fail (retryable), fatal,
    flaky (fails while ``Probe.failures`` > 0), big (returns ``params['size']`` bytes), slow."""

    code = "probe"
    name = "Probe"
    actions: ClassVar[tuple[str, ...]] = ("echo", "fail", "fatal", "flaky", "big", "slow", "leak", "hold")
    supports_dry_run = True
    calls: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = []
    failures: ClassVar[int] = 0
    release: ClassVar[asyncio.Event | None] = None
    entered: ClassVar[asyncio.Event | None] = None  # set when a 'slow' call starts waiting
    active: ClassVar[dict[str, int]] = {}
    peak: ClassVar[dict[str, int]] = {}

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        type(self).calls.append((action, params, dict(context)))
        if action == "fail":
            raise ConnectorError(f"remote said no ({params.get('why', '')})")
        if action == "fatal":
            raise ConnectorError(f"cannot work: {params.get('why', '')}", retryable=False)
        if action == "flaky" and type(self).failures > 0:
            type(self).failures -= 1
            raise ConnectorError("flaky: try again")
        if action == "big":
            return {"blob": "x" * int(params["size"])}
        if action == "hold":  # counts how many runs of one key are inside at the same time
            key, cls = str(params["key"]), type(self)
            cls.active[key] = cls.active.get(key, 0) + 1
            cls.peak[key] = max(cls.peak.get(key, 0), cls.active[key])
            await asyncio.sleep(float(params.get("seconds", 0.1)))
            cls.active[key] -= 1
        release, entered = type(self).release, type(self).entered
        if action == "slow" and release is not None:
            if entered is not None:
                entered.set()
            await release.wait()
        if action == "leak":  # echoes the secret in its output and in its error
            raise ConnectorError(f"auth failed with token {params.get('token')}", retryable=False)
        return {"echo": params, "dry_run": context["dry_run"]}


class Blind(ConnectorAdapter):
    """A connector that cannot run dry: test mode must not call it."""

    code = "blind"
    name = "Blind"
    actions: ClassVar[tuple[str, ...]] = ("send",)
    calls: ClassVar[list[Any]] = []

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        type(self).calls.append(params)
        return {"sent": True}


@pytest.fixture(autouse=True)
def probe() -> Iterator[type[Probe]]:
    Probe.calls, Probe.failures, Probe.release, Probe.entered, Blind.calls = [], 0, None, None, []
    Probe.active, Probe.peak = {}, {}
    registry.connectors().override("probe", Probe)
    registry.connectors().override("blind", Blind)
    yield Probe
    registry.connectors().override("probe", None)
    registry.connectors().override("blind", None)


def options(**overrides: Any) -> WorkerOptions:
    values: dict[str, Any] = {"concurrency": 8, "batch_size": 4, "poll_interval": 0.05, "lease_seconds": 5.0}
    values.update(overrides)
    return WorkerOptions(**values)


async def drain(until: Callable[[], Any], within: float = 15.0, **overrides: Any) -> WorkerPool:
    """Run a worker until ``until()`` (an ORM check) is true, then stop it gracefully."""
    pool = WorkerPool(options(**overrides))
    task = asyncio.create_task(pool.run())
    try:
        await eventually(until, within)
    finally:
        pool.stop()
        await task
    return pool


def workflow(name: str = "wf", *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "trigger": {"source": "shop", "event_type": "order.*"}}
    item.update(extra)
    item["steps"] = list(steps)
    return item


async def aload(*workflows: dict[str, Any], **sections: Any) -> dict[str, int]:
    from automate_core import definitions

    return await sync_to_async(definitions.load)({"workflows": list(workflows), **sections})
