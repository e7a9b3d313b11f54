"""Batching: up to max_size events or timeout after the first, one run with the list; every event
in exactly one batch, across two workers."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from automate_core.execution import replay
from automate_core.ingest.ingestor import emit
from automate_core.models import ConcurrencySlot, EventGroup, ExecutionRun, OutboxJob
from automate_core.worker.pool import WorkerPool
from tests.grouping.conftest import RECORD, agroups, amembers, make_due, settled
from tests.helpers import eventually
from tests.workflows.conftest import Probe, aload, drain, options, workflow

pytestmark = pytest.mark.usefixtures("live_db")


async def send(n: int, **payload: object) -> list[int]:
    return [
        (await sync_to_async(emit)("shop", "order.created", {**payload, "i": i})).event_id for i in range(n)
    ]


def succeeded(n: int) -> bool:
    return ExecutionRun.objects.filter(status="succeeded").count() == n


def batches(probe: type[Probe]) -> list[list[int]]:
    return [[int(i) for i in p["ids"]] for a, p, _c in probe.calls if a == "echo"]


async def test_full_batches_flush_at_once_and_every_event_is_in_exactly_one(probe: type[Probe]) -> None:
    await aload(workflow("wf", RECORD, batch={"max_size": 10, "timeout": "1h"}))
    ids = await send(45)
    pools = [WorkerPool(options(concurrency=16, batch_size=8)) for _ in range(2)]
    tasks = [asyncio.create_task(p.run()) for p in pools]
    try:
        await eventually(lambda: succeeded(4), within=30)  # four full batches, without a deadline
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 49, within=30)
    finally:
        for p in pools:
            p.stop()
        await asyncio.gather(*tasks)
    runs = batches(probe)
    assert sorted(len(b) for b in runs) == [10, 10, 10, 10]
    assert all(b == sorted(b) for b in runs)  # oldest first
    assert all(int(p["last"]) == max(map(int, p["ids"])) for _a, p, _c in probe.calls)  # event: the newest
    [(_kind, _key, status, size, _run)] = [g for g in await agroups() if g[2] == "open"]
    assert (status, size) == ("open", 5)
    flushed = sorted(e for b in runs for e in b)
    rest = [e for m in (await amembers()).values() for e in m if e not in flushed]
    assert sorted(flushed + rest) == ids and len(set(flushed)) == 40  # each event once
    assert {g.flushed_by async for g in EventGroup.objects.filter(status="flushed")} == {"full"}


async def test_a_batch_that_is_not_full_flushes_at_its_timeout(probe: type[Probe]) -> None:
    await aload(
        workflow("wf", RECORD, batch={"max_size": 100, "timeout": "1h", "key": "{{ event.payload.t }}"})
    )
    a = await send(3, t="a")
    b = await send(2, t="b")
    await drain(lambda: OutboxJob.objects.filter(status="completed").count() == 5)
    assert probe.calls == []
    assert await make_due() == 2
    await drain(lambda: succeeded(2))
    assert sorted(batches(probe)) == sorted([a, b])
    runs = [r async for r in ExecutionRun.objects.order_by("id")]
    assert {r.mode for r in runs} == {"batch"} and {r.event_id for r in runs} == {a[-1], b[-1]}


async def test_a_short_timeout_flushes_by_itself(probe: type[Probe]) -> None:
    await aload(workflow("wf", RECORD, batch={"max_size": 100, "timeout": 0.5}))
    ids = await send(4)
    await drain(settled, within=20)
    assert sorted(e for b in batches(probe) for e in b) == ids


async def test_a_manual_trigger_of_a_batch_workflow_is_a_batch_of_one(probe: type[Probe]) -> None:
    await aload(workflow("wf", RECORD, batch={"max_size": 5, "timeout": "1h"}))
    run = await sync_to_async(replay.trigger)("wf", {"x": 1})
    await drain(lambda: succeeded(1))
    assert batches(probe) == [[run.event_id]]


async def test_a_failed_batch_run_is_retried_as_the_same_batch(probe: type[Probe]) -> None:
    flaky = {
        "name": "flaky",
        "connector": "probe",
        "action": "flaky",
        "params": {"n": "{{ events | length }}"},
    }
    await aload(workflow("wf", RECORD, flaky, batch={"max_size": 3, "timeout": "1h"}, max_attempts=3))
    probe.failures = 1
    ids = await send(3)
    await drain(lambda: succeeded(1) and OutboxJob.objects.exclude(status="completed").count() == 0)
    assert batches(probe) == [ids]  # the first step ran once: the retry resumed at the failed one
    assert [p for a, p, _c in probe.calls if a == "flaky"] == [{"n": 3}, {"n": 3}]
    assert await ExecutionRun.objects.filter(status="failed").acount() == 1  # then resumed, once


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_the_concurrency_limit_holds_for_the_runs_of_batches(probe: type[Probe]) -> None:
    hold = {"name": "hold", "connector": "probe", "action": "hold", "params": {"key": "all", "seconds": 0.2}}
    await aload(
        workflow(
            "wf", hold, batch={"max_size": 2, "timeout": "1h", "key": "{{ event.payload.t }}"},
            concurrency={"limit": 1},
        )
    )  # fmt: skip
    for t in ("a", "b", "c"):
        await send(2, t=t)
    await drain(lambda: succeeded(3), within=20)
    assert probe.peak == {"all": 1}  # three full batches, one run at a time
    assert await ConcurrencySlot.objects.acount() == 0
