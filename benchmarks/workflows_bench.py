"""Workflow hot-path benchmark: what the sandbox limits cost, and the engine's per-event throughput.

Usage (a database of your own; the benchmark creates and deletes its rows)::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/automate_workflows SECRET_KEY=bench \\
        .venv/bin/python benchmarks/workflows_bench.py [--events 3000] [--rounds 5]

1. Rendering a typical step's parameters (four templated strings) through ``templating.render``
   (deadline + size guards) and through bare compiled Jinja2 templates, side by side, interleaved
   in rounds: the median of each and their ratio.
2. ``ExecutionEngine.handle_event`` on real claimed jobs (a one-step workflow, a no-op async
   connector, run records written), 32 at a time, for a workflow without and with a concurrency
   limit (per-key slots): median jobs/s of each and their ratio. The claim and completion are the
   worker's and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / "automate"),
    str(Path(__file__).resolve().parents[1]),
]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.db import connection  # noqa: E402

from automate_connectors.adapters.base import ConnectorAdapter  # noqa: E402
from automate_core import db, definitions  # noqa: E402
from automate_core.execution import templating  # noqa: E402
from automate_core.execution.engine import ExecutionEngine  # noqa: E402
from automate_core.outbox.store import OutboxStore  # noqa: E402
from automate_core.plugins import registry  # noqa: E402

PARAMS = {
    "url": "https://example.com/orders/{{ event.payload.id }}",
    "json": {"order": "{{ event.payload.id }}", "items": "{{ event.payload['items'] }}"},
    "note": "{{ event.payload.customer }} paid {{ event.payload.total }} ({{ event.type }})",
}
CONTEXT = {
    "event": {"type": "order.created", "payload": {"id": 7, "items": [1, 2], "customer": "c", "total": 9}},
    "steps": {},
}


class Noop(ConnectorAdapter):
    code = "bench_noop"
    name = "No-op"
    actions: ClassVar[tuple[str, ...]] = ("run",)

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        return {"ok": True}


def bare_render(value: Any) -> Any:
    if isinstance(value, str):
        kind, compiled = templating._compile(value)
        return compiled(**CONTEXT) if kind == "expr" else compiled.render(CONTEXT)
    if isinstance(value, dict):
        return {k: bare_render(v) for k, v in value.items()}
    return value


def render_rounds(rounds: int, n: int = 20_000) -> tuple[list[float], list[float]]:
    guarded, bare = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            templating.render(PARAMS, CONTEXT)
        guarded.append((time.perf_counter() - started) / n * 1e6)
        started = time.perf_counter()
        for _ in range(n):
            bare_render(PARAMS)
        bare.append((time.perf_counter() - started) / n * 1e6)
    return guarded, bare


def setup(limited: bool) -> None:
    item: dict[str, Any] = {
        "name": "bench_wf",
        "trigger": {"source": "bench", "event_type": "*"},
        "steps": [{"name": "s", "connector": "bench_noop", "action": "run", "params": PARAMS}],
    }
    if limited:
        item["concurrency"] = {"limit": 1000, "key": "{{ event.payload.customer }}"}
    definitions.load({"workflows": [item]})


def seed(events: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH e AS (INSERT INTO automate_event "
            "(source, event_type, payload, headers, trace_id, received_at) "
            "SELECT 'bench', 'order.created', jsonb_build_object('id', g, 'items', '[1,2]'::jsonb, "
            "'customer', 'c' || (g %% 50), 'total', g), '{}'::jsonb, md5(g::text), now() "
            "FROM generate_series(1, %s) g RETURNING id) "
            "INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts, available_at, "
            "lease_owner, last_error, created_at, updated_at) "
            "SELECT id, 'event', 'ready', 0, 5, now(), '', '', now(), now() FROM e",
            [events],
        )


def cleanup() -> None:
    from automate_core.models import Event, Workflow

    Event.objects.filter(source="bench").delete()  # with their jobs, runs and step runs
    Workflow.objects.filter(name="bench_wf").delete()


async def engine_round(events: int, limited: bool) -> float:
    await sync_to_async(cleanup)()
    await sync_to_async(setup)(limited)
    await sync_to_async(seed)(events)
    store, engine = OutboxStore(), ExecutionEngine()
    jobs = []
    while len(jobs) < events:
        jobs += await store.claim_batch(500, "bench", 300.0)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            outcome = await engine.handle_event(queue.get_nowait())
            failures += not outcome.succeeded

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(32)))
    elapsed = time.perf_counter() - started
    assert failures == 0, f"{failures} jobs failed"
    return events / elapsed


async def engine_rounds(rounds: int, events: int) -> tuple[list[float], list[float]]:
    plain, limited = [], []
    try:
        for _ in range(rounds):
            plain.append(await engine_round(events, limited=False))
            limited.append(await engine_round(events, limited=True))
    finally:
        await sync_to_async(cleanup)()
        await db.close_pool()
    return plain, limited


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    registry.connectors().override("bench_noop", Noop)
    guarded, bare = render_rounds(args.rounds)
    g, b = statistics.median(guarded), statistics.median(bare)
    print(f"render 4 templated strings: guarded {g:.1f} us, bare Jinja2 {b:.1f} us, ratio {g / b:.2f}")
    plain, limited = asyncio.run(engine_rounds(args.rounds, args.events))
    p, lim = statistics.median(plain), statistics.median(limited)
    print(
        f"handle_event, one step, run records written, 32 at a time: {p:.0f} jobs/s; "
        f"with a concurrency limit (per-key slots): {lim:.0f} jobs/s; ratio {lim / p:.2f}"
    )


if __name__ == "__main__":
    main()
