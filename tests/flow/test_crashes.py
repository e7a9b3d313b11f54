"""A worker that dies mid fan-out, or mid-run after a wake: the next claim repeats nothing that
succeeded and never waits again for a wait that is over."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from automate_core.execution.engine import ExecutionEngine
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, RunWait
from automate_core.outbox.store import ClaimedJob, OutboxStore
from tests.flow.conftest import arecords, fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


async def kill_mid_step(store: OutboxStore, probe: type[Probe]) -> ClaimedJob:
    """Claim the due job, run it until a 'slow' call has started, then lose the process; the
    rescued job's next claim is returned."""
    [job] = await store.claim_batch(1, "doomed", lease=0.3)
    doomed = asyncio.create_task(ExecutionEngine().handle_event(job))
    assert probe.entered is not None
    await asyncio.wait_for(probe.entered.wait(), 10)
    doomed.cancel()  # the process is gone: nothing more is written for this attempt
    await asyncio.gather(doomed, return_exceptions=True)
    async with asyncio.timeout(10):
        # the lease runs out in the database: poll it, as the worker's rescuer does
        while not await store.rescue_expired():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    [retry] = await store.claim_batch(1, "heir", lease=30)
    return retry


async def test_a_worker_killed_mid_fan_out_leaves_only_the_missing_items(probe: type[Probe]) -> None:
    probe.release, probe.entered = asyncio.Event(), asyncio.Event()
    items = {
        "name": "reserve",
        "for_each": "{{ event.payload['items'] }}",
        "concurrency": 1,
        "step": {
            "connector": "probe",
            "action": "slow",
            "condition": "item == 'c'",
            "params": {"i": "{{ item }}"},
        },
    }
    before = {
        "name": "warm",
        "for_each": "{{ event.payload['items'] }}",
        "concurrency": 1,
        "step": {"connector": "probe", "action": "echo", "params": {"i": "{{ item }}"}},
    }
    await aload(workflow("w", before, items, step("after"), max_attempts=3))
    await sync_to_async(emit)("shop", "order.created", {"items": ["a", "b", "c"]})
    store = OutboxStore()
    retry = await kill_mid_step(store, probe)
    probe.release.set()
    outcome = await ExecutionEngine().handle_event(retry)
    assert outcome.succeeded
    first, second = [r async for r in ExecutionRun.objects.order_by("id")]
    assert first.status == "failed" and first.error.startswith("abandoned")
    records = await arecords(second.pk)
    assert [n for n, s in records if s == "reused"] == ["warm", "reserve[0]", "reserve[1]"]
    assert ("reserve[2]", "succeeded") in records and records[-1] == ("after", "succeeded")
    echoes = [p for a, p, _c in probe.calls if a == "echo"]
    assert echoes == [{"i": "a"}, {"i": "b"}, {"i": "c"}, {}]  # warm ran once per item, then 'after'


async def test_a_worker_killed_after_a_wake_does_not_wait_again(probe: type[Probe]) -> None:
    probe.release, probe.entered = asyncio.Event(), asyncio.Event()
    await aload(
        workflow(
            "w",
            step("before"),
            {"name": "nap", "sleep": {"for": "1h"}},
            step("work", "slow"),
            step("after"),
            max_attempts=3,
        )
    )
    result = await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    await fast_forward(run.pk)
    store = OutboxStore()
    retry = await kill_mid_step(store, probe)  # the wake job's worker dies during 'work'
    probe.release.set()
    outcome = await ExecutionEngine().handle_event(retry)
    assert outcome.succeeded
    woken, resumed = [r async for r in ExecutionRun.objects.order_by("id")]
    assert woken.pk == run.pk and woken.status == "failed" and woken.error.startswith("abandoned")
    assert resumed.status == "succeeded"
    assert await arecords(resumed.pk) == [
        ("before", "reused"),
        ("nap", "reused"),
        ("work", "succeeded"),
        ("after", "succeeded"),
    ]
    assert await RunWait.objects.acount() == 1  # no second wait was opened
    assert [a for a, _p, _c in probe.calls] == ["echo", "slow", "slow", "echo"]
