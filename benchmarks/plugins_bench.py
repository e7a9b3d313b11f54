"""Plugin call overhead, discovery cost and budget round trips, measured side by side.

    DATABASE_URL=postgresql://... SECRET_KEY=bench .venv/bin/python benchmarks/plugins_bench.py

Prints medians of 5 runs: the cost of one ``aexecute`` for a native async connector and for a sync
connector offloaded to the plugin thread pool (sequential and 64 concurrent), registry listing
without imports and with every plugin loaded, and one budget reserve + settle on PostgreSQL
(needs a migrated database; skipped without ``DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django

django.setup()

from automate_connectors.adapters.base import ConnectorAdapter  # noqa: E402

N = 2000
RUNS = 5
# a fresh interpreter per measurement: discovery is cached per process
PROBE = (
    "import django, os, time; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'asgi.settings'); "
    "django.setup(); "
    "from automate_core.plugins import registry as r; t = time.perf_counter(); {}; "
    "print((time.perf_counter() - t) * 1e3)"
)


class AsyncNoop(ConnectorAdapter):
    code, name = "async_noop", "Async no-op"

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        return params


class SyncNoop(ConnectorAdapter):
    code, name = "sync_noop", "Sync no-op"

    def execute(self, action: str, params: dict, context: dict) -> Any:
        return params


async def per_call(adapter: ConnectorAdapter, concurrent: bool) -> float:
    started = time.perf_counter()
    if concurrent:
        for _ in range(N // 64):
            await asyncio.gather(*(adapter.aexecute("x", {}, {}) for _ in range(64)))
        calls = (N // 64) * 64
    else:
        for _ in range(N):
            await adapter.aexecute("x", {}, {})
        calls = N
    return (time.perf_counter() - started) / calls * 1e6


def median(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f}"


async def budgets_round_trip() -> float | None:
    if not os.environ.get("DATABASE_URL"):
        return None
    from django.test import override_settings

    from automate_governance import budgets

    limits = {"global": 10**12, "workflow": 10**12, "run": 10**9, "period": "total"}
    with override_settings(AUTOMATE_LLM_BUDGETS=limits):
        started = time.perf_counter()
        for i in range(200):
            res = await budgets.reserve(provider="bench", model="", workflow="bench", run_id=i, tokens=100)
            await budgets.settle(res, input=50, output=20)
        return (time.perf_counter() - started) / 200 * 1e3


async def main() -> None:
    rows: dict[str, list[float]] = {}
    for _ in range(RUNS):
        for label, adapter, concurrent in (
            ("async connector, sequential", AsyncNoop(), False),
            ("sync connector (thread pool), sequential", SyncNoop(), False),
            ("async connector, 64 concurrent", AsyncNoop(), True),
            ("sync connector (thread pool), 64 concurrent", SyncNoop(), True),
        ):
            rows.setdefault(label, []).append(await per_call(adapter, concurrent))
    for label, values in rows.items():
        print(f"{label:<46} {median(values)} us/call")
    trip = await budgets_round_trip()
    if trip is not None:
        print(f"{'budget reserve + settle (3 ledgers)':<46} {trip:8.2f} ms")
    from automate_core import db

    await db.close_pool()


def discovery() -> None:
    for label, stmt in (
        ("registry: list codes (no imports)", "[g.codes() for g in r.all_registries()]"),
        ("registry: load every plugin (info)", "[g.info() for g in r.all_registries()]"),
    ):
        probe = [sys.executable, "-c", PROBE.format(stmt)]
        times = [
            float(subprocess.run(probe, capture_output=True, text=True, check=True).stdout)
            for _ in range(RUNS)
        ]
        print(f"{label:<46} {median(times)} ms")


if __name__ == "__main__":
    asyncio.run(main())
    discovery()
