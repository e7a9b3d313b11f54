"""Concurrency limits are enforced in PostgreSQL: across workers, per key, and through crashes."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings

from automate_core.ingest.ingestor import emit
from automate_core.models import ConcurrencySlot, ExecutionRun, OutboxJob, Workflow
from automate_core.worker.pool import WorkerPool
from tests.helpers import eventually
from tests.workflows.conftest import Probe, aload, options, workflow

pytestmark = pytest.mark.usefixtures("live_db")

HOLD = {
    "name": "hold",
    "connector": "probe",
    "action": "hold",
    "params": {"key": "{{ event.payload.customer }}", "seconds": 0.15},
}


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_one_run_at_a_time_per_key_across_two_workers(probe: type[Probe]) -> None:
    await aload(workflow("wf", HOLD, concurrency={"limit": 1, "key": "{{ event.payload.customer }}"}))
    for customer in ["a", "a", "a", "a", "b", "b", "c"]:
        await sync_to_async(emit)("shop", "order.created", {"customer": customer})
    pools = [WorkerPool(options(concurrency=8, batch_size=8)) for _ in range(2)]
    tasks = [asyncio.create_task(p.run()) for p in pools]
    try:
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 7, within=20)
    finally:
        for p in pools:
            p.stop()
        await asyncio.gather(*tasks)
    assert probe.peak == {"a": 1, "b": 1, "c": 1}
    assert await ExecutionRun.objects.filter(status="succeeded").acount() == 7
    # waiting for a slot is not a failure: no attempt was spent on it
    # snoozes hand the claim back unspent (releases); every job spent exactly one attempt
    spent = await sync_to_async(
        lambda: {j.attempts - j.releases for j in OutboxJob.objects.only("attempts", "releases")}
    )()
    assert spent == {1}
    assert await ConcurrencySlot.objects.acount() == 0  # every slot was released


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_a_limit_of_two_allows_two(probe: type[Probe]) -> None:
    await aload(workflow("wf", {**HOLD, "params": {"key": "all", "seconds": 0.2}}, concurrency={"limit": 2}))
    for _ in range(6):
        await sync_to_async(emit)("shop", "order.created", {})
    pool = WorkerPool(options(concurrency=8, batch_size=8))
    task = asyncio.create_task(pool.run())
    try:
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 6, within=20)
    finally:
        pool.stop()
        await task
    assert probe.peak == {"all": 2}


def hold_slot(lease: str) -> int:
    """A slot of workflow 'wf', key 'a', held by a running job whose lease ends at ``lease``."""
    holder = OutboxJob.objects.create(kind="event", status="running", attempts=1, lease_owner="gone:1")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE automate_outbox_job SET lease_expires_at = now() + interval '{lease}' WHERE id = %s",
            [holder.pk],
        )
    ConcurrencySlot.objects.create(
        workflow=Workflow.objects.get(name="wf"), key="a", slot=0, job_id=holder.pk, job_attempt=1
    )
    return holder.pk


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_a_killed_workers_slot_comes_back_when_its_lease_expires(probe: type[Probe]) -> None:
    await aload(workflow("wf", HOLD, concurrency={"limit": 1, "key": "{{ event.payload.customer }}"}))
    holder = await sync_to_async(hold_slot)("1 hour")  # a worker that holds the slot, alive
    await sync_to_async(emit)("shop", "order.created", {"customer": "a"})
    pool = WorkerPool(options())
    task = asyncio.create_task(pool.run())
    try:
        await asyncio.sleep(0.5)
        waiting = await OutboxJob.objects.exclude(pk=holder).aget()
        assert waiting.status in ("ready", "retry", "running") and not probe.calls  # blocked, not failed
        # the holder's worker is killed: its lease runs out (the rescuer has not even run yet)
        await sync_to_async(_expire)(holder)
        await eventually(lambda: OutboxJob.objects.filter(status="completed").exists(), within=10)
    finally:
        pool.stop()
        await task
    assert len(probe.calls) == 1
    waited = await OutboxJob.objects.exclude(pk=holder).aget()
    assert waited.attempts - waited.releases == 1  # the snoozes while blocked spent nothing


def _expire(job_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE automate_outbox_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
            [job_id],
        )


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_a_queued_run_waiting_for_a_slot_stays_queued_then_runs_once(probe: type[Probe]) -> None:
    from automate_core.execution import replay

    await aload(workflow("wf", HOLD, concurrency={"limit": 1, "key": "{{ event.payload.customer }}"}))
    holder = await sync_to_async(hold_slot)("1 hour")
    run = await sync_to_async(replay.trigger)("wf", {"customer": "a"})
    pool = WorkerPool(options())
    task = asyncio.create_task(pool.run())
    try:
        await asyncio.sleep(0.4)  # the job is snoozed over and over meanwhile
        assert (await ExecutionRun.objects.aget(pk=run.pk)).status == "queued"
        await sync_to_async(_expire)(holder)
        await eventually(
            lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists(), within=10
        )
    finally:
        pool.stop()
        await task
    assert await ExecutionRun.objects.acount() == 1 and len(probe.calls) == 1
