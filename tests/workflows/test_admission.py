"""Admission controls in process, on the real database: rate limit, singleton skip and cancel,
hand-off to a queue with a priority and a fair key, keys that fail to render, the plain path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from automate_core.ingest.ingestor import emit
from automate_core.models import AdmissionState, ConcurrencySlot, ExecutionRun, OutboxJob
from automate_core.worker.pool import WorkerPool
from tests.helpers import eventually
from tests.workflows.conftest import Probe, aload, options, workflow

pytestmark = pytest.mark.usefixtures("live_db")

CUSTOMER = "{{ event.payload.customer }}"
ECHO = {"name": "echo", "connector": "probe", "action": "echo", "params": {"c": CUSTOMER}}
SLOW = {"name": "slow", "connector": "probe", "action": "slow"}


async def emit_all(*customers: str) -> list[int]:
    return [(await sync_to_async(emit)("shop", "order.created", {"customer": c})).event_id for c in customers]


def runs() -> list[tuple[str, str, int]]:
    return list(ExecutionRun.objects.order_by("id").values_list("status", "error", "event_id"))


def done(n: int) -> Any:
    return lambda: OutboxJob.objects.filter(status="completed").count() == n


@asynccontextmanager
async def workers(n: int = 2) -> AsyncIterator[list[WorkerPool]]:
    pools = [WorkerPool(options()) for _ in range(n)]
    tasks = [asyncio.create_task(p.run()) for p in pools]
    try:
        yield pools
    finally:
        for p in pools:
            p.stop()
        await asyncio.gather(*tasks)


async def test_a_rate_limit_skips_the_runs_past_it_with_a_reason_per_key() -> None:
    await aload(workflow("wf", ECHO, rate_limit={"limit": 2, "period": "1h", "key": CUSTOMER}))
    await emit_all("acme", "acme", "acme", "other", "acme")
    async with workers(2):
        await eventually(done(5), within=15)
    statuses = await sync_to_async(runs)()
    skipped = [s for s in statuses if s[0] == "skipped"]
    assert sorted(s[0] for s in statuses) == ["skipped", "skipped", "succeeded", "succeeded", "succeeded"]
    prefix = "rate limit 2 per 1h for key 'acme' reached; next run allowed at "
    assert all(s[1].startswith(prefix) for s in skipped), skipped
    assert (await AdmissionState.objects.aget(kind="rate_limit", key="acme")).count == 4


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_a_singleton_in_skip_mode_records_the_newer_event_as_skipped(probe: type[Probe]) -> None:
    probe.release, probe.entered = asyncio.Event(), asyncio.Event()
    await aload(workflow("wf", SLOW, singleton={"key": CUSTOMER, "mode": "skip"}))
    first, *_ = await emit_all("acme")
    async with workers(2):
        await probe.entered.wait()
        second, third = await emit_all("acme", "other")
        await eventually(lambda: ExecutionRun.objects.filter(event_id=second, status="skipped").exists())
        probe.release.set()
        await eventually(done(3), within=15)
    by_event = {e: (s, err) for s, err, e in await sync_to_async(runs)()}
    assert by_event[first][0] == "succeeded" and by_event[third][0] == "succeeded"
    status, error = by_event[second]
    assert status == "skipped" and "singleton key 'acme' is held by run #" in error
    assert await ConcurrencySlot.objects.acount() == 0  # the lock was released


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_a_singleton_in_cancel_mode_cancels_the_older_run_after_its_current_step(
    probe: type[Probe],
) -> None:
    probe.release, probe.entered = asyncio.Event(), asyncio.Event()
    await aload(workflow("wf", SLOW, ECHO, singleton={"key": CUSTOMER, "mode": "cancel"}))
    (first,) = await emit_all("acme")
    async with workers(2):
        await probe.entered.wait()
        (second,) = await emit_all("acme")
        await eventually(lambda: ExecutionRun.objects.filter(event_id=first, status="cancelled").exists())
        probe.release.set()  # the older run's current step ends; it must not run its next step
        await eventually(done(2), within=15)
    by_event = {e: (s, err) for s, err, e in await sync_to_async(runs)()}
    assert by_event[first] == (
        "cancelled",
        f"cancelled by a newer event #{second} (singleton key 'acme', mode cancel)",
    )
    assert by_event[second][0] == "succeeded"
    echoes = [c for c in probe.calls if c[0] == "echo"]
    assert [c[2]["event_id"] for c in echoes] == [second]  # the cancelled run stopped before echo


@override_settings(AUTOMATE_CONCURRENCY_SNOOZE_SECONDS=0.05)
async def test_a_singleton_in_queue_mode_runs_one_at_a_time_per_key(probe: type[Probe]) -> None:
    hold = {
        "name": "hold",
        "connector": "probe",
        "action": "hold",
        "params": {"key": CUSTOMER, "seconds": 0.1},
    }
    await aload(workflow("wf", hold, singleton={"key": CUSTOMER}))
    await emit_all("a", "a", "a", "b", "b")
    async with workers(2):
        await eventually(done(5), within=20)
    assert probe.peak == {"a": 1, "b": 1}
    assert [s for s, _, _ in await sync_to_async(runs)()] == ["succeeded"] * 5
    spent = await sync_to_async(lambda: {j.attempts - j.releases for j in OutboxJob.objects.all()})()
    assert spent == {1}  # waiting its turn spent no attempt


async def test_queue_priority_and_fairness_hand_the_run_off_to_a_run_job() -> None:
    await aload(
        workflow(
            "billing",
            ECHO,
            queue="billing",
            priority=10,
            fairness={"key": "tenant-{{ event.payload.customer }}"},
        ),
        workflow("plain", {**ECHO, "name": "echo2"}),
    )
    (event,) = await emit_all("acme")
    async with workers(1):
        await eventually(done(2), within=15)
    jobs = await sync_to_async(
        lambda: list(OutboxJob.objects.order_by("id").values("payload", "queue", "priority", "fair_key"))
    )()
    run = await ExecutionRun.objects.aget(workflow_name="billing")
    assert jobs[1] == {
        "payload": {"run": run.pk},
        "queue": "billing",
        "priority": 10,
        "fair_key": "tenant-acme",
    }
    assert run.status == "succeeded" and run.event_id == event
    assert await OutboxJob.objects.filter(pk=run.job_id or 0, queue="billing").aexists()  # its run job
    plain = await ExecutionRun.objects.aget(workflow_name="plain")
    assert plain.status == "succeeded"  # inline, in the event's own job
    assert await OutboxJob.objects.acount() == 2


async def test_a_queue_equal_to_the_jobs_own_runs_inline() -> None:
    await aload(workflow("wf", ECHO, queue="default"))
    await emit_all("acme")
    async with workers(1):
        await eventually(done(1), within=15)
    assert await OutboxJob.objects.acount() == 1
    assert (await ExecutionRun.objects.aget()).status == "succeeded"


@pytest.mark.parametrize(
    ("control", "what"),
    [
        (
            {"throttle": {"limit": 1, "period": 60, "key": "{{ event.payload.missing.deeper }}"}},
            "throttle key",
        ),
        (
            {"rate_limit": {"limit": 1, "period": 60, "key": "{{ event.payload.missing.deeper }}"}},
            "rate_limit key",
        ),
        ({"singleton": {"key": "{{ event.payload.missing.deeper }}"}}, "singleton key"),
        ({"fairness": {"key": "{{ event.payload.missing.deeper }}"}}, "fairness key"),
    ],
)
async def test_a_key_that_fails_to_render_is_a_failed_run_with_the_error(
    control: dict[str, Any], what: str
) -> None:
    await aload(workflow("wf", ECHO, max_attempts=1, **control))
    await emit_all("acme")
    async with workers(1):
        await eventually(lambda: ExecutionRun.objects.filter(status="failed").exists(), within=15)
    run = await ExecutionRun.objects.aget()
    assert run.error.startswith(f"{what}: "), run.error
    assert "missing" in run.error


async def test_a_retried_event_job_admits_its_runs_once() -> None:
    """A later claim of an event job whose earlier claim handed the run off does not hand it off
    again (nor count it again)."""
    await aload(workflow("wf", ECHO, rate_limit={"limit": 5, "period": "1h"}, priority=5))
    await emit_all("acme")
    async with workers(1):
        await eventually(done(2), within=15)
    job = await OutboxJob.objects.filter(payload__isnull=True).aget()
    await OutboxJob.objects.filter(pk=job.pk).aupdate(
        status="ready",
        attempts=1,
        available_at=job.created_at,
        settled=False,  # back to the queue
    )
    async with workers(1):
        await eventually(done(2), within=15)
        await eventually(lambda: OutboxJob.objects.get(pk=job.pk).attempts == 2)
    assert await ExecutionRun.objects.acount() == 1
    assert (await AdmissionState.objects.aget(kind="rate_limit")).count == 1


async def test_a_manual_trigger_goes_to_the_workflows_queue_with_its_priority() -> None:
    from automate_core.execution import replay

    await aload(workflow("wf", ECHO, queue="billing", priority=-3))
    run = await sync_to_async(replay.trigger)("wf", {"customer": "acme"})
    job = await OutboxJob.objects.aget(pk=run.job_id or 0)
    assert (job.queue, job.priority, job.payload) == ("billing", -3, {"run": run.pk})
